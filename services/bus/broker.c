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
 *
 *  The request path allocates once per request (docs/benchmarks.md, "Bus"): a ROUTER
 *  message is read into zmq_msg_t parts on the stack and checked in place, where czmq's
 *  zmsg would allocate an object per frame. A request_t holds the client's route and
 *  the request id in fixed arrays sized by the protocol's limits, shares one constant
 *  for the anonymous principal, keeps the body as received and sits on intrusive lists
 *  (its service is the queue or the worker that holds it). Replies and requests go out
 *  frame by frame; a request's body is sent as a refcounted zmq_msg_copy, so a held
 *  request can be sent again when its worker dies.
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
/* The longest valid ROUTER message: [route] [header] [cmd] and three more frames
 * (client REQUEST, worker REPLY). Any further parts are read and dropped, and the
 * message counts as malformed, as every longer message is. */
#define BROKER_PARTS_MAX 6
/* ZeroMQ routing ids are 1 to 255 bytes. */
#define BROKER_ROUTE_MAX 255

typedef struct worker_t worker_t;
typedef struct service_t service_t;
typedef struct request_t request_t;

struct request_t {
    request_t *prev, *next;   /* in its service's queue or its worker's held list */
    char *principal;          /* owned; NULL is ORR_BUS_ANONYMOUS, so CURVE off copies nothing */
    zmq_msg_t body;           /* as received; every send uses a refcounted copy */
    int64_t expires_ms;
    size_t client_len;
    unsigned char client[BROKER_ROUTE_MAX];   /* client's routing id */
    char request_id[ORR_BUS_REQUEST_ID_MAX + 1];
};

typedef struct {
    request_t *head, *tail;
    size_t size;
} request_list_t;

struct service_t {
    char *name;
    request_list_t requests;  /* oldest first; owned */
    zlist_t *waiting;         /* worker_t* with free credit, least recently used first */
    size_t workers;
};

struct worker_t {
    char *key;                /* hex of the routing id: key in broker->workers */
    unsigned char address[BROKER_ROUTE_MAX];   /* routing id */
    size_t address_len;
    service_t *service;       /* NULL until READY */
    char *principal;
    int credit;
    request_list_t held;      /* sent and not yet answered; owned */
    bool in_waiting;
    int64_t expires_ms;
};

struct broker_t {
    broker_opts_t opts;
    char *bind;
    zsock_t *router, *xsub, *xpub;
    void *router_h;           /* the ROUTER's libzmq socket, for zmq_send and zmq_msg_recv */
    zap_t *zap;
    zhashx_t *services;       /* name -> service_t (owned) */
    zhashx_t *workers;        /* key -> worker_t (owned) */
    int64_t heartbeat_at;
    broker_stats_t stats;
};

static void s_worker_delete (broker_t *self, worker_t *worker, bool send_disconnect);

/* ---------------------------------------------------------------- requests */

static void
s_list_append (request_list_t *list, request_t *req)
{
    req->prev = list->tail;
    req->next = NULL;
    if (list->tail)
        list->tail->next = req;
    else
        list->head = req;
    list->tail = req;
    list->size++;
}

static void
s_list_push (request_list_t *list, request_t *req)
{
    req->prev = NULL;
    req->next = list->head;
    if (list->head)
        list->head->prev = req;
    else
        list->tail = req;
    list->head = req;
    list->size++;
}

static void
s_list_remove (request_list_t *list, request_t *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        list->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        list->tail = req->prev;
    req->prev = req->next = NULL;
    list->size--;
}

static request_t *
s_list_pop (request_list_t *list)
{
    request_t *req = list->head;
    if (req)
        s_list_remove (list, req);
    return req;
}

static void
s_request_destroy (request_t **req_p)
{
    if (!req_p || !*req_p)
        return;
    request_t *req = *req_p;
    zmq_msg_close (&req->body);
    free (req->principal);
    free (req);
    *req_p = NULL;
}

static void
s_request_list_clear (request_list_t *list)
{
    request_t *req;
    while ((req = s_list_pop (list)))
        s_request_destroy (&req);
}

