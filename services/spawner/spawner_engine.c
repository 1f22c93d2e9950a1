/*  spawner_engine: the thread that does the spawner's work on servers.
 *
 *  One loop, woken by curl (probe answers), by spawner_engine_poke (a spawn was queued,
 *  a server was handed to this node) or by its 50 ms tick. Each server this replica
 *  holds is a job in a phase:
 *
 *    PLACE  ask the scheduler for a node; another node's → hand the server to that node's
 *           spawners (orr:{n:N}:starts) and forget it
 *    START  token + OAuth client from auth, environment, fork/exec with limits
 *    PROBE  GET <url> without auth until any status < 500 (reference §9), backing off
 *           from 5 ms to 50 ms, so readiness is seen within 50 ms instead of JupyterHub's
 *           backoff of up to a second; the process dying or HTTP_TIMEOUT_S fails it
 *    ROUTE  proxyctl adds the route, the scheduler binds the reservation, record → ready
 *    RUN    watch the process; its death fails the server with the reason (OOM named)
 *    STOP   route first (users then meet the hub's page, not a dead port), then SIGINT,
 *           SIGTERM, SIGKILL with the configured waits; clean up; record → stopped
 *
 *  Every Redis write of a job is fenced (spawner_records.c): a refused write means another
 *  replica took the server over, and the job is dropped without touching the process.
 *  Leases are renewed for all jobs at once every third of a lease; the renewal also brings back
 *  stop requests. The sweep (every SWEEP_MS) takes over servers whose lease expired (a
 *  replica died) when they are on this node, fails those of nodes whose spawners are gone
 *  for good, and kills processes of this stack that no record claims (orphans).
 *
 *  Blocking bus calls (scheduler, auth, proxyctl) are made from this thread: each takes
 *  about a millisecond, and a slow service delays this replica's spawns, not its answers
 *  to the bus (the service loop is another thread).
 */
#include "spawner.h"
#include "orr_events.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_rpc.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"
#include "orrery/events.pb-c.h"
#include "orrery/proxy.pb-c.h"
#include "orrery/scheduler.pb-c.h"
#include "spawner_env.h"
#include "spawner_local.h"

#include <curl/curl.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TICK_MS 50
#define STOPS_MS 100                 /* how often the holder's stop set is looked at */
#define SWEEP_MS 1000
#define ORPHAN_SCAN_MS 5000
#define ORPHAN_MIN_AGE_S 10          /* a process younger than this may not be recorded yet */
#define PROBE_FIRST_MS 5
#define PROBE_MAX_MS 50
#define PROBE_REQUEST_TIMEOUT_MS 2000
#define RETRY_MS 250                 /* a service that did not answer is asked again after */
#define EXIT_STOP_WAIT_MS 3000       /* STOP_SERVERS_ON_EXIT: SIGTERM, then SIGKILL after this */
#define SWEEP_BATCH 256

typedef enum { PHASE_PLACE, PHASE_START, PHASE_PROBE, PHASE_ROUTE, PHASE_RUN, PHASE_STOP } phase_t;

typedef struct job_t {
    srec_t rec;                      /* user, server, fence, url, options, node, pid, ... */
    phase_t phase;
    const spawner_profile_t *profile;
    char cgroup[160];
    bool our_child;                  /* started by this process (waitpid works) */
    bool routed;                     /* a route was added */
    bool reserved;                   /* the scheduler holds a reservation */
    int64_t deadline_ms;             /* of the current phase (monotonic) */
    int64_t next_ms;                 /* next probe or retry (monotonic) */
    int probe_interval_ms;
    CURL *probe;
    bool probe_running;
    int stop_stage;                  /* 0 not begun, 1 SIGINT sent, 2 SIGTERM, 3 SIGKILL */
    bool stop_requested;
    bool drop;                       /* remove from the list at the end of this pass */
    struct job_t *next;
} job_t;

struct spawner_engine_t {
    const spawner_settings_t *set;
    pthread_t thread;
    bool started;
    volatile int stopping;
    volatile int poked;
    orr_store_t *store;
    orr_bus_client_t *bus;
    orr_events_pub_t *pub;
    CURLM *multi;
    job_t *jobs;
    int64_t next_renew, next_stops, next_sweep, next_orphan_scan;
    unsigned port_seed;
};

/* --- events ------------------------------------------------------------------------------- */

static void
s_event (spawner_engine_t *self, const job_t *job, const char *topic, const char *state, int progress,
         const char *message, const char *reason)
{
    Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
    ev.user = job->rec.user;
    ev.server = job->rec.server;
    ev.state = (char *) state;
    ev.message = (char *) (message ? message : "");
    ev.progress = progress;
    ev.url = job->rec.url;
    ev.reason = (char *) (reason ? reason : "");
    ev.node = job->rec.node ? job->rec.node : "";
    ev.time_us = orr_now_us ();
    size_t n = protobuf_c_message_get_packed_size (&ev.base);
    uint8_t *buf = orr_zalloc (n + 1);
    protobuf_c_message_pack (&ev.base, buf);
    orr_events_publish (self->pub, topic, buf, n);
    free (buf);
}

/* --- jobs ---------------------------------------------------------------------------------- */

static job_t *
s_job_new (spawner_engine_t *self, srec_t *rec, phase_t phase)
{
    job_t *job = orr_zalloc (sizeof *job);
    job->rec = *rec;                 /* takes the strings over */
    memset (rec, 0, sizeof *rec);
    job->phase = phase;
    snprintf (job->cgroup, sizeof job->cgroup, "%.40s-%.60s--%.40s", self->set->stack_id, job->rec.user,
              job->rec.server);
    for (char *p = job->cgroup; *p; p++)
        if (*p == '/' || *p == '\n' || *p == ' ')
            *p = '_';
    job->next = self->jobs;
    self->jobs = job;
    return job;
}

static void
s_job_destroy (spawner_engine_t *self, job_t *job)
{
    if (job->probe) {
        if (job->probe_running)
            curl_multi_remove_handle (self->multi, job->probe);
        curl_easy_cleanup (job->probe);
    }
    srec_clear (&job->rec);
    free (job);
}

static job_t *
s_job_find (spawner_engine_t *self, const char *user, const char *server)
{
    for (job_t *j = self->jobs; j; j = j->next)
        if (strcmp (j->rec.user, user) == 0 && strcmp (j->rec.server, server) == 0)
            return j;
    return NULL;
}

static char *
s_reservation_id (const job_t *job)
{
    return orr_sprintf ("%s/%s", job->rec.user, job->rec.server);
}

/* A fenced write of field/value pairs; false (job dropped) when fenced out. */
static bool
s_write (spawner_engine_t *self, job_t *job, const char *const *pairs)
{
    bool stop = false;
    srec_status_t rc = srec_update (self->store, job->rec.user, job->rec.server, job->rec.fence, self->set->lease_ms,
                                    &stop, pairs);
    if (rc == SREC_FENCED) {
        orr_warn ("server %s/%s: taken over by another replica; leaving it", job->rec.user, job->rec.server);
        job->drop = true;
        return false;
    }
    if (stop)
        job->stop_requested = true;
    return rc == SREC_OK;
}

