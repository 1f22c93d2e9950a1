/*  bench_stack: the real processes and the synthetic node agents behind the scheduler
 *  benchmarks (see bench_stack.h). It owns the benchmark's child processes: each is started
 *  with orr_spawn (PR_SET_PDEATHSIG, so none outlives us even if we are killed), listed
 *  here, and stopped at exit -- SIGTERM, then SIGKILL after 3 s -- whatever path the
 *  benchmark leaves by. Ports are free ones below 32768; logs go to a scratch directory
 *  that is kept when something failed.
 *
 *  Registration is paced: a burst of thousands of heartbeats would overflow the ZeroMQ
 *  high-water marks between us, the broker and the schedulers, and PUB/SUB drops what
 *  does not fit. So heartbeats go out in small batches, and the scheduler's own `nodes`
 *  method decides which nodes still need one.
 */
#include "bench_stack.h"
#include "orr_rpc.h"
#include "orr_signal.h"
#include "orr_spawn.h"
#include "orr_util.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define BS_MAX_CHILDREN 32
#define BS_HB_BATCH 100        /* heartbeats per batch ... */
#define BS_HB_PAUSE_MS 20      /* ... and the pause after each: 5,000 per second */

static pid_t s_children[BS_MAX_CHILDREN];
static bs_stack_t *s_stack;   /* the running stack, whose publisher an early exit closes */
static char s_dir[256];        /* /tmp/PROG-XXXXXX */
static char s_bin_dir[PATH_MAX];
static bool s_keep;

/* --- the process --------------------------------------------------------------------- */

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

static void
s_stop_pid (pid_t pid, int grace_ms)
{
    int status;
    if (waitpid (pid, &status, WNOHANG) != 0)
        return;
    kill (pid, SIGTERM);
    int64_t give_up = orr_mono_ms () + grace_ms;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        if (orr_mono_ms () >= give_up) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            return;
        }
        orr_sleep_ms (5);
    }
}

