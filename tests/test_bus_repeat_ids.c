/*  A request id that reaches a worker again while the first copy is still being handled
 *  (a client that timed out and failed over through another broker, or another route
 *  through the same one) is handed to the caller ONCE; when the caller replies, EVERY
 *  route the id arrived by gets the reply, on the broker it came through; and a repeat
 *  that arrives after the reply is answered at once from the worker's reply cache without
 *  reaching the caller again. Handlers are only idempotent per id by convention, so a
 *  repeat that ran them twice, or a client left without an answer, is a real bug; the
 *  broker tests cannot show it, since a real broker rarely sends a repeat mid-request.
 *
 *  The test plays two brokers itself, with a ROUTER each, and drives lib/orr_bus_worker.c
 *  directly: clientA's request comes through broker 1 and is taken by the caller; then
 *  clientB's repeat comes through broker 2 and clientC's through broker 1; after the reply
 *  clientD's late repeat comes through broker 2. The worker's heartbeats are skipped (and
 *  counted, so the skipping is known to have been exercised). */
#include "orr_bus_worker.h"
#include "orr_util.h"
#include "testutil.h"

#include <string.h>

#define RECV_TIMEOUT_MS 3000   /* any wait of the fake brokers; a lost message fails */
#define PARTS_MAX 8

static const char BODY[] = "hello-body-of-some-length-more-than-33-bytes-xxxxxxxx";
static const char ANSWER[] = "answer";
static int s_heartbeats;

/* A ROUTER bound to a free port below 32768 (retried: a free port is free only for now). */
static zsock_t *
s_router (int *port_p)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = orr_free_port ();
        CHECK (port > 0 && port < 32768, "no free port (%d)", port);
        zsock_t *r = zsock_new (ZMQ_ROUTER);
        CHECK (r != NULL);
        zsock_set_linger (r, 0);
        zsock_set_rcvtimeo (r, RECV_TIMEOUT_MS);
        zsock_set_sndtimeo (r, RECV_TIMEOUT_MS);
        zsock_set_router_mandatory (r, 1);   /* a send to a route that is gone fails */
        if (zsock_bind (r, "tcp://127.0.0.1:%d", port) == port) {
            *port_p = port;
            return r;
        }
        zsock_destroy (&r);
    }
    CHECK (false, "could not bind a ROUTER on a free port");
    return NULL;
}

static bool
s_part_is (zmq_msg_t *m, const void *data, size_t len)
{
    return zmq_msg_size (m) == len && memcmp (zmq_msg_data (m), data, len) == 0;
}

/* One whole message into p[]; the caller closes the parts. Fails after RECV_TIMEOUT_MS. */
static int
s_recv_parts (zsock_t *router, zmq_msg_t *p)
{
    void *h = zsock_resolve (router);
    int n = 0, more = 1;
    while (more) {
        CHECK (n < PARTS_MAX, "a message of more than %d parts", PARTS_MAX);
        zmq_msg_init (&p[n]);
        int rc = zmq_msg_recv (&p[n], h, 0);
        CHECK (rc >= 0, "nothing from the worker within %d ms (part %d): %s", RECV_TIMEOUT_MS, n,
               zmq_strerror (zmq_errno ()));
        more = zmq_msg_more (&p[n]);
        n++;
    }
    return n;
}

static void
s_close_parts (zmq_msg_t *p, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close (&p[i]);
}

/* The worker's next message other than a heartbeat ([route] ["ORW1"] [HEARTBEAT]),
 * within RECV_TIMEOUT_MS in all: heartbeats keep coming, so the socket's receive timeout
 * alone would never end the wait for a message that is not sent. */
static int
s_recv_skipping_heartbeats (zsock_t *router, zmq_msg_t *p)
{
    int64_t deadline = orr_mono_ms () + RECV_TIMEOUT_MS;
    while (1) {
        CHECK (orr_mono_ms () < deadline, "nothing but heartbeats from the worker for %d ms (a reply or READY missing)",
               RECV_TIMEOUT_MS);
        int n = s_recv_parts (router, p);
        unsigned char hb = ORR_BUS_W_HEARTBEAT;
        if (n == 3 && s_part_is (&p[1], ORR_BUS_WORKER, strlen (ORR_BUS_WORKER)) && s_part_is (&p[2], &hb, 1)) {
            s_heartbeats++;
            s_close_parts (p, n);
            continue;
        }
        return n;
    }
}

