/*  A worker killed with SIGKILL while it holds a request: the client still gets its reply
 *  from another worker within 3 s (the broker requeues what a dead worker held). */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

static const char *s_bus;
static char s_who[64];
static int64_t s_answered_ms;

static void *
s_ask (void *arg)
{
    orr_bus_opts_t opts;
    /* one long attempt: the answer must come from the broker's requeue, not a retry */
    tb_opts (&opts, s_bus, 10000, 1);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    const char *who = tb_echo (client, "hold:holder");
    snprintf (s_who, sizeof s_who, "%s", who ? who : "(none)");
    s_answered_ms = orr_mono_ms ();
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    return NULL;
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("bus-kill");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    s_bus = b.addr;
    pid_t holder = tb_worker_start (dir, b.addr, "holder", NULL);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 2000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    CHECK (tb_echo (client, "ready?") != NULL, "holder never answered");

    pthread_t t;
    pthread_create (&t, NULL, s_ask, NULL);
    orr_sleep_ms (300);       /* the holder has it now, and sits on it */
    pid_t other = tb_worker_start (dir, b.addr, "other", NULL);
    orr_sleep_ms (300);
    int64_t killed_ms = orr_mono_ms ();
    tu_stop (holder, SIGKILL, 1000);
    pthread_join (t, NULL);
    int64_t took = s_answered_ms - killed_ms;
    printf ("reply from %s %lld ms after SIGKILL of the holder\n", s_who, (long long) took);
    CHECK_EQ_STR (s_who, "other");
    CHECK (took <= 3000, "reply took %lld ms", (long long) took);

    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    tb_worker_stop (other);
    tb_broker_stop (&b, SIGTERM);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
