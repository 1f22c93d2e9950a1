/*  The spawner's node agent (services/spawner/spawner_node_agent.c).
 *
 *  Its pure parsers against hand-made text with hand-computed answers: labels and taints
 *  (and every way to get them wrong), /proc/meminfo (with and without MemAvailable),
 *  /proc/stat and the CPU delta, cgroup v2 cpu.max / memory.max ("max" included), v1
 *  cfs quota / memory.limit_in_bytes (its "unlimited" number included), finding the
 *  process's cgroup from mountinfo and /proc/self/cgroup; the cgroup readers over fake
 *  trees standing for "/" (v2 with a limit on a parent, hybrid v1, a container's v1 mount,
 *  absent files); GPU devices. Then the built orrery-spawner: --help lists the settings,
 *  a bad NODE_* value makes it exit 2 with the reason, and on a real broker it publishes
 *  its first node.heartbeat at once (the interval is 60 s) with the detected capacity,
 *  and every NODE_HEARTBEAT_MS afterwards.
 */
#include "bus_fixture.h"
#include "orr_events.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"
#include "spawner_node_agent.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int s_checks;

#define OK(cond, ...)                                                                      \
    do {                                                                                   \
        CHECK (cond, __VA_ARGS__);                                                         \
        s_checks++;                                                                        \
    } while (0)

/* --- labels and taints ---------------------------------------------------------------- */

static void
s_bad_labels (const char *text, const char *why_contains)
{
    node_labels_t labels;
    char err[512] = "";
    OK (node_agent_parse_labels (text, &labels, err, sizeof err) == -1, "labels '%s' accepted", text);
    OK (labels.count == 0 && labels.items == NULL, "labels '%s': output not empty after failure", text);
    OK (strstr (err, why_contains) != NULL, "labels '%s': error '%s' does not say '%s'", text, err, why_contains);
}

