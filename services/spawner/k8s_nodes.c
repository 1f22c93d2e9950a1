/*  k8s_nodes: the scheduler's nodes from the Kubernetes API, for NODE_SOURCE=kubernetes.
 *
 *  With the Kubernetes backend, the nodes users' pods run on are the cluster's Node
 *  objects, not the hosts the spawner replicas run on, so no local node agent can speak
 *  for them. This file owns the translation of a Node object into orrery.NodeHeartbeat
 *  (k8s_node_heartbeat, pure, tested on hand-written Node JSON) and the node source that
 *  lists the nodes and publishes one heartbeat per Ready node every NODE_HEARTBEAT_MS.
 *
 *  The translation (docs/kubernetes.md, "Nodes"):
 *    - capacity = status.allocatable (what pods may use, not the machine's size): cpu in
 *      millicores, memory in bytes, nvidia.com/gpu, pods as the most servers;
 *    - labels = metadata.labels, leaving out (and noting) what the scheduler would refuse;
 *    - taints = spec.taints: NoSchedule and PreferNoSchedule as they are, NoExecute as
 *      NoSchedule (for placement they mean the same: no new pod without a toleration);
 *      spec.unschedulable adds node.kubernetes.io/unschedulable=:NoSchedule, the taint
 *      Kubernetes itself puts on a cordoned node;
 *    - a node whose Ready condition is not "True" gets no heartbeat at all, so the
 *      scheduler marks it lost after NODE_TIMEOUT_MS, as it does for a dead agent.
 *
 *  Threads: the Kubernetes client blocks (up to K8S_TIMEOUT_MS per request), and the
 *  service's handlers run on its loop's thread, so the listing runs on a thread of its
 *  own. It packs the heartbeats and leaves the batch in a mailbox; a 100 ms timer on the
 *  loop publishes it (the event publisher belongs to the loop's thread). The first list
 *  is repeated after 100, 200, 400 ... ms up to the interval, for the reason the node
 *  agent repeats its first heartbeat (an XPUB drops what is sent before brokers subscribe).
 */
#include "k8s_nodes.h"
#include "k8s_client.h"
#include "orr_log.h"
#include "orr_util.h"
#include "spawner_node_agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K8S_NODES_TICK_MS 100
#define K8S_NODES_FIRST_GAP_MS 100
#define K8S_QUANTITY_DIGITS_MAX 19   /* any 19 digits fit a uint64 */

/* --- quantities ------------------------------------------------------------------------ */

