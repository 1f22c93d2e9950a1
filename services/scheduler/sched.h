/*  sched: the scheduler's data structures and the functions over them.
 *
 *  The scheduler places a server on a node the way kube-scheduler places a pod: filter
 *  (which nodes can take it) → score (0–100 per function, weighted, summed) → reserve (one
 *  Redis Lua call that re-checks the fit) → the caller binds when the server has started.
 *  Unlike kube-scheduler, which runs one active leader, any number of replicas place at
 *  once: each keeps a cache of the nodes (a hint, refreshed from Redis and from events),
 *  and the reservation in Redis is the only authority. A replica that loses a race learns
 *  the node's true sums from the refused reservation and moves on to its next candidate;
 *  it refuses a request only after re-reading every node from Redis and finding none
 *  with room.
 *
 *  The pure parts (filters, scores, sampling, profiles) take plain structs and know
 *  nothing of Redis or the bus, so the unit tests check them against hand-computed values
 *  (tests/test_sched_units.c).
 *
 *  Files:  sched_filter.c   filters and the "0/N nodes are available: ..." reason
 *          sched_score.c    scores and their weighted sum
 *          sched_sample.c   how many feasible nodes to look for (percentageOfNodesToScore)
 *          sched_profile.c  scheduling profiles (weights) from configuration
 *          sched_cache.c    a replica's cache of the node inventory
 *          sched_store.c    the node and reservation keys in Redis, all writes by Lua
 *          sched_place.c    place: the whole algorithm over the above
 *          main.c           settings, bus methods, events, the periodic sweep
 */
#ifndef SCHED_H
#define SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (explicit, enforced where a node agent's input arrives). */
#define SCHED_NAME_MAX 253        /* node names, like a Kubernetes node name */
#define SCHED_LABELS_MAX 64       /* per node, and per request's node selector */
#define SCHED_TAINTS_MAX 64       /* per node, and tolerations per request (the node agent allows 64) */
#define SCHED_LABEL_KEY_MAX 253
#define SCHED_LABEL_VALUE_MAX 253
#define SCHED_RESERVATION_MAX 512 /* bytes of a reservation id */
#define SCHED_MAX_MAX_NODES 1000000

#define SCHED_SCORE_MAX 100

typedef struct {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t gpus;
    int64_t servers;
} sched_resources_t;

typedef struct {
    char *key;
    char *value;
} sched_label_t;

typedef enum {
    SCHED_EFFECT_ANY = 0,                 /* in a toleration: every effect */
    SCHED_EFFECT_NO_SCHEDULE,
    SCHED_EFFECT_PREFER_NO_SCHEDULE
} sched_effect_t;

typedef struct {
    char *key;
    char *value;
    sched_effect_t effect;
} sched_taint_t;

typedef struct {
    char *key;                            /* "" with exists: tolerates every taint */
    char *value;
    bool exists;                          /* operator Exists (else Equal) */
    sched_effect_t effect;                /* SCHED_EFFECT_ANY matches both */
} sched_toleration_t;

/* One node as a scheduler replica knows it. */
typedef struct {
    char *name;
    sched_resources_t capacity;           /* servers 0 = no limit on the count */
    sched_resources_t reserved;           /* sums of the reservations held (servers = count) */
    sched_resources_t usage;              /* live, from the node agent; shown, never scheduled on */
    sched_label_t *labels;
    size_t nlabels;
    sched_taint_t *taints;
    size_t ntaints;
    bool cordoned;
    int64_t heartbeat_ms;                 /* when the scheduler last heard the node's agent */
    bool lost_marked;                     /* this replica has had Redis mark it lost */
    /* scratch for one placement (so filtering allocates nothing) */
    int group_count;                      /* servers of the request's group already here */
} sched_node_t;

/* What a placement asks for. Not owning: points into the decoded request. */
typedef struct {
    sched_resources_t want;               /* servers is always 1 */
    const sched_label_t *selector;
    size_t nselector;
    const sched_toleration_t *tolerations;
    size_t ntolerations;
} sched_request_t;

/* --- filters (sched_filter.c) ----------------------------------------------------------
 * Each failing reason is one bit; a node may fail several (cpu and memory both short).
 * Checks run in Kubernetes' order and stop at the first failing one, except the resource
 * fit, which reports every short resource, as NodeResourcesFit does. */
