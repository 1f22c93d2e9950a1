/*  k8s_watch: a thread that lists and watches server pods and reports their state changes.
 *
 *  It owns one thread, one libcurl multi handle for the stream, one k8s_client for the
 *  lists, and the memory of what it last reported per pod (`known`: pod name → a small
 *  JSON snapshot, so comparing two states is json_equal and lookups are jansson's hash).
 *  That memory is a cache, never authority: it only decides what is news.
 *
 *  The loop, as client-go's reflector runs it:
 *    list (resourceVersion "0" the first time: served from the API server's cache; "" after
 *    a 410, which forces a fresh read) → report what changed, pods gone since the last list
 *    as deleted, then SYNCED → watch from the list's resourceVersion → on each event
 *    report and advance the version (BOOKMARKs only advance it) → when the server ends the
 *    stream (timeoutSeconds), watch again from the last version → on 410 Gone (the HTTP
 *    status, or an ERROR event with code 410, which is how a real API server says it) or
 *    any other ERROR event, list again. Transport failures and refusals (401, 403, 5xx)
 *    are reported as K8S_WATCH_ERROR and retried after a back-off that doubles from
 *    0.5 s to 30 s and resets once things work again.
 *
 *  Why a thread, and a multi handle inside it: see k8s_watch.h. Stopping: destroy sets
 *  `stop`, signals the condition variable (for back-off sleeps) and calls
 *  curl_multi_wakeup (for a stream waiting for data), then joins.
 *
 *  The stream's body arrives in arbitrary pieces; the write callback cuts it into lines
 *  (one event each) in a buffer capped at K8S_WATCH_LINE_MAX. A non-200 answer is not a
 *  stream but one Status object, collected whole and read at the end.
 */
#include "k8s_watch.h"

#include "k8s_objects.h"
#include "orr_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A stream that ends this soon without an event is treated like a failure (back-off), so
 * a server that closes at once cannot make the thread spin. */
#define K8S_WATCH_MIN_STREAM_MS 1000
/* Extra time over timeoutSeconds before the client itself gives up on a silent stream. */
#define K8S_WATCH_GRACE_S 60

struct k8s_watch_t {
    k8s_config_t *config;            /* borrowed */
    char *selector;
    k8s_watch_fn *fn;
    void *ctx;
    pthread_t thread;
    atomic_bool stop;
    atomic_int lists;
    pthread_mutex_t lock;            /* with `wake`, for interruptible sleeps */
    pthread_cond_t wake;
    CURLM *multi;                    /* the stream's; curl_multi_wakeup is thread-safe */
    /* used by the thread only */
    k8s_client_t *client;
    json_t *known;                   /* pod name → snapshot of the state last reported */
    char *resource_version;          /* where the next watch starts */
    bool listed_once;
};

/* One watch request being read. */
typedef struct {
    k8s_watch_t *watch;
    CURL *easy;
    char *buf;
    size_t len;
    size_t cap;
    long status;                     /* the response's code, once its headers are in */
    int events;                      /* events handled */
    bool gone;                       /* 410: list again */
    bool relist;                     /* an ERROR event: list again */
    bool too_long;
    char error[512];                 /* the ERROR event's text */
} stream_t;

/* --- pod state ------------------------------------------------------------------------ */

const char *
k8s_phase_name (k8s_phase_t phase)
{
    static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown", "Deleted" };
    return (unsigned) phase < sizeof names / sizeof names[0] ? names[phase] : "Unknown";
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *s = json_string_value (json_object_get (obj, key));
    return s ? s : "";
}

/* The container's status: the notebook's, else the first. Borrowed, or NULL. */
static json_t *
s_container_status (json_t *status)
{
    json_t *list = json_object_get (status, "containerStatuses");
    size_t i;
    json_t *c;
    json_array_foreach (list, i, c) {
        if (strcmp (s_str (c, "name"), K8S_CONTAINER_NAME) == 0)
            return c;
    }
    return json_array_get (list, 0);
}

/* The condition of `type` (borrowed), or NULL. */
static json_t *
s_condition (json_t *status, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get (status, "conditions"), i, c) {
        if (strcmp (s_str (c, "type"), type) == 0)
            return c;
    }
    return NULL;
}

/* "Reason: message", "Reason" or "" */
static void
s_reason_text (char *out, size_t outlen, const char *reason, const char *message)
{
    if (*reason && *message)
        snprintf (out, outlen, "%s: %s", reason, message);
    else
        snprintf (out, outlen, "%s", *reason ? reason : message);
}