int
k8s_parse_quantity (const char *text, int64_t scale, int64_t *out)
{
    *out = 0;
    if (!text || (scale != 1 && scale != 1000))
        return -1;
    const char *p = text;
    if (*p == '+')
        p++;
    /* the number: digits with at most one '.', at least one digit */
    char digits[K8S_QUANTITY_DIGITS_MAX + 1];
    size_t ndigits = 0;
    int frac = 0;                     /* digits kept after the point */
    bool point = false, any = false;
    int frac_zeros = 0;               /* fraction zeros held back: trailing ones are dropped */
    for (; *p; p++) {
        if (*p == '.') {
            if (point)
                return -1;
            point = true;
            continue;
        }
        if (*p < '0' || *p > '9')
            break;
        any = true;
        if (point && *p == '0') {     /* hold fraction zeros until a non-zero digit follows */
            frac_zeros++;
            continue;
        }
        if (point) {
            for (; frac_zeros > 0; frac_zeros--) {
                if (ndigits > 0) {
                    if (ndigits >= K8S_QUANTITY_DIGITS_MAX)
                        return -1;
                    digits[ndigits++] = '0';
                }
                frac++;
            }
            frac++;
        }
        if (ndigits == 0 && *p == '0')
            continue;                 /* leading zeros */
        if (ndigits >= K8S_QUANTITY_DIGITS_MAX)
            return -1;
        digits[ndigits++] = *p;
    }
    if (!any)
        return -1;
    uint64_t mant = 0;
    for (size_t i = 0; i < ndigits; i++)
        mant = mant * 10 + (uint64_t) (digits[i] - '0');
    int dexp = -frac;
    int bexp = 0;
    /* the suffix */
    static const struct {
        const char *s;
        int dexp, bexp;
    } suffixes[] = {
        { "", 0, 0 },   { "n", -9, 0 }, { "u", -6, 0 }, { "m", -3, 0 },  { "k", 3, 0 },   { "M", 6, 0 },
        { "G", 9, 0 },  { "T", 12, 0 }, { "P", 15, 0 }, { "E", 18, 0 },  { "Ki", 0, 10 }, { "Mi", 0, 20 },
        { "Gi", 0, 30 }, { "Ti", 0, 40 }, { "Pi", 0, 50 }, { "Ei", 0, 60 },
    };
    bool matched = false;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
        if (strcmp (p, suffixes[i].s) == 0) {
            dexp += suffixes[i].dexp;
            bexp = suffixes[i].bexp;
            matched = true;
            break;
        }
    if (!matched) {
        /* a decimal exponent: e or E, an optional sign, 1..3 digits */
        if (*p != 'e' && *p != 'E')
            return -1;
        p++;
        int sign = 1;
        if (*p == '+' || *p == '-')
            sign = *p++ == '-' ? -1 : 1;
        int e = 0, n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++) {
            if (n >= 3)
                return -1;
            e = e * 10 + (*p - '0');
        }
        if (n == 0 || *p)
            return -1;
        dexp += sign * e;
    }
    if (scale == 1000)
        dexp += 3;
    if (mant == 0)
        return 0;
    /* mant × 2^bexp × 10^dexp, rounded up, within int64 */
    if (bexp > 0 && mant > ((uint64_t) INT64_MAX >> bexp))
        return -1;
    uint64_t v = mant << bexp;
    if (dexp >= 0) {
        for (int i = 0; i < dexp; i++) {
            if (v > (uint64_t) INT64_MAX / 10)
                return -1;
            v *= 10;
        }
    }
    else if (-dexp > 18)
        v = 1;                        /* v < 2^63 < 10^19: a positive fraction rounds up to 1 */
    else {
        uint64_t div = 1;
        for (int i = 0; i < -dexp; i++)
            div *= 10;
        v = v / div + (v % div != 0);
    }
    if (v > (uint64_t) INT64_MAX)
        return -1;
    *out = (int64_t) v;
    return 0;
}

/* --- one Node ------------------------------------------------------------------------- */

static void
s_append (char *buf, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_append (char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || size == 0)
        return;
    size_t used = strnlen (buf, size);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf + used, size - used, fmt, ap);
    va_end (ap);
}

static bool
s_chars_ok (const char *s, bool slash)
{
    for (const char *c = s; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.'
              || *c == '_' || *c == '-' || (slash && *c == '/')))
            return false;
    return true;
}

/* The scheduler's rules (services/scheduler: sched_label_key_ok, sched_label_value_ok). */
static bool
s_key_ok (const char *key)
{
    size_t n = strlen (key);
    return n >= 1 && n <= NODE_TOKEN_MAX && s_chars_ok (key, true);
}

static bool
s_value_ok (const char *value)
{
    return strlen (value) <= NODE_TOKEN_MAX && s_chars_ok (value, false);
}

/* An allocatable figure: 0 when absent and optional, else parsed and within `max`. */
static int
s_resource (const json_t *allocatable, const char *name, int64_t scale, int64_t max, bool required, int64_t *out,
            char *why, size_t whylen)
{
    *out = 0;
    const json_t *v = json_object_get (allocatable, name);
    if (!v) {
        if (!required)
            return 0;
        snprintf (why, whylen, "status.allocatable has no \"%s\"", name);
        return -1;
    }
    if (!json_is_string (v) || k8s_parse_quantity (json_string_value (v), scale, out) != 0 || *out > max) {
        char *text = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf (why, whylen, "status.allocatable.%s: %s is not a quantity the scheduler can take", name,
                  text ? text : "?");
        free (text);
        *out = 0;
        return -1;
    }
    return 0;
}

void
k8s_node_heartbeat_free (Orrery__NodeHeartbeat **hb_p)
{
    if (!hb_p || !*hb_p)
        return;
    Orrery__NodeHeartbeat *hb = *hb_p;
    free (hb->node);
    free (hb->agent);
    free (hb->capacity);
    free (hb->usage);
    for (size_t i = 0; i < hb->n_labels; i++) {
        free (hb->labels[i]->key);
        free (hb->labels[i]->value);
        free (hb->labels[i]);
    }
    free (hb->labels);
    for (size_t i = 0; i < hb->n_taints; i++) {
        free (hb->taints[i]->key);
        free (hb->taints[i]->value);
        free (hb->taints[i]->effect);
        free (hb->taints[i]);
    }
    free (hb->taints);
    free (hb);
    *hb_p = NULL;
}

