/*  gw_routes: the gateway's routing table and the checks every handler shares.
 *
 *  The JupyterHub 3.0 contract (shared/reference/jupyterhub-api.md §4) decides paths,
 *  scopes and statuses; docs/api.md lists Orrery's additions. Dispatch resolves the
 *  caller (token or cookie) before any handler runs, except for the few endpoints that
 *  need no identity, so an unauthenticated flood costs no Redis reads beyond the cache.
 */
#include "gw_routes.h"
#include "gw_api.h"
#include "gw_reply_cache.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

const gw_route_t gw_routes[] = {
    { "GET", "/hub/api", gw_api_root },
    { "GET", "/hub/api/", gw_api_root },
    { "GET", "/hub/api/info", gw_api_info },
    { "GET", "/hub/api/user", gw_api_whoami },
    { "GET", "/hub/api/users", gw_api_users_list },
    { "POST", "/hub/api/users", gw_api_users_create },
    { "GET", "/hub/api/users/{}", gw_api_user_get },
    { "POST", "/hub/api/users/{}", gw_api_user_create },
    { "PATCH", "/hub/api/users/{}", gw_api_user_patch },
    { "DELETE", "/hub/api/users/{}", gw_api_user_delete },
    { "POST", "/hub/api/users/{}/admin-access", gw_api_admin_access },
    { "POST", "/hub/api/users/{}/server", gw_api_server_start },
    { "DELETE", "/hub/api/users/{}/server", gw_api_server_stop },
    { "GET", "/hub/api/users/{}/server/progress", gw_api_server_progress },
    { "GET", "/hub/api/users/{}/server/logs", gw_api_server_logs },
    { "POST", "/hub/api/users/{}/servers/{}", gw_api_named_server_start },
    { "DELETE", "/hub/api/users/{}/servers/{}", gw_api_named_server_stop },
    { "GET", "/hub/api/users/{}/servers/{}/progress", gw_api_named_server_progress },
    { "GET", "/hub/api/users/{}/servers/{}/logs", gw_api_named_server_logs },
    { "POST", "/hub/api/users/{}/activity", gw_api_user_activity },
    { "GET", "/hub/api/users/{}/tokens", gw_api_tokens_list },
    { "POST", "/hub/api/users/{}/tokens", gw_api_tokens_create },
    { "GET", "/hub/api/users/{}/tokens/{}", gw_api_token_get },
    { "DELETE", "/hub/api/users/{}/tokens/{}", gw_api_token_delete },
    { "GET", "/hub/api/groups", gw_api_groups_list },
    { "POST", "/hub/api/groups", gw_api_groups_create },
    { "GET", "/hub/api/groups/{}", gw_api_group_get },
    { "POST", "/hub/api/groups/{}", gw_api_group_create },
    { "DELETE", "/hub/api/groups/{}", gw_api_group_delete },
    { "POST", "/hub/api/groups/{}/users", gw_api_group_users_add },
    { "DELETE", "/hub/api/groups/{}/users", gw_api_group_users_remove },
    { "GET", "/hub/api/nodes", gw_api_nodes_list },
    { "GET", "/hub/api/nodes/{}", gw_api_node_get },
    { "POST", "/hub/api/nodes/{}/cordon", gw_api_node_cordon },
    { "POST", "/hub/api/nodes/{}/uncordon", gw_api_node_uncordon },
    { "GET", "/hub/api/proxy", gw_api_proxy_get },
    { "POST", "/hub/api/proxy", gw_api_proxy_post },
    { "PATCH", "/hub/api/proxy", gw_api_proxy_patch },
    { "GET", "/hub/api/services", gw_api_services },
    { "GET", "/hub/api/services/{}", gw_api_service },
    { "POST", "/hub/api/shutdown", gw_api_shutdown },
    { "GET", "/hub/api/authorizations/token/{}", gw_api_authorizations_token },
    { "POST", "/hub/api/authorizations/token", gw_api_gone },
    { "GET", "/hub/api/authorizations/cookie/{}", gw_api_gone },
    { "GET", "/hub/api/authorizations/cookie/{}/{}", gw_api_gone },
    { "GET", "/hub/api/health", gw_api_health },
    { "GET", "/hub/health", gw_api_health },
    { "GET", "/hub/api/metrics", gw_api_metrics },
    { "GET", "/hub/metrics", gw_api_metrics },
    { "GET", "/hub/api/oauth2/authorize", gw_oauth_authorize },
    { "POST", "/hub/api/oauth2/authorize", gw_oauth_authorize_post },
    { "POST", "/hub/api/oauth2/token", gw_oauth_token },
    { "GET", "/hub/login", gw_page_login },
    { "POST", "/hub/login", gw_page_login_post },
    { "GET", "/hub/logout", gw_page_logout },
    { "GET", "/hub/home", gw_page_home },
    { "GET", "/hub/spawn", gw_page_spawn },
    { "GET", "/hub/spawn/{}", gw_page_spawn_user },
    { "GET", "/hub/spawn/{}/{}", gw_page_spawn_named },
    { "GET", "/hub/spawn-pending/{}", gw_page_spawn_pending },
    { "GET", "/hub/spawn-pending/{}/{}", gw_page_spawn_pending_named },
    { "GET", "/hub/change-password", gw_page_change_password },
    { "POST", "/hub/change-password", gw_page_change_password_post },
    { "GET", "/hub/", gw_page_hub_root },
    { "GET", "/hub", gw_page_hub_root },
    { "GET", "/hub/logo", gw_page_logo },
    { "GET", "/", gw_page_root },
};
const size_t gw_nroutes = sizeof gw_routes / sizeof gw_routes[0];

