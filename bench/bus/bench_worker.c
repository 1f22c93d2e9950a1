/*  orrery-bench-bus-worker: the echo server behind bench/bus, in one of three modes.
 *
 *    --bus tcp://H:P [--service S] [--credit N]
 *        A real bus worker on lib/orr_bus_worker: registers with the broker at H:P and
 *        answers every request with its own body. This is what a service costs on the
 *        bus: the worker actor thread, its pipe to this (the caller's) thread, the cache
 *        of recent replies, and the broker hop.
 *
 *    --bus tcp://H:P --lean [--service S] [--credit N]
 *        A diagnostic: the same worker protocol spoken by this one thread on its own
 *        DEALER (READY with credit, echo, HEARTBEAT every 500 ms, READY again after a
 *        DISCONNECT), with no actor thread and no reply cache. The difference between
 *        this and --bus is what lib/orr_bus_worker's design costs per request; what is
 *        left over against --direct is the broker hop itself.
 *
 *    --direct tcp://H:P
 *        The peer to compare against: one ROUTER bound at H:P, no broker, no actor.
 *        Every message ([routing-id] [frames...]) is sent straight back as is, frame by
 *        frame with zmq_msg_t, so the worker copies nothing. Clients are DEALER sockets
 *        that send [request-id] [body] and get it back.
 *
 *  Both run until SIGINT/SIGTERM. Nothing is logged per request.
 */
#include "orr_bus_worker.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAN_HEARTBEAT_MS 500

static void
s_usage (void)
{
    fprintf (stderr, "usage: orrery-bench-bus-worker --bus tcp://H:P [--lean] [--service S] [--credit N]\n"
                     "       orrery-bench-bus-worker --direct tcp://H:P\n");
}

static int
s_run_bus (const char *bus, const char *service, int credit)
{
    orr_bus_opts_t opts;
    if (orr_bus_opts_init (&opts, bus) != 0)
        return 2;
    orr_bus_worker_t *worker = orr_bus_worker_new (&opts, service, credit);
    if (!worker) {
        orr_bus_opts_clear (&opts);
        return 2;
    }
    while (!orr_signal_stop_requested ()) {
        orr_bus_request_t req;
        if (orr_bus_worker_recv (worker, &req, 200) != 1)
            continue;
        orr_bus_worker_reply (worker, &req, zframe_data (req.body), zframe_size (req.body));
        orr_bus_request_clear (&req);
    }
    orr_bus_worker_destroy (&worker);
    orr_bus_opts_clear (&opts);
    return 0;
}

static void
s_lean_send_cmd (zsock_t *d, int cmd, const char *service, int credit)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, ORR_BUS_WORKER);
    unsigned char c = (unsigned char) cmd;
    zmsg_addmem (msg, &c, 1);
    if (cmd == ORR_BUS_W_READY) {
        zmsg_addstr (msg, service);
        zmsg_addstrf (msg, "%d", credit);
    }
    zmsg_send (&msg, d);
}

static zsock_t *
s_lean_connect (const char *endpoint, const char *service, int credit)
{
    zsock_t *d = zsock_new (ZMQ_DEALER);
    zsock_set_linger (d, 0);
    zsock_set_rcvtimeo (d, 0);   /* the loop reads until EAGAIN */
    zsock_connect (d, "%s", endpoint);
    s_lean_send_cmd (d, ORR_BUS_W_READY, service, credit);
    return d;
}

