/*  Two subscribers each receive all of 10,000 published events, in order per publisher.
 *  Two publishers interleave 5,000 events each; each subscriber must see both sequences
 *  complete and in order, stamped with the publisher's principal. */
#include "bus_fixture.h"
#include "orr_events.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <signal.h>
#include <string.h>

#define PER_PUBLISHER 5000

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-events");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 1000, 1);

    const char *all[] = { "test.", NULL };
    orr_events_sub_t *sub[2] = { orr_events_sub_new (&opts, all), orr_events_sub_new (&opts, all) };
    const char *other[] = { "other.", NULL };
    orr_events_sub_t *filtered = orr_events_sub_new (&opts, other);
    for (int i = 0; i < 2; i++)
        CHECK (orr_events_sub_wait_ready (sub[i], 5000) == 0, "subscriber %d got no tick", i);
    CHECK (orr_events_sub_wait_ready (filtered, 5000) == 0);
    orr_events_pub_t *pub[2] = { orr_events_pub_new (&opts), orr_events_pub_new (&opts) };
    for (int i = 0; i < 2; i++)
        CHECK (orr_events_pub_wait_ready (pub[i], 5000) == 0, "publisher %d: broker never subscribed", i);
    CHECK (orr_events_publish (pub[0], "", "x", 1) == -1, "empty topic accepted");
    CHECK (orr_events_publish (pub[0], "bad topic", "x", 1) == -1, "topic with a space accepted");

    int next[2][2] = { { 0 } };   /* [subscriber][publisher] next expected sequence */
    int received[2] = { 0 };
    for (int i = 0; i < PER_PUBLISHER; i++)
        for (int p = 0; p < 2; p++) {
            char body[32];
            int n = snprintf (body, sizeof body, "%d:%d", p, i);
            CHECK (orr_events_publish (pub[p], p ? "test.b" : "test.a", body, (size_t) n) == 0);
            /* drain as we go so no queue anywhere has to hold all 10,000 */
            for (int s = 0; s < 2; s++) {
                orr_event_t ev;
                while (orr_events_recv (sub[s], &ev, 0) == 1) {
                    int pp, seq;
                    CHECK (sscanf ((char *) zframe_data (ev.body), "%d:%d", &pp, &seq) == 2);
                    CHECK (seq == next[s][pp], "subscriber %d: publisher %d sent %d, expected %d", s, pp, seq, next[s][pp]);
                    CHECK_EQ_STR (ev.principal, "anonymous");
                    next[s][pp]++;
                    received[s]++;
                    orr_event_clear (&ev);
                }
            }
        }
    for (int s = 0; s < 2; s++) {
        int64_t deadline = orr_mono_ms () + 10000;
        while (received[s] < 2 * PER_PUBLISHER && orr_mono_ms () < deadline) {
            orr_event_t ev;
            if (orr_events_recv (sub[s], &ev, 100) == 1) {
                int pp, seq;
                CHECK (sscanf ((char *) zframe_data (ev.body), "%d:%d", &pp, &seq) == 2);
                CHECK (seq == next[s][pp], "subscriber %d: publisher %d sent %d, expected %d", s, pp, seq, next[s][pp]);
                next[s][pp]++;
                received[s]++;
                orr_event_clear (&ev);
            }
        }
        printf ("subscriber %d received %d of %d\n", s, received[s], 2 * PER_PUBLISHER);
        CHECK_EQ_INT (received[s], 2 * PER_PUBLISHER);
    }
    orr_event_t ev;
    CHECK (orr_events_recv (filtered, &ev, 200) == 0, "a subscriber to other.* got %s", ev.topic);

    for (int i = 0; i < 2; i++) {
        orr_events_pub_destroy (&pub[i]);
        orr_events_sub_destroy (&sub[i]);
    }
    orr_events_sub_destroy (&filtered);
    orr_bus_opts_clear (&opts);
    tb_broker_stop (&b, SIGTERM);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
