/*  bus_fixture: real brokers and echo workers for the bus tests.
 *
 *  Brokers are the built orrery-bus; workers the built orrery-test-echo-worker; both run
 *  as child processes so a test can SIGKILL them. Ports are free ones below 32768 (a
 *  broker needs three in a row).
 */
#ifndef BUS_FIXTURE_H
#define BUS_FIXTURE_H

#include "orr_bus.h"
#include "testutil.h"

typedef struct {
    pid_t pid;
    int port;
    char addr[64];
    char log[256];
} tb_broker_t;

/* Picks a port if b->port is 0; extra_env "K=V" entries may be NULL. Waits until bound. */
void tb_broker_start (tb_broker_t *b, const char *dir, char *const *extra_env);
void tb_broker_stop (tb_broker_t *b, int sig);

/* Starts an echo worker named `replica` on the comma-separated brokers. */
pid_t tb_worker_start (const char *dir, const char *bus, const char *replica, char *const *extra_env);

/* SIGTERM, and CHECKs the worker exited 0 (sanitizer reports make it not). */
void tb_worker_stop (pid_t pid);

/* Client options for `bus` with the given per-attempt timeout and attempts. */
void tb_opts (orr_bus_opts_t *opts, const char *bus, int timeout_ms, int retries);

/* Sends one echo request; returns the replica that answered (static buffer) or NULL. */
const char *tb_echo (void *client, const char *body);

#endif
