/*  spawner: users' servers, from request to stop, through the local backend.
 *
 *  Lifecycle, kept in the server's record in Redis (docs/spawner.md):
 *
 *      stopped ──spawn──▶ queued ──take──▶ pending_spawn ──ready──▶ ready
 *         ▲                 │ stop            │ stop / fail          │ stop / dies
 *         │                 ▼                 ▼                      ▼
 *         └──────────── stopped ◀─────── pending_stop ◀──────────────┘
 *                                 failed (reason kept for the user)
 *
 *  Two threads per replica. The service loop (main.c) answers the bus methods spawn,
 *  stop and logs: each is one Lua script on the record (spawner_records.c), so it never
 *  waits for a server. The engine (spawner_engine.c) does the work: it takes the queue's
 *  head while fewer than MAX_CONCURRENT_SPAWNS are pending, asks the scheduler for a
 *  node, starts the process (spawner_local.c) with a token and an OAuth client from the
 *  auth service, probes it until it answers, has proxyctl add the route, and marks it
 *  ready; it watches the process until it stops or dies. The work on one server is done
 *  under a lease with a fencing token, renewed every RENEW_MS; a replica that dies
 *  loses its leases and a replica on the same node takes the servers over (adopting the
 *  running processes by pid and start time).
 *
 *  Files:  spawner_records.c  records, queue, leases (Lua)
 *          spawner_engine.c   the engine thread: take, place, start, probe, route, watch, stop, sweep
 *          spawner_local.c    processes: start with limits, signal, reap, cgroups
 *          spawner_env.c      the single-user environment (reference §9)
 *          spawner_profile.c  server profiles (user_options {"profile": slug})
 *          spawner_node_agent.c the host's node agent (heartbeats to the scheduler)
 *          main.c             settings and bus methods
 */
#ifndef SPAWNER_H
#define SPAWNER_H

#include "orr_bus.h"
#include "orr_config.h"
#include "spawner_k8s.h"
#include "spawner_profile.h"
#include "spawner_records.h"

#include <stdbool.h>
#include <stdint.h>

#define SPAWNER_LOG_TAIL_MAX (1 << 20)   /* largest logs reply */

/* The spawner's lifecycle settings, for its settings table (docs/configuration.md). */
#define SPAWNER_SETTINGS                                                                                               \
    { "SPAWNER_CMD", "jupyterhub-singleuser",                                                                          \
      "single-user server command (split on spaces; --allow-root is added when running as root)" },                   \
    { "SPAWNER_ARGS", "", "extra arguments after the command (split on spaces)" },                                      \
    { "SINGLEUSER_APP", NULL,                                                                                           \
      "JUPYTERHUB_SINGLEUSER_APP for servers (e.g. notebook.notebookapp.NotebookApp); unset = inherited" },              \
    { "MAX_CONCURRENT_SPAWNS", "64", "spawns pending at once across all replicas; more wait in the queue (0 = no limit)" }, \
    { "ALLOW_NAMED_SERVERS", "true", "users may have named servers besides the default one" },                         \
    { "NAMED_SERVER_LIMIT_PER_USER", "0", "named servers per user (0 = no limit)" },                                    \
    { "ACTIVE_SERVER_LIMIT", "0", "servers queued, pending or running at once (0 = no limit; beyond it 429)" },         \
    { "START_TIMEOUT_S", "60", "a start that has no process after this fails" },                                         \
    { "HTTP_TIMEOUT_S", "30", "a started server that does not answer HTTP within this fails" },                          \
    { "SPAWN_LEASE_MS", "10000", "lease on a server's work; a dead replica's servers are taken over after it" },        \
    { "STOP_SIGINT_MS", "10000", "stop: wait after SIGINT before SIGTERM" },                                             \
    { "STOP_SIGTERM_MS", "5000", "stop: wait after SIGTERM before SIGKILL" },                                             \
    { "STOP_SERVERS_ON_EXIT", "false", "stop this replica's servers when it is asked to exit (orrery up sets it)" },   \
    { "SERVER_PORT_MIN", "20000", "lowest port for local servers" },                                                    \
    { "SERVER_PORT_MAX", "32767", "highest port for local servers" },                                                   \
    { "SERVER_ROOT_DIR", NULL, "per-user directories (default STATE_DIR/users)" },                                     \
    { "SERVER_LOG_DIR", NULL, "per-server logs (default STATE_DIR/logs/servers)" },                                    \
    { "CGROUP_PARENT", "orrery", "cgroup below which each server gets its own (v2, else v1 memory/cpu/pids)" },         \
    { "STATE_DIR", "./.orrery", "state directory (orrery up sets it)" },                                                \
    { "HUB_URL", "http://127.0.0.1:8081", "the gateway as servers reach it: JUPYTERHUB_API_URL = HUB_URL + BASE_URL + hub/api" }, \
    { "BASE_URL", "/", "URL prefix of everything Orrery serves" },                                                      \
    { "PUBLIC_HOST", "", "JUPYTERHUB_HOST (only with subdomains)" }

typedef struct {
    char *redis_url;
    orr_bus_opts_t *bus;
    char *holder;                 /* "<replica>/<pid>": who holds leases */
    char *replica;
    char *node;                   /* this host's node name */
    char *stack_id;               /* marks this stack's processes (ORRERY_STACK) */
    char **cmd;                   /* command + args, NULL-terminated */
    char *singleuser_app;
    char *base_url;
    char *hub_api_url;
    char *public_host;
    char *root_dir;
    char *log_dir;
    int64_t max_concurrent;
    srec_limits_t limits;
    int64_t start_timeout_ms;
    int64_t http_timeout_ms;
    int64_t lease_ms;
    int64_t sigint_ms, sigterm_ms;
    bool stop_on_exit;
    int port_min, port_max;
    const spawner_profiles_t *profiles;
    spawner_k8s_t *k8s;           /* the Kubernetes backend; NULL = local processes */
} spawner_settings_t;

/* Reads the settings above (and the profiles' pointer) into out; 0, or -1 with the reason
 * in err. Caller frees with spawner_settings_clear. */
int spawner_settings_read (orr_config_t *config, const char *node, const spawner_profiles_t *profiles,
                           spawner_settings_t *out, char *err, size_t errlen);
void spawner_settings_clear (spawner_settings_t *s);

typedef struct spawner_engine_t spawner_engine_t;

/* Starts the engine thread. NULL when it cannot start (logged). */
spawner_engine_t *spawner_engine_start (const spawner_settings_t *settings);
/* Asks the engine to look at the queue and hand-overs now (thread-safe). */
void spawner_engine_poke (spawner_engine_t *self);
/* Stops the thread (stopping the servers first when STOP_SERVERS_ON_EXIT). */
void spawner_engine_destroy (spawner_engine_t **self_p);

#endif
