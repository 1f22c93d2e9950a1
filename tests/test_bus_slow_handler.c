/*  A handler slower than the broker's liveness window (3 heartbeats = 1.5 s by default)
 *  is not taken for a dead worker: the worker keeps heartbeating while it runs, so the
 *  broker neither purges it nor hands its request to another replica, and the handler
 *  runs exactly once. */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <signal.h>
#include <string.h>

static int
s_count (const char *path, const char *needle)
{
    FILE *f = fopen (path, "r");
    char line[2048];
    int n = 0;
    while (f && fgets (line, sizeof line, f))
        n += strstr (line, needle) != NULL;
    if (f)
        fclose (f);
    return n;
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-slow");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    pid_t slow = tb_worker_start (dir, b.addr, "slow", NULL);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 10000, 1);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    CHECK (tb_echo (client, "warm-up") != NULL);
    pid_t other = tb_worker_start (dir, b.addr, "other", NULL);
    orr_sleep_ms (300);     /* "other" is registered: a requeue would have somewhere to go */

    int64_t t0 = orr_mono_ms ();
    char *reply = NULL, err[256];
    size_t len;
    /* whichever replica takes it sleeps 4 s, well past the 1.5 s liveness window */
    CHECK (orr_bus_client_request (client, "echo", NULL, "sleep:4000", 10, &reply, &len, err, sizeof err) == ORR_BUS_OK,
           "%s", err);
    int64_t took = orr_mono_ms () - t0;
    printf ("slow reply after %lld ms: %.*s\n", (long long) took, (int) len, reply);
    CHECK (took >= 4000 && took < 6000, "took %lld ms", (long long) took);
    free (reply);

    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    tb_worker_stop (slow);
    tb_worker_stop (other);
    tb_broker_stop (&b, SIGTERM);
    char *slow_log = orr_sprintf ("%s/worker-slow.log", dir), *other_log = orr_sprintf ("%s/worker-other.log", dir);
    int purged = s_count (b.log, "stopped heartbeating");
    /* "slow" served the warm-up, and the slow request ran on one of the two: two handler
     * runs in all, or the slow request was handed out twice */
    int total = s_count (slow_log, "\"served 1\"") + s_count (slow_log, "\"served 2\"") * 2
                + s_count (other_log, "\"served 1\"") + s_count (other_log, "\"served 2\"") * 2;
    printf ("workers purged by the broker: %d; handler runs in all: %d (2 expected)\n", purged, total);
    CHECK_EQ_INT (purged, 0);
    CHECK_EQ_INT (total, 2);
    free (slow_log);
    free (other_log);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
