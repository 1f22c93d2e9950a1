/*  orrery-bench-scheduler: placements per second, with the reservation in Redis included,
 *  and the latency of one placement, at 100 to 10,000 nodes, with one scheduler replica
 *  and with two (docs/benchmarks.md, "Scheduler").
 *
 *  This file owns the measurement; bench_stack.c owns the processes. Every configuration
 *  (node count x replica count) gets a fresh stack -- redis-server, the orrery-bus broker
 *  and the orrery-scheduler replicas, all real -- so nothing carries over: no
 *  reservations, no cached nodes. Nodes register the way node agents do, by publishing
 *  node.heartbeat, and count as registered once the scheduler's `nodes` method lists them
 *  all ready (ORRERY_NODE_TIMEOUT_MS is an hour, so they stay ready without beating).
 *  Their capacity (96 to 192 cores, 4 GiB per core, no limit on the server count) leaves
 *  room for every placement of a run; a request refused for lack of room is counted and
 *  shown ("not placed"), never silently dropped.
 *
 *  Load: --clients threads, each with its own orr_bus_client, each sending place
 *  requests one at a time -- a fresh reservation id and group (user) per request, sizes
 *  cycling through small mixed guarantees -- for --warmup s (not counted) and then
 *  --duration s. Throughput = placements that started in the measured window / (last
 *  completion - window start); latency (p50, p99) is the client-side round trip of those
 *  same calls, i.e. under load. Then one client alone places for --idle s: the latency of
 *  one placement without queueing.
 *
 *  Alongside, where the CPU went during the measured window (% of one core: redis, broker,
 *  the scheduler replicas together, this load generator, and everything else on the
 *  machine), the context switches per placement of each (every blocking hop costs one, so
 *  they count wake-ups), and Redis' own account of the commands each placement cost (INFO
 *  commandstats, before and after).
 *
 *  The last line is exactly "scheduler placements/s at 5000 nodes: N", N the better of
 *  the 1- and 2-replica figures at 5,000 nodes (the line before says which); "n/a" when
 *  5,000 nodes were not measured.
 */
#include "bench_stack.h"
#include "orr_store.h"
#include "orr_util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 16
#define MAX_CLIENTS 64
#define MAX_CMDS 32

typedef struct {
    int64_t cpu_millis, memory_bytes;
} size_req_t;

/* Small, mixed guarantees, as notebook servers ask for. */
static const size_req_t s_sizes[] = {
    { 25, 128 * BS_MiB },  { 50, 256 * BS_MiB }, { 100, 384 * BS_MiB },
    { 250, 512 * BS_MiB }, { 500, 1 * BS_GiB },  { 100, 256 * BS_MiB },
};
#define NSIZES (sizeof s_sizes / sizeof s_sizes[0])
/* Node sizes in cores (4 GiB per core), in turn: on average 144 cores, room for about 840
 * of the requests above, so even 100 nodes take the ~40,000 placements of a fast run
 * while half empty. */
static const int s_node_cores[] = { 96, 128, 160, 192 };

typedef struct {
    int nodes[MAX_CASES], nnodes;
    int replicas[MAX_CASES], nreplicas;
    int clients;
    double warmup_s, duration_s, idle_s;
    const char *profile;
    const char *bin_dir;
    bool keep;
} config_t;

typedef struct {
    char name[32];
    uint64_t calls, usec;
} cmdstat_t;

typedef struct {
    int nodes, replicas;
    double rps, p50_ms, p99_ms, idle_p50_ms, idle_p99_ms;
    uint64_t placed, refused, errors, retried;   /* retried: placements needing > 1 reserve attempt */
    double cpu_redis, cpu_broker, cpu_sched, cpu_self, cpu_other;   /* % of one core */
    double ctx_redis, ctx_broker, ctx_sched, ctx_self;               /* context switches per placement */
    double register_s;
    cmdstat_t cmds[MAX_CMDS];
    int ncmds;
    uint64_t cmd_calls;
} result_t;

/* ---------------------------------------------------------------- clients */

