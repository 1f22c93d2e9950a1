/*  orrery-bench-bus: request/reply round trips per second and latency through the broker,
 *  against the same traffic sent straight to the workers.
 *
 *  Servers (child processes, started once and shared by every case):
 *    - the real orrery-bus broker (from the same bin/ as this program) on P..P+2;
 *    - W bus workers: orrery-bench-bus-worker --bus, lib/orr_bus_worker echoing the body
 *      (credit --credit, default 4);
 *    - W direct workers: orrery-bench-bus-worker --direct, a bare ROUTER echoing every
 *      message, each on its own port.
 *  Every child gets PR_SET_PDEATHSIG (SIGKILL), so it dies with us even if we are killed;
 *  at exit they get SIGTERM, then SIGKILL after 3 s. Ports are free ones below 32768.
 *
 *  Cases: for each client count N (--clients, default "1,16"), mode "broker" then mode
 *  "direct". A case starts N threads; each owns its own connection (an orr_bus_client
 *  for broker mode; one DEALER connected to every direct worker, so DEALER round-robins,
 *  for direct mode) and loops synchronously: fresh request id, send --body bytes, wait
 *  for the reply, check it. All threads start together; requests that start in the first
 *  --warmup seconds are not counted, then requests starting in the next --duration
 *  seconds are counted and timed (CLOCK_MONOTONIC, around the whole call). Throughput is
 *  counted requests / (last completion - end of warm-up); latency percentiles are
 *  nearest-rank over every counted request of every thread.
 *
 *  Alongside, the CPU time (utime + stime from /proc) that the broker, the workers of the
 *  mode and this process (the load generator) used during the measured window is shown
 *  as % of one core, and "other": busy time of the whole machine (/proc/stat) minus ours,
 *  i.e. whatever else ran. On a small machine the load generator competes with the
 *  servers and anything else running skews the figures; these columns show by how much.
 *
 *  --bus-worker lean swaps the bus workers for a one-thread worker that speaks the
 *  protocol itself (see bench_worker.c): a diagnostic that separates what the broker hop
 *  costs from what lib/orr_bus_worker costs.
 *
 *  A first SIGINT/SIGTERM lets the clients finish their request and exits through the
 *  same cleanup; a second one stops the children and leaves at once.
 *
 *  The last line is exactly "bus broker/direct throughput ratio: R", R = broker req/s /
 *  direct req/s at the largest client count, with 2 decimals.
 */
#include "orr_bus_client.h"
#include "orr_spawn.h"
#include "orr_util.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define BENCH_SERVICE "bench.echo"
#define BENCH_MAX_CHILDREN 32
#define BENCH_MAX_WORKERS 8
#define BENCH_MAX_CASES 16
#define BENCH_REPLY_TIMEOUT_MS 5000

typedef enum { MODE_BROKER = 0, MODE_DIRECT = 1 } bench_mode_t;
static const char *s_mode_names[] = { "broker", "direct" };

typedef struct {
    double duration_s;
    double warmup_s;
    int clients[BENCH_MAX_CASES];
    int nclients;
    int credit;
    int workers;
    size_t body;
    bool run_mode[2];         /* --mode: which of broker, direct to run */
    bool lean;                /* --bus-worker lean: the diagnostic single-thread worker */
    char bin_dir[PATH_MAX];
    bool keep;
} config_t;

typedef struct {
    bench_mode_t mode;
    int clients;
    uint64_t count, errors;
    double elapsed_s, rps, p50_us, p99_us, mean_us;
    double cpu_broker, cpu_workers, cpu_self;   /* % of one core */
    double cpu_others;        /* every other process on the machine, % of one core */
} result_t;

/* ---------------------------------------------------------------- child processes */

static volatile pid_t s_children[BENCH_MAX_CHILDREN];
static volatile int s_nchildren = 0;
static char s_dir[PATH_MAX];
static bool s_keep_dir = false;

static volatile sig_atomic_t s_interrupted = 0;

/* First signal: clients stop after their current request and main exits through
 * s_cleanup. A second one: stop the children and leave at once. */
static void
s_on_signal (int sig)
{
    if (s_interrupted) {
        for (int i = 0; i < s_nchildren; i++)
            if (s_children[i] > 0)
                kill (s_children[i], SIGTERM);
        _exit (128 + sig);
    }
    s_interrupted = sig;
}

