/*  orr_bus_worker: the worker side of the bus protocol (lib/orr_bus.h), as a czmq actor.
 *
 *  Why an actor: heartbeats must flow while the service's handler runs (an LDAP bind may
 *  take seconds), so the sockets live in a thread of their own that never runs service
 *  code. The caller's thread talks to it over the actor pipe:
 *
 *    actor -> caller: [request-id] [principal] [body]
 *    caller -> actor: [request-id] [body]
 *
 *  Per broker the actor keeps a DEALER, the time it last heard from the broker and when
 *  to heartbeat next. A broker silent for liveness x heartbeat, or one that sends
 *  DISCONNECT (it restarted and does not know us), gets a fresh socket and a new READY.
 *
 *  Repeated ids: `pending` maps each id being worked on to every route it arrived by (the
 *  same id can come from two brokers when a client failed over); `done` keeps recent
 *  replies so a late repeat is answered at once. Both are bounded.
 */
#include "orr_bus_worker.h"
#include "orr_log.h"
#include "orr_util.h"

#include <string.h>

#define WORKER_DONE_MAX 4096          /* cached replies kept for repeated ids */
#define WORKER_DONE_TTL_MS 60000

typedef struct {
    zsock_t *sock;
    char endpoint[256];
    int64_t expires_ms;       /* broker counts as gone after this */
    int64_t heartbeat_at;
    int64_t reconnect_at;     /* 0, or when to register again after a DISCONNECT */
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
    orr_bus_opts_t opts;
    char *service;
    int credit;
    zsock_t *pipe;
    broker_link_t links[ORR_BUS_MAX_BROKERS];
    size_t nlinks;
    zhashx_t *pending;        /* request id -> pending_t */
    zhashx_t *done;           /* request id -> done_t */
    zlist_t *done_order;      /* request ids (owned strings), oldest first */
    bool terminated;
} worker_actor_t;

struct orr_bus_worker_t {
    zactor_t *actor;
    worker_actor_t *state;    /* shared with the actor thread until zactor_destroy joins it */
};

static void
s_state_free (worker_actor_t **state_p)
{
    worker_actor_t *state = *state_p;
    if (!state)
        return;
    orr_bus_opts_clear (&state->opts);
    free (state->service);
    free (state);
    *state_p = NULL;
}