typedef struct {
    bs_stack_t *st;
    const config_t *cfg;
    int id, run;
    pthread_barrier_t *barrier;
    const int64_t *warm_end_ns, *end_ns;   /* written by main between the two barrier waits */
    uint32_t *lat_us;
    size_t nlat, cap;
    uint64_t placed, refused, errors, retried;
    int64_t last_done_ns;
    char err[320];
} client_t;

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
s_sleep_until_ns (int64_t t)
{
    while (!bs_interrupted ()) {
        int64_t left = t - s_now_ns ();
        if (left <= 0)
            return;
        struct timespec ts = { .tv_sec = left / 1000000000, .tv_nsec = left % 1000000000 };
        if (ts.tv_sec > 0) {
            ts.tv_sec = 0;
            ts.tv_nsec = 100000000;   /* wake now and then to notice a signal */
        }
        nanosleep (&ts, NULL);
    }
}

/* Places until *end_ns; counts what started at or after *warm_end_ns. */
static void *
s_client_thread (void *arg)
{
    client_t *c = arg;
    orr_bus_client_t *client = bs_client (c->st);
    pthread_barrier_wait (c->barrier);   /* every client connected */
    pthread_barrier_wait (c->barrier);   /* main has set the times */
    int64_t warm_end = *c->warm_end_ns, end = *c->end_ns;
    for (uint64_t seq = 0; !bs_interrupted (); seq++) {
        int64_t t0 = s_now_ns ();
        if (t0 >= end)
            break;
        char rid[64], group[48];
        snprintf (group, sizeof group, "u%d-%d-%llu", c->run, c->id, (unsigned long long) seq);
        snprintf (rid, sizeof rid, "%s/", group);
        const size_req_t *sz = &s_sizes[(seq + (uint64_t) c->id) % NSIZES];
        Orrery__PlaceResult *out = NULL;
        char err[256];
        int status = bs_place (client, rid, group, c->cfg->profile, sz->cpu_millis, sz->memory_bytes, &out, err,
                               sizeof err);
        int64_t t1 = s_now_ns ();
        bool counted = t0 >= warm_end;
        if (status != 200) {
            c->errors += counted;
            snprintf (c->err, sizeof c->err, "status %d: %s", status, err);
            continue;
        }
        if (counted) {
            if (out->placed) {
                c->placed++;
                c->retried += out->attempts > 1;
            }
            else {
                c->refused++;
                snprintf (c->err, sizeof c->err, "not placed: %s", out->reason);
            }
            if (c->nlat == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 4096;
                c->lat_us = orr_realloc (c->lat_us, c->cap * sizeof *c->lat_us);
            }
            c->lat_us[c->nlat++] = (uint32_t) ((t1 - t0) / 1000);
            c->last_done_ns = t1;
        }
        orrery__place_result__free_unpacked (out, NULL);
    }
    orr_bus_client_destroy (&client);
    return NULL;
}

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values, in ms. */
static double
s_pct_ms (const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t) ceil (p * (double) n);
    return v[k ? k - 1 : 0] / 1000.0;
}

typedef struct {
    uint32_t *lat;
    size_t n;
    uint64_t placed, refused, errors, retried;
    int64_t last_done_ns;
} phase_t;

/* Runs `nclients` clients for warmup + duration seconds; returns their merged results. */
static phase_t
s_run_phase (bs_stack_t *st, const config_t *cfg, int run, int nclients, double warmup_s, double duration_s,
             void (*on_window) (void *ctx, int which), void *ctx)
{
    client_t *clients = orr_zalloc ((size_t) nclients * sizeof *clients);
    pthread_t *threads = orr_zalloc ((size_t) nclients * sizeof *threads);
    pthread_barrier_t barrier;
    pthread_barrier_init (&barrier, NULL, (unsigned) nclients + 1);
    int64_t warm_end = 0, end = 0;
    for (int i = 0; i < nclients; i++) {
        clients[i] = (client_t) { .st = st, .cfg = cfg, .id = i, .run = run, .barrier = &barrier,
                                  .warm_end_ns = &warm_end, .end_ns = &end };
        pthread_create (&threads[i], NULL, s_client_thread, &clients[i]);
    }
    pthread_barrier_wait (&barrier);
    warm_end = s_now_ns () + (int64_t) (warmup_s * 1e9);
    end = warm_end + (int64_t) (duration_s * 1e9);
    pthread_barrier_wait (&barrier);
    if (on_window) {
        s_sleep_until_ns (warm_end);
        on_window (ctx, 0);
        s_sleep_until_ns (end);
        on_window (ctx, 1);
    }
    phase_t ph = { .last_done_ns = warm_end };
    for (int i = 0; i < nclients; i++) {
        pthread_join (threads[i], NULL);
        ph.n += clients[i].nlat;
    }
    ph.lat = orr_zalloc ((ph.n ? ph.n : 1) * sizeof *ph.lat);
    size_t k = 0;
    for (int i = 0; i < nclients; i++) {
        client_t *c = &clients[i];
        memcpy (ph.lat + k, c->lat_us, c->nlat * sizeof *c->lat_us);
        k += c->nlat;
        ph.placed += c->placed;
        ph.refused += c->refused;
        ph.errors += c->errors;
        ph.retried += c->retried;
        if (c->last_done_ns > ph.last_done_ns)
            ph.last_done_ns = c->last_done_ns;
        if (c->errors || c->refused)
            fprintf (stderr, "client %d: %llu errors, %llu not placed (last: %s)\n", i,
                     (unsigned long long) c->errors, (unsigned long long) c->refused, c->err);
        free (c->lat_us);
    }
    qsort (ph.lat, ph.n, sizeof *ph.lat, s_cmp_u32);
    pthread_barrier_destroy (&barrier);
    free (threads);
    free (clients);
    ph.last_done_ns -= warm_end;   /* now: the measured span */
    return ph;
}