static int
s_run_lean (const char *bus, const char *service, int credit)
{
    char endpoint[256];
    if (orr_bus_endpoint (bus, 0, endpoint, sizeof endpoint) != 0)
        return 2;
    zsock_t *d = s_lean_connect (endpoint, service, credit);
    int64_t heartbeat_at = orr_mono_ms () + LEAN_HEARTBEAT_MS;
    while (!orr_signal_stop_requested ()) {
        int64_t now = orr_mono_ms ();
        if (now >= heartbeat_at) {
            s_lean_send_cmd (d, ORR_BUS_W_HEARTBEAT, NULL, 0);
            heartbeat_at = now + LEAN_HEARTBEAT_MS;
        }
        zmq_pollitem_t item = { zsock_resolve (d), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) (heartbeat_at - now)) <= 0)
            continue;
        zmsg_t *msg;
        bool reconnect = false;
        while (!reconnect && (msg = zmsg_recv (d))) {
            /* REQUEST: [ORW1] [0x02] [client] [request-id] [principal] [body] */
            zmsg_first (msg);   /* [ORW1]: only the broker talks to us */
            zframe_t *cmd = zmsg_next (msg);
            int c = cmd && zframe_size (cmd) == 1 ? *(unsigned char *) zframe_data (cmd) : -1;
            if (c == ORR_BUS_W_REQUEST && zmsg_size (msg) == 6) {
                /* turn it into REPLY [ORW1] [0x03] [client] [request-id] [body] in place */
                unsigned char r = ORR_BUS_W_REPLY;
                zframe_reset (cmd, &r, 1);
                zmsg_next (msg);   /* client */
                zmsg_next (msg);   /* request id */
                zframe_t *principal = zmsg_next (msg);
                zmsg_remove (msg, principal);
                zframe_destroy (&principal);
                zmsg_send (&msg, d);
            }
            else if (c == ORR_BUS_W_DISCONNECT)
                reconnect = true;
            zmsg_destroy (&msg);
        }
        if (reconnect) {
            zsock_destroy (&d);
            d = s_lean_connect (endpoint, service, credit);
        }
    }
    s_lean_send_cmd (d, ORR_BUS_W_DISCONNECT, NULL, 0);
    zsock_destroy (&d);
    return 0;
}

static int
s_run_direct (const char *endpoint)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    if (zsock_bind (router, "%s", endpoint) < 0) {
        fprintf (stderr, "cannot bind %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&router);
        return 1;
    }
    void *h = zsock_resolve (router);
    zmq_pollitem_t item = { h, 0, ZMQ_POLLIN, 0 };
    while (!orr_signal_stop_requested ()) {
        if (zmq_poll (&item, 1, 200) <= 0)
            continue;
        /* drain everything readable, echoing each frame with the same MORE flag */
        while (1) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, h, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&part);
                break;
            }
            int more = zmq_msg_more (&part);
            zmq_msg_send (&part, h, more ? ZMQ_SNDMORE : 0);
            zmq_msg_close (&part);
            while (more) {
                zmq_msg_init (&part);
                if (zmq_msg_recv (&part, h, 0) < 0) {
                    zmq_msg_close (&part);
                    break;
                }
                more = zmq_msg_more (&part);
                zmq_msg_send (&part, h, more ? ZMQ_SNDMORE : 0);
                zmq_msg_close (&part);
            }
        }
    }
    zsock_destroy (&router);
    return 0;
}

int
main (int argc, char **argv)
{
    const char *bus = NULL, *direct = NULL, *service = "bench.echo";
    long credit = 4;
    bool lean = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (a, "--bus") == 0 && v)
            bus = argv[++i];
        else if (strcmp (a, "--lean") == 0)
            lean = true;
        else if (strcmp (a, "--direct") == 0 && v)
            direct = argv[++i];
        else if (strcmp (a, "--service") == 0 && v)
            service = argv[++i];
        else if (strcmp (a, "--credit") == 0 && v) {
            if (orr_parse_long (argv[++i], &credit) != 0 || credit < 1) {
                s_usage ();
                return 2;
            }
        }
        else {
            s_usage ();
            return 2;
        }
    }
    if (!bus == !direct || (lean && !bus)) {
        s_usage ();
        return 2;
    }
    orr_signal_install ();
    zsys_set_linger (0);
    if (direct)
        return s_run_direct (direct);
    return lean ? s_run_lean (bus, service, (int) credit) : s_run_bus (bus, service, (int) credit);
}