static void
s_progress (spawner_engine_t *self, job_t *job, int progress, const char *message)
{
    char p[16];
    snprintf (p, sizeof p, "%d", progress);
    const char *pairs[] = { "progress", p, "message", message, NULL };
    if (s_write (self, job, pairs))
        s_event (self, job, "server.progress", job->phase == PHASE_STOP ? "pending_stop" : "pending_spawn", progress,
                 message, NULL);
}

/* --- clean-up: everything a server holds outside its record -------------------------------- */

static void
s_release_resources (spawner_engine_t *self, job_t *job)
{
    char msg[256];
    if (job->routed || job->phase == PHASE_ROUTE) {   /* in ROUTE a failed add may have half-happened */
        char *path = orr_strdup (job->rec.url);
        Orrery__RouteDelete del = ORRERY__ROUTE_DELETE__INIT;
        del.path = path;
        int st = orr_rpc_call_msg (self->bus, "proxyctl", "route.delete", &del.base, NULL, NULL, msg, sizeof msg);
        if (st != 200)
            orr_warn ("server %s/%s: route.delete: %s", job->rec.user, job->rec.server, msg);
        free (path);
        job->routed = false;
    }
    if (job->rec.node && *job->rec.node) {
        char *id = s_reservation_id (job);
        Orrery__ReservationRef ref = ORRERY__RESERVATION_REF__INIT;
        ref.reservation = id;
        ref.node = job->rec.node;
        int st = orr_rpc_call_msg (self->bus, "scheduler", "release", &ref.base, NULL, NULL, msg, sizeof msg);
        if (st != 200)
            orr_warn ("server %s/%s: release: %s", job->rec.user, job->rec.server, msg);
        free (id);
    }
    if (job->rec.token_id && *job->rec.token_id) {
        Orrery__TokenDelete del = ORRERY__TOKEN_DELETE__INIT;
        del.owner = job->rec.user;
        del.id = job->rec.token_id;
        int st = orr_rpc_call_msg (self->bus, "auth", "token.delete", &del.base, NULL, NULL, msg, sizeof msg);
        if (st != 200 && st != 404)
            orr_warn ("server %s/%s: token.delete: %s", job->rec.user, job->rec.server, msg);
    }
    if (job->rec.client_id && *job->rec.client_id) {
        Orrery__OAuthClientDelete del = ORRERY__OAUTH_CLIENT_DELETE__INIT;
        del.client_id = job->rec.client_id;
        int st = orr_rpc_call_msg (self->bus, "auth", "oauth.client.delete", &del.base, NULL, NULL, msg, sizeof msg);
        if (st != 200 && st != 404)
            orr_warn ("server %s/%s: oauth.client.delete: %s", job->rec.user, job->rec.server, msg);
    }
    local_cleanup (job->cgroup);
}

/* The server failed: kill what runs, give everything back, record and tell the reason. */
static void
s_fail (spawner_engine_t *self, job_t *job, const char *reason)
{
    orr_warn ("server %s/%s failed: %s", job->rec.user, job->rec.server, reason);
    if (self->set->k8s && job->rec.pod && *job->rec.pod) {
        char err[300];
        if (spawner_k8s_delete (self->set->k8s, job->rec.pod, 0, err, sizeof err) != 0)
            orr_warn ("server %s/%s: %s", job->rec.user, job->rec.server, err);
    }
    if (job->rec.pid > 0) {
        local_signal ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, SIGKILL);
        int status;
        for (int i = 0; i < 100 && !local_exited ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, &status); i++)
            orr_sleep_ms (10);
    }
    s_release_resources (self, job);
    srec_status_t rc = srec_finish (self->store, job->rec.user, job->rec.server, job->rec.fence, "failed",
                                    "Spawn failed", reason, 0, NULL);
    if (rc == SREC_OK)
        s_event (self, job, "server.failed", "failed", 100, "Spawn failed", reason);
    job->drop = true;
}

static void
s_finish_stopped (spawner_engine_t *self, job_t *job, const char *message)
{
    s_release_resources (self, job);
    srec_status_t rc = srec_finish (self->store, job->rec.user, job->rec.server, job->rec.fence, "stopped", message,
                                    "", 0, NULL);
    if (rc == SREC_OK)
        s_event (self, job, "server.stopped", "stopped", 100, message, NULL);
    job->drop = true;
}

/* --- PLACE -------------------------------------------------------------------------------- */

static void
s_phase_place (spawner_engine_t *self, job_t *job)
{
    char err[256];
    job->profile = spawner_profiles_pick (self->set->profiles, job->rec.user_options, err, sizeof err);
    if (!job->profile) {
        s_fail (self, job, err);
        return;
    }
    Orrery__PlaceRequest req = ORRERY__PLACE_REQUEST__INIT;
    Orrery__Resources g = ORRERY__RESOURCES__INIT;
    g.cpu_millis = job->profile->guarantees.cpu_millis;
    g.memory_bytes = job->profile->guarantees.memory_bytes;
    g.gpus = (int32_t) job->profile->guarantees.gpus;
    req.guarantees = &g;
    char *id = s_reservation_id (job);
    req.reservation = id;
    req.group = job->rec.user;
    req.user = job->rec.user;
    req.server = job->rec.server;
    req.profile = job->profile->scheduling_profile;
    size_t nsel = job->profile->node_selector.count;
    Orrery__Label *labels = orr_zalloc ((nsel + 1) * sizeof *labels);
    Orrery__Label **label_ptrs = orr_zalloc ((nsel + 1) * sizeof *label_ptrs);
    for (size_t i = 0; i < nsel; i++) {
        orrery__label__init (&labels[i]);
        labels[i].key = job->profile->node_selector.items[i].key;
        labels[i].value = job->profile->node_selector.items[i].value;
        label_ptrs[i] = &labels[i];
    }
    req.node_selector = label_ptrs;
    req.n_node_selector = nsel;
    size_t ntol = job->profile->ntolerations;
    Orrery__Toleration *tols = orr_zalloc ((ntol + 1) * sizeof *tols);
    Orrery__Toleration **tol_ptrs = orr_zalloc ((ntol + 1) * sizeof *tol_ptrs);
    for (size_t i = 0; i < ntol; i++) {
        orrery__toleration__init (&tols[i]);
        tols[i].key = job->profile->tolerations[i].key;
        tols[i].operator_ = job->profile->tolerations[i].operator_;
        tols[i].value = job->profile->tolerations[i].value;
        tols[i].effect = job->profile->tolerations[i].effect;
        tol_ptrs[i] = &tols[i];
    }
    req.tolerations = tol_ptrs;
    req.n_tolerations = ntol;

    ProtobufCMessage *reply = NULL;
    int st = orr_rpc_call_msg (self->bus, "scheduler", "place", &req.base, &orrery__place_result__descriptor, &reply,
                               err, sizeof err);
    free (id);
    free (labels);
    free (label_ptrs);
    free (tols);
    free (tol_ptrs);
    if (st != 200) {
        if (orr_mono_ms () > job->deadline_ms) {
            char reason[400];
            snprintf (reason, sizeof reason, "no node: %s", err);
            s_fail (self, job, reason);
        }
        else
            job->next_ms = orr_mono_ms () + RETRY_MS;
        return;
    }
    Orrery__PlaceResult *res = (Orrery__PlaceResult *) reply;
    if (!res->placed) {
        char reason[600];
        snprintf (reason, sizeof reason, "%s", res->reason && *res->reason ? res->reason : "no node has room");
        protobuf_c_message_free_unpacked (reply, NULL);
        s_fail (self, job, reason);
        return;
    }
    free (job->rec.node);
    job->rec.node = orr_strdup (res->node);
    protobuf_c_message_free_unpacked (reply, NULL);
    job->reserved = true;
    char message[300];
    snprintf (message, sizeof message, "Scheduled on node %s", job->rec.node);
    if (!self->set->k8s && strcmp (job->rec.node, self->set->node) != 0) {
        /* another host's spawners start it: hand the lease over with the record */
        char *holder = orr_sprintf ("node:%s", job->rec.node);
        const char *pairs[] = { "node", job->rec.node, "holder", holder, "progress", "20", "message", message, NULL };
        bool ok = s_write (self, job, pairs);
        free (holder);
        if (ok) {
            char *m = srec_member (job->rec.user, job->rec.server);
            srec_handover_push (self->store, job->rec.node, m);
            free (m);
            s_event (self, job, "server.progress", "pending_spawn", 20, message, NULL);
        }
        job->drop = true;
        return;
    }
    const char *pairs[] = { "node", job->rec.node, NULL };
    if (!s_write (self, job, pairs))
        return;
    s_progress (self, job, 20, message);
    job->phase = PHASE_START;
}

