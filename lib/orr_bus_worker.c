/*  orr_bus_worker: the worker side of the bus protocol (lib/orr_bus.h).
 *
 *  Design: the sockets belong to the worker object and are used under one mutex. The
 *  caller's thread holds it while it waits for work (orr_bus_worker_poll), and then does
 *  the protocol work itself: reading requests, answering heartbeats, sending its own,
 *  reconnecting. That keeps the hot path to one thread per hop; an earlier design with
 *  an actor thread cost two extra thread wake-ups per request (docs/benchmarks.md).
 *  While the caller runs a handler it holds no lock, and a keeper thread takes the mutex
 *  every quarter heartbeat to do the same upkeep, so heartbeats never stop. ZeroMQ
 *  sockets may move between threads across a full memory barrier, which the mutex is.
 *
 *  Per broker we keep a DEALER, when we last heard from the broker and when to heartbeat
 *  next. A broker silent for liveness x heartbeat gets a fresh socket and a new READY;
 *  one that sends DISCONNECT (it restarted and does not know us, or refuses us) gets one
 *  after a back-off that doubles from one heartbeat to 30 s.
 *
 *  Repeated ids: `pending` maps each id being worked on to every route it arrived by (the
 *  same id can come from two brokers when a client failed over); `done` keeps recent
 *  replies (bounded in count and age) so a late repeat is answered at once.
 */
#include "orr_bus_worker.h"
#include "orr_log.h"
#include "orr_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define WORKER_DONE_MAX 4096          /* cached replies kept for repeated ids */
#define WORKER_DONE_TTL_MS 60000
#define WORKER_DRAIN_MAX 256          /* messages read from one broker per wake-up */
#define WORKER_BACKOFF_MAX_MS 30000

typedef struct {
    zsock_t *sock;            /* NULL while waiting to reconnect */
    char endpoint[256];
    int64_t expires_ms;       /* broker counts as gone after this */
    int64_t heartbeat_at;
    int64_t reconnect_at;
    int refusals;             /* DISCONNECTs in a row, for the back-off */
} broker_link_t;

typedef struct {
    int broker;
    zframe_t *client;
} route_t;

typedef struct {
    zlist_t *routes;          /* route_t* owned */
} pending_t;

typedef struct {
    zframe_t *reply;
    int64_t at_ms;
} done_t;

typedef struct {
    char *request_id;
    char *principal;
    zframe_t *body;
} queued_t;

struct orr_bus_worker_t {
    orr_bus_opts_t opts;      /* own copy (brokers not kept) */
    char *service;
    int credit;
    broker_link_t links[ORR_BUS_MAX_BROKERS];
    size_t nlinks;
    pthread_mutex_t lock;     /* guards everything below and the sockets */
    zlist_t *ready;           /* queued_t*, received and not yet taken */
    zhashx_t *pending;        /* request id -> pending_t */
    zhashx_t *done;           /* request id -> done_t */
    zlist_t *done_order;      /* request ids (owned strings), oldest first */
    pthread_t keeper;
    bool keeper_started;
    atomic_bool stopping;
};

/* ---------------------------------------------------------------- containers */

static void
s_route_free (route_t **r_p)
{
    if (*r_p) {
        zframe_destroy (&(*r_p)->client);
        free (*r_p);
        *r_p = NULL;
    }
}

static void
s_pending_free (void **item)
{
    pending_t *p = *item;
    if (!p)
        return;
    route_t *r;
    while ((r = zlist_pop (p->routes)))
        s_route_free (&r);
    zlist_destroy (&p->routes);
    free (p);
    *item = NULL;
}

static void
s_done_free (void **item)
{
    done_t *d = *item;
    if (!d)
        return;
    zframe_destroy (&d->reply);
    free (d);
    *item = NULL;
}

static void
s_queued_free (queued_t **q_p)
{
    queued_t *q = *q_p;
    if (!q)
        return;
    free (q->request_id);
    free (q->principal);
    zframe_destroy (&q->body);
    free (q);
    *q_p = NULL;
}

/* ---------------------------------------------------------------- protocol */

static void
s_send (broker_link_t *link, int cmd, zframe_t *client, const char *request_id, zframe_t *body, const char *service,
        int credit)
{
    if (!link->sock)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, ORR_BUS_WORKER);
    unsigned char c = (unsigned char) cmd;
    zmsg_addmem (msg, &c, 1);
    if (cmd == ORR_BUS_W_READY) {
        zmsg_addstr (msg, service);
        zmsg_addstrf (msg, "%d", credit);
    }
    else if (cmd == ORR_BUS_W_REPLY) {
        zmsg_append (msg, &(zframe_t *) { zframe_dup (client) });
        zmsg_addstr (msg, request_id);
        zmsg_append (msg, &(zframe_t *) { zframe_dup (body) });
    }
    zmsg_send (&msg, link->sock);
}