static pid_t
s_spawn (char *const argv[], char *const env[], const char *logfile)
{
    pid_t pid = orr_spawn (argv, env, logfile);
    if (pid < 0) {
        fprintf (stderr, "fork: %s\n", strerror (errno));
        exit (1);
    }
    if (s_nchildren < BENCH_MAX_CHILDREN) {
        s_children[s_nchildren] = pid;
        s_nchildren = s_nchildren + 1;
    }
    return pid;
}

static bool
s_alive (pid_t pid)
{
    int status;
    return waitpid (pid, &status, WNOHANG) == 0;
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

static void
s_cleanup (void)
{
    for (int i = 0; i < s_nchildren; i++)
        if (s_children[i] > 0)
            kill (s_children[i], SIGTERM);
    for (int i = 0; i < s_nchildren; i++) {
        pid_t pid = s_children[i];
        if (pid <= 0)
            continue;
        int status;
        int64_t give_up = orr_mono_ms () + 3000;
        while (waitpid (pid, &status, WNOHANG) == 0) {
            if (orr_mono_ms () >= give_up) {
                kill (pid, SIGKILL);
                waitpid (pid, &status, 0);
                break;
            }
            orr_sleep_ms (5);
        }
        s_children[i] = 0;
    }
    if (s_dir[0] && !s_keep_dir)
        nftw (s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- ports */

static bool
s_port_free (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    close (fd);
    return ok;
}

/* `span` consecutive free ports below 32768, none of them in `taken`. */
static int
s_free_ports (int span, const int *taken, int ntaken)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        int p = orr_free_port ();
        if (p <= 0 || p + span - 1 >= 32768)
            continue;
        bool ok = true;
        for (int k = 0; k < span && ok; k++) {
            ok = k == 0 || s_port_free (p + k);
            for (int t = 0; t < ntaken && ok; t++)
                ok = taken[t] != p + k;
        }
        if (ok)
            return p;
    }
    return -1;
}

static int
s_wait_port (int port, pid_t pid, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    while (orr_mono_ms () < deadline) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        int ok = connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
        close (fd);
        if (ok)
            return 0;
        if (!s_alive (pid) || s_interrupted)
            return -1;
        orr_sleep_ms (10);
    }
    return -1;
}

/* Counts lines of `path` containing `needle`. */
static int
s_count_in_file (const char *path, const char *needle)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets (line, sizeof line, f))
        if (strstr (line, needle))
            n++;
    fclose (f);
    return n;
}

/* ---------------------------------------------------------------- CPU accounting */

/* utime + stime of a process in clock ticks (all its threads), or 0. */
static uint64_t
s_cpu_ticks (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    char buf[2048];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    char *p = strrchr (buf, ')');   /* the command name may contain spaces */
    if (!p)
        return 0;
    unsigned long long utime = 0, stime = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

/* ---------------------------------------------------------------- clients */

typedef struct {
    const config_t *cfg;
    bench_mode_t mode;
    const char *broker_addr;
    char (*direct_eps)[64];
    int ndirect;
    pthread_barrier_t *barrier;
    const int64_t *warm_end_ns, *end_ns;   /* written by main between the two barrier waits */
    /* results */
    uint32_t *lat_ns;
    size_t nlat, cap;
    uint64_t errors;
    int64_t last_done_ns;
    char err[256];
} client_t;

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps until the monotonic clock reads `t` (ns), or until a signal asked us to stop. */
static void
s_sleep_until (int64_t t)
{
    int64_t now;
    while (!s_interrupted && (now = s_now_ns ()) < t) {
        int64_t left = t - now > 100000000 ? 100000000 : t - now;
        struct timespec ts = { 0, (long) left };
        nanosleep (&ts, NULL);
    }
}

static void
s_record (client_t *c, int64_t ns)
{
    if (c->nlat == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->lat_ns = orr_realloc (c->lat_ns, c->cap * sizeof *c->lat_ns);
    }
    c->lat_ns[c->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t) ns;
}

/* One round trip on the direct DEALER: [request-id] [body] out, the same back. */
static int
s_direct_request (void *dealer, const char *body, size_t len, char *buf, size_t buflen)
{
    char rid[32];
    orr_bus_new_request_id (rid);
    size_t ridlen = strlen (rid);
    if (zmq_send (dealer, rid, ridlen, ZMQ_SNDMORE) < 0 || zmq_send (dealer, body, len, 0) < 0)
        return -1;
    while (1) {
        char got[64];
        int n = zmq_recv (dealer, got, sizeof got, 0);
        if (n < 0)
            return -1;   /* timeout (ZMQ_RCVTIMEO) */
        int more = 0;
        size_t ml = sizeof more;
        zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &ml);
        if (!more)
            continue;   /* malformed; cannot happen with our workers */
        int m = zmq_recv (dealer, buf, buflen, 0);
        if (m < 0)
            return -1;
        if ((size_t) n == ridlen && memcmp (got, rid, ridlen) == 0)
            return (size_t) m == len && memcmp (buf, body, len) == 0 ? 0 : -1;
        /* a stale reply to an earlier, timed-out request: keep waiting */
    }
}