/* [client] ["ORC1"] [cmd] [service] [request-id], with the body still to come. */
static void
s_send_client_head (broker_t *self, const void *client, size_t client_len, int cmd, const char *service,
                    const char *request_id)
{
    unsigned char c = (unsigned char) cmd;
    zmq_send (self->router_h, client, client_len, ZMQ_SNDMORE);
    zmq_send (self->router_h, ORR_BUS_CLIENT, strlen (ORR_BUS_CLIENT), ZMQ_SNDMORE);
    zmq_send (self->router_h, &c, 1, ZMQ_SNDMORE);
    zmq_send (self->router_h, service, strlen (service), ZMQ_SNDMORE);
    zmq_send (self->router_h, request_id, strlen (request_id), ZMQ_SNDMORE);
}

static void
s_send_client (broker_t *self, const void *client, size_t client_len, int cmd, const char *service,
               const char *request_id, const void *body, size_t len)
{
    s_send_client_head (self, client, client_len, cmd, service, request_id);
    zmq_send (self->router_h, body, len, 0);
}

static void
s_send_client_error (broker_t *self, const void *client, size_t client_len, const char *service,
                     const char *request_id, const char *reason)
{
    self->stats.errors++;
    s_send_client (self, client, client_len, ORR_BUS_C_ERROR, service, request_id, reason, strlen (reason));
}

/* ---------------------------------------------------------------- services */

static void
s_service_destroy (service_t **svc_p)
{
    service_t *svc = *svc_p;
    if (!svc)
        return;
    s_request_list_clear (&svc->requests);
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
        svc->waiting = zlist_new ();
        zhashx_insert (self->services, name, svc);
    }
    return svc;
}

/* [route] ["ORW1"] [cmd], and for a REQUEST [client] [request-id] [principal] [body]. */
static void
s_worker_send (broker_t *self, const void *route, size_t route_len, int cmd, request_t *req)
{
    void *router = self->router_h;
    unsigned char c = (unsigned char) cmd;
    zmq_send (router, route, route_len, ZMQ_SNDMORE);
    zmq_send (router, ORR_BUS_WORKER, strlen (ORR_BUS_WORKER), ZMQ_SNDMORE);
    zmq_send (router, &c, 1, req ? ZMQ_SNDMORE : 0);
    if (req) {
        const char *principal = req->principal ? req->principal : ORR_BUS_ANONYMOUS;
        zmq_send (router, req->client, req->client_len, ZMQ_SNDMORE);
        zmq_send (router, req->request_id, strlen (req->request_id), ZMQ_SNDMORE);
        zmq_send (router, principal, strlen (principal), ZMQ_SNDMORE);
        /* the request keeps its body until answered: send a copy (refcounted, not copied) */
        zmq_msg_t body;
        zmq_msg_init (&body);
        zmq_msg_copy (&body, &req->body);
        zmq_msg_send (&body, router, 0);
        zmq_msg_close (&body);
    }
}

