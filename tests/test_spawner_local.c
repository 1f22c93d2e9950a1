/*  The local backend's processes (services/spawner/spawner_local.c), for real on this host.
 *
 *  Each part starts real servers (sh, sleep, python3) in a private temporary directory and
 *  checks what a user would see: a clean environment, the working directory and log made,
 *  a stop that reaches the server's grandchildren, identity by start time, the memory
 *  limit killing a server (cgroups) or failing its allocation (rlimits), the pids limit
 *  refusing forks, an exec failure reported in the log, cleanup that removes the groups.
 *  The cgroup parts need writable cgroups (root on a host that has them) and print SKIP
 *  with the reason otherwise. Groups go below "orrery-test-<pid>" so parallel runs do not
 *  meet; an exit handler kills what was started and removes every group and directory,
 *  also when a check fails.
 */
#include "orr_util.h"
#include "spawner_local.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (INT64_C (1) << 20)
#define EXIT_WAIT_MS 10000
#define PYTHON "/usr/bin/python3"
#define STARTED_MAX 32

static int s_checks;

#define OK(cond, ...)                                                                      \
    do {                                                                                   \
        CHECK (cond, __VA_ARGS__);                                                         \
        s_checks++;                                                                        \
    } while (0)

static char *s_dir;                      /* this run's private directory */
static char s_parent[64];                /* cgroup parent of this run */
static local_proc_t s_started[STARTED_MAX];
static int s_nstarted;
static char s_names[STARTED_MAX][64];    /* cgroup names used */
static int s_nnames;

static const char *const s_clean_path[] = { "PATH=/usr/bin:/bin", NULL };

/* --- fixtures -------------------------------------------------------------------------- */

static const char *
s_name (const char *what)
{
    CHECK (s_nnames < STARTED_MAX);
    snprintf (s_names[s_nnames], sizeof s_names[0], "%s-%d", what, (int) getpid ());
    return s_names[s_nnames++];
}

/* Kills every server started, removes every group and the run's parent groups and
 * directory: at exit, so a failed check leaves nothing behind either. */
static void
s_cleanup_all (void)
{
    for (int i = 0; i < s_nstarted; i++) {
        local_signal (s_started[i].pid, s_started[i].start_time, SIGKILL);
        int status;
        for (int tries = 0; tries < 200 && !local_exited (s_started[i].pid, s_started[i].start_time, &status); tries++)
            orr_sleep_ms (10);
    }
    s_nstarted = 0;
    for (int i = 0; i < s_nnames; i++)
        local_cleanup (s_names[i]);
    const char *parents[] = { "memory", "cpu", "pids", "unified", "", NULL };
    for (int i = 0; parents[i]; i++) {
        char *dir = orr_sprintf ("/sys/fs/cgroup/%s%s%s", parents[i], *parents[i] ? "/" : "", s_parent);
        rmdir (dir);
        free (dir);
    }
    tu_tmpdir_remove (&s_dir);
}

/* Starts argv with the run's conventions: cwd <dir>/<tag>/work, log <dir>/<tag>/logs/server.log. */
static int
s_start (const char *tag, const char *const *argv, const char *const *env, const char *cgroup_name, int64_t mem,
         int64_t cpu, int64_t pids, local_proc_t *p, char *err, size_t errlen)
{
    char *cwd = orr_sprintf ("%s/%s/work", s_dir, tag);
    char *log = orr_sprintf ("%s/%s/logs/server.log", s_dir, tag);
    local_start_t spec = { .argv = argv, .env = env, .cwd = cwd, .log_path = log, .cgroup_name = cgroup_name,
                           .mem_limit_bytes = mem, .cpu_limit_millis = cpu, .pids_limit = pids };
    int rc = local_start (&spec, p, err, errlen);
    if (rc == 0) {
        CHECK (s_nstarted < STARTED_MAX);
        s_started[s_nstarted++] = *p;
    }
    free (cwd);
    free (log);
    return rc;
}

