/*  sync: makes each configurable-http-proxy equal to the route table (docs/proxy.md).
 *
 *  One pass (sync_all) first GETs every proxy's routes and only then reads the table.
 *  That order is what lets several proxyctl replicas run at once: route.add writes Redis
 *  before it pushes to the proxies, so a route a proxy already shows is always in a table
 *  read made after it, and a pass never deletes a route another replica just added. Then,
 *  per proxy:
 *    1. the hub route "/" -> HUB_URL with "jupyterhub": true is posted if missing or
 *       different (CHP's own --default-target route lacks the flag, so it is replaced);
 *    2. every table route the proxy lacks, or shows with another target, user or server,
 *       is posted;
 *    3. every route with "jupyterhub": true that is neither "/" nor in the table is
 *       deleted (routes without the flag belong to someone else and are never touched);
 *    4. each table route's last_activity at the proxy is copied into its server's
 *       activity (orr_activity_record keeps the newest), when it moved since last copied.
 *  Every step is idempotent: two replicas posting the same route or deleting the same
 *  stray do no harm (CHP answers 404 to the second delete, which counts as done).
 *
 *  A proxy's state (in sync, out of sync, unreachable) is logged when it changes, never
 *  per pass.
 */
#include "proxyctl.h"
#include "orr_activity.h"
#include "orr_log.h"
#include "orr_time.h"
#include "orr_util.h"

#include <stdio.h>
#include <string.h>

#define SYNC_ERR_MAX 512

/* What one pass did to one proxy. */
typedef struct {
    int to_post, to_delete;     /* differences found */
    int posted, deleted;        /* of those, fixed */
    char first_failure[SYNC_ERR_MAX];
} proxy_pass_t;

static const char *
s_state_name (proxy_state_t state)
{
    return state == PROXY_IN_SYNC ? "in sync" : state == PROXY_OUT_OF_SYNC ? "out of sync"
                                            : state == PROXY_UNREACHABLE   ? "unreachable"
                                                                           : "unknown";
}

/* --- changes at one proxy --------------------------------------------------------------- */

/* Posts `body` at `path`; the proxy then stamps the route's last_activity with the time
 * of the write, no sign of use: the next value seen becomes the baseline. */
static void
s_post (proxyctl_t *self, proxy_t *proxy, const char *path, json_t *body, proxy_pass_t *pass)
{
    pass->to_post++;
    char err[SYNC_ERR_MAX];
    if (chp_post (self, proxy, path, body, err, sizeof err) == 0) {
        pass->posted++;
        json_object_set_new (proxy->seen, path, json_integer (ACTIVITY_PUSHED));
    }
    else if (!pass->first_failure[0])
        snprintf (pass->first_failure, sizeof pass->first_failure, "%s", err);
}

static void
s_delete (proxyctl_t *self, proxy_t *proxy, const char *path, proxy_pass_t *pass)
{
    pass->to_delete++;
    char err[SYNC_ERR_MAX];
    if (chp_delete (self, proxy, path, err, sizeof err) == 0) {
        pass->deleted++;
        json_object_del (proxy->seen, path);
    }
    else if (!pass->first_failure[0])
        snprintf (pass->first_failure, sizeof pass->first_failure, "%s", err);
}

static void
s_ensure_hub (proxyctl_t *self, proxy_t *proxy, json_t *routes, proxy_pass_t *pass)
{
    json_t *hub = json_object_get (routes, "/");
    const char *target = json_string_value (json_object_get (hub, "target"));
    if (route_chp_managed (hub) && target && strcmp (target, self->hub_url) == 0)
        return;
    json_t *body = json_pack ("{s:s, s:b, s:b}", "target", self->hub_url, "jupyterhub", 1, "hub", 1);
    s_post (self, proxy, "/", body, pass);
    json_decref (body);
}

/* Copies CHP's last_activity of a route into its server's activity when it moved on
 * since the last copy from this proxy (or the proxy was never looked at by this replica). */
static void
s_copy_activity (proxyctl_t *self, proxy_t *proxy, const route_t *route, json_t *entry)
{
    int64_t at = 0;
    const char *text = json_string_value (json_object_get (entry, "last_activity"));
    if (!*route->user || !text || orr_time_parse (text, &at) != 0 || at <= 0)
        return;
    json_t *seen = json_object_get (proxy->seen, route->path);
    json_int_t before = seen ? json_integer_value (seen) : 0;
    if (seen && before == ACTIVITY_PUSHED) {
        json_object_set_new (proxy->seen, route->path, json_integer (at));
        return;
    }
    if (seen && at <= before)
        return;
    if (orr_activity_record (table_store (self), route->user, route->server, at) >= 0)
        json_object_set_new (proxy->seen, route->path, json_integer (at));
}

static void
s_add_missing (proxyctl_t *self, proxy_t *proxy, json_t *routes, const route_table_t *table, proxy_pass_t *pass)
{
    for (size_t i = 0; i < table->n; i++) {
        const route_t *route = &table->v[i];
        json_t *entry = json_object_get (routes, route->path);
        if (entry && route_chp_matches (route, entry)) {
            s_copy_activity (self, proxy, route, entry);
            continue;
        }
        json_t *body = route_chp_body (route);
        s_post (self, proxy, route->path, body, pass);
        json_decref (body);
    }
}