static void *
s_client_thread (void *arg)
{
    client_t *c = arg;
    const config_t *cfg = c->cfg;
    char *body = orr_zalloc (cfg->body + 1);
    for (size_t i = 0; i < cfg->body; i++)
        body[i] = (char) ('a' + (int) (i % 26));
    char *buf = orr_zalloc (cfg->body + 64);

    orr_bus_opts_t opts;
    orr_bus_client_t *client = NULL;
    zsock_t *dealer = NULL;
    if (c->mode == MODE_BROKER) {
        orr_bus_opts_init (&opts, c->broker_addr);
        opts.timeout_ms = BENCH_REPLY_TIMEOUT_MS;
        opts.retries = 1;
        client = orr_bus_client_new (&opts);
        if (!client)
            snprintf (c->err, sizeof c->err, "cannot create a bus client for %s", c->broker_addr);
    }
    else {
        dealer = zsock_new (ZMQ_DEALER);
        zsock_set_linger (dealer, 0);
        zsock_set_rcvtimeo (dealer, BENCH_REPLY_TIMEOUT_MS);
        for (int i = 0; i < c->ndirect; i++)
            zsock_connect (dealer, "%s", c->direct_eps[i]);
    }
    pthread_barrier_wait (c->barrier);   /* every client is ready */
    pthread_barrier_wait (c->barrier);   /* main has set the clock */
    int64_t warm_end = *c->warm_end_ns, end = *c->end_ns;
    void *h = dealer ? zsock_resolve (dealer) : NULL;
    while (1) {
        int64_t t1 = s_now_ns ();
        if (t1 >= end || s_interrupted)
            break;
        int ok;
        if (c->mode == MODE_BROKER && !client)
            ok = 0;
        else if (client) {
            char *reply = NULL;
            size_t rlen = 0;
            orr_bus_status_t st = orr_bus_client_request (client, BENCH_SERVICE, NULL, body, cfg->body, &reply,
                                                          &rlen, c->err, sizeof c->err);
            ok = st == ORR_BUS_OK && rlen == cfg->body && memcmp (reply, body, rlen) == 0;
            free (reply);
        }
        else
            ok = s_direct_request (h, body, cfg->body, buf, cfg->body + 64) == 0;
        int64_t t2 = s_now_ns ();
        if (!ok && !client && !dealer)
            orr_sleep_ms (10);   /* no connection at all: do not spin */
        if (t1 < warm_end)
            continue;
        if (ok)
            s_record (c, t2 - t1);
        else
            c->errors++;
        c->last_done_ns = t2;
    }
    if (client) {
        orr_bus_client_destroy (&client);
        orr_bus_opts_clear (&opts);
    }
    zsock_destroy (&dealer);
    free (body);
    free (buf);
    return NULL;
}

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

static double
s_percentile_us (const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t) (p * (double) n + 0.999999);   /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1] / 1000.0;
}

typedef struct {
    const char *broker_addr;
    pid_t broker_pid;
    pid_t bus_workers[BENCH_MAX_WORKERS];
    pid_t direct_workers[BENCH_MAX_WORKERS];
    char direct_eps[BENCH_MAX_WORKERS][64];
    int nworkers;
} servers_t;

/* CPU ticks at one instant: of the broker, of the mode's workers, of this process, of
 * every process we started plus us, and of the whole machine (busy time of all CPUs). */
typedef struct {
    uint64_t broker, workers, self, ours, system;
} cpu_snap_t;

