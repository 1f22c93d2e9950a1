/*  test_proxyctl: the real orrery-proxyctl (two replicas) keeping two real
 *  configurable-http-proxy replicas equal to the route table in a real redis-server.
 *
 *  Through the bus (service "proxyctl"):
 *  - the hub route / -> HUB_URL ("jupyterhub": true) appears on both proxies;
 *  - 20 route.add calls: both proxies list all 20 with "jupyterhub": true at once (the
 *    add pushes), "routes" lists them sorted, a repeat keeps created_us, a new target
 *    reaches both proxies at once, bad requests 400;
 *  - one proxy SIGKILLed and started again empty on the same ports is refilled within 2 s
 *    of its start (the measured time is printed);
 *  - route.delete: gone from both at once; a route deleted from Redis behind proxyctl's
 *    back: gone from both within one sync;
 *  - a stray "jupyterhub": true route posted straight to a proxy is removed, a route
 *    without the flag is kept;
 *  - orr_activity_record keeps the newest value; a request through a proxy reaches a
 *    real HTTP responder, and the proxy's last_activity for that route lands in
 *    orr:{u:U}:activity;
 *  - "sync" reports both proxies in sync; ROUTES_MAX answers 507;
 *  - each replica logs a proxy's state changes, not every pass; both stop cleanly.
 */
#include "bus_fixture.h"
#include "orr_activity.h"
#include "orr_bus_client.h"
#include "orr_http.h"
#include "orr_keys.h"
#include "orr_rpc.h"
#include "orr_signal.h"
#include "orr_store.h"
#include "orr_time.h"
#include "orr_util.h"
#include "orrery/proxy.pb-c.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUTES 20
#define ROUTES_MAX 25
#define SYNC_MS 500
#define TOKEN "proxyctl-test-token"

/* --- configurable-http-proxy --------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port, api_port;
    char api[64];
    char log[256];
} chp_t;

static void
s_chp_start (chp_t *chp, const char *dir)
{
    if (!chp->port) {
        chp->port = orr_free_port ();
        do
            chp->api_port = orr_free_port ();
        while (chp->api_port == chp->port);
    }
    CHECK (chp->port > 0 && chp->api_port > 0);
    snprintf (chp->api, sizeof chp->api, "http://127.0.0.1:%d", chp->api_port);
    snprintf (chp->log, sizeof chp->log, "%s/chp-%d.log", dir, chp->api_port);
    char port[16], api_port[16];
    snprintf (port, sizeof port, "%d", chp->port);
    snprintf (api_port, sizeof api_port, "%d", chp->api_port);
    char *argv[] = { "configurable-http-proxy", "--ip", "127.0.0.1", "--port", port, "--api-ip", "127.0.0.1",
                     "--api-port", api_port, "--log-level", "warn", NULL };
    char *env[] = { "CONFIGPROXY_AUTH_TOKEN=" TOKEN, "NODE_PATH=/usr/share/nodejs", NULL };
    chp->pid = tu_spawn (argv, env, chp->log);
    CHECK (tu_wait_port (chp->api_port, 10000) == 0, "CHP API on %d did not open (see %s)", chp->api_port, chp->log);
}

static void
s_chp_stop (chp_t *chp, int sig)
{
    tu_stop (chp->pid, sig, 5000);
    chp->pid = 0;
}

/* One request to a proxy's API; the parsed body (NULL on failure), status into *status. */
static json_t *
s_chp_call (orr_http_t *http, const chp_t *chp, const char *method, const char *path, json_t *body, long *status)
{
    const char *headers[] = { "Authorization: token " TOKEN, NULL };
    char url[256], err[256];
    snprintf (url, sizeof url, "%s/api/routes%s", chp->api, path);
    return orr_http_json (http, method, url, headers, body, 2000, status, err, sizeof err);
}

static json_t *
s_chp_routes (orr_http_t *http, const chp_t *chp)
{
    long status = 0;
    json_t *routes = s_chp_call (http, chp, "GET", "", NULL, &status);
    if (status != 200 || !json_is_object (routes)) {
        json_decref (routes);
        return NULL;
    }
    return routes;
}

static int
s_managed_count (json_t *routes)
{
    const char *path;
    json_t *entry;
    int n = 0;
    json_object_foreach (routes, path, entry)
        n += json_is_true (json_object_get (entry, "jupyterhub"));
    return n;
}

