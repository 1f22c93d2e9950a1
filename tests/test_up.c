/*  `orrery up` starts everything; GET /hub/health answers 200 through the proxy's public
 *  port within 10 s; SIGTERM to `orrery up` leaves no child process running.
 *
 *  Run twice: the default layout, then --replicas bus=2,gateway=2 (two brokers, two
 *  gateways sharing a port). In the second run a gateway is SIGKILLed and must be
 *  restarted by the supervisor. Every process of a run carries a unique marker in its
 *  environment, so "no child left" is checked over all of /proc, not just our children.
 */
#include "orr_http.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* pids of processes whose environment holds `marker` (excluding ourselves) */
static int
s_marked (const char *marker, pid_t *out, int max)
{
    DIR *d = opendir ("/proc");
    struct dirent *e;
    int n = 0;
    while ((e = readdir (d))) {
        long pid;
        if (orr_parse_long (e->d_name, &pid) != 0 || pid == getpid ())
            continue;
        char path[64], buf[65536];
        snprintf (path, sizeof path, "/proc/%ld/environ", pid);
        FILE *f = fopen (path, "r");
        if (!f)
            continue;
        size_t len = fread (buf, 1, sizeof buf - 1, f);
        fclose (f);
        for (size_t i = 0; i + strlen (marker) <= len; i++)
            if (memcmp (buf + i, marker, strlen (marker)) == 0) {
                if (n < max)
                    out[n] = (pid_t) pid;
                n++;
                break;
            }
    }
    closedir (d);
    return n;
}

/* Start time (clock ticks since boot) and parent of a pid; -1 if it is gone. */
static long long
s_proc_start (pid_t pid, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t len = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[len] = '\0';
    char *p = strrchr (buf, ')');   /* the command name may hold spaces */
    if (!p)
        return -1;
    char state;
    int parent;
    long long start = -1;
    /* fields after ")": state ppid ... starttime is field 22 overall */
    if (sscanf (p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %lld", &state,
                &parent, &start) != 3 || state == 'Z')
        return -1;
    if (ppid)
        *ppid = parent;
    return start;
}

typedef struct {
    pid_t pid;
    long long start;
} proc_t;

/* Every live descendant of `root`, with start times (so reused pids are not mistaken). */
static int
s_descendants (pid_t root, proc_t *out, int max)
{
    int n = 0;
    pid_t frontier[256] = { root };
    int nf = 1;
    while (nf > 0) {
        pid_t parent = frontier[--nf];
        DIR *d = opendir ("/proc");
        struct dirent *e;
        while ((e = readdir (d))) {
            long pid;
            pid_t ppid = 0;
            if (orr_parse_long (e->d_name, &pid) != 0)
                continue;
            long long start = s_proc_start ((pid_t) pid, &ppid);
            if (start >= 0 && ppid == parent && n < max) {
                out[n++] = (proc_t) { (pid_t) pid, start };
                if (nf < 256)
                    frontier[nf++] = (pid_t) pid;
            }
        }
        closedir (d);
    }
    return n;
}

static int64_t
s_wait_health (const char *url, int timeout_ms)
{
    orr_http_t *http = orr_http_new ();
    orr_http_response_t resp = { 0 };
    int64_t start = orr_mono_ms (), ok = -1;
    while (orr_mono_ms () - start < timeout_ms) {
        if (orr_http_request (http, "GET", url, NULL, NULL, 0, 1000, &resp) == 0 && resp.status == 200) {
            ok = orr_mono_ms () - start;
            break;
        }
        orr_sleep_ms (20);
    }
    orr_http_response_clear (&resp);
    orr_http_destroy (&http);
    return ok;
}

static pid_t
s_find (const char *marker, const char *comm_prefix)
{
    pid_t pids[64];
    int n = s_marked (marker, pids, 64);
    for (int i = 0; i < n && i < 64; i++) {
        char path[64], cmd[256] = "";
        snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pids[i]);
        FILE *f = fopen (path, "r");
        if (f) {
            size_t len = fread (cmd, 1, sizeof cmd - 1, f);
            cmd[len] = '\0';
            fclose (f);
        }
        const char *base = strrchr (cmd, '/');
        if (strncmp (base ? base + 1 : cmd, comm_prefix, strlen (comm_prefix)) == 0)
            return pids[i];
    }
    return 0;
}

