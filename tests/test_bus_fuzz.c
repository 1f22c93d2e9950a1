/*  100,000 malformed multipart messages sent to every broker socket: the broker neither
 *  crashes nor stops serving valid traffic during and after.
 *
 *  How: one real broker (the built orrery-bus, max message 64 KiB so oversized frames are
 *  cheap, request TTL 1 s so queued junk requests expire during the run), one echo worker
 *  "w1", a client, an event publisher and an event subscriber. The test then connects
 *  three fuzz sockets of its own, one per broker socket:
 *
 *    DEALER -> ROUTER (port P)     60,000 messages
 *    XPUB   -> XSUB   (port P+1)   25,000 messages (the broker subscribes to everything)
 *    XSUB   -> XPUB   (port P+2)   15,000 messages (XSUB peers may send anything)
 *
 *  Messages come from a seeded PRNG (the seed is printed; FUZZ_SEED=<n> replays the same
 *  messages): pure junk (1-12 frames, mostly 0-64 bytes, a quarter empty, some ~1-4 KB)
 *  and structured mutations that get past the first checks into the deep paths: the right
 *  headers "ORC1"/"ORW1" with every command byte and wrong frame counts, client REQUESTs
 *  for made-up services (queued, then expired with ERROR), a flood of 1,500 or so new
 *  service names (the table fills: ERROR), mmi.service, READY for random services (never
 *  "echo"), READY twice, bad credits, REPLY with random routes and ids, HEARTBEAT and
 *  DISCONNECT from strangers, over-long and non-printable names, ids and topics, events
 *  with bad topics and frame counts, and "bus.tick" spoofing. When the fuzz DEALER has
 *  registered as a worker and the broker hands it a request, it answers (mostly right,
 *  sometimes with a wrong id), so held requests, requeueing and purges get exercised too.
 *  Every 2,500 messages one carries a big frame (at, just over, or well over the limit).
 *
 *  zmq loses what is in flight when the broker drops a peer for an oversized frame, so
 *  around each big frame the test syncs (a probe the broker must answer after reading
 *  everything before it: mmi.service on the DEALER, an event back through the spy or the
 *  fuzz XSUB) and, if the frame was over the limit, waits for the drop and the reconnect
 *  (seen on socket monitors). So the broker really reads all the fuzz, and the test checks
 *  that: its own count of events in must match exactly, and it must have dropped each fuzz
 *  socket exactly once per frame over the limit.
 *
 *  Checks: every 2,000 fuzz messages (after syncing all three sockets) an echo request
 *  through the real client must come back exactly, and an event on "valid.N" must reach the
 *  subscriber within 2 s; the broker must be alive throughout. A raw SUB subscribed to
 *  everything (and whatever the fuzz XSUB gets back) must only ever see well-formed events:
 *  3 frames, a printable topic of at most 128 bytes, a body within the limit, principal
 *  "anonymous", except "bus.tick", whose principal must be "broker" (a spoofed tick never
 *  surfaces). After the fuzzing: 100 more echo requests and an event, ticks still coming,
 *  the deep paths were reached (expiry and table-full ERRORs, replies, requests handed to
 *  the fuzz worker, DISCONNECTs), the broker's RSS is sane (plain builds), SIGTERM makes it
 *  exit 0, and its log and the worker's hold no AddressSanitizer / UBSan / LeakSanitizer
 *  report (meaningful with ORRERY_SANITIZE=ON, where the broker is sanitized too).
 */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_events.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#define S_TOTAL 100000
#define S_TO_ROUTER 60000
#define S_TO_XSUB 25000           /* the broker's events-in socket, via our XPUB */
#define S_TO_XPUB 15000           /* the broker's events-out socket, via our XSUB */
#define S_CHECK_EVERY 2000
#define S_BIG_EVERY 2500
#define S_FLOOD_AT 40000          /* from here, every ROUTER message names a new service */
#define S_FLOOD_LEN 2500
#define S_MAX_MESSAGE 65536
#define S_FRAMES_MAX 16
#define S_BUF_SIZE (1024 * 1024)
#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#endif
#endif
#ifndef S_ASAN
#define S_ASAN 0
#endif

/* ---------------------------------------------------------------- PRNG (splitmix64) */

static uint64_t s_rng;

static uint64_t
s_rand (void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t
s_below (uint32_t n)
{
    return n ? (uint32_t) (s_rand () % n) : 0;
}

static size_t
s_between (size_t lo, size_t hi)
{
    return lo + (size_t) s_below ((uint32_t) (hi - lo + 1));
}

/* ---------------------------------------------------------------- message builder */

typedef struct {
    size_t n;
    size_t off[S_FRAMES_MAX];
    size_t len[S_FRAMES_MAX];
    size_t used;
} s_msg_t;

static unsigned char s_buf[S_BUF_SIZE];

static unsigned char *
s_add (s_msg_t *m, const void *data, size_t len)
{
    CHECK (m->n < S_FRAMES_MAX && m->used + len <= S_BUF_SIZE, "fuzz message too big for the buffer");
    unsigned char *p = s_buf + m->used;
    if (data && len)
        memcpy (p, data, len);
    m->off[m->n] = m->used;
    m->len[m->n] = len;
    m->n++;
    m->used += len;
    return p;
}

static void
s_add_str (s_msg_t *m, const char *s)
{
    s_add (m, s, strlen (s));
}

static void
s_add_byte (s_msg_t *m, unsigned char c)
{
    s_add (m, &c, 1);
}

static unsigned char *
s_add_random (s_msg_t *m, size_t len)
{
    unsigned char *p = s_add (m, NULL, len);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char) s_rand ();
    return p;
}

static void
s_add_printable (s_msg_t *m, size_t len)
{
    unsigned char *p = s_add (m, NULL, len);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char) (0x21 + s_below (0x7f - 0x21));
}

/* Junk frame sizes: a quarter empty, most up to 64 bytes, some up to 1 KB, a few ~1-4 KB. */
static size_t
s_junk_size (void)
{
    uint32_t r = s_below (1000);
    if (r < 250)
        return 0;
    if (r < 900)
        return s_between (1, 64);
    if (r < 980)
        return s_between (65, 1024);
    return s_between (1024, 4096);
}