/* ---------------------------------------------------------------- accounting */

typedef struct {
    uint64_t redis, broker, sched, self, system;
    uint64_t ctx_redis, ctx_broker, ctx_sched, ctx_self;
    int64_t t_ns;
    cmdstat_t cmds[MAX_CMDS];
    int ncmds;
} snap_t;

typedef struct {
    bs_stack_t *st;
    orr_store_t *store;
    snap_t at[2];
} window_t;

/* INFO commandstats: "cmdstat_evalsha:calls=12,usec=345,..." per command. */
static void
s_cmdstats (orr_store_t *store, snap_t *s)
{
    s->ncmds = 0;
    redisReply *r = orr_store_command (store, "INFO commandstats");
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject (r);
        return;
    }
    for (char *save = NULL, *line = strtok_r (r->str, "\r\n", &save); line && s->ncmds < MAX_CMDS;
         line = strtok_r (NULL, "\r\n", &save)) {
        char name[32];
        unsigned long long calls, usec;
        if (sscanf (line, "cmdstat_%31[^:]:calls=%llu,usec=%llu", name, &calls, &usec) == 3
            && strcmp (name, "info") != 0) {
            snprintf (s->cmds[s->ncmds].name, sizeof s->cmds[s->ncmds].name, "%s", name);
            s->cmds[s->ncmds].calls = calls;
            s->cmds[s->ncmds].usec = usec;
            s->ncmds++;
        }
    }
    freeReplyObject (r);
}

static void
s_snap (void *ctx, int which)
{
    window_t *w = ctx;
    snap_t *s = &w->at[which];
    s_cmdstats (w->store, s);
    s->t_ns = s_now_ns ();
    s->redis = bs_cpu_ticks (w->st->redis);
    s->broker = bs_cpu_ticks (w->st->broker);
    s->sched = 0;
    for (int i = 0; i < w->st->replicas; i++)
        s->sched += bs_cpu_ticks (w->st->sched[i]);
    s->self = bs_cpu_ticks (0);
    s->system = bs_system_busy_ticks ();
    s->ctx_redis = bs_ctx_switches (w->st->redis);
    s->ctx_broker = bs_ctx_switches (w->st->broker);
    s->ctx_sched = 0;
    for (int i = 0; i < w->st->replicas; i++)
        s->ctx_sched += bs_ctx_switches (w->st->sched[i]);
    s->ctx_self = bs_ctx_switches (0);
}

/* Context switches per placement (placements known by then). */
static void
s_account_ctx (const window_t *w, result_t *r)
{
    const snap_t *a = &w->at[0], *b = &w->at[1];
    double n = r->placed ? (double) r->placed : 1;
    r->ctx_redis = (double) (b->ctx_redis - a->ctx_redis) / n;
    r->ctx_broker = (double) (b->ctx_broker - a->ctx_broker) / n;
    r->ctx_sched = (double) (b->ctx_sched - a->ctx_sched) / n;
    r->ctx_self = (double) (b->ctx_self - a->ctx_self) / n;
}

