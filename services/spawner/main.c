/*  orrery-spawner: runs users' servers and tells the scheduler its nodes.
 *
 *  Owns server lifecycle state in Redis (docs/spawner.md). This file: settings, the bus
 *  methods (spawn, stop, logs), and start-up. The methods only change records (one Lua
 *  script each) and wake the engine (spawner_engine.c), which does the work on its own
 *  thread, so the bus is answered at once however long servers take.
 *
 *  The node source, chosen by NODE_SOURCE: "local" (the default) makes this replica the
 *  node agent of its host (spawner_node_agent.c) and runs servers as local processes;
 *  "kubernetes" publishes one node.heartbeat per Ready Node object of the cluster
 *  (k8s_nodes.c); its pod lifecycle is not wired to the engine yet (docs/kubernetes.md).
 */
#include "k8s_config.h"
#include "k8s_nodes.h"
#include "orr_bus.h"
#include "orr_crypto.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_service.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"
#include "orrery/spawner.pb-c.h"
#include "spawner.h"
#include "spawner_culler.h"
#include "spawner_env.h"
#include "spawner_local.h"
#include "spawner_node_agent.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOGS_DEFAULT_BYTES (64 * 1024)

static const orr_setting_t s_settings[] = {
    K8S_NODES_SETTINGS,
    NODE_AGENT_SETTINGS,
    SPAWNER_K8S_SETTINGS,
    SPAWNER_PROFILE_SETTINGS,
    SPAWNER_SETTINGS,
    SPAWNER_CULLER_SETTINGS,
    { NULL, NULL, NULL },
};

typedef struct {
    orr_service_t *svc;
    node_agent_t *agent;            /* NODE_SOURCE=local */
    k8s_nodes_source_t *k8s_nodes;  /* NODE_SOURCE=kubernetes */
    spawner_profiles_t *profiles;
    spawner_settings_t settings;
    bool have_settings;
    spawner_engine_t *engine;
    spawner_culler_t *culler;
    char *redis_url;
} spawner_main_t;

/* --- settings ------------------------------------------------------------------------------- */

static bool
s_bool (const char *v)
{
    return v && (strcmp (v, "1") == 0 || strcasecmp (v, "true") == 0 || strcasecmp (v, "yes") == 0);
}