static void
s_link_connect (orr_bus_worker_t *self, broker_link_t *link)
{
    zsock_destroy (&link->sock);
    link->reconnect_at = 0;
    link->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (link->sock, 0);
    zsock_set_sndhwm (link->sock, 100000);
    zsock_set_rcvhwm (link->sock, 100000);
    zsock_set_rcvtimeo (link->sock, 0);     /* reads never block: we poll first */
    if (orr_bus_apply_curve (link->sock, &self->opts) != 0 || zsock_connect (link->sock, "%s", link->endpoint) != 0)
        orr_error ("worker cannot connect to %s", link->endpoint);
    int64_t now = orr_mono_ms ();
    link->expires_ms = now + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
    link->heartbeat_at = now + self->opts.heartbeat_ms;
    s_send (link, ORR_BUS_W_READY, NULL, NULL, NULL, self->service, self->credit);
}

static void
s_done_remember (orr_bus_worker_t *self, const char *request_id, zframe_t *reply)
{
    int64_t now = orr_mono_ms ();
    char *oldest;
    while ((oldest = zlist_first (self->done_order))) {
        done_t *d = zhashx_lookup (self->done, oldest);
        if (zlist_size (self->done_order) < WORKER_DONE_MAX && d && now - d->at_ms < WORKER_DONE_TTL_MS)
            break;
        zlist_pop (self->done_order);
        zhashx_delete (self->done, oldest);
        free (oldest);
    }
    done_t *d = orr_zalloc (sizeof *d);
    d->reply = zframe_dup (reply);
    d->at_ms = now;
    if (zhashx_insert (self->done, request_id, d) == 0)
        zlist_append (self->done_order, orr_strdup (request_id));
    else {
        void *dp = d;
        s_done_free (&dp);
    }
}

/* One message from broker `index`; returns false when there was none. */
static bool
s_broker_input (orr_bus_worker_t *self, int index)
{
    broker_link_t *link = &self->links[index];
    zmsg_t *msg = zmsg_recv (link->sock);
    if (!msg)
        return false;
    link->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
    zframe_t *header = zmsg_pop (msg);
    zframe_t *cmdf = zmsg_pop (msg);
    int cmd = cmdf && zframe_size (cmdf) == 1 ? *(unsigned char *) zframe_data (cmdf) : -1;
    bool valid_header = header && zframe_streq (header, ORR_BUS_WORKER);

    if (valid_header && cmd == ORR_BUS_W_REQUEST && zmsg_size (msg) == 4) {
        link->refusals = 0;
        zframe_t *client = zmsg_pop (msg);
        char *request_id = zmsg_popstr (msg);
        char *principal = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        done_t *done = zhashx_lookup (self->done, request_id);
        pending_t *pending = zhashx_lookup (self->pending, request_id);
        if (done)
            s_send (link, ORR_BUS_W_REPLY, client, request_id, done->reply, NULL, 0);
        else if (strlen (request_id) <= ORR_BUS_REQUEST_ID_MAX && strlen (principal) <= ORR_BUS_PRINCIPAL_MAX) {
            bool fresh = !pending;
            if (fresh) {
                pending = orr_zalloc (sizeof *pending);
                pending->routes = zlist_new ();
                zhashx_insert (self->pending, request_id, pending);
            }
            route_t *r = orr_zalloc (sizeof *r);
            r->broker = index;
            r->client = client;
            client = NULL;
            zlist_append (pending->routes, r);
            if (fresh) {
                queued_t *q = orr_zalloc (sizeof *q);
                q->request_id = request_id;
                q->principal = principal;
                q->body = body;
                request_id = principal = NULL;
                body = NULL;
                zlist_append (self->ready, q);
            }
        }
        zframe_destroy (&client);
        zframe_destroy (&body);
        free (request_id);
        free (principal);
    }
    else if (valid_header && cmd == ORR_BUS_W_DISCONNECT) {
        /* A broker that restarted says this once; one that refuses us (say, a principal
         * that may not serve) says it every time. Back off so a refusal is not a storm. */
        int delay = self->opts.heartbeat_ms << (link->refusals < 6 ? link->refusals : 6);
        if (delay > WORKER_BACKOFF_MAX_MS)
            delay = WORKER_BACKOFF_MAX_MS;
        link->refusals++;
        if (link->refusals == 1 || link->refusals % 10 == 0)
            orr_warn ("broker %s asked us to register again (%d in a row); retrying in %d ms", link->endpoint,
                      link->refusals, delay);
        link->reconnect_at = orr_mono_ms () + (link->refusals == 1 ? 0 : delay);
        zsock_destroy (&link->sock);
    }
    else if (valid_header && cmd == ORR_BUS_W_HEARTBEAT)
        link->refusals = 0;   /* brokers heartbeat only workers they know: we are registered */
    /* liveness was refreshed above; anything else is ignored */
    zframe_destroy (&header);
    zframe_destroy (&cmdf);
    zmsg_destroy (&msg);
    return true;
}

