/*  The broker killed and restarted: workers re-register and requests succeed again within
 *  5 s, with no restart of workers or clients. */
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
    char *dir = tu_tmpdir ("bus-restart");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    pid_t w1 = tb_worker_start (dir, b.addr, "w1", NULL);
    pid_t w2 = tb_worker_start (dir, b.addr, "w2", NULL);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 500, 1);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    const char *who = NULL;
    for (int i = 0; i < 50 && !who; i++)
        who = tb_echo (client, "before");
    CHECK (who != NULL, "no reply before the restart");

    tb_broker_stop (&b, SIGKILL);
    int64_t restarted_ms = orr_mono_ms ();
    tb_broker_start (&b, dir, NULL);   /* same port */
    int64_t ok_ms = 0;
    while (orr_mono_ms () - restarted_ms < 10000) {
        if (tb_echo (client, "after")) {
            ok_ms = orr_mono_ms ();
            break;
        }
    }
    CHECK (ok_ms, "no request succeeded within 10 s of the restart");
    printf ("first success %lld ms after the broker restarted\n", (long long) (ok_ms - restarted_ms));
    CHECK (ok_ms - restarted_ms <= 5000);
    /* both workers are back within the same 5 s, not just one */
    int seen1 = 0, seen2 = 0;
    while (!(seen1 && seen2) && orr_mono_ms () - restarted_ms <= 5000) {
        who = tb_echo (client, "both?");
        seen1 |= who && strcmp (who, "w1") == 0;
        seen2 |= who && strcmp (who, "w2") == 0;
        orr_sleep_ms (5);
    }
    printf ("both workers answering %lld ms after the restart\n", (long long) (orr_mono_ms () - restarted_ms));
    CHECK (seen1 && seen2, "a worker did not re-register within 5 s");
    CHECK (tu_alive (w1) && tu_alive (w2), "a worker was restarted");

    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    tb_worker_stop (w1);
    tb_worker_stop (w2);
    tb_broker_stop (&b, SIGTERM);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
