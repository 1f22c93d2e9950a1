/*  spawner_local: the local backend's processes. See spawner_local.h for the design.
 *
 *  Implementation notes:
 *  - local_start runs on a worker thread of a multi-threaded spawner, so between fork and
 *    exec the child makes only async-signal-safe calls (no malloc, no stdio, no locale):
 *    everything it needs (environment, exec candidates from PATH, open fds for the log,
 *    /dev/null and each cgroup.procs) is made in the parent first. The child reports a
 *    failure before exec as a small struct over a CLOEXEC pipe; EOF means exec happened.
 *  - Every signal is blocked around fork so no handler of the spawner can run in the child
 *    before the child has set all dispositions back to default.
 *  - The parent makes the groups and writes their limits before fork, so a refused limit
 *    is an error of the start and not a server that runs unlimited.
 *  - The kind of limits is decided per start because it depends on what was asked (the
 *    unified hierarchy may offer memory but not cpu). local_oom_killed and local_cleanup
 *    get only a name, so they look in every place a group of that name can be.
 *  - A group left over from an earlier server of the same name is removed and made afresh
 *    when empty (its oom_kill counter would describe the old server), refused when not.
 */
#include "spawner_local.h"
#include "orr_log.h"
#include "orr_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOCAL_CGROUP_FS "/sys/fs/cgroup"
#define LOCAL_CGROUP_NAME_MAX 128         /* parent and server names: group paths stay far below PATH_MAX */
#define LOCAL_CFS_PERIOD_US 100000
#define LOCAL_CFS_QUOTA_MIN_US 1000       /* the kernel refuses a smaller quota */
#define LOCAL_ARGV_MAX 4096
#define LOCAL_ENV_MAX 4096
#define LOCAL_GROUPS_MAX 3                /* v1: memory, cpu, pids; v2: one */
#define LOCAL_START_TIME_WAIT_MS 2000
#define LOCAL_CLEANUP_WAIT_MS 3000
#define LOCAL_POLL_MS 10
#define LOCAL_LOG_TAIL_MAX (16u << 20)
#define LOCAL_CLOSE_FDS_MAX (1 << 20)     /* bound for the close loop when close_range is missing */
#define LOCAL_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Where a v2 hierarchy can be: the whole of /sys/fs/cgroup, or the unified mount of a
 * hybrid host. A directory is one only when it has cgroup.controllers. */
static const char *const s_cgroup2_roots[] = { LOCAL_CGROUP_FS, LOCAL_CGROUP_FS "/unified", NULL };
/* The v1 controllers a server's limits use (a "cpu,cpuacct" mount has a "cpu" link). */
static const char *const s_cgroup1_controllers[] = { "memory", "cpu", "pids", NULL };
/* Taken from the spawner's environment when set and not given by the caller. */
static const char *const s_inherited_env[] = { "PATH",         "PYTHONPATH", "CONDA_ROOT", "CONDA_DEFAULT_ENV",
                                               "VIRTUAL_ENV",  "LANG",       "LC_ALL",     "JUPYTERHUB_SINGLEUSER_APP",
                                               NULL };

static char s_cgroup_parent[LOCAL_CGROUP_NAME_MAX] = "orrery";
static bool s_rlimits_forced;

/* Writes a message into buf, which may be NULL. */
static void s_message (char *buf, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_message (char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || size == 0)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, size, fmt, ap);
    va_end (ap);
}

/* A path from a format. 0, or -1 (errno ENAMETOOLONG) when it does not fit: a cut path
 * could name another file. */