/* Reconnects, heartbeats and liveness checks that are due; returns the next due time. */
static int64_t
s_upkeep (orr_bus_worker_t *self)
{
    int64_t now = orr_mono_ms (), next = now + self->opts.heartbeat_ms;
    for (size_t i = 0; i < self->nlinks; i++) {
        broker_link_t *link = &self->links[i];
        if (!link->sock) {
            if (now >= link->reconnect_at)
                s_link_connect (self, link);
        }
        else if (now >= link->expires_ms) {
            orr_warn ("broker %s silent for %d ms; reconnecting", link->endpoint,
                      self->opts.heartbeat_ms * self->opts.liveness);
            s_link_connect (self, link);
        }
        else if (now >= link->heartbeat_at) {
            s_send (link, ORR_BUS_W_HEARTBEAT, NULL, NULL, NULL, NULL, 0);
            link->heartbeat_at = now + self->opts.heartbeat_ms;
        }
        int64_t due = link->sock ? link->heartbeat_at : link->reconnect_at;
        if (due < next)
            next = due;
    }
    return next;
}

static void
s_drain (orr_bus_worker_t *self, size_t i)
{
    for (int n = 0; n < WORKER_DRAIN_MAX && self->links[i].sock && s_broker_input (self, (int) i); n++)
        ;
}

/* ---------------------------------------------------------------- keeper thread */

static void *
s_keeper (void *arg)
{
    orr_bus_worker_t *self = arg;
    int slice = self->opts.heartbeat_ms / 4 > 0 ? self->opts.heartbeat_ms / 4 : 1;
    while (!atomic_load (&self->stopping)) {
        orr_sleep_ms (slice);
        /* if the caller holds the lock it is inside poll and does the upkeep itself */
        if (pthread_mutex_trylock (&self->lock) != 0)
            continue;
        for (size_t i = 0; i < self->nlinks; i++)
            s_drain (self, i);
        s_upkeep (self);
        pthread_mutex_unlock (&self->lock);
    }
    return NULL;
}

/* ---------------------------------------------------------------- public API */

orr_bus_worker_t *
orr_bus_worker_new (const orr_bus_opts_t *opts, const char *service, int credit)
{
    orr_bus_init ();
    if (!service || !*service || strlen (service) > ORR_BUS_SERVICE_MAX || credit < 1 || opts->broker_count == 0)
        return NULL;
    orr_bus_worker_t *self = orr_zalloc (sizeof *self);
    self->opts = *opts;
    self->opts.brokers = NULL;
    self->opts.broker_count = 0;
    self->opts.curve_server_public = opts->curve_server_public ? orr_strdup (opts->curve_server_public) : NULL;
    self->opts.curve_cert = opts->curve_cert ? orr_strdup (opts->curve_cert) : NULL;
    self->service = orr_strdup (service);
    self->credit = credit;
    pthread_mutex_init (&self->lock, NULL);
    self->ready = zlist_new ();
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_free);
    self->done = zhashx_new ();
    zhashx_set_destructor (self->done, s_done_free);
    self->done_order = zlist_new ();
    for (size_t i = 0; i < opts->broker_count && i < ORR_BUS_MAX_BROKERS; i++) {
        if (orr_bus_endpoint (opts->brokers[i], 0, self->links[i].endpoint, sizeof self->links[i].endpoint) != 0) {
            orr_bus_worker_destroy (&self);
            return NULL;
        }
        self->nlinks++;
    }
    for (size_t i = 0; i < self->nlinks; i++)
        s_link_connect (self, &self->links[i]);
    self->keeper_started = pthread_create (&self->keeper, NULL, s_keeper, self) == 0;
    return self;
}