void
k8s_pod_state_from (json_t *pod, k8s_pod_state_t *state, char *reason, size_t reasonlen)
{
    json_t *meta = json_object_get (pod, "metadata");
    json_t *spec = json_object_get (pod, "spec");
    json_t *status = json_object_get (pod, "status");
    json_t *annotations = json_object_get (meta, "annotations");
    json_t *labels = json_object_get (meta, "labels");
    memset (state, 0, sizeof *state);
    state->name = s_str (meta, "name");
    state->uid = s_str (meta, "uid");
    state->username = s_str (annotations, K8S_LABEL_USERNAME);
    if (!*state->username)
        state->username = s_str (labels, K8S_LABEL_USERNAME);
    state->servername = s_str (annotations, K8S_LABEL_SERVERNAME);
    if (!json_object_get (annotations, K8S_LABEL_SERVERNAME))
        state->servername = s_str (labels, K8S_LABEL_SERVERNAME);
    state->resource_version = s_str (meta, "resourceVersion");
    state->node_name = s_str (spec, "nodeName");
    state->pod_ip = s_str (status, "podIP");
    state->terminating = json_object_get (meta, "deletionTimestamp") && !json_is_null (json_object_get (meta, "deletionTimestamp"));
    const char *phase = s_str (status, "phase");
    if (!*phase || strcmp (phase, "Pending") == 0)
        state->phase = K8S_PHASE_PENDING;
    else if (strcmp (phase, "Running") == 0)
        state->phase = K8S_PHASE_RUNNING;
    else if (strcmp (phase, "Succeeded") == 0)
        state->phase = K8S_PHASE_SUCCEEDED;
    else if (strcmp (phase, "Failed") == 0)
        state->phase = K8S_PHASE_FAILED;
    else
        state->phase = K8S_PHASE_UNKNOWN;
    json_t *ready = s_condition (status, "Ready");
    state->ready = ready && strcmp (s_str (ready, "status"), "True") == 0;

    /* why */
    reason[0] = '\0';
    json_t *container = s_container_status (status);
    json_t *cstate = json_object_get (container, "state");
    json_t *waiting = json_object_get (cstate, "waiting");
    json_t *terminated = json_object_get (cstate, "terminated");
    if (state->phase == K8S_PHASE_FAILED || state->phase == K8S_PHASE_SUCCEEDED) {
        if (*s_str (status, "reason") || *s_str (status, "message"))
            s_reason_text (reason, reasonlen, s_str (status, "reason"), s_str (status, "message"));
        else if (terminated) {
            char what[256];
            snprintf (what, sizeof what, "%s (exit %" JSON_INTEGER_FORMAT ")",
                      *s_str (terminated, "reason") ? s_str (terminated, "reason") : "Terminated",
                      json_integer_value (json_object_get (terminated, "exitCode")));
            s_reason_text (reason, reasonlen, what, s_str (terminated, "message"));
        }
    }
    else if (state->phase == K8S_PHASE_PENDING) {
        json_t *scheduled = s_condition (status, "PodScheduled");
        if (waiting)
            s_reason_text (reason, reasonlen, s_str (waiting, "reason"), s_str (waiting, "message"));
        else if (scheduled && strcmp (s_str (scheduled, "status"), "False") == 0)
            s_reason_text (reason, reasonlen, s_str (scheduled, "reason"), s_str (scheduled, "message"));
    }
    else if (state->phase == K8S_PHASE_RUNNING && terminated) /* the container ended, the pod not yet */
        s_reason_text (reason, reasonlen, s_str (terminated, "reason"), s_str (terminated, "message"));
    state->reason = reason;
}

/* What is compared to decide whether a state is news (and what a deletion reports). */
static json_t *
s_snapshot (const k8s_pod_state_t *s)
{
    return json_pack ("{s:i, s:b, s:b, s:s, s:s, s:s, s:s, s:s, s:s}", "phase", (int) s->phase, "ready", s->ready,
                      "terminating", s->terminating, "ip", s->pod_ip, "node", s->node_name, "reason", s->reason,
                      "username", s->username, "servername", s->servername, "uid", s->uid);
}

static void
s_report_pod (k8s_watch_t *w, const k8s_pod_state_t *state)
{
    k8s_watch_event_t ev = { .kind = K8S_WATCH_POD, .pod = state };
    w->fn (w->ctx, &ev);
}

static void
s_report_error (k8s_watch_t *w, k8s_result_t result, const char *error)
{
    k8s_watch_event_t ev = { .kind = K8S_WATCH_ERROR, .result = result, .error = error };
    w->fn (w->ctx, &ev);
}

