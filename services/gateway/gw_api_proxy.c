/*  gw_api_proxy: /hub/api/proxy -- the routing table as JupyterHub 3.0 shows it (GET), and
 *  "reconcile the proxies now" (POST, PATCH), all behind scope `proxy`.
 *
 *  proxyctl owns the table and the proxies (docs/proxy.md); the gateway asks it over the
 *  bus ("routes", "sync"). GET shows what JupyterHub's ConfigurableHTTPProxy.get_all_routes
 *  returns: keyed by routespec (CHP's path with a trailing slash, "/user/alice/"), each
 *  {"routespec", "target", "data"} where data is what the hub posted minus target and the
 *  "jupyterhub" flag, plus CHP's last_activity (ISO-8601, milliseconds, 'Z'). The hub route
 *  "/" is not in proxyctl's table (it is each proxy's), so it is added here with the target
 *  proxyctl gives it (HUB_URL). Sorted by routespec, paginated as §2 (a bare object
 *  without the pagination media type).
 *
 *  PATCH {api_url?, auth_token?}: JupyterHub repoints its one proxy; Orrery's proxies come
 *  from configuration (ORRERY_PROXY_API_URLS), so the body is checked and then only the
 *  reconciliation runs (docs/api.md says so).
 */
#include "gw_api.h"
#include "orr_util.h"
#include "orrery/proxy.pb-c.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const s_need[] = { "proxy", NULL };

/* CHP's last_activity format: JavaScript's toISOString ("2022-11-16T08:42:30.123Z"). */
static json_t *
s_js_time (int64_t us)
{
    time_t secs = (time_t) (us / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    char buf[96];
    snprintf (buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
              tm.tm_hour, tm.tm_min, tm.tm_sec, (int) ((us % 1000000) / 1000));
    return json_string (buf);
}

static json_t *
s_text (const char *s)
{
    json_t *v = json_string (s ? s : "");
    return v ? v : json_string ("");
}

typedef struct {
    char *routespec;
    json_t *model;
} route_row_t;

static int
s_by_spec (const void *a, const void *b)
{
    return strcmp (((const route_row_t *) a)->routespec, ((const route_row_t *) b)->routespec);
}

static enum MHD_Result
s_reply_failed (const gw_request_t *req, int status, const char *message)
{
    if (status == 503 || status == 504)
        return gw_reply_error (req, 503, "proxyctl unavailable");
    return gw_reply_error (req, (unsigned) (status >= 400 && status < 600 ? status : 502), message);
}

enum MHD_Result
gw_api_proxy_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    gw_page_t page;
    char msg[256];
    if (gw_page_parse (gw, req, &page, msg, sizeof msg) != 0)
        return gw_reply_error (req, 400, msg);
    Orrery__ProxySync none = ORRERY__PROXY_SYNC__INIT;
    Orrery__RouteList *list = NULL;
    int st = gw_call (gw, "proxyctl", "routes", &none.base, &orrery__route_list__descriptor,
                      (ProtobufCMessage **) &list, msg, sizeof msg);
    if (st != 200)
        return s_reply_failed (req, st, msg);
    size_t n = list->n_routes + 1;
    route_row_t *rows = orr_zalloc (n * sizeof *rows);
    rows[0].routespec = orr_strdup ("/");
    rows[0].model = json_pack ("{s:s, s:o, s:{s:b, s:o}}", "routespec", "/", "target", s_text (gw->hub_url), "data",
                               "hub", 1, "last_activity", s_js_time (orr_now_us ()));
    for (size_t i = 0; i < list->n_routes; i++) {
        const Orrery__Route *r = list->routes[i];
        rows[i + 1].routespec = orr_sprintf ("%s/", r->path && strcmp (r->path, "/") != 0 ? r->path : "");
        int64_t at = r->last_activity_us ? r->last_activity_us : r->created_us;
        rows[i + 1].model = json_pack ("{s:o, s:o, s:{s:o, s:o, s:o}}", "routespec", s_text (rows[i + 1].routespec),
                                       "target", s_text (r->target), "data", "user", s_text (r->user), "server_name",
                                       s_text (r->server), "last_activity", s_js_time (at));
    }
    orrery__route_list__free_unpacked (list, NULL);
    qsort (rows, n, sizeof *rows, s_by_spec);
    size_t first = (size_t) page.offset < n ? (size_t) page.offset : n;
    size_t count = n - first < (size_t) page.limit ? n - first : (size_t) page.limit;
    json_t *items = json_object ();
    for (size_t i = 0; i < n; i++) {
        if (i >= first && i < first + count && rows[i].model)
            json_object_set (items, rows[i].routespec, rows[i].model);
        json_decref (rows[i].model);
        free (rows[i].routespec);
    }
    free (rows);
    return gw_reply_jsonv (req, 200, gw_page_wrap (gw, req, &page, items, (long) n));
}

/* Reconciles every proxy now (proxyctl's sync); 200 empty. */
static enum MHD_Result
s_sync (gw_t *gw, const gw_request_t *req)
{
    Orrery__ProxySync m = ORRERY__PROXY_SYNC__INIT;
    Orrery__ProxySyncResult *res = NULL;
    char msg[256];
    int st = gw_call (gw, "proxyctl", "sync", &m.base, &orrery__proxy_sync_result__descriptor,
                      (ProtobufCMessage **) &res, msg, sizeof msg);
    if (res)
        orrery__proxy_sync_result__free_unpacked (res, NULL);
    if (st != 200)
        return s_reply_failed (req, st, msg);
    return gw_reply (req, 200, NULL, "", 0);
}

enum MHD_Result
gw_api_proxy_post (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    return s_sync (gw, req);
}

enum MHD_Result
gw_api_proxy_patch (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    if (!gw_allowed (gw, req, caller, s_need, NULL, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty ? gw_reply_error (req, 400, "need JSON body") : rc;
    json_t *url = json_object_get (body, "api_url"), *token = json_object_get (body, "auth_token");
    bool ok = json_is_object (body) && (!url || json_is_string (url)) && (!token || json_is_string (token));
    json_decref (body);
    if (!ok)
        return gw_reply_error (req, 400, "Body must be a JSON object; api_url and auth_token must be strings");
    return s_sync (gw, req);
}