typedef enum {
    SCHED_FAIL_NOT_READY = 1 << 0,
    SCHED_FAIL_CORDONED = 1 << 1,
    SCHED_FAIL_TAINT = 1 << 2,
    SCHED_FAIL_SELECTOR = 1 << 3,
    SCHED_FAIL_CPU = 1 << 4,
    SCHED_FAIL_MEMORY = 1 << 5,
    SCHED_FAIL_GPUS = 1 << 6,
    SCHED_FAIL_SERVERS = 1 << 7,
} sched_fail_t;
#define SCHED_FAIL_COUNT 8
#define SCHED_FAIL_RESOURCES (SCHED_FAIL_CPU | SCHED_FAIL_MEMORY | SCHED_FAIL_GPUS | SCHED_FAIL_SERVERS)

bool sched_filter_ready (const sched_node_t *node, int64_t now_ms, int64_t timeout_ms);
bool sched_filter_schedulable (const sched_node_t *node);
/* True when every NoSchedule taint of the node is tolerated. */
bool sched_filter_taints (const sched_node_t *node, const sched_request_t *req);
bool sched_filter_selector (const sched_node_t *node, const sched_request_t *req);
/* 0 when the request fits in capacity − reserved, else the SCHED_FAIL_* bits of the short
 * resources. A resource the request does not ask for always fits, even on a node with
 * none of it. */
unsigned sched_filter_fit (const sched_resources_t *capacity, const sched_resources_t *reserved,
                           const sched_resources_t *want);
/* Every filter in order: 0 feasible, else the failure bits. */
unsigned sched_filter_node (const sched_node_t *node, const sched_request_t *req, int64_t now_ms,
                            int64_t timeout_ms);
bool sched_toleration_matches (const sched_toleration_t *tol, const sched_taint_t *taint);

/* Counts per failure bit over the nodes examined, and the sentence for the user:
 * "0/12 nodes are available: 8 insufficient memory, 4 untolerated taint."
 * Largest count first, ties in filter order. */
typedef struct {
    int total;
    int counts[SCHED_FAIL_COUNT];
} sched_reasons_t;
void sched_reasons_add (sched_reasons_t *reasons, unsigned fail_bits);
/* Writes into out (always NUL-terminated); returns out. */
char *sched_reasons_format (const sched_reasons_t *reasons, char *out, size_t outlen);

/* --- scores (sched_score.c): each 0..100 --------------------------------------------------
 * `requested` below = reserved + the request, as Kubernetes scores "with the pod". */
int sched_score_least_allocated (const sched_node_t *node, const sched_resources_t *want);
int sched_score_most_allocated (const sched_node_t *node, const sched_resources_t *want);
int sched_score_balanced_allocation (const sched_node_t *node, const sched_resources_t *want);
/* Normalised over the candidate set: 100 * (max − count) / max (100 when max is 0). */
int sched_score_group_spread (int count, int max_count);
/* Intolerable PreferNoSchedule taints of one node. */
int sched_prefer_no_schedule_count (const sched_node_t *node, const sched_request_t *req);
/* Normalised over the candidate set, reversed: 100 − 100 * count / max (100 when max is 0). */
int sched_score_prefer_no_schedule (int count, int max_count);

/* --- profiles (sched_profile.c) -------------------------------------------------------- */
typedef struct {
    char name[64];
    int least_allocated;
    int most_allocated;
    int balanced_allocation;
    int group_spread;
    int prefer_no_schedule;
} sched_profile_t;

typedef struct sched_profiles_t sched_profiles_t;
/* The built-in spread and pack, then the profiles of `json` (an object name → weights;
 * NULL or "" for none; a configured name replaces a built-in one). NULL and `err` set on a
 * bad document or unknown default. */
sched_profiles_t *sched_profiles_new (const char *json, const char *default_name, char *err, size_t errlen);
void sched_profiles_destroy (sched_profiles_t **self_p);
/* The named profile ("" = the default); NULL when unknown. */
const sched_profile_t *sched_profiles_find (const sched_profiles_t *self, const char *name);

/* The weighted sum of one node's scores. The two set-normalised scores come in as counts. */
int64_t sched_score_node (const sched_profile_t *profile, const sched_node_t *node, const sched_request_t *req,
                          int max_group_count, int prefer_count, int max_prefer_count);

/* --- sampling (sched_sample.c) ---------------------------------------------------------
 * How many feasible nodes to look for among `total`, Kubernetes' percentageOfNodesToScore:
 * all of them up to `min_nodes`; else `percent` of them (0 = adaptive: 50 − total/125,
 * at least 5), never fewer than `min_nodes`. */
int sched_nodes_to_find (int total, int percent, int min_nodes);

#endif
