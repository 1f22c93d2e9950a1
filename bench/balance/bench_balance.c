/*  orrery-bench-balance: paper 1's pod-count balancing experiment, on Orrery's scheduler
 *  (docs/benchmarks.md, "Balance"). Users are placed one at a time onto 2, 3 and 4 nodes
 *  of unequal size but the same cpu:memory ratio, with the `spread` profile and with
 *  `pack`, until nothing fits; after each placement every node's cpu and memory
 *  utilisation (reserved / capacity, from the scheduler's `nodes` method) is recorded.
 *
 *  This file owns the experiment and its outputs; bench/scheduler/bench_stack.c owns the
 *  processes (a fresh redis-server, broker and one real orrery-scheduler per run, nodes
 *  registered by node.heartbeat). Outputs, in --out (default bench/balance/out/):
 *    PROFILE-Nnodes.csv   placement,node,cpu_util,mem_util (fractions; placement 0 = empty)
 *    PROFILE.gp           the gnuplot script, data inline, so the plot can be redrawn
 *    PROFILE.png          utilisation per node against placements: a row per node set,
 *                         cpu on the left, memory on the right
 *  and, per run, on stdout:
 *    spread: the largest spread (max - min, percentage points) of cpu and of memory
 *            utilisation across the nodes, from the first placement after which every
 *            node holds a server to the last placement;
 *    pack:   for the nodes in the order they received their first server, whether each
 *            was full -- could not take the server that went to the next one instead --
 *            before the next one received its first.
 *  Every user is a distinct reservation id and group; by default each asks 200m cpu and
 *  800 MiB (--mixed: 100m/400 MiB, 200m/800 MiB and 400m/1600 MiB in turn; a size once
 *  refused is not asked again, and a run ends when every size is refused).
 */
#include "bench_stack.h"
#include "orr_spawn.h"
#include "orr_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef BENCH_BALANCE_OUT
#define BENCH_BALANCE_OUT "bench/balance/out"
#endif

#define MAX_NODES 4
#define MAX_PLACEMENTS 10000
#define MAX_SIZES 3

/* Unequal nodes, 4 GiB per core each. */
static const struct {
    const char *name;
    int cores;
} s_node_set[MAX_NODES] = { { "a-4c16g", 4 }, { "b-8c32g", 8 }, { "c-16c64g", 16 }, { "d-12c48g", 12 } };

typedef struct {
    int64_t cpu_millis, memory_bytes;
} user_size_t;

typedef struct {
    const char *profiles[2];
    int nprofiles;
    int counts[3];
    int ncounts;
    bool mixed;
    const char *out;
    const char *bin_dir;
    const char *gnuplot;
    bool keep;
} config_t;

/* One run's record: utilisation[p][k] after placement p (0 = before any), per node k. */
typedef struct {
    const char *profile;
    int n;
    bs_node_t nodes[MAX_NODES];
    int placements;
    double (*cpu)[MAX_NODES], (*mem)[MAX_NODES];
    int (*servers)[MAX_NODES];
    int64_t (*res_cpu)[MAX_NODES], (*res_mem)[MAX_NODES];
    user_size_t *size;         /* size[p]: what placement p asked for (p >= 1) */
    int *chosen;               /* chosen[p]: the node placement p went to */
    char refusal[512];
} run_t;

static void
s_run_alloc (run_t *r)
{
    size_t rows = MAX_PLACEMENTS + 1;
    r->cpu = orr_zalloc (rows * sizeof *r->cpu);
    r->mem = orr_zalloc (rows * sizeof *r->mem);
    r->servers = orr_zalloc (rows * sizeof *r->servers);
    r->res_cpu = orr_zalloc (rows * sizeof *r->res_cpu);
    r->res_mem = orr_zalloc (rows * sizeof *r->res_mem);
    r->size = orr_zalloc (rows * sizeof *r->size);
    r->chosen = orr_zalloc (rows * sizeof *r->chosen);
}

