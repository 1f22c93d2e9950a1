/*  bench_stack: what the scheduler benchmarks (bench/scheduler, bench/balance) share -- a
 *  private stack of real processes (redis-server, the orrery-bus broker, N orrery-scheduler
 *  replicas), synthetic node agents that publish node.heartbeat, and typed calls of the
 *  scheduler's place and nodes methods. Built on liborrery only, so the benchmarks do not
 *  depend on the test fixtures.
 */
#ifndef BENCH_STACK_H
#define BENCH_STACK_H

#include "orr_bus_client.h"
#include "orr_events.h"
#include "orrery/scheduler.pb-c.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BS_MiB (1024LL * 1024)
#define BS_GiB (1024LL * 1024 * 1024)
#define BS_MAX_REPLICAS 8

/* --- the process --------------------------------------------------------------------- */

/* Once, before anything else: signal handling (orr_signal), a scratch directory under
 * /tmp for the children's logs (removed at exit unless `keep`, or after a failure), the
 * directory holding orrery-bus and orrery-scheduler (NULL: next to this program), and an
 * exit handler that stops every child still running. */
void bs_init (const char *prog, const char *bin_dir, bool keep);
const char *bs_dir (void);
/* Prints the message, keeps the logs, exits 1 (the exit handler stops the children);
 * after SIGINT/SIGTERM, bs_exit_interrupted instead. */
void bs_die (const char *fmt, ...) __attribute__ ((format (printf, 1, 2), noreturn));
/* True once SIGINT/SIGTERM arrived. */
bool bs_interrupted (void);
/* Says so and exits with 128 + the signal (the exit handler stops the children). */
void bs_exit_interrupted (void) __attribute__ ((noreturn));
/* One line about the machine: cpus, model, kernel. */
void bs_machine_notes (void);
/* utime + stime of a process in clock ticks (all threads), 0 if unknown; pid 0 = us. */
uint64_t bs_cpu_ticks (pid_t pid);
/* Busy ticks of the whole machine (/proc/stat: everything but idle and iowait). */
uint64_t bs_system_busy_ticks (void);
/* Context switches (voluntary + involuntary) of every thread of a process so far; pid 0 =
 * us. A blocking round trip costs one on each side, so this counts wake-ups. */
uint64_t bs_ctx_switches (pid_t pid);

/* --- the stack ------------------------------------------------------------------------ */

typedef struct {
    pid_t redis, broker;
    pid_t sched[BS_MAX_REPLICAS];
    int replicas;
    char redis_url[64];
    char bus[64];
    char broker_log[PATH_MAX];
    orr_bus_opts_t opts;       /* client options for `bus` */
    orr_events_pub_t *pub;     /* the synthetic node agents' publisher */
} bs_stack_t;

/* Starts redis-server and the broker on free ports below 32768, then `replicas` scheduler
 * replicas with `sched_env` ("K=V", NULL-terminated, may be NULL), and waits until every
 * replica has registered with the broker. Dies on failure. */
void bs_stack_start (bs_stack_t *st, int replicas, char *const *sched_env);
/* Stops the schedulers (SIGTERM), the broker and redis; logs stay in bs_dir(). */
void bs_stack_stop (bs_stack_t *st);
/* A client of the stack's bus (one per thread). */
orr_bus_client_t *bs_client (bs_stack_t *st);

/* --- node agents and calls ---------------------------------------------------------- */

typedef struct {
    char name[32];
    int64_t cpu_millis, memory_bytes;
    int32_t servers;          /* 0 = no limit on the count */
} bs_node_t;

/* Publishes node.heartbeat for every node (paced, so no ZeroMQ queue overflows) and
 * again for those the scheduler's `nodes` method does not yet list as ready, until all
 * are; returns the milliseconds it took, or -1 when interrupted (the caller closes its
 * client, then bs_exit_interrupted). Dies after `timeout_ms`. */
int64_t bs_register_nodes (bs_stack_t *st, orr_bus_client_t *client, const bs_node_t *nodes, size_t n,
                           int timeout_ms);

/* scheduler.place. Returns the bus status (200 on success); on 200 *out is the unpacked
 * result (free with orrery__place_result__free_unpacked), else err holds the reason. */
int bs_place (orr_bus_client_t *client, const char *reservation, const char *group, const char *profile,
              int64_t cpu_millis, int64_t memory_bytes, Orrery__PlaceResult **out, char *err, size_t errlen);
/* scheduler.nodes (every node). Same conventions; free with orrery__node_list__free_unpacked. */
int bs_nodes (orr_bus_client_t *client, Orrery__NodeList **out, char *err, size_t errlen);

#endif