static void
s_forget_child (pid_t pid)
{
    for (int i = 0; i < BS_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

static void
s_cleanup (void)
{
    for (int i = 0; i < BS_MAX_CHILDREN; i++)
        if (s_children[i] > 0)
            kill (s_children[i], SIGTERM);
    for (int i = 0; i < BS_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            s_stop_pid (s_children[i], 3000);
            s_children[i] = 0;
        }
    if (s_dir[0] && !s_keep)
        nftw (s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    else if (s_dir[0])
        fprintf (stderr, "logs kept in %s\n", s_dir);
}

void
bs_init (const char *prog, const char *bin_dir, bool keep)
{
    zsys_set_linger (0);      /* initialises czmq, which resets the signal handlers ... */
    orr_signal_install ();    /* ... so ours go in after it */
    s_keep = keep;
    if (bin_dir)
        snprintf (s_bin_dir, sizeof s_bin_dir, "%s", bin_dir);
    else {
        char self[PATH_MAX];
        ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        snprintf (s_bin_dir, sizeof s_bin_dir, "%s", n > 0 ? dirname (self) : ".");
    }
    snprintf (s_dir, sizeof s_dir, "/tmp/%s-XXXXXX", prog);
    if (!mkdtemp (s_dir)) {
        fprintf (stderr, "mkdtemp: %s\n", strerror (errno));
        exit (1);
    }
    atexit (s_cleanup);
}

const char *
bs_dir (void)
{
    return s_dir;
}

/* Closes the running stack's publisher, so czmq does not report it dangling at exit. */
static void
s_close_sockets (void)
{
    if (s_stack)
        orr_events_pub_destroy (&s_stack->pub);
}

void
bs_die (const char *fmt, ...)
{
    if (bs_interrupted ())   /* whatever failed, failed because we are stopping */
        bs_exit_interrupted ();
    s_close_sockets ();
    va_list ap;
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
    s_keep = true;
    exit (1);
}

bool
bs_interrupted (void)
{
    return orr_signal_stop_requested ();
}

void
bs_exit_interrupted (void)
{
    s_close_sockets ();
    fprintf (stderr, "interrupted\n");
    exit (128 + (orr_signal_last () ? orr_signal_last () : SIGINT));
}

void
bs_machine_notes (void)
{
    struct utsname u;
    uname (&u);
    char model[256] = "?";
    FILE *f = fopen ("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets (line, sizeof line, f)) {
            char *c = strchr (line, ':');
            if (strncmp (line, "model name", 10) == 0 && c) {
                snprintf (model, sizeof model, "%s", orr_strtrim (c + 1));
                break;
            }
        }
        fclose (f);
    }
    printf ("machine: %ld cpus (%s), %s %s\n", sysconf (_SC_NPROCESSORS_ONLN), model, u.sysname, u.release);
}

uint64_t
bs_cpu_ticks (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, pid ? "/proc/%d/stat" : "/proc/self/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    char buf[2048];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[n] = '\0';
    char *p = strrchr (buf, ')');   /* the command name may contain spaces */
    unsigned long long utime = 0, stime = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

uint64_t
bs_system_busy_ticks (void)
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
    /* user nice system idle iowait irq softirq steal: all but idle and iowait */
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

uint64_t
bs_ctx_switches (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, pid ? "/proc/%d/task" : "/proc/self/task", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir (dir))) {
        if (e->d_name[0] == '.')
            continue;
        char *status = orr_sprintf ("%s/%s/status", path, e->d_name);
        FILE *f = fopen (status, "r");
        free (status);
        if (!f)
            continue;
        char line[256];
        unsigned long long n;
        while (fgets (line, sizeof line, f))
            if (sscanf (line, "voluntary_ctxt_switches: %llu", &n) == 1
                || sscanf (line, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
                total += n;
        fclose (f);
    }
    closedir (dir);
    return total;
}

/* --- children ------------------------------------------------------------------------- */

static pid_t
s_spawn (char *const argv[], char *const env[], const char *log)
{
    pid_t pid = orr_spawn (argv, env, log);
    if (pid < 0)
        bs_die ("cannot start %s: %s", argv[0], strerror (errno));
    for (int i = 0; i < BS_MAX_CHILDREN; i++)
        if (s_children[i] == 0) {
            s_children[i] = pid;
            return pid;
        }
    kill (pid, SIGKILL);
    bs_die ("more than %d child processes", BS_MAX_CHILDREN);
}

static void
s_stop_child (pid_t *pid)
{
    if (*pid > 0) {
        s_stop_pid (*pid, 5000);
        s_forget_child (*pid);
    }
    *pid = 0;
}

static bool
s_alive (pid_t pid)
{
    int status;
    return pid > 0 && waitpid (pid, &status, WNOHANG) == 0;
}

/* Waits until a TCP connect to the port succeeds while `pid` lives. */
static bool
s_wait_bound (int port, pid_t pid, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    while (orr_mono_ms () < deadline) {
        if (bs_interrupted ())
            bs_exit_interrupted ();
        if (orr_wait_port (port, 0) == 0)
            return true;
        if (!s_alive (pid))
            return false;
        orr_sleep_ms (10);
    }
    return false;
}

static int
s_count_in_file (const char *path, const char *needle)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets (line, sizeof line, f))
        n += strstr (line, needle) != NULL;
    fclose (f);
    return n;
}

/* --- the stack ------------------------------------------------------------------------ */

static void
s_start_redis (bs_stack_t *st)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = orr_free_port ();
        if (port <= 0)
            continue;
        char ports[16];
        snprintf (ports, sizeof ports, "%d", port);
        char *log = orr_sprintf ("%s/redis-%d.log", s_dir, port);
        char *argv[] = { "/usr/bin/redis-server", "--port", ports, "--bind", "127.0.0.1", "--dir", s_dir,
                         "--save", "", "--appendonly", "no", "--daemonize", "no", NULL };
        st->redis = s_spawn (argv, NULL, log);
        free (log);
        if (s_wait_bound (port, st->redis, 5000)) {
            snprintf (st->redis_url, sizeof st->redis_url, "redis://127.0.0.1:%d/0", port);
            return;
        }
        s_stop_child (&st->redis);
    }
    bs_die ("redis-server did not start (see %s)", s_dir);
}

static void
s_start_broker (bs_stack_t *st)
{
    char *bin = orr_sprintf ("%s/orrery-bus", s_bin_dir);
    if (access (bin, X_OK) != 0)
        bs_die ("need %s (build target orrery-bus)", bin);
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = orr_free_port ();   /* the broker takes port, port+1 and port+2 */
        if (port <= 0 || port + 2 >= 32768 || !orr_port_free (port + 1) || !orr_port_free (port + 2))
            continue;
        snprintf (st->bus, sizeof st->bus, "tcp://127.0.0.1:%d", port);
        snprintf (st->broker_log, sizeof st->broker_log, "%s/broker-%d.log", s_dir, port);
        char *bind = orr_sprintf ("ORRERY_BUS_BIND=%s", st->bus);
        char *bus = orr_sprintf ("ORRERY_BUS=%s", st->bus);
        char *env[] = { bind, bus, "ORRERY_REPLICA_ID=bench-broker", "ORRERY_LOG_LEVEL=info", NULL };
        char *argv[] = { bin, NULL };
        st->broker = s_spawn (argv, env, st->broker_log);
        free (bind);
        free (bus);
        if (s_wait_bound (port + 2, st->broker, 5000)) {
            free (bin);
            return;
        }
        s_stop_child (&st->broker);
    }
    bs_die ("the broker did not start (see %s)", s_dir);
}

