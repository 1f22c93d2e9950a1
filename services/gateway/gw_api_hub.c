/*  gw_api_hub: the hub-wide endpoints -- version, info, whoami, services, shutdown,
 *  health, metrics and the deprecated authorizations (jupyterhub-api.md §4).
 */
#include "gw_api.h"
#include "gw_reply_cache.h"
#include "gw_watch.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"

#include <stdlib.h>
#include <string.h>

enum MHD_Result
gw_api_root (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return gw_reply_json (req, 200, "{\"version\":\"3.0.0\"}");
}

enum MHD_Result
gw_api_health (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return gw_reply (req, 200, "text/html", "", 0);
}

enum MHD_Result
gw_api_gone (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return gw_reply_error (req, 404, "Not Found");
}

enum MHD_Result
gw_api_info (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:hub", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    return gw_reply_jsonv (req, 200,
                           json_pack ("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "version", "3.0.0", "python",
                                      "none (Orrery is written in C)", "sys_executable", "orrery-gateway", "spawner",
                                      "class", "orrery.LocalProcessSpawner", "version", "0.1.0", "authenticator",
                                      "class", "orrery.Authenticator", "version", "0.1.0"));
}

/* The caller's own model (User or Service) as the caller's scopes show it. */
static json_t *
s_owner_model (gw_t *gw, const orr_identity_t *id, const orr_scopes_t *scopes)
{
    if (strcmp (id->kind, "service") == 0) {
        const orr_hubservice_t *svc = orr_hubservices_find (gw->services, id->name);
        return svc ? orr_hubservices_model (gw->services, svc, gw->roles) : json_pack ("{s:s, s:s}", "kind", "service", "name", id->name);
    }
    orr_user_rec_t rec;
    if (orr_user_load (gw_store (gw), id->name, &rec) != 1) {
        orr_user_rec_clear (&rec);
        return NULL;
    }
    bool unavailable;
    json_t *m = gw_user_model_load (gw, &rec, scopes, false, false, &unavailable);
    orr_user_rec_clear (&rec);
    return m;
}

enum MHD_Result
gw_api_whoami (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (!caller->authenticated)
        return gw_reply_error (req, 403, "Missing or invalid credentials");
    json_t *m = s_owner_model (gw, &caller->id, caller->id.scopes);
    if (!m)
        m = json_object ();
    /* the minimum JupyterHub always shows its owner */
    json_object_set_new (m, "kind", json_string (caller->id.kind));
    json_object_set_new (m, "name", json_string (caller->id.name));
    if (strcmp (caller->id.kind, "user") == 0) {
        json_object_set_new (m, "admin", json_boolean (caller->id.admin));
        if (!json_object_get (m, "groups")) {
            json_t *g = json_array ();
            for (size_t i = 0; caller->id.groups && caller->id.groups[i]; i++)
                json_array_append_new (g, json_string (caller->id.groups[i]));
            json_object_set_new (m, "groups", g);
        }
    }
    json_object_set_new (m, "session_id", caller->id.session_id ? json_string (caller->id.session_id) : json_null ());
    json_object_set_new (m, "scopes", orr_scopes_to_json (caller->id.scopes));
    return gw_reply_jsonv (req, 200, m);
}

enum MHD_Result
gw_api_services (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "list:services", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    json_t *out = json_object ();
    for (size_t i = 0; i < orr_hubservices_count (gw->services); i++) {
        const orr_hubservice_t *s = orr_hubservices_at (gw->services, i);
        orr_scope_target_t t = { .service = s->name };
        if (!orr_scopes_allows (caller->id.scopes, "list:services", &t, gw_is_member, gw))
            continue;
        json_t *m = orr_hubservices_model (gw->services, s, gw->roles);
        if (!orr_scopes_allows (caller->id.scopes, "read:services", &t, gw_is_member, gw)) {
            json_t *small = json_pack ("{s:s, s:s}", "kind", "service", "name", s->name);
            json_decref (m);
            m = small;
        }
        json_object_set_new (out, s->name, m);
    }
    return gw_reply_jsonv (req, 200, out);
}

