/*  k8s_objects: builds the Pod and PVC of a server from its profile, as KubeSpawner would.
 *
 *  It owns the mapping from Orrery's server + profile to Kubernetes objects, and nothing
 *  else: no I/O, no clock, no randomness, so the same input gives the same JSON and the
 *  golden files in tests/k8s_expected/ pin it down. What goes where, and why:
 *
 *  - requests = the profile's guarantees, limits = its limits (what the scheduler reserved
 *    is what the kubelet guarantees); GPUs as "nvidia.com/gpu" in both, since Kubernetes
 *    requires extended resources' requests to equal their limits.
 *  - nodeName = the scheduler's node: Orrery's scheduler has placed the server already,
 *    so the pod bypasses kube-scheduler and goes straight to that kubelet. nodeSelector
 *    and tolerations are still written: they document the pod, and the kubelet's
 *    admission rejects a pod whose node selector its node does not match.
 *  - The command and args go into the container's `args`, as KubeSpawner does, so the
 *    image's ENTRYPOINT (tini in the Jupyter images) stays PID 1 and reaps zombies.
 *  - Without a service account the pod gets no API token (automountServiceAccountToken
 *    false): a user's code has no business with the Kubernetes API.
 *  - Quantities are written in Kubernetes' canonical form ("512Mi", "500m", "1"), which
 *    is what the API server would turn them into anyway.
 *  - restartPolicy Never: a server that exits is over, and the spawner reports it.
 *  - Empty parts (no selector, no tolerations, no volumes) are left out, not written empty.
 */
#include "k8s_objects.h"

#include "orr_crypto.h"
#include "orr_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cut of a name over K8S_NAME_MAX: prefix + "---" + hash = 52 + 3 + 8. */
#define K8S_HASH_LEN 8
#define K8S_CUT_LEN (K8S_NAME_MAX - 3 - K8S_HASH_LEN)

static void
s_fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

/* --- names ---------------------------------------------------------------------------- */