static uint64_t
s_system_busy_ticks (void)
{
    FILE *f = fopen ("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[8] = { 0 };
    int n = fscanf (f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]);
    fclose (f);
    if (n < 4)
        return 0;
    /* user nice system [idle] [iowait] irq softirq steal */
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

static void
s_cpu_snap (const servers_t *srv, bench_mode_t mode, cpu_snap_t *snap)
{
    memset (snap, 0, sizeof *snap);
    snap->system = s_system_busy_ticks ();
    snap->broker = s_cpu_ticks (srv->broker_pid);
    snap->self = s_cpu_ticks (getpid ());
    snap->ours = snap->broker + snap->self;
    for (int i = 0; i < srv->nworkers; i++) {
        uint64_t b = s_cpu_ticks (srv->bus_workers[i]), d = s_cpu_ticks (srv->direct_workers[i]);
        snap->workers += mode == MODE_BROKER ? b : d;
        snap->ours += b + d;
    }
}

static result_t
s_run_case (const config_t *cfg, const servers_t *srv, bench_mode_t mode, int nclients)
{
    result_t r = { .mode = mode, .clients = nclients };
    client_t *clients = orr_zalloc ((size_t) nclients * sizeof *clients);
    pthread_t *threads = orr_zalloc ((size_t) nclients * sizeof *threads);
    pthread_barrier_t barrier;
    pthread_barrier_init (&barrier, NULL, (unsigned) nclients + 1);
    int64_t warm_end = 0, end = 0;
    for (int i = 0; i < nclients; i++) {
        clients[i] = (client_t) { .cfg = cfg, .mode = mode, .broker_addr = srv->broker_addr,
                                  .direct_eps = (char (*)[64]) srv->direct_eps, .ndirect = srv->nworkers,
                                  .barrier = &barrier, .warm_end_ns = &warm_end, .end_ns = &end };
        pthread_create (&threads[i], NULL, s_client_thread, &clients[i]);
    }
    pthread_barrier_wait (&barrier);
    int64_t t0 = s_now_ns ();
    warm_end = t0 + (int64_t) (cfg->warmup_s * 1e9);
    end = warm_end + (int64_t) (cfg->duration_s * 1e9);
    pthread_barrier_wait (&barrier);

    /* CPU time over the measured window only */
    s_sleep_until (warm_end);
    cpu_snap_t before, after;
    s_cpu_snap (srv, mode, &before);
    int64_t c0 = s_now_ns ();
    s_sleep_until (end);
    s_cpu_snap (srv, mode, &after);
    /* ticks -> % of one core */
    double per_pct = (double) (s_now_ns () - c0) / 1e9 * (double) sysconf (_SC_CLK_TCK) / 100.0;

    for (int i = 0; i < nclients; i++)
        pthread_join (threads[i], NULL);
    pthread_barrier_destroy (&barrier);

    size_t total = 0;
    int64_t last = warm_end;
    for (int i = 0; i < nclients; i++) {
        total += clients[i].nlat;
        r.errors += clients[i].errors;
        if (clients[i].last_done_ns > last)
            last = clients[i].last_done_ns;
        if (clients[i].errors)
            fprintf (stderr, "%s client %d: %llu failed requests (last: %s)\n", s_mode_names[mode], i,
                     (unsigned long long) clients[i].errors, clients[i].err[0] ? clients[i].err : "bad reply");
    }
    uint32_t *all = orr_zalloc ((total ? total : 1) * sizeof *all);
    size_t k = 0;
    double sum = 0;
    for (int i = 0; i < nclients; i++) {
        memcpy (all + k, clients[i].lat_ns, clients[i].nlat * sizeof *all);
        k += clients[i].nlat;
        free (clients[i].lat_ns);
    }
    qsort (all, total, sizeof *all, s_cmp_u32);
    for (size_t i = 0; i < total; i++)
        sum += all[i];
    r.count = total;
    r.elapsed_s = (double) (last - warm_end) / 1e9;
    r.rps = r.elapsed_s > 0 ? (double) total / r.elapsed_s : 0;
    r.p50_us = s_percentile_us (all, total, 0.50);
    r.p99_us = s_percentile_us (all, total, 0.99);
    r.mean_us = total ? sum / (double) total / 1000.0 : 0;
    if (per_pct > 0) {
        r.cpu_broker = mode == MODE_BROKER ? (double) (after.broker - before.broker) / per_pct : 0;
        r.cpu_workers = (double) (after.workers - before.workers) / per_pct;
        r.cpu_self = (double) (after.self - before.self) / per_pct;
        double others = ((double) (after.system - before.system) - (double) (after.ours - before.ours)) / per_pct;
        r.cpu_others = others > 0 ? others : 0;
    }
    free (all);
    free (clients);
    free (threads);
    return r;
}

/* ---------------------------------------------------------------- setup */

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: orrery-bench-bus [options]\n"
             "  --duration S   measured seconds per case (default 5)\n"
             "  --warmup S     unmeasured seconds before each case (default 1)\n"
             "  --clients L    comma-separated client counts (default 1,16); the ratio uses the largest\n"
             "  --credit N     bus worker credit per broker (default 4)\n"
             "  --workers N    worker replicas per mode (default 2, max %d)\n"
             "  --body B       request body bytes (default 64)\n"
             "  --mode M       broker, direct or both (default both; the ratio needs both)\n"
             "  --bus-worker W lib (default: lib/orr_bus_worker) or lean (diagnostic: the worker\n"
             "                 protocol in one thread, no actor, no reply cache)\n"
             "  --bin-dir D    where orrery-bus and orrery-bench-bus-worker are (default: next to this program)\n"
             "  --keep         keep the servers' logs (the directory is printed)\n",
             BENCH_MAX_WORKERS);
}