/* --- START -------------------------------------------------------------------------------- */

/* A port nothing listens on, from the configured range. */
static int
s_pick_port (spawner_engine_t *self)
{
    int span = self->set->port_max - self->set->port_min + 1;
    for (int i = 0; i < 200; i++) {
        int port = self->set->port_min + (int) (rand_r (&self->port_seed) % (unsigned) span);
        if (orr_port_free (port))
            return port;
    }
    return -1;
}

/* The server's API token and OAuth client from auth; 0 or -1 with err. */
static int
s_credentials (spawner_engine_t *self, job_t *job, char *token, size_t tokenlen, char *err, size_t errlen)
{
    char note[600];
    snprintf (note, sizeof note, "Server at %s", job->rec.url);
    Orrery__TokenCreate tc = ORRERY__TOKEN_CREATE__INIT;
    char *roles[] = { "server" };
    tc.owner = job->rec.user;
    tc.note = note;
    tc.roles = roles;
    tc.n_roles = 1;
    ProtobufCMessage *reply = NULL;
    int st = orr_rpc_call_msg (self->bus, "auth", "token.create", &tc.base, &orrery__token_created__descriptor, &reply,
                               err, errlen);
    if (st != 200)
        return -1;
    Orrery__TokenCreated *created = (Orrery__TokenCreated *) reply;
    snprintf (token, tokenlen, "%s", created->token);
    free (job->rec.token_id);
    job->rec.token_id = orr_strdup (created->id);
    protobuf_c_message_free_unpacked (reply, NULL);

    char *client_id = spawner_client_id (job->rec.user, job->rec.server);
    char *callback = orr_sprintf ("%soauth_callback", job->rec.url);
    char *by_server = orr_sprintf ("access:servers!server=%s/%s", job->rec.user, job->rec.server);
    char *by_user = orr_sprintf ("access:servers!user=%s", job->rec.user);
    char *access[] = { by_server, by_user };
    Orrery__OAuthClient oc = ORRERY__OAUTH_CLIENT__INIT;
    oc.client_id = client_id;
    oc.secret = token;
    oc.redirect_uri = callback;
    oc.description = note;
    oc.access_scopes = access;
    oc.n_access_scopes = 2;
    oc.owner = job->rec.user;
    st = orr_rpc_call_msg (self->bus, "auth", "oauth.client.set", &oc.base, NULL, NULL, err, errlen);
    free (job->rec.client_id);
    job->rec.client_id = client_id;
    free (callback);
    free (by_server);
    free (by_user);
    return st == 200 ? 0 : -1;
}

/* The single-user environment of a job (reference §9), for either backend. */
static char **
s_server_env (spawner_engine_t *self, const job_t *job, const char *token, const char *bind_url, const char *home)
{
    spawner_env_spec_t es = {
        .user = job->rec.user,
        .server = job->rec.server,
        .base_url = self->set->base_url,
        .hub_api_url = self->set->hub_api_url,
        .public_host = self->set->public_host,
        .token = token,
        .bind_url = bind_url,
        .home = home,
        .singleuser_app = self->set->singleuser_app,
        .stack_id = self->set->stack_id,
        .profile = job->profile,
    };
    return spawner_env_build (&es);
}

static void s_phase_start_k8s (spawner_engine_t *self, job_t *job, const char *token);

