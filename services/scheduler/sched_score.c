/*  sched_score: how good a feasible node is for a server, each score 0..100.
 *
 *  The formulas are Kubernetes' (pkg/scheduler/framework/plugins), in integer arithmetic
 *  where Kubernetes uses it, so a score here equals the one kube-scheduler would give:
 *  - LeastAllocated (spread): per resource (capacity − requested) · 100 / capacity, 0 when
 *    the capacity is 0 or exceeded; cpu and memory weighted equally, integer mean.
 *  - MostAllocated (pack): per resource min(requested, capacity) · 100 / capacity.
 *  - BalancedAllocation: the fractions requested/capacity (capped at 1; resources with no
 *    capacity skipped); score = (1 − std) · 100, where std is |f₁ − f₂| / 2 for two.
 *  - group spread (SelectorSpread): nodes holding fewer of the group's servers score higher,
 *    100 · (max − count) / max over the candidates.
 *  - PreferNoSchedule (TaintToleration's score): fewer intolerable soft taints score higher,
 *    normalised and reversed over the candidates.
 *  "requested" always includes the server being placed.
 */
#include "sched.h"

#include <math.h>

/* capacity and requested as the two resources Kubernetes scores on */
typedef struct {
    int64_t requested[2];
    int64_t capacity[2];
} s_two_t;

static s_two_t
s_cpu_memory (const sched_node_t *node, const sched_resources_t *want)
{
    s_two_t t = { { node->reserved.cpu_millis + want->cpu_millis, node->reserved.memory_bytes + want->memory_bytes },
                  { node->capacity.cpu_millis, node->capacity.memory_bytes } };
    return t;
}

static int64_t
s_least_requested (int64_t requested, int64_t capacity)
{
    if (capacity <= 0 || requested > capacity)
        return 0;
    return (capacity - requested) * SCHED_SCORE_MAX / capacity;
}

static int64_t
s_most_requested (int64_t requested, int64_t capacity)
{
    if (capacity <= 0)
        return 0;
    if (requested > capacity)
        requested = capacity;
    return requested * SCHED_SCORE_MAX / capacity;
}

int
sched_score_least_allocated (const sched_node_t *node, const sched_resources_t *want)
{
    s_two_t t = s_cpu_memory (node, want);
    return (int) ((s_least_requested (t.requested[0], t.capacity[0]) + s_least_requested (t.requested[1], t.capacity[1]))
                  / 2);
}

int
sched_score_most_allocated (const sched_node_t *node, const sched_resources_t *want)
{
    s_two_t t = s_cpu_memory (node, want);
    return (int) ((s_most_requested (t.requested[0], t.capacity[0]) + s_most_requested (t.requested[1], t.capacity[1]))
                  / 2);
}

int
sched_score_balanced_allocation (const sched_node_t *node, const sched_resources_t *want)
{
    s_two_t t = s_cpu_memory (node, want);
    double fraction[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        if (t.capacity[i] <= 0)
            continue;
        double f = (double) t.requested[i] / (double) t.capacity[i];
        fraction[n++] = f > 1 ? 1 : f;
    }
    double std = n == 2 ? fabs (fraction[0] - fraction[1]) / 2 : 0;
    return (int) ((1 - std) * SCHED_SCORE_MAX);
}

int
sched_score_group_spread (int count, int max_count)
{
    if (max_count <= 0)
        return SCHED_SCORE_MAX;
    return SCHED_SCORE_MAX * (max_count - count) / max_count;
}

int
sched_prefer_no_schedule_count (const sched_node_t *node, const sched_request_t *req)
{
    int count = 0;
    for (size_t i = 0; i < node->ntaints; i++) {
        if (node->taints[i].effect != SCHED_EFFECT_PREFER_NO_SCHEDULE)
            continue;
        bool tolerated = false;
        for (size_t j = 0; j < req->ntolerations && !tolerated; j++)
            tolerated = sched_toleration_matches (&req->tolerations[j], &node->taints[i]);
        if (!tolerated)
            count++;
    }
    return count;
}

int
sched_score_prefer_no_schedule (int count, int max_count)
{
    if (max_count <= 0)
        return SCHED_SCORE_MAX;
    return SCHED_SCORE_MAX - SCHED_SCORE_MAX * count / max_count;
}

int64_t
sched_score_node (const sched_profile_t *profile, const sched_node_t *node, const sched_request_t *req,
                  int max_group_count, int prefer_count, int max_prefer_count)
{
    int64_t sum = 0;
    if (profile->least_allocated)
        sum += (int64_t) profile->least_allocated * sched_score_least_allocated (node, &req->want);
    if (profile->most_allocated)
        sum += (int64_t) profile->most_allocated * sched_score_most_allocated (node, &req->want);
    if (profile->balanced_allocation)
        sum += (int64_t) profile->balanced_allocation * sched_score_balanced_allocation (node, &req->want);
    if (profile->group_spread)
        sum += (int64_t) profile->group_spread * sched_score_group_spread (node->group_count, max_group_count);
    if (profile->prefer_no_schedule)
        sum += (int64_t) profile->prefer_no_schedule * sched_score_prefer_no_schedule (prefer_count, max_prefer_count);
    return sum;
}