static char *
s_path (const char *tag, const char *file)
{
    return orr_sprintf ("%s/%s/%s", s_dir, tag, file);
}

/* The whole file (up to 1 MiB; /proc files too, whose size reads 0), or NULL. */
static char *
s_slurp (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *text = orr_zalloc (cap + 1);
    size_t n = fread (text, 1, cap, f);
    text[n] = '\0';
    fclose (f);
    return text;
}

static char *
s_log (const char *tag)
{
    char *path = s_path (tag, "logs/server.log");
    char *text = s_slurp (path);
    free (path);
    return text ? text : orr_strdup ("");
}

/* Polls until the file holds `needle` (any content when NULL). */
static bool
s_wait_text (const char *path, const char *needle, int timeout_ms)
{
    for (int64_t deadline = orr_mono_ms () + timeout_ms;; orr_sleep_ms (20)) {
        char *text = s_slurp (path);
        bool found = text && (needle ? strstr (text, needle) != NULL : *text != '\0');
        free (text);
        if (found)
            return true;
        if (orr_mono_ms () > deadline)
            return false;
    }
}

/* Polls local_exited; true with the status when the server ended in time. */
static bool
s_wait_exit (const local_proc_t *p, int timeout_ms, int *status)
{
    for (int64_t deadline = orr_mono_ms () + timeout_ms;; orr_sleep_ms (20)) {
        if (local_exited (p->pid, p->start_time, status))
            return true;
        if (orr_mono_ms () > deadline)
            return false;
    }
}

static void
s_kill (const local_proc_t *p)
{
    int status;
    local_signal (p->pid, p->start_time, SIGKILL);
    OK (s_wait_exit (p, EXIT_WAIT_MS, &status), "pid %d survives SIGKILL", (int) p->pid);
}

