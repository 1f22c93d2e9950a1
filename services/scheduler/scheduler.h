/*  scheduler: the service around the pure placement code of sched.h -- its context, the
 *  node cache, the Redis side and the place algorithm. See sched.h for the design.
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include "orr_service.h"
#include "orr_store.h"
#include "orrery/events.pb-c.h"
#include "orrery/scheduler.pb-c.h"
#include "sched.h"

/* --- the node cache (sched_cache.c) -----------------------------------------------------
 * Every node this replica knows, in an array (placement walks it from a rotating start)
 * with a name index. Entries are never removed: a node that goes away stops being ready. */
typedef struct sched_cache_t sched_cache_t;

sched_cache_t *sched_cache_new (void);
void sched_cache_destroy (sched_cache_t **self_p);
size_t sched_cache_count (const sched_cache_t *self);
sched_node_t *sched_cache_at (sched_cache_t *self, size_t i);
sched_node_t *sched_cache_find (sched_cache_t *self, const char *name);
/* The node, added (empty, not ready) when absent. */
sched_node_t *sched_cache_upsert (sched_cache_t *self, const char *name);
/* Where the next placement starts its walk, and moving it on. */
size_t sched_cache_start (const sched_cache_t *self);
void sched_cache_advance (sched_cache_t *self, size_t processed);

/* Replaces labels and taints (owned copies). */
void sched_node_set_meta (sched_node_t *node, const sched_label_t *labels, size_t nlabels,
                          const sched_taint_t *taints, size_t ntaints);

/* --- the service ------------------------------------------------------------------------ */
typedef struct {
    orr_service_t *svc;
    char *redis_url;
    sched_cache_t *cache;
    sched_profiles_t *profiles;
    int64_t node_timeout_ms;
    int64_t reservation_ttl_ms;
    int sample_percent;
    int min_nodes_to_score;
    int refresh_ms;
    long max_nodes;
    int64_t last_refresh_ms;
    /* scratch for placements, grown as needed */
    sched_node_t **candidates;
    size_t scratch_cap;
} scheduler_t;

orr_store_t *scheduler_store (scheduler_t *self);
void scheduler_publish (scheduler_t *self, const char *topic, const ProtobufCMessage *msg);

/* --- Redis (sched_store.c) -------------------------------------------------------------- */
/* Labels "k=v\n...", taints "k=v:Effect\n..." as kept in the node hash. Decoders return
 * owned arrays (free with sched_labels_free / sched_taints_free). */
char *sched_labels_encode (const sched_label_t *labels, size_t n);
char *sched_taints_encode (const sched_taint_t *taints, size_t n);
sched_label_t *sched_labels_decode (const char *text, size_t *n);
sched_taint_t *sched_taints_decode (const char *text, size_t *n);
void sched_labels_free (sched_label_t *labels, size_t n);
void sched_taints_free (sched_taint_t *taints, size_t n);
/* "NoSchedule" / "PreferNoSchedule" (and "" = any, for tolerations); -1 when neither. */
int sched_effect_parse (const char *text, bool allow_any);
const char *sched_effect_name (sched_effect_t effect);
/* Label keys and values: 1..253 (values 0..253) bytes of [A-Za-z0-9._/-] (no '/' in values). */
bool sched_label_key_ok (const char *key);
bool sched_label_value_ok (const char *value);

/* A validated heartbeat's labels and taints as views (no copies) into the arrays given,
 * which hold SCHED_LABELS_MAX and SCHED_TAINTS_MAX entries. */
void sched_heartbeat_meta (const Orrery__NodeHeartbeat *hb, sched_label_t *labels, sched_taint_t *taints);

int sched_store_init (void);                 /* compiles the scripts; 0 */
void sched_store_fini (void);

/* A node agent's heartbeat: writes the node, returns 2 when the node is new or back from
 * lost (this replica then announces node.registered), 1 when written, 0 when a newer
 * heartbeat was already there, -1 on a Redis failure. */
int sched_store_heartbeat (scheduler_t *s, const Orrery__NodeHeartbeat *hb, int64_t now_ms);
/* 1 when this call marked the node lost (announce node.lost), 0 otherwise, -1 on failure. */
int sched_store_mark_lost (scheduler_t *s, const char *node, int64_t now_ms);
/* 1 changed, 0 unchanged, -404 unknown node, -1 failure. */
int sched_store_cordon (scheduler_t *s, const char *node, bool cordon, const char *reason);

typedef enum {
    SCHED_RESERVE_OK,
    SCHED_RESERVE_HELD,      /* this reservation id is already on that node */
    SCHED_RESERVE_FULL,
    SCHED_RESERVE_CORDONED,
    SCHED_RESERVE_NOT_READY,
    SCHED_RESERVE_GONE,
    SCHED_RESERVE_ERROR
} sched_reserve_t;
/* The atomic reserve on one node (re-checks readiness, cordon and fit). Updates the cached
 * node with the sums Redis holds afterwards, whatever the outcome. */
sched_reserve_t sched_store_reserve (scheduler_t *s, sched_node_t *node, const char *id, const sched_resources_t *want,
                                     const char *group, int64_t now_ms);
/* After a reservation was made: the placement record, the group's spread count and the
 * expiry to-do entry. Returns the node that holds `id` (ours, or another replica's when it
 * placed the same id first: then ours is released). Caller frees. */
char *sched_store_after_reserve (scheduler_t *s, const char *node, const char *id, const char *group, int64_t now_ms);
/* The node holding reservation `id` (verified), or NULL. Caller frees. */
char *sched_store_placement (scheduler_t *s, const char *id);
/* 1 released, 0 nothing to release, -1 failure. */
int sched_store_release (scheduler_t *s, const char *node, const char *id);
/* 1 bound, 0 no such reservation, -1 failure. */
int sched_store_bind (scheduler_t *s, const char *node, const char *id);
/* Releases reservations whose server never started; returns how many. */
int sched_store_expire (scheduler_t *s, int64_t now_ms, int max);
/* The start of a placement, in one round trip: the node already holding reservation `id`
 * (verified; caller frees) or NULL, and in *spread the group's HGETALL node -> count (NULL
 * without a group; caller frees with freeReplyObject). */
char *sched_store_lookup (scheduler_t *s, const char *id, const char *group, redisReply **spread);
/* The group's counts from that reply into the candidates' group_count (others 0). */
void sched_store_group_counts (scheduler_t *s, const redisReply *spread, sched_node_t *const *nodes, size_t n);

/* Loads nodes named in the index that the cache lacks, and re-reads every cached node's
 * reserved sums, cordon flag and heartbeat. 0 or -1. */
int sched_store_refresh (scheduler_t *s);
/* The same for one node. */
int sched_store_refresh_node (scheduler_t *s, const char *name);
/* NodeInfo of every node (name NULL) or one; 0, 404 when unknown, -1 on failure. The caller
 * frees with orrery__node_list__free_unpacked-compatible sched_node_list_free. */
int sched_store_nodes (scheduler_t *s, const char *name, Orrery__NodeList *out);
void sched_node_list_free (Orrery__NodeList *list);

/* --- place (sched_place.c) -------------------------------------------------------------- */
/* Fills `out`; returns 200, or 400/503 with err set. */
int sched_place (scheduler_t *s, const Orrery__PlaceRequest *req, Orrery__PlaceResult *out, char *err, size_t errlen);

#endif