int
spawner_settings_read (orr_config_t *config, const char *node, const spawner_profiles_t *profiles,
                       spawner_settings_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    out->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    out->replica = orr_strdup (orr_log_replica_id ());
    out->holder = orr_sprintf ("%s/%d", out->replica, (int) getpid ());
    out->node = orr_strdup (node);
    char sha[65];
    orr_sha256_hex (out->redis_url, strlen (out->redis_url), sha);
    out->stack_id = orr_strndup (sha, 16);
    out->profiles = profiles;

    size_t ncmd = 0, nargs = 0;
    char **cmd = orr_split (orr_config_get (config, "SPAWNER_CMD"), ' ', &ncmd);
    const char *args_text = orr_config_get (config, "SPAWNER_ARGS");
    char **args = orr_split (args_text ? args_text : "", ' ', &nargs);
    if (!ncmd) {
        orr_strv_free (&cmd);
        orr_strv_free (&args);
        snprintf (err, errlen, "SPAWNER_CMD is empty");
        return -1;
    }
    const char *base = strrchr (cmd[0], '/') ? strrchr (cmd[0], '/') + 1 : cmd[0];
    bool allow_root = geteuid () == 0 && strncmp (base, "jupyter", 7) == 0;
    out->cmd = orr_zalloc ((ncmd + nargs + 2) * sizeof (char *));
    size_t k = 0;
    for (size_t i = 0; i < ncmd; i++)
        out->cmd[k++] = orr_strdup (cmd[i]);
    for (size_t i = 0; i < nargs; i++)
        out->cmd[k++] = orr_strdup (args[i]);
    if (allow_root)
        out->cmd[k++] = orr_strdup ("--allow-root");
    orr_strv_free (&cmd);
    orr_strv_free (&args);

    const char *app = orr_config_get (config, "SINGLEUSER_APP");
    out->singleuser_app = app && *app ? orr_strdup (app) : NULL;
    const char *b = orr_config_get (config, "BASE_URL");
    size_t blen = strlen (b);
    out->base_url = orr_sprintf ("%s%s%s", b[0] == '/' ? "" : "/", b, blen && b[blen - 1] == '/' ? "" : "/");
    const char *hub = orr_config_get (config, "HUB_URL");
    size_t hlen = strlen (hub);
    out->hub_api_url = orr_sprintf ("%.*s%shub/api", (int) (hlen && hub[hlen - 1] == '/' ? hlen - 1 : hlen), hub,
                                    out->base_url);
    out->public_host = orr_strdup (orr_config_get (config, "PUBLIC_HOST") ? orr_config_get (config, "PUBLIC_HOST") : "");
    const char *state = orr_config_get (config, "STATE_DIR");
    const char *root = orr_config_get (config, "SERVER_ROOT_DIR");
    const char *logs = orr_config_get (config, "SERVER_LOG_DIR");
    out->root_dir = root && *root ? orr_strdup (root) : orr_sprintf ("%s/users", state);
    out->log_dir = logs && *logs ? orr_strdup (logs) : orr_sprintf ("%s/logs/servers", state);

    out->max_concurrent = orr_config_int (config, "MAX_CONCURRENT_SPAWNS");
    out->limits.allow_named = s_bool (orr_config_get (config, "ALLOW_NAMED_SERVERS"));
    out->limits.named_limit = orr_config_int (config, "NAMED_SERVER_LIMIT_PER_USER");
    out->limits.active_limit = orr_config_int (config, "ACTIVE_SERVER_LIMIT");
    out->start_timeout_ms = orr_config_int (config, "START_TIMEOUT_S") * 1000;
    out->http_timeout_ms = orr_config_int (config, "HTTP_TIMEOUT_S") * 1000;
    out->lease_ms = orr_config_int (config, "SPAWN_LEASE_MS");
    out->sigint_ms = orr_config_int (config, "STOP_SIGINT_MS");
    out->sigterm_ms = orr_config_int (config, "STOP_SIGTERM_MS");
    out->stop_on_exit = s_bool (orr_config_get (config, "STOP_SERVERS_ON_EXIT"));
    out->port_min = (int) orr_config_int (config, "SERVER_PORT_MIN");
    out->port_max = (int) orr_config_int (config, "SERVER_PORT_MAX");
    if (out->max_concurrent < 0 || out->limits.named_limit < 0 || out->limits.active_limit < 0
        || out->start_timeout_ms < 1000 || out->http_timeout_ms < 1000 || out->lease_ms < 500
        || out->sigint_ms < 0 || out->sigterm_ms < 0 || out->port_min < 1 || out->port_max > 65535
        || out->port_min > out->port_max) {
        snprintf (err, errlen, "spawner settings out of range: MAX_CONCURRENT_SPAWNS, NAMED_SERVER_LIMIT_PER_USER and "
                               "ACTIVE_SERVER_LIMIT >= 0; START_TIMEOUT_S and HTTP_TIMEOUT_S >= 1; SPAWN_LEASE_MS >= "
                               "500; STOP_* >= 0; 1 <= SERVER_PORT_MIN <= SERVER_PORT_MAX <= 65535");
        return -1;
    }
    local_set_cgroup_parent (orr_config_get (config, "CGROUP_PARENT"));
    return 0;
}

void
spawner_settings_clear (spawner_settings_t *s)
{
    free (s->redis_url);
    free (s->holder);
    free (s->replica);
    free (s->node);
    free (s->stack_id);
    orr_strv_free (&s->cmd);
    free (s->singleuser_app);
    free (s->base_url);
    free (s->hub_api_url);
    free (s->public_host);
    free (s->root_dir);
    free (s->log_dir);
    memset (s, 0, sizeof *s);
}

/* --- methods --------------------------------------------------------------------------------- */

static void
s_publish_server (spawner_main_t *self, const char *topic, const char *user, const char *server, const char *state,
                  const char *message, const char *url)
{
    Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
    ev.user = (char *) user;
    ev.server = (char *) server;
    ev.state = (char *) state;
    ev.message = (char *) message;
    ev.url = (char *) url;
    ev.time_us = orr_now_us ();
    orr_service_publish_msg (self->svc, topic, &ev.base);
}

