/*  Three worker replicas of one service all get work from one client: of 300 requests
 *  each worker serves at least 20%. */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <signal.h>
#include <string.h>

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-lru");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    const char *names[3] = { "w0", "w1", "w2" };
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = tb_worker_start (dir, b.addr, names[i], NULL);

    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 2000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    /* wait until all three answered once (they register within a heartbeat) */
    int seen[3] = { 0 };
    for (int i = 0; i < 200 && !(seen[0] && seen[1] && seen[2]); i++) {
        const char *who = tb_echo (client, "warm-up");
        for (int k = 0; who && k < 3; k++)
            if (strcmp (who, names[k]) == 0)
                seen[k] = 1;
        orr_sleep_ms (10);
    }
    CHECK (seen[0] && seen[1] && seen[2], "not every worker registered");

    int served[3] = { 0 };
    for (int i = 0; i < 300; i++) {
        const char *who = tb_echo (client, "hello");
        CHECK (who != NULL, "request %d got no reply", i);
        for (int k = 0; k < 3; k++)
            if (strcmp (who, names[k]) == 0)
                served[k]++;
    }
    printf ("served: w0=%d w1=%d w2=%d of 300\n", served[0], served[1], served[2]);
    for (int k = 0; k < 3; k++)
        CHECK (served[k] >= 60, "%s served %d of 300 (< 20%%)", names[k], served[k]);

    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    for (int i = 0; i < 3; i++)
        tb_worker_stop (w[i]);
    tb_broker_stop (&b, SIGTERM);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
