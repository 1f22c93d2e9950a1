/*  spawner_node_agent: a spawner replica as the node agent of its host.
 *
 *  It publishes node.heartbeat (orrery.NodeHeartbeat) every NODE_HEARTBEAT_MS: the host's
 *  capacity (configured, or detected at start), its live usage, labels and taints. The
 *  scheduler registers the node on its first heartbeat and takes it for lost when they
 *  stop. Names: node_agent_* for the agent and its parsers, node_* for the values they
 *  produce.
 *
 *  The parsers below are pure functions over text, and the functions that read files take
 *  a root directory ("" for the real one), so that tests can give them hand-made input.
 */
#ifndef SPAWNER_NODE_AGENT_H
#define SPAWNER_NODE_AGENT_H

#include "orr_config.h"
#include "orr_service.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The agent's settings, for the spawner's settings table (docs/configuration.md). */
#define NODE_AGENT_SETTINGS                                                                                            \
    { "NODE_NAME", NULL, "this host's node name for the scheduler (default: the host name)" },                         \
    { "NODE_CPU_MILLIS", "0",                                                                                          \
      "CPU the node offers, 1000 = one core; 0 = detect: online CPUs, reduced by the cgroup CPU quota if any" },       \
    { "NODE_MEMORY_BYTES", "0",                                                                                        \
      "memory the node offers in bytes; 0 = detect: MemTotal, reduced by the cgroup memory limit if lower" },          \
    { "NODE_GPUS", "0", "GPUs the node offers; 0 = detect: the count of /dev/nvidiaN devices" },                      \
    { "NODE_MAX_SERVERS", "100", "servers the node runs at most (0 = 100)" },                                          \
    { "NODE_LABELS", NULL, "labels for node selectors: key=value,key=value" },                                        \
    { "NODE_TAINTS", NULL,                                                                                             \
      "taints: key=value:NoSchedule,key2=:PreferNoSchedule (effect NoSchedule or PreferNoSchedule)" },                \
    { "NODE_HEARTBEAT_MS", "5000", "how often node.heartbeat is published (100..60000)" }

#define NODE_HEARTBEAT_MS_MIN 100
#define NODE_HEARTBEAT_MS_MAX 60000
#define NODE_MAX_SERVERS_DEFAULT 100
/* Longest node name, label or taint key or value (a DNS name's length). */
#define NODE_TOKEN_MAX 253
/* Most labels and taints a node may carry: the scheduler ignores a heartbeat with more
 * (its SCHED_LABELS_MAX and SCHED_TAINTS_MAX), so the agent refuses them at start. */
#define NODE_LABELS_MAX 64
#define NODE_TAINTS_MAX 64

typedef struct {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int32_t gpus;
    int32_t servers;
} node_resources_t;

typedef struct {
    char *key;
    char *value;
} node_label_t;

typedef struct {
    char *key;
    char *value;
    char *effect;             /* "NoSchedule" or "PreferNoSchedule" */
} node_taint_t;

typedef struct {
    node_label_t *items;
    size_t count;
} node_labels_t;

typedef struct {
    node_taint_t *items;
    size_t count;
} node_taints_t;

/* The /proc/meminfo figures the agent uses, in bytes. */
typedef struct {
    int64_t total_bytes;
    int64_t available_bytes;  /* MemAvailable, or MemFree + Buffers + Cached on kernels without it */
} node_meminfo_t;

/* The "cpu" line of /proc/stat, in jiffies. */
typedef struct {
    uint64_t busy;            /* user + nice + system + irq + softirq + steal */
    uint64_t total;           /* busy + idle + iowait (guest time is already inside user and nice) */
} node_cpu_times_t;

/* What the settings say, validated; a zero capacity field means "detect". */
typedef struct {
    char *name;               /* never NULL: NODE_NAME or the host name */
    node_resources_t capacity;
    node_labels_t labels;
    node_taints_t taints;
    int heartbeat_ms;
} node_settings_t;

/* --- parsers (pure) ------------------------------------------------------------------- */

/* "key=value,key=value" (spaces around items, keys and values are ignored; a value may be
 * empty). Keys are 1..253 of [A-Za-z0-9._/-], values 0..253 of [A-Za-z0-9._-]; no empty
 * item, no repeated key, at most NODE_LABELS_MAX. NULL or blank text is no labels. 0, or
 * -1 with the reason in err and out empty. Clear with node_labels_clear. */
int node_agent_parse_labels (const char *text, node_labels_t *out, char *err, size_t errlen);
void node_labels_clear (node_labels_t *labels);

/* "key=value:Effect,key2=:Effect" ("key:Effect" = an empty value); Effect is NoSchedule
 * or PreferNoSchedule; keys and values as for labels; no repeated key+effect; at most
 * NODE_TAINTS_MAX. */
int node_agent_parse_taints (const char *text, node_taints_t *out, char *err, size_t errlen);
void node_taints_clear (node_taints_t *taints);