static void
s_phase_start (spawner_engine_t *self, job_t *job)
{
    char err[512];
    if (!job->profile)
        job->profile = spawner_profiles_pick (self->set->profiles, job->rec.user_options, err, sizeof err);
    if (!job->profile) {
        s_fail (self, job, err);
        return;
    }
    /* a take-over restarts a start that had no process: the old token is not known */
    if (job->rec.token_id && *job->rec.token_id) {
        Orrery__TokenDelete del = ORRERY__TOKEN_DELETE__INIT;
        del.owner = job->rec.user;
        del.id = job->rec.token_id;
        orr_rpc_call_msg (self->bus, "auth", "token.delete", &del.base, NULL, NULL, err, sizeof err);
    }
    char token[128];
    if (s_credentials (self, job, token, sizeof token, err, sizeof err) != 0) {
        if (orr_mono_ms () > job->deadline_ms) {
            char reason[600];
            snprintf (reason, sizeof reason, "no credentials for the server: %s", err);
            s_fail (self, job, reason);
        }
        else
            job->next_ms = orr_mono_ms () + RETRY_MS;
        return;
    }
    if (self->set->k8s) {
        s_phase_start_k8s (self, job, token);
        memset (token, 0, sizeof token);
        return;
    }
    int port = s_pick_port (self);
    if (port < 0) {
        s_fail (self, job, "no free port in SERVER_PORT_MIN..SERVER_PORT_MAX");
        return;
    }
    char *escaped = orr_key_escape (job->rec.user);
    char *home = orr_sprintf ("%s/%s", self->set->root_dir, escaped);
    char *log = orr_sprintf ("%s/%s%s%s.log", self->set->log_dir, escaped, *job->rec.server ? "--" : "",
                             job->rec.server);
    for (char *p = log + strlen (self->set->log_dir) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
    free (escaped);
    char *bind_url = orr_sprintf ("http://127.0.0.1:%d", port);
    char **env = s_server_env (self, job, token, bind_url, home);
    local_start_t spec = {
        .argv = (const char *const *) self->set->cmd,
        .env = (const char *const *) env,
        .cwd = home,
        .log_path = log,
        .cgroup_name = job->cgroup,
        .mem_limit_bytes = job->profile->limits.memory_bytes,
        .cpu_limit_millis = job->profile->limits.cpu_millis,
        .pids_limit = job->profile->pids_limit,
    };
    local_proc_t proc;
    int rc = local_start (&spec, &proc, err, sizeof err);
    orr_strv_free (&env);
    memset (token, 0, sizeof token);
    free (home);
    if (rc != 0) {
        free (log);
        free (bind_url);
        s_fail (self, job, err);
        return;
    }
    job->our_child = true;
    job->rec.pid = proc.pid;
    job->rec.pid_start = (int64_t) proc.start_time;
    job->rec.port = port;
    free (job->rec.target);
    job->rec.target = bind_url;
    free (job->rec.log);
    job->rec.log = log;
    char pid[32], start[32], portstr[16];
    snprintf (pid, sizeof pid, "%d", (int) proc.pid);
    snprintf (start, sizeof start, "%llu", (unsigned long long) proc.start_time);
    snprintf (portstr, sizeof portstr, "%d", port);
    const char *pairs[] = { "pid", pid, "pid_start", start, "port", portstr, "target", bind_url,
                            "token_id", job->rec.token_id, "client_id", job->rec.client_id, "log", log,
                            "profile", job->profile->slug, NULL };
    if (!s_write (self, job, pairs))
        return;
    job->phase = PHASE_PROBE;
    job->deadline_ms = orr_mono_ms () + self->set->http_timeout_ms;
    job->probe_interval_ms = PROBE_FIRST_MS;
    job->next_ms = 0;
    s_progress (self, job, 50, "Spawning server...");
}


/* The Kubernetes backend's start: the same environment, in a pod placed on the
 * scheduler's node. */
static void
s_phase_start_k8s (spawner_engine_t *self, job_t *job, const char *token)
{
    char err[512];
    char *bind_url = orr_sprintf ("http://0.0.0.0:%d", SPAWNER_K8S_PORT);
    char **env = s_server_env (self, job, token, bind_url, K8S_HOME_MOUNT);
    size_t n = 0;
    while (env[n])
        n++;
    k8s_env_var_t *vars = orr_zalloc ((n + 1) * sizeof *vars);
    char **names = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        char *eq = strchr (env[i], '=');
        names[i] = orr_strndup (env[i], (size_t) (eq - env[i]));
        vars[i].name = names[i];
        vars[i].value = eq + 1;
    }
    k8s_server_spec_t spec = {
        .user = job->rec.user,
        .server_name = job->rec.server,
        .profile = job->profile,
        .node_name = job->rec.node,
        .env = vars,
        .nenv = n,
        .command = (const char *const *) self->set->cmd,
        .default_image = spawner_k8s_image (self->set->k8s),
    };
    char *pod = NULL;
    int rc = spawner_k8s_start (self->set->k8s, &spec, &pod, err, sizeof err);
    for (size_t i = 0; i < n; i++)
        free (names[i]);
    free (names);
    free (vars);
    orr_strv_free (&env);
    free (bind_url);
    if (rc != 0) {
        s_fail (self, job, err);
        return;
    }
    free (job->rec.pod);
    job->rec.pod = pod;
    const char *pairs[] = { "pod", pod, "token_id", job->rec.token_id, "client_id", job->rec.client_id, "profile",
                            job->profile->slug, NULL };
    if (!s_write (self, job, pairs))
        return;
    job->phase = PHASE_PROBE;
    job->deadline_ms = orr_mono_ms () + self->set->start_timeout_ms + self->set->http_timeout_ms;
    job->probe_interval_ms = PROBE_FIRST_MS;
    job->next_ms = 0;
    s_progress (self, job, 50, "Spawning server...");
}

/* The pod as the watch saw it: its address becomes the target once it runs; its end
 * (failed, completed, deleted) fails the server. true while the job may go on. */
static bool
s_k8s_check (spawner_engine_t *self, job_t *job, const char *when)
{
    spawner_pod_t pod;
    if (!spawner_k8s_pod (self->set->k8s, job->rec.pod, &pod)) {
        /* a running server's pod the watch has listed without: gone while no one looked */
        if (job->phase == PHASE_RUN && spawner_k8s_synced (self->set->k8s))
            pod.phase = K8S_PHASE_DELETED, pod.reason[0] = '\0';
        else
            return true;   /* not reported yet */
    }
    if (pod.phase == K8S_PHASE_FAILED || pod.phase == K8S_PHASE_SUCCEEDED || pod.phase == K8S_PHASE_DELETED) {
        char reason[800];
        snprintf (reason, sizeof reason, "%s: pod %s %s%s%s", when, job->rec.pod,
                  pod.phase == K8S_PHASE_DELETED ? "was deleted" : pod.phase == K8S_PHASE_FAILED ? "failed" : "completed",
                  pod.reason[0] ? ": " : "", pod.reason);
        s_fail (self, job, reason);
        return false;
    }
    if (pod.phase == K8S_PHASE_RUNNING && pod.pod_ip[0] && (!job->rec.target || !*job->rec.target)) {
        char *target = orr_sprintf ("http://%s:%d", pod.pod_ip, SPAWNER_K8S_PORT);
        const char *pairs[] = { "target", target, NULL };
        free (job->rec.target);
        job->rec.target = target;
        if (!s_write (self, job, pairs))
            return false;
    }
    return true;
}

/* --- PROBE -------------------------------------------------------------------------------- */

static size_t
s_discard (char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void) ptr;
    (void) ud;
    return size * nmemb;
}