/* A pod as seen in a list or an ADDED/MODIFIED event: reported when its state is news. */
static void
s_observe (k8s_watch_t *w, json_t *pod)
{
    char reason[1024];
    k8s_pod_state_t state;
    k8s_pod_state_from (pod, &state, reason, sizeof reason);
    if (!*state.name)
        return;
    json_t *snap = s_snapshot (&state);
    if (json_equal (snap, json_object_get (w->known, state.name))) {
        json_decref (snap);
        return;
    }
    json_object_set_new (w->known, state.name, snap);
    s_report_pod (w, &state);
}

/* A pod that is gone: reported as deleted with what was known of it. `name` may be a
 * key of `known` itself, which the deletion frees: hence the copy. */
static void
s_forget (k8s_watch_t *w, const char *key, const char *resource_version)
{
    char *name = orr_strdup (key);
    json_t *snap = json_incref (json_object_get (w->known, name));
    k8s_pod_state_t state = {
        .name = name,
        .uid = s_str (snap, "uid"),
        .username = s_str (snap, "username"),
        .servername = s_str (snap, "servername"),
        .phase = K8S_PHASE_DELETED,
        .pod_ip = "",
        .node_name = s_str (snap, "node"),
        .reason = "",
        .resource_version = resource_version ? resource_version : "",
    };
    json_object_del (w->known, name);
    s_report_pod (w, &state);
    json_decref (snap);
    free (name);
}

static void
s_set_version (k8s_watch_t *w, const char *version)
{
    if (!version || !*version)
        return;
    free (w->resource_version);
    w->resource_version = orr_strdup (version);
}

/* --- list ----------------------------------------------------------------------------- */

/* Lists, reports what changed and SYNCED. 0, or -1 with the error reported. */
static int
s_list (k8s_watch_t *w, bool fresh)
{
    char err[1024];
    json_t *list = NULL;
    k8s_result_t r = k8s_list (w->client, K8S_POD, w->selector, fresh ? "" : "0", &list, err, sizeof err);
    if (r != K8S_OK) {
        s_report_error (w, r, err);
        return -1;
    }
    json_t *items = json_object_get (list, "items");
    const char *version = s_str (json_object_get (list, "metadata"), "resourceVersion");
    /* the pods known but no longer listed are gone */
    json_t *listed = json_object ();
    size_t i;
    json_t *pod;
    json_array_foreach (items, i, pod) {
        const char *name = s_str (json_object_get (pod, "metadata"), "name");
        if (*name)
            json_object_set_new (listed, name, json_true ());
    }
    const char *name;
    json_t *snap, *tmp;
    json_object_foreach_safe (w->known, tmp, name, snap) {
        if (!json_object_get (listed, name))
            s_forget (w, name, version);
    }
    json_decref (listed);
    json_array_foreach (items, i, pod)
        s_observe (w, pod);
    s_set_version (w, version);
    json_decref (list);
    atomic_fetch_add (&w->lists, 1);
    w->listed_once = true;
    k8s_watch_event_t ev = { .kind = K8S_WATCH_SYNCED };
    w->fn (w->ctx, &ev);
    return 0;
}

/* --- the stream ----------------------------------------------------------------------- */

/* One event line. */
static void
s_event (stream_t *st, const char *line, size_t len)
{
    k8s_watch_t *w = st->watch;
    json_error_t jerr;
    json_t *ev = json_loadb (line, len, 0, &jerr);
    const char *type = s_str (ev, "type");
    json_t *object = json_object_get (ev, "object");
    if (!ev || !*type || !json_is_object (object)) {
        snprintf (st->error, sizeof st->error, "watch pods: an event that is not {\"type\", \"object\"}: %s",
                  ev ? "missing fields" : jerr.text);
        st->relist = true;
        json_decref (ev);
        return;
    }
    st->events++;
    const char *version = s_str (json_object_get (object, "metadata"), "resourceVersion");
    if (strcmp (type, "ADDED") == 0 || strcmp (type, "MODIFIED") == 0) {
        s_observe (w, object);
        s_set_version (w, version);
    }
    else if (strcmp (type, "DELETED") == 0) {
        const char *name = s_str (json_object_get (object, "metadata"), "name");
        if (*name) {
            /* report the final state's snapshot fields through a last observe, then forget */
            char reason[1024];
            k8s_pod_state_t state;
            k8s_pod_state_from (object, &state, reason, sizeof reason);
            json_object_set_new (w->known, name, s_snapshot (&state));
            s_forget (w, name, version);
        }
        s_set_version (w, version);
    }
    else if (strcmp (type, "BOOKMARK") == 0)
        s_set_version (w, version);
    else if (strcmp (type, "ERROR") == 0) {
        json_int_t code = json_integer_value (json_object_get (object, "code"));
        snprintf (st->error, sizeof st->error, "watch pods: ERROR event: %" JSON_INTEGER_FORMAT " %s: %s", code,
                  s_str (object, "reason"), s_str (object, "message"));
        if (code == 410)
            st->gone = true;
        else
            st->relist = true;
    }
    /* other types are ignored, as client-go does */
    json_decref (ev);
}