/* The group directory of `name` for `controller` under the kind of limits in force. */
static char *
s_group_dir (local_limits_kind_t kind, const char *controller, const char *name)
{
    if (kind == LOCAL_LIMITS_CGROUP1)
        return orr_sprintf ("/sys/fs/cgroup/%s/%s/%s", controller, s_parent, name);
    bool pure_v2 = access ("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    return orr_sprintf ("/sys/fs/cgroup%s/%s/%s", pure_v2 ? "" : "/unified", s_parent, name);
}

static bool
s_exists (const char *path)
{
    return access (path, F_OK) == 0;
}

/* The first line of a group's file, trimmed. */
static char *
s_group_value (local_limits_kind_t kind, const char *controller, const char *name, const char *file)
{
    char *dir = s_group_dir (kind, controller, name);
    char *path = orr_sprintf ("%s/%s", dir, file);
    char *text = s_slurp (path);
    free (path);
    free (dir);
    if (!text)
        return orr_strdup ("(unreadable)");
    char *nl = strchr (text, '\n');
    if (nl)
        *nl = '\0';
    return text;
}

static void
s_check_value (local_limits_kind_t kind, const char *controller, const char *name, const char *file, const char *want)
{
    char *value = s_group_value (kind, controller, name, file);
    OK (strcmp (value, want) == 0, "%s %s: '%s', expected '%s'", name, file, value, want);
    free (value);
}

/* Every group of `name` is gone. */
static void
s_check_groups_gone (local_limits_kind_t kind, const char *name)
{
    const char *controllers[] = { "memory", "cpu", "pids", NULL };
    for (int i = 0; controllers[i]; i++) {
        char *dir = s_group_dir (kind, controllers[i], name);
        OK (!s_exists (dir), "%s still exists after local_cleanup", dir);
        free (dir);
    }
}

/* The hex mask after "key:\t" in /proc/PID/status. */
static unsigned long long
s_status_mask (pid_t pid, const char *key)
{
    char *path = orr_sprintf ("/proc/%d/status", (int) pid);
    char *text = s_slurp (path);
    free (path);
    CHECK (text, "no /proc/%d/status", (int) pid);
    char *line = strstr (text, key);
    CHECK (line, "no %s in /proc/%d/status", key, (int) pid);
    unsigned long long mask = strtoull (line + strlen (key) + 1, NULL, 16);
    free (text);
    return mask;
}

/* --- 1. a clean environment, the working directory, the log ---------------------------- */

static void
s_test_environment (void)
{
    setenv ("SECRET_X", "1", 1);
    setenv ("LANG", "C.UTF-8", 1);
    char *saved_path = orr_strdup (getenv ("PATH") ? getenv ("PATH") : "/usr/bin:/bin");
    setenv ("PATH", "/orrery-test-spawner-path:/usr/bin:/bin", 1);
    /* What the spawner holds must not reach the server: an fd without close-on-exec, an
     * ignored and a blocked signal. */
    int leaked_fd = open ("/dev/null", O_RDONLY);
    CHECK (leaked_fd >= 0);
    signal (SIGUSR1, SIG_IGN);
    sigset_t usr2, saved_mask;
    sigemptyset (&usr2);
    sigaddset (&usr2, SIGUSR2);
    sigprocmask (SIG_BLOCK, &usr2, &saved_mask);

    const char *argv[] = { "sh", "-c", "env > env.out; echo hello-from-server; echo oops >&2; exec sleep 30", NULL };
    const char *env[] = { "FOO=bar", "PATH=/usr/bin:/bin", NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start ("env", argv, env, NULL, 0, 0, 0, &p, err, sizeof err) == 0, "start: %s", err);
    sigprocmask (SIG_SETMASK, &saved_mask, NULL);
    signal (SIGUSR1, SIG_DFL);
    setenv ("PATH", saved_path, 1);
    free (saved_path);
    unsetenv ("SECRET_X");

    OK (p.pid > 0 && p.start_time > 0 && p.limits == LOCAL_LIMITS_NONE);
    char *log_path = s_path ("env", "logs/server.log");
    OK (s_wait_text (log_path, "oops", 5000), "the log never got the server's output");
    char *log = s_log ("env");
    OK (strstr (log, "hello-from-server\n") && strstr (log, "oops\n"), "log: %s", log);
    free (log);

    char *env_out = s_path ("env", "work/env.out");
    char *seen = s_slurp (env_out);
    OK (seen != NULL, "no env.out in the working directory");
    OK (strstr (seen, "FOO=bar\n"), "FOO missing: %s", seen);
    OK (strstr (seen, "PATH=/usr/bin:/bin\n"), "the caller's PATH does not win: %s", seen);
    OK (!strstr (seen, "orrery-test-spawner-path"), "the spawner's PATH leaked: %s", seen);
    OK (strstr (seen, "LANG=C.UTF-8\n"), "LANG is not inherited: %s", seen);
    OK (!strstr (seen, "SECRET_X"), "the spawner's environment leaked: %s", seen);
    free (seen);
    free (env_out);

    /* Working directory made (0700) and used; log 0600 in a directory made 0700. */
    char *cwd = s_path ("env", "work");
    char link[4096] = "", *proc = orr_sprintf ("/proc/%d/cwd", (int) p.pid);
    ssize_t n = readlink (proc, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    OK (strcmp (link, cwd) == 0, "cwd is '%s', expected '%s'", link, cwd);
    free (proc);
    struct stat st;
    OK (stat (cwd, &st) == 0 && (st.st_mode & 0777) == 0700, "cwd mode %o", st.st_mode & 0777);
    OK (stat (log_path, &st) == 0 && (st.st_mode & 0777) == 0600, "log mode %o", st.st_mode & 0777);
    char *log_dir = s_path ("env", "logs");
    OK (stat (log_dir, &st) == 0 && (st.st_mode & 0777) == 0700, "log dir mode %o", st.st_mode & 0777);
    free (log_dir);
    free (cwd);
    free (log_path);

    /* stdin is /dev/null; no other fd of ours; its own session; signals at default. */
    proc = orr_sprintf ("/proc/%d/fd/0", (int) p.pid);
    n = readlink (proc, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    OK (strcmp (link, "/dev/null") == 0, "stdin is '%s'", link);
    free (proc);
    proc = orr_sprintf ("/proc/%d/fd/%d", (int) p.pid, leaked_fd);
    OK (!s_exists (proc), "fd %d of the spawner reached the server", leaked_fd);
    free (proc);
    close (leaked_fd);
    OK (getsid (p.pid) == p.pid && getpgid (p.pid) == p.pid, "not a session leader");
    OK (s_status_mask (p.pid, "SigIgn:") == 0, "the server ignores signals: %llx", s_status_mask (p.pid, "SigIgn:"));
    OK (s_status_mask (p.pid, "SigBlk:") == 0, "the server blocks signals: %llx", s_status_mask (p.pid, "SigBlk:"));
    s_kill (&p);
}

/* --- 2. a stop reaches the whole process group ----------------------------------------- */

static void
s_test_process_group (void)
{
    const char *argv[] = { "/bin/sh", "-c", "sleep 300 & echo $! > grandchild.pid; sleep 300", NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start ("group", argv, s_clean_path, NULL, 0, 0, 0, &p, err, sizeof err) == 0, "start: %s", err);
    char *pid_file = s_path ("group", "work/grandchild.pid");
    OK (s_wait_text (pid_file, "\n", 5000), "no grandchild pid file");
    char *text = s_slurp (pid_file);
    pid_t grandchild = (pid_t) atoi (text);
    free (text);
    free (pid_file);
    uint64_t grandchild_start = local_start_time_of (grandchild);
    OK (grandchild > 0 && grandchild_start > 0 && local_alive (grandchild, grandchild_start), "grandchild %d",
        (int) grandchild);
    OK (getpgid (grandchild) == p.pid, "the grandchild is not in the server's group");

    OK (local_signal (p.pid, p.start_time, SIGTERM) == 0);
    int status = 0;
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status), "the server survives SIGTERM");
    OK (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM, "status 0x%x", status);
    char why[128];
    local_describe_exit (status, false, why, sizeof why);
    CHECK_EQ_STR (why, "killed by signal 15 (SIGTERM)");
    bool gone = false;
    for (int64_t deadline = orr_mono_ms () + 5000; !gone && orr_mono_ms () < deadline; orr_sleep_ms (20))
        gone = !local_alive (grandchild, grandchild_start);
    OK (gone, "grandchild %d survives the server's SIGTERM", (int) grandchild);
    OK (local_signal (p.pid, p.start_time, SIGTERM) == -1, "a gone server can be signalled");
}

/* --- 3. identity, and a start from another thread -------------------------------------- */

typedef struct {
    local_proc_t proc;
    int rc;
    char err[512];
} thread_start_t;

static void *
s_start_in_thread (void *arg)
{
    thread_start_t *t = arg;
    /* A worker thread's mask must not reach the server (sleep keeps what it gets). */
    sigset_t usr2;
    sigemptyset (&usr2);
    sigaddset (&usr2, SIGUSR2);
    pthread_sigmask (SIG_BLOCK, &usr2, NULL);
    const char *argv[] = { "sleep", "30", NULL };
    t->rc = s_start ("identity", argv, s_clean_path, NULL, 0, 0, 0, &t->proc, t->err, sizeof t->err);
    return NULL;
}

static void
s_test_identity (void)
{
    /* The spawner starts servers from worker threads. */
    thread_start_t t = { .rc = -1 };
    pthread_t thread;
    CHECK (pthread_create (&thread, NULL, s_start_in_thread, &t) == 0);
    pthread_join (thread, NULL);
    OK (t.rc == 0, "start from a thread: %s", t.err);
    local_proc_t p = t.proc;
    OK (s_status_mask (p.pid, "SigBlk:") == 0, "the server blocks signals: %llx", s_status_mask (p.pid, "SigBlk:"));

    OK (local_start_time_of (p.pid) == p.start_time);
    OK (local_alive (p.pid, p.start_time));
    OK (!local_alive (p.pid, p.start_time + 1), "a different start time is the same process");
    OK (local_signal (p.pid, p.start_time + 1, SIGKILL) == -1, "signalled a process of another identity");
    int status = 0;
    OK (local_exited (p.pid, p.start_time + 1, &status) && status == -1,
        "a reused pid is not taken for the server that had it");
    OK (local_alive (p.pid, p.start_time), "asking about another identity touched the process");
    OK (!local_exited (p.pid, p.start_time, &status), "a running server has exited");

    OK (local_signal (p.pid, p.start_time, SIGKILL) == 0);
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status));
    OK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL, "status 0x%x", status);
    OK (!local_alive (p.pid, p.start_time), "alive after exit");
    OK (local_exited (p.pid, p.start_time, &status) && status == -1, "reaped twice");

    /* Not our child (adopted after a restart): pid 1 runs, so it has not exited. */
    uint64_t init_start = local_start_time_of (1);
    OK (init_start > 0 && local_alive (1, init_start));
    OK (!local_exited (1, init_start, &status), "pid 1 taken for exited");
    OK (local_signal (1, init_start, 0) == -1, "pid 1 may never be signalled");
    OK (local_start_time_of (0) == 0 && local_start_time_of (-5) == 0 && !local_alive (-5, 1));
    OK (local_signal (-1, 1, SIGKILL) == -1 && local_signal (0, 1, SIGKILL) == -1);
}