static void
s_probe_begin (spawner_engine_t *self, job_t *job)
{
    if (!job->probe) {
        job->probe = curl_easy_init ();
        if (!job->probe)
            return;
        char *url = orr_sprintf ("%s%s", job->rec.target, job->rec.url);
        curl_easy_setopt (job->probe, CURLOPT_URL, url);
        free (url);
        curl_easy_setopt (job->probe, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt (job->probe, CURLOPT_TIMEOUT_MS, (long) PROBE_REQUEST_TIMEOUT_MS);
        curl_easy_setopt (job->probe, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (job->probe, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt (job->probe, CURLOPT_PRIVATE, job);
        curl_easy_setopt (job->probe, CURLOPT_PROXY, "");
    }
    if (curl_multi_add_handle (self->multi, job->probe) == CURLM_OK)
        job->probe_running = true;
}

/* A probe finished: up (any status < 500) or try again later. */
static void
s_probe_done (spawner_engine_t *self, job_t *job, CURLcode result)
{
    curl_multi_remove_handle (self->multi, job->probe);
    job->probe_running = false;
    long status = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo (job->probe, CURLINFO_RESPONSE_CODE, &status);
    if (job->phase != PHASE_PROBE)
        return;
    if (status > 0 && status < 500) {
        job->phase = PHASE_ROUTE;
        job->next_ms = 0;
        return;
    }
    job->next_ms = orr_mono_ms () + job->probe_interval_ms;
    job->probe_interval_ms = job->probe_interval_ms * 3 / 2 + 1;
    if (job->probe_interval_ms > PROBE_MAX_MS)
        job->probe_interval_ms = PROBE_MAX_MS;
}

/* The process is gone: its exit described, with the end of its log. */
static void
s_fail_exited (spawner_engine_t *self, job_t *job, int status, const char *when)
{
    char how[256];
    local_describe_exit (status, local_oom_killed (job->cgroup), how, sizeof how);
    char *tail = job->rec.log ? local_log_tail (job->rec.log, 600) : NULL;
    char reason[1200];
    snprintf (reason, sizeof reason, "%s: the server %s%s%s%s", when, strncmp (how, "killed", 6) == 0 ? "was " : "",
              how, tail && *tail ? ". Last output: " : "", tail ? tail : "");
    free (tail);
    job->rec.pid = 0;            /* nothing left to kill */
    s_fail (self, job, reason);
}

static void
s_phase_probe (spawner_engine_t *self, job_t *job)
{
    int status;
    if (self->set->k8s) {
        if (!s_k8s_check (self, job, "Server ended before it answered"))
            return;
        if (orr_mono_ms () > job->deadline_ms) {
            s_fail (self, job, "Server did not start and answer HTTP within START_TIMEOUT_S + HTTP_TIMEOUT_S");
            return;
        }
        if (job->rec.target && *job->rec.target && !job->probe_running && orr_mono_ms () >= job->next_ms)
            s_probe_begin (self, job);
        return;
    }
    if (local_exited ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, &status)) {
        s_fail_exited (self, job, status, "Server exited before it answered");
        return;
    }
    if (orr_mono_ms () > job->deadline_ms) {
        char reason[200];
        snprintf (reason, sizeof reason, "Server did not answer HTTP at %s within %lld s", job->rec.url,
                  (long long) (self->set->http_timeout_ms / 1000));
        s_fail (self, job, reason);
        return;
    }
    if (!job->probe_running && orr_mono_ms () >= job->next_ms)
        s_probe_begin (self, job);
}

/* --- ROUTE -------------------------------------------------------------------------------- */

static void
s_phase_route (spawner_engine_t *self, job_t *job)
{
    char err[256];
    Orrery__RouteAdd add = ORRERY__ROUTE_ADD__INIT;
    add.path = job->rec.url;
    add.target = job->rec.target;
    add.user = job->rec.user;
    add.server = job->rec.server;
    int st = orr_rpc_call_msg (self->bus, "proxyctl", "route.add", &add.base, NULL, NULL, err, sizeof err);
    if (st != 200) {
        if (orr_mono_ms () > job->deadline_ms) {
            char reason[400];
            snprintf (reason, sizeof reason, "no route: %s", err);
            s_fail (self, job, reason);
        }
        else
            job->next_ms = orr_mono_ms () + RETRY_MS;
        return;
    }
    job->routed = true;
    char *id = s_reservation_id (job);
    Orrery__ReservationRef ref = ORRERY__RESERVATION_REF__INIT;
    ref.reservation = id;
    ref.node = job->rec.node;
    st = orr_rpc_call_msg (self->bus, "scheduler", "bind", &ref.base, NULL, NULL, err, sizeof err);
    if (st != 200)
        orr_warn ("server %s/%s: bind: %s (the reservation may expire)", job->rec.user, job->rec.server, err);
    free (id);
    char message[600];
    snprintf (message, sizeof message, "Server ready at %s", job->rec.url);
    bool stop = false;
    srec_status_t rc = srec_finish (self->store, job->rec.user, job->rec.server, job->rec.fence, "ready", message, "",
                                    self->set->lease_ms, &stop);
    if (rc == SREC_FENCED) {
        job->drop = true;
        return;
    }
    job->phase = PHASE_RUN;
    s_event (self, job, "server.ready", "ready", 100, message, NULL);
    orr_info ("server %s/%s ready at %s (pid %lld)", job->rec.user, job->rec.server, job->rec.target,
              (long long) job->rec.pid);
    if (stop)
        job->stop_requested = true;
}

/* --- RUN and STOP ------------------------------------------------------------------------- */

static void
s_phase_run (spawner_engine_t *self, job_t *job)
{
    int status;
    if (self->set->k8s)
        s_k8s_check (self, job, "Server stopped unexpectedly");
    else if (local_exited ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, &status))
        s_fail_exited (self, job, status, "Server stopped unexpectedly");
}

static void
s_begin_stop (spawner_engine_t *self, job_t *job)
{
    if (job->probe_running) {
        curl_multi_remove_handle (self->multi, job->probe);
        job->probe_running = false;
    }
    bool had_process = job->rec.pid > 0 || (job->rec.pod && *job->rec.pod);
    job->stop_stage = 0;
    job->next_ms = 0;
    const char *pairs[] = { "state", "pending_stop", "message", had_process ? "Server stopping" : "Spawn cancelled",
                            NULL };
    phase_t was = job->phase;
    job->phase = PHASE_STOP;
    if (!s_write (self, job, pairs))
        return;
    /* the stop method announced a ready server's stop; a pending one's is news */
    if (was != PHASE_RUN)
        s_event (self, job, "server.stopping", "pending_stop", 0, had_process ? "Server stopping" : "Spawn cancelled",
                 NULL);
    if (!had_process)
        return;
    /* the route goes first: a user then meets the hub's "not running" page, not a dead port */
    char err[256];
    Orrery__RouteDelete del = ORRERY__ROUTE_DELETE__INIT;
    del.path = job->rec.url;
    if (orr_rpc_call_msg (self->bus, "proxyctl", "route.delete", &del.base, NULL, NULL, err, sizeof err) == 200)
        job->routed = false;
}

static void
s_phase_stop_k8s (spawner_engine_t *self, job_t *job)
{
    spawner_pod_t pod;
    bool known = spawner_k8s_pod (self->set->k8s, job->rec.pod, &pod);
    if (!job->rec.pod || !*job->rec.pod || (known && pod.phase == K8S_PHASE_DELETED)
        || (!known && spawner_k8s_synced (self->set->k8s) && job->stop_stage > 0)) {
        free (job->rec.pod);
        job->rec.pod = NULL;
        s_finish_stopped (self, job, job->stop_stage ? "Server stopped" : "Spawn cancelled");
        return;
    }
    int64_t now = orr_mono_ms ();
    if (now < job->next_ms)
        return;
    char err[300];
    /* first the pod's grace period (SIGTERM, then SIGKILL by the kubelet); if it is still
     * listed long after, delete it again without grace */
    int grace = job->stop_stage == 0 ? SPAWNER_K8S_STOP_GRACE_S : 0;
    if (spawner_k8s_delete (self->set->k8s, job->rec.pod, grace, err, sizeof err) != 0)
        orr_warn ("server %s/%s: %s", job->rec.user, job->rec.server, err);
    job->stop_stage++;
    job->next_ms = now + (grace + 30) * 1000;
}

static void
s_phase_stop (spawner_engine_t *self, job_t *job)
{
    int status;
    if (self->set->k8s) {
        s_phase_stop_k8s (self, job);
        return;
    }
    if (job->rec.pid <= 0 || local_exited ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, &status)) {
        job->rec.pid = 0;
        s_finish_stopped (self, job, job->stop_stage ? "Server stopped" : "Spawn cancelled");
        return;
    }
    int64_t now = orr_mono_ms ();
    if (now < job->next_ms)
        return;
    static const int signals[] = { SIGINT, SIGTERM, SIGKILL };
    if (job->stop_stage >= 3) {
        /* SIGKILL did not end it within its wait: a process in D state; keep waiting */
        job->next_ms = now + 1000;
        return;
    }
    int sig = signals[job->stop_stage];
    local_signal ((pid_t) job->rec.pid, (uint64_t) job->rec.pid_start, sig);
    job->stop_stage++;
    job->next_ms = now + (sig == SIGINT ? self->set->sigint_ms : sig == SIGTERM ? self->set->sigterm_ms : 5000);
}

