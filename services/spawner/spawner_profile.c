/*  spawner_profile: reads SERVER_PROFILES into checked profiles and picks one per spawn.
 *
 *  It owns the profile list of a spawner replica: the parsed, validated form of the
 *  setting, built once at start and read-only after, so any thread may read it. Every
 *  check happens here, at start, with a message naming the profile's index and the field,
 *  because a profile that is wrong at spawn time would fail a user's server, not the
 *  operator's deployment. The checks follow what each value becomes: slugs, label keys
 *  and values and names follow Kubernetes' syntax (they end up in a pod), tolerations
 *  are what the scheduler accepts (orrery.Toleration), quantities are JupyterHub's.
 *
 *  Every string of a parsed profile is non-NULL ("" when not given), so consumers never
 *  test for NULL. The parse builds into the final array and one destroy frees whatever
 *  part was filled, so a failure half-way frees cleanly.
 */
#include "spawner_profile.h"

#include "orr_util.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const orr_setting_t spawner_profile_settings[] = {
    SPAWNER_PROFILE_SETTINGS,
    { NULL, NULL, NULL },
};

struct spawner_profiles_t {
    spawner_profile_t *profiles;
    size_t count;
    size_t default_index;
};

#define DNS_LABEL_MAX 63
#define DNS_SUBDOMAIN_MAX 253
#define PVC_CAPACITY_DEFAULT (INT64_C (10) << 30)
#define SUB_PATH_DEFAULT "{username}"

/* Where the parse is, for error messages: "SERVER_PROFILES[2].kubernetes.storage". */
typedef struct {
    char *err;
    size_t errlen;
    size_t index;
} parse_ctx_t;