/* Waits for the worker's READY ([route] ["ORW1"] [READY] [service] [credit]); returns
 * its route (the caller closes it). */
static void
s_expect_ready (zsock_t *router, zmq_msg_t *route)
{
    zmq_msg_t p[PARTS_MAX];
    int n = s_recv_skipping_heartbeats (router, p);
    unsigned char ready = ORR_BUS_W_READY;
    CHECK_EQ_INT (n, 5);
    CHECK (s_part_is (&p[1], ORR_BUS_WORKER, strlen (ORR_BUS_WORKER)) && s_part_is (&p[2], &ready, 1),
           "expected READY");
    CHECK (s_part_is (&p[3], "svc", 3), "READY for another service");
    zmq_msg_init (route);
    zmq_msg_copy (route, &p[0]);
    s_close_parts (p, n);
}

/* [route] ["ORW1"] [REQUEST] [client] [id] [principal] [body], as a broker sends it. */
static void
s_send_request (zsock_t *router, zmq_msg_t *route, const char *client, const char *id)
{
    void *h = zsock_resolve (router);
    unsigned char cmd = ORR_BUS_W_REQUEST;
    zmq_msg_t r;
    zmq_msg_init (&r);
    zmq_msg_copy (&r, route);
    CHECK (zmq_msg_send (&r, h, ZMQ_SNDMORE) >= 0, "route to the worker: %s", zmq_strerror (zmq_errno ()));
    zmq_msg_close (&r);
    CHECK (zmq_send (h, ORR_BUS_WORKER, strlen (ORR_BUS_WORKER), ZMQ_SNDMORE) >= 0);
    CHECK (zmq_send (h, &cmd, 1, ZMQ_SNDMORE) >= 0);
    CHECK (zmq_send (h, client, strlen (client), ZMQ_SNDMORE) >= 0);
    CHECK (zmq_send (h, id, strlen (id), ZMQ_SNDMORE) >= 0);
    CHECK (zmq_send (h, ORR_BUS_ANONYMOUS, strlen (ORR_BUS_ANONYMOUS), ZMQ_SNDMORE) >= 0);
    CHECK (zmq_send (h, BODY, strlen (BODY), 0) >= 0);
}

/* The next message on `router` must be a REPLY ([route] ["ORW1"] [REPLY] [client] [id]
 * [body]) to one of clients[0..nclients), for `id`, with ANSWER; marks that client in got[]
 * (a client answered twice fails). Heartbeats are skipped. */
static void
s_expect_reply (zsock_t *router, const char *const *clients, int nclients, bool *got, const char *id)
{
    zmq_msg_t p[PARTS_MAX];
    int n = s_recv_skipping_heartbeats (router, p);
    unsigned char reply = ORR_BUS_W_REPLY;
    CHECK_EQ_INT (n, 6);
    CHECK (s_part_is (&p[1], ORR_BUS_WORKER, strlen (ORR_BUS_WORKER)) && s_part_is (&p[2], &reply, 1),
           "expected REPLY");
    int which = -1;
    for (int i = 0; i < nclients; i++)
        if (s_part_is (&p[3], clients[i], strlen (clients[i])))
            which = i;
    CHECK (which >= 0, "a reply to an unexpected client frame \"%.*s\"", (int) zmq_msg_size (&p[3]),
           (char *) zmq_msg_data (&p[3]));
    CHECK (!got[which], "%s got the reply twice", clients[which]);
    got[which] = true;
    CHECK (s_part_is (&p[4], id, strlen (id)), "reply to %s has id \"%.*s\", expected \"%s\"", clients[which],
           (int) zmq_msg_size (&p[4]), (char *) zmq_msg_data (&p[4]), id);
    CHECK (s_part_is (&p[5], ANSWER, strlen (ANSWER)), "reply to %s has body \"%.*s\"", clients[which],
           (int) zmq_msg_size (&p[5]), (char *) zmq_msg_data (&p[5]));
    printf ("reply to %s/%s ok\n", clients[which], id);
    s_close_parts (p, n);
}

