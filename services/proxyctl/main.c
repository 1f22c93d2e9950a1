/*  orrery-proxyctl: keeps every configurable-http-proxy (CHP) replica's routes equal to
 *  the route table in Redis, the source of truth (docs/proxy.md).
 *
 *  Owns orr:{routes}:table. Bus methods (proto/orrery/proxy.proto): route.add,
 *  route.delete, routes, sync. Events out: route.added, route.deleted (GenericEvent JSON),
 *  only when the table really changed. A timer runs the sync pass (sync.c) every
 *  PROXY_SYNC_MS over every proxy of PROXY_API_URLS, so a proxy that comes back empty is
 *  refilled within one interval; route.add and route.delete also push their change to
 *  every proxy at once, so a spawn never waits for the timer. Any number of replicas may
 *  run: each write is idempotent and the table is only ever written by Lua scripts.
 *
 *  This file: settings, the bus methods, start-up.
 */
#include "proxyctl.h"
#include "orr_activity.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"
#include "orrery/proxy.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define CHP_BODY_MIN ((size_t) 16 << 20)
#define CHP_BODY_PER_ROUTE ((size_t) 1024)

static const orr_setting_t s_settings[] = {
    { "PROXY_API_URLS", "http://127.0.0.1:8001", "comma-separated CHP API base URLs (one per proxy replica)" },
    { "PROXY_AUTH_TOKEN", NULL, "CHP's API token (CONFIGPROXY_AUTH_TOKEN)" },
    { "HUB_URL", "http://127.0.0.1:8081", "target of the hub route /: the gateway(s)" },
    { "PROXY_SYNC_MS", "500", "how often every proxy is reconciled with the route table (50..60000)" },
    { "PROXY_TIMEOUT_MS", "2000", "timeout of each request to a proxy's API (100..60000)" },
    { "ROUTES_MAX", "100000", "most routes the table holds; route.add beyond it answers 507" },
    { "ROUTES_REPLY_MAX", "3145728", "largest 'routes' reply in bytes (keep it below the brokers' BUS_MAX_MESSAGE)" },
    { NULL, NULL, NULL },
};

/* --- events ------------------------------------------------------------------------------ */

/* route.added / route.deleted: a GenericEvent carrying the route as JSON. */
static void
s_publish_route (proxyctl_t *self, const char *topic, const route_t *route)
{
    json_t *doc = json_pack ("{s:s, s:s, s:s, s:s}", "path", route->path, "target", route->target ? route->target : "",
                             "user", route->user ? route->user : "", "server", route->server ? route->server : "");
    char *text = json_dumps (doc, JSON_COMPACT);
    Orrery__GenericEvent ev = ORRERY__GENERIC_EVENT__INIT;
    ev.json = text;
    orr_service_publish_msg (self->svc, topic, &ev.base);
    free (text);
    json_decref (doc);
}



static Orrery__Route
s_route_message (const route_t *route, int64_t last_activity_us)
{
    Orrery__Route out = ORRERY__ROUTE__INIT;
    out.path = route->path;
    out.target = route->target;
    out.user = route->user;
    out.server = route->server;
    out.created_us = route->created_us;
    out.last_activity_us = last_activity_us;
    return out;
}

/* --- methods ----------------------------------------------------------------------------- */

/* The request as a route (path canonical), or 400 with the reason. */
static bool
s_route_from_request (const Orrery__RouteAdd *req, route_t *route, orr_result_t *result)
{
    char err[256];
    memset (route, 0, sizeof *route);
    if (route_path_canonical (req->path, &route->path, err, sizeof err) != 0) {
        orr_result_fail (result, 400, "route.add: %s", err);
        return false;
    }
    if (!route_target_ok (req->target) || !route_name_ok (req->user) || !route_name_ok (req->server)) {
        orr_result_fail (result, 400,
                         "route.add %s: the target is http(s)://host..., printable ASCII of at most %d bytes; "
                         "user and server are UTF-8 of at most %d bytes",
                         route->path, ROUTE_TARGET_MAX, ROUTE_NAME_MAX);
        route_clear (route);
        return false;
    }
    route->target = orr_strdup (req->target);
    route->user = orr_strdup (req->user);
    route->server = orr_strdup (req->server);
    route->created_us = orr_now_us ();
    return true;
}