/* A zombie child is gone for local_alive though /proc still shows it. */
static void
s_test_zombie (void)
{
    const char *argv[] = { "/bin/true", NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start ("zombie", argv, s_clean_path, NULL, 0, 0, 0, &p, err, sizeof err) == 0, "start: %s", err);
    siginfo_t info;
    memset (&info, 0, sizeof info);
    OK (waitid (P_PID, (id_t) p.pid, &info, WEXITED | WNOWAIT) == 0);   /* exited, not reaped */
    OK (local_start_time_of (p.pid) == p.start_time, "the zombie's /proc entry is gone");
    OK (!local_alive (p.pid, p.start_time), "a zombie counts as alive");
    int status = -1;
    OK (local_exited (p.pid, p.start_time, &status) && WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

/* --- 4. memory limit (cgroups) ---------------------------------------------------------- */

static void
s_test_memory_limit (void)
{
    if (!s_exists (PYTHON)) {
        printf ("SKIP memory limit: no %s\n", PYTHON);
        return;
    }
    const char *name = s_name ("mem");
    const char *argv[] = { PYTHON, "-c", "b=bytearray(300*1024*1024); import time; time.sleep(30)", NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start ("mem", argv, s_clean_path, name, 64 * MIB, 0, 0, &p, err, sizeof err) == 0, "start: %s", err);
    if (p.limits == LOCAL_LIMITS_RLIMIT) {
        char *log = s_log ("mem");
        printf ("SKIP memory limit by cgroup: %s", log);
        free (log);
        s_kill (&p);
        return;
    }
    OK (p.limits == LOCAL_LIMITS_CGROUP1 || p.limits == LOCAL_LIMITS_CGROUP2, "limits kind %d", p.limits);
    s_check_value (p.limits, "memory", name, p.limits == LOCAL_LIMITS_CGROUP1 ? "memory.limit_in_bytes" : "memory.max",
                   "67108864");
    int status = 0;
    int64_t t0 = orr_mono_ms ();
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status), "a 300 MB allocation survives a 64 MiB limit");
    OK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL, "status 0x%x", status);
    OK (local_oom_killed (name), "the OOM kill is not seen");
    char why[128];
    local_describe_exit (status, local_oom_killed (name), why, sizeof why);
    CHECK_EQ_STR (why, "killed by signal 9 (SIGKILL): memory limit reached");
    printf ("memory limit: %s (%s) after %lld ms\n", why, p.limits == LOCAL_LIMITS_CGROUP1 ? "cgroup v1" : "cgroup v2",
            (long long) (orr_mono_ms () - t0));

    local_cleanup (name);
    s_check_groups_gone (p.limits, name);
    local_cleanup (name);   /* twice is fine */
    OK (!local_oom_killed (name), "an oom is reported for a removed group");
}