/* Paths of any depth below a user's prefix (the table's patterns have a fixed number of
 * segments), tried when no pattern matches; every method reaches the handler. */
static const struct {
    const char *prefix;
    gw_handler_fn *fn;
} s_prefix_routes[] = {
    { "/user/", gw_page_user_prefix },
    { "/hub/user/", gw_page_hub_user },
};

bool
gw_allowed (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *const *any_of,
            const orr_scope_target_t *t, enum MHD_Result *reply)
{
    if (!caller->authenticated) {
        *reply = gw_reply_error (req, 403, "Missing or invalid credentials");
        return false;
    }
    orr_scope_target_t none = { 0 };
    orr_scope_decision_t d = orr_scopes_check (caller->id.scopes, any_of, t ? t : &none, gw_is_member, gw);
    if (d == ORR_SCOPE_ALLOW)
        return true;
    if (d == ORR_SCOPE_NOT_FOUND) {
        *reply = gw_reply_error (req, 404, "No access to resources or resources not found");
        return false;
    }
    char msg[512] = "Action is not authorized with current scopes; requires any of [";
    for (int i = 0; any_of[i]; i++) {
        strncat (msg, any_of[i], sizeof msg - strlen (msg) - 2);
        if (any_of[i + 1])
            strncat (msg, ", ", sizeof msg - strlen (msg) - 2);
    }
    strncat (msg, "]", sizeof msg - strlen (msg) - 1);
    *reply = gw_reply_error (req, 403, msg);
    return false;
}

json_t *
gw_body_json (const gw_request_t *req, bool *empty, enum MHD_Result *reply)
{
    *empty = false;
    size_t i = 0;
    while (i < req->body_len && (req->body[i] == ' ' || req->body[i] == '\n' || req->body[i] == '\r' || req->body[i] == '\t'))
        i++;
    if (i == req->body_len) {
        *empty = true;
        return NULL;
    }
    json_error_t err;
    json_t *v = json_loadb (req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!v)
        *reply = gw_reply_error (req, 400, "Invalid JSON in body of request");
    return v;
}

bool
gw_keys_ok (const gw_request_t *req, const json_t *obj, const char *const *allowed, enum MHD_Result *reply)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) obj, key, v) {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp (key, allowed[i]) == 0;
        if (!ok) {
            *reply = gw_reply_errorf (req, 400, "Invalid JSON keys: %.100s", key);
            return false;
        }
    }
    return true;
}

const char **
gw_string_list (const gw_request_t *req, const json_t *v, const char *what, size_t *n, enum MHD_Result *reply)
{
    *n = 0;
    if (!json_is_array (v)) {
        *reply = gw_reply_errorf (req, 400, "%s must be a list of strings", what);
        return NULL;
    }
    const char **out = orr_zalloc ((json_array_size (v) + 1) * sizeof (char *));
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e) {
        if (!json_is_string (e)) {
            free (out);
            *reply = gw_reply_errorf (req, 400, "%s must be a list of strings", what);
            return NULL;
        }
        out[(*n)++] = json_string_value (e);
    }
    return out;
}