static void
s_run_free (run_t *r)
{
    free (r->cpu);
    free (r->mem);
    free (r->servers);
    free (r->res_cpu);
    free (r->res_mem);
    free (r->size);
    free (r->chosen);
}

/* Row p of the record, from the scheduler's `nodes`. */
static void
s_record (orr_bus_client_t *client, run_t *r, int p)
{
    Orrery__NodeList *list = NULL;
    char err[256];
    if (bs_nodes (client, &list, err, sizeof err) != 200)
        bs_die ("nodes: %s", err);
    for (int k = 0; k < r->n; k++) {
        const Orrery__NodeInfo *info = NULL;
        for (size_t i = 0; i < list->n_nodes && !info; i++)
            if (strcmp (list->nodes[i]->name, r->nodes[k].name) == 0)
                info = list->nodes[i];
        if (!info || !info->capacity || !info->reserved || info->capacity->cpu_millis <= 0
            || info->capacity->memory_bytes <= 0)
            bs_die ("nodes: %s missing or without capacity", r->nodes[k].name);
        r->res_cpu[p][k] = info->reserved->cpu_millis;
        r->res_mem[p][k] = info->reserved->memory_bytes;
        r->servers[p][k] = info->reserved->servers;
        r->cpu[p][k] = (double) info->reserved->cpu_millis / (double) info->capacity->cpu_millis;
        r->mem[p][k] = (double) info->reserved->memory_bytes / (double) info->capacity->memory_bytes;
    }
    orrery__node_list__free_unpacked (list, NULL);
}

static int
s_node_index (const run_t *r, const char *name)
{
    for (int k = 0; k < r->n; k++)
        if (strcmp (r->nodes[k].name, name) == 0)
            return k;
    return -1;
}

/* Places users one at a time until nothing fits. */
static void
s_run (const config_t *cfg, run_t *r)
{
    static const user_size_t fixed[] = { { 200, 800 * BS_MiB } };
    static const user_size_t mixed[] = { { 100, 400 * BS_MiB }, { 200, 800 * BS_MiB }, { 400, 1600 * BS_MiB } };
    const user_size_t *sizes = cfg->mixed ? mixed : fixed;
    int nsizes = cfg->mixed ? 3 : 1;
    bool refused[MAX_SIZES] = { false };
    int nrefused = 0;

    char *env[] = { "ORRERY_NODE_TIMEOUT_MS=3600000", "ORRERY_LOG_LEVEL=warn", NULL };
    bs_stack_t st;
    bs_stack_start (&st, 1, env);
    orr_bus_client_t *client = bs_client (&st);
    if (bs_register_nodes (&st, client, r->nodes, (size_t) r->n, 30000) < 0) {
        orr_bus_client_destroy (&client);
        bs_exit_interrupted ();
    }
    s_record (client, r, 0);
    int p = 0;
    for (int u = 0; nrefused < nsizes && p < MAX_PLACEMENTS; u++) {
        if (bs_interrupted ()) {
            orr_bus_client_destroy (&client);
            bs_exit_interrupted ();
        }
        int si = u % nsizes;
        if (refused[si])
            continue;
        char rid[64], group[32];
        snprintf (group, sizeof group, "user%04d", u);
        snprintf (rid, sizeof rid, "%s/", group);
        Orrery__PlaceResult *out = NULL;
        char err[256];
        int status = bs_place (client, rid, group, r->profile, sizes[si].cpu_millis, sizes[si].memory_bytes, &out, err,
                               sizeof err);
        if (status != 200)
            bs_die ("place %s: status %d: %s", rid, status, err);
        if (out->placed) {
            p++;
            r->size[p] = sizes[si];
            r->chosen[p] = s_node_index (r, out->node);
            if (r->chosen[p] < 0)
                bs_die ("place %s: placed on unknown node %s", rid, out->node);
            s_record (client, r, p);
        }
        else {
            refused[si] = true;
            nrefused++;
            snprintf (r->refusal, sizeof r->refusal, "%s", out->reason ? out->reason : "");
        }
        orrery__place_result__free_unpacked (out, NULL);
    }
    r->placements = p;
    orr_bus_client_destroy (&client);
    bs_stack_stop (&st);
}