static bool
s_add_taint (Orrery__NodeHeartbeat *hb, const char *key, const char *value, const char *effect)
{
    for (size_t i = 0; i < hb->n_taints; i++)
        if (strcmp (hb->taints[i]->key, key) == 0 && strcmp (hb->taints[i]->value, value) == 0
            && strcmp (hb->taints[i]->effect, effect) == 0)
            return true;              /* NoExecute + NoSchedule of one key, or a cordon Kubernetes tainted too */
    if (hb->n_taints >= NODE_TAINTS_MAX)
        return false;
    Orrery__Taint *t = orr_zalloc (sizeof *t);
    orrery__taint__init (t);
    t->key = orr_strdup (key);
    t->value = orr_strdup (value);
    t->effect = orr_strdup (effect);
    hb->taints[hb->n_taints++] = t;
    return true;
}

static bool
s_ready (const json_t *node, char *why, size_t whylen)
{
    const json_t *conditions = json_object_get (json_object_get (node, "status"), "conditions");
    size_t i;
    const json_t *c;
    json_array_foreach (conditions, i, c) {
        if (!json_is_string (json_object_get (c, "type"))
            || strcmp (json_string_value (json_object_get (c, "type")), "Ready") != 0)
            continue;
        const char *status = json_string_value (json_object_get (c, "status"));
        if (status && strcmp (status, "True") == 0)
            return true;
        const char *reason = json_string_value (json_object_get (c, "reason"));
        snprintf (why, whylen, "not Ready: Ready is \"%s\"%s%s", status ? status : "?", reason ? ": " : "",
                  reason ? reason : "");
        return false;
    }
    snprintf (why, whylen, "not Ready: no Ready condition");
    return false;
}