static void
s_test_labels (void)
{
    node_labels_t labels;
    char err[512] = "";
    OK (node_agent_parse_labels ("zone=a,disk=ssd", &labels, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT (labels.count, 2);
    CHECK_EQ_STR (labels.items[0].key, "zone");
    CHECK_EQ_STR (labels.items[0].value, "a");
    CHECK_EQ_STR (labels.items[1].key, "disk");
    CHECK_EQ_STR (labels.items[1].value, "ssd");
    node_labels_clear (&labels);

    /* spaces around items, keys and values; an empty value; a key with a prefix */
    OK (node_agent_parse_labels ("  zone = a , example.com/gpu=nvidia-a100,spare= ", &labels, err, sizeof err) == 0,
        "%s", err);
    CHECK_EQ_INT (labels.count, 3);
    CHECK_EQ_STR (labels.items[0].key, "zone");
    CHECK_EQ_STR (labels.items[0].value, "a");
    CHECK_EQ_STR (labels.items[1].key, "example.com/gpu");
    CHECK_EQ_STR (labels.items[1].value, "nvidia-a100");
    CHECK_EQ_STR (labels.items[2].key, "spare");
    CHECK_EQ_STR (labels.items[2].value, "");
    node_labels_clear (&labels);

    /* nothing is no labels */
    OK (node_agent_parse_labels (NULL, &labels, err, sizeof err) == 0 && labels.count == 0);
    node_labels_clear (&labels);
    OK (node_agent_parse_labels ("   ", &labels, err, sizeof err) == 0 && labels.count == 0);
    node_labels_clear (&labels);

    s_bad_labels ("zone", "expected key=value");
    s_bad_labels ("=a", "label key is empty");
    s_bad_labels ("zone=a,,disk=ssd", "empty label");
    s_bad_labels ("zone=a,", "empty label");
    s_bad_labels ("zone=a,zone=b", "given twice");
    s_bad_labels ("my zone=a", "only letters, digits");
    s_bad_labels ("zone=a/b", "label value 'a/b'");
    s_bad_labels ("zone=a=b", "label value 'a=b'");
    s_bad_labels ("zone=a;rm", "label value");
    char *many = orr_zalloc (65 * 8 + 1);
    for (int i = 0; i < 65; i++)
        sprintf (many + strlen (many), "%sk%d=v", i ? "," : "", i);
    s_bad_labels (many, "at most 64");
    free (many);
    char long_key[300];
    memset (long_key, 'k', 254);
    strcpy (long_key + 254, "=v");
    s_bad_labels (long_key, "longer than 253");
}

static void
s_bad_taints (const char *text, const char *why_contains)
{
    node_taints_t taints;
    char err[512] = "";
    OK (node_agent_parse_taints (text, &taints, err, sizeof err) == -1, "taints '%s' accepted", text);
    OK (taints.count == 0 && taints.items == NULL, "taints '%s': output not empty after failure", text);
    OK (strstr (err, why_contains) != NULL, "taints '%s': error '%s' does not say '%s'", text, err, why_contains);
}

static void
s_test_taints (void)
{
    node_taints_t taints;
    char err[512] = "";
    OK (node_agent_parse_taints ("gpu=yes:NoSchedule,spot=:PreferNoSchedule", &taints, err, sizeof err) == 0, "%s",
        err);
    CHECK_EQ_INT (taints.count, 2);
    CHECK_EQ_STR (taints.items[0].key, "gpu");
    CHECK_EQ_STR (taints.items[0].value, "yes");
    CHECK_EQ_STR (taints.items[0].effect, "NoSchedule");
    CHECK_EQ_STR (taints.items[1].key, "spot");
    CHECK_EQ_STR (taints.items[1].value, "");
    CHECK_EQ_STR (taints.items[1].effect, "PreferNoSchedule");
    node_taints_clear (&taints);

    /* kubectl's short form without '=', spaces, the same key with two effects */
    OK (node_agent_parse_taints (" dedicated:NoSchedule , gpu=yes:NoSchedule,gpu=yes:PreferNoSchedule", &taints, err,
                                 sizeof err)
            == 0,
        "%s", err);
    CHECK_EQ_INT (taints.count, 3);
    CHECK_EQ_STR (taints.items[0].key, "dedicated");
    CHECK_EQ_STR (taints.items[0].value, "");
    CHECK_EQ_STR (taints.items[0].effect, "NoSchedule");
    CHECK_EQ_STR (taints.items[2].effect, "PreferNoSchedule");
    node_taints_clear (&taints);

    OK (node_agent_parse_taints ("", &taints, err, sizeof err) == 0 && taints.count == 0);
    node_taints_clear (&taints);

    s_bad_taints ("gpu=yes", "expected key=value:NoSchedule");
    s_bad_taints ("gpu=yes:NoExecute", "must be NoSchedule or PreferNoSchedule, not 'NoExecute'");
    s_bad_taints ("gpu=yes:noschedule", "not 'noschedule'");
    s_bad_taints ("gpu=yes:", "not ''");
    s_bad_taints (":NoSchedule", "taint key is empty");
    s_bad_taints ("=yes:NoSchedule", "taint key is empty");
    s_bad_taints ("gpu=a:b:NoSchedule", "taint value 'a:b'");
    s_bad_taints ("gpu=yes:NoSchedule,,x=:NoSchedule", "empty taint");
    s_bad_taints ("gpu=yes:NoSchedule,gpu=no:NoSchedule", "given twice");
    s_bad_taints ("g pu=yes:NoSchedule", "only letters, digits");
    /* 64 taints are the scheduler's limit: 64 pass, 65 do not */
    char *many = orr_zalloc (65 * 20 + 1);
    for (int i = 0; i < 64; i++)
        sprintf (many + strlen (many), "%sk%d=v:NoSchedule", i ? "," : "", i);
    OK (node_agent_parse_taints (many, &taints, err, sizeof err) == 0 && taints.count == 64, "%s", err);
    node_taints_clear (&taints);
    strcat (many, ",k64=v:NoSchedule");
    s_bad_taints (many, "at most 64");
    free (many);
}

/* --- /proc --------------------------------------------------------------------------- */

static void
s_test_meminfo (void)
{
    node_meminfo_t m;
    const char *modern = "MemTotal:       16384000 kB\n"
                         "MemFree:         1024000 kB\n"
                         "MemAvailable:    8192000 kB\n"
                         "Buffers:          512000 kB\n"
                         "Cached:          2048000 kB\n"
                         "SwapCached:            0 kB\n"
                         "HugePages_Total:       0\n"
                         "Hugepagesize:       2048 kB\n";
    OK (node_agent_parse_meminfo (modern, &m) == 0);
    CHECK_EQ_INT (m.total_bytes, INT64_C (16777216000));      /* 16384000 × 1024 */
    CHECK_EQ_INT (m.available_bytes, INT64_C (8388608000));   /* 8192000 × 1024 */

    /* before Linux 3.14: MemFree + Buffers + Cached = 3584000 kB */
    const char *old = "MemTotal:       16384000 kB\n"
                      "MemFree:         1024000 kB\n"
                      "Buffers:          512000 kB\n"
                      "Cached:          2048000 kB\n";
    OK (node_agent_parse_meminfo (old, &m) == 0);
    CHECK_EQ_INT (m.available_bytes, INT64_C (3670016000));

    /* no trailing newline; the last line still counts */
    OK (node_agent_parse_meminfo ("MemTotal: 4 kB\nMemAvailable: 1 kB", &m) == 0);
    CHECK_EQ_INT (m.total_bytes, 4096);
    CHECK_EQ_INT (m.available_bytes, 1024);
    /* available above total (never seen, but the difference must not go negative) */
    OK (node_agent_parse_meminfo ("MemTotal: 4 kB\nMemAvailable: 9 kB\n", &m) == 0);
    CHECK_EQ_INT (m.available_bytes, 4096);

    OK (node_agent_parse_meminfo ("MemFree: 1 kB\nMemAvailable: 1 kB\n", &m) == -1, "no MemTotal accepted");
    OK (node_agent_parse_meminfo ("MemTotal: 4 kB\n", &m) == -1, "neither MemAvailable nor MemFree accepted");
    OK (node_agent_parse_meminfo ("MemTotal: lots kB\nMemAvailable: 1 kB\n", &m) == -1);
    OK (node_agent_parse_meminfo ("MemTotal: 4 MB\nMemAvailable: 1 kB\n", &m) == -1, "unknown unit accepted");
    OK (node_agent_parse_meminfo ("MemTotal: 99999999999999999999 kB\nMemAvailable: 1 kB\n", &m) == -1);
    OK (node_agent_parse_meminfo ("MemTotal: 0 kB\nMemAvailable: 0 kB\n", &m) == -1, "zero memory accepted");
    OK (node_agent_parse_meminfo ("", &m) == -1);
    OK (node_agent_parse_meminfo (NULL, &m) == -1);
}

static void
s_test_proc_stat (void)
{
    node_cpu_times_t a, b;
    /* busy = user + nice + system + irq + softirq + steal; idle + iowait are not busy */
    OK (node_agent_parse_proc_stat ("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1 2\n", &a)
        == 0);
    CHECK_EQ_INT (a.busy, 150);
    CHECK_EQ_INT (a.total, 1000);
    /* guest (30) is already counted in user: 100+10+50+5+5+0 = 170 busy, +800+40 = 1010 */
    OK (node_agent_parse_proc_stat ("cpu 100 10 50 800 40 5 5 0 30 0\n", &a) == 0);
    CHECK_EQ_INT (a.busy, 170);
    CHECK_EQ_INT (a.total, 1010);
    /* old kernels: only the four classic fields */
    OK (node_agent_parse_proc_stat ("cpu 1 2 3 4\n", &a) == 0);
    CHECK_EQ_INT (a.busy, 6);
    CHECK_EQ_INT (a.total, 10);
    /* the "cpu " line need not be first */
    OK (node_agent_parse_proc_stat ("cpu0 1 1 1 1\ncpu 2 2 2 2\n", &a) == 0);
    CHECK_EQ_INT (a.busy, 6);

    OK (node_agent_parse_proc_stat ("cpu 1 2 3\n", &a) == -1, "three fields accepted");
    OK (node_agent_parse_proc_stat ("cpu0 1 2 3 4\n", &a) == -1, "a per-CPU line taken for the total");
    OK (node_agent_parse_proc_stat ("cpu 1 2 x 4\n", &a) == -1);
    OK (node_agent_parse_proc_stat ("cpu 1 2 3 4x\n", &a) == -1);
    OK (node_agent_parse_proc_stat ("", &a) == -1);

    /* 300 of 1000 jiffies busy on 2000m = 600m */
    a = (node_cpu_times_t) { 150, 1000 };
    b = (node_cpu_times_t) { 450, 2000 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &b, 2000), 600);
    /* 1 of 3 busy on 1000m = 333.3 -> 333; 2 of 3 = 666.7 -> 667 */
    b = (node_cpu_times_t) { 151, 1003 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &b, 1000), 333);
    b = (node_cpu_times_t) { 152, 1003 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &b, 1000), 667);
    /* the first sample counts from boot (prev = zeros) */
    node_cpu_times_t zero = { 0, 0 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&zero, &a, 4000), 600);
    /* same sample, counters that went back, busy beyond total: never negative, never > capacity */
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &a, 2000), 0);
    CHECK_EQ_INT (node_agent_cpu_used_millis (&b, &a, 2000), 0);
    b = (node_cpu_times_t) { 100, 1100 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &b, 2000), 0);
    b = (node_cpu_times_t) { 900, 1100 };
    CHECK_EQ_INT (node_agent_cpu_used_millis (&a, &b, 2000), 2000);
    s_checks += 10;
}

