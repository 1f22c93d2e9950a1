/*  orrery-gateway: the HTTP face of Orrery (JupyterHub 3.0's REST API and pages).
 *
 *  Stateless: it reads Redis and asks the owning services over the bus. Replicas share
 *  one port (SO_REUSEPORT). The main thread listens to events while MHD's threads serve
 *  requests: identity events empty the credential cache, and a stop (SIGINT/SIGTERM or a
 *  trusted hub.shutdown) ends the process after in-flight requests are answered.
 */
#include "gw.h"
#include "gw_http.h"
#include "gw_reply_cache.h"
#include "gw_routes.h"
#include "gw_watch.h"
#include "orr_keys.h"
#include "orr_util.h"
#include "orr_bus.h"
#include "orr_config.h"
#include "orr_events.h"
#include "orr_log.h"
#include "orr_signal.h"

#include <czmq.h>
#include <string.h>

static const orr_setting_t s_settings[] = {
    { "GATEWAY_IP", "127.0.0.1", "address the gateway listens on" },
    { "GATEWAY_PORT", "8081", "port the gateway listens on (shared by all local replicas)" },
    { "GATEWAY_THREADS", "2", "HTTP worker threads per replica" },
    { "GATEWAY_MAX_CONNECTIONS", "4000", "open connections per replica; more are refused" },
    { "GATEWAY_TIMEOUT_S", "60", "idle or slow connections are closed after this many seconds" },
    { "GATEWAY_MAX_BODY", "1048576", "largest request body in bytes (413 beyond)" },
    { "BASE_URL", "/", "URL prefix of everything Orrery serves" },
    { "GATEWAY_CACHE_MS", "500", "how long a validated token or session is trusted without asking Redis (revocation delay)" },
    { "GATEWAY_REPLY_CACHE_MS", "500", "how long an answer to a read of users or groups is reused (0 = never); any change with an event drops it at once, so this bounds only last_activity" },
    { "GATEWAY_REPLY_CACHE_BYTES", "67108864", "memory for reused answers per replica; when full, the cache starts over" },
    { "ACTIVITY_FLUSH_MS", "5000", "how often token and user last_activity are written (batched)" },
    { "API_PAGE_MAX", "200", "largest page of users or groups (JupyterHub's api_page_max_limit)" },
    { "SLOW_SPAWN_TIMEOUT_S", "10", "how long POST/DELETE of a server wait for it to be ready or stopped before 202 (JupyterHub's slow_spawn_timeout)" },
    { "PROGRESS_STREAMS_MAX", "2000", "open spawn progress streams per replica (503 beyond); each holds a connection, so keep it below GATEWAY_MAX_CONNECTIONS" },
    { "HUB_URL", "http://127.0.0.1:8081", "the hub route's target, as GET /hub/api/proxy shows it (proxyctl's HUB_URL)" },
    ORR_IDENTITY_SETTINGS,
    { NULL, NULL, NULL },
};