k8s_node_outcome_t
k8s_node_heartbeat (const json_t *node, const char *agent, int64_t time_us, Orrery__NodeHeartbeat **out, char *why,
                    size_t whylen, char *notes, size_t noteslen)
{
    *out = NULL;
    if (why && whylen)
        why[0] = '\0';
    if (notes && noteslen)
        notes[0] = '\0';
    char scratch[8];
    if (!why || whylen == 0) {
        why = scratch;
        whylen = sizeof scratch;
    }
    if (!json_is_object (node)) {
        snprintf (why, whylen, "not a JSON object");
        return K8S_NODE_MALFORMED;
    }
    const json_t *meta = json_object_get (node, "metadata");
    const char *name = json_string_value (json_object_get (meta, "name"));
    if (!name || !*name || strlen (name) > NODE_TOKEN_MAX || !s_chars_ok (name, false)) {
        snprintf (why, whylen, "metadata.name is missing or not 1-%d of [A-Za-z0-9._-]", NODE_TOKEN_MAX);
        return K8S_NODE_MALFORMED;
    }
    if (!s_ready (node, why, whylen))
        return K8S_NODE_NOT_READY;

    Orrery__NodeHeartbeat *hb = orr_zalloc (sizeof *hb);
    orrery__node_heartbeat__init (hb);
    hb->node = orr_strdup (name);
    hb->agent = orr_strdup (agent ? agent : "");
    hb->time_us = time_us;
    hb->capacity = orr_zalloc (sizeof *hb->capacity);
    orrery__resources__init (hb->capacity);
    hb->usage = orr_zalloc (sizeof *hb->usage);
    orrery__resources__init (hb->usage);
    hb->labels = orr_zalloc ((NODE_LABELS_MAX + 1) * sizeof *hb->labels);
    hb->taints = orr_zalloc ((NODE_TAINTS_MAX + 1) * sizeof *hb->taints);

    /* capacity */
    const json_t *allocatable = json_object_get (json_object_get (node, "status"), "allocatable");
    int64_t cpu, memory, gpus, pods;
    if (!json_is_object (allocatable)) {
        snprintf (why, whylen, "no status.allocatable");
        goto malformed;
    }
    if (s_resource (allocatable, "cpu", 1000, INT64_MAX, true, &cpu, why, whylen) != 0
        || s_resource (allocatable, "memory", 1, INT64_MAX, true, &memory, why, whylen) != 0
        || s_resource (allocatable, "nvidia.com/gpu", 1, INT32_MAX, false, &gpus, why, whylen) != 0
        || s_resource (allocatable, "pods", 1, INT32_MAX, true, &pods, why, whylen) != 0)
        goto malformed;
    hb->capacity->cpu_millis = cpu;
    hb->capacity->memory_bytes = memory;
    hb->capacity->gpus = (int32_t) gpus;
    hb->capacity->servers = (int32_t) pods;

    /* labels: what the scheduler cannot take is left out (a label only widens where a
     * selector may place, so leaving one out can refuse a placement, never allow one) */
    const json_t *labels = json_object_get (meta, "labels");
    const char *key;
    const json_t *value;
    size_t skipped = 0;
    json_object_foreach ((json_t *) labels, key, value) {
        const char *v = json_string_value (value);
        const char *problem = NULL;
        if (!v)
            problem = "value is not a string";
        else if (!s_key_ok (key))
            problem = "key is not 1-253 of [A-Za-z0-9._/-]";
        else if (!s_value_ok (v))
            problem = "value is not 0-253 of [A-Za-z0-9._-]";
        else if (hb->n_labels >= NODE_LABELS_MAX)
            problem = "beyond the 64th label";
        if (problem) {
            if (skipped++ < 8)
                s_append (notes, noteslen, "%slabel \"%.64s\" left out: %s", notes && *notes ? "; " : "", key,
                          problem);
            continue;
        }
        Orrery__Label *l = orr_zalloc (sizeof *l);
        orrery__label__init (l);
        l->key = orr_strdup (key);
        l->value = orr_strdup (v);
        hb->labels[hb->n_labels++] = l;
    }
    if (skipped > 8)
        s_append (notes, noteslen, "; %zu more labels left out", skipped - 8);

    /* taints: one the scheduler cannot take refuses the node (leaving a taint out would
     * allow placements the cluster forbids) */
    const json_t *spec = json_object_get (node, "spec");
    const json_t *taints = json_object_get (spec, "taints");
    if (taints && !json_is_array (taints)) {
        snprintf (why, whylen, "spec.taints is not an array");
        goto malformed;
    }
    size_t i;
    const json_t *t;
    json_array_foreach (taints, i, t) {
        const char *tkey = json_string_value (json_object_get (t, "key"));
        const json_t *tv = json_object_get (t, "value");
        const char *tvalue = tv ? json_string_value (tv) : "";
        const char *effect = json_string_value (json_object_get (t, "effect"));
        if (!tkey || !s_key_ok (tkey) || !tvalue || !s_value_ok (tvalue)) {
            snprintf (why, whylen, "spec.taints[%zu]: key or value outside the scheduler's rules", i);
            goto malformed;
        }
        if (effect && strcmp (effect, "NoExecute") == 0)
            effect = "NoSchedule";    /* for placement the same; eviction is the kubelet's */
        if (!effect || (strcmp (effect, "NoSchedule") != 0 && strcmp (effect, "PreferNoSchedule") != 0)) {
            snprintf (why, whylen, "spec.taints[%zu]: effect %s is not NoSchedule, PreferNoSchedule or NoExecute", i,
                      effect ? effect : "(none)");
            goto malformed;
        }
        if (!s_add_taint (hb, tkey, tvalue, effect)) {
            snprintf (why, whylen, "more than %d taints", NODE_TAINTS_MAX);
            goto malformed;
        }
    }
    const json_t *unschedulable = json_object_get (spec, "unschedulable");
    if (json_is_true (unschedulable) && !s_add_taint (hb, K8S_NODE_TAINT_UNSCHEDULABLE, "", "NoSchedule")) {
        snprintf (why, whylen, "more than %d taints", NODE_TAINTS_MAX);
        goto malformed;
    }
    *out = hb;
    return K8S_NODE_PUBLISH;

malformed:
    k8s_node_heartbeat_free (&hb);
    return K8S_NODE_MALFORMED;
}

/* --- the node source ------------------------------------------------------------------ */

typedef struct {
    size_t count;
    uint8_t **bufs;
    size_t *lens;
} s_batch_t;

