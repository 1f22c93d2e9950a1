/*  orrery-scheduler: places every server on a node (filter, score, reserve).
 *
 *  Owns nodes and reservations in Redis (sched_store.c). Bus methods (proto/orrery/
 *  scheduler.proto): place, bind, release, nodes, cordon. Events in: node.heartbeat from
 *  any node agent (the spawners, tests, benchmarks). Events out: node.registered,
 *  node.lost, node.cordoned, node.uncordoned, server.scheduled. Every replica hears every
 *  heartbeat and writes it (the script keeps the newest, and exactly one replica sees a
 *  node arrive); the periodic sweep marks silent nodes lost (exactly one replica
 *  announces it), gives back reservations whose server never started, and re-reads the
 *  nodes so this replica's cache follows what the others reserve.
 *
 *  This file: settings, the bus methods, the heartbeat handler and the sweep.
 */
#include "scheduler.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 250
#define EXPIRE_BATCH 256

static const orr_setting_t s_settings[] = {
    { "NODE_TIMEOUT_MS", "15000", "a node whose last heartbeat is older than this is not ready (node.lost)" },
    { "RESERVATION_TTL_S", "300", "a reservation whose server never started (no bind) is given back after this" },
    { "NODE_SAMPLE_PERCENT", "0",
      "share of nodes to look for feasible ones among, above MIN_NODES_TO_SCORE (0 = adaptive: 50 - nodes/125, at least 5)" },
    { "MIN_NODES_TO_SCORE", "100", "up to this many nodes, every node is filtered and scored" },
    { "DEFAULT_PROFILE", "spread", "scheduling profile for requests that name none: spread, pack or one of PROFILES" },
    { "PROFILES", NULL,
      "extra scheduling profiles, JSON {\"name\": {\"least_allocated\": w, \"most_allocated\": w, "
      "\"balanced_allocation\": w, \"group_spread\": w, \"prefer_no_schedule\": w}}" },
    { "REFRESH_MS", "1000", "how often each replica re-reads every node from Redis (100..60000)" },
    { "MAX_NODES", "100000", "most nodes the scheduler keeps; heartbeats of further nodes are ignored (logged)" },
    { NULL, NULL, NULL },
};

orr_store_t *
scheduler_store (scheduler_t *self)
{
    return orr_store_thread (self->redis_url);
}

void
scheduler_publish (scheduler_t *self, const char *topic, const ProtobufCMessage *msg)
{
    orr_service_publish_msg (self->svc, topic, msg);
}

static void
s_publish_node_event (scheduler_t *self, const char *topic, const char *node, const char *reason)
{
    Orrery__NodeEvent ev = ORRERY__NODE_EVENT__INIT;
    ev.node = (char *) node;
    ev.reason = (char *) (reason ? reason : "");
    ev.time_us = orr_now_us ();
    scheduler_publish (self, topic, &ev.base);
}




/* --- methods --------------------------------------------------------------------------- */

static void
s_place (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    scheduler_t *self = ctx;
    if (!orr_call_trusted (call, result, "scheduler"))
        return;
    ORR_UNPACK_OR_400 (Orrery__PlaceRequest, orrery__place_request__unpack, req);
    Orrery__PlaceResult out = ORRERY__PLACE_RESULT__INIT;
    out.node = out.reason = NULL;   /* ours to free; protobuf-c packs NULL as "" */
    char err[256] = "";
    int status = sched_place (self, req, &out, err, sizeof err);
    if (status == 200) {
        if (out.placed)
            orr_debug ("placed %s on %s (score %d, %d feasible, %d attempts)", req->reservation, out.node, out.score,
                       out.nodes_feasible, out.attempts);
        else
            orr_info ("not placed %s: %s", req->reservation, out.reason);
        orr_result_reply (result, &out.base);
    }
    else
        orr_result_fail (result, status, "%s", err);
    free (out.node);
    free (out.reason);
    orrery__place_request__free_unpacked (req, NULL);
}

/* The node holding a reservation: the request's, else the placement record. Caller frees. */
static char *
s_reservation_node (scheduler_t *self, const Orrery__ReservationRef *ref)
{
    if (ref->node && *ref->node)
        return orr_strdup (ref->node);
    return sched_store_placement (self, ref->reservation);
}