void
bs_stack_start (bs_stack_t *st, int replicas, char *const *sched_env)
{
    memset (st, 0, sizeof *st);
    if (replicas < 1 || replicas > BS_MAX_REPLICAS)
        bs_die ("replicas: 1 to %d", BS_MAX_REPLICAS);
    char *bin = orr_sprintf ("%s/orrery-scheduler", s_bin_dir);
    if (access (bin, X_OK) != 0)
        bs_die ("need %s (build target orrery-scheduler)", bin);
    s_start_redis (st);
    s_start_broker (st);
    for (int i = 0; i < replicas; i++) {
        char *bus = orr_sprintf ("ORRERY_BUS=%s", st->bus);
        char *redis = orr_sprintf ("ORRERY_REDIS_URL=%s", st->redis_url);
        char *rep = orr_sprintf ("ORRERY_REPLICA_ID=sched-%d", i);
        char *env[32] = { bus, redis, rep };
        int n = 3;
        for (char *const *e = sched_env; e && *e && n < 31; e++)
            env[n++] = *e;
        env[n] = NULL;
        char *log = orr_sprintf ("%s/sched-%d-%s.log", s_dir, i, strrchr (st->bus, ':') + 1);
        char *argv[] = { bin, NULL };
        st->sched[i] = s_spawn (argv, env, log);
        st->replicas = i + 1;
        free (log);
        free (bus);
        free (redis);
        free (rep);
    }
    free (bin);
    int64_t deadline = orr_mono_ms () + 10000;
    while (s_count_in_file (st->broker_log, "registered for service scheduler") < replicas) {
        for (int i = 0; i < replicas; i++)
            if (!s_alive (st->sched[i]))
                bs_die ("scheduler replica %d exited at start (see %s)", i, s_dir);
        if (bs_interrupted ())
            bs_exit_interrupted ();
        if (orr_mono_ms () >= deadline)
            bs_die ("the scheduler replicas did not register with %s (see %s)", st->bus, s_dir);
        orr_sleep_ms (20);
    }
    if (orr_bus_opts_init (&st->opts, st->bus) != 0)
        bs_die ("bad bus address %s", st->bus);
    st->opts.timeout_ms = 10000;
    st->opts.retries = 2;
    st->pub = orr_events_pub_new (&st->opts);
    s_stack = st;
    if (!st->pub || orr_events_pub_wait_ready (st->pub, 5000) != 0)
        bs_die ("the event publisher did not connect to %s", st->bus);
}

void
bs_stack_stop (bs_stack_t *st)
{
    s_stack = NULL;
    orr_events_pub_destroy (&st->pub);
    orr_bus_opts_clear (&st->opts);
    for (int i = 0; i < st->replicas; i++)
        if (!s_alive (st->sched[i])) {
            fprintf (stderr, "warning: scheduler replica %d had exited before the stop (see %s)\n", i, s_dir);
            s_keep = true;
        }
    for (int i = 0; i < st->replicas; i++)
        if (st->sched[i] > 0)
            kill (st->sched[i], SIGTERM);
    for (int i = 0; i < st->replicas; i++)
        s_stop_child (&st->sched[i]);
    s_stop_child (&st->broker);
    s_stop_child (&st->redis);
}

orr_bus_client_t *
bs_client (bs_stack_t *st)
{
    orr_bus_client_t *c = orr_bus_client_new (&st->opts);
    if (!c)
        bs_die ("cannot create a bus client for %s", st->bus);
    return c;
}

/* --- node agents and calls ---------------------------------------------------------- */

