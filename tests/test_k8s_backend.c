/*  test_k8s_backend: the Kubernetes backend (services/spawner/k8s_*.c) against a FAKE API.
 *
 *  No Kubernetes cluster can run on the test machines, so the API calls go to
 *  tests/fixtures/k8s_fake_api/fake_k8s_api.py: a small Python stand-in that follows the
 *  documented API behaviour for what the backend uses (its header lists what it does not
 *  emulate). Passing here shows the backend speaks that documented behaviour; it does not
 *  show a real cluster accepts our pods (docs/kubernetes.md says how to check that).
 *
 *  What is checked:
 *  - names (KubeSpawner's escaping, the 63-byte cut with a hash), quantities;
 *  - the Pod and PVC of each example profile equal tests/k8s_expected/<profile>.json,
 *    compared structurally (both parsed, json_equal), hand-written from the rules;
 *  - pod state as read from hand-made pod objects (waiting, OOMKilled, evicted);
 *  - configuration: in-cluster environment, files, errors, token rotation;
 *  - against the fake: PVC + pod created, the watch reports Pending then Running with the
 *    IP and Ready, delete reports terminating then DELETED; re-creating is "exists";
 *    deleting twice is "not found"; a failed container is reported with its reason; a
 *    watch whose resourceVersion is compacted away (410, as an ERROR event and as an HTTP
 *    status) lists again and reports the pod lost in the gap as deleted; a wrong token
 *    gives a clear 401 error from calls and from the watch; a missing namespace is 404;
 *    https with the service account's CA file (when openssl is installed).
 */
#include "k8s_client.h"
#include "k8s_config.h"
#include "k8s_objects.h"
#include "k8s_watch.h"
#include "spawner_profile.h"
#include "testutil.h"

#include "orr_http.h"
#include "orr_util.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "test-token-0123456789"
#define NAMESPACE "jupyter"

static const char *s_profiles_json =
    "[{\"slug\":\"small\",\"display_name\":\"Small\",\"description\":\"PVC home\",\"default\":true,"
    "  \"cpu_guarantee\":0.5,\"cpu_limit\":1,\"mem_guarantee\":\"512M\",\"mem_limit\":\"1G\",\"gpus\":0,"
    "  \"pids_limit\":512,\"scheduling_profile\":\"spread\",\"node_selector\":{\"zone\":\"a\"},"
    "  \"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"user\",\"effect\":\"NoSchedule\"}],"
    "  \"kubernetes\":{\"image\":\"debian-jupyter:latest\",\"image_pull_policy\":\"IfNotPresent\",\"uid\":1000,"
    "     \"gid\":100,\"fs_gid\":100,\"labels\":{\"team\":\"physics\"},\"annotations\":{\"orrery.example/owner\":\"ops\"},"
    "     \"service_account\":\"\",\"storage\":{\"type\":\"pvc\",\"capacity\":\"10Gi\",\"storage_class\":\"standard\","
    "     \"access_modes\":[\"ReadWriteOnce\"]}}},"
    " {\"slug\":\"shared\",\"display_name\":\"Shared NFS home\",\"cpu_guarantee\":\"250m\",\"mem_guarantee\":\"1G\","
    "  \"mem_limit\":\"2G\",\"kubernetes\":{\"image\":\"debian-jupyter:latest\",\"uid\":1000,\"fs_gid\":100,"
    "     \"storage\":{\"type\":\"nfs\",\"server\":\"10.0.0.5\",\"path\":\"/export/home\",\"sub_path\":\"{username}\"}}},"
    " {\"slug\":\"scratch\",\"display_name\":\"No storage\",\"kubernetes\":{\"storage\":{\"type\":\"none\"}}},"
    " {\"slug\":\"gpu\",\"display_name\":\"One GPU\",\"cpu_guarantee\":2,\"cpu_limit\":4,\"mem_guarantee\":\"8G\","
    "  \"mem_limit\":\"16G\",\"gpus\":1,\"node_selector\":{\"accelerator\":\"nvidia\"},"
    "  \"tolerations\":[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],"
    "  \"kubernetes\":{\"image\":\"debian-jupyter-cuda:12\",\"service_account\":\"gpu-user\","
    "     \"storage\":{\"type\":\"pvc\",\"capacity\":\"50G\",\"access_modes\":[\"ReadWriteOnce\"]}}}]";

/* --- the server's environment, as the spawner will make it -------------------------- */

typedef struct {
    k8s_env_var_t vars[16];
    char *owned[16];
    size_t count;
} env_list_t;

static void
s_env_add (void *ctx, const char *name, const char *value)
{
    env_list_t *env = ctx;
    CHECK (env->count < 16, "too many variables");
    env->owned[env->count] = orr_sprintf ("%s", value);
    env->vars[env->count].name = name; /* names are literals here and in spawner_profile_env */
    env->vars[env->count].value = env->owned[env->count];
    env->count++;
}

static void
s_env_build (env_list_t *env, const char *user, const char *server_name, const spawner_profile_t *profile)
{
    memset (env, 0, sizeof *env);
    char *quser = k8s_query_escape (user);
    char *qserver = k8s_query_escape (server_name);
    char *prefix = *server_name ? orr_sprintf ("/user/%s/%s/", quser, qserver) : orr_sprintf ("/user/%s/", quser);
    char *url = orr_sprintf ("http://0.0.0.0:%d%s", K8S_NOTEBOOK_PORT, prefix);
    s_env_add (env, "JUPYTERHUB_USER", user);
    s_env_add (env, "JUPYTERHUB_SERVER_NAME", server_name);
    s_env_add (env, "JUPYTERHUB_SERVICE_PREFIX", prefix);
    s_env_add (env, "JUPYTERHUB_SERVICE_URL", url);
    spawner_profile_env (profile, s_env_add, env);
    free (quser);
    free (qserver);
    free (prefix);
    free (url);
}

static void
s_env_clear (env_list_t *env)
{
    for (size_t i = 0; i < env->count; i++)
        free (env->owned[i]);
    env->count = 0;
}