char *
k8s_escape (const char *name, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (outlen == 0)
        return out;
    for (const unsigned char *p = (const unsigned char *) (name ? name : ""); *p; p++) {
        char piece[4];
        size_t len = 0;
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
            piece[len++] = (char) *p;
        else {
            /* escapism writes '%X': no leading zero for bytes below 0x10 */
            piece[len++] = '-';
            if (*p >= 0x10)
                piece[len++] = hex[*p >> 4];
            piece[len++] = hex[*p & 0xf];
        }
        if (n + len >= outlen)
            break;
        memcpy (out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return out;
}

/* k8s_escape into a new string of the right size (caller frees): never cut. */
static char *
s_escape_dup (const char *name)
{
    size_t size = 3 * strlen (name ? name : "") + 1;
    char *out = orr_zalloc (size);
    return k8s_escape (name, out, size);
}

/* name itself when it is at most 63, else its first 52 bytes (trailing '-' dropped),
 * "---" and 8 hex digits of SHA-256 of the whole name. Caller frees. */
static char *
s_fit (const char *name)
{
    size_t len = strlen (name);
    if (len <= K8S_NAME_MAX)
        return orr_strdup (name);
    char digest[ORR_SHA256_HEX_LEN + 1];
    orr_sha256_hex (name, len, digest);
    size_t keep = K8S_CUT_LEN;
    while (keep > 0 && name[keep - 1] == '-')
        keep--;
    return orr_sprintf ("%.*s---%.*s", (int) keep, name, K8S_HASH_LEN, digest);
}

/* {user_server}: the escaped user, and "--" + the escaped server for a named server. */
static char *
s_user_server (const char *user, const char *server_name)
{
    char *u = s_escape_dup (user);
    if (!server_name || !*server_name)
        return u;
    char *s = s_escape_dup (server_name);
    char *both = orr_sprintf ("%s--%s", u, s);
    free (u);
    free (s);
    return both;
}

static char *
s_prefixed_name (const char *prefix, const char *user, const char *server_name)
{
    char *user_server = s_user_server (user, server_name);
    char *full = orr_sprintf ("%s%s", prefix, user_server);
    char *name = s_fit (full);
    free (full);
    free (user_server);
    return name;
}

char *
k8s_pod_name (const char *user, const char *server_name)
{
    return s_prefixed_name ("jupyter-", user, server_name);
}

char *
k8s_pvc_name (const char *user, const char *server_name)
{
    return s_prefixed_name ("claim-", user, server_name);
}

/* A label value for a name: the escaped name when it is a valid value (at most 63,
 * alphanumeric at both ends), else its alphanumeric-led cut with a hash. "" stays "". */
static char *
s_label_value (const char *name)
{
    char *escaped = s_escape_dup (name);
    size_t len = strlen (escaped);
    if (len == 0 || (len <= K8S_NAME_MAX && escaped[0] != '-'))
        return escaped; /* escapes end in a hex digit: the last byte is alphanumeric */
    char digest[ORR_SHA256_HEX_LEN + 1];
    orr_sha256_hex (escaped, len, digest);
    const char *start = escaped + strspn (escaped, "-");
    size_t keep = strlen (start) < K8S_CUT_LEN ? strlen (start) : K8S_CUT_LEN;
    while (keep > 0 && start[keep - 1] == '-')
        keep--;
    char *value = keep == 0 ? orr_sprintf ("%.*s", K8S_HASH_LEN, digest)
                            : orr_sprintf ("%.*s---%.*s", (int) keep, start, K8S_HASH_LEN, digest);
    free (escaped);
    return value;
}

/* --- quantities ----------------------------------------------------------------------- */

void
k8s_format_bytes (int64_t bytes, char *out, size_t outlen)
{
    static const char *const suffix[] = { "Ti", "Gi", "Mi", "Ki" };
    static const int shift[] = { 40, 30, 20, 10 };
    for (size_t i = 0; i < 4 && bytes > 0; i++) {
        int64_t unit = INT64_C (1) << shift[i];
        if (bytes % unit == 0) {
            snprintf (out, outlen, "%" PRId64 "%s", bytes / unit, suffix[i]);
            return;
        }
    }
    snprintf (out, outlen, "%" PRId64, bytes);
}

void
k8s_format_cpu (int64_t millis, char *out, size_t outlen)
{
    if (millis % 1000 == 0)
        snprintf (out, outlen, "%" PRId64, millis / 1000);
    else
        snprintf (out, outlen, "%" PRId64 "m", millis);
}

/* --- the objects ---------------------------------------------------------------------- */

/* The four labels every server object carries; component differs for pod and PVC. */
static json_t *
s_common_labels (const k8s_server_spec_t *spec, const char *component)
{
    char *user = s_label_value (spec->user);
    char *server = s_label_value (spec->server_name ? spec->server_name : "");
    json_t *labels = json_pack ("{s:s, s:s, s:s, s:s}", "app", "jupyterhub", "component", component,
                                K8S_LABEL_USERNAME, user, K8S_LABEL_SERVERNAME, server);
    free (user);
    free (server);
    return labels;
}

static json_t *
s_common_annotations (const k8s_server_spec_t *spec)
{
    return json_pack ("{s:s, s:s}", K8S_LABEL_USERNAME, spec->user, K8S_LABEL_SERVERNAME,
                      spec->server_name ? spec->server_name : "");
}

static json_t *
s_string_map (const spawner_labels_t *labels)
{
    json_t *map = json_object ();
    for (size_t i = 0; i < labels->count; i++)
        json_object_set_new (map, labels->items[i].key, json_string (labels->items[i].value));
    return map;
}

/* {"cpu": ..., "memory": ..., "nvidia.com/gpu": ...} with only what is set; NULL when nothing is. */
static json_t *
s_resource_map (const spawner_resources_t *r)
{
    char text[32];
    json_t *map = json_object ();
    if (r->cpu_millis) {
        k8s_format_cpu (r->cpu_millis, text, sizeof text);
        json_object_set_new (map, "cpu", json_string (text));
    }
    if (r->memory_bytes) {
        k8s_format_bytes (r->memory_bytes, text, sizeof text);
        json_object_set_new (map, "memory", json_string (text));
    }
    if (r->gpus) {
        snprintf (text, sizeof text, "%" PRId64, r->gpus);
        json_object_set_new (map, K8S_GPU_RESOURCE, json_string (text));
    }
    if (json_object_size (map) == 0) {
        json_decref (map);
        return NULL;
    }
    return map;
}

static json_t *
s_tolerations (const spawner_profile_t *p)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < p->ntolerations; i++) {
        const spawner_toleration_t *t = &p->tolerations[i];
        json_t *tol = json_pack ("{s:s}", "operator", t->operator_);
        if (*t->key)
            json_object_set_new (tol, "key", json_string (t->key));
        if (*t->value)
            json_object_set_new (tol, "value", json_string (t->value));
        if (*t->effect)
            json_object_set_new (tol, "effect", json_string (t->effect));
        json_array_append_new (list, tol);
    }
    return list;
}

/* The NFS sub-path with {username}, {servername} and {user_server} filled in (escaped
 * names, as KubeSpawner expands them). The template was checked at load. Caller frees. */