static void
s_bind (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    scheduler_t *self = ctx;
    if (!orr_call_trusted (call, result, "scheduler"))
        return;
    ORR_UNPACK_OR_400 (Orrery__ReservationRef, orrery__reservation_ref__unpack, ref);
    char *node = s_reservation_node (self, ref);
    int rc = node ? sched_store_bind (self, node, ref->reservation) : 0;
    if (rc == 1) {
        Orrery__ReservationRef out = ORRERY__RESERVATION_REF__INIT;
        out.reservation = ref->reservation;
        out.node = node;
        orr_result_reply (result, &out.base);
    }
    else if (rc == 0)
        orr_result_fail (result, 404, "no reservation %s (released, expired or never made)", ref->reservation);
    else
        orr_result_fail (result, 503, "the node store is unavailable");
    free (node);
    orrery__reservation_ref__free_unpacked (ref, NULL);
}

static void
s_release (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    scheduler_t *self = ctx;
    if (!orr_call_trusted (call, result, "scheduler"))
        return;
    ORR_UNPACK_OR_400 (Orrery__ReservationRef, orrery__reservation_ref__unpack, ref);
    char *node = s_reservation_node (self, ref);
    int rc = node ? sched_store_release (self, node, ref->reservation) : 0;
    if (rc < 0)
        orr_result_fail (result, 503, "the node store is unavailable");
    else {
        Orrery__ReleaseResult out = ORRERY__RELEASE_RESULT__INIT;
        out.released = rc == 1;
        out.node = node ? node : "";
        orr_result_reply (result, &out.base);
        if (rc == 1)   /* so this replica's next placement sees the room at once */
            sched_store_refresh_node (self, node);
    }
    free (node);
    orrery__reservation_ref__free_unpacked (ref, NULL);
}

static void
s_nodes (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    scheduler_t *self = ctx;
    ORR_UNPACK_OR_400 (Orrery__NodesRequest, orrery__nodes_request__unpack, req);
    Orrery__NodeList list;
    int rc = sched_store_nodes (self, req->node, &list);
    if (rc == 0)
        orr_result_reply (result, &list.base);
    else if (rc == 404)
        orr_result_fail (result, 404, "no node named %s", req->node);
    else
        orr_result_fail (result, 503, "the node store is unavailable");
    sched_node_list_free (&list);
    orrery__nodes_request__free_unpacked (req, NULL);
}

static void
s_cordon (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    scheduler_t *self = ctx;
    if (!orr_call_trusted (call, result, "scheduler"))
        return;
    ORR_UNPACK_OR_400 (Orrery__CordonRequest, orrery__cordon_request__unpack, req);
    if (!req->node || !*req->node || strlen (req->node) > SCHED_NAME_MAX || (req->reason && strlen (req->reason) > 256)) {
        orr_result_fail (result, 400, "cordon: a node name of 1 to %d bytes and a reason of at most 256 bytes",
                         SCHED_NAME_MAX);
        orrery__cordon_request__free_unpacked (req, NULL);
        return;
    }
    int rc = sched_store_cordon (self, req->node, req->cordon, req->reason);
    if (rc == -404)
        orr_result_fail (result, 404, "no node named %s", req->node);
    else if (rc < 0)
        orr_result_fail (result, 503, "the node store is unavailable");
    else {
        sched_node_t *cached = sched_cache_find (self->cache, req->node);
        if (cached)
            cached->cordoned = req->cordon;
        if (rc == 1)
            s_publish_node_event (self, req->cordon ? "node.cordoned" : "node.uncordoned", req->node, req->reason);
        Orrery__NodeList list;
        if (sched_store_nodes (self, req->node, &list) == 0 && list.n_nodes == 1)
            orr_result_reply (result, &list.nodes[0]->base);
        else
            orr_result_fail (result, 503, "the node store is unavailable");
        sched_node_list_free (&list);
    }
    orrery__cordon_request__free_unpacked (req, NULL);
}

/* --- node agents ----------------------------------------------------------------------- */

