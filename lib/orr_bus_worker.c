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
 *
 *  Per request the work is kept to a few allocations (docs/benchmarks.md, "Bus"): a
 *  message from a broker is read into zmq_msg_t parts on the stack rather than a czmq
 *  zmsg, which allocates an object per frame; ids and principals live in fixed arrays
 *  sized by the protocol's limits; the hash tables key on those arrays instead of copies;
 *  the ready queue and the age order of `done` are intrusive lists; and a reply is built
 *  once as a zmq_msg_t that every route and the cache share (refcounted copies).
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

typedef struct route_t route_t;
struct route_t {
    route_t *next;            /* a later arrival of the same id */
    int broker;
    zmq_msg_t client;         /* the client's route, as the broker sent it */
};

typedef struct {
    char request_id[ORR_BUS_REQUEST_ID_MAX + 1];   /* key in self->pending */
    route_t first;            /* the usual case: the id arrived once. Repeats that came
                               * while it was worked on follow it (first.next); owned */
} pending_t;

typedef struct done_t done_t;
struct done_t {
    done_t *younger;          /* next in self->done_oldest order */
    zmq_msg_t reply;          /* sent as refcounted copies */
    int64_t at_ms;
    char request_id[ORR_BUS_REQUEST_ID_MAX + 1];   /* key in self->done */
};

typedef struct queued_t queued_t;
struct queued_t {
    queued_t *next;           /* in self->ready */
    zframe_t *body;           /* handed to the caller as orr_bus_request_t.body */
    char request_id[ORR_BUS_REQUEST_ID_MAX + 1];
    char principal[ORR_BUS_PRINCIPAL_MAX + 1];
};

struct orr_bus_worker_t {
    orr_bus_opts_t opts;      /* own copy (brokers not kept) */
    char *service;
    int credit;
    broker_link_t links[ORR_BUS_MAX_BROKERS];
    size_t nlinks;
    pthread_mutex_t lock;     /* guards everything below and the sockets */
    queued_t *ready, *ready_tail;   /* received and not yet taken, oldest first */
    size_t nready;
    zhashx_t *pending;        /* request id -> pending_t; keys live in the values */
    zhashx_t *done;           /* request id -> done_t; keys live in the values */
    done_t *done_oldest, *done_youngest;
    pthread_t keeper;
    bool keeper_started;
    atomic_bool stopping;
};

/* ---------------------------------------------------------------- containers */

static void
s_pending_free (void **item)
{
    pending_t *p = *item;
    if (!p)
        return;
    zmq_msg_close (&p->first.client);
    route_t *r;
    while ((r = p->first.next)) {
        p->first.next = r->next;
        zmq_msg_close (&r->client);
        free (r);
    }
    free (p);
    *item = NULL;
}

static void
s_done_free (void **item)
{
    done_t *d = *item;
    if (!d)
        return;
    zmq_msg_close (&d->reply);
    free (d);
    *item = NULL;
}

static void
s_queued_free (queued_t **q_p)
{
    queued_t *q = *q_p;
    if (!q)
        return;
    zframe_destroy (&q->body);
    free (q);
    *q_p = NULL;
}

static queued_t *
s_ready_pop (orr_bus_worker_t *self)
{
    queued_t *q = self->ready;
    if (q) {
        self->ready = q->next;
        if (!self->ready)
            self->ready_tail = NULL;
        self->nready--;
    }
    return q;
}

/* ---------------------------------------------------------------- protocol */

/* ["ORW1"] [cmd], then for READY [service] [credit]. */
static void
s_send (broker_link_t *link, int cmd, const char *service, int credit)
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
    zmsg_send (&msg, link->sock);
}

/* ["ORW1"] [REPLY] [client] [request-id] [body], frame by frame: this is once per
 * request. The route and the body go out as copies of the zmq_msg_t (refcounted for a
 * large body), since both may be sent again. */