static int
s_parse_args (config_t *cfg, int argc, char **argv)
{
    *cfg = (config_t) { .duration_s = 5, .warmup_s = 1, .clients = { 1, 16 }, .nclients = 2, .credit = 4,
                        .workers = 2, .body = 64, .run_mode = { true, true } };
    char self[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf (cfg->bin_dir, sizeof cfg->bin_dir, "%s", dirname (self));
    }
    else
        snprintf (cfg->bin_dir, sizeof cfg->bin_dir, ".");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        char *end;
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
            s_usage (stdout);
            exit (0);
        }
        if (strcmp (a, "--keep") == 0) {
            cfg->keep = true;
            continue;
        }
        if (!v)
            goto bad;
        i++;
        if (strcmp (a, "--duration") == 0 || strcmp (a, "--warmup") == 0) {
            bool is_duration = strcmp (a, "--duration") == 0;
            double d = strtod (v, &end);
            if (*end || d < 0 || d > 3600 || (d == 0 && is_duration))
                goto bad;
            *(is_duration ? &cfg->duration_s : &cfg->warmup_s) = d;
        }
        else if (strcmp (a, "--clients") == 0) {
            size_t count;
            char **v_list = orr_split (v, ',', &count);
            cfg->nclients = 0;
            for (size_t k = 0; k < count && cfg->nclients < BENCH_MAX_CASES; k++) {
                if (orr_parse_long (v_list[k], &l) != 0 || l < 1 || l > 1024) {
                    orr_strv_free (&v_list);
                    goto bad;
                }
                cfg->clients[cfg->nclients++] = (int) l;
            }
            orr_strv_free (&v_list);
            if (cfg->nclients == 0)
                goto bad;
        }
        else if (strcmp (a, "--credit") == 0 && orr_parse_long (v, &l) == 0 && l >= 1 && l <= 64)
            cfg->credit = (int) l;
        else if (strcmp (a, "--workers") == 0 && orr_parse_long (v, &l) == 0 && l >= 1 && l <= BENCH_MAX_WORKERS)
            cfg->workers = (int) l;
        else if (strcmp (a, "--body") == 0 && orr_parse_long (v, &l) == 0 && l >= 0 && l <= 1 << 20)
            cfg->body = (size_t) l;
        else if (strcmp (a, "--mode") == 0 && (!strcmp (v, "both") || !strcmp (v, "broker") || !strcmp (v, "direct"))) {
            cfg->run_mode[MODE_BROKER] = strcmp (v, "direct") != 0;
            cfg->run_mode[MODE_DIRECT] = strcmp (v, "broker") != 0;
        }
        else if (strcmp (a, "--bus-worker") == 0 && (!strcmp (v, "lib") || !strcmp (v, "lean")))
            cfg->lean = strcmp (v, "lean") == 0;
        else if (strcmp (a, "--bin-dir") == 0)
            snprintf (cfg->bin_dir, sizeof cfg->bin_dir, "%s", v);
        else
            goto bad;
    }
    return 0;
bad:
    s_usage (stderr);
    return -1;
}

