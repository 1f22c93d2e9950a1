/*  test_sched_balance: paper 1's balancing experiment, as an acceptance test.
 *
 *  Users are placed one at a time (each its own group, 200m cpu / 800 MiB) onto 2, 3 and
 *  4 nodes of unequal size, until nothing more fits, and every node's cpu and memory
 *  utilisation (reserved / capacity) is read back after each placement:
 *  - profile `spread`: from the point where every node holds a server, the nodes' cpu
 *    utilisations stay within 10 percentage points of each other, and so do their memory
 *    utilisations;
 *  - profile `pack`: a node is full (cannot take another such server) before the next
 *    one receives its first server.
 *  The nodes share one cpu:memory ratio (4 GiB per core): with different ratios no
 *  placement can keep both resources within 10 points for identical servers, since each
 *  server moves a node's two utilisations by different amounts. Each run labels its nodes
 *  and selects on the label, so the runs share one scheduler without meeting.
 *  bench/balance draws the same experiment as CSV and PNG.
 */
#include "orr_signal.h"
#include "orr_util.h"
#include "sched_fixture.h"

#include <signal.h>
#include <string.h>

#define MAX_NODES 4

static const struct {
    int64_t cpu, mem;
} s_sizes[MAX_NODES] = { { 4000, 16 * TS_GiB }, { 8000, 32 * TS_GiB }, { 12000, 48 * TS_GiB }, { 16000, 64 * TS_GiB } };

#define SERVER_CPU 200
#define SERVER_MEM (800 * TS_MiB)

typedef struct {
    double cpu, mem;
    int64_t res_cpu, res_mem, cap_cpu, cap_mem;
    int servers;
} util_t;

static void
s_utilisation (orr_bus_client_t *client, char names[][32], int n, util_t *out)
{
    Orrery__NodeList *list = NULL;
    CHECK (ts_nodes (client, NULL, &list) == 200, "nodes");
    for (int k = 0; k < n; k++) {
        bool found = false;
        for (size_t i = 0; i < list->n_nodes && !found; i++) {
            const Orrery__NodeInfo *info = list->nodes[i];
            if (strcmp (info->name, names[k]) != 0)
                continue;
            found = true;
            out[k].res_cpu = info->reserved->cpu_millis;
            out[k].res_mem = info->reserved->memory_bytes;
            out[k].cap_cpu = info->capacity->cpu_millis;
            out[k].cap_mem = info->capacity->memory_bytes;
            out[k].servers = info->reserved->servers;
            out[k].cpu = 100.0 * (double) info->reserved->cpu_millis / (double) info->capacity->cpu_millis;
            out[k].mem = 100.0 * (double) info->reserved->memory_bytes / (double) info->capacity->memory_bytes;
        }
        CHECK (found, "node %s not listed", names[k]);
    }
    orrery__node_list__free_unpacked (list, NULL);
}

static bool
s_room (const util_t *u)
{
    return u->res_cpu + SERVER_CPU <= u->cap_cpu && u->res_mem + SERVER_MEM <= u->cap_mem;
}