/* --- 5. pids and cpu limits; a group in use; cleanup of a running server ---------------- */

static void
s_test_pids_limit (void)
{
    const char *name = s_name ("pids");
    const char *argv[] = { "/bin/sh", "-c",
                           "i=0; while [ $i -lt 20 ]; do sleep 30 & echo started >> forks.txt; i=$((i+1)); done; "
                           "echo all-forked; wait",
                           NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start ("pids", argv, s_clean_path, name, 256 * MIB, 500, 5, &p, err, sizeof err) == 0, "start: %s", err);
    if (p.limits == LOCAL_LIMITS_RLIMIT) {
        char *log = s_log ("pids");
        printf ("SKIP pids limit by cgroup: %s", log);
        free (log);
        s_kill (&p);
        return;
    }
    bool v1 = p.limits == LOCAL_LIMITS_CGROUP1;
    s_check_value (p.limits, "pids", name, "pids.max", "5");
    s_check_value (p.limits, "cpu", name, v1 ? "cpu.cfs_quota_us" : "cpu.max", v1 ? "50000" : "50000 100000");
    if (v1)
        s_check_value (p.limits, "cpu", name, "cpu.cfs_period_us", "100000");

    /* The shell runs out of processes: it says so (dash "Cannot fork", bash "fork: ..."). */
    char *log_path = s_path ("pids", "logs/server.log");
    bool said = s_wait_text (log_path, "ork", 5000);
    free (log_path);
    char *forks_path = s_path ("pids", "work/forks.txt");
    char *forks = s_slurp (forks_path);
    free (forks_path);
    int started = 0;
    for (const char *s = forks; s && (s = strstr (s, "started")); s++)
        started++;
    free (forks);
    char *log = s_log ("pids");
    OK (said && !strstr (log, "all-forked"), "20 forks under pids.max 5; log: %s", log);
    OK (started > 0 && started < 20, "%d sleeps started under pids.max 5", started);
    free (log);
    printf ("pids limit: %d of 20 sleeps started under pids.max 5\n", started);

    /* Another server of the same name is refused, and the running one keeps its group. */
    local_proc_t second;
    const char *sleep_argv[] = { "sleep", "30", NULL };
    OK (s_start ("pids2", sleep_argv, s_clean_path, name, 256 * MIB, 0, 5, &second, err, sizeof err) == -1,
        "two servers share a cgroup");
    OK (strstr (err, "in use"), "reason: %s", err);
    char *dir = s_group_dir (p.limits, "pids", name);
    OK (s_exists (dir), "a refused start removed the running server's group");
    free (dir);
    OK (!local_oom_killed (name), "an oom without one");

    /* Cleanup kills the sleeps left in the group and removes it (rmdir needs it empty). */
    local_cleanup (name);
    s_check_groups_gone (p.limits, name);
    int status = 0;
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status), "the server survives its cleanup");
}

