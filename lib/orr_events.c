/*  orr_events: the publish and subscribe ends of the bus's event forwarder.
 *
 *  Publisher: one XPUB connected to every broker's events-in port. XPUB (rather than PUB)
 *  lets us read the brokers' subscriptions, so orr_events_pub_wait_ready can tell when
 *  every broker listens (the "slow joiner" problem); VERBOSE makes each broker's
 *  subscription visible, not only the first.
 *
 *  Subscriber: one SUB connected to one broker's events-out port. Connecting to all would
 *  deliver every event once per broker. Each broker publishes bus.tick every heartbeat;
 *  when none arrived for liveness x heartbeat the subscriber reconnects to the next
 *  broker. It always subscribes to the tick, whatever prefixes the caller asked for.
 */
#include "orr_events.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <string.h>

struct orr_events_pub_t {
    zsock_t *sock;
    size_t nbrokers;
    size_t subscribed;        /* subscriptions seen so far */
};

struct orr_events_sub_t {
    orr_bus_opts_t opts;      /* own copy */
    char **prefixes;          /* own copy, NULL-terminated */
    zsock_t *sock;
    size_t current;           /* broker index listened to */
    int64_t expires_ms;       /* no tick by then: fail over */
    bool ticked;
};

/* ---------------------------------------------------------------- publisher */

orr_events_pub_t *
orr_events_pub_new (const orr_bus_opts_t *opts)
{
    orr_bus_init ();
    orr_events_pub_t *self = orr_zalloc (sizeof *self);
    self->sock = zsock_new (ZMQ_XPUB);
    zsock_set_linger (self->sock, 200);
    zsock_set_sndhwm (self->sock, 100000);
    zsock_set_xpub_verbose (self->sock, 1);
    if (orr_bus_apply_curve (self->sock, opts) != 0)
        goto fail;
    for (size_t i = 0; i < opts->broker_count; i++) {
        char ep[256];
        if (orr_bus_endpoint (opts->brokers[i], 1, ep, sizeof ep) != 0 || zsock_connect (self->sock, "%s", ep) != 0)
            goto fail;
        self->nbrokers++;
    }
    return self;
fail:
    orr_events_pub_destroy (&self);
    return NULL;
}

void
orr_events_pub_destroy (orr_events_pub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy (&(*self_p)->sock);
    free (*self_p);
    *self_p = NULL;
}

static void
s_pub_drain (orr_events_pub_t *self, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return;
    while (zsock_events (self->sock) & ZMQ_POLLIN) {
        zframe_t *f = zframe_recv (self->sock);
        if (f && zframe_size (f) >= 1 && zframe_data (f)[0] == 1)
            self->subscribed++;
        zframe_destroy (&f);
    }
}

int
orr_events_pub_wait_ready (orr_events_pub_t *self, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    while (self->subscribed < self->nbrokers) {
        int64_t left = deadline - orr_mono_ms ();
        if (left <= 0 || orr_signal_stop_requested ())
            return -1;
        s_pub_drain (self, (int) left);
    }
    return 0;
}

int
orr_events_publish (orr_events_pub_t *self, const char *topic, const void *body, size_t len)
{
    size_t n = topic ? strlen (topic) : 0;
    if (n == 0 || n > ORR_BUS_TOPIC_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) topic[i] <= 0x20 || (unsigned char) topic[i] >= 0x7f)
            return -1;
    /* keep the subscription queue from growing: broker reconnects resubscribe */
    if (zsock_events (self->sock) & ZMQ_POLLIN)
        s_pub_drain (self, 0);
    void *h = zsock_resolve (self->sock);
    if (zmq_send (h, topic, n, ZMQ_SNDMORE) < 0 || zmq_send (h, body, len, 0) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- subscriber */

static void
s_sub_connect (orr_events_sub_t *self)
{
    zsock_destroy (&self->sock);
    self->sock = zsock_new (ZMQ_SUB);
    zsock_set_linger (self->sock, 0);
    zsock_set_rcvhwm (self->sock, 200000);
    orr_bus_apply_curve (self->sock, &self->opts);
    zsock_set_subscribe (self->sock, ORR_BUS_TICK_TOPIC);
    if (!self->prefixes[0])
        zsock_set_subscribe (self->sock, "");
    for (char **p = self->prefixes; *p; p++)
        zsock_set_subscribe (self->sock, *p);
    char ep[256];
    if (orr_bus_endpoint (self->opts.brokers[self->current], 2, ep, sizeof ep) == 0)
        zsock_connect (self->sock, "%s", ep);
    self->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
    self->ticked = false;
}

orr_events_sub_t *
orr_events_sub_new (const orr_bus_opts_t *opts, const char *const *prefixes)
{
    orr_bus_init ();
    if (opts->broker_count == 0)
        return NULL;
    orr_events_sub_t *self = orr_zalloc (sizeof *self);
    self->opts = *opts;
    self->opts.brokers = orr_zalloc ((opts->broker_count + 1) * sizeof (char *));
    for (size_t i = 0; i < opts->broker_count; i++)
        self->opts.brokers[i] = orr_strdup (opts->brokers[i]);
    self->opts.curve_server_public = opts->curve_server_public ? orr_strdup (opts->curve_server_public) : NULL;
    self->opts.curve_cert = opts->curve_cert ? orr_strdup (opts->curve_cert) : NULL;
    size_t n = 0, kept = 0;
    while (prefixes && prefixes[n])
        n++;
    self->prefixes = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        /* A prefix longer than any topic matches nothing; refusing it also keeps libzmq
         * 4.3.4 from mis-encoding 246-255-byte subscriptions (zeromq/libzmq#4367). */
        if (strlen (prefixes[i]) > ORR_BUS_TOPIC_MAX) {
            orr_warn ("ignored a subscription prefix of %zu bytes (topics have at most %d)", strlen (prefixes[i]),
                      ORR_BUS_TOPIC_MAX);
            continue;
        }
        self->prefixes[kept++] = orr_strdup (prefixes[i]);
    }
    if (n > 0 && kept == 0) {
        orr_strv_free (&self->prefixes);
        orr_bus_opts_clear (&self->opts);
        free (self);
        return NULL;
    }
    char hex[9];
    orr_random_hex (hex, 4);
    self->current = (size_t) strtoul (hex, NULL, 16) % opts->broker_count;
    s_sub_connect (self);
    return self;
}

