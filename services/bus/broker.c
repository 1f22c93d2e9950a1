/*  broker: routes requests to workers by service name, and forwards events.
 *
 *  The protocol is in lib/orr_bus.h. The shape is the ZeroMQ guide's Majordomo broker:
 *  one ROUTER socket that clients and workers share, a table of services each with a
 *  queue of requests and a list of workers with free credit, and a loop whose poll
 *  timeout is the next heartbeat.
 *
 *  Differences from the guide's broker, and why:
 *  - Credit: a worker announces how many requests it may hold at once (READY's optional
 *    4th frame, default 1). Holding a few keeps a worker busy while its reply travels
 *    back, which is most of the broker's throughput.
 *  - Held requests are remembered per worker; when a worker dies (heartbeats stop), what
 *    it held goes back to the head of its service's queue, so the client still gets an
 *    answer from another worker, without having to time out and retry.
 *  - Requests carry an id end to end and the broker never looks into bodies.
 *  - Every peer input is checked (frame count, sizes, printable names) and dropped with a
 *    counter when malformed: a broken or hostile peer costs a little CPU, never a crash.
 *  - Queues are bounded (queue_max per service, request_ttl_ms per request); the client
 *    gets an ERROR rather than waiting forever.
 *  - Events: an XSUB/XPUB pair forwarded by hand (not zmq_proxy) so the broker can check
 *    each event and stamp it with the publisher's principal. XSUB subscribes to
 *    everything; filtering happens at XPUB for each subscriber.
 */
#include "broker.h"
#include "zap.h"
#include "orr_bus.h"
#include "orr_log.h"
#include "orr_util.h"

#include <czmq.h>
#include <ctype.h>
#include <string.h>

/* How many messages one socket may take per wake-up, so no socket starves the others. */
#define BROKER_BATCH 256
/* A worker may hold at most this many requests (its READY credit is clamped to it). */
#define BROKER_CREDIT_MAX 64
/* Services known at once. A request naming a new service beyond this is refused, and a
 * service with no worker and no queued request is forgotten at the next heartbeat, so
 * made-up names cannot grow the table. */
#define BROKER_SERVICES_MAX 1024

typedef struct worker_t worker_t;

typedef struct {
    zframe_t *client;         /* client's routing id */
    char *service;
    char *request_id;
    char *principal;
    zframe_t *body;
    int64_t expires_ms;
} request_t;

typedef struct {
    char *name;
    zlist_t *requests;        /* request_t*, oldest first; owned */
    zlist_t *waiting;         /* worker_t* with free credit, least recently used first */
    size_t workers;
} service_t;

struct worker_t {
    char *key;                /* hex of the routing id: key in broker->workers */
    zframe_t *address;        /* routing id */
    service_t *service;       /* NULL until READY */
    char *principal;
    int credit;
    zlist_t *held;            /* request_t* sent and not yet answered; owned */
    bool in_waiting;
    int64_t expires_ms;
};

struct broker_t {
    broker_opts_t opts;
    char *bind;
    zsock_t *router, *xsub, *xpub;
    zap_t *zap;
    zhashx_t *services;       /* name -> service_t (owned) */
    zhashx_t *workers;        /* key -> worker_t (owned) */
    int64_t heartbeat_at;
    broker_stats_t stats;
};

static void s_worker_delete (broker_t *self, worker_t *worker, bool send_disconnect);

/* ---------------------------------------------------------------- requests */

static void
s_request_destroy (request_t **req_p)
{
    if (!req_p || !*req_p)
        return;
    request_t *req = *req_p;
    zframe_destroy (&req->client);
    zframe_destroy (&req->body);
    free (req->service);
    free (req->request_id);
    free (req->principal);
    free (req);
    *req_p = NULL;
}

static void
s_send_client (broker_t *self, zframe_t *client, int cmd, const char *service, const char *request_id,
               const void *body, size_t len)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (client) });
    zmsg_addstr (msg, ORR_BUS_CLIENT);
    unsigned char c = (unsigned char) cmd;
    zmsg_addmem (msg, &c, 1);
    zmsg_addstr (msg, service);
    zmsg_addstr (msg, request_id);
    zmsg_addmem (msg, body, len);
    zmsg_send (&msg, self->router);
}