static void
s_route_add (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    proxyctl_t *self = ctx;
    if (!orr_call_trusted (call, result, "proxyctl"))
        return;
    ORR_UNPACK_OR_400 (Orrery__RouteAdd, orrery__route_add__unpack, req);
    route_t want, stored;
    if (!s_route_from_request (req, &want, result)) {
        orrery__route_add__free_unpacked (req, NULL);
        return;
    }
    int rc = table_add (self, &want, &stored);
    if (rc == -2)
        orr_result_fail (result, 507, "route.add %s: the table holds ROUTES_MAX (%ld) routes", want.path,
                         self->routes_max);
    else if (rc < 0)
        orr_result_fail (result, 503, "route.add %s: the route table is unavailable", want.path);
    else {
        sync_push_add (self, &stored);
        if (rc == 1) {
            orr_info ("route %s -> %s added (user '%s', server '%s')", stored.path, stored.target, stored.user,
                      stored.server);
            s_publish_route (self, "route.added", &stored);
        }
        int64_t activity = 0;
        if (*stored.user)
            orr_activity_get (table_store (self), stored.user, stored.server, &activity);
        Orrery__Route out = s_route_message (&stored, activity);
        orr_result_reply (result, &out.base);
    }
    route_clear (&want);
    route_clear (&stored);
    orrery__route_add__free_unpacked (req, NULL);
}

static void
s_route_delete (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    proxyctl_t *self = ctx;
    if (!orr_call_trusted (call, result, "proxyctl"))
        return;
    ORR_UNPACK_OR_400 (Orrery__RouteDelete, orrery__route_delete__unpack, req);
    char err[256];
    route_t gone = { 0 };
    if (route_path_canonical (req->path, &gone.path, err, sizeof err) != 0)
        orr_result_fail (result, 400, "route.delete: %s", err);
    else {
        int rc = table_delete (self, gone.path);
        if (rc < 0)
            orr_result_fail (result, 503, "route.delete %s: the route table is unavailable", gone.path);
        else {
            sync_push_delete (self, gone.path);
            if (rc == 1) {
                orr_info ("route %s deleted", gone.path);
                s_publish_route (self, "route.deleted", &gone);
            }
        }
    }
    route_clear (&gone);
    orrery__route_delete__free_unpacked (req, NULL);
}

static void
s_routes (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    proxyctl_t *self = ctx;
    route_table_t table;
    if (table_read (self, &table) != 0) {
        orr_result_fail (result, 503, "routes: the route table is unavailable");
        return;
    }
    int64_t *activity = orr_zalloc ((table.n + 1) * sizeof *activity);
    Orrery__Route *items = orr_zalloc ((table.n + 1) * sizeof *items);
    Orrery__Route **ptrs = orr_zalloc ((table.n + 1) * sizeof *ptrs);
    if (table_activity (self, table.v, table.n, activity) != 0)
        orr_result_fail (result, 503, "routes: the activity store is unavailable");
    else {
        for (size_t i = 0; i < table.n; i++) {
            items[i] = s_route_message (&table.v[i], activity[i]);
            ptrs[i] = &items[i];
        }
        Orrery__RouteList list = ORRERY__ROUTE_LIST__INIT;
        list.routes = ptrs;
        list.n_routes = table.n;
        size_t size = orrery__route_list__get_packed_size (&list);
        if ((long) size > self->reply_max)
            orr_result_fail (result, 507, "routes: %zu routes make %zu bytes, over ROUTES_REPLY_MAX (%ld)", table.n,
                             size, self->reply_max);
        else
            orr_result_reply (result, &list.base);
    }
    free (ptrs);
    free (items);
    free (activity);
    route_table_clear (&table);
}

static void
s_sync_now (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    proxyctl_t *self = ctx;
    if (!orr_call_trusted (call, result, "proxyctl"))
        return;
    ORR_UNPACK_OR_400 (Orrery__ProxySync, orrery__proxy_sync__unpack, req);
    orrery__proxy_sync__free_unpacked (req, NULL);
    sync_result_t done;
    if (sync_all (self, &done) != 0) {
        orr_result_fail (result, 503, "sync: the route table is unavailable (only the hub route was checked)");
        return;
    }
    Orrery__ProxySyncResult out = ORRERY__PROXY_SYNC_RESULT__INIT;
    out.proxies = done.proxies;
    out.in_sync = done.in_sync;
    out.added = done.added;
    out.deleted = done.deleted;
    orr_result_reply (result, &out.base);
}

