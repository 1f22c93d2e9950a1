/*  Two broker replicas: killing either one loses no request (clients retry on the other).
 *
 *  Four client threads send requests without pause while the test SIGKILLs broker A,
 *  restarts it, then SIGKILLs broker B. Every request must be answered. */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#define CLIENTS 4

static char s_bus[160];
static atomic_int s_stop;
static atomic_int s_ok, s_failed;

static void *
s_client (void *arg)
{
    orr_bus_opts_t opts;
    tb_opts (&opts, s_bus, 1000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    while (!atomic_load (&s_stop)) {
        if (tb_echo (client, "x"))
            atomic_fetch_add (&s_ok, 1);
        else
            atomic_fetch_add (&s_failed, 1);
    }
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    return NULL;
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-two");
    tb_broker_t a = { 0 }, b = { 0 };
    tb_broker_start (&a, dir, NULL);
    tb_broker_start (&b, dir, NULL);
    snprintf (s_bus, sizeof s_bus, "%s,%s", a.addr, b.addr);
    pid_t w1 = tb_worker_start (dir, s_bus, "w1", NULL);
    pid_t w2 = tb_worker_start (dir, s_bus, "w2", NULL);
    orr_sleep_ms (1000);    /* both workers registered on both brokers */

    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        pthread_create (&t[i], NULL, s_client, NULL);
    orr_sleep_ms (1000);
    int before_a = atomic_load (&s_ok);
    tb_broker_stop (&a, SIGKILL);
    orr_sleep_ms (2000);
    tb_broker_start (&a, dir, NULL);
    orr_sleep_ms (2000);    /* workers re-register on A */
    int before_b = atomic_load (&s_ok);
    tb_broker_stop (&b, SIGKILL);
    orr_sleep_ms (2000);
    atomic_store (&s_stop, 1);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join (t[i], NULL);
    int ok = atomic_load (&s_ok), failed = atomic_load (&s_failed);
    printf ("requests answered: %d (%d before A died, %d before B died), lost: %d\n", ok, before_a, before_b, failed);
    CHECK_EQ_INT (failed, 0);
    CHECK (before_a > 0 && before_b > before_a && ok > before_b, "traffic did not flow in every phase");

    tb_worker_stop (w1);
    tb_worker_stop (w2);
    tb_broker_stop (&a, SIGTERM);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