int
main (void)
{
    int port1 = 0, port2 = 0;
    zsock_t *broker1 = s_router (&port1), *broker2 = s_router (&port2);
    char *bus = orr_sprintf ("tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", port1, port2);
    orr_bus_opts_t opts;
    CHECK_EQ_INT (orr_bus_opts_init (&opts, bus), 0);
    /* Heartbeats every 100 ms, so the fake brokers surely see some to skip; they never
     * heartbeat back, so a long liveness (10 s) keeps the worker from reconnecting (and
     * so changing its route) in the middle of the test. */
    opts.heartbeat_ms = 100;
    opts.liveness = 100;
    orr_bus_worker_t *w = orr_bus_worker_new (&opts, "svc", 4);
    CHECK (w != NULL);
    zmq_msg_t route1, route2;
    s_expect_ready (broker1, &route1);
    s_expect_ready (broker2, &route2);

    /* clientA's request, through broker 1, reaches the caller */
    s_send_request (broker1, &route1, "clientA", "id1");
    orr_bus_request_t req;
    CHECK_EQ_INT (orr_bus_worker_recv (w, &req, RECV_TIMEOUT_MS), 1);
    CHECK_EQ_STR (req.request_id, "id1");
    CHECK_EQ_STR (req.principal, ORR_BUS_ANONYMOUS);
    CHECK (req.body && zframe_size (req.body) == strlen (BODY)
               && memcmp (zframe_data (req.body), BODY, strlen (BODY)) == 0,
           "request body differs");

    /* while the caller holds it, the same id through the other broker and again through
     * the first: neither is handed out (the 300 ms wait also lets the worker read both) */
    s_send_request (broker2, &route2, "clientB", "id1");
    s_send_request (broker1, &route1, "clientC", "id1");
    orr_bus_request_t again;
    int rc = orr_bus_worker_recv (w, &again, 300);
    CHECK (rc == 0, "a repeated id was handed to the caller again (recv = %d, id \"%s\")", rc, again.request_id);
    orr_bus_request_clear (&again);

    /* one reply reaches all three, each on the broker its request came through */
    CHECK_EQ_INT (orr_bus_worker_reply (w, &req, ANSWER, strlen (ANSWER)), 0);
    const char *clients1[] = { "clientA", "clientC" }, *clients2[] = { "clientB" };
    bool got1[2] = { false, false }, got2[1] = { false };
    s_expect_reply (broker1, clients1, 2, got1, "id1");
    s_expect_reply (broker1, clients1, 2, got1, "id1");
    s_expect_reply (broker2, clients2, 1, got2, "id1");
    /* the id is no longer pending: a second reply is refused */
    CHECK_EQ_INT (orr_bus_worker_reply (w, &req, ANSWER, strlen (ANSWER)), -1);
    orr_bus_request_clear (&req);

    /* a late repeat is answered from the cache and does not reach the caller */
    s_send_request (broker2, &route2, "clientD", "id1");
    const char *clients3[] = { "clientD" };
    bool got3[1] = { false };
    s_expect_reply (broker2, clients3, 1, got3, "id1");
    rc = orr_bus_worker_recv (w, &again, 300);
    CHECK (rc == 0, "a repeat after the reply was handed to the caller (recv = %d)", rc);
    orr_bus_request_clear (&again);

    printf ("worker heartbeats skipped: %d\n", s_heartbeats);
    CHECK (s_heartbeats > 0, "no heartbeat seen: the skipping was not exercised");

    zmq_msg_close (&route1);
    zmq_msg_close (&route2);
    orr_bus_worker_destroy (&w);
    orr_bus_opts_clear (&opts);
    free (bus);
    zsock_destroy (&broker1);
    zsock_destroy (&broker2);
    printf ("1 passed, 0 failed\n");
    return 0;
}