static void
s_run (orr_events_pub_t *pub, orr_bus_client_t *client, const char *profile, int n)
{
    static int run;
    run++;
    char names[MAX_NODES][32], label[32];
    snprintf (label, sizeof label, "run=r%d", run);
    ts_node_t nodes[MAX_NODES];
    for (int k = 0; k < n; k++) {
        snprintf (names[k], sizeof names[k], "bal-r%d-%d", run, k);
        nodes[k] = (ts_node_t) { names[k], s_sizes[k].cpu, s_sizes[k].mem, 0, 0, label, NULL };
    }
    ts_register_nodes (pub, client, nodes, (size_t) n);

    int placed = 0, first_at[MAX_NODES];
    for (int k = 0; k < n; k++)
        first_at[k] = -1;
    double worst_cpu = 0, worst_mem = 0;
    bool all_hold = false;
    util_t u[MAX_NODES];
    for (;;) {
        char rid[48], group[48];
        snprintf (rid, sizeof rid, "r%d-user%d/", run, placed);
        snprintf (group, sizeof group, "r%d-user%d", run, placed);
        ts_place_t p = { rid, SERVER_CPU, SERVER_MEM, 0, profile, group, label, NULL };
        Orrery__PlaceResult *out = NULL;
        char err[256];
        CHECK (ts_place (client, &p, &out, err, sizeof err) == 200, "place: %s", err);
        bool ok = out->placed;
        char node[32] = "";
        if (ok)
            snprintf (node, sizeof node, "%s", out->node);
        orrery__place_result__free_unpacked (out, NULL);
        if (!ok)
            break;
        placed++;
        s_utilisation (client, names, n, u);
        for (int k = 0; k < n; k++)
            if (strcmp (node, names[k]) == 0 && first_at[k] < 0) {
                first_at[k] = placed;
                if (strcmp (profile, "pack") == 0)
                    for (int j = 0; j < n; j++)
                        CHECK (j == k || first_at[j] < 0 || first_at[j] == placed || !s_room (&u[j]),
                               "pack, %d nodes: %s got its first server (placement %d) while %s still had room "
                               "(%.1f%% cpu, %.1f%% memory)",
                               n, names[k], placed, names[j], u[j].cpu, u[j].mem);
            }
        all_hold = true;
        for (int k = 0; k < n; k++)
            all_hold = all_hold && u[k].servers > 0;
        if (all_hold && strcmp (profile, "spread") == 0) {
            double cmin = 100, cmax = 0, mmin = 100, mmax = 0;
            for (int k = 0; k < n; k++) {
                cmin = u[k].cpu < cmin ? u[k].cpu : cmin;
                cmax = u[k].cpu > cmax ? u[k].cpu : cmax;
                mmin = u[k].mem < mmin ? u[k].mem : mmin;
                mmax = u[k].mem > mmax ? u[k].mem : mmax;
            }
            worst_cpu = cmax - cmin > worst_cpu ? cmax - cmin : worst_cpu;
            worst_mem = mmax - mmin > worst_mem ? mmax - mmin : worst_mem;
            CHECK (cmax - cmin <= 10 && mmax - mmin <= 10,
                   "spread, %d nodes, placement %d: cpu utilisation %.1f..%.1f%%, memory %.1f..%.1f%%", n, placed,
                   cmin, cmax, mmin, mmax);
        }
    }
    /* until nothing fits: every node is full at the end */
    s_utilisation (client, names, n, u);
    for (int k = 0; k < n; k++)
        CHECK (!s_room (&u[k]), "%s, %d nodes: refused while %s had room", profile, n, names[k]);
    printf ("%-6s %d nodes: %3d servers placed; ", profile, n, placed);
    if (strcmp (profile, "spread") == 0)
        printf ("largest spread once all hold a server: cpu %.1f, memory %.1f points\n", worst_cpu, worst_mem);
    else {
        printf ("first server per node at placement:");
        for (int k = 0; k < n; k++)
            printf (" %d", first_at[k]);
        printf ("\n");
    }
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("sched-balance");
    tu_redis_t redis = { 0 };
    CHECK (tu_redis_start (&redis) == 0, "redis");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    char *env[] = { "ORRERY_NODE_TIMEOUT_MS=600000", "ORRERY_LOG_LEVEL=warn", NULL };
    pid_t sched = ts_scheduler_start (dir, b.addr, redis.url, "sched-0", env);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 5000, 3);
    orr_events_pub_t *pub = orr_events_pub_new (&opts);
    orr_events_pub_wait_ready (pub, 5000);
    orr_bus_client_t *client = orr_bus_client_new (&opts);

    for (int n = 2; n <= MAX_NODES; n++) {
        s_run (pub, client, "spread", n);
        s_run (pub, client, "pack", n);
    }

    orr_events_pub_destroy (&pub);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    int st = tu_stop (sched, SIGTERM, 10000);
    CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0, "scheduler exited badly (status %d)", st);
    tb_broker_stop (&b, SIGTERM);
    tu_redis_stop (&redis);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