/* --- cgroup values -------------------------------------------------------------------- */

static void
s_test_cgroup_values (void)
{
    int64_t v = -7;
    OK (node_agent_parse_cpu_max ("max 100000\n", &v) == 0 && v == -7, "max is a limit");
    OK (node_agent_parse_cpu_max ("max\n", &v) == 0);
    OK (node_agent_parse_cpu_max ("150000 100000\n", &v) == 1);
    CHECK_EQ_INT (v, 1500);
    OK (node_agent_parse_cpu_max ("50000 100000", &v) == 1);
    CHECK_EQ_INT (v, 500);
    OK (node_agent_parse_cpu_max ("25000 50000\n", &v) == 1);
    CHECK_EQ_INT (v, 500);
    OK (node_agent_parse_cpu_max ("200000\n", &v) == 1);   /* period left out: 100000 */
    CHECK_EQ_INT (v, 2000);
    OK (node_agent_parse_cpu_max ("33333 100000\n", &v) == 1);   /* 333.33 -> 333 */
    CHECK_EQ_INT (v, 333);
    OK (node_agent_parse_cpu_max ("1000 1000000\n", &v) == 1);   /* 1m: the floor */
    CHECK_EQ_INT (v, 1);
    OK (node_agent_parse_cpu_max ("", &v) == -1);
    OK (node_agent_parse_cpu_max ("lots 100000", &v) == -1);
    OK (node_agent_parse_cpu_max ("100000 0", &v) == -1);
    OK (node_agent_parse_cpu_max ("-5 100000", &v) == -1);
    OK (node_agent_parse_cpu_max ("0 100000", &v) == -1);
    OK (node_agent_parse_cpu_max ("max 100000 7", &v) == -1);
    OK (node_agent_parse_cpu_max ("max x", &v) == -1);

    v = -7;
    OK (node_agent_parse_cfs_quota ("-1\n", "100000\n", &v) == 0 && v == -7);
    OK (node_agent_parse_cfs_quota ("-1\n", NULL, &v) == 0, "no limit needs no period");
    OK (node_agent_parse_cfs_quota ("200000\n", "100000\n", &v) == 1);
    CHECK_EQ_INT (v, 2000);
    OK (node_agent_parse_cfs_quota ("25000\n", "100000\n", &v) == 1);
    CHECK_EQ_INT (v, 250);
    OK (node_agent_parse_cfs_quota ("25000\n", NULL, &v) == -1, "a quota without its period");
    OK (node_agent_parse_cfs_quota ("x\n", "100000\n", &v) == -1);
    OK (node_agent_parse_cfs_quota ("100000\n", "0\n", &v) == -1);
    OK (node_agent_parse_cfs_quota ("-2\n", "100000\n", &v) == -1);
    OK (node_agent_parse_cfs_quota ("", "100000\n", &v) == -1);

    v = -7;
    OK (node_agent_parse_memory_limit ("max\n", &v) == 0 && v == -7);
    OK (node_agent_parse_memory_limit ("9223372036854771712\n", &v) == 0, "v1 'unlimited' taken for a limit");
    OK (node_agent_parse_memory_limit ("536870912\n", &v) == 1);
    CHECK_EQ_INT (v, 536870912);
    OK (node_agent_parse_memory_limit ("0\n", &v) == 1 && v == 0);
    OK (node_agent_parse_memory_limit ("12abc\n", &v) == -1);
    OK (node_agent_parse_memory_limit ("-1\n", &v) == -1);
    OK (node_agent_parse_memory_limit ("", &v) == -1);
    OK (node_agent_parse_memory_limit ("99999999999999999999\n", &v) == -1);
}