static void
s_account (const window_t *w, result_t *r)
{
    const snap_t *a = &w->at[0], *b = &w->at[1];
    double per_pct = (double) (b->t_ns - a->t_ns) / 1e9 * (double) sysconf (_SC_CLK_TCK) / 100.0;
    if (per_pct <= 0)
        return;
    r->cpu_redis = (double) (b->redis - a->redis) / per_pct;
    r->cpu_broker = (double) (b->broker - a->broker) / per_pct;
    r->cpu_sched = (double) (b->sched - a->sched) / per_pct;
    r->cpu_self = (double) (b->self - a->self) / per_pct;
    double ours = (double) ((b->redis - a->redis) + (b->broker - a->broker) + (b->sched - a->sched)
                            + (b->self - a->self));
    double other = ((double) (b->system - a->system) - ours) / per_pct;
    r->cpu_other = other > 0 ? other : 0;
    r->ncmds = 0;
    r->cmd_calls = 0;
    for (int i = 0; i < b->ncmds; i++) {
        cmdstat_t d = b->cmds[i];
        for (int j = 0; j < a->ncmds; j++)
            if (strcmp (a->cmds[j].name, d.name) == 0) {
                d.calls -= a->cmds[j].calls;
                d.usec -= a->cmds[j].usec;
            }
        if (d.calls) {
            r->cmds[r->ncmds++] = d;
            r->cmd_calls += d.calls;
        }
    }
}

/* ---------------------------------------------------------------- one configuration */

static result_t
s_run_case (const config_t *cfg, int run, int nodes, int replicas)
{
    result_t r = { .nodes = nodes, .replicas = replicas };
    char *env[] = { "ORRERY_NODE_TIMEOUT_MS=3600000", "ORRERY_LOG_LEVEL=warn", NULL };
    bs_stack_t st;
    bs_stack_start (&st, replicas, env);

    bs_node_t *list = orr_zalloc ((size_t) nodes * sizeof *list);
    for (int i = 0; i < nodes; i++) {
        int cores = s_node_cores[i % (int) (sizeof s_node_cores / sizeof s_node_cores[0])];
        snprintf (list[i].name, sizeof list[i].name, "node-%05d", i);
        list[i].cpu_millis = cores * 1000LL;
        list[i].memory_bytes = cores * 4 * BS_GiB;
        list[i].servers = 0;
    }
    orr_bus_client_t *client = bs_client (&st);
    int64_t register_ms = bs_register_nodes (&st, client, list, (size_t) nodes, 120000);
    orr_bus_client_destroy (&client);
    if (register_ms < 0)
        bs_exit_interrupted ();
    r.register_s = (double) register_ms / 1000.0;
    free (list);
    /* every replica re-reads the node index each second: let each one's cache hold them all */
    orr_sleep_ms (1200);

    window_t w = { .st = &st, .store = orr_store_new (st.redis_url) };
    phase_t ph = s_run_phase (&st, cfg, run, cfg->clients, cfg->warmup_s, cfg->duration_s, s_snap, &w);
    s_account (&w, &r);
    orr_store_destroy (&w.store);
    r.placed = ph.placed;
    r.refused = ph.refused;
    r.errors = ph.errors;
    r.retried = ph.retried;
    s_account_ctx (&w, &r);
    r.rps = ph.last_done_ns > 0 ? (double) ph.placed / ((double) ph.last_done_ns / 1e9) : 0;
    r.p50_ms = s_pct_ms (ph.lat, ph.n, 0.50);
    r.p99_ms = s_pct_ms (ph.lat, ph.n, 0.99);
    free (ph.lat);

    if (cfg->idle_s > 0 && !bs_interrupted ()) {
        phase_t one = s_run_phase (&st, cfg, run + 1000, 1, 0.2, cfg->idle_s, NULL, NULL);
        r.idle_p50_ms = s_pct_ms (one.lat, one.n, 0.50);
        r.idle_p99_ms = s_pct_ms (one.lat, one.n, 0.99);
        r.errors += one.errors;
        r.refused += one.refused;
        free (one.lat);
    }
    else
        r.idle_p50_ms = r.idle_p99_ms = NAN;
    bs_stack_stop (&st);
    return r;
}

/* ---------------------------------------------------------------- output */

static void
s_header (void)
{
    printf ("\n%6s %8s %13s %7s %7s %12s %12s %10s %6s %7s\n", "nodes", "replicas", "placements/s", "p50 ms",
            "p99 ms", "1-client p50", "1-client p99", "not placed", "errors", "retried");
}

