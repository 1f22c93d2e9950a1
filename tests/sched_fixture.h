/*  sched_fixture: the real scheduler for tests -- started as a child process against a
 *  real redis-server and broker -- plus synthetic node agents (they publish node.heartbeat,
 *  as any node agent may) and typed calls of its bus methods.
 */
#ifndef SCHED_FIXTURE_H
#define SCHED_FIXTURE_H

#include "bus_fixture.h"
#include "orr_bus_client.h"
#include "orr_events.h"
#include "orrery/scheduler.pb-c.h"

#include <stdint.h>

#define TS_GiB (1024LL * 1024 * 1024)
#define TS_MiB (1024LL * 1024)

/* Starts orrery-scheduler `replica` (extra_env "K=V" entries may be NULL). */
pid_t ts_scheduler_start (const char *dir, const char *bus, const char *redis_url, const char *replica,
                          char *const *extra_env);

typedef struct {
    const char *name;
    int64_t cpu_millis, memory_bytes, gpus, servers;
    const char *labels;       /* "k=v,k=v" or NULL */
    const char *taints;       /* "k=v:Effect,..." or NULL */
} ts_node_t;

/* Publishes one heartbeat for the node. */
void ts_heartbeat (orr_events_pub_t *pub, const ts_node_t *node);
/* Heartbeats every node until the scheduler lists all of them ready (CHECKs, 20 s). */
void ts_register_nodes (orr_events_pub_t *pub, orr_bus_client_t *client, const ts_node_t *nodes, size_t n);

typedef struct {
    const char *reservation;
    int64_t cpu_millis, memory_bytes, gpus;
    const char *profile;
    const char *group;
    const char *selector;     /* "k=v,..." or NULL */
    const char *tolerations;  /* "k=v:Effect" | "k:Exists" ... or NULL */
} ts_place_t;

/* The bus status of the call (200 on success); *out unpacked (caller frees with
 * orrery__place_result__free_unpacked) when 200; err holds the error otherwise. */
int ts_place (orr_bus_client_t *client, const ts_place_t *p, Orrery__PlaceResult **out, char *err, size_t errlen);
int ts_release (orr_bus_client_t *client, const char *reservation, Orrery__ReleaseResult **out);
int ts_bind (orr_bus_client_t *client, const char *reservation);
/* `node` NULL for all. */
int ts_nodes (orr_bus_client_t *client, const char *node, Orrery__NodeList **out);
int ts_cordon (orr_bus_client_t *client, const char *node, bool cordon, const char *reason);

#endif