static char *
s_expand_sub_path (const char *tpl, const k8s_server_spec_t *spec)
{
    char *user = s_escape_dup (spec->user);
    char *server = s_escape_dup (spec->server_name ? spec->server_name : "");
    char *user_server = s_user_server (spec->user, spec->server_name);
    const struct {
        const char *name;
        const char *value;
    } vars[] = { { "{username}", user }, { "{servername}", server }, { "{user_server}", user_server } };
    size_t cap = strlen (tpl) + 1;
    for (const char *p = tpl; (p = strchr (p, '{')); p++)
        cap += strlen (user_server); /* the longest of the three */
    char *out = orr_zalloc (cap);
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        size_t i = 0;
        while (i < 3 && strncmp (p, vars[i].name, strlen (vars[i].name)) != 0)
            i++;
        if (*p == '{' && i < 3) {
            memcpy (out + n, vars[i].value, strlen (vars[i].value));
            n += strlen (vars[i].value);
            p += strlen (vars[i].name);
        }
        else
            out[n++] = *p++;
    }
    out[n] = '\0';
    free (user);
    free (server);
    free (user_server);
    return out;
}

/* JSON strings must be UTF-8: json_string refuses anything else. */
static bool
s_is_utf8 (const char *s)
{
    json_t *j = json_string (s ? s : "");
    json_decref (j);
    return j != NULL;
}

static int
s_check_spec (const k8s_server_spec_t *spec, char *err, size_t errlen)
{
    if (!spec || !spec->user || !*spec->user || !spec->profile) {
        s_fail (err, errlen, "a server needs a user name and a profile");
        return -1;
    }
    if (!s_is_utf8 (spec->user) || !s_is_utf8 (spec->server_name) || !s_is_utf8 (spec->node_name)) {
        s_fail (err, errlen, "the user, server or node name is not UTF-8");
        return -1;
    }
    for (size_t i = 0; i < spec->nenv; i++)
        if (!spec->env[i].name || !*spec->env[i].name || !s_is_utf8 (spec->env[i].name)
            || !s_is_utf8 (spec->env[i].value)) {
            s_fail (err, errlen, "environment variable %zu has no name, or is not UTF-8", i);
            return -1;
        }
    for (const char *const *a = spec->command; a && *a; a++)
        if (!s_is_utf8 (*a)) {
            s_fail (err, errlen, "the command is not UTF-8");
            return -1;
        }
    for (const char *const *a = spec->args; a && *a; a++)
        if (!s_is_utf8 (*a)) {
            s_fail (err, errlen, "an argument is not UTF-8");
            return -1;
        }
    return 0;
}