static void
s_row (const result_t *r)
{
    printf ("%6d %8d %13.0f %7.2f %7.2f %12.2f %12.2f %10llu %6llu %7llu\n", r->nodes, r->replicas, r->rps, r->p50_ms,
            r->p99_ms, r->idle_p50_ms, r->idle_p99_ms, (unsigned long long) r->refused, (unsigned long long) r->errors,
            (unsigned long long) r->retried);
}

/* CPU of each process during the measured window: % of one core, and per placement. */
static void
s_cpu_table (const result_t *res, int n)
{
    printf ("\nwhere the CPU went in the measured window (%% of one core; us of CPU and context switches per "
            "placement):\n");
    printf ("%6s %8s  %-30s  %-42s %s\n", "nodes", "replicas", "cpu% redis/bus/sched/load/other",
            "us/placement redis/bus/sched/load = total", "switches/placement redis/bus/sched/load");
    for (int i = 0; i < n; i++) {
        const result_t *r = &res[i];
        char pct[64], per[96];
        snprintf (pct, sizeof pct, "%.0f/%.0f/%.0f/%.0f/%.0f", r->cpu_redis, r->cpu_broker, r->cpu_sched, r->cpu_self,
                  r->cpu_other);
        /* % of a core / placements per second = us per placement / 100 * 1e6 / 1e6 */
        double k = r->rps > 0 ? 1e4 / r->rps : 0;
        snprintf (per, sizeof per, "%.0f/%.0f/%.0f/%.0f = %.0f", r->cpu_redis * k, r->cpu_broker * k,
                  r->cpu_sched * k, r->cpu_self * k, (r->cpu_redis + r->cpu_broker + r->cpu_sched + r->cpu_self) * k);
        printf ("%6d %8d  %-30s  %-42s %.1f/%.1f/%.1f/%.1f\n", r->nodes, r->replicas, pct, per, r->ctx_redis,
                r->ctx_broker, r->ctx_sched, r->ctx_self);
    }
}

static int
s_by_usec (const void *a, const void *b)
{
    const cmdstat_t *x = a, *y = b;
    return x->usec > y->usec ? -1 : x->usec < y->usec;
}

/* Redis' own account per placement: every command with its calls and server time. The
 * commands a script runs are counted both on their own and inside evalsha's time. */
static void
s_redis_line (result_t *r)
{
    if (!r->placed)
        return;
    qsort (r->cmds, (size_t) r->ncmds, sizeof r->cmds[0], s_by_usec);
    printf ("%6d %8d  %5.1f cmds:", r->nodes, r->replicas, (double) r->cmd_calls / (double) r->placed);
    for (int i = 0; i < r->ncmds; i++)
        printf (" %s %.2fx %.1fus", r->cmds[i].name, (double) r->cmds[i].calls / (double) r->placed,
                (double) r->cmds[i].usec / (double) r->placed);
    printf ("\n");
}

/* ---------------------------------------------------------------- setup */

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: orrery-bench-scheduler [options]\n"
             "  --nodes L      comma-separated node counts (default 100,1000,5000,10000)\n"
             "  --replicas L   comma-separated scheduler replica counts (default 1,2)\n"
             "  --clients N    concurrent client threads (default 8)\n"
             "  --warmup S     unmeasured seconds before each measurement (default 1)\n"
             "  --duration S   measured seconds per configuration (default 5)\n"
             "  --idle S       seconds of single-client latency per configuration (default 1; 0 = skip)\n"
             "  --profile P    scheduling profile of the requests (default: the scheduler's, spread)\n"
             "  --bin-dir D    where orrery-bus and orrery-scheduler are (default: next to this program)\n"
             "  --keep         keep the servers' logs (the directory is printed)\n");
}

static int
s_parse_list (const char *v, int *out, int *n, long lo, long hi)
{
    size_t count;
    char **items = orr_split (v, ',', &count);
    *n = 0;
    int rc = count ? 0 : -1;
    for (size_t k = 0; k < count && rc == 0; k++) {
        long l;
        if (*n >= MAX_CASES || orr_parse_long (items[k], &l) != 0 || l < lo || l > hi)
            rc = -1;
        else
            out[(*n)++] = (int) l;
    }
    orr_strv_free (&items);
    return rc;
}