struct k8s_nodes_source_t {
    orr_service_t *svc;
    k8s_config_t *config;
    int heartbeat_ms;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;                    /* under mu */
    s_batch_t *pending;           /* under mu: the newest batch not yet published */
    /* the loop's own */
    uint64_t published;
    bool publish_failed;
    /* the thread's own */
    char last_error[1024];
    char last_counts[128];
    char **reported;              /* "name\treason" skips and notes logged in the previous list */
    size_t n_reported;
};

static void
s_batch_free (s_batch_t **batch_p)
{
    s_batch_t *b = *batch_p;
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++)
        free (b->bufs[i]);
    free (b->bufs);
    free (b->lens);
    free (b);
    *batch_p = NULL;
}

static void
s_reported_clear (char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free ((*list)[i]);
    free (*list);
    *list = NULL;
    *n = 0;
}

/* Logs a skip or a note unless the previous list already did. */
static void
s_report (k8s_nodes_source_t *self, char ***now, size_t *n_now, size_t cap, bool warn, const char *name,
          const char *text)
{
    char *entry = orr_sprintf ("%s\t%s", name, text);
    bool seen = false;
    for (size_t i = 0; i < self->n_reported && !seen; i++)
        seen = strcmp (self->reported[i], entry) == 0;
    if (!seen) {
        if (warn)
            orr_warn ("kubernetes node %s: %s", name, text);
        else
            orr_info ("kubernetes node %s: %s", name, text);
    }
    if (*n_now < cap)
        (*now)[(*n_now)++] = entry;
    else
        free (entry);
}

static void
s_list_once (k8s_nodes_source_t *self, k8s_client_t *client)
{
    char err[1024];
    json_t *list = NULL;
    k8s_result_t r = k8s_list (client, K8S_NODE, NULL, "0", &list, err, sizeof err);
    if (r != K8S_OK) {
        if (strcmp (err, self->last_error) != 0)
            orr_warn ("kubernetes nodes: %s; no node.heartbeat until a list succeeds", err);
        snprintf (self->last_error, sizeof self->last_error, "%s", err);
        return;
    }
    if (self->last_error[0])
        orr_info ("kubernetes nodes: listing works again");
    self->last_error[0] = '\0';
    json_t *items = json_object_get (list, "items");
    size_t n = json_array_size (items);
    s_batch_t *batch = orr_zalloc (sizeof *batch);
    batch->bufs = orr_zalloc ((n + 1) * sizeof *batch->bufs);
    batch->lens = orr_zalloc ((n + 1) * sizeof *batch->lens);
    char **now = orr_zalloc ((2 * n + 1) * sizeof *now);
    size_t n_now = 0, not_ready = 0, malformed = 0;
    int64_t time_us = orr_now_us ();
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get (items, i);
        const char *name = json_string_value (json_object_get (json_object_get (item, "metadata"), "name"));
        char why[512], notes[1024];
        Orrery__NodeHeartbeat *hb;
        k8s_node_outcome_t o = k8s_node_heartbeat (item, orr_log_replica_id (), time_us, &hb, why, sizeof why,
                                                   notes, sizeof notes);
        if (o != K8S_NODE_PUBLISH) {
            if (o == K8S_NODE_NOT_READY)
                not_ready++;
            else
                malformed++;
            s_report (self, &now, &n_now, 2 * n, o == K8S_NODE_MALFORMED, name ? name : "(unnamed)",
                      why);
            continue;
        }
        if (notes[0])
            s_report (self, &now, &n_now, 2 * n, true, name, notes);
        size_t len = orrery__node_heartbeat__get_packed_size (hb);
        batch->bufs[batch->count] = orr_zalloc (len + 1);
        orrery__node_heartbeat__pack (hb, batch->bufs[batch->count]);
        batch->lens[batch->count++] = len;
        k8s_node_heartbeat_free (&hb);
    }
    json_decref (list);
    s_reported_clear (&self->reported, &self->n_reported);
    self->reported = now;
    self->n_reported = n_now;
    char counts[128];
    snprintf (counts, sizeof counts, "%zu listed, %zu published, %zu not ready, %zu malformed", n, batch->count,
              not_ready, malformed);
    if (strcmp (counts, self->last_counts) != 0)
        orr_info ("kubernetes nodes: %s", counts);
    snprintf (self->last_counts, sizeof self->last_counts, "%s", counts);
    pthread_mutex_lock (&self->mu);
    s_batch_free (&self->pending);    /* not published yet: this one is newer */
    self->pending = batch;
    pthread_mutex_unlock (&self->mu);
}