static const char *const s_command[] = { "jupyterhub-singleuser", NULL };

/* --- names and quantities ------------------------------------------------------------- */

static void
test_names (void)
{
    char out[256];
    CHECK_EQ_STR (k8s_escape ("alice", out, sizeof out), "alice");
    CHECK_EQ_STR (k8s_escape ("Alice", out, sizeof out), "-41lice");          /* 'A' is 0x41 */
    CHECK_EQ_STR (k8s_escape ("bob.smith", out, sizeof out), "bob-2esmith");
    CHECK_EQ_STR (k8s_escape ("user@example.com", out, sizeof out), "user-40example-2ecom");
    CHECK_EQ_STR (k8s_escape ("a-b", out, sizeof out), "a-2db");              /* '-' is the escape: escaped */
    CHECK_EQ_STR (k8s_escape ("\xc3\xa9", out, sizeof out), "-c3-a9");        /* é, byte by byte */
    CHECK_EQ_STR (k8s_escape ("\t", out, sizeof out), "-9");                  /* '%X': no leading zero */
    CHECK_EQ_STR (k8s_escape ("My Server", out, sizeof out), "-4dy-20-53erver");
    CHECK_EQ_STR (k8s_escape ("alice", out, 4), "ali");                        /* cut, NUL-terminated */

    char *name = k8s_pod_name ("alice", "");
    CHECK_EQ_STR (name, "jupyter-alice");
    free (name);
    name = k8s_pod_name ("alice", NULL);
    CHECK_EQ_STR (name, "jupyter-alice");
    free (name);
    name = k8s_pod_name ("alice", "My Server");
    CHECK_EQ_STR (name, "jupyter-alice---4dy-20-53erver");
    free (name);
    name = k8s_pvc_name ("alice", "gpu");
    CHECK_EQ_STR (name, "claim-alice--gpu");
    free (name);
    /* 78 bytes: the first 52, "---", 8 hex of sha256("jupyter-" + 70 a), by python3 hashlib */
    char user[71];
    memset (user, 'a', 70);
    user[70] = '\0';
    name = k8s_pod_name (user, "");
    CHECK_EQ_STR (name, "jupyter-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa---a6be0daa");
    CHECK_EQ_INT (strlen (name), 63);
    free (name);
    name = k8s_pvc_name (user, "");
    CHECK_EQ_STR (name, "claim-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa---c8d0af01");
    free (name);
    /* a very long name is hashed whole, never cut first */
    char *huge = malloc (2001);
    memset (huge, 'a', 2000);
    huge[2000] = '\0';
    name = k8s_pod_name (huge, "");
    CHECK_EQ_STR (name, "jupyter-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa---4a0003b1");
    free (name);

    /* a label value must start alphanumeric: "Alice" → "-41lice" → hashed */
    char err[256];
    spawner_profiles_t *profiles = spawner_profiles_new (NULL, err, sizeof err);
    k8s_server_spec_t spec = { .user = "Alice", .server_name = "", .profile = spawner_profiles_find (profiles, NULL),
                               .default_image = "img" };
    json_t *pod = k8s_pod_build (&spec, err, sizeof err);
    CHECK (pod, "%s", err);
    json_t *labels = json_object_get (json_object_get (pod, "metadata"), "labels");
    CHECK_EQ_STR (json_string_value (json_object_get (labels, K8S_LABEL_USERNAME)), "41lice---d0c489f5");
    CHECK_EQ_STR (json_string_value (json_object_get (json_object_get (pod, "metadata"), "name")), "jupyter--41lice");
    json_decref (pod);
    spec.user = huge;
    pod = k8s_pod_build (&spec, err, sizeof err);
    CHECK (pod, "%s", err);
    json_decref (pod);
    free (huge);
    spec.user = "\xff\xfe";
    CHECK (k8s_pod_build (&spec, err, sizeof err) == NULL, "a user name that is not UTF-8");
    CHECK (strstr (err, "not UTF-8"), "%s", err);
    spec.user = "Alice";
    k8s_env_var_t bad_env[] = { { "OK", "yes" }, { "BAD", "\xc3" } };
    spec.env = bad_env;
    spec.nenv = 2;
    CHECK (k8s_pod_build (&spec, err, sizeof err) == NULL, "an env value that is not UTF-8");
    CHECK (strstr (err, "environment variable 1"), "%s", err);
    bad_env[1].name = "";
    CHECK (k8s_pod_build (&spec, err, sizeof err) == NULL, "a nameless env variable");
    spec.env = NULL;
    spec.nenv = 0;
    spec.profile = NULL;
    CHECK (k8s_pod_build (&spec, err, sizeof err) == NULL, "no profile");
    CHECK (strstr (err, "a server needs a user name and a profile"), "%s", err);
    spec.profile = spawner_profiles_find (profiles, NULL);
    spec.default_image = NULL;
    CHECK (k8s_pod_build (&spec, err, sizeof err) == NULL, "no image");
    CHECK (strstr (err, "names no image"), "%s", err);
    CHECK (k8s_pvc_build (&spec, err, sizeof err) == NULL, "no PVC storage");
    CHECK (strstr (err, "has no PVC storage"), "%s", err);
    spawner_profiles_destroy (&profiles);

    char q[32];
    k8s_format_bytes (1024, q, sizeof q);
    CHECK_EQ_STR (q, "1Ki");
    k8s_format_bytes (1000, q, sizeof q);
    CHECK_EQ_STR (q, "1000");
    k8s_format_bytes (1536LL << 20, q, sizeof q);
    CHECK_EQ_STR (q, "1536Mi");
    k8s_format_bytes (3LL << 40, q, sizeof q);
    CHECK_EQ_STR (q, "3Ti");
    k8s_format_cpu (1500, q, sizeof q);
    CHECK_EQ_STR (q, "1500m");
    k8s_format_cpu (2000, q, sizeof q);
    CHECK_EQ_STR (q, "2");
    k8s_format_cpu (1, q, sizeof q);
    CHECK_EQ_STR (q, "1m");
}