/* ---------------------------------------------------------------- outputs */

static void
s_write_csv (const config_t *cfg, const run_t *r)
{
    char *path = orr_sprintf ("%s/%s-%dnodes.csv", cfg->out, r->profile, r->n);
    FILE *f = fopen (path, "w");
    if (!f)
        bs_die ("%s: %s", path, strerror (errno));
    fprintf (f, "placement,node,cpu_util,mem_util\n");
    for (int p = 0; p <= r->placements; p++)
        for (int k = 0; k < r->n; k++)
            fprintf (f, "%d,%s,%.6f,%.6f\n", p, r->nodes[k].name, r->cpu[p][k], r->mem[p][k]);
    fclose (f);
    printf ("  wrote %s\n", path);
    free (path);
}

static bool
s_fits (const run_t *r, int p, int k, const user_size_t *size)
{
    return r->res_cpu[p][k] + size->cpu_millis <= r->nodes[k].cpu_millis
           && r->res_mem[p][k] + size->memory_bytes <= r->nodes[k].memory_bytes;
}

static void
s_report_spread (const run_t *r)
{
    int from = -1;
    for (int p = 1; p <= r->placements && from < 0; p++) {
        bool all = true;
        for (int k = 0; k < r->n; k++)
            all = all && r->servers[p][k] > 0;
        if (all)
            from = p;
    }
    if (from < 0) {
        printf ("  never did every node hold a server\n");
        return;
    }
    double worst[2] = { 0, 0 };
    int at[2] = { from, from };
    for (int p = from; p <= r->placements; p++)
        for (int res = 0; res < 2; res++) {
            double lo = 1e9, hi = -1e9;
            for (int k = 0; k < r->n; k++) {
                double v = res == 0 ? r->cpu[p][k] : r->mem[p][k];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            if ((hi - lo) * 100 > worst[res]) {
                worst[res] = (hi - lo) * 100;
                at[res] = p;
            }
        }
    printf ("  every node holds a server from placement %d; largest spread across nodes since: cpu %.1f pp "
            "(placement %d), memory %.1f pp (placement %d)\n",
            from, worst[0], at[0], worst[1], at[1]);
}

static void
s_report_pack (const run_t *r)
{
    int first[MAX_NODES], order[MAX_NODES], n = 0;
    for (int k = 0; k < r->n; k++) {
        first[k] = -1;
        for (int p = 1; p <= r->placements && first[k] < 0; p++)
            if (r->chosen[p] == k)
                first[k] = p;
    }
    /* nodes in the order they received their first server; unused ones last */
    for (int p = 1; p <= r->placements; p++)
        if (first[r->chosen[p]] == p)
            order[n++] = r->chosen[p];
    int used = n;
    for (int k = 0; k < r->n; k++)
        if (first[k] < 0)
            order[n++] = k;
    printf ("  order of first servers:");
    for (int i = 0; i < used; i++)
        printf (" %s (placement %d)", r->nodes[order[i]].name, first[order[i]]);
    printf ("\n");
    bool all = true;
    for (int i = 0; i + 1 < used; i++) {
        int a = order[i], b = order[i + 1], pb = first[b];
        /* before placement pb, could node a still take the server that went to b? */
        bool full = !s_fits (r, pb - 1, a, &r->size[pb]);
        all = all && full;
        printf ("  %s full (could not take another server) before %s received its first (placement %d): %s\n",
                r->nodes[a].name, r->nodes[b].name, pb, full ? "yes" : "NO");
    }
    for (int i = used; i < n; i++)
        printf ("  %s never received a server\n", r->nodes[order[i]].name);
    printf ("  pack: every node filled before the next one was used: %s\n", all ? "yes" : "NO");
}

static void
s_report (const run_t *r)
{
    printf ("%s, %d nodes:", r->profile, r->n);
    for (int k = 0; k < r->n; k++)
        printf (" %s", r->nodes[k].name);
    printf ("\n  %d placed, then: %s\n  final utilisation cpu/memory:", r->placements, r->refusal);
    for (int k = 0; k < r->n; k++)
        printf (" %s %.1f%%/%.1f%%", r->nodes[k].name, 100 * r->cpu[r->placements][k], 100 * r->mem[r->placements][k]);
    printf ("\n");
    if (strcmp (r->profile, "pack") == 0)
        s_report_pack (r);
    else
        s_report_spread (r);
    fflush (stdout);
}

/* A multiplot per profile: a row per node set, cpu left and memory right. */
static void
s_plot (const config_t *cfg, const char *profile, run_t *runs, int nruns)
{
    char *gp = orr_sprintf ("%s/%s.gp", cfg->out, profile);
    char *png = orr_sprintf ("%s/%s.png", cfg->out, profile);
    FILE *f = fopen (gp, "w");
    if (!f)
        bs_die ("%s: %s", gp, strerror (errno));
    fprintf (f, "# %s: node utilisation against placements, profile %s (written by orrery-bench-balance)\n",
             profile, profile);
    for (int i = 0; i < nruns; i++) {
        run_t *r = &runs[i];
        fprintf (f, "$run%d << EOD\n", i);
        for (int p = 0; p <= r->placements; p++) {
            fprintf (f, "%d", p);
            for (int k = 0; k < r->n; k++)
                fprintf (f, " %.3f %.3f", 100 * r->cpu[p][k], 100 * r->mem[p][k]);
            fprintf (f, "\n");
        }
        fprintf (f, "EOD\n");
    }
    fprintf (f,
             "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
             "  set terminal pngcairo size 1200,%d font 'sans,10'\n"
             "} else {\n"
             "  set terminal png size 1200,%d\n"
             "}\n"
             "set output '%s'\n"
             "set multiplot layout %d,2 title 'Orrery scheduler, profile %s: utilisation (reserved / capacity) per "
             "node after each placement'\n"
             "set yrange [0:105]\nset ylabel 'utilisation %%'\nset xlabel 'placements'\nset grid\n"
             "set key outside right top vertical\n",
             340 * nruns, 340 * nruns, png, nruns, profile);
    for (int i = 0; i < nruns; i++) {
        run_t *r = &runs[i];
        for (int res = 0; res < 2; res++) {
            fprintf (f, "set title '%d nodes: %s'\nplot ", r->n, res == 0 ? "cpu" : "memory");
            for (int k = 0; k < r->n; k++)
                fprintf (f, "%s$run%d using 1:%d with lines lw 2 title '%s'", k ? ", " : "", i, 2 + 2 * k + res,
                         r->nodes[k].name);
            fprintf (f, "\n");
        }
    }
    fprintf (f, "unset multiplot\n");
    fclose (f);

    char *log = orr_sprintf ("%s/gnuplot-%s.log", bs_dir (), profile);
    char *argv[] = { (char *) cfg->gnuplot, gp, NULL };
    pid_t pid = orr_spawn (argv, NULL, log);
    int status = -1;
    if (pid > 0)
        waitpid (pid, &status, 0);
    if (pid > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0)
        printf ("plot: %s (script %s)\n", png, gp);
    else
        fprintf (stderr, "warning: %s failed on %s (see %s); the CSV files are complete\n", cfg->gnuplot, gp, log);
    free (log);
    free (gp);
    free (png);
}

/* ---------------------------------------------------------------- setup */

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: orrery-bench-balance [options]\n"
             "  --profiles L   spread, pack or both (default spread,pack)\n"
             "  --nodes L      node counts among 2,3,4 (default 2,3,4)\n"
             "  --mixed        users of 100m/400 MiB, 200m/800 MiB and 400m/1600 MiB in turn (default: all 200m/800 MiB)\n"
             "  --out DIR      where the CSV files and plots go (default " BENCH_BALANCE_OUT ")\n"
             "  --gnuplot P    the gnuplot program (default gnuplot)\n"
             "  --bin-dir D    where orrery-bus and orrery-scheduler are (default: next to this program)\n"
             "  --keep         keep the servers' logs\n");
}