static void *
s_thread (void *arg)
{
    k8s_nodes_source_t *self = arg;
    k8s_client_t *client = k8s_client_new (self->config);
    int gap = K8S_NODES_FIRST_GAP_MS < self->heartbeat_ms ? K8S_NODES_FIRST_GAP_MS : self->heartbeat_ms;
    struct timespec next;
    clock_gettime (CLOCK_MONOTONIC, &next);
    pthread_mutex_lock (&self->mu);
    while (!self->stop) {
        pthread_mutex_unlock (&self->mu);
        s_list_once (self, client);
        pthread_mutex_lock (&self->mu);
        /* keep the phase, as the node agent does */
        next.tv_sec += gap / 1000;
        next.tv_nsec += (long) (gap % 1000) * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        struct timespec now;
        clock_gettime (CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))
            next = now;
        if (gap < self->heartbeat_ms) {
            gap *= 2;
            if (gap > self->heartbeat_ms)
                gap = self->heartbeat_ms;
        }
        while (!self->stop && pthread_cond_timedwait (&self->cond, &self->mu, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock (&self->mu);
    k8s_client_destroy (&client);
    return NULL;
}

static void
s_tick (void *ctx)
{
    k8s_nodes_source_t *self = ctx;
    pthread_mutex_lock (&self->mu);
    s_batch_t *batch = self->pending;
    self->pending = NULL;
    pthread_mutex_unlock (&self->mu);
    if (!batch)
        return;
    for (size_t i = 0; i < batch->count; i++) {
        if (orr_service_publish (self->svc, "node.heartbeat", batch->bufs[i], batch->lens[i]) == 0) {
            self->published++;
            self->publish_failed = false;
        }
        else if (!self->publish_failed) {
            self->publish_failed = true;
            orr_warn ("could not publish node.heartbeat for kubernetes nodes");
        }
    }
    s_batch_free (&batch);
}

int
k8s_nodes_source_start (orr_service_t *svc, orr_config_t *config, k8s_nodes_source_t **source_p)
{
    *source_p = NULL;
    long ms = orr_config_int (config, "NODE_HEARTBEAT_MS");
    if (ms < NODE_HEARTBEAT_MS_MIN || ms > NODE_HEARTBEAT_MS_MAX) {
        orr_error ("NODE_HEARTBEAT_MS: %ld is not within %d..%d", ms, NODE_HEARTBEAT_MS_MIN, NODE_HEARTBEAT_MS_MAX);
        return 2;
    }
    char err[1024];
    k8s_config_t *k8s = k8s_config_from_settings (config, err, sizeof err);
    if (!k8s) {
        orr_error ("NODE_SOURCE=kubernetes: %s", err);
        return 2;
    }
    k8s_nodes_source_t *self = orr_zalloc (sizeof *self);
    self->svc = svc;
    self->config = k8s;
    self->heartbeat_ms = (int) ms;
    pthread_mutex_init (&self->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    orr_info ("node source: kubernetes: the Node objects of %s, node.heartbeat every %d ms per Ready node",
              k8s_config_api_url (k8s), self->heartbeat_ms);
    if (pthread_create (&self->thread, NULL, s_thread, self) != 0) {
        orr_error ("node source: cannot start its thread");
        k8s_nodes_source_destroy (&self);
        return 1;
    }
    self->thread_started = true;
    orr_service_every (svc, K8S_NODES_TICK_MS, s_tick, self);
    *source_p = self;
    return 0;
}

void
k8s_nodes_source_destroy (k8s_nodes_source_t **source_p)
{
    if (!source_p || !*source_p)
        return;
    k8s_nodes_source_t *self = *source_p;
    if (self->thread_started) {
        pthread_mutex_lock (&self->mu);
        self->stop = true;
        pthread_cond_broadcast (&self->cond);
        pthread_mutex_unlock (&self->mu);
        pthread_join (self->thread, NULL);
    }
    if (self->published)
        orr_info ("node source kubernetes stopping after %llu heartbeats", (unsigned long long) self->published);
    s_batch_free (&self->pending);
    s_reported_clear (&self->reported, &self->n_reported);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mu);
    k8s_config_destroy (&self->config);
    free (self);
    *source_p = NULL;
}
