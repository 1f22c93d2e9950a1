/*  test_sched_units: every filter and score of the scheduler against values worked out by
 *  hand from the formulas (Kubernetes' LeastAllocated, MostAllocated, BalancedAllocation,
 *  SelectorSpread and TaintToleration), with the edge cases: zero capacity, exact fit,
 *  GPUs asked of a GPU-less node, over-committed nodes; the sampling rule and profiles.
 *  Pure functions: no Redis, no bus.
 */
#include "sched.h"
#include "testutil.h"

#include <string.h>

#define GiB (1024LL * 1024 * 1024)

static sched_node_t
s_node (int64_t cpu, int64_t mem, int64_t gpus, int64_t servers)
{
    sched_node_t n;
    memset (&n, 0, sizeof n);
    n.name = "n";
    n.capacity = (sched_resources_t) { cpu, mem, gpus, servers };
    n.heartbeat_ms = 1000000;
    return n;
}

static sched_request_t
s_req (int64_t cpu, int64_t mem, int64_t gpus)
{
    sched_request_t r;
    memset (&r, 0, sizeof r);
    r.want = (sched_resources_t) { cpu, mem, gpus, 1 };
    return r;
}

static void
test_ready_and_cordon (void)
{
    sched_node_t n = s_node (1000, GiB, 0, 0);
    n.heartbeat_ms = 10000;
    CHECK (sched_filter_ready (&n, 10000 + 5000, 5000), "exactly at the timeout is still ready");
    CHECK (!sched_filter_ready (&n, 10000 + 5001, 5000), "one ms past the timeout is not ready");
    n.heartbeat_ms = 0;
    CHECK (!sched_filter_ready (&n, 1, 5000), "never heard from: not ready");
    n.heartbeat_ms = 10000;
    CHECK (sched_filter_schedulable (&n), "uncordoned");
    n.cordoned = true;
    CHECK (!sched_filter_schedulable (&n), "cordoned");
    /* the order: a not-ready node that is also full reports only "not ready" */
    sched_request_t r = s_req (5000, 0, 0);
    CHECK_EQ_INT (sched_filter_node (&n, &r, 10000 + 6000, 5000), SCHED_FAIL_NOT_READY);
    CHECK_EQ_INT (sched_filter_node (&n, &r, 10000, 5000), SCHED_FAIL_CORDONED);
    n.cordoned = false;
    CHECK_EQ_INT (sched_filter_node (&n, &r, 10000, 5000), SCHED_FAIL_CPU);
}