static void
s_send_reply (broker_link_t *link, zmq_msg_t *client, const char *request_id, zmq_msg_t *body)
{
    if (!link->sock)
        return;
    void *h = zsock_resolve (link->sock);
    unsigned char c = ORR_BUS_W_REPLY;
    zmq_msg_t m;
    zmq_send (h, ORR_BUS_WORKER, strlen (ORR_BUS_WORKER), ZMQ_SNDMORE);
    zmq_send (h, &c, 1, ZMQ_SNDMORE);
    zmq_msg_init (&m);
    zmq_msg_copy (&m, client);
    zmq_msg_send (&m, h, ZMQ_SNDMORE);
    zmq_msg_close (&m);
    zmq_send (h, request_id, strlen (request_id), ZMQ_SNDMORE);
    zmq_msg_init (&m);
    zmq_msg_copy (&m, body);
    zmq_msg_send (&m, h, 0);
    zmq_msg_close (&m);
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
    s_send (link, ORR_BUS_W_READY, self->service, self->credit);
}

/* Keeps reply d for repeats of its id; the oldest go once there are too many or they
 * are too old. Takes d. */
static void
s_done_remember (orr_bus_worker_t *self, done_t *d)
{
    int64_t now = orr_mono_ms ();
    done_t *oldest;
    while ((oldest = self->done_oldest)) {
        if (zhashx_size (self->done) < WORKER_DONE_MAX && now - oldest->at_ms < WORKER_DONE_TTL_MS)
            break;
        self->done_oldest = oldest->younger;
        if (!self->done_oldest)
            self->done_youngest = NULL;
        zhashx_delete (self->done, oldest->request_id);   /* frees it via s_done_free */
    }
    d->at_ms = now;
    d->younger = NULL;
    if (zhashx_insert (self->done, d->request_id, d) == 0) {
        if (self->done_youngest)
            self->done_youngest->younger = d;
        else
            self->done_oldest = d;
        self->done_youngest = d;
    }
    else {
        void *dp = d;
        s_done_free (&dp);
    }
}

/* A REQUEST's parts: [header] [cmd] [client] [request-id] [principal] [body]. */
#define WORKER_PARTS_MAX 6

/* One message from broker `index`; returns false when there was none. The parts are
 * read into zmq_msg_t on the stack (czmq's zmsg allocates an object per frame), except
 * a REQUEST's body, which the caller gets as a zframe_t and so is read as one. */
