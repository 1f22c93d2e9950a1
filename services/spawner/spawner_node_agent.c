/*  spawner_node_agent: each spawner replica is the node agent of its host.
 *
 *  It tells the scheduler what this host offers and what is in use by publishing
 *  node.heartbeat (orrery.NodeHeartbeat) every NODE_HEARTBEAT_MS. The scheduler registers
 *  a node on its first heartbeat and takes it for lost when they stop, so the agent keeps
 *  nothing anywhere: a restarted replica just heartbeats again.
 *
 *  Capacity is settled once at start: a configured value or, for 0, detection. CPUs online
 *  × 1000 and MemTotal are each reduced by this process's cgroup limit if one applies: the
 *  smallest cpu.max / memory.max (cgroup v2) along the path from the process's own cgroup
 *  up to the hierarchy's mount point, or, when the v2 hierarchy has no such file (v1 or
 *  hybrid hosts), the v1 cpu.cfs_quota_us / cpu.cfs_period_us and memory.limit_in_bytes.
 *  The cgroup is found through /proc/self/cgroup and /proc/self/mountinfo rather than
 *  assumed to be the mount point, because on a host (systemd slices) or a hybrid machine
 *  the mount point is the root cgroup, which has no limit. GPUs are /dev/nvidiaN devices.
 *  Usage is sampled at every heartbeat: CPU busy time from /proc/stat since the previous
 *  heartbeat, memory as MemTotal - MemAvailable, both host-wide.
 *
 *  Start-up: the skeleton's event publisher cannot say when the brokers have subscribed
 *  (an XPUB drops what is sent before), so the first heartbeat goes at once, from setup,
 *  and is repeated after 100, 200, 400 ... ms until the gap reaches the interval. A
 *  heartbeat is idempotent, so the repeats cost a few messages and spare the scheduler a
 *  full interval's wait when the first one was lost. The skeleton's timer ticks every
 *  100 ms (the shortest interval allowed) and the agent decides when a heartbeat is due.
 *
 *  The parsers are pure functions over text, and the readers take a root directory, so
 *  tests feed them hand-made input (tests/test_node_agent.c).
 */
#include "spawner_node_agent.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE_AGENT_TICK_MS 100
#define NODE_AGENT_FIRST_GAP_MS 100
/* Largest file read whole (mountinfo on a busy Kubernetes node runs to a few hundred KB). */
#define NODE_AGENT_FILE_MAX (4 << 20)
/* cgroup v1 shows "no memory limit" as PAGE_COUNTER_MAX pages, just under 2^63 bytes. */
#define NODE_MEMORY_UNLIMITED_FROM (INT64_C (1) << 62)
#define NODE_CFS_PERIOD_DEFAULT_US 100000

/* Writes a message (a reason, or an account for the log) into buf, which may be NULL. */
static void
s_message (char *buf, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

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

/* --- labels and taints ---------------------------------------------------------------- */

/* The items of a comma-separated setting, trimmed, empty ones kept (so that "a=b,,c=d"
 * can be refused). Blank text has no items. Free with orr_strv_free. */
static char **
s_items (const char *text, size_t *count)
{
    *count = 0;
    char *copy = orr_strdup (text ? text : "");
    if (!*orr_strtrim (copy)) {
        free (copy);
        return orr_zalloc (sizeof (char *));
    }
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **items = orr_zalloc ((n + 1) * sizeof *items);
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        char *item = orr_strndup (p, len);
        items[i] = orr_strdup (orr_strtrim (item));
        free (item);
        p = comma ? comma + 1 : p + len;
    }
    free (copy);
    *count = n;
    return items;
}

/* Keys: 1..253 of [A-Za-z0-9._/-] (a "/" allows "example.com/gpu"); values: 0..253 of
 * [A-Za-z0-9._-]. */