/* --- 6. the rlimit fallback ------------------------------------------------------------ */

static void
s_test_rlimit_fallback (void)
{
    if (!s_exists (PYTHON)) {
        printf ("SKIP rlimit: no %s\n", PYTHON);
        return;
    }
    local_force_rlimits (true);
    const char *name = s_name ("rlimit");
    const char *argv[] = { PYTHON, "-c", "b=bytearray(300*1024*1024); import time; time.sleep(30)", NULL };
    local_proc_t p;
    char err[512] = "";
    int rc = s_start ("rlimit", argv, s_clean_path, name, 64 * MIB, 1000, 10, &p, err, sizeof err);
    local_force_rlimits (false);
    OK (rc == 0, "start: %s", err);
    OK (p.limits == LOCAL_LIMITS_RLIMIT, "limits kind %d", p.limits);
    int status = 0;
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status), "a 300 MB allocation survives RLIMIT_AS 64 MiB");
    OK (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status 0x%x", status);
    char *log = s_log ("rlimit");
    OK (strstr (log, "MemoryError"), "log: %s", log);
    OK (strstr (log, "RLIMIT_AS") && strstr (log, "cpu and pids limits are not enforced"),
        "the log does not say what is enforced: %s", log);
    free (log);
    for (local_limits_kind_t kind = LOCAL_LIMITS_CGROUP2; kind <= LOCAL_LIMITS_CGROUP1; kind++) {
        char *dir = s_group_dir (kind, "memory", name);
        OK (!s_exists (dir), "rlimits made a cgroup %s", dir);
        free (dir);
    }
}