static int
s_parse_args (config_t *cfg, int argc, char **argv)
{
    *cfg = (config_t) { .nodes = { 100, 1000, 5000, 10000 }, .nnodes = 4, .replicas = { 1, 2 }, .nreplicas = 2,
                        .clients = 8, .warmup_s = 1, .duration_s = 5, .idle_s = 1, .profile = "" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp (a, "--help") || !strcmp (a, "-h")) {
            s_usage (stdout);
            exit (0);
        }
        if (!strcmp (a, "--keep")) {
            cfg->keep = true;
            continue;
        }
        if (!v)
            goto bad;
        i++;
        long l;
        char *end;
        double d = strtod (v, &end);
        bool num_ok = *v && !*end && d >= 0 && d <= 3600;
        if (!strcmp (a, "--nodes")) {
            if (s_parse_list (v, cfg->nodes, &cfg->nnodes, 1, 100000) != 0)
                goto bad;
        }
        else if (!strcmp (a, "--replicas")) {
            if (s_parse_list (v, cfg->replicas, &cfg->nreplicas, 1, BS_MAX_REPLICAS) != 0)
                goto bad;
        }
        else if (!strcmp (a, "--clients") && orr_parse_long (v, &l) == 0 && l >= 1 && l <= MAX_CLIENTS)
            cfg->clients = (int) l;
        else if (!strcmp (a, "--warmup") && num_ok)
            cfg->warmup_s = d;
        else if (!strcmp (a, "--duration") && num_ok && d > 0)
            cfg->duration_s = d;
        else if (!strcmp (a, "--idle") && num_ok)
            cfg->idle_s = d;
        else if (!strcmp (a, "--profile"))
            cfg->profile = v;
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
    bs_init ("orrery-bench-scheduler", cfg.bin_dir, cfg.keep);
    bs_machine_notes ();
    printf ("settings: %d clients, warm-up %.1f s, measured %.1f s, single-client %.1f s per configuration; "
            "profile %s; nodes of 96/128/160/192 cores with 4 GiB per core, no server limit; requests of "
            "25m-500m cpu and 128 MiB-1 GiB\n",
            cfg.clients, cfg.warmup_s, cfg.duration_s, cfg.idle_s, *cfg.profile ? cfg.profile : "default (spread)");
    if (cfg.keep)
        printf ("logs: %s\n", bs_dir ());
    fflush (stdout);

    result_t results[MAX_CASES * MAX_CASES];
    int nres = 0;
    s_header ();
    fflush (stdout);
    for (int i = 0; i < cfg.nnodes; i++)
        for (int j = 0; j < cfg.nreplicas; j++) {
            result_t r = s_run_case (&cfg, nres, cfg.nodes[i], cfg.replicas[j]);
            if (bs_interrupted ())
                bs_exit_interrupted ();
            results[nres++] = r;
            s_row (&r);
            fflush (stdout);
        }
    printf ("\n(p50/p99: round trip of one place call as a client sees it, under the load of %d clients; "
            "1-client: one client alone. not placed: refused for lack of room, which should be 0. retried: "
            "placements that lost a race to the other replica and reserved on a later candidate.)\n",
            cfg.clients);
    s_cpu_table (results, nres);
    printf ("\nredis per placement (INFO commandstats: command, calls, server us; a script's own commands are "
            "counted both alone and in evalsha):\n");
    for (int i = 0; i < nres; i++)
        s_redis_line (&results[i]);
    printf ("\nregistration (heartbeats until `nodes` lists all ready):");
    for (int i = 0; i < nres; i++)
        printf (" %d/%d %.1fs", results[i].nodes, results[i].replicas, results[i].register_s);
    printf ("\n");

    const result_t *best = NULL;
    for (int i = 0; i < nres; i++)
        if (results[i].nodes == 5000 && (results[i].replicas == 1 || results[i].replicas == 2)
            && (!best || results[i].rps > best->rps))
            best = &results[i];
    if (best) {
        printf ("\nbest at 5000 nodes: %d replica%s (", best->replicas, best->replicas > 1 ? "s" : "");
        const char *sep = "";
        for (int i = 0; i < nres; i++)
            if (results[i].nodes == 5000 && results[i].replicas <= 2) {
                printf ("%s%d replica%s %.0f/s", sep, results[i].replicas, results[i].replicas > 1 ? "s" : "",
                        results[i].rps);
                sep = ", ";
            }
        printf ("); target >= 1000 placements/s\n");
        printf ("scheduler placements/s at 5000 nodes: %.0f\n", best->rps);
    }
    else
        printf ("\nscheduler placements/s at 5000 nodes: n/a\n");
    fflush (stdout);
    return 0;
}