static bool
s_token_ok (const char *what, const char *s, bool is_key, char *err, size_t errlen)
{
    size_t n = strlen (s);
    if (is_key && n == 0) {
        s_message (err, errlen, "%s is empty", what);
        return false;
    }
    if (n > NODE_TOKEN_MAX) {
        s_message (err, errlen, "%s '%.40s...' is longer than %d bytes", what, s, NODE_TOKEN_MAX);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (!isalnum (*p) && *p != '.' && *p != '_' && *p != '-' && !(is_key && *p == '/')) {
            s_message (err, errlen, "%s '%s' has '%c': only letters, digits and . _ -%s are allowed", what, s,
                    isprint (*p) ? *p : '?', is_key ? " /" : "");
            return false;
        }
    return true;
}

void
node_labels_clear (node_labels_t *labels)
{
    for (size_t i = 0; labels->items && i < labels->count; i++) {
        free (labels->items[i].key);
        free (labels->items[i].value);
    }
    free (labels->items);
    labels->items = NULL;
    labels->count = 0;
}

void
node_taints_clear (node_taints_t *taints)
{
    for (size_t i = 0; taints->items && i < taints->count; i++) {
        free (taints->items[i].key);
        free (taints->items[i].value);
        free (taints->items[i].effect);
    }
    free (taints->items);
    taints->items = NULL;
    taints->count = 0;
}

int
node_agent_parse_labels (const char *text, node_labels_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    size_t n = 0;
    char **items = s_items (text, &n);
    int rc = -1;
    if (n > NODE_LABELS_MAX) {
        s_message (err, errlen, "%zu labels: at most %d are allowed", n, NODE_LABELS_MAX);
        goto done;
    }
    out->items = orr_zalloc ((n + 1) * sizeof *out->items);
    for (size_t i = 0; i < n; i++) {
        char *item = items[i];
        if (!*item) {
            s_message (err, errlen, "empty label (two commas in a row, or one at an end)");
            goto done;
        }
        char *eq = strchr (item, '=');
        if (!eq) {
            s_message (err, errlen, "label '%s': expected key=value", item);
            goto done;
        }
        *eq = '\0';
        const char *key = orr_strtrim (item), *value = orr_strtrim (eq + 1);
        if (!s_token_ok ("label key", key, true, err, errlen) || !s_token_ok ("label value", value, false, err, errlen))
            goto done;
        for (size_t j = 0; j < out->count; j++)
            if (strcmp (out->items[j].key, key) == 0) {
                s_message (err, errlen, "label key '%s' is given twice", key);
                goto done;
            }
        out->items[out->count++] = (node_label_t) { orr_strdup (key), orr_strdup (value) };
    }
    rc = 0;
done:
    if (rc != 0)
        node_labels_clear (out);
    orr_strv_free (&items);
    return rc;
}

int
node_agent_parse_taints (const char *text, node_taints_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    size_t n = 0;
    char **items = s_items (text, &n);
    char *shown = NULL;       /* the item as written, for messages */
    int rc = -1;
    if (n > NODE_TAINTS_MAX) {
        s_message (err, errlen, "%zu taints: at most %d are allowed", n, NODE_TAINTS_MAX);
        goto done;
    }
    out->items = orr_zalloc ((n + 1) * sizeof *out->items);
    for (size_t i = 0; i < n; i++) {
        char *item = items[i];
        free (shown);
        shown = orr_strdup (item);
        if (!*item) {
            s_message (err, errlen, "empty taint (two commas in a row, or one at an end)");
            goto done;
        }
        char *colon = strrchr (item, ':');
        if (!colon) {
            s_message (err, errlen, "taint '%s': expected key=value:NoSchedule or key=value:PreferNoSchedule", shown);
            goto done;
        }
        *colon = '\0';
        const char *effect = orr_strtrim (colon + 1);
        if (strcmp (effect, "NoSchedule") != 0 && strcmp (effect, "PreferNoSchedule") != 0) {
            s_message (err, errlen, "taint '%s': the effect must be NoSchedule or PreferNoSchedule, not '%s'", shown,
                    effect);
            goto done;
        }
        char *eq = strchr (item, '=');
        if (eq)
            *eq = '\0';
        const char *key = orr_strtrim (item), *value = eq ? orr_strtrim (eq + 1) : "";
        if (!s_token_ok ("taint key", key, true, err, errlen) || !s_token_ok ("taint value", value, false, err, errlen))
            goto done;
        for (size_t j = 0; j < out->count; j++)
            if (strcmp (out->items[j].key, key) == 0 && strcmp (out->items[j].effect, effect) == 0) {
                s_message (err, errlen, "taint '%s': key '%s' with effect %s is given twice", shown, key, effect);
                goto done;
            }
        out->items[out->count++] = (node_taint_t) { orr_strdup (key), orr_strdup (value), orr_strdup (effect) };
    }
    rc = 0;
done:
    if (rc != 0)
        node_taints_clear (out);
    free (shown);
    orr_strv_free (&items);
    return rc;
}

/* --- /proc/meminfo and /proc/stat ----------------------------------------------------- */

/* " 24684084 kB" (or a bare number, in bytes) -> bytes. 0 or -1. */
static int
s_meminfo_value (const char *s, size_t len, int64_t *out)
{
    char buf[64];
    if (len >= sizeof buf)
        return -1;
    memcpy (buf, s, len);
    buf[len] = '\0';
    char *v = orr_strtrim (buf);
    if (!isdigit ((unsigned char) *v))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll (v, &end, 10);
    if (errno)
        return -1;
    const char *unit = orr_strtrim (end);
    if (strcmp (unit, "kB") == 0) {
        if (n > INT64_MAX / 1024)
            return -1;
        n *= 1024;
    }
    else if (*unit)
        return -1;
    *out = n;
    return 0;
}

int
node_agent_parse_meminfo (const char *text, node_meminfo_t *out)
{
    int64_t total = -1, available = -1, free_bytes = -1, buffers = -1, cached = -1;
    struct {
        const char *name;
        int64_t *value;
    } wanted[] = { { "MemTotal", &total }, { "MemAvailable", &available }, { "MemFree", &free_bytes },
                   { "Buffers", &buffers }, { "Cached", &cached } };
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr (p, '\n');
        size_t len = eol ? (size_t) (eol - p) : strlen (p);
        const char *colon = memchr (p, ':', len);
        if (colon) {
            size_t name_len = (size_t) (colon - p);
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
                if (strlen (wanted[i].name) == name_len && memcmp (p, wanted[i].name, name_len) == 0
                    && s_meminfo_value (colon + 1, len - name_len - 1, wanted[i].value) != 0)
                    return -1;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    if (total <= 0)
        return -1;
    if (available < 0) {
        /* kernels before 3.14 have no MemAvailable: the classic estimate */
        if (free_bytes < 0)
            return -1;
        available = free_bytes + (buffers > 0 ? buffers : 0) + (cached > 0 ? cached : 0);
    }
    out->total_bytes = total;
    out->available_bytes = available < total ? available : total;
    return 0;
}

int
node_agent_parse_proc_stat (const char *text, node_cpu_times_t *out)
{
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr (p, '\n');
        size_t len = eol ? (size_t) (eol - p) : strlen (p);
        if (len > 4 && strncmp (p, "cpu ", 4) == 0) {
            /* user nice system idle iowait irq softirq steal [guest guest_nice] */
            uint64_t f[8] = { 0 };
            size_t nf = 0;
            const char *q = p + 4, *end = p + len;
            while (q < end && nf < 8) {
                while (q < end && (*q == ' ' || *q == '\t'))
                    q++;
                if (q == end)
                    break;
                if (!isdigit ((unsigned char) *q))
                    return -1;
                errno = 0;
                char *after;
                unsigned long long v = strtoull (q, &after, 10);
                if (errno || (after < end && *after != ' ' && *after != '\t'))
                    return -1;
                f[nf++] = v;
                q = after;
            }
            if (nf < 4)
                return -1;
            out->busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
            out->total = out->busy + f[3] + f[4];
            return 0;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return -1;
}

int64_t
node_agent_cpu_used_millis (const node_cpu_times_t *prev, const node_cpu_times_t *cur, int64_t capacity_millis)
{
    if (cur->total <= prev->total || capacity_millis <= 0)
        return 0;
    uint64_t total = cur->total - prev->total;
    uint64_t busy = cur->busy > prev->busy ? cur->busy - prev->busy : 0;
    if (busy > total)
        busy = total;
    return (int64_t) ((double) busy / (double) total * (double) capacity_millis + 0.5);
}

/* --- cgroup values -------------------------------------------------------------------- */

/* Splits text into at most `max` white-space separated tokens of < 32 bytes. The count,
 * or -1 for more tokens or a longer one. */
static int
s_tokens (const char *text, char tokens[][32], int max)
{
    int n = 0;
    for (const char *p = text ? text : ""; *p;) {
        while (isspace ((unsigned char) *p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && !isspace ((unsigned char) *p))
            p++;
        size_t len = (size_t) (p - start);
        if (n == max || len >= 32)
            return -1;
        memcpy (tokens[n], start, len);
        tokens[n++][len] = '\0';
    }
    return n;
}

/* A whole decimal number, optionally negative. 0 or -1. */
static int
s_int64 (const char *s, int64_t *out)
{
    const char *digits = *s == '-' ? s + 1 : s;
    if (!isdigit ((unsigned char) *digits))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll (s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* quota / period in cores, as millis; at least 1. 1, or 0 when too large to mean a limit. */
static int
s_quota_millis (int64_t quota_us, int64_t period_us, int64_t *millis)
{
    double m = (double) quota_us * 1000.0 / (double) period_us;
    if (m >= 1e15)
        return 0;
    *millis = m < 1.0 ? 1 : (int64_t) m;
    return 1;
}

int
node_agent_parse_cpu_max (const char *text, int64_t *millis)
{
    char tok[2][32];
    int n = s_tokens (text, tok, 2);
    if (n < 1)
        return -1;
    int64_t quota = 0, period = NODE_CFS_PERIOD_DEFAULT_US;
    if (n == 2 && (s_int64 (tok[1], &period) != 0 || period <= 0))
        return -1;
    if (strcmp (tok[0], "max") == 0)
        return 0;
    if (s_int64 (tok[0], &quota) != 0 || quota <= 0)
        return -1;
    return s_quota_millis (quota, period, millis);
}

int
node_agent_parse_cfs_quota (const char *quota_text, const char *period_text, int64_t *millis)
{
    char tok[1][32];
    int64_t quota = 0, period = 0;
    if (s_tokens (quota_text, tok, 1) != 1 || s_int64 (tok[0], &quota) != 0)
        return -1;
    if (quota == -1)
        return 0;
    if (quota <= 0)
        return -1;
    if (s_tokens (period_text, tok, 1) != 1 || s_int64 (tok[0], &period) != 0 || period <= 0)
        return -1;
    return s_quota_millis (quota, period, millis);
}

int
node_agent_parse_memory_limit (const char *text, int64_t *bytes)
{
    char tok[1][32];
    if (s_tokens (text, tok, 1) != 1)
        return -1;
    if (strcmp (tok[0], "max") == 0)
        return 0;
    int64_t v = 0;
    if (s_int64 (tok[0], &v) != 0 || v < 0)
        return -1;
    if (v >= NODE_MEMORY_UNLIMITED_FROM)
        return 0;
    *bytes = v;
    return 1;
}

/* --- where this process's cgroup is --------------------------------------------------- */

/* `list` ("rw,cpu,cpuacct") holds `word` as one of its comma-separated items. */
static bool
s_has_item (const char *list, size_t list_len, const char *word)
{
    size_t wlen = strlen (word);
    for (const char *p = list, *end = list + list_len; p < end;) {
        const char *comma = memchr (p, ',', (size_t) (end - p));
        size_t len = comma ? (size_t) (comma - p) : (size_t) (end - p);
        if (len == wlen && memcmp (p, word, wlen) == 0)
            return true;
        p += len + 1;
    }
    return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
s_unescape (const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 1 < size; n++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            out[n] = (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 4;
        }
        else
            out[n] = *p++;
    }
    out[n] = '\0';
}

/* The line of /proc/self/cgroup for the hierarchy: "0::PATH" (v2) or "N:a,controller,b:PATH". */
static int
s_proc_cgroup_path (const char *text, const char *controller, char *path, size_t size)
{
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr (p, '\n');
        size_t len = eol ? (size_t) (eol - p) : strlen (p);
        const char *c1 = memchr (p, ':', len);
        const char *c2 = c1 ? memchr (c1 + 1, ':', len - (size_t) (c1 + 1 - p)) : NULL;
        if (c2) {
            const char *list = c1 + 1;
            size_t list_len = (size_t) (c2 - list);
            bool match = controller ? s_has_item (list, list_len, controller)
                                    : (c1 - p == 1 && p[0] == '0' && list_len == 0);
            size_t path_len = len - (size_t) (c2 + 1 - p);
            if (match && path_len > 0 && c2[1] == '/' && path_len < size) {
                memcpy (path, c2 + 1, path_len);
                path[path_len] = '\0';
                return 0;
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return -1;
}

/* The hierarchy's mount in mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...]
 * - FSTYPE SOURCE SUPEROPTS"; v2 is fstype cgroup2, v1 fstype cgroup with the controller
 * among the super options. */
static int
s_mountinfo_find (const char *text, const char *controller, char *root, size_t root_size, char *mount,
                  size_t mount_size)
{
    for (const char *p = text ? text : ""; *p;) {
        const char *eol = strchr (p, '\n');
        size_t len = eol ? (size_t) (eol - p) : strlen (p);
        char line[4096];
        if (len < sizeof line) {
            memcpy (line, p, len);
            line[len] = '\0';
            char *field[64];
            int nf = 0;
            for (char *save = NULL, *t = strtok_r (line, " ", &save); t && nf < 64; t = strtok_r (NULL, " ", &save))
                field[nf++] = t;
            int sep = -1;
            for (int i = 6; i < nf && sep < 0; i++)
                if (strcmp (field[i], "-") == 0)
                    sep = i;
            if (sep > 0 && sep + 1 < nf) {
                const char *fstype = field[sep + 1];
                const char *opts = sep + 3 < nf ? field[sep + 3] : "";
                bool match = controller ? strcmp (fstype, "cgroup") == 0 && s_has_item (opts, strlen (opts), controller)
                                        : strcmp (fstype, "cgroup2") == 0;
                if (match) {
                    s_unescape (field[3], root, root_size);
                    s_unescape (field[4], mount, mount_size);
                    return 0;
                }
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return -1;
}

int
node_agent_cgroup_dir (const char *mountinfo, const char *proc_cgroup, const char *controller, char *mount,
                       size_t mount_size, char *rel, size_t rel_size)
{
    char path[4096], root[4096];
    if (s_proc_cgroup_path (proc_cgroup, controller, path, sizeof path) != 0
        || s_mountinfo_find (mountinfo, controller, root, sizeof root, mount, mount_size) != 0)
        return -1;
    /* The mount shows the hierarchy from `root` down (a container's own cgroup, say);
     * the process's path is relative to the hierarchy's (or the namespace's) root. */
    const char *below = path;
    size_t root_len = strlen (root);
    if (strcmp (root, "/") != 0) {
        if (strncmp (path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0'))
            below = path + root_len;
        else
            below = "";   /* not under the mount's root (another namespace): the mount itself */
    }
    snprintf (rel, rel_size, "%s", *below ? below : "/");
    return 0;
}

/* --- reading the host ----------------------------------------------------------------- */

/* The whole text of root+path, or NULL when it cannot be opened (absent). Caller frees. */
static char *
s_read_text (const char *root, const char *path)
{
    char *full = orr_sprintf ("%s%s", root, path);
    FILE *f = fopen (full, "r");
    free (full);
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = orr_zalloc (cap);
    while (n < NODE_AGENT_FILE_MAX) {
        if (n + 1 >= cap)
            buf = orr_realloc (buf, cap *= 2);
        size_t got = fread (buf + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    buf[n] = '\0';
    fclose (f);
    return buf;
}

/* One cgroup directory's limit: 1 (in *limit), 0 present without a limit, -1 malformed,
 * -2 absent. */
typedef int (cgroup_level_fn) (const char *dir, int64_t *limit);

static int
s_level_cpu_v2 (const char *dir, int64_t *limit)
{
    char *text = s_read_text (dir, "/cpu.max");
    if (!text)
        return -2;
    int rc = node_agent_parse_cpu_max (text, limit);
    free (text);
    return rc;
}

/* A quota without a period file reads as malformed unless the quota is -1 (no limit). */
static int
s_level_cpu_v1 (const char *dir, int64_t *limit)
{
    char *quota = s_read_text (dir, "/cpu.cfs_quota_us");
    if (!quota)
        return -2;
    char *period = s_read_text (dir, "/cpu.cfs_period_us");
    int rc = node_agent_parse_cfs_quota (quota, period, limit);
    free (period);
    free (quota);
    return rc;
}

static int
s_level_memory (const char *dir, const char *file, int64_t *limit)
{
    char *text = s_read_text (dir, file);
    if (!text)
        return -2;
    int rc = node_agent_parse_memory_limit (text, limit);
    free (text);
    return rc;
}

static int
s_level_memory_v2 (const char *dir, int64_t *limit)
{
    return s_level_memory (dir, "/memory.max", limit);
}

static int
s_level_memory_v1 (const char *dir, int64_t *limit)
{
    return s_level_memory (dir, "/memory.limit_in_bytes", limit);
}

/* The smallest limit from the process's cgroup up to the mount point (a parent's limit
 * binds its children). 1 with *limit, 0 when the files exist but set no limit, -2 when
 * the hierarchy or its files are absent. */
static int
s_cgroup_walk (const char *root, const char *controller, const char *resource, cgroup_level_fn *read_level,
               int64_t *limit)
{
    char *mountinfo = s_read_text (root, "/proc/self/mountinfo");
    char *proc_cgroup = s_read_text (root, "/proc/self/cgroup");
    char mount[4096], rel[4096];
    int found = node_agent_cgroup_dir (mountinfo, proc_cgroup, controller, mount, sizeof mount, rel, sizeof rel);
    free (mountinfo);
    free (proc_cgroup);
    if (found != 0)
        return -2;
    bool present = false, limited = false;
    int64_t best = 0;
    for (;;) {
        char *dir = orr_sprintf ("%s%s%s", root, mount, strcmp (rel, "/") == 0 ? "" : rel);
        int64_t v = 0;
        int r = read_level (dir, &v);
        if (r == 1 && (!limited || v < best)) {
            best = v;
            limited = true;
        }
        if (r == -1)
            orr_warn ("cgroup %s: the %s limit does not parse%s; ignored", dir, resource,
                      strcmp (resource, "cpu") == 0 ? " (or a quota has no period)" : "");
        present |= r != -2;
        free (dir);
        if (strcmp (rel, "/") == 0)
            break;
        char *slash = strrchr (rel, '/');
        slash[slash == rel ? 1 : 0] = '\0';
    }
    if (limited)
        *limit = best;
    return limited ? 1 : present ? 0 : -2;
}

/* v2 when its hierarchy has the files at any level, else v1. */
static int64_t
s_cgroup_limit (const char *root, const char *resource, cgroup_level_fn *v2, cgroup_level_fn *v1)
{
    int64_t limit = -1;
    int r = s_cgroup_walk (root ? root : "", NULL, resource, v2, &limit);
    if (r == -2)
        r = s_cgroup_walk (root ? root : "", resource, resource, v1, &limit);
    return r == 1 ? limit : -1;
}

int64_t
node_agent_cgroup_cpu_limit (const char *root)
{
    return s_cgroup_limit (root, "cpu", s_level_cpu_v2, s_level_cpu_v1);
}

int64_t
node_agent_cgroup_memory_limit (const char *root)
{
    return s_cgroup_limit (root, "memory", s_level_memory_v2, s_level_memory_v1);
}

bool
node_agent_is_gpu_device (const char *name)
{
    if (strncmp (name, "nvidia", 6) != 0 || !name[6])
        return false;
    for (const char *p = name + 6; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    return true;
}

int
node_agent_count_gpus (const char *dev_dir)
{
    DIR *d = opendir (dev_dir);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir (d));)
        n += node_agent_is_gpu_device (e->d_name);
    closedir (d);
    return n;
}

/* --- settings ------------------------------------------------------------------------- */

int
node_agent_parse_capacity (const char *text, int64_t max, int64_t *out)
{
    *out = 0;
    char *copy = orr_strdup (text ? text : "");
    const char *v = orr_strtrim (copy);
    long n = 0;
    int rc = 0;
    if (*v && (!isdigit ((unsigned char) *v) || orr_parse_long (v, &n) != 0 || n < 0 || n > max))
        rc = -1;
    else
        *out = n;
    free (copy);
    return rc;
}

void
node_settings_clear (node_settings_t *settings)
{
    free (settings->name);
    node_labels_clear (&settings->labels);
    node_taints_clear (&settings->taints);
    memset (settings, 0, sizeof *settings);
}

int
node_agent_read_settings (orr_config_t *config, node_settings_t *out, char *err, size_t errlen)
{
    memset (out, 0, sizeof *out);
    char why[512] = "";
    const char *name = orr_config_get (config, "NODE_NAME");
    char host[256] = "";
    bool from_host = !name || !*name;
    if (from_host) {
        if (gethostname (host, sizeof host - 1) != 0)
            host[0] = '\0';
        name = host;
    }
    if (!*name || !s_token_ok ("node name", name, false, why, sizeof why)) {
        if (from_host)
            s_message (err, errlen, "the host name '%s' is not a usable node name (%s): set ORRERY_NODE_NAME", name,
                    *name ? why : "empty");
        else
            s_message (err, errlen, "ORRERY_NODE_NAME: %s", why);
        return -1;
    }
    struct {
        const char *setting;
        int64_t max;
        int64_t value;
    } cap[] = { { "NODE_CPU_MILLIS", INT64_MAX, 0 }, { "NODE_MEMORY_BYTES", INT64_MAX, 0 },
                { "NODE_GPUS", INT32_MAX, 0 }, { "NODE_MAX_SERVERS", INT32_MAX, 0 } };
    for (size_t i = 0; i < sizeof cap / sizeof cap[0]; i++) {
        const char *text = orr_config_get (config, cap[i].setting);
        if (node_agent_parse_capacity (text, cap[i].max, &cap[i].value) != 0) {
            s_message (err, errlen, "ORRERY_%s=%s: expected a whole number from 0 (detect) to %lld", cap[i].setting,
                    text ? text : "", (long long) cap[i].max);
            return -1;
        }
    }
    const char *hb_text = orr_config_get (config, "NODE_HEARTBEAT_MS");
    long hb = 0;
    if (!hb_text || orr_parse_long (hb_text, &hb) != 0 || hb < NODE_HEARTBEAT_MS_MIN || hb > NODE_HEARTBEAT_MS_MAX) {
        s_message (err, errlen, "ORRERY_NODE_HEARTBEAT_MS=%s: expected a whole number of milliseconds from %d to %d",
                hb_text ? hb_text : "", NODE_HEARTBEAT_MS_MIN, NODE_HEARTBEAT_MS_MAX);
        return -1;
    }
    if (node_agent_parse_labels (orr_config_get (config, "NODE_LABELS"), &out->labels, why, sizeof why) != 0) {
        s_message (err, errlen, "ORRERY_NODE_LABELS: %s", why);
        return -1;
    }
    if (node_agent_parse_taints (orr_config_get (config, "NODE_TAINTS"), &out->taints, why, sizeof why) != 0) {
        s_message (err, errlen, "ORRERY_NODE_TAINTS: %s", why);
        node_settings_clear (out);
        return -1;
    }
    out->name = orr_strdup (name);
    out->capacity.cpu_millis = cap[0].value;
    out->capacity.memory_bytes = cap[1].value;
    out->capacity.gpus = (int32_t) cap[2].value;
    out->capacity.servers = cap[3].value ? (int32_t) cap[3].value : NODE_MAX_SERVERS_DEFAULT;
    out->heartbeat_ms = (int) hb;
    return 0;
}

int
node_agent_detect_capacity (node_resources_t *capacity, char *how, size_t how_size)
{
    char cpu[160], memory[160], gpus[64];
    if (capacity->cpu_millis > 0)
        snprintf (cpu, sizeof cpu, "cpu %lldm (configured)", (long long) capacity->cpu_millis);
    else {
        long online = sysconf (_SC_NPROCESSORS_ONLN);
        if (online < 1)
            online = 1;
        int64_t quota = node_agent_cgroup_cpu_limit ("");
        capacity->cpu_millis = (int64_t) online * 1000;
        if (quota >= 0 && quota < capacity->cpu_millis) {
            capacity->cpu_millis = quota;
            snprintf (cpu, sizeof cpu, "cpu %lldm (cgroup quota; %ld CPUs online)", (long long) quota, online);
        }
        else
            snprintf (cpu, sizeof cpu, "cpu %lldm (%ld CPUs online, no cgroup quota below that)",
                      (long long) capacity->cpu_millis, online);
    }
    if (capacity->memory_bytes > 0)
        snprintf (memory, sizeof memory, "memory %lld bytes (configured)", (long long) capacity->memory_bytes);
    else {
        char *text = s_read_text ("", "/proc/meminfo");
        node_meminfo_t mem;
        int rc = node_agent_parse_meminfo (text, &mem);
        free (text);
        if (rc != 0) {
            s_message (how, how_size, "cannot read MemTotal from /proc/meminfo");
            return -1;
        }
        int64_t limit = node_agent_cgroup_memory_limit ("");
        capacity->memory_bytes = mem.total_bytes;
        if (limit >= 0 && limit < mem.total_bytes) {
            capacity->memory_bytes = limit;
            snprintf (memory, sizeof memory, "memory %lld bytes (cgroup limit; MemTotal %lld)", (long long) limit,
                      (long long) mem.total_bytes);
        }
        else
            snprintf (memory, sizeof memory, "memory %lld bytes (MemTotal, no cgroup limit below that)",
                      (long long) mem.total_bytes);
    }
    if (capacity->gpus > 0)
        snprintf (gpus, sizeof gpus, "%d GPUs (configured)", (int) capacity->gpus);
    else {
        capacity->gpus = node_agent_count_gpus ("/dev");
        snprintf (gpus, sizeof gpus, "%d GPUs (/dev/nvidiaN)", (int) capacity->gpus);
    }
    if (capacity->servers <= 0)
        capacity->servers = NODE_MAX_SERVERS_DEFAULT;
    s_message (how, how_size, "%s, %s, %s, %d servers", cpu, memory, gpus, (int) capacity->servers);
    return 0;
}

/* --- the agent ------------------------------------------------------------------------ */

struct node_agent_t {
    orr_service_t *svc;
    node_settings_t settings;     /* capacity settled at start */
    node_cpu_times_t cpu_prev;    /* the previous heartbeat's sample; zeros = since boot */
    int64_t next_ms;              /* monotonic time the next heartbeat is due */
    int gap_ms;                   /* doubles from 100 ms up to the interval after start */
    int32_t servers_used;         /* set by the spawner (node_agent_set_servers_usage) */
    int32_t gpus_used;
    uint64_t published;
    bool publish_failed;          /* warned once about it */
};

/* The "cpu " line is the first of /proc/stat; the rest (a line per CPU, interrupts) can
 * run to many KB on a large host and is not needed. */
static void
s_sample_usage (node_agent_t *self, node_resources_t *usage)
{
    memset (usage, 0, sizeof *usage);
    FILE *f = fopen ("/proc/stat", "r");
    char line[512] = "";
    if (f) {
        if (!fgets (line, sizeof line, f))
            line[0] = '\0';
        fclose (f);
    }
    node_cpu_times_t now;
    if (node_agent_parse_proc_stat (line, &now) == 0) {
        usage->cpu_millis = node_agent_cpu_used_millis (&self->cpu_prev, &now, self->settings.capacity.cpu_millis);
        self->cpu_prev = now;
    }
    char *text = s_read_text ("", "/proc/meminfo");
    node_meminfo_t mem;
    if (node_agent_parse_meminfo (text, &mem) == 0)
        usage->memory_bytes = mem.total_bytes - mem.available_bytes;
    free (text);
    usage->servers = self->servers_used;
    usage->gpus = self->gpus_used;
}

static void
s_resources_pb (const node_resources_t *in, Orrery__Resources *out)
{
    orrery__resources__init (out);
    out->cpu_millis = in->cpu_millis;
    out->memory_bytes = in->memory_bytes;
    out->gpus = in->gpus;
    out->servers = in->servers;
}

static void
s_publish_heartbeat (node_agent_t *self)
{
    const node_settings_t *s = &self->settings;
    node_resources_t usage;
    s_sample_usage (self, &usage);
    Orrery__Resources capacity_pb, usage_pb;
    s_resources_pb (&s->capacity, &capacity_pb);
    s_resources_pb (&usage, &usage_pb);
    Orrery__Label *labels = orr_zalloc ((s->labels.count + 1) * sizeof *labels);
    Orrery__Label **label_ptrs = orr_zalloc ((s->labels.count + 1) * sizeof *label_ptrs);
    for (size_t i = 0; i < s->labels.count; i++) {
        orrery__label__init (&labels[i]);
        labels[i].key = s->labels.items[i].key;
        labels[i].value = s->labels.items[i].value;
        label_ptrs[i] = &labels[i];
    }
    Orrery__Taint *taints = orr_zalloc ((s->taints.count + 1) * sizeof *taints);
    Orrery__Taint **taint_ptrs = orr_zalloc ((s->taints.count + 1) * sizeof *taint_ptrs);
    for (size_t i = 0; i < s->taints.count; i++) {
        orrery__taint__init (&taints[i]);
        taints[i].key = s->taints.items[i].key;
        taints[i].value = s->taints.items[i].value;
        taints[i].effect = s->taints.items[i].effect;
        taint_ptrs[i] = &taints[i];
    }
    Orrery__NodeHeartbeat hb = ORRERY__NODE_HEARTBEAT__INIT;
    hb.node = s->name;
    hb.capacity = &capacity_pb;
    hb.usage = &usage_pb;
    hb.n_labels = s->labels.count;
    hb.labels = label_ptrs;
    hb.n_taints = s->taints.count;
    hb.taints = taint_ptrs;
    hb.time_us = orr_now_us ();
    hb.agent = (char *) orr_log_replica_id ();
    size_t n = orrery__node_heartbeat__get_packed_size (&hb);
    uint8_t *buf = orr_zalloc (n + 1);
    orrery__node_heartbeat__pack (&hb, buf);
    if (orr_service_publish (self->svc, "node.heartbeat", buf, n) == 0) {
        self->published++;
        self->publish_failed = false;
        orr_debug ("node.heartbeat %s: cpu %lld/%lldm, memory %lld/%lld bytes", s->name, (long long) usage.cpu_millis,
                   (long long) s->capacity.cpu_millis, (long long) usage.memory_bytes,
                   (long long) s->capacity.memory_bytes);
    }
    else if (!self->publish_failed) {
        self->publish_failed = true;
        orr_warn ("could not publish node.heartbeat for node %s", s->name);
    }
    free (buf);
    free (taint_ptrs);
    free (taints);
    free (label_ptrs);
    free (labels);
}

static void
s_tick (void *ctx)
{
    node_agent_t *self = ctx;
    int64_t now = orr_mono_ms ();
    if (now < self->next_ms)
        return;
    s_publish_heartbeat (self);
    if (self->gap_ms < self->settings.heartbeat_ms) {
        self->gap_ms *= 2;
        if (self->gap_ms > self->settings.heartbeat_ms)
            self->gap_ms = self->settings.heartbeat_ms;
    }
    /* keep the phase, so ticks arriving a little late do not stretch the interval */
    self->next_ms += self->gap_ms;
    if (self->next_ms <= now)
        self->next_ms = now + self->gap_ms;
}

int
node_agent_start (orr_service_t *svc, orr_config_t *config, node_agent_t **agent_p)
{
    *agent_p = NULL;
    node_agent_t *self = orr_zalloc (sizeof *self);
    self->svc = svc;
    char err[768];
    if (node_agent_read_settings (config, &self->settings, err, sizeof err) != 0) {
        orr_error ("%s", err);
        free (self);
        return 2;
    }
    char how[512];
    if (node_agent_detect_capacity (&self->settings.capacity, how, sizeof how) != 0) {
        orr_error ("node agent: %s; set ORRERY_NODE_CPU_MILLIS and ORRERY_NODE_MEMORY_BYTES", how);
        node_agent_destroy (&self);
        return 1;
    }
    orr_info ("node agent for node %s: %s; %zu labels, %zu taints; node.heartbeat every %d ms", self->settings.name,
              how, self->settings.labels.count, self->settings.taints.count, self->settings.heartbeat_ms);
    s_publish_heartbeat (self);
    self->gap_ms = NODE_AGENT_FIRST_GAP_MS < self->settings.heartbeat_ms ? NODE_AGENT_FIRST_GAP_MS
                                                                         : self->settings.heartbeat_ms;
    self->next_ms = orr_mono_ms () + self->gap_ms;
    orr_service_every (svc, NODE_AGENT_TICK_MS, s_tick, self);
    *agent_p = self;
    return 0;
}

void
node_agent_destroy (node_agent_t **agent_p)
{
    if (!agent_p || !*agent_p)
        return;
    node_agent_t *self = *agent_p;
    if (self->published)
        orr_info ("node agent for node %s stopping after %llu heartbeats", self->settings.name,
                  (unsigned long long) self->published);
    node_settings_clear (&self->settings);
    free (self);
    *agent_p = NULL;
}

const char *
node_agent_node_name (const node_agent_t *self)
{
    return self->settings.name;
}

void
node_agent_set_servers_usage (node_agent_t *self, int32_t servers, int32_t gpus)
{
    self->servers_used = servers > 0 ? servers : 0;
    self->gpus_used = gpus > 0 ? gpus : 0;
}