static void
s_fail (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

/* "SERVER_PROFILES[i].field: why" */
static int
s_field_fail (parse_ctx_t *ctx, const char *field, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_field_fail (parse_ctx_t *ctx, const char *field, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (why, sizeof why, fmt, ap);
    va_end (ap);
    s_fail (ctx->err, ctx->errlen, "SERVER_PROFILES[%zu]%s%s: %s", ctx->index, *field ? "." : "", field, why);
    return -1;
}

/* --- quantities ----------------------------------------------------------------------- */

/* "<digits>[.<digits>]" at *p: the whole part (refused above `max_whole`) and up to 9
 * fraction digits as a numerator over 10^ndigits. Moves *p past the number. */
static int
s_parse_decimal (const char **p, int64_t max_whole, int64_t *whole, int64_t *frac, int64_t *frac_scale,
                 bool *frac_rest)
{
    const char *s = *p;
    *whole = 0;
    *frac = 0;
    *frac_scale = 1;
    *frac_rest = false;
    bool digits = false;
    while (isdigit ((unsigned char) *s)) {
        int d = *s++ - '0';
        if (*whole > (max_whole - d) / 10)
            return -1;
        *whole = *whole * 10 + d;
        digits = true;
    }
    if (*s == '.') {
        s++;
        bool frac_digits = false;
        while (isdigit ((unsigned char) *s)) {
            if (*frac_scale < INT64_C (1000000000)) {
                *frac = *frac * 10 + (*s - '0');
                *frac_scale *= 10;
            }
            else if (*s != '0')
                *frac_rest = true;
            s++;
            frac_digits = true;
        }
        if (!frac_digits)
            return -1;
        digits = true;
    }
    *p = s;
    return digits ? 0 : -1;
}

int
spawner_parse_memory (const char *text, int64_t *bytes, char *err, size_t errlen)
{
    static const struct {
        const char *suffix;
        int64_t factor;
    } units[] = {
        { "", 1 },
        { "K", INT64_C (1) << 10 }, { "Ki", INT64_C (1) << 10 },
        { "M", INT64_C (1) << 20 }, { "Mi", INT64_C (1) << 20 },
        { "G", INT64_C (1) << 30 }, { "Gi", INT64_C (1) << 30 },
        { "T", INT64_C (1) << 40 }, { "Ti", INT64_C (1) << 40 },
    };
    if (!text || !*text) {
        s_fail (err, errlen, "empty memory quantity");
        return -1;
    }
    const char *p = text;
    int64_t whole, frac, scale;
    bool rest;
    if (s_parse_decimal (&p, SPAWNER_MEMORY_BYTES_MAX, &whole, &frac, &scale, &rest) < 0) {
        s_fail (err, errlen, "\"%.64s\" is not a memory quantity (bytes, or a number with K, M, G, T, Ki, Mi, Gi or Ti)",
                text);
        return -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp (p, units[i].suffix) != 0)
            continue;
        int64_t f = units[i].factor;
        if (whole > SPAWNER_MEMORY_BYTES_MAX / f) {
            s_fail (err, errlen, "\"%.64s\" is more than %" PRId64 " bytes", text, SPAWNER_MEMORY_BYTES_MAX);
            return -1;
        }
        /* frac / scale of a unit, truncated: frac < scale <= 10^9 and f <= 2^40, so split
         * the product to stay within 64 bits. */
        int64_t part = (f / scale) * frac + ((f % scale) * frac) / scale;
        int64_t total = whole * f + part;
        if (total > SPAWNER_MEMORY_BYTES_MAX) {
            s_fail (err, errlen, "\"%.64s\" is more than %" PRId64 " bytes", text, SPAWNER_MEMORY_BYTES_MAX);
            return -1;
        }
        *bytes = total;
        return 0;
    }
    s_fail (err, errlen,
            "\"%.64s\": unknown unit \"%.16s\" (K, M, G, T are powers of 1024 as in JupyterHub; Ki, Mi, Gi, Ti the same)",
            text, p);
    return -1;
}

int
spawner_parse_cpu (const char *text, int64_t *millis, char *err, size_t errlen)
{
    if (!text || !*text) {
        s_fail (err, errlen, "empty CPU quantity");
        return -1;
    }
    const char *p = text;
    int64_t whole, frac, scale;
    bool rest;
    if (s_parse_decimal (&p, SPAWNER_CPU_MILLIS_MAX, &whole, &frac, &scale, &rest) < 0
        || (*p && strcmp (p, "m") != 0)) {
        s_fail (err, errlen, "\"%.64s\" is not a CPU quantity (cores such as 0.5 or 2, or millicores such as 500m)", text);
        return -1;
    }
    int64_t m;
    if (*p == 'm') /* millicores: a fraction of one is rounded up */
        m = whole + (frac > 0 || rest);
    else {
        if (whole > SPAWNER_CPU_MILLIS_MAX / 1000) {
            s_fail (err, errlen, "\"%.64s\" is more than %" PRId64 " cores", text, SPAWNER_CPU_MILLIS_MAX / 1000);
            return -1;
        }
        /* frac/scale cores in millicores, rounded up */
        int64_t num = frac * 1000;
        m = whole * 1000 + num / scale + (num % scale != 0 || rest);
    }
    if (m > SPAWNER_CPU_MILLIS_MAX) {
        s_fail (err, errlen, "\"%.64s\" is more than %" PRId64 " cores", text, SPAWNER_CPU_MILLIS_MAX / 1000);
        return -1;
    }
    *millis = m;
    return 0;
}

/* --- names ---------------------------------------------------------------------------- */

static bool
s_is_lower_alnum (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1..63. */
static bool
s_is_dns_label (const char *s, size_t len)
{
    if (len == 0 || len > DNS_LABEL_MAX || !s_is_lower_alnum (s[0]) || !s_is_lower_alnum (s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_is_lower_alnum (s[i]) && s[i] != '-')
            return false;
    return true;
}

/* RFC 1123 subdomain: dot-separated labels, 1..253 in all. */
static bool
s_is_dns_subdomain (const char *s, size_t len)
{
    if (len == 0 || len > DNS_SUBDOMAIN_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!s_is_dns_label (s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* A label's name part or value: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, up to 63. */
static bool
s_is_qualified_part (const char *s, size_t len)
{
    if (len == 0 || len > DNS_LABEL_MAX || !isalnum ((unsigned char) s[0]) || !isalnum ((unsigned char) s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* A Kubernetes label or annotation key: [prefix/]name, prefix a DNS subdomain. */
static bool
s_is_label_key (const char *key)
{
    const char *slash = strchr (key, '/');
    if (!slash)
        return s_is_qualified_part (key, strlen (key));
    return s_is_dns_subdomain (key, (size_t) (slash - key)) && s_is_qualified_part (slash + 1, strlen (slash + 1));
}

static bool
s_is_label_value (const char *value)
{
    return !*value || s_is_qualified_part (value, strlen (value));
}

/* Printable ASCII without spaces (images, servers), 1..max. */
static bool
s_is_token (const char *s, size_t max)
{
    size_t len = strlen (s);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f)
            return false;
    return true;
}

/* No control characters, at most max bytes (UTF-8 passes). */
static bool
s_is_text (const char *s, size_t max)
{
    size_t len = strlen (s);
    if (len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) s[i] < ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* --- JSON fields ---------------------------------------------------------------------- */

/* Refuses any key of `obj` not in the NULL-terminated `known`. */
static int
s_check_keys (parse_ctx_t *ctx, const char *where, json_t *obj, const char *const *known)
{
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp (*k, key) == 0;
        if (!ok)
            return s_field_fail (ctx, where, "unknown field \"%.64s\"", key);
    }
    return 0;
}

/* An optional string field; *out is a copy ("" or `def` when absent or null). */
static int
s_get_string (parse_ctx_t *ctx, json_t *obj, const char *key, const char *field, const char *def, char **out)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v)) {
        *out = orr_strdup (def);
        return 0;
    }
    if (!json_is_string (v))
        return s_field_fail (ctx, field, "must be a string");
    if (strlen (json_string_value (v)) != json_string_length (v))
        return s_field_fail (ctx, field, "must not contain NUL");
    *out = orr_strdup (json_string_value (v));
    return 0;
}

/* An optional integer field in [min, max]; `def` when absent or null. */
static int
s_get_int (parse_ctx_t *ctx, json_t *obj, const char *key, const char *field, int64_t min, int64_t max, int64_t def,
           int64_t *out)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max)
        return s_field_fail (ctx, field, "must be a whole number from %" PRId64 " to %" PRId64, min, max);
    *out = json_integer_value (v);
    return 0;
}

/* Memory: a JSON number of bytes (a fraction is truncated, as JupyterHub does) or text. */
static int
s_get_memory (parse_ctx_t *ctx, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get (obj, key);
    char why[256];
    if (!v || json_is_null (v))
        return 0;
    if (json_is_integer (v) || json_is_real (v)) {
        double d = json_number_value (v);
        if (d < 0 || d > (double) SPAWNER_MEMORY_BYTES_MAX)
            return s_field_fail (ctx, key, "must be from 0 to %" PRId64 " bytes", SPAWNER_MEMORY_BYTES_MAX);
        *out = json_is_integer (v) ? json_integer_value (v) : (int64_t) d;
        return 0;
    }
    if (!json_is_string (v))
        return s_field_fail (ctx, key, "must be a number of bytes or a string such as \"512M\" or \"1Gi\"");
    if (spawner_parse_memory (json_string_value (v), out, why, sizeof why) < 0)
        return s_field_fail (ctx, key, "%s", why);
    return 0;
}

/* CPU: a JSON number of cores or text ("0.5", "500m"). */
static int
s_get_cpu (parse_ctx_t *ctx, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get (obj, key);
    char why[256];
    if (!v || json_is_null (v))
        return 0;
    if (json_is_integer (v) || json_is_real (v)) {
        double cores = json_number_value (v);
        if (cores < 0 || cores > (double) (SPAWNER_CPU_MILLIS_MAX / 1000))
            return s_field_fail (ctx, key, "must be from 0 to %" PRId64 " cores", SPAWNER_CPU_MILLIS_MAX / 1000);
        /* 0.3 * 1000 is 300.00000000000006 in binary: a hair over a whole millicore is
         * that millicore, anything more is rounded up as Kubernetes does. */
        double m = cores * 1000.0;
        double r = nearbyint (m);
        *out = fabs (m - r) < 1e-6 ? (int64_t) r : (int64_t) ceil (m);
        return 0;
    }
    if (!json_is_string (v))
        return s_field_fail (ctx, key, "must be a number of cores or a string such as \"0.5\" or \"500m\"");
    if (spawner_parse_cpu (json_string_value (v), out, why, sizeof why) < 0)
        return s_field_fail (ctx, key, "%s", why);
    return 0;
}

/* An object of string → string: node_selector, labels (values checked as label values)
 * or annotations (any text value). */
static int
s_get_labels (parse_ctx_t *ctx, json_t *obj, const char *key, const char *field, bool annotations,
              spawner_labels_t *out)
{
    json_t *v = json_object_get (obj, key);
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_object (v))
        return s_field_fail (ctx, field, "must be an object of strings");
    if (json_object_size (v) > SPAWNER_LABELS_MAX)
        return s_field_fail (ctx, field, "at most %d entries", SPAWNER_LABELS_MAX);
    out->items = orr_zalloc ((json_object_size (v) + 1) * sizeof *out->items);
    const char *k;
    json_t *value;
    json_object_foreach (v, k, value) {
        if (!s_is_label_key (k))
            return s_field_fail (ctx, field,
                                 "key \"%.64s\" is not a Kubernetes label key ([prefix/]name: name of 1-63 "
                                 "alphanumerics, '-', '_', '.', prefix a DNS subdomain)",
                                 k);
        if (!json_is_string (value))
            return s_field_fail (ctx, field, "the value of \"%.64s\" must be a string", k);
        const char *text = json_string_value (value);
        if (annotations ? !s_is_text (text, SPAWNER_ANNOTATION_VALUE_MAX) : !s_is_label_value (text))
            return s_field_fail (ctx, field,
                                 annotations ? "the value of \"%.64s\" must be text of at most 4096 bytes"
                                             : "the value of \"%.64s\" is not a Kubernetes label value (0-63 "
                                               "alphanumerics, '-', '_', '.', starting and ending alphanumeric)",
                                 k);
        out->items[out->count].key = orr_strdup (k);
        out->items[out->count].value = orr_strdup (text);
        out->count++;
    }
    return 0;
}

static void
s_labels_clear (spawner_labels_t *labels)
{
    for (size_t i = 0; i < labels->count; i++) {
        free (labels->items[i].key);
        free (labels->items[i].value);
    }
    free (labels->items);
    labels->items = NULL;
    labels->count = 0;
}

/* --- the parts of a profile ----------------------------------------------------------- */

static int
s_parse_tolerations (parse_ctx_t *ctx, json_t *obj, spawner_profile_t *p)
{
    static const char *const known[] = { "key", "operator", "value", "effect", NULL };
    json_t *v = json_object_get (obj, "tolerations");
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_array (v))
        return s_field_fail (ctx, "tolerations", "must be an array");
    if (json_array_size (v) > SPAWNER_TOLERATIONS_MAX)
        return s_field_fail (ctx, "tolerations", "at most %d", SPAWNER_TOLERATIONS_MAX);
    p->tolerations = orr_zalloc ((json_array_size (v) + 1) * sizeof *p->tolerations);
    size_t i;
    json_t *t;
    json_array_foreach (v, i, t) {
        char field[48];
        snprintf (field, sizeof field, "tolerations[%zu]", i);
        if (!json_is_object (t))
            return s_field_fail (ctx, field, "must be an object");
        if (s_check_keys (ctx, field, t, known) < 0)
            return -1;
        spawner_toleration_t *tol = &p->tolerations[p->ntolerations++];
        if (s_get_string (ctx, t, "key", field, "", &tol->key) < 0
            || s_get_string (ctx, t, "operator", field, "Equal", &tol->operator_) < 0
            || s_get_string (ctx, t, "value", field, "", &tol->value) < 0
            || s_get_string (ctx, t, "effect", field, "", &tol->effect) < 0)
            return -1;
        bool exists = strcmp (tol->operator_, "Exists") == 0;
        if (!exists && strcmp (tol->operator_, "Equal") != 0)
            return s_field_fail (ctx, field, "operator must be \"Equal\" or \"Exists\"");
        if (*tol->key && !s_is_label_key (tol->key))
            return s_field_fail (ctx, field, "key \"%.64s\" is not a Kubernetes label key", tol->key);
        if (!exists && !*tol->key)
            return s_field_fail (ctx, field, "operator Equal needs a key (an empty key with Exists tolerates every taint)");
        if (exists && *tol->value)
            return s_field_fail (ctx, field, "operator Exists takes no value");
        if (!s_is_label_value (tol->value))
            return s_field_fail (ctx, field, "value \"%.64s\" is not a Kubernetes label value", tol->value);
        if (*tol->effect && strcmp (tol->effect, "NoSchedule") != 0 && strcmp (tol->effect, "PreferNoSchedule") != 0)
            return s_field_fail (ctx, field,
                                 "effect must be \"\" (any), \"NoSchedule\" or \"PreferNoSchedule\" (the scheduler "
                                 "places with these; it has no NoExecute)");
    }
    return 0;
}

/* The placeholders a sub_path may use; anything else in braces is refused. */
static bool
s_sub_path_ok (const char *tpl)
{
    static const char *const names[] = { "{username}", "{servername}", "{user_server}", NULL };
    if (!*tpl || *tpl == '/' || strlen (tpl) > SPAWNER_TEXT_MAX)
        return false;
    for (const char *p = tpl; *p; p++) {
        if ((unsigned char) *p < ' ' || *p == 0x7f || *p == '}')
            return false;
        if (*p == '{') {
            const char *const *n = names;
            while (*n && strncmp (p, *n, strlen (*n)) != 0)
                n++;
            if (!*n)
                return false;
            p += strlen (*n) - 1;
        }
    }
    /* no ".." component */
    for (const char *p = tpl; (p = strstr (p, "..")); p += 2)
        if ((p == tpl || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return false;
    return true;
}

static int
s_parse_storage (parse_ctx_t *ctx, json_t *k8s, spawner_storage_t *st)
{
    static const char *const pvc_keys[] = { "type", "capacity", "storage_class", "access_modes", NULL };
    static const char *const nfs_keys[] = { "type", "server", "path", "sub_path", NULL };
    static const char *const none_keys[] = { "type", NULL };
    static const char *const modes[] = { "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod", NULL };
    const char *field = "kubernetes.storage";
    st->storage_class = orr_strdup ("");
    st->server = orr_strdup ("");
    st->path = orr_strdup ("");
    st->sub_path = orr_strdup ("");
    json_t *v = json_object_get (k8s, "storage");
    if (!v || json_is_null (v))
        return 0;
    if (!json_is_object (v))
        return s_field_fail (ctx, field, "must be an object with \"type\": \"pvc\", \"nfs\" or \"none\"");
    const char *type = json_string_value (json_object_get (v, "type"));
    if (!type)
        return s_field_fail (ctx, field, "\"type\" must be \"pvc\", \"nfs\" or \"none\"");
    if (strcmp (type, "none") == 0)
        return s_check_keys (ctx, field, v, none_keys);
    if (strcmp (type, "pvc") == 0) {
        st->type = SPAWNER_STORAGE_PVC;
        if (s_check_keys (ctx, field, v, pvc_keys) < 0)
            return -1;
        st->capacity_bytes = PVC_CAPACITY_DEFAULT;
        json_t *cap = json_object_get (v, "capacity");
        if (cap && !json_is_null (cap)) {
            char why[256];
            if (!json_is_string (cap) || spawner_parse_memory (json_string_value (cap), &st->capacity_bytes, why, sizeof why) < 0)
                return s_field_fail (ctx, "kubernetes.storage.capacity", "%s",
                                     json_is_string (cap) ? why : "must be a string such as \"10Gi\"");
            if (st->capacity_bytes == 0)
                return s_field_fail (ctx, "kubernetes.storage.capacity", "must be more than 0");
        }
        free (st->storage_class);
        st->storage_class = NULL;
        if (s_get_string (ctx, v, "storage_class", "kubernetes.storage.storage_class", "", &st->storage_class) < 0)
            return -1;
        if (*st->storage_class && !s_is_dns_subdomain (st->storage_class, strlen (st->storage_class)))
            return s_field_fail (ctx, "kubernetes.storage.storage_class", "\"%.64s\" is not a DNS subdomain name",
                                 st->storage_class);
        json_t *am = json_object_get (v, "access_modes");
        size_t n = am && !json_is_null (am) ? json_array_size (am) : 1;
        if (am && !json_is_null (am) && (!json_is_array (am) || n == 0 || n > 4))
            return s_field_fail (ctx, "kubernetes.storage.access_modes", "must be an array of 1 to 4 access modes");
        st->access_modes = orr_zalloc ((n + 1) * sizeof *st->access_modes);
        if (!am || json_is_null (am)) {
            st->access_modes[st->naccess_modes++] = orr_strdup ("ReadWriteOnce");
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            const char *mode = json_string_value (json_array_get (am, i));
            const char *const *m = modes;
            while (mode && *m && strcmp (*m, mode) != 0)
                m++;
            if (!mode || !*m)
                return s_field_fail (ctx, "kubernetes.storage.access_modes",
                                     "item %zu must be ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod", i);
            for (size_t j = 0; j < st->naccess_modes; j++)
                if (strcmp (st->access_modes[j], mode) == 0)
                    return s_field_fail (ctx, "kubernetes.storage.access_modes", "\"%s\" is listed twice", mode);
            st->access_modes[st->naccess_modes++] = orr_strdup (mode);
        }
        return 0;
    }
    if (strcmp (type, "nfs") == 0) {
        st->type = SPAWNER_STORAGE_NFS;
        if (s_check_keys (ctx, field, v, nfs_keys) < 0)
            return -1;
        free (st->server);
        free (st->path);
        free (st->sub_path);
        st->server = st->path = st->sub_path = NULL;
        if (s_get_string (ctx, v, "server", "kubernetes.storage.server", "", &st->server) < 0
            || s_get_string (ctx, v, "path", "kubernetes.storage.path", "", &st->path) < 0
            || s_get_string (ctx, v, "sub_path", "kubernetes.storage.sub_path", SUB_PATH_DEFAULT, &st->sub_path) < 0)
            return -1;
        if (!s_is_token (st->server, DNS_SUBDOMAIN_MAX))
            return s_field_fail (ctx, "kubernetes.storage.server", "an NFS server's name or address is required");
        if (st->path[0] != '/' || !s_is_token (st->path, SPAWNER_TEXT_MAX))
            return s_field_fail (ctx, "kubernetes.storage.path", "an absolute export path without spaces is required");
        if (!s_sub_path_ok (st->sub_path))
            return s_field_fail (ctx, "kubernetes.storage.sub_path",
                                 "a relative path without \"..\", using only {username}, {servername} and {user_server}");
        return 0;
    }
    return s_field_fail (ctx, field, "\"type\" must be \"pvc\", \"nfs\" or \"none\", not \"%.32s\"", type);
}

static int
s_parse_kubernetes (parse_ctx_t *ctx, json_t *obj, spawner_k8s_profile_t *k)
{
    static const char *const known[] = { "image", "image_pull_policy", "uid", "gid", "fs_gid", "labels",
                                         "annotations", "service_account", "storage", NULL };
    static const char *const reserved[] = { "app", "component", "hub.jupyter.org/username",
                                            "hub.jupyter.org/servername", NULL };
    k->uid = k->gid = k->fs_gid = -1;
    json_t *v = json_object_get (obj, "kubernetes");
    if (v && !json_is_null (v) && !json_is_object (v))
        return s_field_fail (ctx, "kubernetes", "must be an object");
    if (!v || json_is_null (v))
        v = NULL;
    json_t *empty = json_object ();
    json_t *src = v ? v : empty;
    int rc = -1;
    if (v && s_check_keys (ctx, "kubernetes", v, known) < 0)
        goto done;
    if (s_get_string (ctx, src, "image", "kubernetes.image", "", &k->image) < 0
        || s_get_string (ctx, src, "image_pull_policy", "kubernetes.image_pull_policy", "", &k->image_pull_policy) < 0
        || s_get_string (ctx, src, "service_account", "kubernetes.service_account", "", &k->service_account) < 0
        || s_get_int (ctx, src, "uid", "kubernetes.uid", 0, SPAWNER_ID_MAX, -1, &k->uid) < 0
        || s_get_int (ctx, src, "gid", "kubernetes.gid", 0, SPAWNER_ID_MAX, -1, &k->gid) < 0
        || s_get_int (ctx, src, "fs_gid", "kubernetes.fs_gid", 0, SPAWNER_ID_MAX, -1, &k->fs_gid) < 0)
        goto done;
    if (*k->image && !s_is_token (k->image, SPAWNER_TEXT_MAX)) {
        s_field_fail (ctx, "kubernetes.image", "must be an image reference without spaces");
        goto done;
    }
    if (*k->image_pull_policy && strcmp (k->image_pull_policy, "Always") != 0
        && strcmp (k->image_pull_policy, "IfNotPresent") != 0 && strcmp (k->image_pull_policy, "Never") != 0) {
        s_field_fail (ctx, "kubernetes.image_pull_policy", "must be \"Always\", \"IfNotPresent\" or \"Never\"");
        goto done;
    }
    if (*k->service_account && !s_is_dns_subdomain (k->service_account, strlen (k->service_account))) {
        s_field_fail (ctx, "kubernetes.service_account", "\"%.64s\" is not a DNS subdomain name", k->service_account);
        goto done;
    }
    if (s_get_labels (ctx, src, "labels", "kubernetes.labels", false, &k->labels) < 0
        || s_get_labels (ctx, src, "annotations", "kubernetes.annotations", true, &k->annotations) < 0)
        goto done;
    for (size_t i = 0; i < k->labels.count; i++)
        for (const char *const *r = reserved; *r; r++)
            if (strcmp (k->labels.items[i].key, *r) == 0) {
                s_field_fail (ctx, "kubernetes.labels", "\"%s\" is set by the spawner (the watch selects pods by it)", *r);
                goto done;
            }
    rc = s_parse_storage (ctx, src, &k->storage);
done:
    json_decref (empty);
    return rc;
}

static int
s_parse_profile (parse_ctx_t *ctx, json_t *obj, spawner_profile_t *p)
{
    static const char *const known[] = { "slug", "display_name", "description", "default", "cpu_guarantee",
                                         "cpu_limit", "mem_guarantee", "mem_limit", "gpus", "pids_limit",
                                         "scheduling_profile", "node_selector", "tolerations", "kubernetes", NULL };
    if (!json_is_object (obj))
        return s_field_fail (ctx, "", "must be an object");
    if (s_check_keys (ctx, "", obj, known) < 0)
        return -1;
    json_t *slug = json_object_get (obj, "slug");
    if (!json_is_string (slug))
        return s_field_fail (ctx, "slug", "required, a string");
    p->slug = orr_strdup (json_string_value (slug));
    if (!s_is_dns_label (p->slug, strlen (p->slug)))
        return s_field_fail (ctx, "slug", "\"%.64s\" must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ and be at most %d long",
                             p->slug, SPAWNER_SLUG_MAX);
    if (s_get_string (ctx, obj, "display_name", "display_name", p->slug, &p->display_name) < 0
        || s_get_string (ctx, obj, "description", "description", "", &p->description) < 0
        || s_get_string (ctx, obj, "scheduling_profile", "scheduling_profile", "", &p->scheduling_profile) < 0)
        return -1;
    if (!s_is_text (p->display_name, SPAWNER_TEXT_MAX))
        return s_field_fail (ctx, "display_name", "text of at most %d bytes", SPAWNER_TEXT_MAX);
    if (!s_is_text (p->description, SPAWNER_TEXT_MAX))
        return s_field_fail (ctx, "description", "text of at most %d bytes", SPAWNER_TEXT_MAX);
    if (*p->scheduling_profile && !s_is_token (p->scheduling_profile, 63))
        return s_field_fail (ctx, "scheduling_profile", "a profile name of 1 to 63 bytes without spaces");
    json_t *def = json_object_get (obj, "default");
    if (def && !json_is_null (def) && !json_is_boolean (def))
        return s_field_fail (ctx, "default", "must be true or false");
    p->is_default = json_is_true (def);
    if (s_get_cpu (ctx, obj, "cpu_guarantee", &p->guarantees.cpu_millis) < 0
        || s_get_cpu (ctx, obj, "cpu_limit", &p->limits.cpu_millis) < 0
        || s_get_memory (ctx, obj, "mem_guarantee", &p->guarantees.memory_bytes) < 0
        || s_get_memory (ctx, obj, "mem_limit", &p->limits.memory_bytes) < 0
        || s_get_int (ctx, obj, "gpus", "gpus", 0, SPAWNER_GPUS_MAX, 0, &p->guarantees.gpus) < 0
        || s_get_int (ctx, obj, "pids_limit", "pids_limit", 0, SPAWNER_PIDS_MAX, 0, &p->pids_limit) < 0)
        return -1;
    p->limits.gpus = p->guarantees.gpus;
    if (p->limits.cpu_millis && p->limits.cpu_millis < p->guarantees.cpu_millis)
        return s_field_fail (ctx, "cpu_limit", "%" PRId64 "m is below cpu_guarantee (%" PRId64 "m)",
                             p->limits.cpu_millis, p->guarantees.cpu_millis);
    if (p->limits.memory_bytes && p->limits.memory_bytes < p->guarantees.memory_bytes)
        return s_field_fail (ctx, "mem_limit", "%" PRId64 " bytes is below mem_guarantee (%" PRId64 " bytes)",
                             p->limits.memory_bytes, p->guarantees.memory_bytes);
    if (s_get_labels (ctx, obj, "node_selector", "node_selector", false, &p->node_selector) < 0)
        return -1;
    if (s_parse_tolerations (ctx, obj, p) < 0)
        return -1;
    return s_parse_kubernetes (ctx, obj, &p->kubernetes);
}

static void
s_profile_clear (spawner_profile_t *p)
{
    free (p->slug);
    free (p->display_name);
    free (p->description);
    free (p->scheduling_profile);
    s_labels_clear (&p->node_selector);
    for (size_t i = 0; i < p->ntolerations; i++) {
        free (p->tolerations[i].key);
        free (p->tolerations[i].operator_);
        free (p->tolerations[i].value);
        free (p->tolerations[i].effect);
    }
    free (p->tolerations);
    spawner_k8s_profile_t *k = &p->kubernetes;
    free (k->image);
    free (k->image_pull_policy);
    free (k->service_account);
    s_labels_clear (&k->labels);
    s_labels_clear (&k->annotations);
    spawner_storage_t *st = &k->storage;
    for (size_t i = 0; i < st->naccess_modes; i++)
        free (st->access_modes[i]);
    free (st->access_modes);
    free (st->storage_class);
    free (st->server);
    free (st->path);
    free (st->sub_path);
    memset (p, 0, sizeof *p);
}

/* --- the list ------------------------------------------------------------------------- */

static bool
s_blank (const char *s)
{
    while (s && isspace ((unsigned char) *s))
        s++;
    return !s || !*s;
}

spawner_profiles_t *
spawner_profiles_new (const char *json, char *err, size_t errlen)
{
    spawner_profiles_t *self = orr_zalloc (sizeof *self);
    parse_ctx_t ctx = { err, errlen, 0 };
    json_t *doc = NULL;
    if (!s_blank (json)) {
        json_error_t jerr;
        doc = json_loads (json, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
            s_fail (err, errlen, "SERVER_PROFILES: not JSON (line %d column %d: %s)", jerr.line, jerr.column, jerr.text);
            goto fail;
        }
        if (!json_is_array (doc)) {
            s_fail (err, errlen, "SERVER_PROFILES: must be a JSON array of profiles");
            goto fail;
        }
        if (json_array_size (doc) > SPAWNER_PROFILES_MAX) {
            s_fail (err, errlen, "SERVER_PROFILES: %zu profiles, at most %d", json_array_size (doc), SPAWNER_PROFILES_MAX);
            goto fail;
        }
    }
    if (!doc || json_array_size (doc) == 0) {
        /* the built-in profile: parsed from JSON like any other, so it has every default */
        json_decref (doc);
        doc = json_pack ("[{s:s, s:s}]", "slug", "default", "display_name", "Default");
    }
    self->profiles = orr_zalloc (json_array_size (doc) * sizeof *self->profiles);
    bool have_default = false;
    for (size_t i = 0; i < json_array_size (doc); i++) {
        ctx.index = i;
        spawner_profile_t *p = &self->profiles[i];
        self->count++;
        if (s_parse_profile (&ctx, json_array_get (doc, i), p) < 0)
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp (self->profiles[j].slug, p->slug) == 0) {
                s_field_fail (&ctx, "slug", "\"%s\" is also the slug of profile %zu", p->slug, j);
                goto fail;
            }
        if (p->is_default) {
            if (have_default) {
                s_field_fail (&ctx, "default", "profile %zu is the default already; only one may be",
                              self->default_index);
                goto fail;
            }
            have_default = true;
            self->default_index = i;
        }
    }
    if (!have_default) /* KubeSpawner's rule: no default marked, the first one is */
        self->profiles[0].is_default = true;
    json_decref (doc);
    return self;
fail:
    json_decref (doc);
    spawner_profiles_destroy (&self);
    return NULL;
}

void
spawner_profiles_destroy (spawner_profiles_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    spawner_profiles_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        s_profile_clear (&self->profiles[i]);
    free (self->profiles);
    free (self);
    *self_p = NULL;
}

size_t
spawner_profiles_count (const spawner_profiles_t *self)
{
    return self ? self->count : 0;
}

const spawner_profile_t *
spawner_profiles_at (const spawner_profiles_t *self, size_t i)
{
    return self && i < self->count ? &self->profiles[i] : NULL;
}

const spawner_profile_t *
spawner_profiles_find (const spawner_profiles_t *self, const char *slug)
{
    if (!self || self->count == 0)
        return NULL;
    if (!slug || !*slug)
        return &self->profiles[self->default_index];
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->profiles[i].slug, slug) == 0)
            return &self->profiles[i];
    return NULL;
}