/* 400 for names JupyterHub would never route. */
static bool
s_names_ok (const char *user, const char *server, orr_result_t *result)
{
    if (!user || !*user || strlen (user) > 255) {
        orr_result_fail (result, 400, "a user name of 1 to 255 bytes is required");
        return false;
    }
    if (server && (strlen (server) > 255 || strchr (server, '/'))) {
        orr_result_fail (result, 400, "Invalid server_name (may not contain '/'): %.100s", server);
        return false;
    }
    return true;
}

static bool
s_user_exists (spawner_main_t *self, const char *user, orr_result_t *result)
{
    char *key = orr_key_user (user);
    redisReply *r = orr_store_command (orr_store_thread (self->redis_url), "EXISTS %s", key);
    free (key);
    int exists = r && r->type == REDIS_REPLY_INTEGER ? (int) r->integer : -1;
    if (r)
        freeReplyObject (r);
    if (exists < 0)
        orr_result_fail (result, 503, "state store unavailable");
    else if (!exists)
        orr_result_fail (result, 404, "No such user: %.200s", user);
    return exists == 1;
}

static void
s_reply_status (orr_result_t *result, const srec_answer_t *a, const char *url)
{
    Orrery__ServerStatus st = ORRERY__SERVER_STATUS__INIT;
    st.state = (char *) a->state;
    st.url = (char *) url;
    st.queue_position = a->queue_position;
    st.message = (char *) a->message;
    orr_result_reply (result, &st.base);
}

static void
s_method_spawn (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    spawner_main_t *self = ctx;
    if (!orr_call_trusted (call, result, "spawner"))
        return;
    ORR_UNPACK_OR_400 (Orrery__SpawnRequest, orrery__spawn_request__unpack, req);
    if (!s_names_ok (req->user, req->server, result) || !s_user_exists (self, req->user, result)) {
        orrery__spawn_request__free_unpacked (req, NULL);
        return;
    }
    const char *options = req->user_options_json ? req->user_options_json : "";
    char err[300];
    if (*options && !spawner_profiles_pick (self->profiles, options, err, sizeof err)) {
        orr_result_fail (result, 400, "%s", err);
        orrery__spawn_request__free_unpacked (req, NULL);
        return;
    }
    char *url = spawner_server_url (self->settings.base_url, req->user, req->server);
    srec_answer_t a;
    srec_status_t rc = srec_spawn (orr_store_thread (self->redis_url), req->user, req->server, options, url,
                                   &self->settings.limits, &a);
    if (rc != SREC_OK)
        orr_result_fail (result, 503, "state store unavailable");
    else if (a.status != 200)
        orr_result_fail (result, a.status, "%s", a.message);
    else {
        if (a.changed) {
            s_publish_server (self, "server.pending", req->user, req->server, "queued", "Server requested", url);
            spawner_engine_poke (self->engine);
            orr_info ("spawn of %s/%s queued (position %d) by %s", req->user, req->server, a.queue_position,
                      req->requested_by && *req->requested_by ? req->requested_by : call->principal);
        }
        s_reply_status (result, &a, url);
    }
    free (url);
    orrery__spawn_request__free_unpacked (req, NULL);
}

static void
s_method_stop (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    spawner_main_t *self = ctx;
    if (!orr_call_trusted (call, result, "spawner"))
        return;
    ORR_UNPACK_OR_400 (Orrery__StopRequest, orrery__stop_request__unpack, req);
    if (!s_names_ok (req->user, req->server, result)) {
        orrery__stop_request__free_unpacked (req, NULL);
        return;
    }
    char *url = spawner_server_url (self->settings.base_url, req->user, req->server);
    srec_answer_t a;
    srec_status_t rc = srec_stop (orr_store_thread (self->redis_url), req->user, req->server, req->remove, &a);
    if (rc != SREC_OK)
        orr_result_fail (result, 503, "state store unavailable");
    else if (a.status != 200)
        orr_result_fail (result, a.status, "%s", a.message);
    else {
        if (a.changed && strcmp (a.state, "stopped") == 0)
            s_publish_server (self, "server.stopped", req->user, req->server, "stopped", "Spawn cancelled", url);
        else if (a.changed)
            s_publish_server (self, "server.stopping", req->user, req->server, a.state, "Server stopping", url);
        spawner_engine_poke (self->engine);
        s_reply_status (result, &a, url);
    }
    free (url);
    orrery__stop_request__free_unpacked (req, NULL);
}