json_t *
k8s_pod_build (const k8s_server_spec_t *spec, char *err, size_t errlen)
{
    if (s_check_spec (spec, err, errlen) < 0)
        return NULL;
    const spawner_profile_t *p = spec->profile;
    const spawner_k8s_profile_t *k = &p->kubernetes;
    const char *image = *k->image ? k->image : spec->default_image;
    if (!image || !*image) {
        s_fail (err, errlen, "profile \"%s\" names no image and there is no default image (K8S_IMAGE)", p->slug);
        return NULL;
    }

    /* metadata */
    char *name = k8s_pod_name (spec->user, spec->server_name);
    json_t *labels = s_common_labels (spec, "singleuser-server");
    json_t *extra = s_string_map (&k->labels);
    json_object_update_missing (labels, extra); /* the profile never overrides the four */
    json_decref (extra);
    json_t *annotations = s_string_map (&k->annotations);
    json_t *common = s_common_annotations (spec);
    json_object_update (annotations, common);
    json_decref (common);
    json_t *metadata = json_pack ("{s:s, s:o, s:o}", "name", name, "labels", labels, "annotations", annotations);
    free (name);

    /* the container */
    json_t *container = json_pack ("{s:s, s:s, s:[{s:s, s:i, s:s}]}", "name", K8S_CONTAINER_NAME, "image", image,
                                   "ports", "name", "notebook-port", "containerPort", K8S_NOTEBOOK_PORT, "protocol", "TCP");
    if (*k->image_pull_policy)
        json_object_set_new (container, "imagePullPolicy", json_string (k->image_pull_policy));
    json_t *args = json_array ();
    for (const char *const *a = spec->command; a && *a; a++)
        json_array_append_new (args, json_string (*a));
    for (const char *const *a = spec->args; a && *a; a++)
        json_array_append_new (args, json_string (*a));
    if (json_array_size (args))
        json_object_set (container, "args", args);
    json_decref (args);
    json_t *env = json_array ();
    for (size_t i = 0; i < spec->nenv; i++) {
        json_array_append_new (env, json_pack ("{s:s, s:s}", "name", spec->env[i].name, "value",
                                               spec->env[i].value ? spec->env[i].value : ""));
    }
    if (json_array_size (env))
        json_object_set (container, "env", env);
    json_decref (env);
    json_t *resources = json_object ();
    json_t *requests = s_resource_map (&p->guarantees);
    json_t *limits = s_resource_map (&p->limits);
    if (requests)
        json_object_set_new (resources, "requests", requests);
    if (limits)
        json_object_set_new (resources, "limits", limits);
    if (json_object_size (resources))
        json_object_set (container, "resources", resources);
    json_decref (resources);

    /* the pod's spec */
    json_t *pod_spec = json_pack ("{s:s, s:[o]}", "restartPolicy", "Never", "containers", container);
    if (spec->node_name && *spec->node_name)
        json_object_set_new (pod_spec, "nodeName", json_string (spec->node_name));
    if (p->node_selector.count)
        json_object_set_new (pod_spec, "nodeSelector", s_string_map (&p->node_selector));
    if (p->ntolerations)
        json_object_set_new (pod_spec, "tolerations", s_tolerations (p));
    json_t *security = json_object ();
    if (k->uid >= 0)
        json_object_set_new (security, "runAsUser", json_integer (k->uid));
    if (k->gid >= 0)
        json_object_set_new (security, "runAsGroup", json_integer (k->gid));
    if (k->fs_gid >= 0)
        json_object_set_new (security, "fsGroup", json_integer (k->fs_gid));
    if (json_object_size (security))
        json_object_set (pod_spec, "securityContext", security);
    json_decref (security);
    if (*k->service_account)
        json_object_set_new (pod_spec, "serviceAccountName", json_string (k->service_account));
    else
        json_object_set_new (pod_spec, "automountServiceAccountToken", json_false ());

    /* home */
    const spawner_storage_t *st = &k->storage;
    if (st->type == SPAWNER_STORAGE_PVC) {
        char *claim = k8s_pvc_name (spec->user, spec->server_name);
        json_object_set_new (pod_spec, "volumes",
                             json_pack ("[{s:s, s:{s:s}}]", "name", K8S_HOME_VOLUME, "persistentVolumeClaim", "claimName", claim));
        json_object_set_new (container, "volumeMounts",
                             json_pack ("[{s:s, s:s}]", "name", K8S_HOME_VOLUME, "mountPath", K8S_HOME_MOUNT));
        free (claim);
    }
    else if (st->type == SPAWNER_STORAGE_NFS) {
        char *sub_path = s_expand_sub_path (st->sub_path, spec);
        json_object_set_new (pod_spec, "volumes",
                             json_pack ("[{s:s, s:{s:s, s:s}}]", "name", K8S_HOME_VOLUME, "nfs", "server", st->server,
                                        "path", st->path));
        json_object_set_new (container, "volumeMounts",
                             json_pack ("[{s:s, s:s, s:s}]", "name", K8S_HOME_VOLUME, "mountPath", K8S_HOME_MOUNT,
                                        "subPath", sub_path));
        free (sub_path);
    }
    return json_pack ("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata", metadata, "spec", pod_spec);
}

json_t *
k8s_pvc_build (const k8s_server_spec_t *spec, char *err, size_t errlen)
{
    if (s_check_spec (spec, err, errlen) < 0)
        return NULL;
    const spawner_storage_t *st = &spec->profile->kubernetes.storage;
    if (st->type != SPAWNER_STORAGE_PVC) {
        s_fail (err, errlen, "profile \"%s\" has no PVC storage", spec->profile->slug);
        return NULL;
    }
    char *name = k8s_pvc_name (spec->user, spec->server_name);
    char capacity[32];
    k8s_format_bytes (st->capacity_bytes, capacity, sizeof capacity);
    json_t *modes = json_array ();
    for (size_t i = 0; i < st->naccess_modes; i++)
        json_array_append_new (modes, json_string (st->access_modes[i]));
    json_t *pvc_spec = json_pack ("{s:o, s:{s:{s:s}}}", "accessModes", modes, "resources", "requests", "storage", capacity);
    if (*st->storage_class)
        json_object_set_new (pvc_spec, "storageClassName", json_string (st->storage_class));
    json_t *pvc = json_pack ("{s:s, s:s, s:{s:s, s:o, s:o}, s:o}", "apiVersion", "v1", "kind", "PersistentVolumeClaim",
                             "metadata", "name", name, "labels", s_common_labels (spec, "singleuser-storage"),
                             "annotations", s_common_annotations (spec), "spec", pvc_spec);
    free (name);
    return pvc;
}