static void
s_run (const char *replicas)
{
    char *dir = tu_tmpdir ("up");
    char marker[32], marker_env[80];
    orr_random_hex (marker, 8);
    snprintf (marker_env, sizeof marker_env, "ORRERY_TEST_MARKER=%s", marker);
    int port = orr_free_port ();
    char port_s[16];
    snprintf (port_s, sizeof port_s, "%d", port);
    char *state = orr_sprintf ("%s/state", dir);
    char *log = orr_sprintf ("%s/up.log", dir);
    char *bin = tu_bin ("orrery");
    char *argv[] = { bin, "up", "--port", port_s, "--state-dir", state, replicas ? "--replicas" : NULL,
                     (char *) replicas, NULL };
    char *env[] = { marker_env, NULL };
    pid_t up = tu_spawn (argv, env, log);
    char *url = orr_sprintf ("http://127.0.0.1:%d/hub/health", port);
    int64_t took = s_wait_health (url, 10000);
    printf ("[%s] /hub/health 200 through the proxy after %lld ms\n", replicas ? replicas : "default", (long long) took);
    CHECK (took >= 0, "no 200 from %s within 10 s (see %s)", url, log);

    pid_t pids[64];
    proc_t tree[64];
    int expected = 8 + (replicas ? 2 : 0);   /* redis, bus, auth, scheduler, spawner, proxyctl, gateway, CHP */
    int running = s_descendants (up, tree, 64);
    printf ("[%s] %d processes of the stack running\n", replicas ? replicas : "default", running);
    CHECK (running == expected, "%d processes under orrery up, expected %d", running, expected);

    if (replicas) {
        pid_t gw = s_find (marker, "orrery-gateway");
        CHECK (gw > 0, "no gateway found");
        kill (gw, SIGKILL);
        orr_sleep_ms (100);
        int64_t back = s_wait_health (url, 10000);
        CHECK (back >= 0, "health lost after a gateway was killed");
        int64_t deadline = orr_mono_ms () + 5000;
        while (s_descendants (up, tree, 64) < expected && orr_mono_ms () < deadline)
            orr_sleep_ms (50);
        CHECK (s_descendants (up, tree, 64) == expected, "the killed gateway was not restarted");
        CHECK (s_find (marker, "orrery-gateway") != gw, "the killed gateway is still there");
        printf ("[%s] killed gateway restarted; health kept\n", replicas);
    }

    running = s_descendants (up, tree, 64);
    int status = tu_stop (up, SIGTERM, 15000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "orrery up exited with status %d", status);
    int left = s_marked (marker, pids, 64);
    for (int i = 0; i < left && i < 64; i++) {
        char path[64], cmd[256] = "";
        snprintf (path, sizeof path, "/proc/%d/cmdline", (int) pids[i]);
        FILE *f = fopen (path, "r");
        if (f) {
            cmd[fread (cmd, 1, sizeof cmd - 1, f)] = '\0';
            fclose (f);
        }
        fprintf (stderr, "left running: pid %d %s\n", (int) pids[i], cmd);
        kill (pids[i], SIGKILL);
    }
    CHECK_EQ_INT (left, 0);
    for (int i = 0; i < running; i++) {
        long long start = s_proc_start (tree[i].pid, NULL);
        CHECK (start != tree[i].start, "pid %d of the stack still runs after orrery up stopped", (int) tree[i].pid);
    }
    /* under the sanitizers every service's report lands in its log: none may have one */
    char *logs = orr_sprintf ("%s/logs", state);
    DIR *d = opendir (logs);
    CHECK (d != NULL);
    struct dirent *e;
    while ((e = readdir (d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = orr_sprintf ("%s/%s", logs, e->d_name);
        FILE *f = fopen (path, "r");
        char line[4096];
        while (f && fgets (line, sizeof line, f))
            CHECK (!strstr (line, "Sanitizer") && !strstr (line, "runtime error:"), "%s: %s", path, line);
        if (f)
            fclose (f);
        free (path);
    }
    closedir (d);
    free (logs);
    printf ("[%s] SIGTERM: orrery up exited 0, no process of the stack left\n", replicas ? replicas : "default");
    free (url);
    free (bin);
    free (log);
    free (state);
    tu_tmpdir_remove (&dir);
}

int
main (void)
{
    orr_signal_install ();
    s_run (NULL);
    s_run ("bus=2,gateway=2");
    printf ("2 passed, 0 failed\n");
    return 0;
}