/* ---------------------------------------------------------------- actor helpers */

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
s_send (broker_link_t *link, int cmd, zframe_t *client, const char *request_id, zframe_t *body, const char *service,
        int credit)
{
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
s_link_connect (worker_actor_t *self, broker_link_t *link)
{
    zsock_destroy (&link->sock);
    link->reconnect_at = 0;
    link->sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (link->sock, 0);
    zsock_set_sndhwm (link->sock, 100000);
    zsock_set_rcvhwm (link->sock, 100000);
    if (orr_bus_apply_curve (link->sock, &self->opts) != 0 || zsock_connect (link->sock, "%s", link->endpoint) != 0)
        orr_error ("worker cannot connect to %s", link->endpoint);
    int64_t now = orr_mono_ms ();
    link->expires_ms = now + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
    link->heartbeat_at = now + self->opts.heartbeat_ms;
    s_send (link, ORR_BUS_W_READY, NULL, NULL, NULL, self->service, self->credit);
}

static void
s_done_remember (worker_actor_t *self, const char *request_id, zframe_t *reply)
{
    int64_t now = orr_mono_ms ();
    /* forget the oldest entries beyond the bound or the age limit */
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

/* ---------------------------------------------------------------- actor inputs */

static void
s_broker_input (worker_actor_t *self, int index)
{
    broker_link_t *link = &self->links[index];
    zmsg_t *msg = zmsg_recv (link->sock);
    if (!msg)
        return;
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
        else if (pending || strlen (request_id) > ORR_BUS_REQUEST_ID_MAX) {
            if (pending) {
                route_t *r = orr_zalloc (sizeof *r);
                r->broker = index;
                r->client = client;
                client = NULL;
                zlist_append (pending->routes, r);
            }
        }
        else {
            pending = orr_zalloc (sizeof *pending);
            pending->routes = zlist_new ();
            route_t *r = orr_zalloc (sizeof *r);
            r->broker = index;
            r->client = client;
            client = NULL;
            zlist_append (pending->routes, r);
            zhashx_insert (self->pending, request_id, pending);
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, request_id);
            zmsg_addstr (out, principal);
            zmsg_append (out, &body);
            zmsg_send (&out, self->pipe);
        }
        zframe_destroy (&client);
        zframe_destroy (&body);
        free (request_id);
        free (principal);
    }
    else if (valid_header && cmd == ORR_BUS_W_DISCONNECT) {
        /* A broker that restarted says this once; one that refuses us (say, a principal
         * that may not serve) says it every time. Back off so a refusal is not a storm:
         * one heartbeat, doubling up to 30 s, reset by the first request served. */
        int delay = self->opts.heartbeat_ms << (link->refusals < 6 ? link->refusals : 6);
        if (delay > 30000)
            delay = 30000;
        link->refusals++;
        link->reconnect_at = orr_mono_ms () + delay;
        zsock_destroy (&link->sock);
        if (link->refusals == 1 || link->refusals % 10 == 0)
            orr_warn ("broker %s asked us to register again (%d in a row); retrying in %d ms", link->endpoint,
                      link->refusals, delay);
    }
    /* HEARTBEAT: liveness already refreshed; anything else is ignored */
    zframe_destroy (&header);
    zframe_destroy (&cmdf);
    zmsg_destroy (&msg);
}

static void
s_pipe_input (worker_actor_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (msg);
    if (command && strcmp (command, "$TERM") == 0)
        self->terminated = true;
    else if (command && strcmp (command, "REPLY") == 0 && zmsg_size (msg) == 2) {
        char *request_id = zmsg_popstr (msg);
        zframe_t *body = zmsg_pop (msg);
        pending_t *pending = zhashx_lookup (self->pending, request_id);
        if (pending) {
            for (route_t *r = zlist_first (pending->routes); r; r = zlist_next (pending->routes))
                if (self->links[r->broker].sock)
                    s_send (&self->links[r->broker], ORR_BUS_W_REPLY, r->client, request_id, body, NULL, 0);
            zhashx_delete (self->pending, request_id);
            s_done_remember (self, request_id, body);
        }
        zframe_destroy (&body);
        free (request_id);
    }
    free (command);
    zmsg_destroy (&msg);
}

static void
s_worker_actor (zsock_t *pipe, void *args)
{
    worker_actor_t *self = args;
    self->pipe = pipe;
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_free);
    self->done = zhashx_new ();
    zhashx_set_destructor (self->done, s_done_free);
    self->done_order = zlist_new ();
    for (size_t i = 0; i < self->nlinks; i++)
        s_link_connect (self, &self->links[i]);
    zsock_signal (pipe, 0);

    zmq_pollitem_t items[ORR_BUS_MAX_BROKERS + 1];
    while (!self->terminated) {
        items[0] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        int64_t now = orr_mono_ms (), next = now + self->opts.heartbeat_ms;
        int nitems = 1;
        int which[ORR_BUS_MAX_BROKERS];
        for (size_t i = 0; i < self->nlinks; i++) {
            broker_link_t *link = &self->links[i];
            if (!link->sock) {
                if (link->reconnect_at < next)
                    next = link->reconnect_at;
                continue;
            }
            which[nitems - 1] = (int) i;
            items[nitems++] = (zmq_pollitem_t) { zsock_resolve (link->sock), 0, ZMQ_POLLIN, 0 };
            if (link->heartbeat_at < next)
                next = link->heartbeat_at;
        }
        (void) which;
        int rc = zmq_poll (items, nitems, next > now ? (long) (next - now) : 0);
        if (rc < 0 && zmq_errno () != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_pipe_input (self);
        for (size_t i = 0; i < self->nlinks; i++)
            for (int n = 0; n < 256 && self->links[i].sock && (zsock_events (self->links[i].sock) & ZMQ_POLLIN); n++)
                s_broker_input (self, (int) i);
        now = orr_mono_ms ();
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
        }
    }
    for (size_t i = 0; i < self->nlinks; i++) {
        if (self->links[i].sock)
            s_send (&self->links[i], ORR_BUS_W_DISCONNECT, NULL, NULL, NULL, NULL, 0);
        zsock_destroy (&self->links[i].sock);
    }
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->done);
    char *id;
    while ((id = zlist_pop (self->done_order)))
        free (id);
    zlist_destroy (&self->done_order);
}