/* A heartbeat from the wire: refuse what the store could not hold or a filter misread. */
static bool
s_heartbeat_ok (const Orrery__NodeHeartbeat *hb, char *why, size_t whylen)
{
    size_t n = hb->node ? strlen (hb->node) : 0;
    if (n == 0 || n > SCHED_NAME_MAX || strchr (hb->node, '\n')) {
        snprintf (why, whylen, "a node name of 1 to %d bytes without newlines", SCHED_NAME_MAX);
        return false;
    }
    if (hb->n_labels > SCHED_LABELS_MAX || hb->n_taints > SCHED_TAINTS_MAX) {
        snprintf (why, whylen, "at most %d labels and %d taints", SCHED_LABELS_MAX, SCHED_TAINTS_MAX);
        return false;
    }
    for (size_t i = 0; i < hb->n_labels; i++)
        if (!sched_label_key_ok (hb->labels[i]->key) || !sched_label_value_ok (hb->labels[i]->value)) {
            snprintf (why, whylen, "label %zu: keys and values of [A-Za-z0-9._-] (keys may hold '/')", i);
            return false;
        }
    for (size_t i = 0; i < hb->n_taints; i++)
        if (!sched_label_key_ok (hb->taints[i]->key) || !sched_label_value_ok (hb->taints[i]->value)
            || sched_effect_parse (hb->taints[i]->effect, false) < 0) {
            snprintf (why, whylen, "taint %zu: a label-like key and value, effect NoSchedule or PreferNoSchedule", i);
            return false;
        }
    const Orrery__Resources *c = hb->capacity;
    if (c && (c->cpu_millis < 0 || c->memory_bytes < 0 || c->gpus < 0 || c->servers < 0)) {
        snprintf (why, whylen, "capacity must not be negative");
        return false;
    }
    return true;
}

static void
s_on_heartbeat (void *ctx, const orr_event_t *event)
{
    scheduler_t *self = ctx;
    if (strcmp (event->topic, "node.heartbeat") != 0)
        return;
    Orrery__NodeHeartbeat *hb
        = orrery__node_heartbeat__unpack (NULL, zframe_size (event->body), zframe_data (event->body));
    char why[160];
    if (!hb) {
        orr_warn ("node.heartbeat from %s: not a NodeHeartbeat; ignored", event->principal);
        return;
    }
    if (!s_heartbeat_ok (hb, why, sizeof why)) {
        orr_warn ("node.heartbeat from %s: ignored: %s", event->principal, why);
        orrery__node_heartbeat__free_unpacked (hb, NULL);
        return;
    }
    sched_node_t *node = sched_cache_find (self->cache, hb->node);
    if (!node && (long) sched_cache_count (self->cache) >= self->max_nodes) {
        orr_warn ("node.heartbeat: node %s ignored: MAX_NODES (%ld) reached", hb->node, self->max_nodes);
        orrery__node_heartbeat__free_unpacked (hb, NULL);
        return;
    }
    int64_t now_ms = orr_now_us () / 1000;
    int rc = sched_store_heartbeat (self, hb, now_ms);
    if (rc >= 0) {
        node = sched_cache_upsert (self->cache, hb->node);
        const Orrery__Resources none = ORRERY__RESOURCES__INIT;
        const Orrery__Resources *c = hb->capacity ? hb->capacity : &none, *u = hb->usage ? hb->usage : &none;
        node->capacity = (sched_resources_t) { c->cpu_millis, c->memory_bytes, c->gpus, c->servers };
        node->usage = (sched_resources_t) { u->cpu_millis, u->memory_bytes, u->gpus, u->servers };
        if (now_ms > node->heartbeat_ms)
            node->heartbeat_ms = now_ms;
        node->lost_marked = false;
        sched_label_t labels[SCHED_LABELS_MAX];
        sched_taint_t taints[SCHED_TAINTS_MAX];
        sched_heartbeat_meta (hb, labels, taints);
        sched_node_set_meta (node, labels, hb->n_labels, taints, hb->n_taints);
    }
    if (rc == 2) {
        orr_info ("node %s registered (agent %s)", hb->node, hb->agent);
        s_publish_node_event (self, "node.registered", hb->node, hb->agent);
    }
    orrery__node_heartbeat__free_unpacked (hb, NULL);
}

/* --- the sweep ------------------------------------------------------------------------- */