const spawner_profile_t *
spawner_profiles_pick (const spawner_profiles_t *self, const char *user_options_json, char *err, size_t errlen)
{
    if (s_blank (user_options_json))
        return spawner_profiles_find (self, NULL);
    json_error_t jerr;
    json_t *options = json_loads (user_options_json, 0, &jerr);
    const spawner_profile_t *found = NULL;
    if (!json_is_object (options)) {
        s_fail (err, errlen, "user_options must be a JSON object, such as {\"profile\": \"%s\"}",
                spawner_profiles_find (self, NULL)->slug);
        goto done;
    }
    json_t *slug = json_object_get (options, "profile");
    if (slug && !json_is_null (slug) && !json_is_string (slug)) {
        s_fail (err, errlen, "user_options.profile must be a string: the slug of a profile");
        goto done;
    }
    found = spawner_profiles_find (self, json_string_value (slug));
    if (!found) {
        /* "unknown profile "x"; the profiles are: a, b, c" (as many as fit) */
        size_t used = 0;
        int n = snprintf (err, errlen, "unknown profile \"%.64s\"; the profiles are: ", json_string_value (slug));
        used = n > 0 && (size_t) n < errlen ? (size_t) n : errlen;
        for (size_t i = 0; i < self->count && used + 1 < errlen; i++) {
            n = snprintf (err + used, errlen - used, "%s%s", i ? ", " : "", self->profiles[i].slug);
            used += n > 0 && (size_t) n < errlen - used ? (size_t) n : errlen - used - 1;
        }
    }
done:
    json_decref (options);
    return found;
}