static void
s_method_logs (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    spawner_main_t *self = ctx;
    if (!orr_call_trusted (call, result, "spawner"))
        return;
    ORR_UNPACK_OR_400 (Orrery__LogsRequest, orrery__logs_request__unpack, req);
    srec_t rec;
    if (!s_names_ok (req->user, req->server, result)) {
        orrery__logs_request__free_unpacked (req, NULL);
        return;
    }
    if (srec_read (orr_store_thread (self->redis_url), req->user, req->server, &rec) != SREC_OK)
        orr_result_fail (result, 503, "state store unavailable");
    else if (!*rec.state || !*rec.log)
        orr_result_fail (result, 404, "%s's server %s has no log yet", req->user, req->server);
    else if (strcmp (rec.node, self->settings.node) != 0)
        orr_result_fail (result, 502, "the log is on node %s; this spawner runs on %s", rec.node,
                         self->settings.node);
    else {
        size_t max = req->max_bytes > 0 ? (size_t) req->max_bytes : LOGS_DEFAULT_BYTES;
        if (max > SPAWNER_LOG_TAIL_MAX)
            max = SPAWNER_LOG_TAIL_MAX;
        char *text = local_log_tail (rec.log, max);
        if (!text)
            orr_result_fail (result, 404, "the log %s cannot be read", rec.log);
        else {
            Orrery__LogsReply out = ORRERY__LOGS_REPLY__INIT;
            out.text = text;
            out.node = rec.node;
            out.path = rec.log;
            orr_result_reply (result, &out.base);
            free (text);
        }
    }
    srec_clear (&rec);
    orrery__logs_request__free_unpacked (req, NULL);
}

/* server.start.requested / server.stop.requested (ServerIntent): integrators' intents.
 * Every replica hears them; the scripts are idempotent, so the first queues or stops and
 * the others find it done. Only trusted principals (anonymous on an unsecured bus,
 * service:* under CURVE) may publish them for now; others are logged and ignored. */
static void
s_on_intent (void *ctx, const orr_event_t *event)
{
    spawner_main_t *self = ctx;
    if (!orr_bus_principal_is_trusted (event->principal)) {
        orr_warn ("%s from %s ignored: only Orrery's services may publish intents", event->topic, event->principal);
        return;
    }
    Orrery__ServerIntent *in = orrery__server_intent__unpack (NULL, zframe_size (event->body), zframe_data (event->body));
    if (!in) {
        orr_warn ("%s: malformed body ignored", event->topic);
        return;
    }
    orr_result_t result = { .status = 200 };
    if (s_names_ok (in->user, in->server, &result)) {
        char *url = spawner_server_url (self->settings.base_url, in->user, in->server);
        srec_answer_t a;
        orr_store_t *store = orr_store_thread (self->redis_url);
        if (strcmp (event->topic, "server.start.requested") == 0) {
            if (s_user_exists (self, in->user, &result)
                && srec_spawn (store, in->user, in->server, in->user_options_json ? in->user_options_json : "", url,
                               &self->settings.limits, &a) == SREC_OK && a.status == 200 && a.changed)
                s_publish_server (self, "server.pending", in->user, in->server, "queued", "Server requested", url);
        }
        else if (srec_stop (store, in->user, in->server, in->remove, &a) == SREC_OK && a.status == 200 && a.changed)
            s_publish_server (self, strcmp (a.state, "stopped") == 0 ? "server.stopped" : "server.stopping", in->user,
                              in->server, a.state, strcmp (a.state, "stopped") == 0 ? "Spawn cancelled" : "Server stopping",
                              url);
        free (url);
        spawner_engine_poke (self->engine);
    }
    if (result.status != 200)
        orr_warn ("%s for %s/%s: %s", event->topic, in->user, in->server, result.error);
    orrery__server_intent__free_unpacked (in, NULL);
}

/* Another replica queued a spawn or handed a server to this node: look now. */
static void
s_on_server_event (void *ctx, const orr_event_t *event)
{
    (void) event;
    spawner_main_t *self = ctx;
    spawner_engine_poke (self->engine);
}

/* From the pod watch's thread. */
static void
s_wake (void *ctx)
{
    spawner_main_t *self = ctx;
    spawner_engine_poke (__atomic_load_n (&self->engine, __ATOMIC_ACQUIRE));
}

