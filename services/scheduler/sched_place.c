/*  sched_place: one placement, start to end.
 *
 *    1. A repeat (same reservation id, e.g. a retried request) gets the node it already has.
 *    2. Filter: walk the cached nodes from the rotating start until enough feasible ones
 *       are found (sched_nodes_to_find), counting why the others fail.
 *    3. Score the feasible ones with the request's profile; order best first (ties keep
 *       the walk's order, which rotates, so equal nodes take turns).
 *    4. Reserve on the best; a refusal from Redis (another replica got there first) has
 *       already corrected the cache, so try the next best, and when the list runs out,
 *       filter again with what was learnt.
 *    5. No feasible node: if the cache may be stale (a reservation was attempted since the
 *       last read), re-read every node from Redis and filter again; refuse only when a
 *       fresh read leaves no node with room, with Kubernetes' counted reasons.
 */
#include "scheduler.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

/* Rounds of filter → reserve before giving up (each round either places, or learns the
 * truth about every candidate it tried, so this only trips on a store that keeps failing). */
#define PLACE_ROUNDS_MAX 64

typedef struct {
    sched_node_t *node;
    int64_t score;
    size_t order;
} s_scored_t;

static int
s_by_score (const void *a, const void *b)
{
    const s_scored_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Request → sched_request_t; 0, or -1 with err set. Tolerations land in `tols`. */
static int
s_request (const Orrery__PlaceRequest *pr, sched_request_t *req, sched_label_t *selector,
           sched_toleration_t *tols, char *err, size_t errlen)
{
    memset (req, 0, sizeof *req);
    if (!pr->reservation || !*pr->reservation || strlen (pr->reservation) > SCHED_RESERVATION_MAX) {
        snprintf (err, errlen, "reservation: an id of 1 to %d bytes is required", SCHED_RESERVATION_MAX);
        return -1;
    }
    if (pr->guarantees) {
        req->want.cpu_millis = pr->guarantees->cpu_millis;
        req->want.memory_bytes = pr->guarantees->memory_bytes;
        req->want.gpus = pr->guarantees->gpus;
    }
    req->want.servers = 1;
    if (req->want.cpu_millis < 0 || req->want.memory_bytes < 0 || req->want.gpus < 0) {
        snprintf (err, errlen, "guarantees: cpu, memory and gpus must not be negative");
        return -1;
    }
    if (pr->n_node_selector > SCHED_LABELS_MAX || pr->n_tolerations > SCHED_TAINTS_MAX) {
        snprintf (err, errlen, "at most %d node-selector labels and %d tolerations", SCHED_LABELS_MAX, SCHED_TAINTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < pr->n_node_selector; i++)
        selector[i] = (sched_label_t) { pr->node_selector[i]->key, pr->node_selector[i]->value };
    for (size_t i = 0; i < pr->n_tolerations; i++) {
        const Orrery__Toleration *t = pr->tolerations[i];
        int effect = sched_effect_parse (t->effect, true);
        bool exists = t->operator_ && strcmp (t->operator_, "Exists") == 0;
        if (effect < 0 || (t->operator_ && *t->operator_ && !exists && strcmp (t->operator_, "Equal") != 0)
            || (!exists && !*t->key)) {
            snprintf (err, errlen,
                      "tolerations[%zu]: operator Equal (with a key) or Exists, effect \"\", NoSchedule or "
                      "PreferNoSchedule",
                      i);
            return -1;
        }
        tols[i] = (sched_toleration_t) { t->key, t->value, exists, (sched_effect_t) effect };
    }
    req->selector = selector;
    req->nselector = pr->n_node_selector;
    req->tolerations = tols;
    req->ntolerations = pr->n_tolerations;
    return 0;
}

static void
s_grow_scratch (scheduler_t *s, size_t n)
{
    if (n <= s->scratch_cap)
        return;
    s->scratch_cap = n;
    s->candidates = orr_realloc (s->candidates, n * sizeof *s->candidates);
}

/* Step 2. Returns the number of candidates in s->candidates; fills reasons. */
static size_t
s_filter (scheduler_t *s, const sched_request_t *req, int64_t now_ms, sched_reasons_t *reasons)
{
    size_t total = sched_cache_count (s->cache);
    s_grow_scratch (s, total + 1);
    size_t want = (size_t) sched_nodes_to_find ((int) total, s->sample_percent, s->min_nodes_to_score);
    size_t start = sched_cache_start (s->cache), found = 0, processed = 0;
    memset (reasons, 0, sizeof *reasons);
    for (; processed < total && found < want; processed++) {
        sched_node_t *node = sched_cache_at (s->cache, (start + processed) % total);
        unsigned fail = sched_filter_node (node, req, now_ms, s->node_timeout_ms);
        if (fail)
            sched_reasons_add (reasons, fail);
        else
            s->candidates[found++] = node;
    }
    sched_cache_advance (s->cache, processed);
    /* reasons must cover every node when none is feasible (the walk then saw them all) */
    reasons->total = (int) total;
    return found;
}

/* Step 3: s_scored_t array (caller frees), best first. */
static s_scored_t *
s_score (scheduler_t *s, const sched_profile_t *profile, const sched_request_t *req, const redisReply *spread, size_t n)
{
    sched_store_group_counts (s, profile->group_spread ? spread : NULL, s->candidates, n);
    int max_group = 0, max_prefer = 0;
    int *prefer = orr_zalloc (n * sizeof *prefer);
    for (size_t i = 0; i < n; i++) {
        if (s->candidates[i]->group_count > max_group)
            max_group = s->candidates[i]->group_count;
        prefer[i] = sched_prefer_no_schedule_count (s->candidates[i], req);
        if (prefer[i] > max_prefer)
            max_prefer = prefer[i];
    }
    s_scored_t *scored = orr_zalloc (n * sizeof *scored);
    for (size_t i = 0; i < n; i++)
        scored[i] = (s_scored_t) { s->candidates[i],
                                   sched_score_node (profile, s->candidates[i], req, max_group, prefer[i], max_prefer), i };
    free (prefer);
    qsort (scored, n, sizeof *scored, s_by_score);
    return scored;
}

static void
s_publish_scheduled (scheduler_t *s, const Orrery__PlaceRequest *pr, const char *node)
{
    Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
    ev.user = pr->user;
    ev.server = pr->server;
    ev.state = "pending_spawn";
    ev.node = (char *) node;
    ev.message = "scheduled";
    ev.time_us = orr_now_us ();
    scheduler_publish (s, "server.scheduled", &ev.base);
}

static int s_place_new (scheduler_t *s, const Orrery__PlaceRequest *pr, const sched_request_t *req,
                        const sched_profile_t *profile, const redisReply *spread, Orrery__PlaceResult *out, char *err,
                        size_t errlen);

int
sched_place (scheduler_t *s, const Orrery__PlaceRequest *pr, Orrery__PlaceResult *out, char *err, size_t errlen)
{
    sched_request_t req;
    sched_label_t selector[SCHED_LABELS_MAX];
    sched_toleration_t tols[SCHED_TAINTS_MAX];
    if (s_request (pr, &req, selector, tols, err, errlen) != 0)
        return 400;
    const sched_profile_t *profile = sched_profiles_find (s->profiles, pr->profile);
    if (!profile) {
        snprintf (err, errlen, "no scheduling profile named \"%s\"", pr->profile);
        return 400;
    }
    out->nodes_total = (int32_t) sched_cache_count (s->cache);

    /* 1. a repeat */
    redisReply *spread = NULL;
    char *held = sched_store_lookup (s, pr->reservation, pr->group, &spread);
    if (held) {
        if (spread)
            freeReplyObject (spread);
        out->placed = true;
        out->node = held;
        return 200;
    }
    int status = s_place_new (s, pr, &req, profile, spread, out, err, errlen);
    if (spread)
        freeReplyObject (spread);
    return status;
}

static int
s_place_new (scheduler_t *s, const Orrery__PlaceRequest *pr, const sched_request_t *reqp, const sched_profile_t *profile,
             const redisReply *spread, Orrery__PlaceResult *out, char *err, size_t errlen)
{
    const sched_request_t req = *reqp;

    bool fresh = false;       /* the cache was re-read from Redis since the last reserve */
    for (int round = 0; round < PLACE_ROUNDS_MAX; round++) {
        int64_t now_ms = orr_now_us () / 1000;
        sched_reasons_t reasons;
        size_t n = s_filter (s, &req, now_ms, &reasons);
        out->nodes_total = reasons.total;
        if (n == 0) {
            if (!fresh) {
                if (sched_store_refresh (s) != 0) {
                    snprintf (err, errlen, "the node store is unavailable");
                    return 503;
                }
                fresh = true;
                continue;
            }
            char reason[512];
            out->placed = false;
            out->reason = orr_strdup (sched_reasons_format (&reasons, reason, sizeof reason));
            return 200;
        }
        s_scored_t *scored = s_score (s, profile, &req, spread, n);
        out->nodes_feasible = out->nodes_scored = (int32_t) n;
        fresh = false;
        for (size_t i = 0; i < n; i++) {
            out->attempts++;
            sched_reserve_t rc = sched_store_reserve (s, scored[i].node, pr->reservation, &req.want, pr->group, now_ms);
            if (rc == SCHED_RESERVE_ERROR) {
                free (scored);
                snprintf (err, errlen, "the node store is unavailable");
                return 503;
            }
            if (rc != SCHED_RESERVE_OK && rc != SCHED_RESERVE_HELD)
                continue;   /* lost a race: the cache now knows; try the next best */
            char *node = rc == SCHED_RESERVE_OK
                             ? sched_store_after_reserve (s, scored[i].node->name, pr->reservation, pr->group, now_ms)
                             : orr_strdup (scored[i].node->name);
            out->placed = true;
            out->node = node;
            out->score = (int32_t) scored[i].score;
            free (scored);
            if (rc == SCHED_RESERVE_OK)
                s_publish_scheduled (s, pr, node);
            return 200;
        }
        free (scored);
    }
    snprintf (err, errlen, "placement did not settle after %d rounds", PLACE_ROUNDS_MAX);
    return 503;
}
