/*  orr_bus_client: the client side of the bus protocol (lib/orr_bus.h).
 *
 *  One DEALER per broker, so the client knows which broker it asked and can fail over.
 *  Each client starts at a random broker so many clients spread over the replicas. A
 *  reply is accepted from any broker as long as its request id is the one we wait for;
 *  late replies to earlier requests are dropped. ZMQ_IMMEDIATE keeps messages off links
 *  that are not connected, so a dead broker costs an immediate skip, not a timeout.
 */
#include "orr_bus_client.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <czmq.h>
#include <string.h>

struct orr_bus_client_t {
    zsock_t *socks[ORR_BUS_MAX_BROKERS];
    size_t nsocks;
    size_t next;              /* broker to try first */
    int timeout_ms;
    int retries;
};

void
orr_bus_new_request_id (char *out)
{
    orr_random_hex (out, 12);
}

orr_bus_client_t *
orr_bus_client_new (const orr_bus_opts_t *opts)
{
    orr_bus_init ();
    if (opts->broker_count == 0)
        return NULL;
    orr_bus_client_t *self = orr_zalloc (sizeof *self);
    self->timeout_ms = opts->timeout_ms;
    self->retries = opts->retries;
    for (size_t i = 0; i < opts->broker_count && i < ORR_BUS_MAX_BROKERS; i++) {
        char ep[256];
        if (orr_bus_endpoint (opts->brokers[i], 0, ep, sizeof ep) != 0)
            goto fail;
        zsock_t *s = zsock_new (ZMQ_DEALER);
        zsock_set_linger (s, 0);
        zsock_set_immediate (s, 1);
        self->socks[self->nsocks++] = s;
        if (orr_bus_apply_curve (s, opts) != 0 || zsock_connect (s, "%s", ep) != 0)
            goto fail;
    }
    char hex[9];
    orr_random_hex (hex, 4);
    self->next = (size_t) strtoul (hex, NULL, 16) % self->nsocks;
    return self;
fail:
    orr_bus_client_destroy (&self);
    return NULL;
}

void
orr_bus_client_destroy (orr_bus_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_bus_client_t *self = *self_p;
    for (size_t i = 0; i < self->nsocks; i++)
        zsock_destroy (&self->socks[i]);
    free (self);
    *self_p = NULL;
}

static int
s_send_request (zsock_t *s, const char *service, const char *request_id, const void *body, size_t len)
{
    void *h = zsock_resolve (s);
    unsigned char cmd = ORR_BUS_C_REQUEST;
    if (zmq_send (h, ORR_BUS_CLIENT, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 4)
        return -1;   /* not connected (ZMQ_IMMEDIATE): nothing was queued */
    zmq_send (h, &cmd, 1, ZMQ_SNDMORE);
    zmq_send (h, service, strlen (service), ZMQ_SNDMORE);
    zmq_send (h, request_id, strlen (request_id), ZMQ_SNDMORE);
    zmq_send (h, body, len, 0);
    return 0;
}

/* Reads one message; returns 1 if it answers request_id (filling reply or err), 0 if it
 * is stale or malformed, -1 if there was none. Frames go into zmq_msg_t on the stack:
 * this runs once per request, and czmq's zmsg would allocate a frame object per part. */
static int
s_read_reply (zsock_t *s, const char *request_id, orr_bus_status_t *status, char **reply, size_t *reply_len,
              char *err, size_t errlen)
{
    void *h = zsock_resolve (s);
    zmq_msg_t part[5];
    int nparts = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        if (zmq_msg_recv (&m, h, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&m);
            if (nparts == 0)
                return -1;
            break;   /* cannot happen: parts of a message arrive together */
        }
        more = zmq_msg_more (&m);
        if (nparts < 5)
            part[nparts] = m;      /* zmq_msg_t may be moved by value once received */
        else
            zmq_msg_close (&m);
        nparts++;
    }
    int matched = 0;
    if (nparts == 5) {
        size_t idlen = strlen (request_id);
        const unsigned char *cmd = zmq_msg_data (&part[1]);
        bool header_ok = zmq_msg_size (&part[0]) == 4 && memcmp (zmq_msg_data (&part[0]), ORR_BUS_CLIENT, 4) == 0;
        bool id_ok = zmq_msg_size (&part[3]) == idlen && memcmp (zmq_msg_data (&part[3]), request_id, idlen) == 0;
        if (header_ok && id_ok && zmq_msg_size (&part[1]) == 1) {
            matched = 1;
            size_t n = zmq_msg_size (&part[4]);
            if (cmd[0] == ORR_BUS_C_REPLY) {
                *status = ORR_BUS_OK;
                *reply_len = n;
                *reply = orr_zalloc (n + 1);
                memcpy (*reply, zmq_msg_data (&part[4]), n);
            }
            else {
                *status = ORR_BUS_REFUSED;
                snprintf (err, errlen, "%.*s", (int) n, (char *) zmq_msg_data (&part[4]));
            }
        }
    }
    for (int i = 0; i < nparts && i < 5; i++)
        zmq_msg_close (&part[i]);
    return matched;
}