/* A big frame: exactly at the limit (accepted), one past it, or well past it. */
static bool s_big_over;   /* the last big frame was over the limit */

static size_t
s_big_size (void)
{
    uint32_t r = s_below (10);
    size_t n = r < 2 ? S_MAX_MESSAGE : r < 3 ? S_MAX_MESSAGE + 1 : s_between (70000, 200000);
    s_big_over = n > S_MAX_MESSAGE;
    return n;
}

static void
s_add_junk_frames (s_msg_t *m, size_t count)
{
    for (size_t i = 0; i < count && m->n < S_FRAMES_MAX; i++)
        s_add_random (m, s_junk_size ());
}

/* A name field (service, or similar): mostly plausible, often subtly wrong. */
static void
s_add_name (s_msg_t *m, bool allow_echo)
{
    uint32_t r = s_below (100);
    char tmp[32];
    if (r < 40) {
        snprintf (tmp, sizeof tmp, "fz.%u", s_below (32));
        s_add_str (m, tmp);
    }
    else if (r < 58)
        s_add_printable (m, s_between (1, ORR_BUS_SERVICE_MAX));
    else if (r < 63)
        s_add_printable (m, ORR_BUS_SERVICE_MAX);
    else if (r < 72)
        s_add_printable (m, s_between (ORR_BUS_SERVICE_MAX + 1, 300));
    else if (r < 82) {
        static const unsigned char bad[] = { ' ', 0x00, 0x7f, 0xff, '\t', '\n', 0x80, 0x01 };
        size_t len = s_between (1, 40);
        unsigned char *p = s_add (m, NULL, len);
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char) (0x21 + s_below (0x7f - 0x21));
        p[s_below ((uint32_t) len)] = bad[s_below (sizeof bad)];
    }
    else if (r < 87)
        s_add (m, NULL, 0);
    else if (r < 93)
        s_add_str (m, "mmi.service");
    else if (r < 95 && allow_echo)
        s_add_str (m, "echo");
    else {
        snprintf (tmp, sizeof tmp, "fz.%u", s_below (32));
        s_add_str (m, tmp);
    }
}

/* A request id field. */
static void
s_add_rid (s_msg_t *m)
{
    uint32_t r = s_below (100);
    if (r < 60)
        s_add_printable (m, s_between (1, ORR_BUS_REQUEST_ID_MAX));
    else if (r < 65)
        s_add_printable (m, ORR_BUS_REQUEST_ID_MAX);
    else if (r < 78)
        s_add_printable (m, s_between (ORR_BUS_REQUEST_ID_MAX + 1, 400));
    else if (r < 92) {
        unsigned char *p = s_add_random (m, s_between (1, 64));
        p[0] = (unsigned char) s_below (0x21);   /* surely not printable */
    }
    else
        s_add (m, NULL, 0);
}

/* An event topic: good, too long, empty, non-printable, or the broker's own tick. */
static void
s_add_topic (s_msg_t *m, unsigned *spoofs)
{
    uint32_t r = s_below (100);
    char tmp[48];
    if (r < 30) {
        snprintf (tmp, sizeof tmp, "fz.%x", s_below (4096));
        s_add_str (m, tmp);
    }
    else if (r < 42)
        s_add_printable (m, s_between (1, ORR_BUS_TOPIC_MAX));
    else if (r < 47)
        s_add_printable (m, ORR_BUS_TOPIC_MAX);
    else if (r < 57)
        s_add_printable (m, s_between (ORR_BUS_TOPIC_MAX + 1, 500));
    else if (r < 67) {
        unsigned char *p = s_add_random (m, s_between (1, 64));
        p[s_below ((uint32_t) m->len[m->n - 1])] = (unsigned char) s_below (0x21);
    }
    else if (r < 72)
        s_add (m, NULL, 0);
    else if (r < 85) {
        s_add_str (m, ORR_BUS_TICK_TOPIC);
        (*spoofs)++;
    }
    else {
        static const char *const near[] = { "bus.tick.x", "bus.tic", "bus.tick ", "BUS.TICK", "bus.tickbus.tick", "bus." };
        if (s_below (7) == 0)
            s_add (m, "bus.tick\0", 9);
        else
            s_add_str (m, near[s_below (sizeof near / sizeof near[0])]);
    }
}

/* ---------------------------------------------------------------- the run */

typedef struct {
    tb_broker_t broker;
    zsock_t *dealer, *xpub, *xsub, *spy;
    zsock_t *mon[3];          /* PAIR sockets receiving the fuzz sockets' monitor events */
    unsigned drops[3], connects[3];
    orr_bus_client_t *client;
    orr_events_pub_t *pub;
    orr_events_sub_t *sub;
    /* what the fuzz sockets sent */
    unsigned sent[3], big, spoofs, work_replies;
    unsigned over[3];         /* messages with a frame over the limit, per fuzz socket */
    unsigned flood;           /* requests naming a new service each (to fill the table) */
    /* what came back to the fuzz DEALER */
    unsigned c_reply, c_error, c_err_expired, c_err_full, c_err_busy, w_request, w_disconnect, w_heartbeat,
        other_in;
    /* sync probes: one per fuzz socket, answered once the broker has read all before it */
    unsigned syncs, sync_events;
    char sync_rid[32], sync_topic[32], sync_xtopic[32];
    bool synced;
    /* the fuzz XPUB's view of the broker's subscription */
    unsigned xpub_subs, xpub_unsubs;
    /* events seen by the spy and the fuzz XSUB, all checked */
    unsigned ticks, events_seen, fuzz_xsub_events;
    /* validity checks */
    unsigned echo_ok, echo_fail, event_ok, event_fail;
} s_run_t;

static bool
s_frame_is (zframe_t *f, const char *s)
{
    size_t n = strlen (s);
    return f && zframe_size (f) == n && memcmp (zframe_data (f), s, n) == 0;
}

static bool
s_printable (zframe_t *f, size_t max)
{
    size_t n = zframe_size (f);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (zframe_data (f)[i] <= 0x20 || zframe_data (f)[i] >= 0x7f)
            return false;
    return true;
}

