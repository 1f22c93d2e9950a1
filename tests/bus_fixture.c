/*  bus_fixture: see bus_fixture.h. */
#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_util.h"

#include <signal.h>
#include <sys/wait.h>
#include <string.h>

static int
s_free_port3 (void)
{
    for (int i = 0; i < 100; i++) {
        int p = orr_free_port ();
        if (p > 0 && p + 2 < 32768 && orr_port_free (p + 1) && orr_port_free (p + 2))
            return p;
    }
    return -1;
}

void
tb_broker_start (tb_broker_t *b, const char *dir, char *const *extra_env)
{
    if (!b->port)
        b->port = s_free_port3 ();
    CHECK (b->port > 0);
    snprintf (b->addr, sizeof b->addr, "tcp://127.0.0.1:%d", b->port);
    snprintf (b->log, sizeof b->log, "%s/broker-%d.log", dir, b->port);
    char *bind = orr_sprintf ("ORRERY_BUS_BIND=%s", b->addr);
    char *bus = orr_sprintf ("ORRERY_BUS=%s", b->addr);
    char *replica = orr_sprintf ("ORRERY_REPLICA_ID=broker-%d", b->port);
    char *env[16] = { bind, bus, replica };
    size_t n = 3;
    for (char *const *e = extra_env; e && *e && n < 15; e++)
        env[n++] = *e;
    env[n] = NULL;
    char *path = tu_bin ("orrery-bus");
    char *argv[] = { path, NULL };
    b->pid = tu_spawn (argv, env, b->log);
    CHECK (tu_wait_port (b->port + 2, 5000) == 0, "broker on %d did not bind (see %s)", b->port, b->log);
    /* the env strings must outlive the exec only; the child has them now */
    free (path);
    free (bind);
    free (bus);
    free (replica);
}

void
tb_broker_stop (tb_broker_t *b, int sig)
{
    int status = tu_stop (b->pid, sig, 5000);
    /* an orderly stop must exit 0: under the sanitizers a leak or UB report makes it not */
    if (sig == SIGTERM)
        CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "broker %d exited with status %d (see %s)", b->port,
               status, b->log);
    b->pid = 0;
}

void
tb_worker_stop (pid_t pid)
{
    int status = tu_stop (pid, SIGTERM, 5000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "worker %d exited with status %d", (int) pid, status);
}

pid_t
tb_worker_start (const char *dir, const char *bus, const char *replica, char *const *extra_env)
{
    char *busv = orr_sprintf ("ORRERY_BUS=%s", bus);
    char *rep = orr_sprintf ("ORRERY_REPLICA_ID=%s", replica);
    char *log = orr_sprintf ("%s/worker-%s.log", dir, replica);
    char *env[16] = { busv, rep };
    size_t n = 2;
    for (char *const *e = extra_env; e && *e && n < 15; e++)
        env[n++] = *e;
    env[n] = NULL;
    char *path = tu_bin ("orrery-test-echo-worker");
    char *argv[] = { path, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    free (path);
    free (busv);
    free (rep);
    free (log);
    return pid;
}

void
tb_opts (orr_bus_opts_t *opts, const char *bus, int timeout_ms, int retries)
{
    CHECK (orr_bus_opts_init (opts, bus) == 0);
    opts->timeout_ms = timeout_ms;
    opts->retries = retries;
}

const char *
tb_echo (void *client, const char *body)
{
    static char who[128];
    char *reply = NULL, err[256];
    size_t len;
    orr_bus_status_t st = orr_bus_client_request (client, "echo", NULL, body, strlen (body), &reply, &len, err, sizeof err);
    if (st != ORR_BUS_OK) {
        free (reply);
        return NULL;
    }
    char *bar = memchr (reply, '|', len);
    snprintf (who, sizeof who, "%.*s", bar ? (int) (bar - reply) : (int) len, reply);
    free (reply);
    return who;
}