static void
s_sweep (void *ctx)
{
    scheduler_t *self = ctx;
    int64_t now_ms = orr_now_us () / 1000;
    if (now_ms - self->last_refresh_ms >= self->refresh_ms) {
        self->last_refresh_ms = now_ms;
        if (sched_store_refresh (self) != 0)
            orr_warn ("could not re-read the nodes from Redis: %s", orr_store_error (scheduler_store (self)));
    }
    size_t n = sched_cache_count (self->cache);
    for (size_t i = 0; i < n; i++) {
        sched_node_t *node = sched_cache_at (self->cache, i);
        if (node->lost_marked || sched_filter_ready (node, now_ms, self->node_timeout_ms) || node->heartbeat_ms == 0)
            continue;
        int rc = sched_store_mark_lost (self, node->name, now_ms);
        if (rc < 0)
            continue;
        node->lost_marked = true;
        if (rc == 1) {
            orr_warn ("node %s lost: no heartbeat for %lld ms", node->name, (long long) (now_ms - node->heartbeat_ms));
            s_publish_node_event (self, "node.lost", node->name, "heartbeat timeout");
        }
    }
    sched_store_expire (self, now_ms, EXPIRE_BATCH);
}

/* --- start-up -------------------------------------------------------------------------- */

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    scheduler_t *self = orr_zalloc (sizeof *self);
    *state = self;
    self->svc = svc;
    self->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    self->node_timeout_ms = orr_config_int (config, "NODE_TIMEOUT_MS");
    self->reservation_ttl_ms = (int64_t) orr_config_int (config, "RESERVATION_TTL_S") * 1000;
    self->sample_percent = (int) orr_config_int (config, "NODE_SAMPLE_PERCENT");
    self->min_nodes_to_score = (int) orr_config_int (config, "MIN_NODES_TO_SCORE");
    self->refresh_ms = (int) orr_config_int (config, "REFRESH_MS");
    self->max_nodes = orr_config_int (config, "MAX_NODES");
    if (self->node_timeout_ms < 100 || self->reservation_ttl_ms < 1000 || self->sample_percent < 0
        || self->sample_percent > 100 || self->min_nodes_to_score < 1 || self->refresh_ms < 100
        || self->refresh_ms > 60000 || self->max_nodes < 1 || self->max_nodes > SCHED_MAX_MAX_NODES) {
        orr_error ("settings out of range: NODE_TIMEOUT_MS >= 100, RESERVATION_TTL_S >= 1, NODE_SAMPLE_PERCENT "
                   "0..100, MIN_NODES_TO_SCORE >= 1, REFRESH_MS 100..60000, MAX_NODES 1..%d",
                   SCHED_MAX_MAX_NODES);
        return 1;
    }
    char err[512] = "";
    self->profiles = sched_profiles_new (orr_config_get (config, "PROFILES"), orr_config_get (config, "DEFAULT_PROFILE"),
                                         err, sizeof err);
    if (!self->profiles) {
        orr_error ("%s", err);
        return 1;
    }
    self->cache = sched_cache_new ();
    sched_store_init ();
    if (sched_store_refresh (self) != 0)
        orr_warn ("could not read the nodes from Redis yet (%s); will retry",
                  orr_store_error (scheduler_store (self)));
    self->last_refresh_ms = orr_now_us () / 1000;
    orr_service_add_method (svc, "place", s_place, self);
    orr_service_add_method (svc, "bind", s_bind, self);
    orr_service_add_method (svc, "release", s_release, self);
    orr_service_add_method (svc, "nodes", s_nodes, self);
    orr_service_add_method (svc, "cordon", s_cordon, self);
    orr_service_on_event (svc, "node.heartbeat", s_on_heartbeat, self);
    orr_service_every (svc, SWEEP_MS, s_sweep, self);
    return 0;
}

static void
s_teardown (void *state)
{
    scheduler_t *self = state;
    if (!self)
        return;
    sched_store_fini ();
    sched_cache_destroy (&self->cache);
    sched_profiles_destroy (&self->profiles);
    free (self->candidates);
    free (self->redis_url);
    free (self);
    orr_store_thread_release ();
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "scheduler", "Orrery scheduler: filter, score and reserve placements.",
                             s_settings, s_setup, s_teardown);
}