/* --- a tiny HTTP responder: the target of /user/u00 ------------------------------------------- */

typedef struct {
    int fd, port;
    atomic_bool stop;
    atomic_int hits;
    pthread_t thread;
} responder_t;

static void
s_respond (int fd)
{
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read (fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t) n;
        buf[got] = '\0';
        if (strstr (buf, "\r\n\r\n"))
            break;
    }
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                                "Connection: close\r\n\r\nhello\n";
    if (write (fd, reply, sizeof reply - 1) < 0)
        perror ("responder write");
}

static void *
s_responder_run (void *arg)
{
    responder_t *r = arg;
    while (!atomic_load (&r->stop)) {
        struct pollfd pfd = { r->fd, POLLIN, 0 };
        if (poll (&pfd, 1, 50) != 1)
            continue;
        int conn = accept (r->fd, NULL, NULL);
        if (conn < 0)
            continue;
        s_respond (conn);
        close (conn);
        atomic_fetch_add (&r->hits, 1);
    }
    return NULL;
}

static void
s_responder_start (responder_t *r)
{
    memset (r, 0, sizeof *r);
    r->fd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    for (int attempt = 0; attempt < 20; attempt++) {
        r->port = orr_free_port ();
        addr.sin_port = htons ((uint16_t) r->port);
        if (bind (r->fd, (struct sockaddr *) &addr, sizeof addr) == 0)
            break;
        r->port = 0;
    }
    CHECK (r->port > 0 && listen (r->fd, 16) == 0, "responder cannot listen");
    CHECK (pthread_create (&r->thread, NULL, s_responder_run, r) == 0);
}

static void
s_responder_stop (responder_t *r)
{
    atomic_store (&r->stop, true);
    pthread_join (r->thread, NULL);
    close (r->fd);
}

/* --- proxyctl and its methods --------------------------------------------------------------- */