static void
test_fit (void)
{
    sched_resources_t cap = { 4000, 8 * GiB, 0, 10 };
    sched_resources_t res = { 3000, 6 * GiB, 0, 9 };
    sched_resources_t want = { 1000, 2 * GiB, 0, 1 };
    CHECK_EQ_INT (sched_filter_fit (&cap, &res, &want), 0);   /* exact fit on all three */
    want.cpu_millis = 1001;
    CHECK_EQ_INT (sched_filter_fit (&cap, &res, &want), SCHED_FAIL_CPU);
    want.memory_bytes = 2 * GiB + 1;
    CHECK_EQ_INT (sched_filter_fit (&cap, &res, &want), SCHED_FAIL_CPU | SCHED_FAIL_MEMORY);
    res.servers = 10;
    CHECK_EQ_INT (sched_filter_fit (&cap, &res, &want), SCHED_FAIL_CPU | SCHED_FAIL_MEMORY | SCHED_FAIL_SERVERS);
    cap.servers = 0;   /* no limit on the count */
    res.servers = 1000;
    want = (sched_resources_t) { 0, 0, 0, 1 };
    CHECK_EQ_INT (sched_filter_fit (&cap, &res, &want), 0);

    /* zero capacity: asking for none of it fits, asking for any does not */
    sched_resources_t zero = { 0, 0, 0, 0 }, none = { 0, 0, 0, 0 };
    want = (sched_resources_t) { 0, 0, 0, 1 };
    CHECK_EQ_INT (sched_filter_fit (&zero, &none, &want), 0);
    want.cpu_millis = 1;
    CHECK_EQ_INT (sched_filter_fit (&zero, &none, &want), SCHED_FAIL_CPU);

    /* a GPU asked of a GPU-less node */
    sched_resources_t big = { 64000, 256 * GiB, 0, 0 };
    want = (sched_resources_t) { 1000, GiB, 1, 1 };
    CHECK_EQ_INT (sched_filter_fit (&big, &none, &want), SCHED_FAIL_GPUS);
    big.gpus = 1;
    CHECK_EQ_INT (sched_filter_fit (&big, &none, &want), 0);
    sched_resources_t one_gpu_used = { 0, 0, 1, 0 };
    CHECK_EQ_INT (sched_filter_fit (&big, &one_gpu_used, &want), SCHED_FAIL_GPUS);

    /* over-committed (capacity lowered under the reservations): nothing more fits, no overflow */
    sched_resources_t shrunk = { 1000, GiB, 0, 0 }, over = { 2000, 2 * GiB, 0, 0 };
    want = (sched_resources_t) { 1, 1, 0, 1 };
    CHECK_EQ_INT (sched_filter_fit (&shrunk, &over, &want), SCHED_FAIL_CPU | SCHED_FAIL_MEMORY);
    sched_resources_t huge_want = { INT64_MAX, INT64_MAX, 0, 1 }, some = { 1, 1, 0, 0 };
    sched_resources_t huge_cap = { INT64_MAX, INT64_MAX, 0, 0 };
    CHECK_EQ_INT (sched_filter_fit (&huge_cap, &some, &huge_want), SCHED_FAIL_CPU | SCHED_FAIL_MEMORY);
}

static void
test_taints_and_selector (void)
{
    sched_node_t n = s_node (1000, GiB, 0, 0);
    sched_taint_t taints[] = { { "dedicated", "user", SCHED_EFFECT_NO_SCHEDULE },
                               { "spot", "yes", SCHED_EFFECT_PREFER_NO_SCHEDULE } };
    n.taints = taints;
    n.ntaints = 2;
    sched_request_t r = s_req (0, 0, 0);
    CHECK (!sched_filter_taints (&n, &r), "NoSchedule taint, no toleration");
    sched_toleration_t t_equal = { "dedicated", "user", false, SCHED_EFFECT_NO_SCHEDULE };
    sched_toleration_t t_wrong_value = { "dedicated", "other", false, SCHED_EFFECT_ANY };
    sched_toleration_t t_exists = { "dedicated", "", true, SCHED_EFFECT_ANY };
    sched_toleration_t t_all = { "", "", true, SCHED_EFFECT_ANY };
    sched_toleration_t t_wrong_effect = { "dedicated", "user", false, SCHED_EFFECT_PREFER_NO_SCHEDULE };
    r.ntolerations = 1;
    r.tolerations = &t_equal;
    CHECK (sched_filter_taints (&n, &r), "Equal key/value/effect tolerates");
    r.tolerations = &t_wrong_value;
    CHECK (!sched_filter_taints (&n, &r), "Equal with another value does not");
    r.tolerations = &t_exists;
    CHECK (sched_filter_taints (&n, &r), "Exists on the key tolerates any value");
    r.tolerations = &t_all;
    CHECK (sched_filter_taints (&n, &r), "empty key + Exists tolerates everything");
    r.tolerations = &t_wrong_effect;
    CHECK (!sched_filter_taints (&n, &r), "a toleration for another effect does not");
    /* PreferNoSchedule never filters; it is counted for the score */
    n.ntaints = 1;
    n.taints = &taints[1];
    r.ntolerations = 0;
    CHECK (sched_filter_taints (&n, &r), "PreferNoSchedule does not filter");
    CHECK_EQ_INT (sched_prefer_no_schedule_count (&n, &r), 1);
    sched_toleration_t t_spot = { "spot", "", true, SCHED_EFFECT_PREFER_NO_SCHEDULE };
    r.ntolerations = 1;
    r.tolerations = &t_spot;
    CHECK_EQ_INT (sched_prefer_no_schedule_count (&n, &r), 0);
    CHECK_EQ_INT (sched_filter_node (&n, &r, n.heartbeat_ms, 1000), 0);
    n.taints = taints;
    n.ntaints = 2;
    r.ntolerations = 0;
    CHECK_EQ_INT (sched_filter_node (&n, &r, n.heartbeat_ms, 1000), SCHED_FAIL_TAINT);

    sched_label_t labels[] = { { "zone", "a" }, { "gpu", "yes" } };
    sched_node_t m = s_node (1000, GiB, 0, 0);
    m.labels = labels;
    m.nlabels = 2;
    sched_request_t q = s_req (0, 0, 0);
    CHECK (sched_filter_selector (&m, &q), "no selector matches every node");
    sched_label_t want_a[] = { { "zone", "a" } }, want_b[] = { { "zone", "b" } },
                  want_both[] = { { "zone", "a" }, { "gpu", "yes" } }, want_missing[] = { { "rack", "1" } };
    q.nselector = 1;
    q.selector = want_a;
    CHECK (sched_filter_selector (&m, &q), "zone=a");
    q.selector = want_b;
    CHECK (!sched_filter_selector (&m, &q), "zone=b");
    q.selector = want_missing;
    CHECK (!sched_filter_selector (&m, &q), "absent key");
    q.selector = want_both;
    q.nselector = 2;
    CHECK (sched_filter_selector (&m, &q), "both labels");
    CHECK_EQ_INT (sched_filter_node (&m, &q, m.heartbeat_ms, 1000), 0);
    q.selector = want_b;
    q.nselector = 1;
    CHECK_EQ_INT (sched_filter_node (&m, &q, m.heartbeat_ms, 1000), SCHED_FAIL_SELECTOR);
}