/* --- the timer --------------------------------------------------------------------------- */

static void
s_sync_tick (void *ctx)
{
    sync_result_t ignored;
    sync_all (ctx, &ignored);
}

/* --- start-up ---------------------------------------------------------------------------- */

/* The proxies of PROXY_API_URLS; false (logged) when one is not an http(s) URL. */
static bool
s_proxies_new (proxyctl_t *self, const char *urls)
{
    char **apis = orr_split (urls ? urls : "", ',', &self->nproxies);
    self->proxies = orr_zalloc ((self->nproxies + 1) * sizeof *self->proxies);
    bool ok = self->nproxies > 0;
    if (!ok)
        orr_error ("ORRERY_PROXY_API_URLS names no proxy");
    for (size_t i = 0; i < self->nproxies; i++) {
        if (!route_target_ok (apis[i])) {
            orr_error ("ORRERY_PROXY_API_URLS: '%s' is not an http(s) URL", apis[i]);
            ok = false;
        }
        chp_init (&self->proxies[i], apis[i]);
    }
    orr_strv_free (&apis);
    return ok;
}

static bool
s_settings_ok (proxyctl_t *self, long every)
{
    if (every < 50 || every > 60000 || self->timeout_ms < 100 || self->timeout_ms > 60000 || self->routes_max < 1
        || self->routes_max > 10000000 || self->reply_max < 1024) {
        orr_error ("settings out of range: PROXY_SYNC_MS 50..60000, PROXY_TIMEOUT_MS 100..60000, ROUTES_MAX "
                   "1..10000000, ROUTES_REPLY_MAX >= 1024");
        return false;
    }
    if (!route_target_ok (self->hub_url)) {
        orr_error ("ORRERY_HUB_URL '%s' is not an http(s) URL", self->hub_url);
        return false;
    }
    return true;
}

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    proxyctl_t *self = orr_zalloc (sizeof *self);
    *state = self;
    self->svc = svc;
    self->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    self->hub_url = orr_strdup (orr_config_get (config, "HUB_URL"));
    const char *token = orr_config_get (config, "PROXY_AUTH_TOKEN");
    self->auth_header = orr_sprintf ("Authorization: token %s", token ? token : "");
    self->timeout_ms = orr_config_int (config, "PROXY_TIMEOUT_MS");
    self->routes_max = orr_config_int (config, "ROUTES_MAX");
    self->reply_max = orr_config_int (config, "ROUTES_REPLY_MAX");
    self->chp_body_max = CHP_BODY_MIN + (size_t) (self->routes_max > 0 ? self->routes_max : 0) * CHP_BODY_PER_ROUTE;
    self->table_readable = true;
    long every = orr_config_int (config, "PROXY_SYNC_MS");
    if (!s_proxies_new (self, orr_config_get (config, "PROXY_API_URLS")) || !s_settings_ok (self, every))
        return 1;
    table_init ();
    orr_service_add_method (svc, "route.add", s_route_add, self);
    orr_service_add_method (svc, "route.delete", s_route_delete, self);
    orr_service_add_method (svc, "routes", s_routes, self);
    orr_service_add_method (svc, "sync", s_sync_now, self);
    s_sync_tick (self);
    orr_service_every (svc, (int) every, s_sync_tick, self);
    return 0;
}

static void
s_teardown (void *state)
{
    proxyctl_t *self = state;
    if (!self)
        return;
    for (size_t i = 0; i < self->nproxies; i++)
        chp_clear (&self->proxies[i]);
    free (self->proxies);
    free (self->redis_url);
    free (self->hub_url);
    free (self->auth_header);
    free (self);
    table_fini ();
    orr_store_thread_release ();
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "proxyctl", "Orrery proxyctl: keeps every proxy's routes equal to Redis.",
                             s_settings, s_setup, s_teardown);
}