/* Everything the broker's events-out socket sends must be a well-formed event. True for
 * the broker's own tick. */
static bool
s_check_event (s_run_t *r, zmsg_t *msg, const char *who)
{
    CHECK (zmsg_size (msg) == 3, "%s got a %zu-frame message from the broker", who, zmsg_size (msg));
    zframe_t *topic = zmsg_first (msg), *principal = zmsg_next (msg), *body = zmsg_next (msg);
    CHECK (s_printable (topic, ORR_BUS_TOPIC_MAX), "%s got an event with a bad topic (%zu bytes)", who,
           zframe_size (topic));
    CHECK (zframe_size (body) <= S_MAX_MESSAGE, "%s got an event with a %zu-byte body", who, zframe_size (body));
    if (s_frame_is (topic, ORR_BUS_TICK_TOPIC)) {
        CHECK (s_frame_is (principal, "broker"), "%s got a spoofed bus.tick (principal %.*s)", who,
               (int) zframe_size (principal), (char *) zframe_data (principal));
        CHECK (s_frame_is (body, r->broker.addr), "%s got a bus.tick with a foreign body", who);
        return true;
    }
    CHECK (s_frame_is (principal, ORR_BUS_ANONYMOUS), "%s got an event with principal %.*s", who,
           (int) zframe_size (principal), (char *) zframe_data (principal));
    return false;
}

static void
s_drain_spy (s_run_t *r)
{
    while (zsock_events (r->spy) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (r->spy);
        if (!msg)
            break;
        if (s_check_event (r, msg, "the spy SUB"))
            r->ticks++;
        else
            r->events_seen++;
        if (s_frame_is (zmsg_first (msg), r->sync_topic))
            r->synced = true;
        zmsg_destroy (&msg);
    }
}

static void
s_drain_fuzz_xsub (s_run_t *r)
{
    while (zsock_events (r->xsub) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (r->xsub);
        if (!msg)
            break;
        s_check_event (r, msg, "the fuzz XSUB");
        r->fuzz_xsub_events++;
        if (s_frame_is (zmsg_first (msg), r->sync_xtopic))
            r->synced = true;
        zmsg_destroy (&msg);
    }
}

static void
s_drain_fuzz_xpub (s_run_t *r)
{
    while (zsock_events (r->xpub) & ZMQ_POLLIN) {
        zframe_t *f = zframe_recv (r->xpub);
        if (!f)
            break;
        if (zframe_size (f) >= 1 && zframe_data (f)[0] == 1)
            r->xpub_subs++;
        else if (zframe_size (f) >= 1 && zframe_data (f)[0] == 0)
            r->xpub_unsubs++;
        zframe_destroy (&f);
    }
}