static size_t
s_on_stream (char *data, size_t size, size_t nmemb, void *userdata)
{
    stream_t *st = userdata;
    size_t n = size * nmemb;
    if (atomic_load (&st->watch->stop))
        return CURL_WRITEFUNC_ERROR;
    if (st->status == 0)
        curl_easy_getinfo (st->easy, CURLINFO_RESPONSE_CODE, &st->status);
    if (n > K8S_WATCH_LINE_MAX - st->len) {
        st->too_long = true;
        return CURL_WRITEFUNC_ERROR;
    }
    if (st->len + n + 1 > st->cap) {
        size_t cap = st->cap ? st->cap : 16384;
        while (cap < st->len + n + 1)
            cap *= 2;
        st->buf = orr_realloc (st->buf, cap);
        st->cap = cap;
    }
    memcpy (st->buf + st->len, data, n);
    st->len += n;
    st->buf[st->len] = '\0';
    if (st->status != 200)
        return n; /* a Status object, read whole at the end */
    size_t start = 0;
    for (;;) {
        char *nl = memchr (st->buf + start, '\n', st->len - start);
        if (!nl)
            break;
        size_t line_len = (size_t) (nl - (st->buf + start));
        if (line_len > 0 && strspn (st->buf + start, " \t\r") < line_len)
            s_event (st, st->buf + start, line_len);
        start += line_len + 1;
        if (st->gone || st->relist)
            return CURL_WRITEFUNC_ERROR; /* this stream is done: list again */
    }
    memmove (st->buf, st->buf + start, st->len - start);
    st->len -= start;
    return n;
}

/* Runs one watch request to its end (server closed, error, or stop). Returns the curl
 * code; st has the status and what the events said. */
static CURLcode
s_stream (k8s_watch_t *w, stream_t *st, char *curl_error)
{
    char *selector = k8s_query_escape (w->selector);
    char *version = k8s_query_escape (w->resource_version ? w->resource_version : "");
    char *query = orr_sprintf ("watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s&labelSelector=%s",
                               k8s_config_watch_timeout_s (w->config), version, selector);
    char *url = k8s_collection_url (w->config, K8S_POD, query);
    free (selector);
    free (version);
    free (query);

    char *auth = orr_zalloc (K8S_AUTH_HEADER_MAX);
    char why[512];
    k8s_config_auth_header (w->config, auth, K8S_AUTH_HEADER_MAX, why, sizeof why); /* the last good token if the file is gone */
    struct curl_slist *headers = NULL;
    if (*auth)
        headers = curl_slist_append (headers, auth);
    headers = curl_slist_append (headers, "Accept: application/json");
    free (auth);

    CURL *easy = curl_easy_init ();
    if (!easy)
        abort (); /* out of memory */
    st->easy = easy;
    curl_easy_setopt (easy, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt (easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, k8s_config_timeout_ms (w->config));
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (k8s_config_watch_timeout_s (w->config) + K8S_WATCH_GRACE_S) * 1000L);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (easy, CURLOPT_USERAGENT, "orrery");
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_stream);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, st);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, curl_error);
    if (k8s_config_ca_file (w->config))
        curl_easy_setopt (easy, CURLOPT_CAINFO, k8s_config_ca_file (w->config));
    curl_multi_add_handle (w->multi, easy);

    int running = 1;
    while (running && !atomic_load (&w->stop)) {
        if (curl_multi_perform (w->multi, &running) != CURLM_OK || !running)
            break;
        curl_multi_poll (w->multi, NULL, 0, 1000, NULL);
    }
    CURLcode rc = CURLE_OK;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (w->multi, &left)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
            rc = msg->data.result;
    if (running) /* stopped while the stream was open */
        rc = CURLE_ABORTED_BY_CALLBACK;
    if (st->status == 0)
        curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &st->status);
    curl_multi_remove_handle (w->multi, easy);
    curl_easy_cleanup (easy);
    st->easy = NULL;
    curl_slist_free_all (headers);
    free (url);
    return rc;
}