/* Reads whose answers the reply cache may keep: users and groups, nothing with side
 * effects, nothing that waits. Every change they show has an event (gw_reply_cache.c). */
static bool
s_cacheable (gw_handler_fn *fn)
{
    return fn == gw_api_whoami || fn == gw_api_users_list || fn == gw_api_user_get || fn == gw_api_groups_list
           || fn == gw_api_group_get;
}

/* Runs a cacheable read: answers from the reply cache, or runs the handler and keeps its
 * answer. The key is everything the answer depends on besides the data: the credential,
 * path, query, and the headers that shape pagination's next.url. */
static enum MHD_Result
s_route_cached (gw_t *gw, const gw_request_t *req, gw_handler_fn *fn, gw_caller_t *caller, char **params)
{
    char *query = gw_query (req, NULL);
    const char *accept = gw_header (req, "Accept"), *host = gw_header (req, "Host");
    const char *xhost = gw_header (req, "X-Forwarded-Host"), *xproto = gw_header (req, "X-Forwarded-Proto");
    char *key = orr_sprintf ("%s\n%s?%s\n%s\n%s\n%s\n%s", caller->credential, req->path, query, accept ? accept : "",
                             host ? host : "", xhost ? xhost : "", xproto ? xproto : "");
    free (query);
    enum MHD_Result rc;
    size_t len = 0;
    char *body = gw_reply_cache_get (gw->replies, key, &len);
    if (body)
        rc = gw_reply_take (req, 200, "application/json", body, len);
    else {
        uint64_t generation = gw_reply_cache_generation (gw->replies);
        gw_reply_capture_t capture = { 0 };
        gw_request_capture (req, &capture);
        rc = fn (gw, req, caller, params);
        gw_request_capture (req, NULL);
        if (capture.body)
            gw_reply_cache_put (gw->replies, key, generation, capture.body, capture.len);
        free (capture.body);
    }
    free (key);
    return rc;
}

enum MHD_Result
gw_route (void *ctx, const gw_request_t *req)
{
    gw_t *gw = ctx;
    __atomic_add_fetch (&gw->requests, 1, __ATOMIC_RELAXED);
    char *params[GW_MAX_PARAMS] = { 0 };
    int i = gw_router_match (gw_routes, gw_nroutes, req->method, req->path, params);
    gw_handler_fn *fn = i >= 0 ? gw_routes[i].fn : NULL;
    for (size_t k = 0; i == -1 && !fn && k < sizeof s_prefix_routes / sizeof s_prefix_routes[0]; k++)
        if (strncmp (req->path, s_prefix_routes[k].prefix, strlen (s_prefix_routes[k].prefix)) == 0)
            fn = s_prefix_routes[k].fn;
    if (!fn && i == -2)
        return gw_reply_error (req, 405, "Method Not Allowed");
    if (!fn)
        return gw_reply_error (req, 404, "Not Found");
    gw_caller_t caller = { 0 };
    enum MHD_Result rc;
    bool anonymous_ok = fn == gw_api_root || fn == gw_api_health || fn == gw_api_gone || fn == gw_page_logo;
    bool read = strcmp (req->method, "GET") == 0 || strcmp (req->method, "HEAD") == 0;
    if (!anonymous_ok && gw_resolve_caller (gw, req, &caller) != 0)
        rc = gw_reply_error (req, 503, "Identity store unavailable; try again");
    else if (read && caller.authenticated && s_cacheable (fn) && gw_reply_cache_enabled (gw->replies))
        rc = s_route_cached (gw, req, fn, &caller, params);
    else
        rc = fn (gw, req, &caller, params);
    /* a change made through this replica is seen by its next read, before the client
     * has the answer (MHD sends it after this returns); other replicas learn from the event */
    if (!read)
        gw_reply_cache_invalidate (gw->replies);
    gw_caller_clear (&caller);
    for (int k = 0; k < GW_MAX_PARAMS; k++)
        free (params[k]);
    return rc;
}