static void
test_reasons (void)
{
    sched_reasons_t r;
    memset (&r, 0, sizeof r);
    for (int i = 0; i < 4; i++)
        sched_reasons_add (&r, SCHED_FAIL_TAINT);
    for (int i = 0; i < 8; i++)
        sched_reasons_add (&r, SCHED_FAIL_MEMORY);
    char out[256];
    CHECK_EQ_STR (sched_reasons_format (&r, out, sizeof out),
                  "0/12 nodes are available: 8 insufficient memory, 4 untolerated taint.");
    memset (&r, 0, sizeof r);
    sched_reasons_add (&r, SCHED_FAIL_CPU | SCHED_FAIL_MEMORY);
    sched_reasons_add (&r, SCHED_FAIL_NOT_READY);
    /* equal counts keep the filter order */
    CHECK_EQ_STR (sched_reasons_format (&r, out, sizeof out),
                  "0/2 nodes are available: 1 not ready, 1 insufficient cpu, 1 insufficient memory.");
    memset (&r, 0, sizeof r);
    CHECK_EQ_STR (sched_reasons_format (&r, out, sizeof out), "0/0 nodes are available.");
    char tiny[10];
    sched_reasons_add (&r, SCHED_FAIL_GPUS);
    sched_reasons_format (&r, tiny, sizeof tiny);
    CHECK_EQ_INT (strlen (tiny), 9);   /* truncated, still terminated */
}