static void
s_poke (void *engine)
{
    spawner_engine_poke (engine);
}

/* --- start-up --------------------------------------------------------------------------------- */

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    spawner_main_t *self = calloc (1, sizeof *self);
    *state = self;
    if (!self)
        return 1;
    self->svc = svc;
    self->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    char err[512];
    self->profiles = spawner_profiles_new (orr_config_get (config, "SERVER_PROFILES"), err, sizeof err);
    if (!self->profiles) {
        orr_error ("%s", err);
        return 2;
    }
    const char *source = orr_config_get (config, "NODE_SOURCE");
    bool kubernetes = source && strcmp (source, "kubernetes") == 0;
    if (source && *source && !kubernetes && strcmp (source, "local") != 0) {
        orr_error ("NODE_SOURCE: \"%s\" is not local or kubernetes", source);
        return 2;
    }
    int rc = kubernetes ? k8s_nodes_source_start (svc, config, &self->k8s_nodes)
                        : node_agent_start (svc, config, &self->agent);
    if (rc != 0)
        return rc;
    self->have_settings = true;   /* cleared at teardown even when reading fails half-way */
    if (spawner_settings_read (config, kubernetes ? "" : node_agent_node_name (self->agent), self->profiles,
                               &self->settings, err, sizeof err)
        != 0) {
        orr_error ("%s", err);
        return 2;
    }
    if (kubernetes) {
        /* servers are pods: the command runs in the image, as its user, not as root here */
        size_t n = 0;
        while (self->settings.cmd[n])
            n++;
        if (n > 1 && strcmp (self->settings.cmd[n - 1], "--allow-root") == 0) {
            free (self->settings.cmd[n - 1]);
            self->settings.cmd[n - 1] = NULL;
        }
        self->settings.k8s = spawner_k8s_new (config, s_wake, self, err, sizeof err);
        if (!self->settings.k8s) {
            orr_error ("%s", err);
            return 2;
        }
    }
    self->settings.bus = orr_zalloc (sizeof (orr_bus_opts_t));
    if (orr_bus_opts_from_config (self->settings.bus, config) != 0)
        return 2;
    __atomic_store_n (&self->engine, spawner_engine_start (&self->settings), __ATOMIC_RELEASE);
    if (!self->engine)
        return 1;
    self->culler = spawner_culler_new (svc, config, self->settings.holder, s_poke, self->engine, &rc);
    if (rc != 0)
        return rc;
    orr_service_add_method (svc, "spawn", s_method_spawn, self);
    orr_service_add_method (svc, "stop", s_method_stop, self);
    orr_service_add_method (svc, "logs", s_method_logs, self);
    orr_service_on_event (svc, "server.pending", s_on_server_event, self);
    orr_service_on_event (svc, "server.progress", s_on_server_event, self);
    orr_service_on_event (svc, "server.stopping", s_on_server_event, self);
    orr_service_on_event (svc, "server.start.requested", s_on_intent, self);
    orr_service_on_event (svc, "server.stop.requested", s_on_intent, self);
    if (kubernetes)
        orr_info ("servers run as Kubernetes pods: %s ... (at most %lld spawns at once)", self->settings.cmd[0],
                  (long long) self->settings.max_concurrent);
    else
        orr_info ("servers run as local processes on node %s: %s ... (at most %lld spawns at once)",
                  self->settings.node, self->settings.cmd[0], (long long) self->settings.max_concurrent);
    return 0;
}

static void
s_teardown (void *state)
{
    spawner_main_t *self = state;
    if (!self)
        return;
    spawner_culler_destroy (&self->culler);
    spawner_engine_destroy (&self->engine);
    spawner_k8s_destroy (&self->settings.k8s);
    node_agent_destroy (&self->agent);
    k8s_nodes_source_destroy (&self->k8s_nodes);
    if (self->settings.bus) {
        orr_bus_opts_clear (self->settings.bus);
        free (self->settings.bus);
    }
    if (self->have_settings)
        spawner_settings_clear (&self->settings);
    spawner_profiles_destroy (&self->profiles);
    srec_shutdown ();
    free (self->redis_url);
    free (self);
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "spawner", "Orrery spawner: starts, polls and stops servers.", s_settings,
                             s_setup, s_teardown);
}