/* ---------------------------------------------------------------- public API */

static orr_bus_opts_t
s_opts_copy (const orr_bus_opts_t *in)
{
    orr_bus_opts_t out = *in;
    out.brokers = NULL;
    out.curve_server_public = in->curve_server_public ? orr_strdup (in->curve_server_public) : NULL;
    out.curve_cert = in->curve_cert ? orr_strdup (in->curve_cert) : NULL;
    return out;
}

orr_bus_worker_t *
orr_bus_worker_new (const orr_bus_opts_t *opts, const char *service, int credit)
{
    if (!service || !*service || strlen (service) > ORR_BUS_SERVICE_MAX || credit < 1 || opts->broker_count == 0)
        return NULL;
    worker_actor_t *state = orr_zalloc (sizeof *state);
    state->opts = s_opts_copy (opts);
    state->service = orr_strdup (service);
    state->credit = credit;
    for (size_t i = 0; i < opts->broker_count && i < ORR_BUS_MAX_BROKERS; i++) {
        if (orr_bus_endpoint (opts->brokers[i], 0, state->links[i].endpoint, sizeof state->links[i].endpoint) != 0) {
            s_state_free (&state);
            return NULL;
        }
        state->nlinks++;
    }
    orr_bus_worker_t *self = orr_zalloc (sizeof *self);
    self->state = state;
    self->actor = zactor_new (s_worker_actor, state);
    return self;
}

void
orr_bus_worker_destroy (orr_bus_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_bus_worker_t *self = *self_p;
    zactor_destroy (&self->actor);      /* joins the thread: the state is ours again */
    s_state_free (&self->state);
    free (self);
    *self_p = NULL;
}

zsock_t *
orr_bus_worker_sock (orr_bus_worker_t *self)
{
    return zactor_sock (self->actor);
}

int
orr_bus_worker_recv (orr_bus_worker_t *self, orr_bus_request_t *req, int timeout_ms)
{
    memset (req, 0, sizeof *req);
    zmq_pollitem_t item = { zsock_resolve (zactor_sock (self->actor)), 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (&item, 1, timeout_ms);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    zmsg_t *msg = zmsg_recv (self->actor);
    if (!msg)
        return -1;
    char *request_id = zmsg_popstr (msg);
    char *principal = zmsg_popstr (msg);
    snprintf (req->request_id, sizeof req->request_id, "%s", request_id ? request_id : "");
    snprintf (req->principal, sizeof req->principal, "%s", principal ? principal : "");
    req->body = zmsg_pop (msg);
    if (!req->body)
        req->body = zframe_new_empty ();
    free (request_id);
    free (principal);
    zmsg_destroy (&msg);
    return 1;
}

int
orr_bus_worker_reply (orr_bus_worker_t *self, const orr_bus_request_t *req, const void *body, size_t len)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "REPLY");
    zmsg_addstr (msg, req->request_id);
    zmsg_addmem (msg, body, len);
    return zmsg_send (&msg, self->actor);
}

void
orr_bus_request_clear (orr_bus_request_t *req)
{
    zframe_destroy (&req->body);
    memset (req, 0, sizeof *req);
}
