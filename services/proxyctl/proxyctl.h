/*  proxyctl: the service that keeps every configurable-http-proxy (CHP) replica's route
 *  table equal to the one in Redis. See docs/proxy.md for the rules; this header holds the
 *  data structures and what each file offers:
 *
 *    route.c   a route's rules: path canonical form, validation, its JSON in Redis, its
 *              body and URL at CHP (pure: no I/O, unit-tested)
 *    table.c   the route table in Redis (orr:{routes}:table), every write a Lua script
 *    chp.c     one CHP's REST API (GET/POST/DELETE /api/routes) over a kept-alive handle
 *    sync.c    reconciling each CHP with the table, copying activity, pushing one change
 *    main.c    settings, the bus methods, the sync timer
 */
#ifndef PROXYCTL_H
#define PROXYCTL_H

#include "orr_http.h"
#include "orr_service.h"
#include "orr_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_PATH_MAX 1024      /* bytes of a path as given (before decoding) */
#define ROUTE_TARGET_MAX 1024    /* bytes of a target URL */
#define ROUTE_NAME_MAX 1024      /* bytes of a user or server name */

/* One route of the table. `path` is canonical (route_path_canonical): the key CHP shows. */
typedef struct {
    char *path;
    char *target;
    char *user;                  /* "" when the route belongs to no user */
    char *server;                /* "" = the default server */
    int64_t created_us;          /* when this path got this target, user and server */
} route_t;

/* The whole table, sorted by path (strcmp), as read from Redis. */
typedef struct {
    route_t *v;
    size_t n;
} route_table_t;

/* What this replica last saw of a proxy. Only changes are logged. */
typedef enum {
    PROXY_UNKNOWN,               /* not looked at yet */
    PROXY_IN_SYNC,               /* equal to the table */
    PROXY_OUT_OF_SYNC,           /* differed; being fixed */
    PROXY_UNREACHABLE            /* its API did not answer 200 with a route object */
} proxy_state_t;

/* One CHP replica. */
typedef struct {
    char *api;                   /* API base URL, "http://127.0.0.1:8001" */
    orr_http_t *http;            /* one kept-alive connection per proxy */
    proxy_state_t state;
    /* path -> the CHP last_activity (µs) last copied into Redis from this proxy, or
     * ACTIVITY_PUSHED after this replica (re)wrote the route there: CHP then stamps the
     * write time, no sign of use, which becomes the new baseline instead of being copied.
     * A cache of what needs no write, never the truth. */
    json_t *seen;
} proxy_t;

#define ACTIVITY_PUSHED (-1)

typedef struct {
    orr_service_t *svc;
    char *redis_url;
    char *hub_url;               /* the hub route's target: the gateway(s) */
    char *auth_header;           /* "Authorization: token <CONFIGPROXY_AUTH_TOKEN>" */
    proxy_t *proxies;
    size_t nproxies;
    long timeout_ms;             /* per CHP request */
    long routes_max;             /* table size limit */
    long reply_max;              /* largest "routes" reply, bytes */
    size_t chp_body_max;         /* largest GET /api/routes body accepted */
    bool table_readable;         /* last table read worked (logged on change) */
} proxyctl_t;

/* --- route.c ----------------------------------------------------------------------------- */
/* The path as CHP keys it: percent-escapes decoded (as CHP's decodeURIComponent does), then
 * trailing slashes removed. 0 and *out (caller frees), or -1 with `err` set: not starting
 * with '/', longer than ROUTE_PATH_MAX, a bad %-escape, %00, not UTF-8, or "/" itself
 * (the hub route is proxyctl's own, never in the table). */
int route_path_canonical (const char *path, char **out, char *err, size_t errlen);
/* http:// or https:// followed by a host, printable ASCII without spaces, at most
 * ROUTE_TARGET_MAX bytes. */
bool route_target_ok (const char *target);
/* A user or server name: at most ROUTE_NAME_MAX bytes of UTF-8. */
bool route_name_ok (const char *name);

/* <api>/api/routes<path> with every byte outside [A-Za-z0-9-._~/@:] percent-escaped, so
 * CHP decodes it back to exactly `path`. Caller frees. */
char *route_chp_url (const char *api, const char *path);
/* The POST body for CHP: {"target", "jupyterhub": true, "user", "server_name"}. */
json_t *route_chp_body (const route_t *route);
/* True when CHP's entry carries this route: same target, user and server_name, and
 * "jupyterhub": true. */
bool route_chp_matches (const route_t *route, json_t *chp_entry);
/* True when CHP's entry is one proxyctl (or JupyterHub) manages: "jupyterhub": true. */
bool route_chp_managed (json_t *chp_entry);

/* The route's value in Redis: {"target","user","server","created_us"}. Caller frees. */
char *route_encode (const route_t *route);
/* Fills *out from a path and its stored JSON (0), or -1 when the JSON is not a route. */
int route_decode (const char *path, const char *json, route_t *out);
void route_clear (route_t *route);
route_t route_copy (const route_t *route);

void route_table_sort (route_table_t *table);
const route_t *route_table_find (const route_table_t *table, const char *path);
void route_table_clear (route_table_t *table);

/* --- table.c ----------------------------------------------------------------------------- */
int table_init (void);           /* compiles the scripts; 0 */
void table_fini (void);
orr_store_t *table_store (proxyctl_t *self);
/* The whole table, sorted. 0, or -1 (Redis failed). Undecodable entries are skipped. */
int table_read (proxyctl_t *self, route_table_t *out);
/* Writes `want` unless the same target, user and server are there already. *stored gets
 * what the table holds afterwards (created_us kept on a repeat). 1 written, 0 already
 * there, -2 ROUTES_MAX reached, -1 Redis failed. */
int table_add (proxyctl_t *self, const route_t *want, route_t *stored);
/* 1 deleted, 0 there was no such path, -1 Redis failed. */
int table_delete (proxyctl_t *self, const char *path);
/* The activity (µs, 0 = none) of each route's server into out[i]; routes without a user
 * get 0. 0, or -1 (Redis failed). */
int table_activity (proxyctl_t *self, const route_t *routes, size_t n, int64_t *out);

/* --- chp.c ------------------------------------------------------------------------------- */
void chp_init (proxy_t *proxy, const char *api);
void chp_clear (proxy_t *proxy);
/* GET /api/routes: 0 and the route object (caller decrefs), or -1 with `err` set (no
 * answer, a status other than 200, not a JSON object). */
int chp_routes (proxyctl_t *self, proxy_t *proxy, json_t **routes, char *err, size_t errlen);
/* POST /api/routes<path>: 0 when CHP took it (201), -1 with `err` set otherwise. */
int chp_post (proxyctl_t *self, proxy_t *proxy, const char *path, json_t *body, char *err, size_t errlen);
/* DELETE /api/routes<path>: 0 when gone (204, or 404: already gone), -1 with `err` set. */
int chp_delete (proxyctl_t *self, proxy_t *proxy, const char *path, char *err, size_t errlen);

/* --- sync.c ------------------------------------------------------------------------------ */
typedef struct {
    int proxies, in_sync, added, deleted;
} sync_result_t;

/* Reconciles every proxy with the table now; fills *result. 0, or -1 when the table could
 * not be read (then only the hub route was checked). */
int sync_all (proxyctl_t *self, sync_result_t *result);
/* After the table changed: pushes the route to (or deletes it from) every proxy not known
 * to be unreachable, so a spawn need not wait for the next sync. */
void sync_push_add (proxyctl_t *self, const route_t *route);
void sync_push_delete (proxyctl_t *self, const char *path);

#endif