/* --- 7. exec failures and refused starts ------------------------------------------------ */

static void
s_check_exec_failure (const char *tag, const char *program, const char *reason)
{
    const char *argv[] = { program, NULL };
    local_proc_t p;
    char err[512] = "";
    OK (s_start (tag, argv, s_clean_path, NULL, 0, 0, 0, &p, err, sizeof err) == 0, "start: %s", err);
    int status = 0;
    OK (s_wait_exit (&p, EXIT_WAIT_MS, &status));
    OK (WIFEXITED (status) && WEXITSTATUS (status) == 127, "status 0x%x", status);
    char want[256], *log = s_log (tag);
    snprintf (want, sizeof want, "orrery: cannot run %s: %s\n", program, reason);
    OK (strstr (log, want), "log '%s' does not say '%s'", log, want);
    free (log);
}

static void
s_refused (const local_start_t *spec, const char *why_contains)
{
    local_proc_t p;
    char err[512] = "";
    OK (local_start (spec, &p, err, sizeof err) == -1, "started: expected '%s'", why_contains);
    OK (strstr (err, why_contains), "reason '%s' does not say '%s'", err, why_contains);
}

static void
s_test_failures (void)
{
    s_check_exec_failure ("noexec", "/nonexistent/x", "No such file or directory");
    s_check_exec_failure ("nopath", "orrery-no-such-program", "No such file or directory");
    char *not_exec = s_path ("noexec", "work/plain.txt");
    FILE *f = fopen (not_exec, "w");
    CHECK (f);
    fputs ("text\n", f);
    fclose (f);
    chmod (not_exec, 0644);
    s_check_exec_failure ("noperm", not_exec, "Permission denied");

    char *cwd = s_path ("refused", "work"), *log = s_path ("refused", "server.log");
    const char *argv[] = { "sleep", "1", NULL }, *no_program[] = { NULL }, *bad_env[] = { "NOEQUALS", NULL };
    local_start_t spec = { .argv = argv, .cwd = cwd, .log_path = log };
    local_proc_t p;
    OK (local_start (NULL, &p, NULL, 0) == -1);
    s_refused (NULL, "no start request");
    s_refused (&(local_start_t) { .cwd = cwd, .log_path = log }, "argv is empty");
    s_refused (&(local_start_t) { .argv = no_program, .cwd = cwd, .log_path = log }, "argv is empty");
    s_refused (&(local_start_t) { .argv = argv, .env = bad_env, .cwd = cwd, .log_path = log }, "NOEQUALS");
    s_refused (&(local_start_t) { .argv = argv, .cwd = cwd, .log_path = log, .mem_limit_bytes = -1 },
               "negative limit");
    s_refused (&(local_start_t) { .argv = argv, .cwd = cwd, .log_path = log, .pids_limit = 5 }, "cgroup name");
    s_refused (&(local_start_t) { .argv = argv, .cwd = cwd, .log_path = log, .pids_limit = 5, .cgroup_name = "a/b" },
               "cgroup name");
    s_refused (&(local_start_t) { .argv = argv, .cwd = cwd, .log_path = log, .pids_limit = 5, .cgroup_name = ".." },
               "cgroup name");
    /* A working directory below a file cannot be made: refused at once, not later. */
    char *under_file = orr_sprintf ("%s/sub", not_exec);
    spec.cwd = under_file;
    s_refused (&spec, "working directory");
    spec.cwd = cwd;
    spec.log_path = under_file;
    s_refused (&spec, "log");
    OK (local_start (&spec, NULL, NULL, 0) == -1);
    free (under_file);
    free (not_exec);
    free (cwd);
    free (log);
}