/* This machine's layout (hybrid: v1 controllers, an empty v2 at /sys/fs/cgroup/unified),
 * with cpu and cpuacct mounted together as on most distributions. */
static const char *s_hybrid_mountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char *s_hybrid_cgroup = "9:name=systemd:/\n"
                                     "4:memory:/process_api/160c25d3\n"
                                     "3:cpuset:/\n"
                                     "2:cpu,cpuacct:/batch/job\n"
                                     "0::/\n";

static void
s_test_cgroup_dir (void)
{
    char mount[256], rel[256];
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, s_hybrid_cgroup, "memory", mount, sizeof mount, rel, sizeof rel)
        == 0);
    CHECK_EQ_STR (mount, "/sys/fs/cgroup/memory");
    CHECK_EQ_STR (rel, "/process_api/160c25d3");
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, s_hybrid_cgroup, "cpu", mount, sizeof mount, rel, sizeof rel) == 0);
    CHECK_EQ_STR (mount, "/sys/fs/cgroup/cpu,cpuacct");
    CHECK_EQ_STR (rel, "/batch/job");
    /* "cpu" must not match "cpuset" */
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, "3:cpuset:/x\n", "cpu", mount, sizeof mount, rel, sizeof rel) == -1);
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, s_hybrid_cgroup, NULL, mount, sizeof mount, rel, sizeof rel) == 0);
    CHECK_EQ_STR (mount, "/sys/fs/cgroup/unified");
    CHECK_EQ_STR (rel, "/");
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, s_hybrid_cgroup, "pids", mount, sizeof mount, rel, sizeof rel) == -1,
        "an unmounted controller found");

    /* pure v2 under systemd, with the optional fields mountinfo may carry */
    const char *v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 master:1 - cgroup2 cgroup2 "
                     "rw,nsdelegate,memory_recursiveprot\n";
    OK (node_agent_cgroup_dir (v2, "0::/system.slice/orrery.service\n", NULL, mount, sizeof mount, rel, sizeof rel)
        == 0);
    CHECK_EQ_STR (mount, "/sys/fs/cgroup");
    CHECK_EQ_STR (rel, "/system.slice/orrery.service");
    OK (node_agent_cgroup_dir (v2, "0::/\n", "memory", mount, sizeof mount, rel, sizeof rel) == -1, "v1 found on v2");

    /* a container's v1 mount shows its own cgroup as the mount's root */
    const char *docker = "600 590 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
    OK (node_agent_cgroup_dir (docker, "4:memory:/docker/abc\n", "memory", mount, sizeof mount, rel, sizeof rel) == 0);
    CHECK_EQ_STR (rel, "/");
    OK (node_agent_cgroup_dir (docker, "4:memory:/docker/abc/inner\n", "memory", mount, sizeof mount, rel, sizeof rel)
        == 0);
    CHECK_EQ_STR (rel, "/inner");
    /* a path outside the mount's root (another namespace): the mount point itself */
    OK (node_agent_cgroup_dir (docker, "4:memory:/docker/abcdef\n", "memory", mount, sizeof mount, rel, sizeof rel)
        == 0);
    CHECK_EQ_STR (rel, "/");
    /* an escaped space in the mount point */
    const char *spaced = "41 31 0:38 / /mnt/my\\040cgroup rw - cgroup2 none rw\n";
    OK (node_agent_cgroup_dir (spaced, "0::/a\n", NULL, mount, sizeof mount, rel, sizeof rel) == 0);
    CHECK_EQ_STR (mount, "/mnt/my cgroup");

    OK (node_agent_cgroup_dir ("", s_hybrid_cgroup, "memory", mount, sizeof mount, rel, sizeof rel) == -1);
    OK (node_agent_cgroup_dir (s_hybrid_mountinfo, "", "memory", mount, sizeof mount, rel, sizeof rel) == -1);
    OK (node_agent_cgroup_dir (NULL, NULL, NULL, mount, sizeof mount, rel, sizeof rel) == -1);
    OK (node_agent_cgroup_dir ("garbage\n\n - -\n", "x\n::\n", NULL, mount, sizeof mount, rel, sizeof rel) == -1);
}

/* --- fake trees standing for "/" ------------------------------------------------------ */

