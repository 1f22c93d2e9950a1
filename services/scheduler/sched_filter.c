/*  sched_filter: which nodes can take a server, and why the others cannot.
 *
 *  The filters are Kubernetes' predicates for what Orrery schedules on: a fresh heartbeat
 *  (Kubernetes' not-ready taint), not cordoned (NodeUnschedulable), NoSchedule taints
 *  tolerated (TaintToleration), every node-selector label present (NodeSelector), and the
 *  guarantees fitting in capacity minus what is already reserved (NodeResourcesFit, over
 *  cpu, memory, GPUs and the server count). They run in that order and stop at the first
 *  failure, so the refusal counts read like kube-scheduler's; only the fit reports every
 *  short resource at once. Everything here is pure: the cache hands in a node.
 */
#include "sched.h"

#include <stdio.h>
#include <string.h>

bool
sched_filter_ready (const sched_node_t *node, int64_t now_ms, int64_t timeout_ms)
{
    return node->heartbeat_ms > 0 && now_ms - node->heartbeat_ms <= timeout_ms;
}

bool
sched_filter_schedulable (const sched_node_t *node)
{
    return !node->cordoned;
}

bool
sched_toleration_matches (const sched_toleration_t *tol, const sched_taint_t *taint)
{
    if (tol->effect != SCHED_EFFECT_ANY && tol->effect != taint->effect)
        return false;
    if (tol->key[0] == '\0')
        return tol->exists;          /* empty key + Exists tolerates everything */
    if (strcmp (tol->key, taint->key) != 0)
        return false;
    return tol->exists || strcmp (tol->value, taint->value) == 0;
}

static bool
s_tolerated (const sched_taint_t *taint, const sched_request_t *req)
{
    for (size_t i = 0; i < req->ntolerations; i++)
        if (sched_toleration_matches (&req->tolerations[i], taint))
            return true;
    return false;
}

bool
sched_filter_taints (const sched_node_t *node, const sched_request_t *req)
{
    for (size_t i = 0; i < node->ntaints; i++)
        if (node->taints[i].effect == SCHED_EFFECT_NO_SCHEDULE && !s_tolerated (&node->taints[i], req))
            return false;
    return true;
}

bool
sched_filter_selector (const sched_node_t *node, const sched_request_t *req)
{
    for (size_t i = 0; i < req->nselector; i++) {
        bool found = false;
        for (size_t j = 0; j < node->nlabels && !found; j++)
            found = strcmp (node->labels[j].key, req->selector[i].key) == 0
                    && strcmp (node->labels[j].value, req->selector[i].value) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Does `want` more of a resource fit? Written so that no sum can overflow. */
static bool
s_fits (int64_t capacity, int64_t reserved, int64_t want)
{
    if (want <= 0)
        return true;
    return reserved <= capacity && want <= capacity - reserved;
}

unsigned
sched_filter_fit (const sched_resources_t *capacity, const sched_resources_t *reserved, const sched_resources_t *want)
{
    unsigned fail = 0;
    if (!s_fits (capacity->cpu_millis, reserved->cpu_millis, want->cpu_millis))
        fail |= SCHED_FAIL_CPU;
    if (!s_fits (capacity->memory_bytes, reserved->memory_bytes, want->memory_bytes))
        fail |= SCHED_FAIL_MEMORY;
    if (!s_fits (capacity->gpus, reserved->gpus, want->gpus))
        fail |= SCHED_FAIL_GPUS;
    /* a server count of 0 means the agent set no limit */
    if (capacity->servers > 0 && !s_fits (capacity->servers, reserved->servers, 1))
        fail |= SCHED_FAIL_SERVERS;
    return fail;
}

unsigned
sched_filter_node (const sched_node_t *node, const sched_request_t *req, int64_t now_ms, int64_t timeout_ms)
{
    if (!sched_filter_ready (node, now_ms, timeout_ms))
        return SCHED_FAIL_NOT_READY;
    if (!sched_filter_schedulable (node))
        return SCHED_FAIL_CORDONED;
    if (!sched_filter_taints (node, req))
        return SCHED_FAIL_TAINT;
    if (!sched_filter_selector (node, req))
        return SCHED_FAIL_SELECTOR;
    return sched_filter_fit (&node->capacity, &node->reserved, &req->want);
}

/* --- reasons --------------------------------------------------------------------------- */

static const char *s_reason_text[SCHED_FAIL_COUNT] = {
    "not ready", "cordoned", "untolerated taint", "didn't match node selector",
    "insufficient cpu", "insufficient memory", "insufficient gpus", "too many servers",
};

void
sched_reasons_add (sched_reasons_t *reasons, unsigned fail_bits)
{
    reasons->total++;
    for (int i = 0; i < SCHED_FAIL_COUNT; i++)
        if (fail_bits & (1u << i))
            reasons->counts[i]++;
}

char *
sched_reasons_format (const sched_reasons_t *reasons, char *out, size_t outlen)
{
    int order[SCHED_FAIL_COUNT];
    int n = 0;
    for (int i = 0; i < SCHED_FAIL_COUNT; i++)
        if (reasons->counts[i] > 0)
            order[n++] = i;
    /* insertion sort: largest count first, filter order among equals (stable) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && reasons->counts[order[j]] > reasons->counts[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t used = (size_t) snprintf (out, outlen, "0/%d nodes are available", reasons->total);
    for (int i = 0; i < n && used < outlen; i++)
        used += (size_t) snprintf (out + used, outlen - used, "%s%d %s", i == 0 ? ": " : ", ",
                                   reasons->counts[order[i]], s_reason_text[order[i]]);
    if (used < outlen)
        snprintf (out + used, outlen - used, ".");
    return out;
}