static int
s_parse_args (config_t *cfg, int argc, char **argv)
{
    *cfg = (config_t) { .profiles = { "spread", "pack" }, .nprofiles = 2, .counts = { 2, 3, 4 }, .ncounts = 3,
                        .out = BENCH_BALANCE_OUT, .gnuplot = "gnuplot" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
            s_usage (stdout);
            exit (0);
        }
        if (!strcmp (a, "--keep") || !strcmp (a, "--mixed")) {
            *(a[2] == 'k' ? &cfg->keep : &cfg->mixed) = true;
            continue;
        }
        if (!v)
            goto bad;
        i++;
        if (!strcmp (a, "--profiles") || !strcmp (a, "--nodes")) {
            size_t count;
            char **items = orr_split (v, ',', &count);
            bool ok = count > 0 && count <= 3;
            if (a[2] == 'p') {
                cfg->nprofiles = 0;
                for (size_t k = 0; k < count && ok; k++) {
                    ok = (!strcmp (items[k], "spread") || !strcmp (items[k], "pack")) && cfg->nprofiles < 2;
                    if (ok)
                        cfg->profiles[cfg->nprofiles++] = !strcmp (items[k], "spread") ? "spread" : "pack";
                }
            }
            else {
                cfg->ncounts = 0;
                for (size_t k = 0; k < count && ok; k++) {
                    long l;
                    ok = orr_parse_long (items[k], &l) == 0 && l >= 2 && l <= MAX_NODES;
                    if (ok)
                        cfg->counts[cfg->ncounts++] = (int) l;
                }
            }
            orr_strv_free (&items);
            if (!ok)
                goto bad;
        }
        else if (!strcmp (a, "--out"))
            cfg->out = v;
        else if (!strcmp (a, "--gnuplot"))
            cfg->gnuplot = v;
        else if (!strcmp (a, "--bin-dir"))
            cfg->bin_dir = v;
        else
            goto bad;
    }
    return 0;