static void
s_heartbeat (bs_stack_t *st, const bs_node_t *node)
{
    Orrery__NodeHeartbeat hb = ORRERY__NODE_HEARTBEAT__INIT;
    Orrery__Resources cap = ORRERY__RESOURCES__INIT;
    cap.cpu_millis = node->cpu_millis;
    cap.memory_bytes = node->memory_bytes;
    cap.servers = node->servers;
    hb.node = (char *) node->name;
    hb.capacity = &cap;
    hb.agent = "bench";
    hb.time_us = orr_now_us ();
    uint8_t buf[256];
    size_t len = orrery__node_heartbeat__get_packed_size (&hb);
    if (len > sizeof buf)
        bs_die ("heartbeat of %s too large", node->name);
    orrery__node_heartbeat__pack (&hb, buf);
    if (orr_events_publish (st->pub, "node.heartbeat", buf, len) != 0)
        bs_die ("cannot publish node.heartbeat");
}

int64_t
bs_register_nodes (bs_stack_t *st, orr_bus_client_t *client, const bs_node_t *nodes, size_t n, int timeout_ms)
{
    int64_t t0 = orr_mono_ms (), deadline = t0 + timeout_ms;
    bool *ready = orr_zalloc ((n ? n : 1) * sizeof *ready);
    zhashx_t *index = zhashx_new ();   /* name -> position + 1 */
    for (size_t i = 0; i < n; i++)
        zhashx_insert (index, nodes[i].name, (void *) (uintptr_t) (i + 1));
    size_t nready = 0;
    while (nready < n && !bs_interrupted ()) {
        if (orr_mono_ms () >= deadline)
            bs_die ("only %zu of %zu nodes ready after %d ms (see %s)", nready, n, timeout_ms, s_dir);
        size_t sent = 0;
        for (size_t i = 0; i < n; i++)
            if (!ready[i]) {
                s_heartbeat (st, &nodes[i]);
                if (++sent % BS_HB_BATCH == 0)
                    orr_sleep_ms (BS_HB_PAUSE_MS);
            }
        /* let the replicas finish the last batch before asking */
        orr_sleep_ms (200);
        Orrery__NodeList *list = NULL;
        char err[256];
        if (bs_nodes (client, &list, err, sizeof err) != 200) {
            fprintf (stderr, "nodes: %s (retrying)\n", err);
            continue;
        }
        for (size_t i = 0; i < list->n_nodes; i++) {
            uintptr_t k = (uintptr_t) zhashx_lookup (index, list->nodes[i]->name);
            if (k && list->nodes[i]->ready && !ready[k - 1]) {
                ready[k - 1] = true;
                nready++;
            }
        }
        orrery__node_list__free_unpacked (list, NULL);
    }
    zhashx_destroy (&index);
    free (ready);
    return bs_interrupted () ? -1 : orr_mono_ms () - t0;
}

/* One call: packs msg, unpacks the reply with desc into *out on 200. */
static int
s_call (orr_bus_client_t *client, const char *method, const ProtobufCMessage *msg,
        const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out, char *err, size_t errlen)
{
    uint8_t stackbuf[1024];
    size_t len = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : orr_zalloc (len);
    protobuf_c_message_pack (msg, buf);
    orr_rpc_reply_t r;
    int status = orr_rpc_call (client, "scheduler", method, NULL, buf, len, &r);
    if (buf != stackbuf)
        free (buf);
    *out = NULL;
    if (status == 200) {
        *out = protobuf_c_message_unpack (desc, NULL, r.len, r.body);
        if (!*out) {
            status = 502;
            snprintf (r.error, sizeof r.error, "%s: the reply does not unpack", method);
        }
    }
    if (err && errlen)
        snprintf (err, errlen, "%s", r.error);
    orr_rpc_reply_clear (&r);
    return status;
}

int
bs_place (orr_bus_client_t *client, const char *reservation, const char *group, const char *profile,
          int64_t cpu_millis, int64_t memory_bytes, Orrery__PlaceResult **out, char *err, size_t errlen)
{
    Orrery__PlaceRequest req = ORRERY__PLACE_REQUEST__INIT;
    Orrery__Resources g = ORRERY__RESOURCES__INIT;
    g.cpu_millis = cpu_millis;
    g.memory_bytes = memory_bytes;
    req.reservation = (char *) reservation;
    req.guarantees = &g;
    req.profile = (char *) (profile ? profile : "");
    req.group = (char *) (group ? group : "");
    req.user = req.group;
    req.server = "";
    return s_call (client, "place", &req.base, &orrery__place_result__descriptor, (ProtobufCMessage **) out, err,
                   errlen);
}

int
bs_nodes (orr_bus_client_t *client, Orrery__NodeList **out, char *err, size_t errlen)
{
    Orrery__NodesRequest req = ORRERY__NODES_REQUEST__INIT;
    req.node = "";
    return s_call (client, "nodes", &req.base, &orrery__node_list__descriptor, (ProtobufCMessage **) out, err, errlen);
}