static int s_format_path (char *out, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_format_path (char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (out, size, fmt, ap);
    va_end (ap);
    if (n < 0 || (size_t) n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* --- names and small files ------------------------------------------------------------ */

/* One path component of a group's name: printable, no '/', not "." or "..". */
static bool
s_component_ok (const char *s, size_t len)
{
    if (len == 0 || len >= LOCAL_CGROUP_NAME_MAX || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isgraph ((unsigned char) s[i]) || s[i] == '/')
            return false;
    return true;
}

static bool
s_cgroup_name_ok (const char *name)
{
    return name && s_component_ok (name, strlen (name));
}

void
local_set_cgroup_parent (const char *name)
{
    if (!name)
        name = "orrery";
    /* Nested parents ("orrery/servers") are fine; every component must be a name. */
    bool ok = strlen (name) < sizeof s_cgroup_parent;
    for (const char *p = name; ok && *p;) {
        const char *slash = strchr (p, '/');
        size_t len = slash ? (size_t) (slash - p) : strlen (p);
        ok = s_component_ok (p, len);
        p += len + (slash ? 1 : 0);
        ok = ok && !(slash && !*p);
    }
    if (!ok || !*name) {
        orr_warn ("cgroup parent '%s' is not a relative path of plain names; keeping '%s'", name, s_cgroup_parent);
        return;
    }
    snprintf (s_cgroup_parent, sizeof s_cgroup_parent, "%s", name);
}

void
local_force_rlimits (bool on)
{
    s_rlimits_forced = on;
}

static bool
s_exists (const char *dir, const char *file)
{
    char path[PATH_MAX];
    return s_format_path (path, sizeof path, "%s/%s", dir, file) == 0 && access (path, F_OK) == 0;
}

/* dir/file's first size-1 bytes, NUL-terminated. Length, or -1 (errno set). */
static ssize_t
s_read_file (const char *dir, const char *file, char *buf, size_t size)
{
    char path[PATH_MAX];
    if (s_format_path (path, sizeof path, "%s/%s", dir, file) != 0)
        return -1;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read (fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t) r;
    }
    close (fd);
    buf[n] = '\0';
    return (ssize_t) n;
}

/* One write of text to dir/file (cgroup files take a value per write). 0, or -1 (errno). */
static int
s_write_file (const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    if (s_format_path (path, sizeof path, "%s/%s", dir, file) != 0)
        return -1;
    int fd = open (path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen (text);
    ssize_t r = write (fd, text, len);
    int saved = errno;
    close (fd);
    errno = saved;
    return r == (ssize_t) len ? 0 : -1;
}

/* mkdir -p with `mode` for every directory made. 0, or -1 (errno). */
static int
s_mkdirs (const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (!*path) {
        errno = ENOENT;
        return -1;
    }
    if (s_format_path (buf, sizeof buf, "%s", path) != 0)
        return -1;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir (buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = saved;
        if (!saved)
            break;
    }
    struct stat st;
    if (stat (path, &st) != 0)
        return -1;
    if (!S_ISDIR (st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* The number after "key " on a line of text ("oom_kill 3"); false when no line has it. */
static bool
s_keyed_value (const char *text, const char *key, long long *value)
{
    size_t klen = strlen (key);
    for (const char *p = text; p && *p; p = strchr (p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp (p, key, klen) == 0 && p[klen] == ' ') {
            *value = strtoll (p + klen + 1, NULL, 10);
            return true;
        }
    return false;
}

/* --- /proc ----------------------------------------------------------------------------- */

/* State (field 3) and start time (field 22) of /proc/PID/stat. The command name (field 2)
 * is in parentheses and may hold spaces and ')', so fields are counted from the last ')'. */
static int
s_proc_stat (pid_t pid, char *state, uint64_t *start_time)
{
    if (pid <= 0)
        return -1;
    char dir[64], buf[2048];
    s_format_path (dir, sizeof dir, "/proc/%d", (int) pid);
    if (s_read_file (dir, "stat", buf, sizeof buf) <= 0)
        return -1;
    const char *p = strrchr (buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        if (field == 3)
            *state = *p;
        if (field == 22) {
            char *end;
            unsigned long long v = strtoull (p, &end, 10);
            if (end == p)
                return -1;
            *start_time = v;
            return 0;
        }
        while (*p && *p != ' ')
            p++;
    }
    return -1;
}

uint64_t
local_start_time_of (pid_t pid)
{
    char state = 0;
    uint64_t start = 0;
    return s_proc_stat (pid, &state, &start) == 0 ? start : 0;
}

bool
local_alive (pid_t pid, uint64_t start_time)
{
    char state = 0;
    uint64_t start = 0;
    if (start_time == 0 || s_proc_stat (pid, &state, &start) != 0)
        return false;
    return start == start_time && state != 'Z' && state != 'X';
}

int
local_signal (pid_t pid, uint64_t start_time, int sig)
{
    /* kill(-1) reaches every process and kill(-0) our own group: never let a bad pid in. */
    if (pid <= 1 || sig < 0 || sig >= NSIG || !local_alive (pid, start_time))
        return -1;
    if (kill (-pid, sig) == 0)
        return 0;
    /* No group of that id (a server that left its group): the process itself. */
    return errno == ESRCH && kill (pid, sig) == 0 ? 0 : -1;
}

bool
local_exited (pid_t pid, uint64_t start_time, int *status)
{
    int ignored;
    if (!status)
        status = &ignored;
    *status = -1;
    if (pid <= 0)
        return true;   /* never a server; and waitpid(0 or -1) would reap someone else */
    /* Another process under that pid: ours is long gone (our unreaped child keeps its pid). */
    uint64_t now = local_start_time_of (pid);
    if (now != 0 && now != start_time)
        return true;
    int wstatus = 0;
    pid_t r;
    do
        r = waitpid (pid, &wstatus, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == pid) {
        *status = wstatus;
        return true;
    }
    if (r == 0)
        return false;
    return !local_alive (pid, start_time);   /* ECHILD: adopted, not ours to reap */
}

/* --- cgroups --------------------------------------------------------------------------- */

/* The unified hierarchy: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid
 * one, NULL when there is none. */
static const char *
s_cgroup2_root (void)
{
    for (int i = 0; s_cgroup2_roots[i]; i++)
        if (s_exists (s_cgroup2_roots[i], "cgroup.controllers"))
            return s_cgroup2_roots[i];
    return NULL;
}

/* "memory cpu pids" holds `word` as a whole word. */
static bool
s_has_word (const char *list, const char *word)
{
    size_t wlen = strlen (word);
    for (const char *p = list; (p = strstr (p, word)); p += wlen)
        if ((p == list || isspace ((unsigned char) p[-1])) && (p[wlen] == '\0' || isspace ((unsigned char) p[wlen])))
            return true;
    return false;
}

/* Sends SIGKILL to every process listed in dir/cgroup.procs; how many were listed. */
static int
s_kill_group_members (const char *dir)
{
    char path[PATH_MAX];
    FILE *f = s_format_path (path, sizeof path, "%s/cgroup.procs", dir) == 0 ? fopen (path, "re") : NULL;
    if (!f)
        return 0;
    int listed = 0;
    long pid;
    while (fscanf (f, "%ld", &pid) == 1) {
        listed++;
        if (pid > 1 && pid != (long) getpid ())
            kill ((pid_t) pid, SIGKILL);
    }
    fclose (f);
    return listed;
}

/* Kills what runs in the group and removes it; a group that is not there is fine. */
static void
s_remove_group (const char *dir)
{
    if (access (dir, F_OK) != 0)
        return;
    s_write_file (dir, "cgroup.kill", "1");   /* v2 (5.14+): kills forks racing with us too */
    int64_t deadline = orr_mono_ms () + LOCAL_CLEANUP_WAIT_MS;
    for (;;) {
        s_kill_group_members (dir);
        if (rmdir (dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY || orr_mono_ms () > deadline) {
            orr_warn ("cannot remove cgroup %s: %s", dir, strerror (errno));
            return;
        }
        orr_sleep_ms (LOCAL_POLL_MS);
    }
}

/* Makes the server's group afresh: an empty leftover of the same name is replaced. */
static int
s_make_group (const char *dir, char *err, size_t errlen)
{
    if (mkdir (dir, 0755) == 0)
        return 0;
    if (errno == EEXIST) {
        char procs[64];
        if (s_read_file (dir, "cgroup.procs", procs, sizeof procs) > 0) {
            s_message (err, errlen, "cgroup %s is in use (pid %ld): another server of that name runs", dir,
                       strtol (procs, NULL, 10));
            return -1;
        }
        if (rmdir (dir) == 0 && mkdir (dir, 0755) == 0)
            return 0;
    }
    s_message (err, errlen, "cannot make cgroup %s: %s", dir, strerror (errno));
    return -1;
}

/* Makes root/<parent> (each level) and, for v2, enables `enable` ("+memory +pids") for
 * the children of every level. 1 done, 0 the hierarchy is not ours to use (why in `why`),
 * -1 error (in err). */
static int
s_make_parent (const char *root, const char *enable, char *dir, size_t dirsize, char *why, size_t whylen, char *err,
               size_t errlen)
{
    s_format_path (dir, dirsize, "%s", root);
    if (enable && s_write_file (dir, "cgroup.subtree_control", enable) != 0) {
        s_message (why, whylen, "cgroup v2: cannot enable %s in %s: %s", enable, dir, strerror (errno));
        return 0;
    }
    for (const char *p = s_cgroup_parent; *p;) {
        const char *slash = strchr (p, '/');
        size_t len = slash ? (size_t) (slash - p) : strlen (p);
        size_t used = strlen (dir);
        s_format_path (dir + used, dirsize - used, "/%.*s", (int) len, p);
        p += len + (slash ? 1 : 0);
        if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
            if (errno == EACCES || errno == EPERM || errno == EROFS) {
                s_message (why, whylen, "cannot make %s: %s", dir, strerror (errno));
                return 0;
            }
            s_message (err, errlen, "cannot make cgroup %s: %s", dir, strerror (errno));
            return -1;
        }
        if (enable && s_write_file (dir, "cgroup.subtree_control", enable) != 0) {
            s_message (err, errlen, "cannot enable %s in cgroup %s: %s", enable, dir, strerror (errno));
            return -1;
        }
    }
    return 1;
}

/* What a start does about limits: the groups it made (joined by the child, removed on a
 * failed start) or, for rlimits, why cgroups were not used. */
typedef struct {
    local_limits_kind_t kind;
    char dirs[LOCAL_GROUPS_MAX][PATH_MAX];
    int ndirs;
    char why_not_cgroups[512];
} limits_plan_t;

static void
s_plan_undo (limits_plan_t *plan)
{
    for (int i = 0; i < plan->ndirs; i++)
        s_remove_group (plan->dirs[i]);
    plan->ndirs = 0;
}

/* One limit file; the errno of a refusal goes into err. */
static int
s_write_limit (const char *dir, const char *file, const char *value, char *err, size_t errlen)
{
    if (s_write_file (dir, file, value) == 0)
        return 0;
    s_message (err, errlen, "cannot set %s/%s to %s: %s", dir, file, value, strerror (errno));
    return -1;
}

static int64_t
s_cfs_quota_us (int64_t millis)
{
    int64_t quota = millis * (LOCAL_CFS_PERIOD_US / 1000);
    return quota < LOCAL_CFS_QUOTA_MIN_US ? LOCAL_CFS_QUOTA_MIN_US : quota;
}

/* cgroup v2: one group with memory.max, cpu.max and pids.max. 1, 0 (not usable, why), -1. */
static int
s_plan_cgroup2 (const local_start_t *spec, limits_plan_t *plan, char *why, size_t whylen, char *err, size_t errlen)
{
    const char *root = s_cgroup2_root ();
    if (!root) {
        s_message (why, whylen, "no cgroup v2 hierarchy");
        return 0;
    }
    char controllers[512], enable[64] = "";
    if (s_read_file (root, "cgroup.controllers", controllers, sizeof controllers) < 0) {
        s_message (why, whylen, "cannot read %s/cgroup.controllers: %s", root, strerror (errno));
        return 0;
    }
    const char *needed[] = { spec->mem_limit_bytes ? "memory" : NULL, spec->cpu_limit_millis ? "cpu" : NULL,
                             spec->pids_limit ? "pids" : NULL };
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++) {
        if (!needed[i])
            continue;
        if (!s_has_word (controllers, needed[i])) {
            s_message (why, whylen, "cgroup v2 at %s has no %s controller", root, needed[i]);
            return 0;
        }
        size_t used = strlen (enable);
        snprintf (enable + used, sizeof enable - used, "%s+%s", used ? " " : "", needed[i]);
    }
    char dir[PATH_MAX];
    int r = s_make_parent (root, enable, dir, sizeof dir, why, whylen, err, errlen);
    if (r != 1)
        return r;
    size_t used = strlen (dir);
    s_format_path (dir + used, sizeof dir - used, "/%s", spec->cgroup_name);
    if (s_make_group (dir, err, errlen) != 0)
        return -1;
    s_format_path (plan->dirs[plan->ndirs++], PATH_MAX, "%s", dir);
    char value[64];
    if (spec->mem_limit_bytes) {
        snprintf (value, sizeof value, "%lld", (long long) spec->mem_limit_bytes);
        if (s_write_limit (dir, "memory.max", value, err, errlen) != 0)
            return -1;
        s_write_file (dir, "memory.swap.max", "0");   /* absent without swap accounting */
    }
    if (spec->cpu_limit_millis) {
        snprintf (value, sizeof value, "%lld %d", (long long) s_cfs_quota_us (spec->cpu_limit_millis),
                  LOCAL_CFS_PERIOD_US);
        if (s_write_limit (dir, "cpu.max", value, err, errlen) != 0)
            return -1;
    }
    if (spec->pids_limit) {
        snprintf (value, sizeof value, "%lld", (long long) spec->pids_limit);
        if (s_write_limit (dir, "pids.max", value, err, errlen) != 0)
            return -1;
    }
    plan->kind = LOCAL_LIMITS_CGROUP2;
    return 1;
}

/* The limit files of one v1 controller's group. */
static int
s_write_cgroup1_limits (const char *controller, const char *dir, const local_start_t *spec, char *err, size_t errlen)
{
    char value[64];
    if (strcmp (controller, "memory") == 0) {
        snprintf (value, sizeof value, "%lld", (long long) spec->mem_limit_bytes);
        if (s_write_limit (dir, "memory.limit_in_bytes", value, err, errlen) != 0)
            return -1;
        /* memory+swap at the same value keeps the server from swapping past its limit;
         * the file exists only with swap accounting. */
        s_write_file (dir, "memory.memsw.limit_in_bytes", value);
        return 0;
    }
    if (strcmp (controller, "cpu") == 0) {
        snprintf (value, sizeof value, "%d", LOCAL_CFS_PERIOD_US);
        if (s_write_limit (dir, "cpu.cfs_period_us", value, err, errlen) != 0)
            return -1;
        snprintf (value, sizeof value, "%lld", (long long) s_cfs_quota_us (spec->cpu_limit_millis));
        return s_write_limit (dir, "cpu.cfs_quota_us", value, err, errlen);
    }
    snprintf (value, sizeof value, "%lld", (long long) spec->pids_limit);
    return s_write_limit (dir, "pids.max", value, err, errlen);
}

/* cgroup v1: a group per asked controller. 1, 0 (not usable, why), -1. */
static int
s_plan_cgroup1 (const local_start_t *spec, limits_plan_t *plan, char *why, size_t whylen, char *err, size_t errlen)
{
    const int64_t asked[] = { spec->mem_limit_bytes, spec->cpu_limit_millis, spec->pids_limit };
    char mount[PATH_MAX];
    /* All or nothing: look at every controller before making anything. */
    for (int i = 0; s_cgroup1_controllers[i]; i++) {
        if (!asked[i])
            continue;
        s_format_path (mount, sizeof mount, "%s/%s", LOCAL_CGROUP_FS, s_cgroup1_controllers[i]);
        if (!s_exists (mount, "cgroup.procs")) {
            s_message (why, whylen, "no cgroup v1 %s hierarchy", s_cgroup1_controllers[i]);
            return 0;
        }
        if (access (mount, W_OK) != 0) {
            s_message (why, whylen, "cgroup v1 %s is not writable: %s", mount, strerror (errno));
            return 0;
        }
    }
    for (int i = 0; s_cgroup1_controllers[i]; i++) {
        if (!asked[i])
            continue;
        s_format_path (mount, sizeof mount, "%s/%s", LOCAL_CGROUP_FS, s_cgroup1_controllers[i]);
        char dir[PATH_MAX];
        int r = s_make_parent (mount, NULL, dir, sizeof dir, why, whylen, err, errlen);
        if (r != 1)
            return r;
        size_t used = strlen (dir);
        s_format_path (dir + used, sizeof dir - used, "/%s", spec->cgroup_name);
        if (s_make_group (dir, err, errlen) != 0)
            return -1;
        s_format_path (plan->dirs[plan->ndirs++], PATH_MAX, "%s", dir);
        if (s_write_cgroup1_limits (s_cgroup1_controllers[i], dir, spec, err, errlen) != 0)
            return -1;
    }
    plan->kind = LOCAL_LIMITS_CGROUP1;
    return 1;
}

/* Decides how the limits are enforced and makes the groups. 0, or -1 with err (and
 * nothing left behind). */
static int
s_plan_limits (const local_start_t *spec, limits_plan_t *plan, char *err, size_t errlen)
{
    memset (plan, 0, sizeof *plan);
    if (!spec->mem_limit_bytes && !spec->cpu_limit_millis && !spec->pids_limit) {
        plan->kind = LOCAL_LIMITS_NONE;
        return 0;
    }
    if (s_rlimits_forced) {
        s_message (plan->why_not_cgroups, sizeof plan->why_not_cgroups, "cgroups are turned off");
        plan->kind = LOCAL_LIMITS_RLIMIT;
        return 0;
    }
    char why2[256] = "", why1[256] = "";
    int r = s_plan_cgroup2 (spec, plan, why2, sizeof why2, err, errlen);
    if (r == 0) {
        s_plan_undo (plan);
        r = s_plan_cgroup1 (spec, plan, why1, sizeof why1, err, errlen);
    }
    if (r == 0) {
        s_plan_undo (plan);
        s_message (plan->why_not_cgroups, sizeof plan->why_not_cgroups, "%s; %s", why2, why1);
        plan->kind = LOCAL_LIMITS_RLIMIT;
        return 0;
    }
    if (r < 0) {
        s_plan_undo (plan);
        return -1;
    }
    return 0;
}

bool
local_oom_killed (const char *cgroup_name)
{
    if (!s_cgroup_name_ok (cgroup_name))
        return false;
    char dir[PATH_MAX], text[1024];
    long long count = 0;
    const char *root = s_cgroup2_root ();
    if (root) {
        s_format_path (dir, sizeof dir, "%s/%s/%s", root, s_cgroup_parent, cgroup_name);
        if (s_read_file (dir, "memory.events", text, sizeof text) > 0 && s_keyed_value (text, "oom_kill", &count)
            && count > 0)
            return true;
    }
    s_format_path (dir, sizeof dir, "%s/memory/%s/%s", LOCAL_CGROUP_FS, s_cgroup_parent, cgroup_name);
    if (s_read_file (dir, "memory.oom_control", text, sizeof text) <= 0)
        return false;
    if (s_keyed_value (text, "oom_kill", &count))
        return count > 0;
    /* Kernels before 4.13 count no kills: the limit having been hit is the best sign. */
    return s_read_file (dir, "memory.failcnt", text, sizeof text) > 0 && strtoll (text, NULL, 10) > 0;
}

void
local_cleanup (const char *cgroup_name)
{
    /* The name goes into paths that are rmdir'ed: refuse anything but a plain name. */
    if (!s_cgroup_name_ok (cgroup_name))
        return;
    char dir[PATH_MAX];
    const char *root = s_cgroup2_root ();
    if (root) {
        s_format_path (dir, sizeof dir, "%s/%s/%s", root, s_cgroup_parent, cgroup_name);
        s_remove_group (dir);
    }
    for (int i = 0; s_cgroup1_controllers[i]; i++) {
        s_format_path (dir, sizeof dir, "%s/%s", LOCAL_CGROUP_FS, s_cgroup1_controllers[i]);
        if (!s_exists (dir, "cgroup.procs"))
            continue;   /* not a cgroup mount: nothing of ours can be there */
        s_format_path (dir, sizeof dir, "%s/%s/%s/%s", LOCAL_CGROUP_FS, s_cgroup1_controllers[i], s_cgroup_parent,
                  cgroup_name);
        s_remove_group (dir);
    }
}

/* --- what the child gets --------------------------------------------------------------- */

/* The value of `name` in a "K=V" list, or NULL. */
static const char *
s_env_value (const char *const *env, const char *name)
{
    size_t len = strlen (name);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp (env[i], name, len) == 0 && env[i][len] == '=')
            return env[i] + len + 1;
    return NULL;
}

/* The caller's environment plus the inherited few it does not set. Free with orr_strv_free. */
static char **
s_build_env (const char *const *env, size_t count)
{
    size_t n = 0, inherited = sizeof s_inherited_env / sizeof *s_inherited_env;
    char **out = orr_zalloc ((count + inherited + 1) * sizeof *out);
    for (size_t i = 0; i < count; i++)
        out[n++] = orr_strdup (env[i]);
    for (size_t i = 0; s_inherited_env[i]; i++) {
        const char *value = getenv (s_inherited_env[i]);
        if (value && !s_env_value (env, s_inherited_env[i]))
            out[n++] = orr_sprintf ("%s=%s", s_inherited_env[i], value);
    }
    return out;
}

/* The paths exec tries for argv0, in order: argv0 itself when it has a '/', else each
 * PATH directory (an empty one is the working directory, as for execvp). */
static char **
s_exec_candidates (const char *argv0, const char *path)
{
    if (strchr (argv0, '/')) {
        char **out = orr_zalloc (2 * sizeof *out);
        out[0] = orr_strdup (argv0);
        return out;
    }
    if (!path)
        path = LOCAL_DEFAULT_PATH;
    size_t n = 1;
    for (const char *p = path; *p; p++)
        n += *p == ':';
    char **out = orr_zalloc ((n + 1) * sizeof *out);
    const char *p = path;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr (p, ':');
        int len = (int) (colon ? colon - p : (ptrdiff_t) strlen (p));
        out[i] = len ? orr_sprintf ("%.*s/%s", len, p, argv0) : orr_sprintf ("./%s", argv0);
        p += len + 1;
    }
    return out;
}

/* Moves fd to a number above stdin/out/err, close-on-exec, so the child's dup2 onto 0-2
 * cannot overwrite it. The new fd, or -1. */
static int
s_fd_above_stdio (int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl (fd, F_DUPFD_CLOEXEC, 3);
    close (fd);
    return moved;
}

/* Everything the child uses, made before fork (and released by the parent after). */
typedef struct {
    char *const *argv;
    char **envp;
    char **candidates;
    const char *cwd;
    int procs_fds[LOCAL_GROUPS_MAX];   /* cgroup.procs of each group to join */
    int nprocs;
    int stdin_fd, log_fd;
    int report_fd, report_read_fd;     /* the pipe's ends */
    rlim_t address_space;              /* RLIMIT_AS; 0 = leave */
    int close_up_to;                   /* for the close loop when close_range is missing */
} child_plan_t;

/* Why a child stopped before exec, sent over the report pipe. */
typedef enum { CHILD_SETSID = 1, CHILD_JOIN_CGROUP, CHILD_RLIMIT, CHILD_STDIO, CHILD_CHDIR } child_stage_t;

typedef struct {
    int stage;
    int errnum;
    int index;   /* which group, for CHILD_JOIN_CGROUP */
} child_report_t;

/* --- the child: async-signal-safe calls only ------------------------------------------- */

static void __attribute__ ((noreturn))
s_child_fail (const child_plan_t *c, child_stage_t stage, int errnum, int index)
{
    child_report_t report = { (int) stage, errnum, index };
    ssize_t ignored = write (c->report_fd, &report, sizeof report);
    (void) ignored;
    _exit (127);
}

/* Appends s to buf (size bytes, NUL-terminated), truncating. */
static void
s_append (char *buf, size_t size, const char *s)
{
    size_t n = 0;
    while (n < size - 1 && buf[n])
        n++;
    while (n < size - 1 && *s)
        buf[n++] = *s++;
    buf[n] = '\0';
}

static void
s_format_int (long v, char *buf, size_t size)
{
    char digits[24];
    int n = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long) v : (unsigned long) v;
    do
        digits[n++] = (char) ('0' + u % 10);
    while ((u /= 10) && n < (int) sizeof digits);
    size_t i = 0;
    if (v < 0 && i < size - 1)
        buf[i++] = '-';
    while (n > 0 && i < size - 1)
        buf[i++] = digits[--n];
    buf[i] = '\0';
}

static void
s_close_other_fds (const child_plan_t *c)
{
    /* Keep only 0-2 and the report pipe (close-on-exec: it closes when exec succeeds). */
    int keep = c->report_fd;
    if ((keep == 3 || close_range (3, (unsigned) keep - 1, 0) == 0) && close_range ((unsigned) keep + 1, ~0U, 0) == 0)
        return;
    for (int fd = 3; fd < c->close_up_to; fd++)
        if (fd != keep)
            close (fd);
}

static void __attribute__ ((noreturn))
s_child (const child_plan_t *c)
{
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset (&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction (sig, &dfl, NULL);   /* SIGKILL, SIGSTOP and libc's own refuse: fine */
    if (setsid () < 0)
        s_child_fail (c, CHILD_SETSID, errno, 0);

    /* Into the groups first, so no instruction of the server runs unlimited. */
    char pid_text[24];
    s_format_int ((long) getpid (), pid_text, sizeof pid_text);
    for (int i = 0; i < c->nprocs; i++)
        if (write (c->procs_fds[i], pid_text, strlen (pid_text)) < 0)
            s_child_fail (c, CHILD_JOIN_CGROUP, errno, i);
    if (c->address_space) {
        struct rlimit limit = { c->address_space, c->address_space };
        if (setrlimit (RLIMIT_AS, &limit) != 0)
            s_child_fail (c, CHILD_RLIMIT, errno, 0);
    }
    if (dup2 (c->stdin_fd, 0) < 0 || dup2 (c->log_fd, 1) < 0 || dup2 (c->log_fd, 2) < 0)
        s_child_fail (c, CHILD_STDIO, errno, 0);
    if (chdir (c->cwd) != 0)
        s_child_fail (c, CHILD_CHDIR, errno, 0);
    s_close_other_fds (c);
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);

    /* execvp's search, on the server's PATH: a missing or inaccessible candidate moves on
     * (EACCES is kept as the answer if nothing runs), any other failure stops. */
    int failure = ENOENT;
    bool saw_eacces = false;
    for (int i = 0; c->candidates[i]; i++) {
        execve (c->candidates[i], c->argv, c->envp);
        failure = errno;
        if (failure == EACCES)
            saw_eacces = true;
        else if (failure != ENOENT && failure != ENOTDIR && failure != ESTALE && failure != ENODEV
                 && failure != ETIMEDOUT)
            break;
    }
    if (saw_eacces && (failure == ENOENT || failure == ENOTDIR))
        failure = EACCES;
    /* strerrordesc_np is a table lookup (no locale, no allocation), unlike strerror. */
    const char *desc = strerrordesc_np (failure);
    char line[1024] = "orrery: cannot run ";
    s_append (line, sizeof line, c->argv[0]);
    s_append (line, sizeof line, ": ");
    s_append (line, sizeof line, desc ? desc : "unknown error");
    s_append (line, sizeof line, "\n");
    ssize_t ignored = write (2, line, strlen (line));
    (void) ignored;
    _exit (127);
}

/* --- starting -------------------------------------------------------------------------- */

static int
s_count (const char *const *v, size_t max, size_t *count)
{
    size_t n = 0;
    while (v && v[n])
        if (++n > max)
            return -1;
    *count = n;
    return 0;
}

/* Refuses what cannot be started, with a reason. */
static int
s_spec_ok (const local_start_t *spec, size_t *argc, size_t *envc, char *err, size_t errlen)
{
    if (!spec) {
        s_message (err, errlen, "no start request");
        return -1;
    }
    if (!spec->argv || !spec->argv[0] || !spec->argv[0][0]) {
        s_message (err, errlen, "no program to run: argv is empty");
        return -1;
    }
    if (strlen (spec->argv[0]) >= PATH_MAX) {
        s_message (err, errlen, "program name is longer than %d bytes", PATH_MAX - 1);
        return -1;
    }
    if (s_count (spec->argv, LOCAL_ARGV_MAX, argc) != 0 || s_count (spec->env, LOCAL_ENV_MAX, envc) != 0) {
        s_message (err, errlen, "more than %d arguments or environment entries", LOCAL_ARGV_MAX);
        return -1;
    }
    for (size_t i = 0; i < *envc; i++) {
        const char *eq = strchr (spec->env[i], '=');
        if (!eq || eq == spec->env[i]) {
            s_message (err, errlen, "environment entry '%.64s' is not NAME=value", spec->env[i]);
            return -1;
        }
    }
    if (spec->mem_limit_bytes < 0 || spec->cpu_limit_millis < 0 || spec->pids_limit < 0) {
        s_message (err, errlen, "negative limit (memory %lld, cpu %lld, pids %lld)", (long long) spec->mem_limit_bytes,
                   (long long) spec->cpu_limit_millis, (long long) spec->pids_limit);
        return -1;
    }
    if (spec->cpu_limit_millis > INT64_MAX / LOCAL_CFS_PERIOD_US) {
        s_message (err, errlen, "cpu limit %lld millis is too large", (long long) spec->cpu_limit_millis);
        return -1;
    }
    bool limited = spec->mem_limit_bytes || spec->cpu_limit_millis || spec->pids_limit;
    if (limited && !s_cgroup_name_ok (spec->cgroup_name)) {
        s_message (err, errlen, "cgroup name '%s' is not a plain name (1-%d printable bytes, no '/')",
                   spec->cgroup_name ? spec->cgroup_name : "(none)", LOCAL_CGROUP_NAME_MAX - 1);
        return -1;
    }
    return 0;
}

/* The server's log, appended to, its directory made first. The fd, or -1 with err. */
static int
s_open_log (const char *log_path, char *err, size_t errlen)
{
    const char *path = log_path ? log_path : "/dev/null";
    char dir[PATH_MAX];
    if (s_format_path (dir, sizeof dir, "%s", path) != 0) {
        s_message (err, errlen, "the log path is longer than %d bytes", PATH_MAX - 1);
        return -1;
    }
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (s_mkdirs (dir, 0700) != 0) {
            s_message (err, errlen, "cannot make the log directory %s: %s", dir, strerror (errno));
            return -1;
        }
    }
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        s_message (err, errlen, "cannot open the log %s: %s", path, strerror (errno));
    return s_fd_above_stdio (fd);
}

/* Says in the server's log which limits are not enforced, so its user can tell. */
static void
s_log_rlimit_fallback (int log_fd, const local_start_t *spec, const limits_plan_t *plan)
{
    char *what = orr_sprintf ("no usable cgroups (%s):%s%s", plan->why_not_cgroups,
                              spec->mem_limit_bytes ? " memory is limited by RLIMIT_AS (address space);" : "",
                              spec->cpu_limit_millis || spec->pids_limit ? " cpu and pids limits are not enforced" : "");
    char *line = orr_sprintf ("orrery: %s\n", what);
    ssize_t ignored = write (log_fd, line, strlen (line));
    (void) ignored;
    orr_warn ("server %s: %s", spec->cgroup_name, what);
    free (line);
    free (what);
}

static void
s_describe_child_failure (const child_report_t *report, const limits_plan_t *plan, const char *cwd, char *err,
                          size_t errlen)
{
    const char *why = strerror (report->errnum);
    switch (report->stage) {
    case CHILD_SETSID:
        s_message (err, errlen, "cannot start a session: %s", why);
        break;
    case CHILD_JOIN_CGROUP:
        s_message (err, errlen, "cannot join cgroup %s: %s",
                   report->index >= 0 && report->index < plan->ndirs ? plan->dirs[report->index] : "?", why);
        break;
    case CHILD_RLIMIT:
        s_message (err, errlen, "cannot set RLIMIT_AS: %s", why);
        break;
    case CHILD_STDIO:
        s_message (err, errlen, "cannot set up stdin/stdout/stderr: %s", why);
        break;
    case CHILD_CHDIR:
        s_message (err, errlen, "cannot change to %s: %s", cwd, why);
        break;
    default:
        s_message (err, errlen, "the process failed before exec");
    }
}

/* Waits for the child's report: 0 when it exec'ed (the pipe closed empty), -1 when it
 * stopped before (report filled). */
static int
s_wait_exec (int report_fd, child_report_t *report)
{
    size_t got = 0;
    while (got < sizeof *report) {
        ssize_t r = read (report_fd, (char *) report + got, sizeof *report - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    if (got == 0)
        return 0;
    if (got < sizeof *report)
        *report = (child_report_t) { 0, 0, 0 };
    return -1;
}

/* Makes what the child needs: environment, exec candidates, log, stdin, the groups'
 * cgroup.procs and the report pipe. 0, or -1 with err (release with s_child_release). */
static int
s_child_prepare (const local_start_t *spec, size_t envc, const limits_plan_t *plan, child_plan_t *child, char *err,
                 size_t errlen)
{
    child->envp = s_build_env (spec->env, envc);
    child->candidates = s_exec_candidates (spec->argv[0], s_env_value ((const char *const *) child->envp, "PATH"));
    child->argv = (char *const *) spec->argv;   /* execve's type; it does not write them */
    long open_max = sysconf (_SC_OPEN_MAX);
    child->close_up_to = open_max > 0 && open_max < LOCAL_CLOSE_FDS_MAX ? (int) open_max : LOCAL_CLOSE_FDS_MAX;
    if ((child->log_fd = s_open_log (spec->log_path, err, errlen)) < 0)
        return -1;
    if ((child->stdin_fd = s_fd_above_stdio (open ("/dev/null", O_RDONLY | O_CLOEXEC))) < 0) {
        s_message (err, errlen, "cannot open /dev/null: %s", strerror (errno));
        return -1;
    }
    if (plan->kind == LOCAL_LIMITS_RLIMIT) {
        s_log_rlimit_fallback (child->log_fd, spec, plan);
        child->address_space = (rlim_t) spec->mem_limit_bytes;
    }
    for (int i = 0; i < plan->ndirs; i++) {
        char *path = orr_sprintf ("%s/cgroup.procs", plan->dirs[i]);
        child->procs_fds[i] = open (path, O_WRONLY | O_CLOEXEC);
        if (child->procs_fds[i] < 0)
            s_message (err, errlen, "cannot open %s: %s", path, strerror (errno));
        free (path);
        if (child->procs_fds[i] < 0)
            return -1;
        child->nprocs = i + 1;
    }
    int pipe_fds[2];
    if (pipe2 (pipe_fds, O_CLOEXEC) != 0) {
        s_message (err, errlen, "cannot make a pipe: %s", strerror (errno));
        return -1;
    }
    child->report_read_fd = pipe_fds[0];
    if ((child->report_fd = s_fd_above_stdio (pipe_fds[1])) < 0) {
        s_message (err, errlen, "cannot make a pipe: %s", strerror (errno));
        return -1;
    }
    return 0;
}

static void
s_close_fd (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

static void
s_child_release (child_plan_t *child)
{
    for (int i = 0; i < LOCAL_GROUPS_MAX; i++)
        s_close_fd (&child->procs_fds[i]);
    s_close_fd (&child->stdin_fd);
    s_close_fd (&child->log_fd);
    s_close_fd (&child->report_fd);
    s_close_fd (&child->report_read_fd);
    orr_strv_free (&child->candidates);
    orr_strv_free (&child->envp);
}

/* Forks the child and waits until it has exec'ed. The pid, or -1 with err (a child that
 * failed before exec is reaped). */
static pid_t
s_fork_child (child_plan_t *child, const limits_plan_t *plan, char *err, size_t errlen)
{
    sigset_t all, saved;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &saved);
    pid_t pid = fork ();
    if (pid == 0)
        s_child (child);
    int fork_errno = errno;
    pthread_sigmask (SIG_SETMASK, &saved, NULL);
    s_close_fd (&child->report_fd);   /* else our own write end would keep the pipe open */
    if (pid < 0) {
        s_message (err, errlen, "fork: %s", strerror (fork_errno));
        return -1;
    }
    child_report_t report;
    if (s_wait_exec (child->report_read_fd, &report) != 0) {
        s_describe_child_failure (&report, plan, child->cwd, err, errlen);
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -1;
    }
    return pid;
}

int
local_start (const local_start_t *spec, local_proc_t *out, char *err, size_t errlen)
{
    size_t argc = 0, envc = 0;
    if (s_spec_ok (spec, &argc, &envc, err, errlen) != 0)
        return -1;
    if (!out) {
        s_message (err, errlen, "no place for the result");
        return -1;
    }
    memset (out, 0, sizeof *out);
    const char *cwd = spec->cwd ? spec->cwd : "/";
    if (s_mkdirs (cwd, 0700) != 0) {
        s_message (err, errlen, "cannot make the working directory %s: %s", cwd, strerror (errno));
        return -1;
    }
    int rc = -1;
    limits_plan_t *plan = orr_zalloc (sizeof *plan);
    child_plan_t child = { .cwd = cwd, .stdin_fd = -1, .log_fd = -1, .report_fd = -1, .report_read_fd = -1 };
    for (int i = 0; i < LOCAL_GROUPS_MAX; i++)
        child.procs_fds[i] = -1;
    if (s_plan_limits (spec, plan, err, errlen) != 0 || s_child_prepare (spec, envc, plan, &child, err, errlen) != 0)
        goto done;
    pid_t pid = s_fork_child (&child, plan, err, errlen);
    if (pid < 0)
        goto done;
    /* Readable at once (the child is not reaped); the wait covers a slow /proc. */
    uint64_t start_time = 0;
    for (int64_t deadline = orr_mono_ms () + LOCAL_START_TIME_WAIT_MS;
         (start_time = local_start_time_of (pid)) == 0 && orr_mono_ms () < deadline;)
        orr_sleep_ms (LOCAL_POLL_MS);
    if (start_time == 0) {
        s_message (err, errlen, "process %d vanished before its start time could be read", (int) pid);
        goto done;
    }
    *out = (local_proc_t) { .pid = pid, .start_time = start_time, .limits = plan->kind };
    rc = 0;
done:
    if (rc != 0)
        s_plan_undo (plan);
    s_child_release (&child);
    free (plan);
    return rc;
}

/* --- for users ------------------------------------------------------------------------- */

void
local_describe_exit (int status, bool oom, char *out, size_t outlen)
{
    const char *because = oom ? ": memory limit reached" : "";
    if (status == -1)
        s_message (out, outlen, "stopped (exit status unknown)%s", because);
    else if (WIFEXITED (status))
        s_message (out, outlen, "exited with status %d%s", WEXITSTATUS (status), because);
    else if (WIFSIGNALED (status)) {
        const char *name = sigabbrev_np (WTERMSIG (status));
        if (name)
            s_message (out, outlen, "killed by signal %d (SIG%s)%s", WTERMSIG (status), name, because);
        else
            s_message (out, outlen, "killed by signal %d%s", WTERMSIG (status), because);
    }
    else
        s_message (out, outlen, "ended with wait status 0x%x%s", (unsigned) status, because);
}

char *
local_log_tail (const char *log_path, size_t max)
{
    if (!log_path)
        return NULL;
    int fd = open (log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        close (fd);
        return NULL;
    }
    if (max > LOCAL_LOG_TAIL_MAX)
        max = LOCAL_LOG_TAIL_MAX;
    size_t size = (size_t) st.st_size;
    /* One byte before the tail too: when it is '\n' the tail already starts a line. */
    size_t from = size > max ? size - max - 1 : 0;
    size_t want = size - from;
    char *buf = orr_zalloc (want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread (fd, buf + got, want - got, (off_t) (from + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t) r;
    }
    close (fd);
    buf[got] = '\0';
    size_t start = 0;
    if (size > max) {
        const char *nl = memchr (buf, '\n', got);
        /* A last line longer than max is shown cut rather than not at all. */
        start = nl && (size_t) (nl - buf) + 1 < got ? (size_t) (nl - buf) + 1 : (got > max ? got - max : 0);
    }
    memmove (buf, buf + start, got - start + 1);
    return buf;
}