/* --- golden objects ------------------------------------------------------------------- */

static json_t *
s_load (const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    CHECK (doc, "%s: %s (line %d)", path, jerr.text, jerr.line);
    return doc;
}

static void
s_expect_equal (json_t *expected, json_t *actual, const char *what)
{
    if (json_equal (expected, actual))
        return;
    char *e = json_dumps (expected, JSON_INDENT (2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *a = json_dumps (actual, JSON_INDENT (2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fprintf (stderr, "--- expected %s\n%s\n--- built\n%s\n", what, e, a);
    free (e);
    free (a);
    CHECK (0, "%s differs from its golden file", what);
}

static void
test_golden (void)
{
    char err[512];
    spawner_profiles_t *profiles = spawner_profiles_new (s_profiles_json, err, sizeof err);
    CHECK (profiles, "%s", err);
    const char *names[] = { "small", "shared", "scratch", "gpu" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = orr_sprintf ("%s/%s.json", K8S_EXPECTED_DIR, names[i]);
        json_t *golden = s_load (path);
        const spawner_profile_t *profile = spawner_profiles_find (profiles, json_string_value (json_object_get (golden, "profile")));
        CHECK (profile, "%s: profile", path);
        json_t *server = json_object_get (golden, "server");
        const char *user = json_string_value (json_object_get (server, "user"));
        const char *server_name = json_string_value (json_object_get (server, "server_name"));
        const char *args[4] = { NULL };
        size_t n = 0;
        json_t *a;
        size_t j;
        json_array_foreach (json_object_get (server, "args"), j, a)
            args[n++] = json_string_value (a);
        env_list_t env;
        s_env_build (&env, user, server_name, profile);
        k8s_server_spec_t spec = {
            .user = user,
            .server_name = server_name,
            .profile = profile,
            .node_name = json_string_value (json_object_get (server, "node")),
            .env = env.vars,
            .nenv = env.count,
            .command = s_command,
            .args = n ? args : NULL,
            .default_image = "jupyterhub/singleuser:3.0",
        };
        json_t *pod = k8s_pod_build (&spec, err, sizeof err);
        CHECK (pod, "%s: %s", names[i], err);
        char *what = orr_sprintf ("%s: pod", path);
        s_expect_equal (json_object_get (golden, "pod"), pod, what);
        free (what);
        json_t *pvc = k8s_pvc_build (&spec, err, sizeof err);
        if (json_is_null (json_object_get (golden, "pvc")))
            CHECK (pvc == NULL, "%s: a PVC for a profile without PVC storage", names[i]);
        else {
            CHECK (pvc, "%s: %s", names[i], err);
            what = orr_sprintf ("%s: pvc", path);
            s_expect_equal (json_object_get (golden, "pvc"), pvc, what);
            free (what);
            /* the pod mounts the claim the PVC is */
            json_t *vol = json_array_get (json_object_get (json_object_get (pod, "spec"), "volumes"), 0);
            CHECK_EQ_STR (json_string_value (json_object_get (json_object_get (vol, "persistentVolumeClaim"), "claimName")),
                          json_string_value (json_object_get (json_object_get (pvc, "metadata"), "name")));
        }
        json_decref (pvc);
        json_decref (pod);
        s_env_clear (&env);
        json_decref (golden);
        free (path);
    }
    spawner_profiles_destroy (&profiles);
}

/* --- pod state from objects ----------------------------------------------------------- */

static void
test_pod_state (void)
{
    char reason[256];
    k8s_pod_state_t s;
    json_t *pod = json_loads (
        "{\"metadata\":{\"name\":\"jupyter-alice\",\"uid\":\"u-1\",\"resourceVersion\":\"7\",\"annotations\":{\"hub.jupyter.org/username\":"
        "\"alice\",\"hub.jupyter.org/servername\":\"\"}},\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Pending\","
        "\"containerStatuses\":[{\"name\":\"notebook\",\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\",\"message\":"
        "\"pull access denied\"}}}]}}",
        0, NULL);
    k8s_pod_state_from (pod, &s, reason, sizeof reason);
    CHECK_EQ_STR (s.name, "jupyter-alice");
    CHECK_EQ_STR (s.uid, "u-1");
    CHECK_EQ_STR (s.username, "alice");
    CHECK_EQ_STR (s.servername, "");
    CHECK_EQ_INT (s.phase, K8S_PHASE_PENDING);
    CHECK (!s.ready && !s.terminating, "not ready, not terminating");
    CHECK_EQ_STR (s.pod_ip, "");
    CHECK_EQ_STR (s.node_name, "n1");
    CHECK_EQ_STR (s.reason, "ErrImagePull: pull access denied");
    CHECK_EQ_STR (s.resource_version, "7");
    json_decref (pod);

    pod = json_loads ("{\"metadata\":{\"name\":\"p\",\"deletionTimestamp\":\"2024-01-01T00:00:00Z\"},\"status\":{\"phase\":"
                      "\"Failed\",\"podIP\":\"10.0.0.9\",\"containerStatuses\":[{\"name\":\"other\",\"state\":{}},{\"name\":"
                      "\"notebook\",\"state\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}}}]}}",
                      0, NULL);
    k8s_pod_state_from (pod, &s, reason, sizeof reason);
    CHECK_EQ_INT (s.phase, K8S_PHASE_FAILED);
    CHECK (s.terminating, "deletionTimestamp");
    CHECK_EQ_STR (s.reason, "OOMKilled (exit 137)");
    json_decref (pod);

    pod = json_loads ("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\",\"message\":"
                      "\"The node was low on resource: memory.\"}}",
                      0, NULL);
    k8s_pod_state_from (pod, &s, reason, sizeof reason);
    CHECK_EQ_STR (s.reason, "Evicted: The node was low on resource: memory.");
    json_decref (pod);

    pod = json_loads ("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\","
                      "\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\"},{\"type\":\"Ready\",\"status\":"
                      "\"True\"}]}}",
                      0, NULL);
    k8s_pod_state_from (pod, &s, reason, sizeof reason);
    CHECK_EQ_INT (s.phase, K8S_PHASE_RUNNING);
    CHECK (s.ready, "Ready True");
    CHECK_EQ_STR (s.pod_ip, "10.1.2.3");
    CHECK_EQ_STR (s.reason, "");
    json_decref (pod);

    pod = json_loads ("{\"metadata\":{\"name\":\"p\"},\"status\":{\"phase\":\"Pending\",\"conditions\":[{\"type\":"
                      "\"PodScheduled\",\"status\":\"False\",\"reason\":\"Unschedulable\",\"message\":\"0/3 nodes\"}]}}",
                      0, NULL);
    k8s_pod_state_from (pod, &s, reason, sizeof reason);
    CHECK_EQ_STR (s.reason, "Unschedulable: 0/3 nodes");
    json_decref (pod);
    CHECK_EQ_STR (k8s_phase_name (K8S_PHASE_DELETED), "Deleted");
}

/* --- configuration -------------------------------------------------------------------- */

static void
s_write (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    CHECK (f, "%s", path);
    fputs (text, f);
    fclose (f);
}

static void
test_config (const char *dir)
{
    char err[512];
    char *token_file = orr_sprintf ("%s/token", dir);
    char *ns_file = orr_sprintf ("%s/namespace", dir);
    s_write (token_file, "first-token\n");
    s_write (ns_file, NAMESPACE "\n");

    unsetenv ("KUBERNETES_SERVICE_HOST");
    unsetenv ("KUBERNETES_SERVICE_PORT");
    k8s_config_options_t o = { .token_file = token_file, .ca_file = "", .namespace_file = ns_file };
    CHECK (k8s_config_new (&o, err, sizeof err) == NULL, "no API server anywhere");
    CHECK (strstr (err, "not in a Kubernetes cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset"),
           "%s", err);

    setenv ("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv ("KUBERNETES_SERVICE_PORT", "443", 1);
    k8s_config_t *config = k8s_config_new (&o, err, sizeof err);
    CHECK (config, "%s", err);
    CHECK_EQ_STR (k8s_config_api_url (config), "https://10.96.0.1:443");
    CHECK_EQ_STR (k8s_config_namespace (config), NAMESPACE);
    CHECK (k8s_config_ca_file (config) == NULL, "system CAs");
    CHECK_EQ_STR (k8s_config_image (config), "jupyterhub/singleuser:3.0");
    CHECK_EQ_INT (k8s_config_timeout_ms (config), 10000);
    CHECK_EQ_INT (k8s_config_watch_timeout_s (config), 300);
    char header[K8S_AUTH_HEADER_MAX];
    CHECK (k8s_config_auth_header (config, header, sizeof header, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR (header, "Authorization: Bearer first-token");
    /* the kubelet rotates the token: the new file is read at the next call */
    s_write (token_file, "second-token-longer\n");
    CHECK (k8s_config_auth_header (config, header, sizeof header, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR (header, "Authorization: Bearer second-token-longer");
    /* a token file that disappears: an error, and the last good token */
    char *moved = orr_sprintf ("%s/token.moved", dir);
    CHECK (rename (token_file, moved) == 0, "rename");
    CHECK (k8s_config_auth_header (config, header, sizeof header, err, sizeof err) < 0, "missing token file");
    CHECK (strstr (err, "K8S_TOKEN_FILE"), "%s", err);
    CHECK_EQ_STR (header, "Authorization: Bearer second-token-longer");
    CHECK (rename (moved, token_file) == 0, "rename back");
    free (moved);
    k8s_config_destroy (&config);
    CHECK (config == NULL, "destroy NULLs");

    setenv ("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    config = k8s_config_new (&o, err, sizeof err);
    CHECK (config, "%s", err);
    CHECK_EQ_STR (k8s_config_api_url (config), "https://[fd00::1]:443");
    k8s_config_destroy (&config);
    unsetenv ("KUBERNETES_SERVICE_HOST");
    unsetenv ("KUBERNETES_SERVICE_PORT");

    const struct {
        k8s_config_options_t o;
        const char *why;
    } bad[] = {
        { { .api_url = "ftp://x", .token_file = "", .ca_file = "", .namespace_ = "a" }, "K8S_API_URL \"ftp://x\"" },
        { { .api_url = "http://x", .token_file = "", .ca_file = "", .namespace_ = "Bad_NS" }, "namespace \"Bad_NS\" is not a DNS label" },
        { { .api_url = "http://x", .token_file = "", .ca_file = "", .namespace_file = "/nonexistent/ns" },
          "K8S_NAMESPACE is unset and K8S_NAMESPACE_FILE cannot be read: /nonexistent/ns" },
        { { .api_url = "http://x", .token_file = "/nonexistent/token", .ca_file = "", .namespace_ = "a" },
          "K8S_TOKEN_FILE: /nonexistent/token: No such file or directory" },
        { { .api_url = "https://x", .token_file = "", .ca_file = "/nonexistent/ca.crt", .namespace_ = "a" },
          "K8S_CA_FILE /nonexistent/ca.crt: No such file or directory (set it empty to trust the system's CAs)" },
        { { .api_url = "http://x", .token_file = "", .ca_file = "", .namespace_ = "a", .timeout_ms = 5 },
          "K8S_TIMEOUT_MS 5: from 100 to 300000" },
        { { .api_url = "http://x", .token_file = "", .ca_file = "", .namespace_ = "a", .watch_timeout_s = 1 },
          "K8S_WATCH_TIMEOUT_S 1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK (k8s_config_new (&bad[i].o, err, sizeof err) == NULL, "bad config %zu accepted", i);
        CHECK (strstr (err, bad[i].why), "%zu: \"%s\" lacks \"%s\"", i, err, bad[i].why);
    }
    /* an empty token file is refused at start */
    s_write (token_file, "\n");
    k8s_config_options_t empty = { .api_url = "http://x/", .token_file = token_file, .ca_file = "", .namespace_ = "a" };
    CHECK (k8s_config_new (&empty, err, sizeof err) == NULL, "empty token");
    CHECK (strstr (err, "empty, or not a token"), "%s", err);
    /* the trailing slash of a URL goes */
    empty.token_file = "";
    config = k8s_config_new (&empty, err, sizeof err);
    CHECK (config, "%s", err);
    CHECK_EQ_STR (k8s_config_api_url (config), "http://x");
    CHECK (k8s_config_auth_header (config, header, sizeof header, err, sizeof err) == 0 && !header[0], "no token");
    k8s_config_destroy (&config);
    free (token_file);
    free (ns_file);
}

/* --- the fake API server -------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char url[64];
} fake_api_t;

static void
s_fake_start (fake_api_t *fake, const char *dir, const char *tag, const char *cert, const char *key)
{
    fake->port = orr_free_port ();
    CHECK (fake->port > 0, "free port");
    char port[16];
    snprintf (port, sizeof port, "%d", fake->port);
    char *log = orr_sprintf ("%s/fake-%s.log", dir, tag);
    const char *argv[20] = { "/usr/bin/python3", K8S_FAKE_API, "--port", port, "--token", TOKEN, "--namespace",
                             NAMESPACE, "--namespace", "default", "--run-delay-ms", "300" };
    size_t n = 12;
    if (cert) {
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    argv[n] = NULL;
    fake->pid = tu_spawn ((char *const *) argv, NULL, log);
    free (log);
    CHECK (tu_wait_port (fake->port, 10000) == 0, "the fake API server did not listen on %d", fake->port);
    snprintf (fake->url, sizeof fake->url, "%s://127.0.0.1:%d", cert ? "https" : "http", fake->port);
}

static void
s_fake_stop (fake_api_t *fake)
{
    if (fake->pid > 0)
        tu_stop (fake->pid, SIGTERM, 3000);
    fake->pid = 0;
}

/* POSTs a control request to the fake; returns its JSON answer (caller owns). */
static json_t *
s_fake_control (fake_api_t *fake, const char *method, const char *path, const char *body_json)
{
    orr_http_t *http = orr_http_new ();
    char *url = orr_sprintf ("%s%s", fake->url, path);
    json_t *body = body_json ? json_loads (body_json, 0, NULL) : NULL;
    char err[256];
    long status = 0;
    json_t *reply = orr_http_json (http, method, url, NULL, body, 5000, &status, err, sizeof err);
    CHECK (reply && status == 200, "%s %s: %ld %s", method, path, status, reply ? "" : err);
    json_decref (body);
    free (url);
    orr_http_destroy (&http);
    return reply;
}

static int
s_fake_count (fake_api_t *fake, const char *what)
{
    json_t *stats = s_fake_control (fake, "GET", "/_fake/stats", NULL);
    int n = (int) json_integer_value (json_object_get (json_object_get (stats, "requests"), what));
    json_decref (stats);
    return n;
}

static k8s_config_t *
s_config_for (fake_api_t *fake, const char *dir, const char *token, const char *ca_file, const char *ns)
{
    char *token_file = orr_sprintf ("%s/token-%s", dir, token);
    s_write (token_file, token);
    k8s_config_options_t o = { .api_url = fake->url, .token_file = token_file, .ca_file = ca_file ? ca_file : "",
                               .namespace_ = ns ? ns : NAMESPACE, .timeout_ms = 5000, .watch_timeout_s = 30 };
    char err[512];
    k8s_config_t *config = k8s_config_new (&o, err, sizeof err);
    CHECK (config, "%s", err);
    free (token_file);
    return config;
}

/* Everything a watch reported, for the test thread to wait on. */
typedef struct {
    k8s_watch_event_kind_t kind;
    char name[80];
    k8s_phase_t phase;
    bool ready;
    bool terminating;
    char ip[64];
    char reason[256];
    char username[64];
    k8s_result_t result;
    char error[512];
} seen_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    seen_t items[512];
    size_t count;
} recorder_t;

static void
s_record (void *ctx, const k8s_watch_event_t *ev)
{
    recorder_t *rec = ctx;
    pthread_mutex_lock (&rec->lock);
    if (rec->count < sizeof rec->items / sizeof rec->items[0]) {
        seen_t *s = &rec->items[rec->count++];
        memset (s, 0, sizeof *s);
        s->kind = ev->kind;
        s->result = ev->result;
        if (ev->error)
            snprintf (s->error, sizeof s->error, "%s", ev->error);
        if (ev->pod) {
            snprintf (s->name, sizeof s->name, "%s", ev->pod->name);
            s->phase = ev->pod->phase;
            s->ready = ev->pod->ready;
            s->terminating = ev->pod->terminating;
            snprintf (s->ip, sizeof s->ip, "%s", ev->pod->pod_ip);
            snprintf (s->reason, sizeof s->reason, "%s", ev->pod->reason);
            snprintf (s->username, sizeof s->username, "%s", ev->pod->username);
        }
    }
    pthread_cond_broadcast (&rec->changed);
    pthread_mutex_unlock (&rec->lock);
}

typedef bool (seen_match_fn) (const seen_t *s, const void *arg);

/* Waits until an item from index `from` on matches; returns its index, or -1 on timeout. */
static long
s_wait (recorder_t *rec, size_t from, seen_match_fn *match, const void *arg, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    pthread_mutex_lock (&rec->lock);
    long found = -1;
    for (size_t i = from;; ) {
        for (; i < rec->count; i++)
            if (match (&rec->items[i], arg)) {
                found = (long) i;
                goto out;
            }
        int64_t left = deadline - orr_mono_ms ();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        ts.tv_nsec += (left > 100 ? 100 : left) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&rec->changed, &rec->lock, &ts);
    }
out:
    pthread_mutex_unlock (&rec->lock);
    return found;
}

typedef struct {
    const char *name;
    k8s_phase_t phase;
    bool want_ready;
    bool want_terminating;
} pod_want_t;

static bool
s_match_pod (const seen_t *s, const void *arg)
{
    const pod_want_t *w = arg;
    return s->kind == K8S_WATCH_POD && strcmp (s->name, w->name) == 0 && s->phase == w->phase
           && (!w->want_ready || (s->ready && s->ip[0])) && (!w->want_terminating || s->terminating);
}

static bool
s_match_kind (const seen_t *s, const void *arg)
{
    return s->kind == *(const k8s_watch_event_kind_t *) arg;
}

static size_t
s_count (recorder_t *rec)
{
    pthread_mutex_lock (&rec->lock);
    size_t n = rec->count;
    pthread_mutex_unlock (&rec->lock);
    return n;
}

static void
s_dump (recorder_t *rec)
{
    pthread_mutex_lock (&rec->lock);
    for (size_t i = 0; i < rec->count; i++) {
        const seen_t *s = &rec->items[i];
        fprintf (stderr, "  [%zu] kind %d %s %s ready=%d term=%d ip=%s reason=%s %s\n", i, s->kind, s->name,
                 k8s_phase_name (s->phase), s->ready, s->terminating, s->ip, s->reason, s->error);
    }
    pthread_mutex_unlock (&rec->lock);
}

static long
s_wait_pod (recorder_t *rec, size_t from, const char *name, k8s_phase_t phase, bool ready, bool terminating)
{
    pod_want_t want = { name, phase, ready, terminating };
    long i = s_wait (rec, from, s_match_pod, &want, 10000);
    if (i < 0) {
        s_dump (rec);
        CHECK (0, "no report of %s %s%s%s", name, k8s_phase_name (phase), ready ? " ready" : "",
               terminating ? " terminating" : "");
    }
    return i;
}

/* A server's objects for the scratch/small profiles, as the backend will create them. */
static json_t *
s_pod_for (const spawner_profiles_t *profiles, const char *slug, const char *user, const char *server_name)
{
    char err[256];
    const spawner_profile_t *profile = spawner_profiles_find (profiles, slug);
    env_list_t env;
    s_env_build (&env, user, server_name, profile);
    k8s_server_spec_t spec = { .user = user, .server_name = server_name, .profile = profile, .node_name = "fake-node-1",
                               .env = env.vars, .nenv = env.count, .command = s_command,
                               .default_image = "jupyterhub/singleuser:3.0" };
    json_t *pod = k8s_pod_build (&spec, err, sizeof err);
    CHECK (pod, "%s", err);
    s_env_clear (&env);
    return pod;
}

static void
test_against_fake (const char *dir)
{
    char err[1024];
    fake_api_t fake = { 0 };
    s_fake_start (&fake, dir, "main", NULL, NULL);
    spawner_profiles_t *profiles = spawner_profiles_new (s_profiles_json, err, sizeof err);
    CHECK (profiles, "%s", err);

    /* --- a wrong token: a clear 401 from calls and from the watch --- */
    k8s_config_t *bad_config = s_config_for (&fake, dir, "wrong-token", NULL, NULL);
    k8s_client_t *bad = k8s_client_new (bad_config);
    json_t *list = NULL;
    CHECK_EQ_INT (k8s_list (bad, K8S_POD, K8S_SERVER_SELECTOR, NULL, &list, err, sizeof err), K8S_UNAUTHORIZED);
    CHECK (list == NULL, "no list");
    CHECK (strstr (err, "GET pods: 401 Unauthorized: Unauthorized (the API server refused the token from "), "%s", err);
    recorder_t bad_rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };
    k8s_watch_t *bad_watch = k8s_watch_new (bad_config, NULL, s_record, &bad_rec);
    k8s_watch_event_kind_t want_error = K8S_WATCH_ERROR;
    long at = s_wait (&bad_rec, 0, s_match_kind, &want_error, 5000);
    CHECK (at >= 0, "the watch reported no error for a wrong token");
    CHECK_EQ_INT (bad_rec.items[at].result, K8S_UNAUTHORIZED);
    CHECK (strstr (bad_rec.items[at].error, "401 Unauthorized"), "%s", bad_rec.items[at].error);
    k8s_watch_destroy (&bad_watch);
    CHECK (bad_watch == NULL, "destroy NULLs");
    k8s_client_destroy (&bad);
    k8s_config_destroy (&bad_config);

    /* --- a namespace that does not exist: 404 --- */
    k8s_config_t *nowhere_config = s_config_for (&fake, dir, TOKEN, NULL, "nowhere");
    k8s_client_t *nowhere = k8s_client_new (nowhere_config);
    CHECK_EQ_INT (k8s_list (nowhere, K8S_POD, NULL, NULL, &list, err, sizeof err), K8S_NOT_FOUND);
    CHECK (strstr (err, "namespaces \\\"nowhere\\\" not found") || strstr (err, "namespaces \"nowhere\" not found"), "%s", err);
    k8s_client_destroy (&nowhere);
    k8s_config_destroy (&nowhere_config);

    /* --- the life of a server --- */
    k8s_config_t *config = s_config_for (&fake, dir, TOKEN, NULL, NULL);
    k8s_client_t *client = k8s_client_new (config);
    recorder_t rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };
    k8s_watch_t *watch = k8s_watch_new (config, NULL, s_record, &rec);
    k8s_watch_event_kind_t want_synced = K8S_WATCH_SYNCED;
    CHECK (s_wait (&rec, 0, s_match_kind, &want_synced, 5000) >= 0, "the first list");
    CHECK_EQ_INT (k8s_watch_lists (watch), 1);

    const spawner_profile_t *small = spawner_profiles_find (profiles, "small");
    env_list_t env;
    s_env_build (&env, "alice", "", small);
    k8s_server_spec_t spec = { .user = "alice", .server_name = "", .profile = small, .node_name = "fake-node-1",
                               .env = env.vars, .nenv = env.count, .command = s_command,
                               .default_image = "jupyterhub/singleuser:3.0" };
    json_t *pvc = k8s_pvc_build (&spec, err, sizeof err);
    json_t *pod = k8s_pod_build (&spec, err, sizeof err);
    CHECK (pvc && pod, "%s", err);
    json_t *created = NULL;
    CHECK_EQ_INT (k8s_create (client, K8S_PVC, pvc, &created, err, sizeof err), K8S_OK);
    CHECK_EQ_STR (json_string_value (json_object_get (json_object_get (created, "metadata"), "name")), "claim-alice");
    json_decref (created);
    /* a PVC outlives servers: creating it again is "exists", which the backend takes as fine */
    CHECK_EQ_INT (k8s_create (client, K8S_PVC, pvc, NULL, err, sizeof err), K8S_EXISTS);
    CHECK (strstr (err, "409 AlreadyExists: persistentvolumeclaims \"claim-alice\" already exists"), "%s", err);

    size_t mark = s_count (&rec);
    CHECK_EQ_INT (k8s_create (client, K8S_POD, pod, &created, err, sizeof err), K8S_OK);
    CHECK_EQ_STR (json_string_value (json_object_get (json_object_get (created, "status"), "phase")), "Pending");
    json_decref (created);
    long pending = s_wait_pod (&rec, mark, "jupyter-alice", K8S_PHASE_PENDING, false, false);
    CHECK_EQ_STR (rec.items[pending].username, "alice");
    long running = s_wait_pod (&rec, (size_t) pending, "jupyter-alice", K8S_PHASE_RUNNING, true, false);
    CHECK (strncmp (rec.items[running].ip, "10.244.0.", 9) == 0, "pod IP %s", rec.items[running].ip);
    printf ("  watch: jupyter-alice Pending -> Running at %s (ready)\n", rec.items[running].ip);

    /* re-creating a running server's pod is a conflict the caller sees as "exists" */
    CHECK_EQ_INT (k8s_create (client, K8S_POD, pod, NULL, err, sizeof err), K8S_EXISTS);
    CHECK (strstr (err, "pods \"jupyter-alice\" already exists"), "%s", err);

    /* get and list with a label selector */
    json_t *got = NULL;
    CHECK_EQ_INT (k8s_get (client, K8S_POD, "jupyter-alice", &got, err, sizeof err), K8S_OK);
    CHECK_EQ_STR (json_string_value (json_object_get (json_object_get (got, "status"), "podIP")), rec.items[running].ip);
    json_decref (got);
    json_t *bob_pod = s_pod_for (profiles, "scratch", "bob", "");
    CHECK_EQ_INT (k8s_create (client, K8S_POD, bob_pod, NULL, err, sizeof err), K8S_OK);
    CHECK_EQ_INT (k8s_list (client, K8S_POD, "hub.jupyter.org/username=alice", NULL, &list, err, sizeof err), K8S_OK);
    CHECK_EQ_INT (json_array_size (json_object_get (list, "items")), 1);
    CHECK (atoi (json_string_value (json_object_get (json_object_get (list, "metadata"), "resourceVersion"))) > 100,
           "the list's resourceVersion");
    json_decref (list);
    CHECK_EQ_INT (k8s_list (client, K8S_POD, K8S_SERVER_SELECTOR, "0", &list, err, sizeof err), K8S_OK);
    CHECK_EQ_INT (json_array_size (json_object_get (list, "items")), 2);
    json_decref (list);

    /* an object the API refuses: 422 */
    json_t *broken = json_pack ("{s:s, s:s, s:{s:s}, s:{s:[]}}", "apiVersion", "v1", "kind", "Pod", "metadata", "name",
                                "broken", "spec", "containers");
    CHECK_EQ_INT (k8s_create (client, K8S_POD, broken, NULL, err, sizeof err), K8S_INVALID);
    CHECK (strstr (err, "422 Invalid"), "%s", err);
    json_decref (broken);

    /* stop: delete → terminating → DELETED; deleting again and getting are "not found" */
    mark = s_count (&rec);
    CHECK_EQ_INT (k8s_delete (client, K8S_POD, "jupyter-alice", 1, err, sizeof err), K8S_OK);
    s_wait_pod (&rec, mark, "jupyter-alice", K8S_PHASE_RUNNING, false, true);
    s_wait_pod (&rec, mark, "jupyter-alice", K8S_PHASE_DELETED, false, false);
    printf ("  watch: jupyter-alice terminating -> DELETED\n");
    CHECK_EQ_INT (k8s_delete (client, K8S_POD, "jupyter-alice", 0, err, sizeof err), K8S_NOT_FOUND);
    CHECK (strstr (err, "DELETE pods/jupyter-alice: 404 NotFound: pods \"jupyter-alice\" not found"), "%s", err);
    CHECK_EQ_INT (k8s_get (client, K8S_POD, "jupyter-alice", &got, err, sizeof err), K8S_NOT_FOUND);
    CHECK (got == NULL, "nothing got");
    CHECK_EQ_INT (k8s_delete (client, K8S_PVC, "claim-alice", -1, err, sizeof err), K8S_OK);
    CHECK_EQ_INT (k8s_delete (client, K8S_PVC, "claim-alice", -1, err, sizeof err), K8S_NOT_FOUND);
    CHECK_EQ_INT (k8s_delete (client, K8S_POD, "Not A Name", 0, err, sizeof err), K8S_INVALID);

    /* a server whose container fails: Failed with the reason */
    s_wait_pod (&rec, 0, "jupyter-bob", K8S_PHASE_RUNNING, true, false);
    mark = s_count (&rec);
    json_decref (s_fake_control (&fake, "POST", "/_fake/terminate/" NAMESPACE "/jupyter-bob",
                                 "{\"exit_code\": 137, \"reason\": \"OOMKilled\"}"));
    long failed = s_wait_pod (&rec, mark, "jupyter-bob", K8S_PHASE_FAILED, false, false);
    CHECK_EQ_STR (rec.items[failed].reason, "OOMKilled (exit 137)");
    printf ("  watch: jupyter-bob Failed: %s\n", rec.items[failed].reason);

    /* --- 410: the watch's resourceVersion is compacted away while a pod goes missing --- */
    int lists_before = k8s_watch_lists (watch);
    int fake_lists_before = s_fake_count (&fake, "list pods");
    mark = s_count (&rec);
    json_decref (s_fake_control (&fake, "POST", "/_fake/compact", "{\"drop\": [[\"pods\", \"" NAMESPACE "\", \"jupyter-bob\"]]}"));
    s_wait_pod (&rec, mark, "jupyter-bob", K8S_PHASE_DELETED, false, false); /* found by the re-list */
    CHECK (s_wait (&rec, mark, s_match_kind, &want_synced, 5000) >= 0, "SYNCED after the re-list");
    CHECK_EQ_INT (k8s_watch_lists (watch), lists_before + 1);
    CHECK_EQ_INT (s_fake_count (&fake, "list pods"), fake_lists_before + 1);
    printf ("  watch: 410 (ERROR event) -> re-listed, lost pod reported deleted\n");
    /* and it watches again from the new list */
    mark = s_count (&rec);
    json_t *carol_pod = s_pod_for (profiles, "scratch", "carol", "");
    CHECK_EQ_INT (k8s_create (client, K8S_POD, carol_pod, NULL, err, sizeof err), K8S_OK);
    s_wait_pod (&rec, mark, "jupyter-carol", K8S_PHASE_RUNNING, true, false);

    /* the same with the 410 as an HTTP status */
    json_decref (s_fake_control (&fake, "POST", "/_fake/config", "{\"watch_gone\": \"http\"}"));
    lists_before = k8s_watch_lists (watch);
    mark = s_count (&rec);
    json_decref (s_fake_control (&fake, "POST", "/_fake/compact", "{}"));
    CHECK (s_wait (&rec, mark, s_match_kind, &want_synced, 5000) >= 0, "SYNCED after the re-list");
    CHECK_EQ_INT (k8s_watch_lists (watch), lists_before + 1);
    printf ("  watch: 410 (HTTP status) -> re-listed\n");
    /* nothing changed, so a re-list reports nothing but SYNCED */
    for (size_t i = mark; i < s_count (&rec); i++)
        CHECK (rec.items[i].kind != K8S_WATCH_POD, "a re-list without changes reported %s", rec.items[i].name);

    k8s_watch_destroy (&watch);
    k8s_client_destroy (&client);
    k8s_config_destroy (&config);
    json_decref (carol_pod);
    json_decref (bob_pod);
    json_decref (pod);
    json_decref (pvc);
    s_env_clear (&env);
    spawner_profiles_destroy (&profiles);
    s_fake_stop (&fake);
}

/* https with the service account's CA file: a self-signed certificate for 127.0.0.1. */
static void
test_tls (const char *dir)
{
    if (access ("/usr/bin/openssl", X_OK) != 0) {
        printf ("  tls: skipped (no /usr/bin/openssl)\n");
        return;
    }
    char *cert = orr_sprintf ("%s/ca.crt", dir);
    char *key = orr_sprintf ("%s/server.key", dir);
    char *cmd = orr_sprintf ("/usr/bin/openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
                             key, cert);
    CHECK (system (cmd) == 0, "openssl req failed");
    free (cmd);
    fake_api_t fake = { 0 };
    s_fake_start (&fake, dir, "tls", cert, key);
    char err[1024];

    k8s_config_t *config = s_config_for (&fake, dir, TOKEN, cert, NULL);
    k8s_client_t *client = k8s_client_new (config);
    json_t *got = NULL;
    CHECK_EQ_INT (k8s_get (client, K8S_POD, "jupyter-nobody", &got, err, sizeof err), K8S_NOT_FOUND);
    k8s_client_destroy (&client);
    /* the watch uses the CA too */
    recorder_t rec = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };
    k8s_watch_t *watch = k8s_watch_new (config, NULL, s_record, &rec);
    k8s_watch_event_kind_t want_synced = K8S_WATCH_SYNCED;
    CHECK (s_wait (&rec, 0, s_match_kind, &want_synced, 5000) >= 0, "a list over https");
    client = k8s_client_new (config);
    spawner_profiles_t *profiles = spawner_profiles_new (s_profiles_json, err, sizeof err);
    json_t *pod = s_pod_for (profiles, "scratch", "tls", "");
    CHECK_EQ_INT (k8s_create (client, K8S_POD, pod, NULL, err, sizeof err), K8S_OK);
    s_wait_pod (&rec, 0, "jupyter-tls", K8S_PHASE_RUNNING, true, false);
    for (size_t i = 0; i < s_count (&rec); i++)
        CHECK (rec.items[i].kind != K8S_WATCH_ERROR, "watch error over https: %s", rec.items[i].error);
    k8s_watch_destroy (&watch);
    k8s_client_destroy (&client);
    k8s_config_destroy (&config);
    json_decref (pod);
    spawner_profiles_destroy (&profiles);

    /* without the CA file, the system's CAs do not trust the server: a TLS error */
    config = s_config_for (&fake, dir, TOKEN, NULL, NULL);
    client = k8s_client_new (config);
    CHECK_EQ_INT (k8s_get (client, K8S_POD, "jupyter-nobody", &got, err, sizeof err), K8S_ERROR);
    CHECK (strstr (err, "certificate") || strstr (err, "SSL"), "%s", err);
    printf ("  tls: with the CA file ok; without it: %s\n", err);
    k8s_client_destroy (&client);
    k8s_config_destroy (&config);
    s_fake_stop (&fake);
    free (cert);
    free (key);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    char *dir = tu_tmpdir ("k8s");
    test_names ();
    test_golden ();
    printf ("  golden: pod and PVC of small, shared, scratch, gpu match tests/k8s_expected/\n");
    test_pod_state ();
    test_config (dir);
    test_against_fake (dir);
    test_tls (dir);
    tu_tmpdir_remove (&dir);
    printf ("test_k8s_backend: ok\n");
    return 0;
}