static pid_t
s_proxyctl_start (const char *dir, const char *bus, const char *redis_url, const char *replica, const char *apis,
                  const char *hub)
{
    char *bin = tu_bin ("orrery-proxyctl");
    char *env[] = {
        orr_sprintf ("ORRERY_BUS=%s", bus),
        orr_sprintf ("ORRERY_REDIS_URL=%s", redis_url),
        orr_sprintf ("ORRERY_REPLICA_ID=%s", replica),
        orr_sprintf ("ORRERY_PROXY_API_URLS=%s", apis),
        orr_sprintf ("ORRERY_HUB_URL=%s", hub),
        orr_sprintf ("ORRERY_PROXY_AUTH_TOKEN=%s", TOKEN),
        orr_sprintf ("ORRERY_PROXY_SYNC_MS=%d", SYNC_MS),
        orr_sprintf ("ORRERY_ROUTES_MAX=%d", ROUTES_MAX),
        NULL,
    };
    char *log = orr_sprintf ("%s/%s.log", dir, replica);
    char *argv[] = { bin, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    for (char **e = env; *e; e++)
        free (*e);
    free (log);
    free (bin);
    return pid;
}

static int
s_call (orr_bus_client_t *client, const char *method, const ProtobufCMessage *msg,
        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    size_t len = msg ? protobuf_c_message_get_packed_size (msg) : 0;
    uint8_t *buf = orr_zalloc (len + 1);
    if (msg)
        protobuf_c_message_pack (msg, buf);
    orr_rpc_reply_t r;
    int status = orr_rpc_call (client, "proxyctl", method, NULL, buf, len, &r);
    free (buf);
    if (out)
        *out = NULL;
    if (status == 200 && out) {
        *out = protobuf_c_message_unpack (desc, NULL, r.len, r.body);
        CHECK (*out, "%s: reply does not unpack", method);
    }
    if (status != 200 && status != 400 && status != 507)
        fprintf (stderr, "%s: %d %s\n", method, status, r.error);
    orr_rpc_reply_clear (&r);
    return status;
}

static int
s_add (orr_bus_client_t *client, const char *path, const char *target, const char *user, const char *server,
       Orrery__Route **out)
{
    Orrery__RouteAdd req = ORRERY__ROUTE_ADD__INIT;
    req.path = (char *) path;
    req.target = (char *) target;
    req.user = (char *) user;
    req.server = (char *) server;
    return s_call (client, "route.add", &req.base, &orrery__route__descriptor, (ProtobufCMessage **) out);
}

static int
s_delete (orr_bus_client_t *client, const char *path)
{
    Orrery__RouteDelete req = ORRERY__ROUTE_DELETE__INIT;
    req.path = (char *) path;
    return s_call (client, "route.delete", &req.base, NULL, NULL);
}

/* --- waiting ----------------------------------------------------------------------------- */

typedef bool (pred_fn) (void *arg);

/* Polls `pred` every 10 ms; the ms it took, or -1 after timeout_ms. */
static int64_t
s_wait (pred_fn *pred, void *arg, int timeout_ms)
{
    int64_t start = orr_mono_ms ();
    while (orr_mono_ms () - start <= timeout_ms) {
        if (pred (arg))
            return orr_mono_ms () - start;
        orr_sleep_ms (10);
    }
    return -1;
}

typedef struct {
    orr_http_t *http;
    const chp_t *chp;
    const char *hub;
    const char *path;      /* for the single-route checks */
    int want;              /* managed routes expected, hub route included */
} probe_t;

/* The proxy shows exactly `want` managed routes, the hub route among them. */
static bool
s_has_routes (void *arg)
{
    probe_t *p = arg;
    json_t *routes = s_chp_routes (p->http, p->chp);
    json_t *hub = json_object_get (routes, "/");
    const char *target = json_string_value (json_object_get (hub, "target"));
    bool ok = routes && s_managed_count (routes) == p->want && target && strcmp (target, p->hub) == 0
              && json_is_true (json_object_get (hub, "jupyterhub"));
    json_decref (routes);
    return ok;
}

static bool
s_lacks_path (void *arg)
{
    probe_t *p = arg;
    json_t *routes = s_chp_routes (p->http, p->chp);
    bool ok = routes && !json_object_get (routes, p->path);
    json_decref (routes);
    return ok;
}

/* --- the steps ------------------------------------------------------------------------------ */

typedef struct {
    char *dir;
    chp_t chp[2];
    orr_http_t *http;
    orr_bus_client_t *client;
    orr_store_t *store;
    responder_t responder;
    char hub[64];
} world_t;

static void
s_check_both (world_t *w, int want, int timeout_ms, const char *when)
{
    for (int i = 0; i < 2; i++) {
        probe_t p = { w->http, &w->chp[i], w->hub, NULL, want };
        CHECK (s_wait (s_has_routes, &p, timeout_ms) >= 0, "%s: proxy %d does not show %d managed routes", when, i,
               want);
    }
}

static void
s_step_add (world_t *w)
{
    int64_t created0 = 0;
    for (int i = 0; i < ROUTES; i++) {
        char path[64], user[16], target[64];
        snprintf (user, sizeof user, "u%02d", i);
        snprintf (path, sizeof path, "/user/%s/", user);       /* the trailing slash goes */
        snprintf (target, sizeof target, "http://127.0.0.1:%d", i == 0 ? w->responder.port : 9 + i);
        Orrery__Route *r = NULL;
        CHECK_EQ_INT (s_add (w->client, path, target, user, i == 1 ? "gpu" : "", &r), 200);
        path[strlen (path) - 1] = '\0';
        CHECK_EQ_STR (r->path, path);
        CHECK_EQ_STR (r->target, target);
        CHECK (r->created_us > 0);
        if (i == 0)
            created0 = r->created_us;
        orrery__route__free_unpacked (r, NULL);
    }
    /* pushed by the add itself: no waiting for a sync (a short grace for the HTTP calls) */
    s_check_both (w, ROUTES + 1, 100, "right after 20 adds");
    Orrery__Route *again = NULL;
    char target0[64];
    snprintf (target0, sizeof target0, "http://127.0.0.1:%d", w->responder.port);
    CHECK_EQ_INT (s_add (w->client, "/user/u00", target0, "u00", "", &again), 200);
    CHECK_EQ_INT (again->created_us, created0);
    orrery__route__free_unpacked (again, NULL);
    /* a new target for a path: a new created_us, and both proxies follow at once */
    CHECK_EQ_INT (s_add (w->client, "/user/u02", "http://127.0.0.1:4", "u02", "", &again), 200);
    CHECK (again->created_us > created0);
    orrery__route__free_unpacked (again, NULL);
    for (int i = 0; i < 2; i++) {
        long status = 0;
        json_t *entry = s_chp_call (w->http, &w->chp[i], "GET", "/user/u02", NULL, &status);
        CHECK_EQ_STR (json_string_value (json_object_get (entry, "target")), "http://127.0.0.1:4");
        json_decref (entry);
    }

    CHECK_EQ_INT (s_add (w->client, "user/x", "http://127.0.0.1:1", "x", "", NULL), 400);
    CHECK_EQ_INT (s_add (w->client, "/", "http://127.0.0.1:1", "x", "", NULL), 400);
    CHECK_EQ_INT (s_add (w->client, "/user/x", "ftp://127.0.0.1:1", "x", "", NULL), 400);
    CHECK_EQ_INT (s_add (w->client, "/user/x", "127.0.0.1:1", "x", "", NULL), 400);
    char *long_path = orr_zalloc (1100);
    memset (long_path, 'a', 1025);
    long_path[0] = '/';
    CHECK_EQ_INT (s_add (w->client, long_path, "http://127.0.0.1:1", "x", "", NULL), 400);
    free (long_path);

    Orrery__RouteList *list = NULL;
    CHECK_EQ_INT (s_call (w->client, "routes", NULL, &orrery__route_list__descriptor, (ProtobufCMessage **) &list), 200);
    CHECK_EQ_INT (list->n_routes, ROUTES);
    for (size_t i = 1; i < list->n_routes; i++)
        CHECK (strcmp (list->routes[i - 1]->path, list->routes[i]->path) < 0, "routes not sorted");
    CHECK_EQ_STR (list->routes[1]->server, "gpu");
    orrery__route_list__free_unpacked (list, NULL);

    json_t *routes = s_chp_routes (w->http, &w->chp[1]);
    json_t *u01 = json_object_get (routes, "/user/u01");
    CHECK_EQ_STR (json_string_value (json_object_get (u01, "user")), "u01");
    CHECK_EQ_STR (json_string_value (json_object_get (u01, "server_name")), "gpu");
    json_decref (routes);
    printf ("20 routes on both proxies at once\n");
}

static void
s_step_refill (world_t *w)
{
    s_chp_stop (&w->chp[1], SIGKILL);
    orr_sleep_ms (SYNC_MS + 200);   /* let the replicas notice it is gone */
    int64_t start = orr_mono_ms ();
    s_chp_start (&w->chp[1], w->dir);
    probe_t p = { w->http, &w->chp[1], w->hub, NULL, ROUTES + 1 };
    int64_t waited = s_wait (s_has_routes, &p, 5000);
    CHECK (waited >= 0, "the restarted proxy was not refilled within 5 s");
    int64_t since_start = orr_mono_ms () - start;
    printf ("restarted proxy refilled: %lld ms after its start (%lld ms after its API answered)\n",
            (long long) since_start, (long long) waited);
    CHECK (since_start <= 2000, "refilled %lld ms after its start, more than 2 s", (long long) since_start);
}

static void
s_step_delete (world_t *w)
{
    CHECK_EQ_INT (s_delete (w->client, "/user/u19/"), 200);
    CHECK_EQ_INT (s_delete (w->client, "/user/u19"), 200);   /* idempotent */
    for (int i = 0; i < 2; i++) {
        probe_t p = { w->http, &w->chp[i], w->hub, "/user/u19", 0 };
        CHECK (s_wait (s_lacks_path, &p, 100) >= 0, "route.delete: /user/u19 still on proxy %d", i);
    }
    /* deleted in Redis behind proxyctl's back: the sync removes it within one interval */
    char *key = orr_key_routes ();
    redisReply *r = orr_store_command (w->store, "HDEL %s %s", key, "/user/u18");
    CHECK (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "HDEL");
    freeReplyObject (r);
    free (key);
    for (int i = 0; i < 2; i++) {
        probe_t p = { w->http, &w->chp[i], w->hub, "/user/u18", 0 };
        int64_t took = s_wait (s_lacks_path, &p, SYNC_MS + 500);
        CHECK (took >= 0, "/user/u18 still on proxy %d one sync after it left the table", i);
    }
    s_check_both (w, ROUTES - 2 + 1, 100, "after two deletes");
    printf ("deletes reached both proxies\n");
}

static void
s_step_strays (world_t *w)
{
    long status = 0;
    json_t *stray = json_pack ("{s:s, s:b}", "target", "http://127.0.0.1:1", "jupyterhub", 1);
    json_decref (s_chp_call (w->http, &w->chp[0], "POST", "/stray", stray, &status));
    CHECK_EQ_INT (status, 201);
    json_t *foreign = json_pack ("{s:s}", "target", "http://127.0.0.1:2");
    json_decref (s_chp_call (w->http, &w->chp[0], "POST", "/foreign", foreign, &status));
    CHECK_EQ_INT (status, 201);
    json_decref (stray);
    json_decref (foreign);
    probe_t p = { w->http, &w->chp[0], w->hub, "/stray", 0 };
    CHECK (s_wait (s_lacks_path, &p, SYNC_MS + 500) >= 0, "the stray jupyterhub route was not removed");
    orr_sleep_ms (2 * SYNC_MS + 100);
    json_t *routes = s_chp_routes (w->http, &w->chp[0]);
    CHECK (json_object_get (routes, "/foreign"), "a route without \"jupyterhub\" was removed");
    json_decref (routes);
    printf ("stray removed, foreign route kept\n");
}

static int64_t
s_activity (world_t *w, const char *user)
{
    char *key = orr_key_user_activity (user);
    redisReply *r = orr_store_command (w->store, "HGET %s %s", key, "");
    free (key);
    int64_t us = r && r->type == REDIS_REPLY_STRING ? strtoll (r->str, NULL, 10) : 0;
    if (r)
        freeReplyObject (r);
    return us;
}

/* orr_activity_record keeps the newest value, whatever order reports come in. */
static void
s_step_activity_script (world_t *w)
{
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "", 2000), 1);
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "", 1000), 0);
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "", 2000), 0);
    CHECK_EQ_INT (s_activity (w, "scripted"), 2000);
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "", 1700000000123456LL), 1);
    CHECK_EQ_INT (s_activity (w, "scripted"), 1700000000123456LL);
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "", 0), -1);
    CHECK_EQ_INT (orr_activity_record (w->store, "scripted", "gpu", 5), 1);   /* per server */
    int64_t us = 0;
    CHECK (orr_activity_get (w->store, "scripted", "gpu", &us) == 0 && us == 5);
    CHECK (orr_activity_get (w->store, "scripted", "none", &us) == 0 && us == 0);
}