static void
s_delete_strays (proxyctl_t *self, proxy_t *proxy, json_t *routes, const route_table_t *table, proxy_pass_t *pass)
{
    const char *path;
    json_t *entry;
    json_object_foreach (routes, path, entry) {
        if (strcmp (path, "/") != 0 && route_chp_managed (entry) && !route_table_find (table, path))
            s_delete (self, proxy, path, pass);
    }
}

/* Forgets activity baselines of routes no longer in the table. */
static void
s_prune_seen (proxy_t *proxy, const route_table_t *table)
{
    const char *path;
    json_t *value;
    void *tmp;
    json_object_foreach_safe (proxy->seen, tmp, path, value) {
        if (!route_table_find (table, path))
            json_object_del (proxy->seen, path);
    }
}

/* --- state ------------------------------------------------------------------------------ */

static void
s_set_state (proxy_t *proxy, proxy_state_t state, const char *detail)
{
    if (state == proxy->state)
        return;
    if (state == PROXY_UNREACHABLE)
        orr_warn ("proxy %s unreachable: %s", proxy->api, detail);
    else
        orr_info ("proxy %s %s: %s", proxy->api, s_state_name (state), detail);
    proxy->state = state;
}

static void
s_report (proxy_t *proxy, const proxy_pass_t *pass, const route_table_t *table)
{
    char detail[SYNC_ERR_MAX + 160];
    if (pass->to_post + pass->to_delete == 0) {
        if (table)
            snprintf (detail, sizeof detail, "%zu routes and the hub route", table->n);
        else
            snprintf (detail, sizeof detail, "the hub route (the table is unreadable)");
        s_set_state (proxy, PROXY_IN_SYNC, detail);
        return;
    }
    snprintf (detail, sizeof detail, "%d routes posted of %d to add or fix, %d deleted of %d stray%s%s",
              pass->posted, pass->to_post, pass->deleted, pass->to_delete, pass->first_failure[0] ? "; " : "",
              pass->first_failure);
    s_set_state (proxy, PROXY_OUT_OF_SYNC, detail);
}

/* One proxy, given its routes and the table (NULL when unreadable: only the hub route). */
static void
s_reconcile (proxyctl_t *self, proxy_t *proxy, json_t *routes, const route_table_t *table, sync_result_t *result)
{
    proxy_pass_t pass = { 0 };
    s_ensure_hub (self, proxy, routes, &pass);
    if (table) {
        s_add_missing (self, proxy, routes, table, &pass);
        s_delete_strays (self, proxy, routes, table, &pass);
        s_prune_seen (proxy, table);
    }
    s_report (proxy, &pass, table);
    result->added += pass.posted;
    result->deleted += pass.deleted;
    if (table && pass.posted == pass.to_post && pass.deleted == pass.to_delete)
        result->in_sync++;
}

static void
s_note_table (proxyctl_t *self, bool readable)
{
    if (readable == self->table_readable)
        return;
    if (readable)
        orr_info ("the route table is readable again");
    else
        orr_warn ("cannot read the route table (%s): proxies keep their routes until it is back",
                  orr_store_error (table_store (self)));
    self->table_readable = readable;
}

/* --- the pass --------------------------------------------------------------------------- */

int
sync_all (proxyctl_t *self, sync_result_t *result)
{
    memset (result, 0, sizeof *result);
    result->proxies = (int) self->nproxies;
    json_t **routes = orr_zalloc (self->nproxies * sizeof *routes);
    char (*errors)[SYNC_ERR_MAX] = orr_zalloc (self->nproxies * sizeof *errors);
    for (size_t i = 0; i < self->nproxies; i++)
        chp_routes (self, &self->proxies[i], &routes[i], errors[i], SYNC_ERR_MAX);
    route_table_t table;
    int rc = table_read (self, &table);
    s_note_table (self, rc == 0);
    for (size_t i = 0; i < self->nproxies; i++) {
        if (routes[i])
            s_reconcile (self, &self->proxies[i], routes[i], rc == 0 ? &table : NULL, result);
        else
            s_set_state (&self->proxies[i], PROXY_UNREACHABLE, errors[i]);
        json_decref (routes[i]);
    }
    route_table_clear (&table);
    free (routes);
    free (errors);
    return rc;
}

/* --- pushes of one change --------------------------------------------------------------- */

void
sync_push_add (proxyctl_t *self, const route_t *route)
{
    json_t *body = route_chp_body (route);
    for (size_t i = 0; i < self->nproxies; i++) {
        proxy_t *proxy = &self->proxies[i];
        char err[SYNC_ERR_MAX];
        if (proxy->state == PROXY_UNREACHABLE)
            continue;   /* the sync refills it when it answers again */
        if (chp_post (self, proxy, route->path, body, err, sizeof err) == 0)
            json_object_set_new (proxy->seen, route->path, json_integer (ACTIVITY_PUSHED));
        else
            orr_debug ("proxy %s: %s (the sync pass retries)", proxy->api, err);
    }
    json_decref (body);
}

void
sync_push_delete (proxyctl_t *self, const char *path)
{
    for (size_t i = 0; i < self->nproxies; i++) {
        proxy_t *proxy = &self->proxies[i];
        char err[SYNC_ERR_MAX];
        if (proxy->state == PROXY_UNREACHABLE)
            continue;
        if (chp_delete (self, proxy, path, err, sizeof err) == 0)
            json_object_del (proxy->seen, path);
        else
            orr_debug ("proxy %s: %s (the sync pass retries)", proxy->api, err);
    }
}