/* --- 8. cleanup, oom and descriptions on odd input; log tails -------------------------- */

static void
s_test_odd_input (void)
{
    local_cleanup (s_name ("never"));   /* never made */
    local_cleanup (NULL);
    local_cleanup ("..");
    local_cleanup ("");
    OK (!local_oom_killed (NULL) && !local_oom_killed ("..") && !local_oom_killed (s_name ("never2")));
    local_set_cgroup_parent ("../escape");   /* refused: the parent stays */
    local_set_cgroup_parent ("/abs");
    local_set_cgroup_parent ("a//b");

    char why[128];
    local_describe_exit (1 << 8, false, why, sizeof why);
    CHECK_EQ_STR (why, "exited with status 1");
    local_describe_exit (0, false, why, sizeof why);
    CHECK_EQ_STR (why, "exited with status 0");
    local_describe_exit (SIGKILL, true, why, sizeof why);
    CHECK_EQ_STR (why, "killed by signal 9 (SIGKILL): memory limit reached");
    local_describe_exit (-1, false, why, sizeof why);
    CHECK_EQ_STR (why, "stopped (exit status unknown)");
    local_describe_exit (1 << 8, false, NULL, 0);
    local_describe_exit (1 << 8, false, why, 4);
    CHECK_EQ_STR (why, "exi");
    s_checks += 6;

    char *path = s_path ("", "tail.log");
    FILE *f = fopen (path, "w");
    CHECK (f);
    fputs ("line1\nline2\nline3\n", f);
    fclose (f);
    char *tail = local_log_tail (path, 8);
    CHECK_EQ_STR (tail, "line3\n");   /* "2\nline3\n" cut to whole lines */
    free (tail);
    tail = local_log_tail (path, 12);
    CHECK_EQ_STR (tail, "line2\nline3\n");   /* starts right at a line */
    free (tail);
    tail = local_log_tail (path, 1000);
    CHECK_EQ_STR (tail, "line1\nline2\nline3\n");
    free (tail);
    tail = local_log_tail (path, 0);
    CHECK_EQ_STR (tail, "");
    free (tail);
    f = fopen (path, "w");
    fputs ("short\na-very-long-last-line-without-end", f);
    fclose (f);
    tail = local_log_tail (path, 10);
    CHECK_EQ_STR (tail, "ithout-end");   /* a last line longer than max comes cut */
    free (tail);
    OK (local_log_tail (NULL, 10) == NULL);
    char *missing = s_path ("", "missing.log");
    OK (local_log_tail (missing, 10) == NULL);
    OK (local_log_tail (s_dir, 10) == NULL, "a directory read as a log");
    free (missing);
    free (path);
    s_checks += 5;
}

int
main (void)
{
    s_dir = tu_tmpdir ("spawner-local");
    snprintf (s_parent, sizeof s_parent, "orrery-test-%d", (int) getpid ());
    local_set_cgroup_parent (s_parent);
    atexit (s_cleanup_all);

    s_test_environment ();
    s_test_process_group ();
    s_test_identity ();
    s_test_zombie ();
    s_test_memory_limit ();
    s_test_pids_limit ();
    s_test_rlimit_fallback ();
    s_test_failures ();
    s_test_odd_input ();

    s_cleanup_all ();
    printf ("%d passed, 0 failed\n", s_checks);
    return 0;
}