/* Writes root/path, making its directories. */
static void
s_put (const char *root, const char *path, const char *text)
{
    char *full = orr_sprintf ("%s/%s", root, path);
    for (char *p = full + strlen (root) + 1; (p = strchr (p, '/')); p++) {
        *p = '\0';
        CHECK (mkdir (full, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", full, strerror (errno));
        *p = '/';
    }
    FILE *f = fopen (full, "w");
    CHECK (f, "cannot write %s", full);
    fputs (text, f);
    fclose (f);
    free (full);
}

static char *
s_tree (const char *base, const char *name)
{
    char *root = orr_sprintf ("%s/%s", base, name);
    CHECK (mkdir (root, 0755) == 0);
    return root;
}

static void
s_test_cgroup_trees (const char *base)
{
    /* v2 under a systemd slice: the slice's limits bind the service below it */
    char *v2 = s_tree (base, "v2");
    s_put (v2, "proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n");
    s_put (v2, "proc/self/cgroup", "0::/system.slice/orrery.service\n");
    s_put (v2, "sys/fs/cgroup/system.slice/orrery.service/cpu.max", "max 100000\n");
    s_put (v2, "sys/fs/cgroup/system.slice/cpu.max", "150000 100000\n");
    s_put (v2, "sys/fs/cgroup/system.slice/orrery.service/memory.max", "2147483648\n");
    s_put (v2, "sys/fs/cgroup/system.slice/memory.max", "max\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (v2), 1500);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (v2), INT64_C (2147483648));
    /* the smaller of two levels wins, whichever is deeper */
    s_put (v2, "sys/fs/cgroup/system.slice/orrery.service/cpu.max", "50000 100000\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (v2), 500);

    /* v2 with "max" everywhere: no limit, and a stale v1 mount is not consulted */
    char *v2max = s_tree (base, "v2max");
    s_put (v2max, "proc/self/mountinfo",
           "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
           "35 31 0:32 / /old/memory rw - cgroup cgroup rw,memory\n");
    s_put (v2max, "proc/self/cgroup", "0::/user.slice\n4:memory:/\n");
    s_put (v2max, "sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
    s_put (v2max, "sys/fs/cgroup/user.slice/memory.max", "max\n");
    s_put (v2max, "old/memory/memory.limit_in_bytes", "1048576\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (v2max), -1);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (v2max), -1);

    /* hybrid, as on this machine: nothing in v2, so v1 decides */
    char *hybrid = s_tree (base, "hybrid");
    s_put (hybrid, "proc/self/mountinfo", s_hybrid_mountinfo);
    s_put (hybrid, "proc/self/cgroup", s_hybrid_cgroup);
    s_put (hybrid, "sys/fs/cgroup/unified/cgroup.controllers", "");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_quota_us", "-1\n");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/batch/cpu.cfs_period_us", "100000\n");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/batch/job/cpu.cfs_quota_us", "50000\n");
    s_put (hybrid, "sys/fs/cgroup/cpu,cpuacct/batch/job/cpu.cfs_period_us", "100000\n");
    s_put (hybrid, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    s_put (hybrid, "sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
    s_put (hybrid, "sys/fs/cgroup/memory/process_api/160c25d3/memory.limit_in_bytes", "1073741824\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (hybrid), 500);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (hybrid), INT64_C (1073741824));
    /* v1's "unlimited" at every level is no limit */
    s_put (hybrid, "sys/fs/cgroup/memory/process_api/160c25d3/memory.limit_in_bytes", "9223372036854771712\n");
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (hybrid), -1);

    /* a container's v1 mounts show its own cgroup */
    char *docker = s_tree (base, "docker");
    s_put (docker, "proc/self/mountinfo",
           "600 590 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
           "601 590 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n");
    s_put (docker, "proc/self/cgroup", "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n");
    s_put (docker, "sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n");
    s_put (docker, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n");
    s_put (docker, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (docker), 2000);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (docker), 536870912);

    /* absent files: a quota without its period, limit files missing, nothing at all */
    char *partial = s_tree (base, "partial");
    s_put (partial, "proc/self/mountinfo", s_hybrid_mountinfo);
    s_put (partial, "proc/self/cgroup", s_hybrid_cgroup);
    s_put (partial, "sys/fs/cgroup/cpu,cpuacct/batch/job/cpu.cfs_quota_us", "50000\n");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (partial), -1);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (partial), -1);
    /* a malformed file at one level is ignored, a good one above still counts */
    s_put (partial, "sys/fs/cgroup/memory/process_api/160c25d3/memory.limit_in_bytes", "garbage\n");
    s_put (partial, "sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "268435456\n");
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (partial), 268435456);

    char *empty = s_tree (base, "empty");
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (empty), -1);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (empty), -1);
    char *missing = orr_sprintf ("%s/does-not-exist", base);
    CHECK_EQ_INT (node_agent_cgroup_cpu_limit (missing), -1);
    CHECK_EQ_INT (node_agent_cgroup_memory_limit (missing), -1);
    s_checks += 16;

    /* GPUs: nvidia + digits only */
    char *dev = s_tree (base, "dev");
    const char *names[] = { "nvidia0", "nvidia1", "nvidia12", "nvidiactl", "nvidia-uvm", "nvidia-modeset", "nvidia",
                            "null", "nvidia0x" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = orr_sprintf ("dev/%s", names[i]);
        s_put (base, p, "");
        free (p);
    }
    CHECK_EQ_INT (node_agent_count_gpus (dev), 3);
    CHECK_EQ_INT (node_agent_count_gpus (empty), 0);
    CHECK_EQ_INT (node_agent_count_gpus (missing), 0);
    OK (node_agent_is_gpu_device ("nvidia7") && !node_agent_is_gpu_device ("nvidia")
        && !node_agent_is_gpu_device ("nvidiactl") && !node_agent_is_gpu_device ("card0"));

    free (v2);
    free (v2max);
    free (hybrid);
    free (docker);
    free (partial);
    free (empty);
    free (missing);
    free (dev);
}

/* --- settings ------------------------------------------------------------------------- */

static void
s_test_capacity_text (void)
{
    int64_t v = -7;
    OK (node_agent_parse_capacity (NULL, 10, &v) == 0 && v == 0);
    OK (node_agent_parse_capacity ("", 10, &v) == 0 && v == 0);
    OK (node_agent_parse_capacity (" 0 ", 10, &v) == 0 && v == 0);
    OK (node_agent_parse_capacity ("2500", 5000, &v) == 0 && v == 2500);
    OK (node_agent_parse_capacity ("-1", 5000, &v) == -1);
    OK (node_agent_parse_capacity ("2.5", 5000, &v) == -1);
    OK (node_agent_parse_capacity ("12abc", 5000, &v) == -1);
    OK (node_agent_parse_capacity ("+5", 5000, &v) == -1);
    OK (node_agent_parse_capacity ("3000000000", INT32_MAX, &v) == -1);
    OK (node_agent_parse_capacity ("99999999999999999999", INT64_MAX, &v) == -1);
}

static const orr_setting_t s_settings[] = { NODE_AGENT_SETTINGS, { NULL, NULL, NULL } };

/* NODE_* values (pairs, NULL-terminated) -> read_settings' result; err gets the reason. */
static int
s_read (char *const *pairs, node_settings_t *out, char *err, size_t errlen)
{
    orr_config_t *config = orr_config_new ("test", "", s_settings);
    for (char *const *p = pairs; p && *p; p += 2)
        orr_config_set (config, p[0], p[1]);
    int rc = node_agent_read_settings (config, out, err, errlen);
    orr_config_destroy (&config);
    return rc;
}

static void
s_bad_setting (const char *name, const char *value, const char *why_contains)
{
    char *pairs[] = { (char *) name, (char *) value, NULL };
    node_settings_t s;
    char err[768] = "";
    OK (s_read (pairs, &s, err, sizeof err) == -1, "%s=%s accepted", name, value);
    OK (strstr (err, why_contains) != NULL, "%s=%s: error '%s' does not say '%s'", name, value, err, why_contains);
}

static void
s_test_settings (void)
{
    node_settings_t s;
    char err[768] = "";
    OK (s_read (NULL, &s, err, sizeof err) == 0, "%s", err);
    char host[256] = "";
    gethostname (host, sizeof host - 1);
    CHECK_EQ_STR (s.name, host);
    CHECK_EQ_INT (s.capacity.cpu_millis, 0);
    CHECK_EQ_INT (s.capacity.memory_bytes, 0);
    CHECK_EQ_INT (s.capacity.gpus, 0);
    CHECK_EQ_INT (s.capacity.servers, 100);
    CHECK_EQ_INT (s.heartbeat_ms, 5000);
    node_settings_clear (&s);

    char *pairs[] = { "NODE_NAME", "n-1", "NODE_CPU_MILLIS", "2500", "NODE_MEMORY_BYTES", "1073741824",
                      "NODE_GPUS", "4", "NODE_MAX_SERVERS", "0", "NODE_LABELS", "zone=a",
                      "NODE_TAINTS", "gpu=yes:NoSchedule", "NODE_HEARTBEAT_MS", "100", NULL };
    OK (s_read (pairs, &s, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR (s.name, "n-1");
    CHECK_EQ_INT (s.capacity.cpu_millis, 2500);
    CHECK_EQ_INT (s.capacity.memory_bytes, 1073741824);
    CHECK_EQ_INT (s.capacity.gpus, 4);
    CHECK_EQ_INT (s.capacity.servers, 100);    /* 0 = the default */
    CHECK_EQ_INT (s.labels.count, 1);
    CHECK_EQ_INT (s.taints.count, 1);
    CHECK_EQ_INT (s.heartbeat_ms, 100);
    /* detection fills only what is zero */
    node_resources_t cap = s.capacity;
    cap.memory_bytes = 0;
    char how[512];
    OK (node_agent_detect_capacity (&cap, how, sizeof how) == 0);
    CHECK_EQ_INT (cap.cpu_millis, 2500);
    CHECK_EQ_INT (cap.gpus, 4);
    OK (cap.memory_bytes > 0 && strstr (how, "cpu 2500m (configured)"), "%s", how);
    node_settings_clear (&s);

    s_bad_setting ("NODE_TAINTS", "gpu=yes:NoExecute", "ORRERY_NODE_TAINTS: taint 'gpu=yes:NoExecute'");
    s_bad_setting ("NODE_LABELS", "zone", "ORRERY_NODE_LABELS: label 'zone': expected key=value");
    s_bad_setting ("NODE_HEARTBEAT_MS", "99", "from 100 to 60000");
    s_bad_setting ("NODE_HEARTBEAT_MS", "60001", "from 100 to 60000");
    s_bad_setting ("NODE_HEARTBEAT_MS", "soon", "ORRERY_NODE_HEARTBEAT_MS=soon");
    s_bad_setting ("NODE_CPU_MILLIS", "2 cores", "ORRERY_NODE_CPU_MILLIS=2 cores");
    s_bad_setting ("NODE_MEMORY_BYTES", "8Gi", "ORRERY_NODE_MEMORY_BYTES=8Gi");
    s_bad_setting ("NODE_GPUS", "-1", "ORRERY_NODE_GPUS=-1");
    s_bad_setting ("NODE_MAX_SERVERS", "3000000000", "ORRERY_NODE_MAX_SERVERS");
    s_bad_setting ("NODE_NAME", "my node", "ORRERY_NODE_NAME: node name 'my node'");
}

/* node_agent_start in this process: its exit codes, and the accessors the spawner uses.
 * The bus address is never reached (connections are asynchronous). */
static void
s_test_agent_in_process (void)
{
    orr_config_t *config = orr_config_new ("test", "", s_settings);
    orr_config_set (config, "BUS", "tcp://127.0.0.1:1");
    orr_config_set (config, "NODE_TAINTS", "gpu=yes:NoExecute");
    orr_service_t *svc = orr_service_new ("spawner", config);
    CHECK (svc);
    node_agent_t *agent = NULL;
    CHECK_EQ_INT (node_agent_start (svc, config, &agent), 2);
    OK (agent == NULL);
    orr_config_set (config, "NODE_TAINTS", "gpu=yes:NoSchedule");
    orr_config_set (config, "NODE_NAME", "in-process");
    CHECK_EQ_INT (node_agent_start (svc, config, &agent), 0);
    OK (agent != NULL);
    CHECK_EQ_STR (node_agent_node_name (agent), "in-process");
    node_agent_set_servers_usage (agent, 3, 1);
    node_agent_set_servers_usage (agent, -1, -1);   /* clamped to 0, never negative on the wire */
    node_agent_destroy (&agent);
    OK (agent == NULL);
    node_agent_destroy (&agent);   /* harmless twice */
    orr_service_destroy (&svc);
    orr_config_destroy (&config);
    s_checks += 3;
}

/* --- the built spawner ---------------------------------------------------------------- */

static char *
s_slurp (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return orr_strdup ("");
    char *buf = orr_zalloc (1 << 20);
    size_t n = fread (buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose (f);
    return buf;
}

/* Runs the spawner with one bad setting: it must exit 2, saying why, before doing anything. */
static void
s_spawner_refuses (const char *dir, const char *bus, const char *setting, const char *says)
{
    char *path = tu_bin ("orrery-spawner");
    char *log = orr_sprintf ("%s/refused.log", dir);
    unlink (log);
    char *busv = orr_sprintf ("ORRERY_BUS=%s", bus);
    char *env[] = { (char *) setting, busv, NULL };
    char *argv[] = { path, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    int status = tu_stop (pid, 0, 10000);
    char *out = s_slurp (log);
    OK (WIFEXITED (status) && WEXITSTATUS (status) == 2, "%s: status %d, expected exit 2; output:\n%s", setting, status,
        out);
    OK (strstr (out, says) != NULL, "%s: output does not say '%s':\n%s", setting, says, out);
    printf ("refused %s with exit 2\n", setting);
    free (out);
    free (busv);
    free (log);
    free (path);
}

static void
s_test_help (const char *dir)
{
    char *path = tu_bin ("orrery-spawner");
    char *log = orr_sprintf ("%s/help.log", dir);
    char *argv[] = { path, "--help", NULL };
    int status = tu_stop (tu_spawn (argv, NULL, log), 0, 10000);
    OK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "--help: status %d", status);
    char *out = s_slurp (log);
    const char *names[] = { "ORRERY_NODE_NAME", "ORRERY_NODE_CPU_MILLIS", "ORRERY_NODE_MEMORY_BYTES",
                            "ORRERY_NODE_GPUS", "ORRERY_NODE_MAX_SERVERS", "ORRERY_NODE_LABELS",
                            "ORRERY_NODE_TAINTS", "ORRERY_NODE_HEARTBEAT_MS" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        OK (strstr (out, names[i]) != NULL, "--help does not list %s", names[i]);
    free (out);
    free (log);
    free (path);
}

static pid_t
s_spawner_start (const char *dir, const char *bus, const char *replica, char *const *extra)
{
    char *path = tu_bin ("orrery-spawner");
    char *log = orr_sprintf ("%s/%s.log", dir, replica);
    char *busv = orr_sprintf ("ORRERY_BUS=%s", bus);
    char *rep = orr_sprintf ("ORRERY_REPLICA_ID=%s", replica);
    char *env[16] = { busv, rep };
    size_t n = 2;
    for (char *const *e = extra; e && *e && n < 15; e++)
        env[n++] = *e;
    env[n] = NULL;
    char *argv[] = { path, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    free (rep);
    free (busv);
    free (log);
    free (path);
    return pid;
}

static void
s_test_heartbeats (const char *dir)
{
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 1000, 1);
    const char *topics[] = { "node.heartbeat", NULL };
    orr_events_sub_t *sub = orr_events_sub_new (&opts, topics);
    CHECK (orr_events_sub_wait_ready (sub, 5000) == 0, "no bus.tick from the broker");

    /* what the agent must detect on this host (its code, so the same rules) */
    node_resources_t expected = { 0 };
    char how[512];
    CHECK (node_agent_detect_capacity (&expected, how, sizeof how) == 0);
    printf ("detected here: %s\n", how);

    /* one agent with a 60 s interval: whatever arrives within 2 s is the start-up heartbeat */
    char *slow_env[] = { "ORRERY_NODE_NAME=unit-node", "ORRERY_NODE_HEARTBEAT_MS=60000", "ORRERY_NODE_GPUS=2",
                         "ORRERY_NODE_LABELS=zone=a,disk=ssd",
                         "ORRERY_NODE_TAINTS=gpu=yes:NoSchedule,spot=:PreferNoSchedule", NULL };
    /* and one every 200 ms, to count */
    char *fast_env[] = { "ORRERY_NODE_NAME=rate-node", "ORRERY_NODE_HEARTBEAT_MS=200", NULL };
    int64_t started_ms = orr_mono_ms ();
    pid_t slow = s_spawner_start (dir, b.addr, "spawner-unit", slow_env);
    pid_t fast = s_spawner_start (dir, b.addr, "spawner-rate", fast_env);

    int64_t first_slow_ms = -1;
    int fast_in_window = 0;   /* rate-node heartbeats between 1 s and 3 s after start */
    while (orr_mono_ms () < started_ms + 3000) {
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 100) != 1)
            continue;
        int64_t at = orr_mono_ms () - started_ms;
        Orrery__NodeHeartbeat *hb
            = orrery__node_heartbeat__unpack (NULL, zframe_size (ev.body), zframe_data (ev.body));
        CHECK (hb, "node.heartbeat body is not a NodeHeartbeat");
        CHECK (hb->capacity && hb->usage, "capacity or usage missing");
        if (strcmp (hb->node, "rate-node") == 0) {
            if (at >= 1000)
                fast_in_window++;
            CHECK_EQ_STR (hb->agent, "spawner-rate");
            CHECK_EQ_INT (hb->n_labels, 0);
            CHECK_EQ_INT (hb->capacity->cpu_millis, expected.cpu_millis);
            CHECK_EQ_INT (hb->capacity->memory_bytes, expected.memory_bytes);
            CHECK_EQ_INT (hb->capacity->gpus, expected.gpus);   /* detected: /dev/nvidiaN */
        }
        else if (first_slow_ms < 0) {
            first_slow_ms = at;
            CHECK_EQ_STR (hb->node, "unit-node");
            CHECK_EQ_STR (hb->agent, "spawner-unit");
            CHECK_EQ_INT (hb->capacity->cpu_millis, expected.cpu_millis);
            CHECK_EQ_INT (hb->capacity->memory_bytes, expected.memory_bytes);
            CHECK_EQ_INT (hb->capacity->gpus, 2);
            CHECK_EQ_INT (hb->capacity->servers, 100);
            CHECK (hb->usage->cpu_millis >= 0 && hb->usage->cpu_millis <= expected.cpu_millis, "usage cpu %lld",
                   (long long) hb->usage->cpu_millis);
            CHECK (hb->usage->memory_bytes > 0, "usage memory %lld", (long long) hb->usage->memory_bytes);
            CHECK_EQ_INT (hb->usage->gpus, 0);
            CHECK_EQ_INT (hb->usage->servers, 0);
            CHECK_EQ_INT (hb->n_labels, 2);
            CHECK_EQ_STR (hb->labels[0]->key, "zone");
            CHECK_EQ_STR (hb->labels[0]->value, "a");
            CHECK_EQ_STR (hb->labels[1]->key, "disk");
            CHECK_EQ_STR (hb->labels[1]->value, "ssd");
            CHECK_EQ_INT (hb->n_taints, 2);
            CHECK_EQ_STR (hb->taints[0]->key, "gpu");
            CHECK_EQ_STR (hb->taints[0]->value, "yes");
            CHECK_EQ_STR (hb->taints[0]->effect, "NoSchedule");
            CHECK_EQ_STR (hb->taints[1]->key, "spot");
            CHECK_EQ_STR (hb->taints[1]->value, "");
            CHECK_EQ_STR (hb->taints[1]->effect, "PreferNoSchedule");
            int64_t skew = hb->time_us - orr_now_us ();
            CHECK (skew > -10000000 && skew <= 0, "time_us %lld us from now", (long long) skew);
            printf ("first heartbeat of unit-node %lld ms after start: capacity cpu %lldm memory %lld gpus %d servers "
                    "%d, usage cpu %lldm memory %lld\n",
                    (long long) at, (long long) hb->capacity->cpu_millis, (long long) hb->capacity->memory_bytes,
                    hb->capacity->gpus, hb->capacity->servers, (long long) hb->usage->cpu_millis,
                    (long long) hb->usage->memory_bytes);
        }
        orrery__node_heartbeat__free_unpacked (hb, NULL);
        orr_event_clear (&ev);
    }
    s_checks += 25;
    OK (first_slow_ms >= 0 && first_slow_ms <= 2000, "no start-up heartbeat within 2 s (interval 60 s)");
    /* 2 s at 200 ms: 10, give or take scheduling */
    printf ("rate-node: %d heartbeats between 1 s and 3 s (interval 200 ms)\n", fast_in_window);
    OK (fast_in_window >= 7 && fast_in_window <= 13, "%d heartbeats in 2 s at 200 ms", fast_in_window);

    int status = tu_stop (slow, SIGTERM, 5000);
    OK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "spawner-unit exited with status %d", status);
    status = tu_stop (fast, SIGTERM, 5000);
    OK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "spawner-rate exited with status %d", status);
    orr_events_sub_destroy (&sub);
    orr_bus_opts_clear (&opts);
    tb_broker_stop (&b, SIGTERM);
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("node-agent");
    s_test_labels ();
    s_test_taints ();
    s_test_meminfo ();
    s_test_proc_stat ();
    s_test_cgroup_values ();
    s_test_cgroup_dir ();
    s_test_cgroup_trees (dir);
    s_test_capacity_text ();
    s_test_settings ();
    printf ("parsers: %d checks passed\n", s_checks);
    s_test_agent_in_process ();

    s_test_help (dir);
    const char *nowhere = "tcp://127.0.0.1:1";   /* never reached: setup refuses first */
    s_spawner_refuses (dir, nowhere, "ORRERY_NODE_TAINTS=gpu=yes:NoExecute", "must be NoSchedule or PreferNoSchedule");
    s_spawner_refuses (dir, nowhere, "ORRERY_NODE_TAINTS=gpu=yes", "ORRERY_NODE_TAINTS");
    s_spawner_refuses (dir, nowhere, "ORRERY_NODE_LABELS=zone", "ORRERY_NODE_LABELS");
    s_spawner_refuses (dir, nowhere, "ORRERY_NODE_HEARTBEAT_MS=50", "ORRERY_NODE_HEARTBEAT_MS");
    s_spawner_refuses (dir, nowhere, "ORRERY_NODE_MEMORY_BYTES=lots", "ORRERY_NODE_MEMORY_BYTES");
    s_test_heartbeats (dir);

    tu_tmpdir_remove (&dir);
    printf ("%d passed, 0 failed\n", s_checks);
    return 0;
}