bad:
    s_usage (stderr);
    return -1;
}

int
main (int argc, char **argv)
{
    config_t cfg;
    if (s_parse_args (&cfg, argc, argv) != 0)
        return 2;
    bs_init ("orrery-bench-balance", cfg.bin_dir, cfg.keep);
    if (mkdir (cfg.out, 0755) != 0 && errno != EEXIST)
        bs_die ("%s: %s", cfg.out, strerror (errno));
    bs_machine_notes ();
    printf ("users: %s, each its own reservation id and group; nodes:", cfg.mixed ? "100m/400 MiB, 200m/800 MiB "
                                                                                  "and 400m/1600 MiB in turn"
                                                                                : "200m cpu / 800 MiB each");
    for (int k = 0; k < MAX_NODES; k++)
        printf (" %s", s_node_set[k].name);
    printf (" (4 GiB per core; a run with N nodes uses the first N)\n\n");
    fflush (stdout);

    for (int pi = 0; pi < cfg.nprofiles; pi++) {
        run_t runs[3];
        memset (runs, 0, sizeof runs);
        for (int ci = 0; ci < cfg.ncounts; ci++) {
            run_t *r = &runs[ci];
            r->profile = cfg.profiles[pi];
            r->n = cfg.counts[ci];
            for (int k = 0; k < r->n; k++) {
                snprintf (r->nodes[k].name, sizeof r->nodes[k].name, "%s", s_node_set[k].name);
                r->nodes[k].cpu_millis = s_node_set[k].cores * 1000LL;
                r->nodes[k].memory_bytes = s_node_set[k].cores * 4 * BS_GiB;
                r->nodes[k].servers = 0;
            }
            s_run_alloc (r);
            s_run (&cfg, r);
            s_report (r);
            s_write_csv (&cfg, r);
        }
        s_plot (&cfg, cfg.profiles[pi], runs, cfg.ncounts);
        printf ("\n");
        for (int ci = 0; ci < cfg.ncounts; ci++)
            s_run_free (&runs[ci]);
    }
    return 0;
}