/* --- environment ---------------------------------------------------------------------- */

/* Millicores as Python's str(float) of the cores: 1000 → "1.0", 1500 → "1.5", 250 → "0.25". */
static void
s_cores_text (int64_t millis, char *out, size_t outlen)
{
    int64_t whole = millis / 1000, frac = millis % 1000;
    if (frac == 0) {
        snprintf (out, outlen, "%" PRId64 ".0", whole);
        return;
    }
    char digits[4] = { (char) ('0' + frac / 100), (char) ('0' + frac / 10 % 10), (char) ('0' + frac % 10), '\0' };
    for (int i = 2; i > 0 && digits[i] == '0'; i--)
        digits[i] = '\0';
    snprintf (out, outlen, "%" PRId64 ".%s", whole, digits);
}

void
spawner_profile_env (const spawner_profile_t *profile, spawner_env_fn *fn, void *ctx)
{
    char text[32];
    if (profile->limits.memory_bytes) {
        snprintf (text, sizeof text, "%" PRId64, profile->limits.memory_bytes);
        fn (ctx, "MEM_LIMIT", text);
    }
    if (profile->guarantees.memory_bytes) {
        snprintf (text, sizeof text, "%" PRId64, profile->guarantees.memory_bytes);
        fn (ctx, "MEM_GUARANTEE", text);
    }
    if (profile->limits.cpu_millis) {
        s_cores_text (profile->limits.cpu_millis, text, sizeof text);
        fn (ctx, "CPU_LIMIT", text);
    }
    if (profile->guarantees.cpu_millis) {
        s_cores_text (profile->guarantees.cpu_millis, text, sizeof text);
        fn (ctx, "CPU_GUARANTEE", text);
    }
}