/* The text of /proc/meminfo. 0, or -1 when MemTotal or the available figure is missing
 * or malformed. */
int node_agent_parse_meminfo (const char *text, node_meminfo_t *out);

/* Text of /proc/stat (only its "cpu " line is read). 0, or -1 when it is missing or has
 * fewer than the four classic fields. */
int node_agent_parse_proc_stat (const char *text, node_cpu_times_t *out);

/* CPU used between two samples, scaled to the capacity: busy delta / total delta ×
 * capacity_millis, rounded. 0 when the total did not grow (same sample, counters reset). */
int64_t node_agent_cpu_used_millis (const node_cpu_times_t *prev, const node_cpu_times_t *cur, int64_t capacity_millis);

/* cgroup limits. Each returns 1 with the limit in *out, 0 for "no limit", -1 malformed.
 * cpu.max (v2): "QUOTA PERIOD" or "max PERIOD" (the period may be left out: 100000).
 * A quota gives quota × 1000 / period millis, at least 1. */
int node_agent_parse_cpu_max (const char *text, int64_t *millis);
/* cpu.cfs_quota_us and cpu.cfs_period_us (v1): a quota of -1 is no limit. */
int node_agent_parse_cfs_quota (const char *quota_text, const char *period_text, int64_t *millis);
/* memory.max (v2, "max" = no limit) or memory.limit_in_bytes (v1, where "unlimited" reads
 * as a number near 2^63: anything from 2^62 up is taken as no limit). */
int node_agent_parse_memory_limit (const char *text, int64_t *bytes);

/* Where this process's cgroup of one hierarchy is: `controller` NULL = the v2 (unified)
 * hierarchy, else the v1 hierarchy holding that controller ("cpu", "memory"). From the
 * texts of /proc/self/mountinfo and /proc/self/cgroup: the mount point (`mount`) and the
 * cgroup's path below it (`rel`, "/" for the mount point itself). 0, or -1 when the
 * hierarchy is not mounted or the process is not in it. */
int node_agent_cgroup_dir (const char *mountinfo, const char *proc_cgroup, const char *controller, char *mount,
                           size_t mount_size, char *rel, size_t rel_size);

/* A name in /dev that is a GPU: nvidia followed by digits only (not nvidiactl, nvidia-uvm). */
bool node_agent_is_gpu_device (const char *name);

/* A capacity setting: blank or "0" = 0 (detect); otherwise 1..max. 0, or -1 when the text
 * is not a whole number in that range. */
int node_agent_parse_capacity (const char *text, int64_t max, int64_t *out);

/* --- reading the host (root: "" for this host, or a directory standing for "/") ------ */

/* The smallest CPU quota (millis) along the path from this process's cgroup up to its
 * hierarchy's mount: v2's cpu.max when the v2 hierarchy has that file at any level, else
 * v1's cpu.cfs_quota_us / cpu.cfs_period_us. -1 when no limit applies or nothing is readable. */
int64_t node_agent_cgroup_cpu_limit (const char *root);
/* The same for memory: v2's memory.max, else v1's memory.limit_in_bytes. -1 = no limit. */
int64_t node_agent_cgroup_memory_limit (const char *root);
/* Entries of dev_dir that are GPUs (node_agent_is_gpu_device); 0 when it is unreadable. */
int node_agent_count_gpus (const char *dev_dir);

/* Reads and checks the NODE_* settings. 0, or -1 with the reason (naming the setting) in err. */
int node_agent_read_settings (orr_config_t *config, node_settings_t *out, char *err, size_t errlen);
void node_settings_clear (node_settings_t *settings);

/* Fills each zero capacity field of `capacity` by detection on this host (servers: 100).
 * `how` (may be NULL) gets a one-line account for the log. 0, or -1 when a figure that
 * must be detected cannot be (no /proc/meminfo). */
int node_agent_detect_capacity (node_resources_t *capacity, char *how, size_t how_size);

/* --- the agent ------------------------------------------------------------------------ */

typedef struct node_agent_t node_agent_t;

/* Reads the settings, detects capacity, publishes the first heartbeat and registers the
 * timer on `svc`. 0 with *agent_p set, or the exit code with the reason logged: 2 for a
 * bad setting, 1 when capacity cannot be detected. */
int node_agent_start (orr_service_t *svc, orr_config_t *config, node_agent_t **agent_p);
void node_agent_destroy (node_agent_t **agent_p);

/* The node name the agent reports (NODE_NAME or the host name), for the spawner's own
 * records. Owned by the agent. */
const char *node_agent_node_name (const node_agent_t *self);
/* What this node's servers hold, reported as usage.servers and usage.gpus from the next
 * heartbeat on (both 0 until the spawner calls this). */
void node_agent_set_servers_usage (node_agent_t *self, int32_t servers, int32_t gpus);

#endif