static void
s_advance (spawner_engine_t *self, job_t *job)
{
    if (job->drop)
        return;
    if (job->stop_requested && job->phase != PHASE_STOP) {
        s_begin_stop (self, job);
        if (job->drop)
            return;
    }
    if (job->phase != PHASE_PROBE && job->phase != PHASE_STOP && job->phase != PHASE_RUN
        && orr_mono_ms () < job->next_ms)
        return;
    switch (job->phase) {
    case PHASE_PLACE: s_phase_place (self, job); break;
    case PHASE_START: s_phase_start (self, job); break;
    case PHASE_PROBE: s_phase_probe (self, job); break;
    case PHASE_ROUTE: s_phase_route (self, job); break;
    case PHASE_RUN: s_phase_run (self, job); break;
    case PHASE_STOP: s_phase_stop (self, job); break;
    }
}

/* --- taking work: the queue, hand-overs, take-overs ---------------------------------------- */

static void
s_take_queue (spawner_engine_t *self)
{
    for (int i = 0; i < 64; i++) {
        srec_t rec;
        if (srec_take (self->store, self->set->holder, self->set->lease_ms, self->set->max_concurrent, &rec) != SREC_OK)
            return;
        job_t *job = s_job_new (self, &rec, PHASE_PLACE);
        job->deadline_ms = orr_mono_ms () + self->set->start_timeout_ms;
        s_event (self, job, "server.progress", "pending_spawn", 10, "Server starting", NULL);
    }
}

/* A claimed record becomes a job in the phase its state and process call for. */
static void
s_resume (spawner_engine_t *self, srec_t *rec, const char *why)
{
    const char *state = rec->state;
    bool alive = rec->pid > 0 && local_alive ((pid_t) rec->pid, (uint64_t) rec->pid_start);
    if (self->set->k8s && rec->pod && *rec->pod) {
        spawner_pod_t pod;
        alive = spawner_k8s_pod (self->set->k8s, rec->pod, &pod) && pod.phase != K8S_PHASE_DELETED
                && pod.phase != K8S_PHASE_FAILED && pod.phase != K8S_PHASE_SUCCEEDED;
    }
    phase_t phase;
    if (strcmp (state, "pending_spawn") == 0)
        phase = alive ? PHASE_PROBE : (rec->node && *rec->node ? PHASE_START : PHASE_PLACE);
    else if (strcmp (state, "ready") == 0)
        phase = PHASE_RUN;
    else
        phase = PHASE_STOP;
    job_t *job = s_job_new (self, rec, phase);
    job->reserved = job->rec.node && *job->rec.node;
    job->routed = strcmp (state, "ready") == 0 || strcmp (state, "pending_stop") == 0;
    job->stop_requested = job->rec.stop;
    job->deadline_ms = orr_mono_ms () + (phase == PHASE_PROBE ? self->set->http_timeout_ms : self->set->start_timeout_ms);
    job->probe_interval_ms = PROBE_FIRST_MS;
    orr_info ("server %s/%s (%s) taken over (%s)%s", job->rec.user, job->rec.server, state, why,
              alive ? ", its process adopted" : "");
    if (!alive && job->rec.pid > 0) {
        job->rec.pid = 0;
        if (phase == PHASE_RUN) {
            s_fail (self, job, "Server stopped while its spawner was away: the process is gone");
            return;
        }
        if (phase == PHASE_PROBE || phase == PHASE_START) {
            s_fail (self, job, "Server start interrupted: its spawner died and the process is gone");
            return;
        }
    }
    if (phase == PHASE_STOP)
        job->stop_stage = 0;
}

static void
s_take_handovers (spawner_engine_t *self)
{
    char *expect = orr_sprintf ("node:%s", self->set->node);
    for (int i = 0; i < 64; i++) {
        char *m = srec_handover_pop (self->store, self->set->node);
        if (!m)
            break;
        char *user, *server;
        if (srec_member_split (m, &user, &server)) {
            srec_t rec;
            if (!s_job_find (self, user, server)
                && srec_claim (self->store, user, server, self->set->holder, expect, self->set->lease_ms, &rec)
                       == SREC_OK)
                s_resume (self, &rec, "handed to this node");
            free (user);
            free (server);
        }
        free (m);
    }
    free (expect);
}

/* Expired leases: servers of this node are taken over; those of a node whose spawners
 * stayed away for 3 leases are failed (their processes cannot be reached from here). */
static void
s_sweep (spawner_engine_t *self)
{
    size_t n;
    char **expired = srec_expired (self->store, 0, SWEEP_BATCH, &n);
    for (size_t i = 0; i < n; i++) {
        char *user, *server;
        if (!srec_member_split (expired[i], &user, &server))
            continue;
        srec_t rec;
        if (!s_job_find (self, user, server) && srec_read (self->store, user, server, &rec) == SREC_OK) {
            bool mine = self->set->k8s || !*rec.node || strcmp (rec.node, self->set->node) == 0;
            int64_t now_ms = orr_now_us () / 1000;
            bool abandoned = rec.lease_ms && now_ms - rec.lease_ms > 3 * self->set->lease_ms;
            srec_clear (&rec);
            if (mine || abandoned) {
                if (srec_claim (self->store, user, server, self->set->holder, NULL, self->set->lease_ms, &rec)
                    == SREC_OK) {
                    if (mine)
                        s_resume (self, &rec, "its holder's lease expired");
                    else {
                        job_t *job = s_job_new (self, &rec, PHASE_STOP);
                        char reason[300];
                        snprintf (reason, sizeof reason, "the spawners of node %s are gone", job->rec.node);
                        job->rec.pid = 0;   /* on another host: not ours to signal */
                        s_fail (self, job, reason);
                    }
                }
            }
        }
        free (user);
        free (server);
    }
    orr_strv_free (&expired);
}