/* Replies to the broker; a fuzz DEALER that registered as a worker answers its requests. */
static void
s_drain_dealer (s_run_t *r)
{
    while (zsock_events (r->dealer) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (r->dealer);
        if (!msg)
            break;
        zframe_t *hdr = zmsg_first (msg), *cmdf = zmsg_next (msg);
        int cmd = cmdf && zframe_size (cmdf) == 1 ? zframe_data (cmdf)[0] : -1;
        if (s_frame_is (hdr, ORR_BUS_CLIENT) && cmd == ORR_BUS_C_REPLY) {
            zmsg_next (msg);
            if (s_frame_is (zmsg_next (msg), r->sync_rid))
                r->synced = true;
            else
                r->c_reply++;
        }
        else if (s_frame_is (hdr, ORR_BUS_CLIENT) && cmd == ORR_BUS_C_ERROR && zmsg_size (msg) == 5) {
            r->c_error++;
            char *reason = zframe_strdup (zmsg_last (msg));
            if (strstr (reason, "too many services"))
                r->c_err_full++;
            else if (strstr (reason, "took the request within"))
                r->c_err_expired++;
            else if (strstr (reason, "busy"))
                r->c_err_busy++;
            free (reason);
        }
        else if (s_frame_is (hdr, ORR_BUS_WORKER) && cmd == ORR_BUS_W_DISCONNECT)
            r->w_disconnect++;
        else if (s_frame_is (hdr, ORR_BUS_WORKER) && cmd == ORR_BUS_W_HEARTBEAT)
            r->w_heartbeat++;
        else if (s_frame_is (hdr, ORR_BUS_WORKER) && cmd == ORR_BUS_W_REQUEST && zmsg_size (msg) == 6) {
            r->w_request++;
            zframe_t *route = zmsg_next (msg), *rid = zmsg_next (msg);
            /* not from the PRNG: a seed must replay the same fuzz whatever the timing */
            uint32_t how = (r->w_request * 2654435761u) % 100;
            if (how < 85) {
                void *h = zsock_resolve (r->dealer);
                unsigned char c = ORR_BUS_W_REPLY;
                char badrid[] = "no-such-request";
                bool wrong = how >= 70;
                if (zmq_send (h, ORR_BUS_WORKER, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                    goto next;   /* queue full: the request stays held, as with a slow worker */
                zmq_send (h, &c, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
                zmq_send (h, zframe_data (route), zframe_size (route), ZMQ_SNDMORE | ZMQ_DONTWAIT);
                if (wrong)
                    zmq_send (h, badrid, strlen (badrid), ZMQ_SNDMORE | ZMQ_DONTWAIT);
                else
                    zmq_send (h, zframe_data (rid), zframe_size (rid), ZMQ_SNDMORE | ZMQ_DONTWAIT);
                zmq_send (h, "fuzz-reply", 10, ZMQ_DONTWAIT);
                r->work_replies++;
            }
        }
        else
            r->other_in++;
    next:
        zmsg_destroy (&msg);
    }
}

/* Counts the connections the broker dropped (and zmq re-made) for each fuzz socket. */
static void
s_drain_monitors (s_run_t *r)
{
    for (int i = 0; i < 3; i++) {
        unsigned char ev[6];
        char addr[256];
        void *h = zsock_resolve (r->mon[i]);
        while (zmq_recv (h, ev, sizeof ev, ZMQ_DONTWAIT) >= 0) {
            zmq_recv (h, addr, sizeof addr, 0);
            uint16_t event;
            memcpy (&event, ev, 2);
            if (event == ZMQ_EVENT_DISCONNECTED)
                r->drops[i]++;
            else if (event == ZMQ_EVENT_CONNECTED)
                r->connects[i]++;
        }
    }
}

static void
s_drain_all (s_run_t *r)
{
    s_drain_monitors (r);
    s_drain_dealer (r);
    s_drain_fuzz_xpub (r);
    s_drain_fuzz_xsub (r);
    s_drain_spy (r);
}

/* Sends m without blocking; on a full queue drains and retries for a while. */
static void
s_send (s_run_t *r, zsock_t *sock, const s_msg_t *m)
{
    void *h = zsock_resolve (sock);
    for (int attempt = 0;; attempt++) {
        int rc = zmq_send (h, s_buf + m->off[0], m->len[0], ZMQ_DONTWAIT | (m->n > 1 ? ZMQ_SNDMORE : 0));
        if (rc >= 0)
            break;
        CHECK (zmq_errno () == EAGAIN && attempt < 5000, "fuzz send: %s", zmq_strerror (zmq_errno ()));
        s_drain_all (r);
        orr_sleep_ms (1);
    }
    for (size_t i = 1; i < m->n; i++) {
        int rc = zmq_send (h, s_buf + m->off[i], m->len[i], ZMQ_DONTWAIT | (i + 1 < m->n ? ZMQ_SNDMORE : 0));
        CHECK (rc >= 0, "fuzz send, frame %zu: %s", i, zmq_strerror (zmq_errno ()));
    }
}

/* Waits until the broker has read everything sent so far on fuzz socket `target`: a
 * probe sent after it must come back. Probes are valid messages, not counted as fuzz. */
static void
s_sync (s_run_t *r, int target)
{
    r->synced = false;
    r->sync_rid[0] = r->sync_topic[0] = r->sync_xtopic[0] = 0;
    for (int attempt = 0; attempt < 50 && !r->synced; attempt++) {
        unsigned id = ++r->syncs;
        if (target == 0) {
            /* service discovery is answered by the broker itself, in order */
            snprintf (r->sync_rid, sizeof r->sync_rid, "sync-%u", id);
            s_msg_t m = { 0 };
            s_add_str (&m, ORR_BUS_CLIENT);
            s_add_byte (&m, ORR_BUS_C_REQUEST);
            s_add_str (&m, "mmi.service");
            s_add_str (&m, r->sync_rid);
            s_add_str (&m, "echo");
            s_send (r, r->dealer, &m);
        }
        else {
            /* an event through the fuzz XPUB; for events-out, after a subscription to it
             * from the fuzz XSUB, which must have reached the broker for it to come back */
            char *topic = target == 1 ? r->sync_topic : r->sync_xtopic;
            snprintf (topic, 32, "fz.sync%s.%u", target == 1 ? "" : "x", id);
            s_msg_t m = { 0 };
            if (target == 2) {
                unsigned char *p = s_add (&m, NULL, 1 + strlen (topic));
                p[0] = 1;
                memcpy (p + 1, topic, strlen (topic));
                s_send (r, r->xsub, &m);
                m = (s_msg_t) { 0 };
            }
            s_add_str (&m, topic);
            s_add_str (&m, "sync");
            for (int i = 0; i < 10 && !r->synced; i++) {
                s_send (r, r->xpub, &m);
                r->sync_events++;
                for (int64_t deadline = orr_mono_ms () + 100; !r->synced && orr_mono_ms () < deadline;) {
                    orr_sleep_ms (1);
                    s_drain_all (r);
                }
            }
            continue;
        }
        for (int64_t deadline = orr_mono_ms () + 1000; !r->synced && orr_mono_ms () < deadline;) {
            orr_sleep_ms (1);
            s_drain_all (r);
        }
    }
    CHECK (r->synced, "the broker stopped reading fuzz socket %d", target);
    if (target == 2) {
        s_msg_t m = { 0 };
        unsigned char *p = s_add (&m, NULL, 1 + strlen (r->sync_xtopic));
        p[0] = 0;
        memcpy (p + 1, r->sync_xtopic, strlen (r->sync_xtopic));
        s_send (r, r->xsub, &m);
    }
}

/* After a frame over the limit: the broker must drop the peer, and zmq reconnect. */
static void
s_wait_dropped (s_run_t *r, int target, unsigned drops, unsigned connects)
{
    int64_t deadline = orr_mono_ms () + 5000;
    while ((r->drops[target] == drops || r->connects[target] == connects) && orr_mono_ms () < deadline) {
        orr_sleep_ms (1);
        s_drain_all (r);
    }
    CHECK (r->drops[target] > drops && r->connects[target] > connects,
           "fuzz socket %d: a frame over the limit did not drop it, or it did not reconnect", target);
}

/* One message (or two, for READY twice) to the ROUTER; returns how many were sent. */
static unsigned
s_fuzz_router (s_run_t *r, bool big, bool flood, unsigned room)
{
    s_msg_t m = { 0 };
    uint32_t kind = s_below (100);
    if (flood && !big) {
        /* well-formed requests, each for a service nobody heard of: the table fills */
        char name[32], rid[32];
        snprintf (name, sizeof name, "flood.%u", r->flood++);
        snprintf (rid, sizeof rid, "f%u", r->flood);
        s_add_str (&m, ORR_BUS_CLIENT);
        s_add_byte (&m, ORR_BUS_C_REQUEST);
        s_add_str (&m, name);
        s_add_str (&m, rid);
        s_add_random (&m, s_junk_size ());
    }
    else if (big) {
        /* a request or an event-ish junk message carrying one big frame */
        if (s_below (2)) {
            s_add_str (&m, ORR_BUS_CLIENT);
            s_add_byte (&m, ORR_BUS_C_REQUEST);
            s_add_name (&m, false);
            s_add_rid (&m);
        }
        else
            s_add_junk_frames (&m, s_between (0, 4));
        s_add_random (&m, s_big_size ());
        s_add_junk_frames (&m, s_between (0, 2));
    }
    else if (kind < 22) {
        /* pure junk */
        s_add_junk_frames (&m, s_between (1, 12));
    }
    else if (kind < 34) {
        /* a header, right or almost, then any command byte and any number of frames */
        static const char *const hdrs[] = { ORR_BUS_CLIENT, ORR_BUS_WORKER, ORR_BUS_CLIENT, ORR_BUS_WORKER,
                                            "ORC", "ORW", "orc1", "ORC2", "ORW1ORW1", "MDPC01" };
        s_add_str (&m, hdrs[s_below (sizeof hdrs / sizeof hdrs[0])]);
        uint32_t c = s_below (10);
        if (c < 7)
            s_add_byte (&m, (unsigned char) c);
        else if (c < 8)
            s_add_random (&m, s_between (0, 3));
        else if (c < 9)
            s_add_byte (&m, (unsigned char) s_rand ());
        if (s_below (4))
            s_add_junk_frames (&m, s_between (0, 10));
    }
    else if (kind < 52) {
        /* a client request: mostly right-shaped, for a made-up service */
        s_add_str (&m, ORR_BUS_CLIENT);
        s_add_byte (&m, s_below (8) ? ORR_BUS_C_REQUEST : (unsigned char) s_below (7));
        s_add_name (&m, true);
        s_add_rid (&m);
        s_add_random (&m, s_junk_size ());
        uint32_t w = s_below (10);
        if (w == 0)
            m.n--, m.used -= m.len[m.n];          /* one frame short */
        else if (w == 1)
            s_add_junk_frames (&m, s_between (1, 4));   /* too many */
    }
    else if (kind < 56) {
        /* service discovery, for real and made-up names */
        s_add_str (&m, ORR_BUS_CLIENT);
        s_add_byte (&m, ORR_BUS_C_REQUEST);
        s_add_str (&m, "mmi.service");
        s_add_rid (&m);
        if (s_below (3))
            s_add_name (&m, true);
        else
            s_add_random (&m, s_junk_size ());
    }
    else if (kind < 70) {
        /* READY for a random service (never "echo"), maybe with a credit, maybe twice */
        s_add_str (&m, ORR_BUS_WORKER);
        s_add_byte (&m, ORR_BUS_W_READY);
        s_add_name (&m, false);
        uint32_t c = s_below (14);
        static const char *const credits[] = { "1", "0", "-5", "64", "65", "1000000", "99999999999999999999999",
                                               "abc", "", " 3", "7x", "3" };
        if (c < 12)
            s_add_str (&m, credits[c]);
        if (s_below (10) == 0)
            s_add_junk_frames (&m, s_between (1, 3));
        if (room >= 2 && s_below (3) == 0) {
            s_send (r, r->dealer, &m);
            s_send (r, r->dealer, &m);
            return 2;
        }
    }
    else if (kind < 80) {
        /* REPLY from a worker the broker may not know, to a random route */
        s_add_str (&m, ORR_BUS_WORKER);
        s_add_byte (&m, ORR_BUS_W_REPLY);
        uint32_t rt = s_below (10);
        if (rt < 6)
            s_add_random (&m, s_between (1, 16));
        else if (rt < 8)
            s_add_random (&m, s_between (200, 300));
        else
            s_add (&m, NULL, 0);
        s_add_rid (&m);
        s_add_random (&m, s_junk_size ());
        if (s_below (8) == 0)
            s_add_junk_frames (&m, s_between (1, 3));
        else if (s_below (8) == 0)
            m.n--, m.used -= m.len[m.n];
    }
    else if (kind < 92) {
        /* HEARTBEAT / DISCONNECT, sometimes with extra frames */
        s_add_str (&m, ORR_BUS_WORKER);
        s_add_byte (&m, s_below (2) ? ORR_BUS_W_HEARTBEAT : ORR_BUS_W_DISCONNECT);
        if (s_below (4) == 0)
            s_add_junk_frames (&m, s_between (1, 3));
    }
    else {
        /* worker header with the broker's own commands or unknown ones */
        static const unsigned char cmds[] = { 0x00, ORR_BUS_W_REQUEST, 0x06, 0x7f, 0xff };
        s_add_str (&m, ORR_BUS_WORKER);
        s_add_byte (&m, cmds[s_below (sizeof cmds)]);
        s_add_junk_frames (&m, s_between (0, 6));
    }
    s_send (r, r->dealer, &m);
    return 1;
}

/* One message to the broker's events-in socket (we are an XPUB publisher). */
static void
s_fuzz_events_in (s_run_t *r, bool big)
{
    s_msg_t m = { 0 };
    uint32_t kind = s_below (100);
    if (big) {
        s_add_topic (&m, &r->spoofs);
        s_add_random (&m, s_big_size ());
    }
    else if (kind < 30)
        s_add_junk_frames (&m, s_between (1, 12));
    else if (kind < 75) {
        s_add_topic (&m, &r->spoofs);
        s_add_random (&m, s_junk_size ());
    }
    else if (kind < 85) {
        /* a tick, as a broker would send it, or as a publisher would */
        s_add_str (&m, ORR_BUS_TICK_TOPIC);
        if (s_below (2))
            s_add_str (&m, "broker");
        s_add_str (&m, r->broker.addr);
        r->spoofs++;
    }
    else {
        /* wrong frame counts around a good topic */
        char tmp[32];
        snprintf (tmp, sizeof tmp, "fz.%x", s_below (4096));
        s_add_str (&m, tmp);
        uint32_t extra = s_below (5);
        s_add_junk_frames (&m, extra == 1 ? 0 : extra);
    }
    s_send (r, r->xpub, &m);
}

/* One message to the broker's events-out socket (we are an XSUB subscriber). */
static void
s_fuzz_events_out (s_run_t *r, bool big)
{
    s_msg_t m = { 0 };
    uint32_t kind = s_below (100);
    if (big) {
        s_add_junk_frames (&m, s_between (0, 2));
        s_add_random (&m, s_big_size ());
    }
    else if (kind < 40)
        s_add_junk_frames (&m, s_between (1, 12));
    else if (kind < 75) {
        /* subscribe (to everything, to ticks, to junk) or unsubscribe (maybe from nothing) */
        static const char *const topics[] = { "", ORR_BUS_TICK_TOPIC, "fz.", "valid." };
        uint32_t t = s_below (6);
        size_t tlen = t < 4 ? strlen (topics[t]) : s_between (0, 20);
        unsigned char *p = s_add (&m, NULL, 1 + tlen);
        p[0] = kind < 60 ? 1 : 0;
        for (size_t i = 0; i < tlen; i++)
            p[1 + i] = t < 4 ? (unsigned char) topics[t][i] : (unsigned char) s_rand ();
        if (s_below (5) == 0)
            s_add_junk_frames (&m, s_between (1, 3));
    }
    else {
        /* a downstream-shaped event, as if we published to the subscribers */
        s_add_topic (&m, &r->spoofs);
        s_add_str (&m, "broker");
        s_add_random (&m, s_junk_size ());
    }
    /* Our XSUB (libzmq) keeps every frame starting with 1 as a subscription and, each time
     * it reconnects (after every frame over the limit), resends them all first, as ZMTP 3.1
     * SUBSCRIBE commands. Two kinds would then make the broker drop us again on every
     * reconnect, forever, so this socket must never send them (a frame starting with 0 is
     * treated alike, to be safe):
     *  - a big frame: over the limit;
     *  - a frame of 247-256 bytes (a topic of 246-255): libzmq before 4.3.5 encodes such a
     *    SUBSCRIBE with the short-size flag but an 8-byte length (zeromq/libzmq#4367, fixed
     *    by #4564), so the broker's zmq reads garbage and closes the connection.
     * Such frames start with 2 instead: same size, still junk to the broker (sizes and
     * bytes in that window still reach the ROUTER and events-in sockets unchanged). */
    for (size_t i = 0; i < m.n; i++)
        if ((m.len[i] > 4096 || (m.len[i] >= 247 && m.len[i] <= 256)) && s_buf[m.off[i]] <= 1)
            s_buf[m.off[i]] = 2;
    s_send (r, r->xsub, &m);
}

/* ---------------------------------------------------------------- valid traffic */

static bool
s_echo_ok (s_run_t *r, int n)
{
    char body[32], expected[64];
    snprintf (body, sizeof body, "ping-%d", n);
    snprintf (expected, sizeof expected, "w1|%s|%s", ORR_BUS_ANONYMOUS, body);
    char *reply = NULL, err[256] = "";
    size_t len = 0;
    orr_bus_status_t st = orr_bus_client_request (r->client, "echo", NULL, body, strlen (body), &reply, &len, err, sizeof err);
    bool ok = st == ORR_BUS_OK && len == strlen (expected) && memcmp (reply, expected, len) == 0;
    if (!ok)
        fprintf (stderr, "echo %d failed: status %d, %s, reply %.*s\n", n, (int) st, err, reply ? (int) len : 0,
                 reply ? reply : "");
    free (reply);
    if (ok)
        r->echo_ok++;
    else
        r->echo_fail++;
    return ok;
}

static bool
s_event_ok (s_run_t *r, int n)
{
    char topic[32], body[32];
    snprintf (topic, sizeof topic, "valid.%d", n);
    int len = snprintf (body, sizeof body, "%d", n);
    CHECK (orr_events_publish (r->pub, topic, body, (size_t) len) == 0);
    int64_t deadline = orr_mono_ms () + 2000;
    bool ok = false;
    while (!ok) {
        int64_t left = deadline - orr_mono_ms ();
        if (left <= 0)
            break;
        orr_event_t ev;
        if (orr_events_recv (r->sub, &ev, (int) left) != 1)
            continue;
        CHECK (strncmp (ev.topic, "valid.", 6) == 0, "the subscriber to valid.* got %s", ev.topic);
        ok = strcmp (ev.topic, topic) == 0 && strcmp (ev.principal, ORR_BUS_ANONYMOUS) == 0
             && zframe_size (ev.body) == (size_t) len && memcmp (zframe_data (ev.body), body, (size_t) len) == 0;
        orr_event_clear (&ev);
    }
    if (!ok)
        fprintf (stderr, "event %s did not arrive within 2 s\n", topic);
    if (ok)
        r->event_ok++;
    else
        r->event_fail++;
    return ok;
}

static void
s_checkpoint (s_run_t *r, int n)
{
    CHECK (tu_alive (r->broker.pid), "the broker died after %u fuzz messages (see %s)",
           r->sent[0] + r->sent[1] + r->sent[2], r->broker.log);
    for (int i = 0; i < 3; i++)
        s_sync (r, i);
    s_echo_ok (r, n);
    s_event_ok (r, n);
    s_drain_all (r);
    CHECK (r->echo_fail + r->event_fail < 3, "valid traffic failed %u + %u times; giving up", r->echo_fail,
           r->event_fail);
}

/* ---------------------------------------------------------------- odds and ends */

static long
s_rss_kb (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = strtol (line + 6, NULL, 10);
    if (f)
        fclose (f);
    return kb;
}

static char *
s_slurp (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return orr_strdup ("");
    size_t cap = 65536, len = 0;
    char *s = orr_zalloc (cap);
    size_t n;
    while ((n = fread (s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            s = orr_realloc (s, cap);
        }
    }
    s[len] = 0;
    fclose (f);
    return s;
}

static void
s_check_sanitizer_clean (const char *path)
{
    char *log = s_slurp (path);
    static const char *const reports[] = { "ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer" };
    for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++)
        CHECK (strstr (log, reports[i]) == NULL, "%s holds a sanitizer report (\"%s\")", path, reports[i]);
    free (log);
}

static zsock_t *
s_fuzz_sock (s_run_t *r, int index, int type, const char *addr, int offset)
{
    char ep[256];
    CHECK (orr_bus_endpoint (addr, offset, ep, sizeof ep) == 0);
    zsock_t *s = zsock_new (type);
    CHECK (s != NULL);
    zsock_set_linger (s, 0);
    zsock_set_sndhwm (s, 1000000);
    zsock_set_rcvhwm (s, 1000000);
    zsock_set_reconnect_ivl (s, 10);
    char mon[64];
    snprintf (mon, sizeof mon, "inproc://fuzz-monitor-%d", index);
    CHECK (zmq_socket_monitor (zsock_resolve (s), mon, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) == 0);
    r->mon[index] = zsock_new_pair (mon);   /* czmq closes it even when a CHECK exits */
    CHECK (r->mon[index] != NULL);
    /* no fixed routing id for the DEALER: a ROUTER ignores a reconnecting peer whose id it
     * still holds (and eats its first message), so each connection gets a fresh one, as
     * real clients and workers do; the broker forgets the old one's worker by purging it */
    CHECK (zsock_connect (s, "%s", ep) == 0);
    return s;
}

int
main (void)
{
    orr_signal_install ();
    int64_t started = orr_mono_ms ();
    const char *seed_env = getenv ("FUZZ_SEED");
    uint64_t seed = seed_env && *seed_env ? strtoull (seed_env, NULL, 0)
                                          : ((uint64_t) orr_now_us () ^ ((uint64_t) getpid () << 32));
    s_rng = seed;
    printf ("seed %llu (replay with FUZZ_SEED=%llu)\n", (unsigned long long) seed, (unsigned long long) seed);
    fflush (stdout);

    char *dir = tu_tmpdir ("bus-fuzz");
    static s_run_t run;   /* zeroed */
    s_run_t *r = &run;
    char max_message[64];
    snprintf (max_message, sizeof max_message, "ORRERY_BUS_MAX_MESSAGE=%d", S_MAX_MESSAGE);
    char *broker_env[] = { max_message, "ORRERY_BUS_REQUEST_TTL_MS=1000", NULL };
    tb_broker_start (&r->broker, dir, broker_env);
    pid_t worker = tb_worker_start (dir, r->broker.addr, "w1", NULL);

    orr_bus_opts_t opts;
    tb_opts (&opts, r->broker.addr, 2000, 2);
    r->client = orr_bus_client_new (&opts);
    const char *who = NULL;
    for (int i = 0; i < 100 && !who; i++)
        if (!(who = tb_echo (r->client, "warm-up")))
            orr_sleep_ms (50);
    CHECK (who && strcmp (who, "w1") == 0, "the echo worker never answered");

    const char *valid[] = { "valid.", NULL };
    r->sub = orr_events_sub_new (&opts, valid);
    CHECK (r->sub && orr_events_sub_wait_ready (r->sub, 5000) == 0, "subscriber got no tick");
    r->pub = orr_events_pub_new (&opts);
    CHECK (r->pub && orr_events_pub_wait_ready (r->pub, 5000) == 0, "publisher: the broker never subscribed");
    CHECK (s_event_ok (r, -1), "no valid event before fuzzing");

    /* the spy sees everything the broker publishes; wait for a tick so it is in place */
    char ep[256];
    CHECK (orr_bus_endpoint (r->broker.addr, 2, ep, sizeof ep) == 0);
    r->spy = zsock_new_sub (ep, "");
    zsock_set_rcvhwm (r->spy, 1000000);
    for (int64_t deadline = orr_mono_ms () + 5000; !r->ticks && orr_mono_ms () < deadline;) {
        zmq_pollitem_t item = { zsock_resolve (r->spy), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 100);
        s_drain_spy (r);
    }
    CHECK (r->ticks > 0, "the spy SUB saw no bus.tick");

    r->dealer = s_fuzz_sock (r, 0, ZMQ_DEALER, r->broker.addr, 0);
    r->xpub = s_fuzz_sock (r, 1, ZMQ_XPUB, r->broker.addr, 1);
    r->xsub = s_fuzz_sock (r, 2, ZMQ_XSUB, r->broker.addr, 2);
    for (int64_t deadline = orr_mono_ms () + 5000; !r->xpub_subs && orr_mono_ms () < deadline;) {
        zmq_pollitem_t item = { zsock_resolve (r->xpub), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 100);
        s_drain_fuzz_xpub (r);
    }
    CHECK (r->xpub_subs > 0, "the broker's XSUB never subscribed to the fuzz XPUB");
    long rss_before = s_rss_kb (r->broker.pid);
    int64_t fuzz_started = orr_mono_ms ();

    unsigned remaining[3] = { S_TO_ROUTER, S_TO_XSUB, S_TO_XPUB };
    unsigned sent = 0, next_check = S_CHECK_EVERY, next_big = S_BIG_EVERY / 2, next_drain = 100;
    int checkpoint = 0;
    while (sent < S_TOTAL) {
        uint32_t pick = s_below (S_TOTAL - sent);
        int target = pick < remaining[0] ? 0 : pick < remaining[0] + remaining[1] ? 1 : 2;
        bool big = sent >= next_big;
        if (big) {
            next_big += S_BIG_EVERY;
            r->big++;
        }
        unsigned n = 1;
        unsigned drops = r->drops[target], connects = r->connects[target];
        if (big)
            s_sync (r, target);   /* nothing sent before may be lost with the connection */
        if (target == 0)
            n = s_fuzz_router (r, big, sent >= S_FLOOD_AT && sent < S_FLOOD_AT + S_FLOOD_LEN, remaining[0]);
        else if (target == 1)
            s_fuzz_events_in (r, big);
        else
            s_fuzz_events_out (r, big);
        if (big && s_big_over) {
            r->over[target]++;
            s_wait_dropped (r, target, drops, connects);
        }
        r->sent[target] += n;
        remaining[target] -= n;
        sent += n;
        if (sent >= next_drain) {
            s_drain_all (r);
            next_drain = sent + 100;
        }
        if (sent >= next_check) {
            s_checkpoint (r, checkpoint++);
            next_check += S_CHECK_EVERY;
        }
    }
    int64_t fuzz_ms = orr_mono_ms () - fuzz_started;
    CHECK_EQ_INT (r->sent[0] + r->sent[1] + r->sent[2], S_TOTAL);

    /* the broker has read everything; it still serves */
    for (int i = 0; i < 3; i++)
        s_sync (r, i);
    /* requests to services without workers expire within the TTL (plus a heartbeat) */
    for (int64_t deadline = orr_mono_ms () + 3000; !r->c_err_expired && orr_mono_ms () < deadline;) {
        orr_sleep_ms (10);
        s_drain_all (r);
    }
    CHECK (tu_alive (r->broker.pid), "the broker died (see %s)", r->broker.log);
    unsigned echo_during = r->echo_ok, event_during = r->event_ok;
    for (int i = 0; i < 100; i++)
        CHECK (s_echo_ok (r, 100000 + i), "echo %d after the fuzzing failed", i);
    CHECK (s_event_ok (r, 100000), "an event after the fuzzing did not arrive");
    /* a heartbeat or two more, so the spy sees ticks from after the fuzzing too */
    unsigned ticks = r->ticks;
    for (int64_t deadline = orr_mono_ms () + 3000; r->ticks == ticks && orr_mono_ms () < deadline;) {
        orr_sleep_ms (20);
        s_drain_all (r);
    }
    CHECK (r->ticks > ticks, "no bus.tick after the fuzzing");
    long rss_after = s_rss_kb (r->broker.pid);
    CHECK (tu_alive (r->broker.pid), "the broker died (see %s)", r->broker.log);

    printf ("fuzz: %u messages (%u router, %u events-in, %u events-out) in %lld ms; %u with a big frame, %u of them "
            "over the limit; %u bus.tick spoofs; %u sync probes\n",
            S_TOTAL, r->sent[0], r->sent[1], r->sent[2], (long long) fuzz_ms, r->big,
            r->over[0] + r->over[1] + r->over[2], r->spoofs, r->syncs);
    printf ("the broker dropped the fuzz sockets %u, %u, %u times (router, events-in, events-out)\n", r->drops[0],
            r->drops[1], r->drops[2]);
    printf ("fuzz DEALER got: %u REPLY, %u ERROR (%u expired, %u table full, %u busy), %u worker REQUEST (%u answered), "
            "%u DISCONNECT, %u HEARTBEAT, %u other\n",
            r->c_reply, r->c_error, r->c_err_expired, r->c_err_full, r->c_err_busy, r->w_request, r->work_replies,
            r->w_disconnect, r->w_heartbeat, r->other_in);
    printf ("events checked: %u by the spy (+%u ticks, all from the broker), %u by the fuzz XSUB\n", r->events_seen,
            r->ticks, r->fuzz_xsub_events);
    printf ("valid traffic: %u/%u echo during + 100/100 after, %u/%u events; broker RSS %ld kB -> %ld kB\n",
            echo_during, S_TOTAL / S_CHECK_EVERY, r->event_ok, r->event_ok + r->event_fail, rss_before, rss_after);
    CHECK (r->echo_fail == 0 && r->event_fail == 0, "valid traffic failed: %u echo, %u events", r->echo_fail,
           r->event_fail);
    CHECK_EQ_INT (echo_during, S_TOTAL / S_CHECK_EVERY);
    CHECK_EQ_INT (event_during, S_TOTAL / S_CHECK_EVERY + 1);
    /* every frame over the limit cost the sender its connection, and nothing else did */
    for (int i = 0; i < 3; i++)
        CHECK (r->drops[i] == r->over[i], "fuzz socket %d: %u drops for %u frames over the limit", i, r->drops[i],
               r->over[i]);
    /* the structured mutations reached the deep paths, not just the header check */
    CHECK (r->c_err_expired > 0, "no fuzz request expired with an ERROR");
    CHECK (r->c_err_full > 0, "the service flood never filled the broker's table");
    CHECK (r->c_reply > 0, "no REPLY to a fuzz request (mmi.service, echo, fuzz worker)");
    CHECK (r->w_request > 0, "the broker never gave the fuzz worker a request");
    CHECK (r->w_disconnect > 0, "the broker never told a fuzz worker to disconnect");
    /* the broker holds no more than its bounded queues (ASan's quarantine keeps freed
     * memory on purpose, so only a plain build can tell) */
    CHECK (rss_after > 0 && (S_ASAN || rss_after < 256 * 1024), "the broker's RSS is %ld kB", rss_after);

    orr_events_pub_destroy (&r->pub);
    orr_events_sub_destroy (&r->sub);
    orr_bus_client_destroy (&r->client);
    orr_bus_opts_clear (&opts);
    zsock_destroy (&r->dealer);
    zsock_destroy (&r->xpub);
    zsock_destroy (&r->xsub);
    zsock_destroy (&r->spy);
    for (int i = 0; i < 3; i++)
        zsock_destroy (&r->mon[i]);
    int wstatus = tu_stop (worker, SIGTERM, 5000);
    CHECK (WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0, "the echo worker did not exit cleanly (status %#x)",
           (unsigned) wstatus);
    int bstatus = tu_stop (r->broker.pid, SIGTERM, 10000);
    CHECK (WIFEXITED (bstatus), "the broker died of signal %d on SIGTERM (see %s)",
           WIFSIGNALED (bstatus) ? WTERMSIG (bstatus) : -1, r->broker.log);
    CHECK (WEXITSTATUS (bstatus) == 0, "the broker exited %d (see %s)", WEXITSTATUS (bstatus), r->broker.log);
    s_check_sanitizer_clean (r->broker.log);
    char *wlog = orr_sprintf ("%s/worker-w1.log", dir);
    s_check_sanitizer_clean (wlog);
    free (wlog);

    /* the broker's own count: it read every events-in message we sent, short of those
     * over the limit (the sync probes and valid events included) */
    char *blog = s_slurp (r->broker.log);
    char *line = strstr (blog, "broker stopping:");
    CHECK (line != NULL, "the broker did not log its shutdown (see %s)", r->broker.log);
    unsigned long long st[9];
    CHECK (sscanf (line, "broker stopping: %llu requests, %llu replies, %llu errors, %llu malformed, %llu events in, "
                         "%llu out, %llu refused, %llu workers purged, %llu requeued",
                   &st[0], &st[1], &st[2], &st[3], &st[4], &st[5], &st[6], &st[7], &st[8]) == 9);
    printf ("broker: %llu requests, %llu replies, %llu errors, %llu malformed, %llu events in, %llu out, %llu refused, "
            "%llu workers purged, %llu requeued\n",
            st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8]);
    free (blog);
    CHECK_EQ_INT (st[4], r->sent[1] - r->over[1] + r->sync_events + r->event_ok + r->event_fail);
    CHECK (st[3] > 0 && st[6] > 0, "the broker counted nothing malformed");

    printf ("elapsed %lld ms\n", (long long) (orr_mono_ms () - started));
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