orr_bus_status_t
orr_bus_client_request (orr_bus_client_t *self, const char *service, const char *request_id, const void *body,
                        size_t len, char **reply, size_t *reply_len, char *err, size_t errlen)
{
    char fresh_id[32];
    if (!request_id) {
        orr_bus_new_request_id (fresh_id);
        request_id = fresh_id;
    }
    *reply = NULL;
    *reply_len = 0;
    if (errlen)
        err[0] = '\0';
    if (!service || !*service || strlen (service) > ORR_BUS_SERVICE_MAX || strlen (request_id) > ORR_BUS_REQUEST_ID_MAX) {
        snprintf (err, errlen, "bad service name or request id");
        return ORR_BUS_REFUSED;
    }
    zmq_pollitem_t items[ORR_BUS_MAX_BROKERS];
    for (size_t i = 0; i < self->nsocks; i++)
        items[i] = (zmq_pollitem_t) { zsock_resolve (self->socks[i]), 0, ZMQ_POLLIN, 0 };

    orr_bus_status_t status = ORR_BUS_TIMEOUT;
    for (int attempt = 0; attempt < self->retries; attempt++) {
        /* The first broker with a live connection takes it. When none has one (all
         * restarting), keep trying for this attempt's time before counting it. */
        bool sent = false;
        int64_t give_up = orr_mono_ms () + self->timeout_ms;
        while (!sent) {
            for (size_t k = 0; k < self->nsocks && !sent; k++) {
                size_t b = (self->next + k) % self->nsocks;
                if (s_send_request (self->socks[b], service, request_id, body, len) == 0) {
                    sent = true;
                    self->next = (b + 1) % self->nsocks;   /* spread requests over brokers */
                }
            }
            if (sent || orr_mono_ms () >= give_up)
                break;
            if (orr_signal_stop_requested ())
                return ORR_BUS_INTERRUPTED;
            orr_sleep_ms (20);
        }
        if (!sent)
            continue;
        int64_t deadline = orr_mono_ms () + self->timeout_ms;
        while (1) {
            int64_t left = deadline - orr_mono_ms ();
            if (left <= 0)
                break;
            int rc = zmq_poll (items, (int) self->nsocks, (long) left);
            if (rc < 0) {
                if (orr_signal_stop_requested ())
                    return ORR_BUS_INTERRUPTED;
                continue;
            }
            for (size_t i = 0; i < self->nsocks; i++) {
                if (!(items[i].revents & ZMQ_POLLIN))
                    continue;
                int r;
                while ((r = s_read_reply (self->socks[i], request_id, &status, reply, reply_len, err, errlen)) >= 0)
                    if (r == 1)
                        return status;
            }
        }
        orr_debug ("request %s to %s: no reply in %d ms (attempt %d of %d)", request_id, service, self->timeout_ms,
                   attempt + 1, self->retries);
    }
    snprintf (err, errlen, "no reply from service '%s' after %d attempts of %d ms", service, self->retries,
              self->timeout_ms);
    return ORR_BUS_TIMEOUT;
}