static void
test_scores (void)
{
    /* requested cpu 2000/4000 (50%), memory 4/8 GiB (50%), the new server included */
    sched_node_t n = s_node (4000, 8 * GiB, 0, 0);
    n.reserved = (sched_resources_t) { 1000, 2 * GiB, 0, 1 };
    sched_resources_t want = { 1000, 2 * GiB, 0, 1 };
    CHECK_EQ_INT (sched_score_least_allocated (&n, &want), 50);
    CHECK_EQ_INT (sched_score_most_allocated (&n, &want), 50);
    CHECK_EQ_INT (sched_score_balanced_allocation (&n, &want), 100);

    /* cpu 3000/4000 = 75%, memory 1/8 GiB = 12.5%:
     *   least: cpu (4000-3000)*100/4000 = 25, mem (8-1)*100/8 = 87 (87.5 floored); (25+87)/2 = 56
     *   most:  cpu 75, mem 12 (12.5 floored); (75+12)/2 = 43
     *   balanced: std = |0.75 - 0.125| / 2 = 0.3125; (1 - 0.3125) * 100 = 68.75 -> 68 */
    n.reserved = (sched_resources_t) { 2500, GiB / 2, 0, 1 };
    want = (sched_resources_t) { 500, GiB / 2, 0, 1 };
    CHECK_EQ_INT (sched_score_least_allocated (&n, &want), 56);
    CHECK_EQ_INT (sched_score_most_allocated (&n, &want), 43);
    CHECK_EQ_INT (sched_score_balanced_allocation (&n, &want), 68);

    /* empty node, nothing asked: least 100, most 0, balanced 100 */
    sched_node_t e = s_node (2000, 4 * GiB, 0, 0);
    sched_resources_t nothing = { 0, 0, 0, 1 };
    CHECK_EQ_INT (sched_score_least_allocated (&e, &nothing), 100);
    CHECK_EQ_INT (sched_score_most_allocated (&e, &nothing), 0);
    CHECK_EQ_INT (sched_score_balanced_allocation (&e, &nothing), 100);

    /* requested above capacity: least gives that resource 0, most caps it at 100;
     * cpu 6000/4000 (over), memory 2/8 GiB = 25%:
     *   least (0 + 75)/2 = 37; most (100 + 25)/2 = 62; balanced: fractions 1 (capped), 0.25
     *   -> std 0.375 -> 62.5 -> 62 */
    n.reserved = (sched_resources_t) { 5000, GiB, 0, 1 };
    want = (sched_resources_t) { 1000, GiB, 0, 1 };
    CHECK_EQ_INT (sched_score_least_allocated (&n, &want), 37);
    CHECK_EQ_INT (sched_score_most_allocated (&n, &want), 62);
    CHECK_EQ_INT (sched_score_balanced_allocation (&n, &want), 62);

    /* zero capacity: that resource scores 0 in least and most, and balanced skips it
     * (one resource left: std 0 -> 100). cpu 0 capacity, memory 3/4 GiB:
     *   least (0 + 25)/2 = 12; most (0 + 75)/2 = 37 */
    sched_node_t z = s_node (0, 4 * GiB, 0, 0);
    want = (sched_resources_t) { 0, 3 * GiB, 0, 1 };
    CHECK_EQ_INT (sched_score_least_allocated (&z, &want), 12);
    CHECK_EQ_INT (sched_score_most_allocated (&z, &want), 37);
    CHECK_EQ_INT (sched_score_balanced_allocation (&z, &want), 100);

    /* group spread, normalised over the candidates */
    CHECK_EQ_INT (sched_score_group_spread (0, 0), 100);
    CHECK_EQ_INT (sched_score_group_spread (0, 2), 100);
    CHECK_EQ_INT (sched_score_group_spread (1, 2), 50);
    CHECK_EQ_INT (sched_score_group_spread (2, 2), 0);
    CHECK_EQ_INT (sched_score_group_spread (1, 3), 66);   /* 100*2/3 = 66.67 floored */
    /* PreferNoSchedule, reversed: 100 - 100*count/max */
    CHECK_EQ_INT (sched_score_prefer_no_schedule (0, 0), 100);
    CHECK_EQ_INT (sched_score_prefer_no_schedule (0, 2), 100);
    CHECK_EQ_INT (sched_score_prefer_no_schedule (1, 2), 50);
    CHECK_EQ_INT (sched_score_prefer_no_schedule (1, 3), 67);   /* 100 - 33 */
    CHECK_EQ_INT (sched_score_prefer_no_schedule (3, 3), 0);
}