void
orr_events_sub_destroy (orr_events_sub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_events_sub_t *self = *self_p;
    zsock_destroy (&self->sock);
    orr_bus_opts_clear (&self->opts);
    orr_strv_free (&self->prefixes);
    free (self);
    *self_p = NULL;
}

zsock_t *
orr_events_sub_sock (orr_events_sub_t *self)
{
    return self->sock;
}

void
orr_events_sub_maintain (orr_events_sub_t *self)
{
    if (orr_mono_ms () < self->expires_ms)
        return;
    /* Unread input means the caller was busy, not that the broker went quiet: reading it
     * will refresh the deadline. */
    if (zsock_events (self->sock) & ZMQ_POLLIN)
        return;
    size_t old = self->current;
    self->current = (self->current + 1) % self->opts.broker_count;
    if (self->opts.broker_count > 1 || self->ticked)
        orr_warn ("no tick from broker %s; listening to %s", self->opts.brokers[old], self->opts.brokers[self->current]);
    s_sub_connect (self);
}

void
orr_event_clear (orr_event_t *ev)
{
    zframe_destroy (&ev->body);
    memset (ev, 0, sizeof *ev);
}

/* 1 = an event for the caller, 0 = a tick or junk (consumed). */
static int
s_sub_read (orr_events_sub_t *self, orr_event_t *ev)
{
    zmsg_t *msg = zmsg_recv (self->sock);
    if (!msg)
        return 0;
    int got = 0;
    if (zmsg_size (msg) == 3) {
        char *topic = zmsg_popstr (msg);
        char *principal = zmsg_popstr (msg);
        if (strcmp (topic, ORR_BUS_TICK_TOPIC) == 0) {
            self->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
            self->ticked = true;
        }
        else if (strlen (topic) <= ORR_BUS_TOPIC_MAX && strlen (principal) <= ORR_BUS_PRINCIPAL_MAX) {
            /* any event proves the broker alive, too */
            self->expires_ms = orr_mono_ms () + (int64_t) self->opts.heartbeat_ms * self->opts.liveness;
            bool wanted = !self->prefixes[0];
            for (char **p = self->prefixes; *p && !wanted; p++)
                wanted = strncmp (topic, *p, strlen (*p)) == 0;
            if (wanted) {
                snprintf (ev->topic, sizeof ev->topic, "%s", topic);
                snprintf (ev->principal, sizeof ev->principal, "%s", principal);
                ev->body = zmsg_pop (msg);
                got = 1;
            }
        }
        free (topic);
        free (principal);
    }
    zmsg_destroy (&msg);
    return got;
}

int
orr_events_sub_wait_ready (orr_events_sub_t *self, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    while (!self->ticked) {
        int64_t left = deadline - orr_mono_ms ();
        if (left <= 0 || orr_signal_stop_requested ())
            return -1;
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        int slice = left < self->opts.heartbeat_ms ? (int) left : self->opts.heartbeat_ms;
        if (zmq_poll (&item, 1, slice) > 0) {
            orr_event_t ev = { 0 };
            /* events arriving before the first tick are dropped: the caller isn't ready */
            if (s_sub_read (self, &ev))
                orr_event_clear (&ev);
        }
        orr_events_sub_maintain (self);
    }
    return 0;
}

int
orr_events_recv (orr_events_sub_t *self, orr_event_t *ev, int timeout_ms)
{
    memset (ev, 0, sizeof *ev);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : orr_mono_ms () + timeout_ms;
    while (1) {
        if (orr_signal_stop_requested ())
            return -1;
        orr_events_sub_maintain (self);
        while (zsock_events (self->sock) & ZMQ_POLLIN)
            if (s_sub_read (self, ev))
                return 1;
        int64_t left = deadline - orr_mono_ms ();
        if (left <= 0)
            return 0;
        int slice = left < self->opts.heartbeat_ms ? (int) left : self->opts.heartbeat_ms;
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, slice) < 0 && orr_signal_stop_requested ())
            return -1;
    }
}