static void
s_send_client_error (broker_t *self, request_t *req, const char *reason)
{
    self->stats.errors++;
    s_send_client (self, req->client, ORR_BUS_C_ERROR, req->service, req->request_id, reason, strlen (reason));
}

/* ---------------------------------------------------------------- services */

static void
s_service_destroy (service_t **svc_p)
{
    service_t *svc = *svc_p;
    if (!svc)
        return;
    request_t *req;
    while ((req = zlist_pop (svc->requests)))
        s_request_destroy (&req);
    zlist_destroy (&svc->requests);
    zlist_destroy (&svc->waiting);
    free (svc->name);
    free (svc);
    *svc_p = NULL;
}

static service_t *
s_service_require (broker_t *self, const char *name)
{
    service_t *svc = zhashx_lookup (self->services, name);
    if (!svc) {
        svc = orr_zalloc (sizeof *svc);
        svc->name = orr_strdup (name);
        svc->requests = zlist_new ();
        svc->waiting = zlist_new ();
        zhashx_insert (self->services, name, svc);
    }
    return svc;
}

static void
s_worker_send (broker_t *self, worker_t *worker, int cmd, request_t *req)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (worker->address) });
    zmsg_addstr (msg, ORR_BUS_WORKER);
    unsigned char c = (unsigned char) cmd;
    zmsg_addmem (msg, &c, 1);
    if (req) {
        zmsg_append (msg, &(zframe_t *) { zframe_dup (req->client) });
        zmsg_addstr (msg, req->request_id);
        zmsg_addstr (msg, req->principal);
        zmsg_append (msg, &(zframe_t *) { zframe_dup (req->body) });
    }
    zmsg_send (&msg, self->router);
}

/* Drops expired requests, then gives queued requests to workers with free credit. */
static void
s_service_dispatch (broker_t *self, service_t *svc)
{
    int64_t now = orr_mono_ms ();
    request_t *req = zlist_first (svc->requests);
    while (req && req->expires_ms <= now) {
        zlist_pop (svc->requests);
        char reason[160];
        snprintf (reason, sizeof reason, "no worker of service '%s' took the request within %d ms",
                  svc->name, self->opts.request_ttl_ms);
        s_send_client_error (self, req, reason);
        s_request_destroy (&req);
        req = zlist_first (svc->requests);
    }
    while (zlist_size (svc->requests) && zlist_size (svc->waiting)) {
        worker_t *worker = zlist_pop (svc->waiting);
        worker->in_waiting = false;
        req = zlist_pop (svc->requests);
        s_worker_send (self, worker, ORR_BUS_W_REQUEST, req);
        zlist_append (worker->held, req);
        if ((int) zlist_size (worker->held) < worker->credit) {
            zlist_append (svc->waiting, worker);
            worker->in_waiting = true;
        }
    }
}

/* ---------------------------------------------------------------- workers */

static void
s_worker_free (void **item)
{
    worker_t *worker = *item;
    if (!worker)
        return;
    request_t *req;
    while ((req = zlist_pop (worker->held)))
        s_request_destroy (&req);
    zlist_destroy (&worker->held);
    zframe_destroy (&worker->address);
    free (worker->principal);
    free (worker->key);
    free (worker);
    *item = NULL;
}

static void
s_worker_delete (broker_t *self, worker_t *worker, bool send_disconnect)
{
    if (send_disconnect)
        s_worker_send (self, worker, ORR_BUS_W_DISCONNECT, NULL);
    service_t *svc = worker->service;
    if (svc) {
        if (worker->in_waiting)
            zlist_remove (svc->waiting, worker);
        svc->workers--;
        /* What it held goes back first in line: its clients have waited longest. */
        request_t *req;
        while ((req = zlist_tail (worker->held))) {
            zlist_remove (worker->held, req);
            zlist_push (svc->requests, req);
            self->stats.requeued++;
        }
    }
    zhashx_delete (self->workers, worker->key);   /* frees via s_worker_free */
    if (svc)
        s_service_dispatch (self, svc);
}