/* --- the thread ----------------------------------------------------------------------- */

/* Sleeps ms, or less when stopped. */
static void
s_sleep (k8s_watch_t *w, int ms)
{
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&w->lock);
    while (!atomic_load (&w->stop) && pthread_cond_timedwait (&w->wake, &w->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock (&w->lock);
}

static int
s_backoff_next (int backoff_ms)
{
    if (backoff_ms == 0)
        return K8S_WATCH_BACKOFF_MIN_MS;
    return backoff_ms * 2 > K8S_WATCH_BACKOFF_MAX_MS ? K8S_WATCH_BACKOFF_MAX_MS : backoff_ms * 2;
}

static void *
s_run (void *arg)
{
    k8s_watch_t *w = arg;
    bool need_list = true, fresh = false;
    int backoff_ms = 0;
    while (!atomic_load (&w->stop)) {
        if (backoff_ms)
            s_sleep (w, backoff_ms);
        if (atomic_load (&w->stop))
            break;
        if (need_list) {
            if (s_list (w, fresh) < 0) {
                backoff_ms = s_backoff_next (backoff_ms);
                continue;
            }
            need_list = false;
            fresh = false;
            backoff_ms = 0;
        }
        stream_t st = { .watch = w };
        char curl_error[CURL_ERROR_SIZE] = "";
        int64_t started = orr_mono_ms ();
        CURLcode rc = s_stream (w, &st, curl_error);
        if (atomic_load (&w->stop)) {
            free (st.buf);
            break;
        }
        if (st.gone || st.status == 410) {
            need_list = true; /* the version is too old: a fresh list, at once */
            fresh = true;
        }
        else if (st.relist || st.too_long) {
            s_report_error (w, K8S_ERROR,
                            st.too_long ? "watch pods: an event line over 4 MiB" : st.error);
            need_list = true;
            backoff_ms = s_backoff_next (backoff_ms);
        }
        else if (st.status != 200 && st.status != 0) {
            char err[1024];
            json_t *body = st.buf ? json_loadb (st.buf, st.len, 0, NULL) : NULL;
            k8s_result_t r = k8s_result_from (st.status, body, "watch", "pods", err, sizeof err);
            json_decref (body);
            s_report_error (w, r, err);
            need_list = true;
            backoff_ms = s_backoff_next (backoff_ms);
        }
        else if (rc != CURLE_OK) {
            char err[1024];
            snprintf (err, sizeof err, "watch pods: %s", curl_error[0] ? curl_error : curl_easy_strerror (rc));
            s_report_error (w, K8S_ERROR, err);
            backoff_ms = s_backoff_next (backoff_ms); /* then watch again from the same version */
        }
        else if (st.events == 0 && orr_mono_ms () - started < K8S_WATCH_MIN_STREAM_MS)
            backoff_ms = s_backoff_next (backoff_ms); /* closed at once: do not spin */
        else
            backoff_ms = 0; /* the server ended the stream (timeoutSeconds): watch again */
        free (st.buf);
    }
    return NULL;
}

k8s_watch_t *
k8s_watch_new (k8s_config_t *config, const char *label_selector, k8s_watch_fn *fn, void *ctx)
{
    k8s_watch_t *self = orr_zalloc (sizeof *self);
    self->config = config;
    self->selector = orr_strdup (label_selector ? label_selector : K8S_SERVER_SELECTOR);
    self->fn = fn;
    self->ctx = ctx;
    atomic_init (&self->stop, false);
    atomic_init (&self->lists, 0);
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->wake, &attr);
    pthread_condattr_destroy (&attr);
    self->client = k8s_client_new (config); /* first: it runs curl_global_init */
    self->multi = curl_multi_init ();
    self->known = json_object ();
    if (!self->multi || pthread_create (&self->thread, NULL, s_run, self) != 0)
        abort (); /* out of memory or threads: the project's policy is to stop */
    return self;
}

void
k8s_watch_destroy (k8s_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    k8s_watch_t *self = *self_p;
    atomic_store (&self->stop, true);
    pthread_mutex_lock (&self->lock);
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->lock);
    curl_multi_wakeup (self->multi);
    pthread_join (self->thread, NULL);
    curl_multi_cleanup (self->multi);
    k8s_client_destroy (&self->client);
    json_decref (self->known);
    free (self->resource_version);
    free (self->selector);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
k8s_watch_lists (k8s_watch_t *self)
{
    return atomic_load (&self->lists);
}