int
main (int argc, char **argv)
{
    orr_signal_install ();
    orr_config_t *config = orr_config_new ("orrery-gateway", "Orrery gateway: the JupyterHub-compatible HTTP API.", s_settings);
    int rc = orr_config_load (config, argc, argv);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_config_apply_logging (config, "gateway");
    zsys_set_linger (0);

    orr_bus_opts_t opts;
    memset (&opts, 0, sizeof opts);
    gw_http_t *http = NULL;
    orr_events_sub_t *sub = NULL;
    gw_t gw = { 0 };
    pthread_mutex_init (&gw.pub_lock, NULL);
    rc = 1;
    if (orr_bus_opts_from_config (&opts, config) != 0)
        goto done;
    char err[512] = "";
    gw.bus = &opts;
    gw.redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    gw.roles = orr_roles_new (orr_config_get (config, "LOAD_ROLES"), err, sizeof err);
    if (!gw.roles) {
        orr_error ("ORRERY_LOAD_ROLES: %s", err);
        goto done;
    }
    gw.services = orr_hubservices_new (orr_config_get (config, "SERVICES"), err, sizeof err);
    if (!gw.services) {
        orr_error ("ORRERY_SERVICES: %s", err);
        goto done;
    }
    gw.cache_ms = orr_config_int (config, "GATEWAY_CACHE_MS");
    gw.page_max = orr_config_int (config, "API_PAGE_MAX");
    long flush_ms = orr_config_int (config, "ACTIVITY_FLUSH_MS");
    if (gw.cache_ms < 0 || gw.cache_ms > 1000 || gw.page_max < 1 || flush_ms < 100) {
        orr_error ("GATEWAY_CACHE_MS must be 0..1000 (revocation must take effect within 1 s), API_PAGE_MAX >= 1, "
                   "ACTIVITY_FLUSH_MS >= 100");
        goto done;
    }
    const char *b = orr_config_get (config, "BASE_URL");
    size_t blen = strlen (b);
    gw.base_url = orr_sprintf ("%s%s%s", b[0] == '/' ? "" : "/", b, blen && b[blen - 1] == '/' ? "" : "/");
    if (orr_config_get (config, "COOKIE_SECRET"))
        gw.cookie_secret = orr_strdup (orr_config_get (config, "COOKIE_SECRET"));
    else {
        /* the auth service creates the shared key; wait for it */
        char *key = orr_key_index (ORR_INDEX_SECRETS);
        int64_t deadline = orr_mono_ms () + 30000;
        while (!gw.cookie_secret && !orr_signal_stop_requested () && orr_mono_ms () < deadline) {
            redisReply *r = orr_store_command (orr_store_thread (gw.redis_url), "HGET %s cookie", key);
            if (r && r->type == REDIS_REPLY_STRING)
                gw.cookie_secret = orr_strdup (r->str);
            else
                orr_sleep_ms (200);
            if (r)
                freeReplyObject (r);
        }
        free (key);
        if (!gw.cookie_secret) {
            orr_error ("no cookie secret in Redis at %s after 30 s: is the auth service running?", gw.redis_url);
            goto done;
        }
    }
    long slow = orr_config_int (config, "SLOW_SPAWN_TIMEOUT_S");
    long streams_max = orr_config_int (config, "PROGRESS_STREAMS_MAX");
    if (slow < 0 || slow > 3600 || streams_max < 1) {
        orr_error ("SLOW_SPAWN_TIMEOUT_S must be 0..3600 and PROGRESS_STREAMS_MAX >= 1");
        goto done;
    }
    gw.slow_spawn_timeout_s = slow;
    gw.hub_url = orr_strdup (orr_config_get (config, "HUB_URL"));
    long reply_ms = orr_config_int (config, "GATEWAY_REPLY_CACHE_MS");
    long reply_bytes = orr_config_int (config, "GATEWAY_REPLY_CACHE_BYTES");
    if (reply_ms < 0 || reply_ms > 60000 || reply_bytes < 0) {
        orr_error ("GATEWAY_REPLY_CACHE_MS must be 0..60000 and GATEWAY_REPLY_CACHE_BYTES >= 0");
        goto done;
    }
    gw.replies = gw_reply_cache_new (reply_ms, (size_t) reply_bytes);
    gw.watch = gw_watch_new (gw.redis_url, &opts, streams_max, gw.replies);
    if (!gw.watch)
        goto done;
    gw.cache = gw_cache_new ();
    gw.pub = orr_events_pub_new (&opts);
    gw.activity = gw_activity_new (&gw, flush_ms);
    long port = orr_config_int (config, "GATEWAY_PORT");
    long threads = orr_config_int (config, "GATEWAY_THREADS");
    long conns = orr_config_int (config, "GATEWAY_MAX_CONNECTIONS");
    long timeout = orr_config_int (config, "GATEWAY_TIMEOUT_S");
    long max_body = orr_config_int (config, "GATEWAY_MAX_BODY");
    if (port < 1 || port > 65535 || threads < 1 || threads > 64 || conns < 1 || timeout < 1 || max_body < 0) {
        orr_error ("gateway settings out of range (port 1-65535, threads 1-64, connections >= 1, timeout >= 1)");
        goto done;
    }
    gw_http_opts_t hopts = {
        .ip = orr_config_get (config, "GATEWAY_IP"),
        .port = (int) port,
        .threads = (unsigned) threads,
        .max_connections = (unsigned) conns,
        .timeout_s = (unsigned) timeout,
        .max_body = (size_t) max_body,
        .base_url = orr_config_get (config, "BASE_URL"),
    };
    http = gw_http_new (&hopts, gw_route, &gw);
    if (!http)
        goto done;
    const char *topics[] = { "hub.shutdown", "user.", "group.", "token.revoked", "session.", NULL };
    sub = orr_events_sub_new (&opts, topics);
    rc = 0;
    while (!orr_signal_stop_requested ()) {
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 1000) == 1) {
            if (strcmp (ev.topic, "hub.shutdown") != 0)
                gw_forget_cached (&gw);
            else if (orr_bus_principal_is_trusted (ev.principal)) {
                orr_info ("hub.shutdown from %s: stopping", ev.principal);
                orr_signal_request_stop ();
            }
            orr_event_clear (&ev);
        }
    }
    orr_info ("gateway stopping");
done:
    orr_events_sub_destroy (&sub);
    /* waiting requests and streams are resumed before MHD stops (it must find none suspended) */
    gw_watch_stop (gw.watch);
    gw_http_destroy (&http);
    gw_watch_destroy (&gw.watch);
    gw_activity_destroy (&gw.activity);
    gw_cache_destroy (&gw.cache);
    gw_reply_cache_destroy (&gw.replies);
    orr_events_pub_destroy (&gw.pub);
    orr_roles_destroy (&gw.roles);
    orr_hubservices_destroy (&gw.services);
    free (gw.redis_url);
    free (gw.base_url);
    free (gw.hub_url);
    free (gw.cookie_secret);
    pthread_mutex_destroy (&gw.pub_lock);
    orr_store_thread_release ();
    orr_bus_opts_clear (&opts);
    orr_config_destroy (&config);
    return rc;
}