static void
s_purge_workers (broker_t *self)
{
    int64_t now = orr_mono_ms ();
    zlist_t *dead = zlist_new ();
    for (worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers))
        if (w->expires_ms < now)
            zlist_append (dead, w);
    worker_t *w;
    while ((w = zlist_pop (dead))) {
        orr_warn ("worker %s of service %s stopped heartbeating; %zu held requests requeued", w->key,
                  w->service ? w->service->name : "-", zlist_size (w->held));
        self->stats.workers_purged++;
        s_worker_delete (self, w, false);
    }
    zlist_destroy (&dead);
}

/* ---------------------------------------------------------------- validation */

static bool
s_printable (zframe_t *f, size_t max, bool allow_empty)
{
    size_t n = zframe_size (f);
    if ((n == 0 && !allow_empty) || n > max)
        return false;
    const unsigned char *p = zframe_data (f);
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    return true;
}

static bool
s_frame_is (zframe_t *f, const char *s)
{
    size_t n = strlen (s);
    return zframe_size (f) == n && memcmp (zframe_data (f), s, n) == 0;
}

static int
s_frame_cmd (zframe_t *f)
{
    return zframe_size (f) == 1 ? *(unsigned char *) zframe_data (f) : -1;
}

static char *
s_principal_of (broker_t *self, zframe_t *f)
{
    const char *p = self->opts.curve ? zframe_meta (f, "User-Id") : NULL;
    return orr_strdup (p && *p ? p : ORR_BUS_ANONYMOUS);
}

/* ---------------------------------------------------------------- clients */

static void
s_client_request (broker_t *self, zframe_t *sender, zmsg_t *msg)
{
    /* remaining: [cmd][service][request-id][body] */
    if (zmsg_size (msg) != 4) {
        self->stats.malformed++;
        return;
    }
    zframe_t *cmd = zmsg_pop (msg), *service = zmsg_pop (msg), *rid = zmsg_pop (msg), *body = zmsg_pop (msg);
    if (s_frame_cmd (cmd) != ORR_BUS_C_REQUEST || !s_printable (service, ORR_BUS_SERVICE_MAX, false)
        || !s_printable (rid, ORR_BUS_REQUEST_ID_MAX, false)) {
        self->stats.malformed++;
        goto done;
    }
    self->stats.requests++;
    request_t *req = orr_zalloc (sizeof *req);
    req->client = zframe_dup (sender);
    req->service = zframe_strdup (service);
    req->request_id = zframe_strdup (rid);
    req->principal = s_principal_of (self, cmd);
    req->body = body;
    body = NULL;
    req->expires_ms = orr_mono_ms () + self->opts.request_ttl_ms;

    if (strcmp (req->service, "mmi.service") == 0) {
        /* Majordomo's service discovery: 200 if the named service has a worker. */
        char *name = zframe_strdup (req->body);
        service_t *svc = zhashx_lookup (self->services, name);
        const char *answer = svc && svc->workers ? "200" : "404";
        s_send_client (self, req->client, ORR_BUS_C_REPLY, req->service, req->request_id, answer, 3);
        free (name);
        s_request_destroy (&req);
        goto done;
    }
    service_t *svc = zhashx_lookup (self->services, req->service);
    if (!svc && zhashx_size (self->services) >= BROKER_SERVICES_MAX) {
        s_send_client_error (self, req, "too many services known to the broker");
        s_request_destroy (&req);
        goto done;
    }
    svc = s_service_require (self, req->service);
    if (zlist_size (svc->requests) >= self->opts.queue_max) {
        char reason[160];
        snprintf (reason, sizeof reason, "service '%s' is busy: %zu requests queued", svc->name, self->opts.queue_max);
        s_send_client_error (self, req, reason);
        s_request_destroy (&req);
        goto done;
    }
    zlist_append (svc->requests, req);
    s_service_dispatch (self, svc);
done:
    zframe_destroy (&cmd);
    zframe_destroy (&service);
    zframe_destroy (&rid);
    zframe_destroy (&body);
}

/* ---------------------------------------------------------------- workers' messages */