void
orr_bus_worker_destroy (orr_bus_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_bus_worker_t *self = *self_p;
    atomic_store (&self->stopping, true);
    if (self->keeper_started)
        pthread_join (self->keeper, NULL);
    for (size_t i = 0; i < self->nlinks; i++) {
        s_send (&self->links[i], ORR_BUS_W_DISCONNECT, NULL, NULL, NULL, NULL, 0);
        zsock_destroy (&self->links[i].sock);
    }
    queued_t *q;
    while ((q = zlist_pop (self->ready)))
        s_queued_free (&q);
    zlist_destroy (&self->ready);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->done);
    char *id;
    while ((id = zlist_pop (self->done_order)))
        free (id);
    zlist_destroy (&self->done_order);
    pthread_mutex_destroy (&self->lock);
    orr_bus_opts_clear (&self->opts);
    free (self->service);
    free (self);
    *self_p = NULL;
}

int
orr_bus_worker_poll (orr_bus_worker_t *self, zmq_pollitem_t *extra, int nextra, int timeout_ms)
{
    zmq_pollitem_t items[ORR_BUS_MAX_BROKERS + 8];
    int which[ORR_BUS_MAX_BROKERS];
    if (nextra > 8)
        nextra = 8;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : orr_mono_ms () + timeout_ms;
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (zlist_size (self->ready) == 0) {
        int64_t next = s_upkeep (self), now = orr_mono_ms ();
        if (deadline < next)
            next = deadline;
        int n = 0;
        for (size_t i = 0; i < self->nlinks; i++)
            if (self->links[i].sock) {
                which[n] = (int) i;
                items[n++] = (zmq_pollitem_t) { zsock_resolve (self->links[i].sock), 0, ZMQ_POLLIN, 0 };
            }
        int nlinks = n;
        for (int k = 0; k < nextra; k++) {
            extra[k].revents = 0;
            items[n++] = extra[k];
        }
        int got = zmq_poll (items, n, next > now ? (long) (next - now) : 0);
        if (got < 0) {
            rc = zmq_errno () == EINTR ? -1 : 0;
            break;
        }
        for (int k = 0; k < nlinks; k++)
            if (items[k].revents & ZMQ_POLLIN)
                s_drain (self, (size_t) which[k]);
        bool extra_fired = false;
        for (int k = 0; k < nextra; k++) {
            extra[k].revents = items[nlinks + k].revents;
            extra_fired |= extra[k].revents != 0;
        }
        if (extra_fired || orr_mono_ms () >= deadline)
            break;
    }
    if (zlist_size (self->ready))
        rc = (int) zlist_size (self->ready);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
orr_bus_worker_recv (orr_bus_worker_t *self, orr_bus_request_t *req, int timeout_ms)
{
    memset (req, 0, sizeof *req);
    pthread_mutex_lock (&self->lock);
    queued_t *q = zlist_pop (self->ready);
    pthread_mutex_unlock (&self->lock);
    if (!q) {
        int rc = orr_bus_worker_poll (self, NULL, 0, timeout_ms);
        if (rc <= 0)
            return rc;
        pthread_mutex_lock (&self->lock);
        q = zlist_pop (self->ready);
        pthread_mutex_unlock (&self->lock);
        if (!q)
            return 0;
    }
    snprintf (req->request_id, sizeof req->request_id, "%s", q->request_id);
    snprintf (req->principal, sizeof req->principal, "%s", q->principal);
    req->body = q->body;
    q->body = NULL;
    s_queued_free (&q);
    return 1;
}

int
orr_bus_worker_reply (orr_bus_worker_t *self, const orr_bus_request_t *req, const void *body, size_t len)
{
    zframe_t *frame = zframe_new (body, len);
    pthread_mutex_lock (&self->lock);
    pending_t *pending = zhashx_lookup (self->pending, req->request_id);
    int rc = -1;
    if (pending) {
        for (route_t *r = zlist_first (pending->routes); r; r = zlist_next (pending->routes))
            s_send (&self->links[r->broker], ORR_BUS_W_REPLY, r->client, req->request_id, frame, NULL, 0);
        zhashx_delete (self->pending, req->request_id);
        s_done_remember (self, req->request_id, frame);
        rc = 0;
    }
    pthread_mutex_unlock (&self->lock);
    zframe_destroy (&frame);
    return rc;
}

void
orr_bus_request_clear (orr_bus_request_t *req)
{
    zframe_destroy (&req->body);
    memset (req, 0, sizeof *req);
}