static void
test_weighted_sum_and_profiles (void)
{
    char err[256];
    sched_profiles_t *p = sched_profiles_new (NULL, NULL, err, sizeof err);
    CHECK (p, "%s", err);
    const sched_profile_t *spread = sched_profiles_find (p, "");
    CHECK_EQ_STR (spread->name, "spread");
    const sched_profile_t *pack = sched_profiles_find (p, "pack");
    CHECK (pack && pack->most_allocated == 1 && pack->least_allocated == 0, "pack is MostAllocated");
    CHECK (!sched_profiles_find (p, "nope"), "unknown profile");

    /* cpu 75% / mem 12.5% node from test_scores; group count 1 of max 2; 1 of 2 soft taints:
     *   spread = least 56*1 + balanced 68*1 + spread 50*1 + prefer 50*3 = 324
     *   pack   = most 43*1 + prefer 50*3 = 193 */
    sched_node_t n = s_node (4000, 8 * GiB, 0, 0);
    n.reserved = (sched_resources_t) { 2500, GiB / 2, 0, 1 };
    n.group_count = 1;
    sched_request_t r = s_req (500, GiB / 2, 0);
    CHECK_EQ_INT (sched_score_node (spread, &n, &r, 2, 1, 2), 324);
    CHECK_EQ_INT (sched_score_node (pack, &n, &r, 2, 1, 2), 193);
    sched_profiles_destroy (&p);
    CHECK (!p, "destroy nulls the pointer");

    p = sched_profiles_new ("{\"gpu\": {\"most_allocated\": 2, \"group_spread\": 1}, \"pack\": {\"least_allocated\": 5}}",
                            "gpu", err, sizeof err);
    CHECK (p, "%s", err);
    const sched_profile_t *gpu = sched_profiles_find (p, "");
    CHECK_EQ_STR (gpu->name, "gpu");
    CHECK (gpu->most_allocated == 2 && gpu->group_spread == 1 && gpu->least_allocated == 0, "weights read");
    const sched_profile_t *new_pack = sched_profiles_find (p, "pack");
    CHECK (new_pack->least_allocated == 5 && new_pack->most_allocated == 0, "a configured profile replaces a built-in");
    sched_profiles_destroy (&p);

    const char *bad[] = { "[1]", "{\"x\": 3}", "{\"x\": {\"least\": 1}}", "{\"x\": {\"most_allocated\": -1}}",
                          "{\"x\": {\"most_allocated\": 1.5}}", "{", "{\"\": {}}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK (!sched_profiles_new (bad[i], NULL, err, sizeof err), "accepted %s", bad[i]);
        CHECK (strstr (err, "PROFILES"), "error for %s names the setting: %s", bad[i], err);
    }
    CHECK (!sched_profiles_new (NULL, "fastest", err, sizeof err), "unknown default");
    CHECK (strstr (err, "fastest"), "%s", err);
}

static void
test_sampling (void)
{
    CHECK_EQ_INT (sched_nodes_to_find (0, 0, 100), 0);
    CHECK_EQ_INT (sched_nodes_to_find (50, 0, 100), 50);
    CHECK_EQ_INT (sched_nodes_to_find (100, 0, 100), 100);
    CHECK_EQ_INT (sched_nodes_to_find (101, 0, 100), 100);     /* 50 - 0 = 50% of 101 = 50 -> at least 100 */
    CHECK_EQ_INT (sched_nodes_to_find (1000, 0, 100), 420);    /* 50 - 8 = 42% */
    CHECK_EQ_INT (sched_nodes_to_find (5000, 0, 100), 500);    /* 50 - 40 = 10% */
    CHECK_EQ_INT (sched_nodes_to_find (6000, 0, 100), 300);    /* 50 - 48 = 2% -> floored at 5% */
    CHECK_EQ_INT (sched_nodes_to_find (10000, 0, 100), 500);   /* 5% */
    CHECK_EQ_INT (sched_nodes_to_find (1000, 20, 100), 200);   /* configured */
    CHECK_EQ_INT (sched_nodes_to_find (1000, 5, 100), 100);    /* 50, raised to the minimum */
    CHECK_EQ_INT (sched_nodes_to_find (1000, 100, 100), 1000);
    CHECK_EQ_INT (sched_nodes_to_find (300, 0, 500), 300);
}

int
main (void)
{
    test_ready_and_cordon ();
    test_fit ();
    test_taints_and_selector ();
    test_reasons ();
    test_scores ();
    test_weighted_sum_and_profiles ();
    test_sampling ();
    printf ("test_sched_units: ok\n");
    return 0;
}