static void
s_worker_message (broker_t *self, zframe_t *sender, zmsg_t *msg)
{
    zframe_t *cmdf = zmsg_first (msg);
    int cmd = cmdf ? s_frame_cmd (cmdf) : -1;
    if (zframe_size (sender) == 0 || zframe_size (sender) > 255) {
        self->stats.malformed++;
        return;
    }
    char *key = zframe_strhex (sender);
    worker_t *worker = zhashx_lookup (self->workers, key);

    if (cmd == ORR_BUS_W_READY && (zmsg_size (msg) == 2 || zmsg_size (msg) == 3)) {
        zframe_t *svcf = zmsg_next (msg);
        zframe_t *creditf = zmsg_next (msg);
        long credit = 1;
        if (creditf) {
            char *s = zframe_strdup (creditf);
            if (orr_parse_long (s, &credit) != 0 || credit < 1)
                credit = -1;
            free (s);
        }
        if (!s_printable (svcf, ORR_BUS_SERVICE_MAX, false) || credit < 1 || worker) {
            /* malformed, or a second READY: the peer is confused; make it start over */
            self->stats.malformed++;
            if (worker)
                s_worker_delete (self, worker, true);
            goto done;
        }
        char *principal = s_principal_of (self, cmdf);
        if (self->opts.curve && strncmp (principal, "service:", 8) != 0) {
            orr_warn ("refused worker registration from principal '%s' (only service:* may serve)", principal);
            free (principal);
            worker_t tmp = { .address = sender };
            s_worker_send (self, &tmp, ORR_BUS_W_DISCONNECT, NULL);
            goto done;
        }
        worker = orr_zalloc (sizeof *worker);
        worker->key = orr_strdup (key);
        worker->address = zframe_dup (sender);
        worker->principal = principal;
        worker->credit = credit > BROKER_CREDIT_MAX ? BROKER_CREDIT_MAX : (int) credit;
        worker->held = zlist_new ();
        worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
        char *name = zframe_strdup (svcf);
        worker->service = s_service_require (self, name);
        free (name);
        zhashx_insert (self->workers, key, worker);
        worker->service->workers++;
        zlist_append (worker->service->waiting, worker);
        worker->in_waiting = true;
        orr_info ("worker %s registered for service %s (credit %d, principal %s)", key, worker->service->name,
                  worker->credit, worker->principal);
        s_service_dispatch (self, worker->service);
        goto done;
    }
    if (cmd == ORR_BUS_W_REPLY && zmsg_size (msg) == 4) {
        /* the cursor is on the command frame (zmsg_first above) */
        zframe_t *client = zmsg_next (msg), *rid = zmsg_next (msg), *body = zmsg_next (msg);
        if (zframe_size (client) == 0 || zframe_size (client) > 255 || !s_printable (rid, ORR_BUS_REQUEST_ID_MAX, false)) {
            self->stats.malformed++;
            goto done;
        }
        char *request_id = zframe_strdup (rid);
        const char *service_name = "";
        if (worker) {
            worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
            for (request_t *r = zlist_first (worker->held); r; r = zlist_next (worker->held))
                if (strcmp (r->request_id, request_id) == 0 && zframe_eq (r->client, client)) {
                    zlist_remove (worker->held, r);
                    s_request_destroy (&r);
                    break;
                }
            service_name = worker->service->name;
        }
        /* The reply is valid even from a worker we no longer know (we restarted, or
         * purged it too early): deliver it; the client matches it by id. */
        self->stats.replies++;
        s_send_client (self, client, ORR_BUS_C_REPLY, service_name, request_id, zframe_data (body), zframe_size (body));
        free (request_id);
        if (!worker) {
            worker_t tmp = { .address = sender };
            s_worker_send (self, &tmp, ORR_BUS_W_DISCONNECT, NULL);
        }
        else {
            if (!worker->in_waiting && (int) zlist_size (worker->held) < worker->credit) {
                zlist_append (worker->service->waiting, worker);
                worker->in_waiting = true;
            }
            s_service_dispatch (self, worker->service);
        }
        goto done;
    }
    if (cmd == ORR_BUS_W_HEARTBEAT && zmsg_size (msg) == 1) {
        if (worker)
            worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
        else {
            /* We do not know it (we restarted): tell it to register again. */
            worker_t tmp = { .address = sender };
            s_worker_send (self, &tmp, ORR_BUS_W_DISCONNECT, NULL);
        }
        goto done;
    }
    if (cmd == ORR_BUS_W_DISCONNECT && zmsg_size (msg) == 1) {
        if (worker)
            s_worker_delete (self, worker, false);
        goto done;
    }
    self->stats.malformed++;
done:
    free (key);
}