/* Drops expired requests, then gives queued requests to workers with free credit. */
static void
s_service_dispatch (broker_t *self, service_t *svc)
{
    int64_t now = orr_mono_ms ();
    request_t *req;
    while ((req = svc->requests.head) && req->expires_ms <= now) {
        s_list_remove (&svc->requests, req);
        char reason[160];
        snprintf (reason, sizeof reason, "no worker of service '%s' took the request within %d ms",
                  svc->name, self->opts.request_ttl_ms);
        s_send_client_error (self, req->client, req->client_len, svc->name, req->request_id, reason);
        s_request_destroy (&req);
    }
    while (svc->requests.size && zlist_size (svc->waiting)) {
        worker_t *worker = zlist_pop (svc->waiting);
        worker->in_waiting = false;
        req = s_list_pop (&svc->requests);
        s_worker_send (self, worker->address, worker->address_len, ORR_BUS_W_REQUEST, req);
        s_list_append (&worker->held, req);
        if ((int) worker->held.size < worker->credit) {
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
    s_request_list_clear (&worker->held);
    free (worker->principal);
    free (worker->key);
    free (worker);
    *item = NULL;
}

static void
s_worker_delete (broker_t *self, worker_t *worker, bool send_disconnect)
{
    if (send_disconnect)
        s_worker_send (self, worker->address, worker->address_len, ORR_BUS_W_DISCONNECT, NULL);
    service_t *svc = worker->service;
    if (svc) {
        if (worker->in_waiting)
            zlist_remove (svc->waiting, worker);
        svc->workers--;
        /* What it held goes back first in line: its clients have waited longest. */
        request_t *req;
        while ((req = worker->held.tail)) {
            s_list_remove (&worker->held, req);
            s_list_push (&svc->requests, req);
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
                  w->service ? w->service->name : "-", w->held.size);
        self->stats.workers_purged++;
        s_worker_delete (self, w, false);
    }
    zlist_destroy (&dead);
}

/* ---------------------------------------------------------------- validation */

static bool
s_printable (const void *data, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    return true;
}

static bool
s_part_printable (zmq_msg_t *part, size_t max)
{
    return s_printable (zmq_msg_data (part), zmq_msg_size (part), max);
}

static bool
s_mem_is (const void *data, size_t n, const char *s)
{
    return n == strlen (s) && memcmp (data, s, n) == 0;
}

static int
s_part_cmd (zmq_msg_t *part)
{
    return zmq_msg_size (part) == 1 ? *(unsigned char *) zmq_msg_data (part) : -1;
}

/* A part that passed s_part_printable (so no NUL, at most max bytes) as a C string in
 * out, which has room for max + 1. */
static void
s_part_str (zmq_msg_t *part, char *out)
{
    size_t n = zmq_msg_size (part);
    memcpy (out, zmq_msg_data (part), n);
    out[n] = '\0';
}

/* What the peer proved to be (CURVE), or NULL for ORR_BUS_ANONYMOUS. Points into the
 * part's metadata: copy it to keep it. */
static const char *
s_principal_of (broker_t *self, zmq_msg_t *part)
{
    const char *p = self->opts.curve ? zmq_msg_gets (part, "User-Id") : NULL;
    return p && *p ? p : NULL;
}

/* ---------------------------------------------------------------- clients */

/* part: [route] ["ORC1"] [cmd] [service] [request-id] [body]; the caller closes them. */
static void
s_client_request (broker_t *self, zmq_msg_t *part, int nparts)
{
    if (nparts != 6) {
        self->stats.malformed++;
        return;
    }
    zmq_msg_t *sender = &part[0], *cmd = &part[2], *service = &part[3], *rid = &part[4], *body = &part[5];
    if (s_part_cmd (cmd) != ORR_BUS_C_REQUEST || !s_part_printable (service, ORR_BUS_SERVICE_MAX)
        || !s_part_printable (rid, ORR_BUS_REQUEST_ID_MAX) || zmq_msg_size (sender) > BROKER_ROUTE_MAX) {
        self->stats.malformed++;
        return;
    }
    self->stats.requests++;
    char name[ORR_BUS_SERVICE_MAX + 1], request_id[ORR_BUS_REQUEST_ID_MAX + 1];
    s_part_str (service, name);
    s_part_str (rid, request_id);
    const void *client = zmq_msg_data (sender);
    size_t client_len = zmq_msg_size (sender);

    if (strcmp (name, "mmi.service") == 0) {
        /* Majordomo's service discovery: 200 if the named service has a worker. */
        char *wanted = orr_strndup (zmq_msg_data (body), zmq_msg_size (body));
        service_t *svc = zhashx_lookup (self->services, wanted);
        const char *answer = svc && svc->workers ? "200" : "404";
        s_send_client (self, client, client_len, ORR_BUS_C_REPLY, name, request_id, answer, 3);
        free (wanted);
        return;
    }
    service_t *svc = zhashx_lookup (self->services, name);
    if (!svc && zhashx_size (self->services) >= BROKER_SERVICES_MAX) {
        s_send_client_error (self, client, client_len, name, request_id, "too many services known to the broker");
        return;
    }
    if (!svc)
        svc = s_service_require (self, name);
    if (svc->requests.size >= self->opts.queue_max) {
        char reason[160];
        snprintf (reason, sizeof reason, "service '%s' is busy: %zu requests queued", svc->name, self->opts.queue_max);
        s_send_client_error (self, client, client_len, name, request_id, reason);
        return;
    }
    request_t *req = orr_zalloc (sizeof *req);
    const char *principal = s_principal_of (self, cmd);
    req->principal = principal ? orr_strdup (principal) : NULL;
    zmq_msg_init (&req->body);
    zmq_msg_move (&req->body, body);
    req->expires_ms = orr_mono_ms () + self->opts.request_ttl_ms;
    req->client_len = client_len;
    memcpy (req->client, client, client_len);
    memcpy (req->request_id, request_id, sizeof request_id);
    s_list_append (&svc->requests, req);
    s_service_dispatch (self, svc);
}

/* ---------------------------------------------------------------- workers' messages */

/* part: [route] ["ORW1"] [cmd] ...; the caller closes them. */
static void
s_worker_message (broker_t *self, zmq_msg_t *part, int nparts)
{
    zmq_msg_t *sender = &part[0];
    zmq_msg_t *cmdf = nparts > 2 ? &part[2] : NULL;   /* its metadata names the principal */
    int cmd = cmdf ? s_part_cmd (cmdf) : -1;
    int nrest = nparts - 2;                           /* the command frame and what follows */
    const unsigned char *route = zmq_msg_data (sender);
    size_t route_len = zmq_msg_size (sender);
    if (route_len == 0 || route_len > BROKER_ROUTE_MAX) {
        self->stats.malformed++;
        return;
    }
    char key[2 * BROKER_ROUTE_MAX + 1];
    orr_hex_encode (route, route_len, key);
    worker_t *worker = zhashx_lookup (self->workers, key);

    if (cmd == ORR_BUS_W_READY && (nrest == 2 || nrest == 3)) {
        zmq_msg_t *svcf = &part[3];
        zmq_msg_t *creditf = nrest == 3 ? &part[4] : NULL;
        long credit = 1;
        if (creditf) {
            char *s = orr_strndup (zmq_msg_data (creditf), zmq_msg_size (creditf));
            if (orr_parse_long (s, &credit) != 0 || credit < 1)
                credit = -1;
            free (s);
        }
        if (!s_part_printable (svcf, ORR_BUS_SERVICE_MAX) || credit < 1 || worker) {
            /* malformed, or a second READY: the peer is confused; make it start over */
            self->stats.malformed++;
            if (worker)
                s_worker_delete (self, worker, true);
            return;
        }
        const char *proved = s_principal_of (self, cmdf);
        char *principal = orr_strdup (proved ? proved : ORR_BUS_ANONYMOUS);
        if (self->opts.curve && strncmp (principal, "service:", 8) != 0) {
            orr_warn ("refused worker registration from principal '%s' (only service:* may serve)", principal);
            free (principal);
            s_worker_send (self, route, route_len, ORR_BUS_W_DISCONNECT, NULL);
            return;
        }
        worker = orr_zalloc (sizeof *worker);
        worker->key = orr_strdup (key);
        memcpy (worker->address, route, route_len);
        worker->address_len = route_len;
        worker->principal = principal;
        worker->credit = credit > BROKER_CREDIT_MAX ? BROKER_CREDIT_MAX : (int) credit;
        worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
        char name[ORR_BUS_SERVICE_MAX + 1];
        s_part_str (svcf, name);
        worker->service = s_service_require (self, name);
        zhashx_insert (self->workers, key, worker);
        worker->service->workers++;
        zlist_append (worker->service->waiting, worker);
        worker->in_waiting = true;
        orr_info ("worker %s registered for service %s (credit %d, principal %s)", key, worker->service->name,
                  worker->credit, worker->principal);
        s_service_dispatch (self, worker->service);
        return;
    }
    if (cmd == ORR_BUS_W_REPLY && nrest == 4) {
        zmq_msg_t *client = &part[3], *rid = &part[4], *body = &part[5];
        size_t client_len = zmq_msg_size (client);
        if (client_len == 0 || client_len > BROKER_ROUTE_MAX || !s_part_printable (rid, ORR_BUS_REQUEST_ID_MAX)) {
            self->stats.malformed++;
            return;
        }
        char request_id[ORR_BUS_REQUEST_ID_MAX + 1];
        s_part_str (rid, request_id);
        const char *service_name = "";
        if (worker) {
            worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
            for (request_t *r = worker->held.head; r; r = r->next)
                if (strcmp (r->request_id, request_id) == 0 && r->client_len == client_len
                    && memcmp (r->client, zmq_msg_data (client), client_len) == 0) {
                    s_list_remove (&worker->held, r);
                    s_request_destroy (&r);
                    break;
                }
            service_name = worker->service->name;
        }
        /* The reply is valid even from a worker we no longer know (we restarted, or
         * purged it too early): deliver it; the client matches it by id. */
        self->stats.replies++;
        s_send_client_head (self, zmq_msg_data (client), client_len, ORR_BUS_C_REPLY, service_name, request_id);
        zmq_msg_send (body, self->router_h, 0);   /* hands the body over as received */
        if (!worker)
            s_worker_send (self, route, route_len, ORR_BUS_W_DISCONNECT, NULL);
        else {
            if (!worker->in_waiting && (int) worker->held.size < worker->credit) {
                zlist_append (worker->service->waiting, worker);
                worker->in_waiting = true;
            }
            s_service_dispatch (self, worker->service);
        }
        return;
    }
    if (cmd == ORR_BUS_W_HEARTBEAT && nrest == 1) {
        if (worker)
            worker->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
        else {
            /* We do not know it (we restarted): tell it to register again. */
            s_worker_send (self, route, route_len, ORR_BUS_W_DISCONNECT, NULL);
        }
        return;
    }
    if (cmd == ORR_BUS_W_DISCONNECT && nrest == 1) {
        if (worker)
            s_worker_delete (self, worker, false);
        return;
    }
    self->stats.malformed++;
}

/* One message from the ROUTER; false when there was none. */
static bool
s_router_input (broker_t *self)
{
    zmq_msg_t part[BROKER_PARTS_MAX];
    int nparts = 0;
    bool more = true;
    while (more) {
        zmq_msg_t extra;
        zmq_msg_t *m = nparts < BROKER_PARTS_MAX ? &part[nparts] : &extra;
        zmq_msg_init (m);
        if (zmq_msg_recv (m, self->router_h, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (m);
            if (nparts == 0)
                return false;
            break;   /* cannot happen: the parts of a message arrive together */
        }
        more = zmq_msg_more (m);
        if (m == &extra)
            zmq_msg_close (m);
        nparts++;
    }
    int kept = nparts < BROKER_PARTS_MAX ? nparts : BROKER_PARTS_MAX;
    if (nparts < 2 || nparts > BROKER_PARTS_MAX)
        self->stats.malformed++;
    else if (s_mem_is (zmq_msg_data (&part[1]), zmq_msg_size (&part[1]), ORR_BUS_CLIENT))
        s_client_request (self, part, nparts);
    else if (s_mem_is (zmq_msg_data (&part[1]), zmq_msg_size (&part[1]), ORR_BUS_WORKER))
        s_worker_message (self, part, nparts);
    else
        self->stats.malformed++;
    for (int i = 0; i < kept; i++)
        zmq_msg_close (&part[i]);
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
    if (zmsg_size (msg) != 2 || !s_printable (zframe_data (topic), zframe_size (topic), ORR_BUS_TOPIC_MAX)
        || s_mem_is (zframe_data (topic), zframe_size (topic), ORR_BUS_TICK_TOPIC)) {
        self->stats.events_refused++;
        zmsg_destroy (&msg);
        return true;
    }
    const char *proved = self->opts.curve ? zframe_meta (topic, "User-Id") : NULL;
    const char *principal = proved && *proved ? proved : ORR_BUS_ANONYMOUS;
    zframe_t *body = zmsg_last (msg);
    zmsg_t *out = zmsg_new ();
    zmsg_append (out, &(zframe_t *) { zframe_dup (topic) });
    zmsg_addstr (out, principal);
    zmsg_append (out, &(zframe_t *) { zframe_dup (body) });
    if (zmsg_send (&out, self->xpub) == 0)
        self->stats.events_out++;
    zmsg_destroy (&out);
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
        s_worker_send (self, w->address, w->address_len, ORR_BUS_W_HEARTBEAT, NULL);
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
    self->router_h = zsock_resolve (self->router);
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
                if (svc->workers == 0 && svc->requests.size == 0)
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