/* At start-up: what this replica held in a previous life (same replica id) is taken over at
 * once rather than after its lease. */
static void
s_take_previous_life (spawner_engine_t *self)
{
    size_t n;
    char **active = srec_active (self->store, &n);
    char *prefix = orr_sprintf ("%s/", self->set->replica);
    for (size_t i = 0; i < n; i++) {
        char *user, *server;
        if (!srec_member_split (active[i], &user, &server))
            continue;
        srec_t rec;
        if (srec_read (self->store, user, server, &rec) == SREC_OK) {
            char *holder = strncmp (rec.holder, prefix, strlen (prefix)) == 0 && strcmp (rec.holder, self->set->holder)
                           ? orr_strdup (rec.holder) : NULL;
            srec_clear (&rec);
            if (holder && srec_claim (self->store, user, server, self->set->holder, holder, self->set->lease_ms, &rec)
                              == SREC_OK)
                s_resume (self, &rec, "held by this replica before a restart");
            free (holder);
        }
        free (user);
        free (server);
    }
    free (prefix);
    orr_strv_free (&active);
}

/* --- orphans ------------------------------------------------------------------------------ */

/* The value of NAME in /proc/PID/environ, into out; false when absent or unreadable. */
static bool
s_proc_env (const char *pid, const char *name, char *out, size_t outlen)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%s/environ", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    static char buf[1 << 16];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    size_t nl = strlen (name);
    for (size_t i = 0; i < n;) {
        const char *entry = buf + i;
        size_t el = strlen (entry);
        if (el > nl && strncmp (entry, name, nl) == 0 && entry[nl] == '=') {
            snprintf (out, outlen, "%s", entry + nl + 1);
            return true;
        }
        i += el + 1;
    }
    return false;
}

/* Session leaders of this stack (ORRERY_STACK) that no active record claims, older than
 * ORPHAN_MIN_AGE_S (a sibling replica may not have recorded a fresh one yet): killed. */
typedef struct {
    char *pod, *user, *server;
} pod_ref_t;

static void
s_collect_pod (void *ctx, const char *pod_name, const char *user, const char *server)
{
    zlistx_t *list = ctx;
    pod_ref_t *ref = orr_zalloc (sizeof *ref);
    ref->pod = orr_strdup (pod_name);
    ref->user = orr_strdup (user);
    ref->server = orr_strdup (server);
    zlistx_add_end (list, ref);
}

/* Kubernetes: server pods (our label selector) that no active record names are deleted. */
static void
s_delete_orphan_pods (spawner_engine_t *self)
{
    if (!spawner_k8s_synced (self->set->k8s))
        return;
    zlistx_t *pods = zlistx_new ();
    spawner_k8s_each_pod (self->set->k8s, s_collect_pod, pods);
    for (pod_ref_t *ref = zlistx_first (pods); ref; ref = zlistx_next (pods)) {
        srec_t rec;
        if (*ref->user && srec_read (self->store, ref->user, ref->server, &rec) == SREC_OK) {
            bool active = strcmp (rec.state, "pending_spawn") == 0 || strcmp (rec.state, "ready") == 0
                          || strcmp (rec.state, "pending_stop") == 0;
            bool claimed = active && (strcmp (rec.pod, ref->pod) == 0 || (!*rec.pod && strcmp (rec.state, "pending_spawn") == 0));
            srec_clear (&rec);
            if (!claimed) {
                char err[300];
                orr_warn ("deleting orphaned pod %s of %s/%s (no record claims it)", ref->pod, ref->user, ref->server);
                spawner_k8s_delete (self->set->k8s, ref->pod, 0, err, sizeof err);
            }
        }
        free (ref->pod);
        free (ref->user);
        free (ref->server);
        free (ref);
    }
    zlistx_destroy (&pods);
}

static void
s_kill_orphans (spawner_engine_t *self)
{
    if (self->set->k8s) {
        s_delete_orphan_pods (self);
        return;
    }
    DIR *d = opendir ("/proc");
    if (!d)
        return;
    long ticks = sysconf (_SC_CLK_TCK);
    double uptime = 0;
    FILE *uf = fopen ("/proc/uptime", "r");
    if (uf) {
        if (fscanf (uf, "%lf", &uptime) != 1)
            uptime = 0;
        fclose (uf);
    }
    struct dirent *e;
    while ((e = readdir (d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t) atoi (e->d_name);
        if (getsid (pid) != pid)
            continue;
        char stack[128], user[512], server[512];
        if (!s_proc_env (e->d_name, "ORRERY_STACK", stack, sizeof stack) || strcmp (stack, self->set->stack_id) != 0)
            continue;
        uint64_t start = local_start_time_of (pid);
        if (!start || ticks <= 0 || uptime - (double) start / (double) ticks < ORPHAN_MIN_AGE_S)
            continue;
        if (!s_proc_env (e->d_name, "JUPYTERHUB_USER", user, sizeof user))
            continue;
        if (!s_proc_env (e->d_name, "JUPYTERHUB_SERVER_NAME", server, sizeof server))
            server[0] = '\0';
        srec_t rec;
        if (srec_read (self->store, user, server, &rec) != SREC_OK)
            continue;   /* Redis away: decide nothing */
        bool claimed = (strcmp (rec.state, "pending_spawn") == 0 || strcmp (rec.state, "ready") == 0
                        || strcmp (rec.state, "pending_stop") == 0)
                       && rec.pid == pid && (uint64_t) rec.pid_start == start;
        srec_clear (&rec);
        if (!claimed) {
            orr_warn ("killing orphaned server process %d of %s/%s (no record claims it)", (int) pid, user, server);
            local_signal (pid, start, SIGKILL);
        }
    }
    closedir (d);
}

/* --- renewal ------------------------------------------------------------------------------ */

static void
s_renew (spawner_engine_t *self)
{
    size_t n = 0;
    for (job_t *j = self->jobs; j; j = j->next)
        if (!j->drop)
            n++;
    if (!n)
        return;
    char **users = orr_zalloc (n * sizeof (char *));
    char **servers = orr_zalloc (n * sizeof (char *));
    int64_t *fences = orr_zalloc (n * sizeof (int64_t));
    int *out = orr_zalloc (n * sizeof (int));
    job_t **jobs = orr_zalloc (n * sizeof (job_t *));
    size_t i = 0;
    for (job_t *j = self->jobs; j; j = j->next)
        if (!j->drop) {
            users[i] = j->rec.user;
            servers[i] = j->rec.server;
            fences[i] = j->rec.fence;
            jobs[i++] = j;
        }
    if (srec_renew (self->store, n, users, servers, fences, self->set->lease_ms, out) == SREC_OK)
        for (i = 0; i < n; i++) {
            if (out[i] == 0) {
                orr_warn ("server %s/%s: lease lost to another replica; leaving it", jobs[i]->rec.user,
                          jobs[i]->rec.server);
                jobs[i]->drop = true;
            }
            else if (out[i] == 2)
                jobs[i]->stop_requested = true;
        }
    free (users);
    free (servers);
    free (fences);
    free (out);
    free (jobs);
}

/* Stops asked of servers this replica holds (srec_stops_pop): one SPOP when none. */
static void
s_take_stops (spawner_engine_t *self)
{
    if (!self->jobs)
        return;
    size_t n;
    char **stops = srec_stops_pop (self->store, self->set->holder, SWEEP_BATCH, &n);
    for (size_t i = 0; i < n; i++) {
        char *user, *server;
        if (!srec_member_split (stops[i], &user, &server))
            continue;
        job_t *job = s_job_find (self, user, server);
        if (job)
            job->stop_requested = true;
        free (user);
        free (server);
    }
    orr_strv_free (&stops);
}

/* --- the loop ------------------------------------------------------------------------------ */

static void
s_reap_dropped (spawner_engine_t *self)
{
    job_t **pp = &self->jobs;
    while (*pp) {
        job_t *j = *pp;
        if (j->drop) {
            *pp = j->next;
            s_job_destroy (self, j);
        }
        else
            pp = &j->next;
    }
}

static void
s_curl_results (spawner_engine_t *self)
{
    int running = 0;
    curl_multi_perform (self->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        job_t *job = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &job);
        if (job)
            s_probe_done (self, job, msg->data.result);
    }
}