static bool
s_router_input (broker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return false;
    zframe_t *sender = zmsg_pop (msg);
    zframe_t *header = zmsg_pop (msg);
    if (!sender || !header)
        self->stats.malformed++;
    else if (s_frame_is (header, ORR_BUS_CLIENT))
        s_client_request (self, sender, msg);
    else if (s_frame_is (header, ORR_BUS_WORKER)) {
        /* keep the command frame first: its metadata names the principal */
        s_worker_message (self, sender, msg);
    }
    else
        self->stats.malformed++;
    zframe_destroy (&sender);
    zframe_destroy (&header);
    zmsg_destroy (&msg);
    return true;
}

/* ---------------------------------------------------------------- events */

static bool
s_event_input (broker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->xsub);
    if (!msg)
        return false;
    self->stats.events_in++;
    zframe_t *topic = zmsg_first (msg);
    if (zmsg_size (msg) != 2 || !s_printable (topic, ORR_BUS_TOPIC_MAX, false)
        || s_frame_is (topic, ORR_BUS_TICK_TOPIC)) {
        self->stats.events_refused++;
        zmsg_destroy (&msg);
        return true;
    }
    char *principal = s_principal_of (self, topic);
    zframe_t *body = zmsg_last (msg);
    zmsg_t *out = zmsg_new ();
    zmsg_append (out, &(zframe_t *) { zframe_dup (topic) });
    zmsg_addstr (out, principal);
    zmsg_append (out, &(zframe_t *) { zframe_dup (body) });
    if (zmsg_send (&out, self->xpub) == 0)
        self->stats.events_out++;
    zmsg_destroy (&out);
    free (principal);
    zmsg_destroy (&msg);
    return true;
}

/* Subscriptions arrive here; XPUB already filters per subscriber, so just drain. */
static bool
s_subscription_input (broker_t *self)
{
    zframe_t *f = zframe_recv (self->xpub);
    if (!f)
        return false;
    zframe_destroy (&f);
    return true;
}

static void
s_publish_tick (broker_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, ORR_BUS_TICK_TOPIC);
    zmsg_addstr (msg, "broker");
    zmsg_addstr (msg, self->bind);
    zmsg_send (&msg, self->xpub);
}

static void
s_heartbeat (broker_t *self)
{
    for (worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers))
        s_worker_send (self, w, ORR_BUS_W_HEARTBEAT, NULL);
    s_publish_tick (self);
}

/* ---------------------------------------------------------------- life cycle */

static zsock_t *
s_bind (broker_t *self, int type, int offset, zcert_t *cert)
{
    char ep[256];
    if (orr_bus_endpoint (self->bind, offset, ep, sizeof ep) != 0) {
        orr_error ("bad bind address %s: expected tcp://HOST:PORT", self->bind);
        return NULL;
    }
    zsock_t *s = zsock_new (type);
    zsock_set_maxmsgsize (s, (int) self->opts.max_message);
    zsock_set_linger (s, 0);
    zsock_set_sndhwm (s, type == ZMQ_XPUB ? self->opts.events_hwm : 100000);
    zsock_set_rcvhwm (s, 100000);
    zsock_set_rcvtimeo (s, 0);
    if (cert) {
        zcert_apply (cert, s);
        zsock_set_curve_server (s, 1);
        zsock_set_zap_domain (s, "orrery");
    }
    if (zsock_bind (s, "%s", ep) < 0) {
        orr_error ("cannot bind %s: %s", ep, zmq_strerror (zmq_errno ()));
        zsock_destroy (&s);
    }
    return s;
}