enum MHD_Result
gw_api_service (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:services", "read:services:name", "read:roles:services", NULL };
    orr_scope_target_t t = { .service = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    const orr_hubservice_t *s = orr_hubservices_find (gw->services, params[0]);
    if (!s)
        return gw_reply_errorf (req, 404, "No such service: %s", params[0]);
    json_t *full = orr_hubservices_model (gw->services, s, gw->roles);
    if (orr_scopes_allows (caller->id.scopes, "read:services", &t, gw_is_member, gw))
        return gw_reply_jsonv (req, 200, full);
    json_t *m = json_pack ("{s:s, s:s}", "kind", "service", "name", s->name);
    if (orr_scopes_allows (caller->id.scopes, "read:roles:services", &t, gw_is_member, gw)) {
        json_object_set (m, "roles", json_object_get (full, "roles"));
        json_object_set (m, "admin", json_object_get (full, "admin"));
    }
    json_decref (full);
    return gw_reply_jsonv (req, 200, m);
}

enum MHD_Result
gw_api_shutdown (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "shutdown", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    static const char *const keys[] = { "servers", "proxy", NULL };
    Orrery__Shutdown msg = ORRERY__SHUTDOWN__INIT;
    if (body) {
        if (!json_is_object (body)) {
            json_decref (body);
            return gw_reply_error (req, 400, "Shutdown body must be a JSON object");
        }
        if (!gw_keys_ok (req, body, keys, &rc)) {
            json_decref (body);
            return rc;
        }
        json_t *s = json_object_get (body, "servers"), *p = json_object_get (body, "proxy");
        if ((s && !json_is_boolean (s)) || (p && !json_is_boolean (p))) {
            json_decref (body);
            return gw_reply_error (req, 400, "servers and proxy must be true or false");
        }
        msg.servers = json_is_true (s);
        msg.proxy = json_is_true (p);
        json_decref (body);
    }
    msg.requested_by = caller->id.name;
    msg.time_us = orr_now_us ();
    size_t n = orrery__shutdown__get_packed_size (&msg);
    uint8_t *buf = orr_zalloc (n + 1);
    orrery__shutdown__pack (&msg, buf);
    pthread_mutex_lock (&gw->pub_lock);
    int st = orr_events_publish (gw->pub, "hub.shutdown", buf, n);
    pthread_mutex_unlock (&gw->pub_lock);
    free (buf);
    if (st != 0)
        return gw_reply_error (req, 503, "Could not reach the bus to shut down");
    orr_info ("hub.shutdown requested by %s (servers=%d)", caller->id.name, msg.servers);
    return gw_reply_json (req, 202, "{\"message\":\"Shutting down Hub\"}");
}

enum MHD_Result
gw_api_metrics (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:metrics", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    uint64_t hits = 0, misses = 0, invalidations = 0;
    if (gw->replies)
        gw_reply_cache_stats (gw->replies, &hits, &misses, &invalidations);
    char *text = orr_sprintf (
        "# HELP orrery_gateway_requests_total HTTP requests received by this gateway replica.\n"
        "# TYPE orrery_gateway_requests_total counter\n"
        "orrery_gateway_requests_total %llu\n"
        "# HELP orrery_gateway_credential_cache_total Credential lookups by outcome.\n"
        "# TYPE orrery_gateway_credential_cache_total counter\n"
        "orrery_gateway_credential_cache_total{outcome=\"hit\"} %llu\n"
        "orrery_gateway_credential_cache_total{outcome=\"miss\"} %llu\n"
        "# HELP orrery_gateway_reply_cache_total Reads of users and groups by outcome (answered from the reply cache or not).\n"
        "# TYPE orrery_gateway_reply_cache_total counter\n"
        "orrery_gateway_reply_cache_total{outcome=\"hit\"} %llu\n"
        "orrery_gateway_reply_cache_total{outcome=\"miss\"} %llu\n"
        "# HELP orrery_gateway_reply_cache_invalidations_total Times the reply cache was emptied by a change.\n"
        "# TYPE orrery_gateway_reply_cache_invalidations_total counter\n"
        "orrery_gateway_reply_cache_invalidations_total %llu\n"
        "# HELP orrery_gateway_progress_streams Spawn progress streams open on this gateway replica.\n"
        "# TYPE orrery_gateway_progress_streams gauge\n"
        "orrery_gateway_progress_streams %ld\n",
        (unsigned long long) __atomic_load_n (&gw->requests, __ATOMIC_RELAXED),
        (unsigned long long) __atomic_load_n (&gw->cache_hits, __ATOMIC_RELAXED),
        (unsigned long long) __atomic_load_n (&gw->cache_misses, __ATOMIC_RELAXED), (unsigned long long) hits,
        (unsigned long long) misses, (unsigned long long) invalidations, gw->watch ? gw_watch_streams (gw->watch) : 0L);
    rc = gw_reply (req, 200, "text/plain; version=0.0.4", text, strlen (text));
    free (text);
    return rc;
}

enum MHD_Result
gw_api_authorizations_token (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    /* deprecated, but still served by 3.0 to token-authenticated callers */
    if (!caller->authenticated || caller->via_cookie)
        return gw_reply_error (req, 403, "Missing or invalid credentials");
    orr_identity_t owner;
    orr_identity_status_t st = orr_identity_from_token (gw_store (gw), gw->roles, gw->services, params[0], &owner);
    if (st == ORR_IDENTITY_UNAVAILABLE)
        return gw_reply_error (req, 503, "Identity store unavailable; try again");
    if (st != ORR_IDENTITY_OK)
        return gw_reply_error (req, 404, "Token not found");
    json_t *m = s_owner_model (gw, &owner, caller->id.scopes);
    if (!m)
        m = json_pack ("{s:s, s:s}", "kind", owner.kind, "name", owner.name);
    orr_identity_clear (&owner);
    return gw_reply_jsonv (req, 200, m);
}