static bool
s_broker_input (orr_bus_worker_t *self, int index)
{
    broker_link_t *link = &self->links[index];
    void *h = zsock_resolve (link->sock);
    zmq_msg_t part[WORKER_PARTS_MAX - 1];
    zframe_t *body = NULL;
    int nparts = 0;
    bool more = true;
    while (more) {
        if (nparts == WORKER_PARTS_MAX - 1) {
            zframe_t *f = zframe_recv (link->sock);
            if (!f)
                break;   /* cannot happen: the parts of a message arrive together */
            more = zframe_more (f);
            body = f;
        }
        else {
            zmq_msg_t extra;
            zmq_msg_t *m = nparts < WORKER_PARTS_MAX - 1 ? &part[nparts] : &extra;
            zmq_msg_init (m);
            if (zmq_msg_recv (m, h, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (m);
                if (nparts == 0)
                    return false;
                break;   /* cannot happen, as above */
            }
            more = zmq_msg_more (m);
            if (m == &extra)
                zmq_msg_close (m);
        }
        nparts++;
    }
    int kept = nparts < WORKER_PARTS_MAX - 1 ? nparts : WORKER_PARTS_MAX - 1;
    link->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
    int cmd = nparts >= 2 && zmq_msg_size (&part[1]) == 1 ? *(unsigned char *) zmq_msg_data (&part[1]) : -1;
    bool valid_header = nparts >= 1 && zmq_msg_size (&part[0]) == strlen (ORR_BUS_WORKER)
                        && memcmp (zmq_msg_data (&part[0]), ORR_BUS_WORKER, strlen (ORR_BUS_WORKER)) == 0;

    if (valid_header && cmd == ORR_BUS_W_REQUEST && nparts == WORKER_PARTS_MAX) {
        link->refusals = 0;
        zmq_msg_t *client = &part[2];
        /* Ids and principals are the text up to a NUL, if any (as C strings). An id over
         * the limit can be neither done nor pending: those ids came through the limit. */
        const char *rid = zmq_msg_data (&part[3]), *principal = zmq_msg_data (&part[4]);
        size_t rid_len = strnlen (rid, zmq_msg_size (&part[3]));
        size_t principal_len = strnlen (principal, zmq_msg_size (&part[4]));
        char request_id[ORR_BUS_REQUEST_ID_MAX + 1];
        done_t *done = NULL;
        if (rid_len <= ORR_BUS_REQUEST_ID_MAX) {
            memcpy (request_id, rid, rid_len);
            request_id[rid_len] = '\0';
            done = zhashx_lookup (self->done, request_id);
        }
        if (done)
            s_send_reply (link, client, request_id, &done->reply);
        else if (rid_len <= ORR_BUS_REQUEST_ID_MAX && principal_len <= ORR_BUS_PRINCIPAL_MAX) {
            pending_t *pending = zhashx_lookup (self->pending, request_id);
            if (!pending) {
                pending = orr_zalloc (sizeof *pending);
                memcpy (pending->request_id, request_id, rid_len + 1);
                pending->first.broker = index;
                zmq_msg_init (&pending->first.client);
                zmq_msg_move (&pending->first.client, client);
                zhashx_insert (self->pending, pending->request_id, pending);
                queued_t *q = orr_zalloc (sizeof *q);
                memcpy (q->request_id, request_id, rid_len + 1);
                memcpy (q->principal, principal, principal_len);
                q->principal[principal_len] = '\0';
                q->body = body;
                body = NULL;
                if (self->ready_tail)
                    self->ready_tail->next = q;
                else
                    self->ready = q;
                self->ready_tail = q;
                self->nready++;
            }
            else {
                route_t *r = orr_zalloc (sizeof *r), **tail = &pending->first.next;
                r->broker = index;
                zmq_msg_init (&r->client);
                zmq_msg_move (&r->client, client);
                while (*tail)
                    tail = &(*tail)->next;
                *tail = r;
            }
        }
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
    for (int i = 0; i < kept; i++)
        zmq_msg_close (&part[i]);
    zframe_destroy (&body);
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
            s_send (link, ORR_BUS_W_HEARTBEAT, NULL, 0);
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
    /* Keys point into the values, so the tables copy no key per request. */
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_free);
    zhashx_set_key_duplicator (self->pending, NULL);
    zhashx_set_key_destructor (self->pending, NULL);
    self->done = zhashx_new ();
    zhashx_set_destructor (self->done, s_done_free);
    zhashx_set_key_duplicator (self->done, NULL);
    zhashx_set_key_destructor (self->done, NULL);
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
        s_send (&self->links[i], ORR_BUS_W_DISCONNECT, NULL, 0);
        zsock_destroy (&self->links[i].sock);
    }
    queued_t *q;
    while ((q = s_ready_pop (self)))
        s_queued_free (&q);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->done);
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
    while (self->nready == 0) {
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
    if (self->nready)
        rc = (int) self->nready;
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
orr_bus_worker_recv (orr_bus_worker_t *self, orr_bus_request_t *req, int timeout_ms)
{
    memset (req, 0, sizeof *req);
    pthread_mutex_lock (&self->lock);
    queued_t *q = s_ready_pop (self);
    pthread_mutex_unlock (&self->lock);
    if (!q) {
        int rc = orr_bus_worker_poll (self, NULL, 0, timeout_ms);
        if (rc <= 0)
            return rc;
        pthread_mutex_lock (&self->lock);
        q = s_ready_pop (self);
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
    /* the reply, ready to be remembered, is built before taking the lock */
    done_t *d = orr_zalloc (sizeof *d);
    snprintf (d->request_id, sizeof d->request_id, "%s", req->request_id);
    zmq_msg_init_size (&d->reply, len);
    if (len)
        memcpy (zmq_msg_data (&d->reply), body, len);
    pthread_mutex_lock (&self->lock);
    pending_t *pending = zhashx_lookup (self->pending, req->request_id);
    int rc = -1;
    if (pending) {
        for (route_t *r = &pending->first; r; r = r->next)
            s_send_reply (&self->links[r->broker], &r->client, req->request_id, &d->reply);
        zhashx_delete (self->pending, req->request_id);
        s_done_remember (self, d);
        d = NULL;
        rc = 0;
    }
    pthread_mutex_unlock (&self->lock);
    if (d) {
        void *dp = d;
        s_done_free (&dp);
    }
    return rc;
}

void
orr_bus_request_clear (orr_bus_request_t *req)
{
    zframe_destroy (&req->body);
    memset (req, 0, sizeof *req);
}