broker_t *
broker_new (const broker_opts_t *opts)
{
    broker_t *self = orr_zalloc (sizeof *self);
    self->opts = *opts;
    self->bind = orr_strdup (opts->bind);
    self->opts.bind = self->bind;
    self->opts.curve_server_cert = NULL;
    self->opts.curve_allow = NULL;
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, (zhashx_destructor_fn *) s_service_destroy);
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, (zhashx_destructor_fn *) s_worker_free);

    zcert_t *cert = NULL;
    if (opts->curve) {
        cert = opts->curve_server_cert ? zcert_load (opts->curve_server_cert) : NULL;
        if (!cert) {
            orr_error ("CURVE is on but the broker certificate '%s' cannot be loaded",
                       opts->curve_server_cert ? opts->curve_server_cert : "");
            goto fail;
        }
        self->zap = zap_new (opts->curve_allow);
        if (!self->zap)
            goto fail;
    }
    self->router = s_bind (self, ZMQ_ROUTER, 0, cert);
    self->xsub = s_bind (self, ZMQ_XSUB, 1, cert);
    self->xpub = s_bind (self, ZMQ_XPUB, 2, cert);
    zcert_destroy (&cert);
    if (!self->router || !self->xsub || !self->xpub)
        goto fail;
    /* subscribe upstream to everything; each subscriber's filter applies at XPUB */
    unsigned char all = 1;
    zmq_send (zsock_resolve (self->xsub), &all, 1, 0);
    self->heartbeat_at = orr_mono_ms () + self->opts.heartbeat_ms;
    orr_info ("broker bound at %s (requests), +1 (events in), +2 (events out)%s", self->bind,
              opts->curve ? ", CURVE on" : "");
    return self;
fail:
    zcert_destroy (&cert);
    broker_destroy (&self);
    return NULL;
}

void
broker_destroy (broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *self = *self_p;
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    zsock_destroy (&self->router);
    zsock_destroy (&self->xsub);
    zsock_destroy (&self->xpub);
    zap_destroy (&self->zap);
    free (self->bind);
    free (self);
    *self_p = NULL;
}

broker_stats_t
broker_stats (broker_t *self)
{
    return self->stats;
}

void
broker_run (broker_t *self, volatile int *stop)
{
    zmq_pollitem_t items[4] = {
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->xsub), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->xpub), 0, ZMQ_POLLIN, 0 },
        { self->zap ? zsock_resolve (zap_sock (self->zap)) : NULL, 0, ZMQ_POLLIN, 0 },
    };
    int nitems = self->zap ? 4 : 3;
    while (!*stop) {
        int64_t timeout = self->heartbeat_at - orr_mono_ms ();
        if (timeout < 0)
            timeout = 0;
        int rc = zmq_poll (items, nitems, (long) timeout);
        if (rc < 0 && zmq_errno () != EINTR)
            break;
        if (rc > 0) {
            if (nitems == 4 && (items[3].revents & ZMQ_POLLIN))
                zap_handle (self->zap);
            /* Reads never block (receive timeout 0), so read until a socket is empty
             * rather than asking ZMQ_EVENTS before each message: that costs two system
             * calls a message, most of the broker's time at load. */
            if (items[0].revents & ZMQ_POLLIN)
                for (int i = 0; i < BROKER_BATCH && s_router_input (self); i++)
                    ;
            if (items[1].revents & ZMQ_POLLIN)
                for (int i = 0; i < BROKER_BATCH && s_event_input (self); i++)
                    ;
            if (items[2].revents & ZMQ_POLLIN)
                for (int i = 0; i < BROKER_BATCH && s_subscription_input (self); i++)
                    ;
        }
        if (orr_mono_ms () >= self->heartbeat_at) {
            s_purge_workers (self);
            zlist_t *idle = zlist_new ();
            for (service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services)) {
                s_service_dispatch (self, svc);
                if (svc->workers == 0 && zlist_size (svc->requests) == 0)
                    zlist_append (idle, svc->name);
            }
            char *name;
            while ((name = zlist_pop (idle)))
                zhashx_delete (self->services, name);
            zlist_destroy (&idle);
            s_heartbeat (self);
            self->heartbeat_at = orr_mono_ms () + self->opts.heartbeat_ms;
        }
    }
}