/* STOP_SERVERS_ON_EXIT: every process gets SIGTERM, then SIGKILL after EXIT_STOP_WAIT_MS. */
static void
s_stop_all (spawner_engine_t *self)
{
    for (job_t *j = self->jobs; j; j = j->next)
        if (!j->drop && j->rec.pid > 0) {
            Orrery__RouteDelete del = ORRERY__ROUTE_DELETE__INIT;
            char err[256];
            del.path = j->rec.url;
            if (orr_rpc_call_msg (self->bus, "proxyctl", "route.delete", &del.base, NULL, NULL, err, sizeof err) == 200)
                j->routed = false;
            local_signal ((pid_t) j->rec.pid, (uint64_t) j->rec.pid_start, SIGTERM);
        }
    int64_t deadline = orr_mono_ms () + EXIT_STOP_WAIT_MS;
    for (job_t *j = self->jobs; j; j = j->next) {
        if (j->drop)
            continue;
        int status;
        while (j->rec.pid > 0 && !local_exited ((pid_t) j->rec.pid, (uint64_t) j->rec.pid_start, &status)) {
            if (orr_mono_ms () > deadline) {
                local_signal ((pid_t) j->rec.pid, (uint64_t) j->rec.pid_start, SIGKILL);
                orr_sleep_ms (20);
            }
            else
                orr_sleep_ms (20);
        }
        j->rec.pid = 0;
        j->stop_stage = 1;
        s_finish_stopped (self, j, "Server stopped (its spawner shut down)");
    }
}

static void *
s_engine_run (void *arg)
{
    spawner_engine_t *self = arg;
    self->store = orr_store_new (self->set->redis_url);
    self->bus = orr_bus_client_new (self->set->bus);
    self->pub = orr_events_pub_new (self->set->bus);
    if (!self->store || !self->bus || !self->pub) {
        orr_error ("spawner engine: cannot start (Redis, bus or curl)");
        return NULL;
    }
    s_take_previous_life (self);
    bool moved = false;   /* a job changed phase last pass: its next step is due now */
    bool freed = false;   /* a spawn ended last pass: the queue's next may start now */
    while (!self->stopping) {
        int64_t now = orr_mono_ms ();
        int timeout = moved ? 0 : TICK_MS;
        for (job_t *j = self->jobs; j; j = j->next)
            if (j->phase == PHASE_PROBE && !j->probe_running) {
                int64_t wait = j->next_ms - now;
                if (wait < timeout)
                    timeout = wait < 0 ? 0 : (int) wait;
            }
        if (!__atomic_load_n (&self->poked, __ATOMIC_ACQUIRE))
            curl_multi_poll (self->multi, NULL, 0, timeout, NULL);
        s_curl_results (self);
        bool poked = __atomic_exchange_n (&self->poked, 0, __ATOMIC_ACQ_REL);
        now = orr_mono_ms ();
        if (poked || freed || now >= self->next_stops) {
            s_take_handovers (self);
            s_take_queue (self);
        }
        moved = freed = false;
        for (job_t *j = self->jobs; j; j = j->next) {
            phase_t before = j->phase;
            bool was_dropped = j->drop;
            s_advance (self, j);
            moved |= j->phase != before && !j->drop;
            freed |= before < PHASE_RUN && (j->phase >= PHASE_RUN || (j->drop && !was_dropped));
        }
        s_reap_dropped (self);
        now = orr_mono_ms ();
        if (now >= self->next_stops) {
            s_take_stops (self);
            self->next_stops = now + STOPS_MS;
        }
        if (now >= self->next_renew) {
            s_renew (self);
            self->next_renew = now + self->set->lease_ms / 3;
        }
        if (now >= self->next_sweep) {
            s_sweep (self);
            self->next_sweep = now + SWEEP_MS;
        }
        if (now >= self->next_orphan_scan) {
            s_kill_orphans (self);
            self->next_orphan_scan = now + ORPHAN_SCAN_MS;
        }
    }
    if (self->set->stop_on_exit)
        s_stop_all (self);
    s_reap_dropped (self);
    return NULL;
}

spawner_engine_t *
spawner_engine_start (const spawner_settings_t *settings)
{
    spawner_engine_t *self = orr_zalloc (sizeof *self);
    self->set = settings;
    self->port_seed = (unsigned) (orr_now_us () ^ getpid ());
    srec_init ();
    self->multi = curl_multi_init ();
    if (!self->multi || pthread_create (&self->thread, NULL, s_engine_run, self) != 0) {
        if (self->multi)
            curl_multi_cleanup (self->multi);
        free (self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
spawner_engine_poke (spawner_engine_t *self)
{
    if (!self)
        return;
    __atomic_store_n (&self->poked, 1, __ATOMIC_RELEASE);
    if (self->multi)
        curl_multi_wakeup (self->multi);
}

void
spawner_engine_destroy (spawner_engine_t **self_p)
{
    spawner_engine_t *self = *self_p;
    if (!self)
        return;
    self->stopping = 1;
    spawner_engine_poke (self);
    if (self->started)
        pthread_join (self->thread, NULL);
    while (self->jobs) {
        job_t *j = self->jobs;
        self->jobs = j->next;
        s_job_destroy (self, j);
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    orr_events_pub_destroy (&self->pub);
    orr_bus_client_destroy (&self->bus);
    orr_store_destroy (&self->store);
    free (self);
    *self_p = NULL;
}