static void
s_machine_notes (void)
{
    struct utsname u;
    uname (&u);
    char model[256] = "?";
    FILE *f = fopen ("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets (line, sizeof line, f))
            if (strncmp (line, "model name", 10) == 0) {
                char *c = strchr (line, ':');
                if (c) {
                    snprintf (model, sizeof model, "%s", orr_strtrim (c + 1));
                    break;
                }
            }
        fclose (f);
    }
    int zmaj, zmin, zpat;
    zmq_version (&zmaj, &zmin, &zpat);
    printf ("machine: %ld cpus (%s), %s %s, libzmq %d.%d.%d, czmq %d.%d.%d\n", sysconf (_SC_NPROCESSORS_ONLN), model,
            u.sysname, u.release, zmaj, zmin, zpat, CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
}

static void
s_start_servers (const config_t *cfg, servers_t *srv, char *broker_addr, size_t addrlen)
{
    int taken[BENCH_MAX_WORKERS + 3] = { 0 };
    int ntaken = 0;
    char *broker_bin = orr_sprintf ("%s/orrery-bus", cfg->bin_dir);
    char *worker_bin = orr_sprintf ("%s/orrery-bench-bus-worker", cfg->bin_dir);
    if (access (broker_bin, X_OK) != 0 || access (worker_bin, X_OK) != 0) {
        fprintf (stderr, "need %s and %s (build targets orrery-bus and orrery-bench-bus-worker)\n", broker_bin,
                 worker_bin);
        exit (1);
    }

    int port = s_free_ports (3, taken, ntaken);
    if (port < 0) {
        fprintf (stderr, "no 3 free ports in a row below 32768\n");
        exit (1);
    }
    for (int k = 0; k < 3; k++)
        taken[ntaken++] = port + k;
    snprintf (broker_addr, addrlen, "tcp://127.0.0.1:%d", port);
    srv->broker_addr = broker_addr;
    /* the env strings stay alive until exit: putenv in the child keeps pointers to them */
    static char env_bind[96], env_bus[96], env_replica[64];
    snprintf (env_bind, sizeof env_bind, "ORRERY_BUS_BIND=%s", broker_addr);
    snprintf (env_bus, sizeof env_bus, "ORRERY_BUS=%s", broker_addr);
    snprintf (env_replica, sizeof env_replica, "ORRERY_REPLICA_ID=bench-broker");
    char *env[] = { env_bind, env_bus, env_replica, NULL };
    char *broker_log = orr_sprintf ("%s/broker.log", s_dir);
    char *bargv[] = { broker_bin, NULL };
    srv->broker_pid = s_spawn (bargv, env, broker_log);
    if (s_wait_port (port + 2, srv->broker_pid, 5000) != 0) {
        fprintf (stderr, "broker did not bind %s (see %s)\n", broker_addr, broker_log);
        s_keep_dir = true;
        exit (1);
    }

    srv->nworkers = cfg->workers;
    char credit[16];
    snprintf (credit, sizeof credit, "%d", cfg->credit);
    for (int i = 0; i < cfg->workers; i++) {
        char *log = orr_sprintf ("%s/bus-worker-%d.log", s_dir, i);
        char *wargv[] = { worker_bin, "--bus", broker_addr, "--service", BENCH_SERVICE, "--credit", credit,
                          cfg->lean ? "--lean" : NULL, NULL };
        srv->bus_workers[i] = s_spawn (wargv, NULL, log);
        free (log);

        int p = s_free_ports (1, taken, ntaken);
        if (p < 0) {
            fprintf (stderr, "no free port below 32768\n");
            exit (1);
        }
        taken[ntaken++] = p;
        snprintf (srv->direct_eps[i], sizeof srv->direct_eps[i], "tcp://127.0.0.1:%d", p);
        log = orr_sprintf ("%s/direct-worker-%d.log", s_dir, i);
        char *dargv[] = { worker_bin, "--direct", srv->direct_eps[i], NULL };
        srv->direct_workers[i] = s_spawn (dargv, NULL, log);
        free (log);
        if (s_wait_port (p, srv->direct_workers[i], 5000) != 0) {
            fprintf (stderr, "direct worker did not bind %s (see %s)\n", srv->direct_eps[i], s_dir);
            s_keep_dir = true;
            exit (1);
        }
    }
    /* every bus worker registered (the broker logs each READY) */
    int64_t deadline = orr_mono_ms () + 5000;
    while (s_count_in_file (broker_log, "registered for service " BENCH_SERVICE) < cfg->workers) {
        if (s_interrupted)
            exit (128 + s_interrupted);
        if (orr_mono_ms () >= deadline) {
            fprintf (stderr, "bus workers did not register with %s (see %s)\n", broker_addr, s_dir);
            s_keep_dir = true;
            exit (1);
        }
        orr_sleep_ms (20);
    }
    free (broker_log);
    free (broker_bin);
    free (worker_bin);
}

int
main (int argc, char **argv)
{
    config_t cfg;
    if (s_parse_args (&cfg, argc, argv) != 0)
        return 2;
    zsys_handler_set (NULL);
    zsys_set_linger (0);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);

    snprintf (s_dir, sizeof s_dir, "/tmp/orrery-bench-bus-XXXXXX");
    if (!mkdtemp (s_dir)) {
        fprintf (stderr, "mkdtemp: %s\n", strerror (errno));
        return 1;
    }
    s_keep_dir = cfg.keep;
    atexit (s_cleanup);

    s_machine_notes ();
    printf ("settings: %d worker replicas per mode, %s bus workers, credit %d, body %zu B, warm-up %.1f s, "
            "measured %.1f s per case\n",
            cfg.workers, cfg.lean ? "lean (diagnostic)" : "orr_bus_worker", cfg.credit, cfg.body, cfg.warmup_s,
            cfg.duration_s);
    fflush (stdout);

    servers_t srv = { 0 };
    char broker_addr[64];
    s_start_servers (&cfg, &srv, broker_addr, sizeof broker_addr);
    if (cfg.keep)
        printf ("logs: %s\n", s_dir);

    result_t results[2 * BENCH_MAX_CASES];
    int nres = 0;
    printf ("\n%-8s %7s %11s %9s %9s %9s %7s  %s\n", "case", "clients", "req/s", "p50 us", "p99 us", "mean us",
            "errors", "cpu% broker/workers/loadgen/other");
    fflush (stdout);
    for (int c = 0; c < cfg.nclients; c++)
        for (int m = MODE_BROKER; m <= MODE_DIRECT; m++) {
            if (!cfg.run_mode[m])
                continue;
            result_t r = s_run_case (&cfg, &srv, (bench_mode_t) m, cfg.clients[c]);
            if (s_interrupted) {
                fprintf (stderr, "interrupted\n");
                exit (128 + s_interrupted);   /* s_cleanup stops the servers */
            }
            results[nres++] = r;
            char cpu[64];
            if (m == MODE_BROKER)
                snprintf (cpu, sizeof cpu, "%.0f/%.0f/%.0f/%.0f", r.cpu_broker, r.cpu_workers, r.cpu_self,
                          r.cpu_others);
            else
                snprintf (cpu, sizeof cpu, "-/%.0f/%.0f/%.0f", r.cpu_workers, r.cpu_self, r.cpu_others);
            printf ("%-8s %7d %11.0f %9.1f %9.1f %9.1f %7llu  %s\n", s_mode_names[m], r.clients, r.rps, r.p50_us,
                    r.p99_us, r.mean_us, (unsigned long long) r.errors, cpu);
            fflush (stdout);
        }
    for (int i = 0; i < srv.nworkers; i++)
        if (!s_alive (srv.bus_workers[i]) || !s_alive (srv.direct_workers[i])) {
            fprintf (stderr, "warning: a worker died during the run (logs kept in %s)\n", s_dir);
            s_keep_dir = true;
        }
    if (!s_alive (srv.broker_pid)) {
        fprintf (stderr, "warning: the broker died during the run (logs kept in %s)\n", s_dir);
        s_keep_dir = true;
    }

    int most = 0;
    for (int c = 0; c < cfg.nclients; c++)
        if (cfg.clients[c] > cfg.clients[most])
            most = c;
    double broker = 0, direct = 0;
    for (int i = 0; i < nres; i++)
        if (results[i].clients == cfg.clients[most])
            *(results[i].mode == MODE_BROKER ? &broker : &direct) = results[i].rps;
    if (broker > 0 && direct > 0)
        printf ("\nbus broker/direct throughput ratio: %.2f\n", broker / direct);
    else
        printf ("\nbus broker/direct throughput ratio: n/a\n");
    fflush (stdout);
    return 0;
}