static void
s_step_activity (world_t *w)
{
    orr_sleep_ms (50);   /* CHP stamps in ms: make the traffic's stamp differ from the route's */
    char url[128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/user/u00/api/status", w->chp[0].port);
    orr_http_response_t resp = { 0 };
    CHECK (orr_http_request (w->http, "GET", url, NULL, NULL, 0, 2000, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.status, 200);
    CHECK_EQ_STR (resp.body, "hello\n");
    orr_http_response_clear (&resp);
    CHECK (atomic_load (&w->responder.hits) >= 1, "the responder saw no request");

    long status = 0;
    json_t *entry = s_chp_call (w->http, &w->chp[0], "GET", "/user/u00", NULL, &status);
    int64_t at = 0;
    CHECK (status == 200 && orr_time_parse (json_string_value (json_object_get (entry, "last_activity")), &at) == 0);
    json_decref (entry);
    int64_t start = orr_mono_ms (), copied = 0;
    while (orr_mono_ms () - start < 3 * SYNC_MS && (copied = s_activity (w, "u00")) != at)
        orr_sleep_ms (20);
    CHECK (copied == at, "orr:{u:u00}:activity holds %lld, the proxy's last_activity is %lld", (long long) copied,
           (long long) at);
    Orrery__RouteList *list = NULL;
    CHECK_EQ_INT (s_call (w->client, "routes", NULL, &orrery__route_list__descriptor, (ProtobufCMessage **) &list), 200);
    CHECK_EQ_STR (list->routes[0]->path, "/user/u00");
    CHECK_EQ_INT (list->routes[0]->last_activity_us, at);
    orrery__route_list__free_unpacked (list, NULL);
    printf ("traffic reached the target; last_activity copied after %lld ms\n", (long long) (orr_mono_ms () - start));
}

static void
s_step_sync_and_limit (world_t *w)
{
    Orrery__ProxySync req = ORRERY__PROXY_SYNC__INIT;
    Orrery__ProxySyncResult *res = NULL;
    CHECK_EQ_INT (s_call (w->client, "sync", &req.base, &orrery__proxy_sync_result__descriptor, (ProtobufCMessage **) &res),
                  200);
    CHECK_EQ_INT (res->proxies, 2);
    CHECK_EQ_INT (res->in_sync, 2);
    CHECK_EQ_INT (res->added, 0);
    CHECK_EQ_INT (res->deleted, 0);
    orrery__proxy_sync_result__free_unpacked (res, NULL);

    int have = ROUTES - 2, added = 0, status;
    for (;;) {
        char path[32];
        snprintf (path, sizeof path, "/user/extra%d", added);
        status = s_add (w->client, path, "http://127.0.0.1:3", "extra", "", NULL);
        if (status != 200)
            break;
        added++;
        CHECK (added <= ROUTES_MAX, "ROUTES_MAX not enforced");
    }
    CHECK_EQ_INT (status, 507);
    CHECK_EQ_INT (have + added, ROUTES_MAX);
    s_check_both (w, ROUTES_MAX + 1, SYNC_MS + 500, "at ROUTES_MAX");
    printf ("sync reports 2 of 2 in sync; ROUTES_MAX %d enforced\n", ROUTES_MAX);
}

/* Each replica logs state changes only: a handful of lines per proxy, never one per pass. */
static void
s_check_logs (const char *dir, const char *replica)
{
    char *path = orr_sprintf ("%s/%s.log", dir, replica);
    FILE *f = fopen (path, "r");
    CHECK (f, "no log %s", path);
    char line[2048];
    int state_lines = 0;
    while (fgets (line, sizeof line, f))
        if (strstr (line, "proxy http://"))
            state_lines++;
    fclose (f);
    CHECK (state_lines >= 2 && state_lines <= 20, "%s: %d proxy state lines", path, state_lines);
    free (path);
}

int
main (void)
{
    orr_signal_install ();
    world_t w = { .dir = tu_tmpdir ("proxyctl") };
    tu_redis_t redis;
    CHECK (tu_redis_start (&redis) == 0, "redis");
    tb_broker_t broker = { 0 };
    tb_broker_start (&broker, w.dir, NULL);
    s_responder_start (&w.responder);
    for (int i = 0; i < 2; i++)
        s_chp_start (&w.chp[i], w.dir);
    snprintf (w.hub, sizeof w.hub, "http://127.0.0.1:%d", orr_free_port ());
    char *apis = orr_sprintf ("%s,%s/", w.chp[0].api, w.chp[1].api);
    pid_t replicas[2];
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf (name, sizeof name, "proxyctl-%d", i);
        replicas[i] = s_proxyctl_start (w.dir, broker.addr, redis.url, name, apis, w.hub);
    }
    w.http = orr_http_new ();
    w.store = orr_store_new (redis.url);
    orr_bus_opts_t opts;
    tb_opts (&opts, broker.addr, 3000, 3);
    w.client = orr_bus_client_new (&opts);
    CHECK (w.client);
    s_check_both (&w, 1, 5000, "at start");   /* the hub route alone */

    s_step_add (&w);
    s_step_refill (&w);
    s_step_delete (&w);
    s_step_strays (&w);
    s_step_activity_script (&w);
    s_step_activity (&w);
    s_step_sync_and_limit (&w);

    for (int i = 0; i < 2; i++) {
        int st = tu_stop (replicas[i], SIGTERM, 10000);
        CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0, "proxyctl-%d exited with status %d (see %s)", i, st, w.dir);
    }
    s_check_logs (w.dir, "proxyctl-0");
    s_check_logs (w.dir, "proxyctl-1");
    orr_bus_client_destroy (&w.client);
    orr_bus_opts_clear (&opts);
    orr_store_destroy (&w.store);
    orr_http_destroy (&w.http);
    for (int i = 0; i < 2; i++)
        s_chp_stop (&w.chp[i], SIGTERM);
    s_responder_stop (&w.responder);
    tb_broker_stop (&broker, SIGTERM);
    tu_redis_stop (&redis);
    free (apis);
    tu_tmpdir_remove (&w.dir);
    printf ("test_proxyctl: ok\n");
    return 0;
}
