/*  k8s_config: the in-cluster service-account configuration of the Kubernetes backend.
 *
 *  It owns what every Kubernetes API call needs besides the call itself: the server's URL,
 *  the namespace, the CA file and the bearer token. Everything is checked once at start
 *  (a spawner that cannot reach the API should refuse to start, not fail every spawn),
 *  with messages naming the setting. Only the token changes later: the kubelet rotates
 *  projected service-account tokens by swapping the file (a symlink flip), so the token is
 *  re-read when the file's identity, size or mtime changes, and at least every minute.
 *  One mutex guards it because the watch thread and the spawner's loop both ask for it.
 */
#include "k8s_config.h"

#include "orr_util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const orr_setting_t spawner_k8s_settings[] = {
    SPAWNER_K8S_SETTINGS,
    { NULL, NULL, NULL },
};

#define K8S_DEFAULT_IMAGE "jupyterhub/singleuser:3.0"
#define K8S_DEFAULT_TIMEOUT_MS 10000
#define K8S_DEFAULT_WATCH_TIMEOUT_S 300
#define K8S_NAMESPACE_MAX 63

struct k8s_config_t {
    char *api_url;
    char *namespace_;
    char *ca_file;                   /* NULL = system CAs */
    char *token_file;                /* NULL = no token */
    char *image;
    long timeout_ms;
    long watch_timeout_s;
    pthread_mutex_t token_lock;      /* guards the four fields below */
    char *token;                     /* the last token read */
    struct stat token_stat;          /* of the file it came from */
    int64_t token_read_ms;           /* monotonic time of that read */
};

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

/* The whole file, surrounding white space trimmed, at most max bytes. NULL with the
 * reason in err. */
static char *
s_read_trimmed (const char *path, size_t max, struct stat *st, char *err, size_t errlen)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        s_fail (err, errlen, "%s: %s", path, strerror (errno));
        return NULL;
    }
    if (st && fstat (fileno (f), st) != 0)
        memset (st, 0, sizeof *st);
    char *text = orr_zalloc (max + 2);
    size_t n = fread (text, 1, max + 1, f);
    bool failed = ferror (f);
    fclose (f);
    if (failed || n > max) {
        s_fail (err, errlen, "%s: %s", path, failed ? "read error" : "too large");
        free (text);
        return NULL;
    }
    text[n] = '\0';
    char *trimmed = orr_strdup (orr_strtrim (text));
    free (text);
    return trimmed;
}

static bool
s_is_dns_label (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > K8S_NAMESPACE_MAX || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool
s_is_printable_token (const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f)
            return false;
    return true;
}

/* The API URL: the option, else the in-cluster service's environment. */
static char *
s_api_url (const char *option, char *err, size_t errlen)
{
    if (option && *option) {
        if ((strncmp (option, "http://", 7) != 0 && strncmp (option, "https://", 8) != 0) || !s_is_printable_token (option)
            || strlen (option) > 2048) {
            s_fail (err, errlen, "K8S_API_URL \"%.128s\": an http:// or https:// URL without spaces", option);
            return NULL;
        }
        char *url = orr_strdup (option);
        size_t len = strlen (url);
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
        return url;
    }
    const char *host = getenv ("KUBERNETES_SERVICE_HOST");
    const char *port = getenv ("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        s_fail (err, errlen,
                "not in a Kubernetes cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset and "
                "K8S_API_URL is not set");
        return NULL;
    }
    long p;
    if (orr_parse_long (port, &p) < 0 || p < 1 || p > 65535 || !s_is_printable_token (host) || strlen (host) > 253) {
        s_fail (err, errlen, "KUBERNETES_SERVICE_HOST \"%.64s\" / KUBERNETES_SERVICE_PORT \"%.16s\" are not a host and port",
                host, port);
        return NULL;
    }
    /* an IPv6 address goes in brackets */
    return strchr (host, ':') ? orr_sprintf ("https://[%s]:%ld", host, p) : orr_sprintf ("https://%s:%ld", host, p);
}

k8s_config_t *
k8s_config_new (const k8s_config_options_t *options, char *err, size_t errlen)
{
    k8s_config_options_t none = { 0 };
    const k8s_config_options_t *o = options ? options : &none;
    k8s_config_t *self = orr_zalloc (sizeof *self);
    pthread_mutex_init (&self->token_lock, NULL);
    char why[512];

    self->api_url = s_api_url (o->api_url, err, errlen);
    if (!self->api_url)
        goto fail;
    self->timeout_ms = o->timeout_ms ? o->timeout_ms : K8S_DEFAULT_TIMEOUT_MS;
    if (self->timeout_ms < K8S_TIMEOUT_MS_MIN || self->timeout_ms > K8S_TIMEOUT_MS_MAX) {
        s_fail (err, errlen, "K8S_TIMEOUT_MS %ld: from %d to %d", self->timeout_ms, K8S_TIMEOUT_MS_MIN, K8S_TIMEOUT_MS_MAX);
        goto fail;
    }
    self->watch_timeout_s = o->watch_timeout_s ? o->watch_timeout_s : K8S_DEFAULT_WATCH_TIMEOUT_S;
    if (self->watch_timeout_s < K8S_WATCH_TIMEOUT_S_MIN || self->watch_timeout_s > K8S_WATCH_TIMEOUT_S_MAX) {
        s_fail (err, errlen, "K8S_WATCH_TIMEOUT_S %ld: from %d to %d", self->watch_timeout_s, K8S_WATCH_TIMEOUT_S_MIN,
                K8S_WATCH_TIMEOUT_S_MAX);
        goto fail;
    }
    self->image = orr_strdup (o->image && *o->image ? o->image : K8S_DEFAULT_IMAGE);
    if (!s_is_printable_token (self->image)) {
        s_fail (err, errlen, "K8S_IMAGE \"%.128s\": an image reference without spaces", self->image);
        goto fail;
    }

    if (o->namespace_ && *o->namespace_)
        self->namespace_ = orr_strdup (o->namespace_);
    else {
        const char *file = o->namespace_file ? o->namespace_file : K8S_SA_DIR "/namespace";
        self->namespace_ = s_read_trimmed (file, 256, NULL, why, sizeof why);
        if (!self->namespace_) {
            s_fail (err, errlen, "K8S_NAMESPACE is unset and K8S_NAMESPACE_FILE cannot be read: %s", why);
            goto fail;
        }
    }
    if (!s_is_dns_label (self->namespace_)) {
        s_fail (err, errlen, "namespace \"%.64s\" is not a DNS label (1-63 of a-z, 0-9, '-')", self->namespace_);
        goto fail;
    }

    const char *token_file = o->token_file ? o->token_file : K8S_SA_DIR "/token";
    if (*token_file) {
        self->token_file = orr_strdup (token_file);
        self->token = s_read_trimmed (token_file, K8S_TOKEN_MAX, &self->token_stat, why, sizeof why);
        if (!self->token) {
            s_fail (err, errlen, "K8S_TOKEN_FILE: %s", why);
            goto fail;
        }
        if (!*self->token || !s_is_printable_token (self->token)) {
            s_fail (err, errlen, "K8S_TOKEN_FILE %s: empty, or not a token (white space or control characters)",
                    token_file);
            goto fail;
        }
        self->token_read_ms = orr_mono_ms ();
    }

    const char *ca_file = o->ca_file ? o->ca_file : K8S_SA_DIR "/ca.crt";
    if (*ca_file) {
        self->ca_file = orr_strdup (ca_file);
        if (strncmp (self->api_url, "https://", 8) == 0) {
            FILE *f = fopen (ca_file, "r");
            if (!f) {
                s_fail (err, errlen, "K8S_CA_FILE %s: %s (set it empty to trust the system's CAs)", ca_file,
                        strerror (errno));
                goto fail;
            }
            fclose (f);
        }
    }
    return self;
fail:
    k8s_config_destroy (&self);
    return NULL;
}

k8s_config_t *
k8s_config_from_settings (orr_config_t *config, char *err, size_t errlen)
{
    k8s_config_options_t o = {
        .api_url = orr_config_get (config, "K8S_API_URL"),
        .token_file = orr_config_get (config, "K8S_TOKEN_FILE"),
        .ca_file = orr_config_get (config, "K8S_CA_FILE"),
        .namespace_ = orr_config_get (config, "K8S_NAMESPACE"),
        .namespace_file = orr_config_get (config, "K8S_NAMESPACE_FILE"),
        .image = orr_config_get (config, "K8S_IMAGE"),
        .timeout_ms = orr_config_int (config, "K8S_TIMEOUT_MS"),
        .watch_timeout_s = orr_config_int (config, "K8S_WATCH_TIMEOUT_S"),
    };
    /* an unset file setting is "none" here (the table's defaults are the in-cluster paths) */
    if (!o.token_file)
        o.token_file = "";
    if (!o.ca_file)
        o.ca_file = "";
    if (!o.namespace_file)
        o.namespace_file = "";
    return k8s_config_new (&o, err, errlen);
}

void
k8s_config_destroy (k8s_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    k8s_config_t *self = *self_p;
    free (self->api_url);
    free (self->namespace_);
    free (self->ca_file);
    free (self->token_file);
    free (self->image);
    free (self->token);
    pthread_mutex_destroy (&self->token_lock);
    free (self);
    *self_p = NULL;
}

const char *
k8s_config_api_url (const k8s_config_t *self)
{
    return self->api_url;
}

const char *
k8s_config_namespace (const k8s_config_t *self)
{
    return self->namespace_;
}

const char *
k8s_config_ca_file (const k8s_config_t *self)
{
    return self->ca_file;
}

const char *
k8s_config_token_file (const k8s_config_t *self)
{
    return self->token_file;
}

const char *
k8s_config_image (const k8s_config_t *self)
{
    return self->image;
}

long
k8s_config_timeout_ms (const k8s_config_t *self)
{
    return self->timeout_ms;
}

long
k8s_config_watch_timeout_s (const k8s_config_t *self)
{
    return self->watch_timeout_s;
}

static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int
k8s_config_auth_header (k8s_config_t *self, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!self->token_file) {
        if (outlen)
            out[0] = '\0';
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock (&self->token_lock);
    struct stat now_stat;
    bool changed = stat (self->token_file, &now_stat) != 0 || !s_same_file (&now_stat, &self->token_stat);
    if (changed || orr_mono_ms () - self->token_read_ms >= K8S_TOKEN_REREAD_MS) {
        char why[512];
        struct stat st;
        char *token = s_read_trimmed (self->token_file, K8S_TOKEN_MAX, &st, why, sizeof why);
        if (token && *token && s_is_printable_token (token)) {
            free (self->token);
            self->token = token;
            self->token_stat = st;
            self->token_read_ms = orr_mono_ms ();
        }
        else {
            s_fail (err, errlen, "K8S_TOKEN_FILE: %s", token ? "empty or not a token" : why);
            free (token);
            rc = -1;
        }
    }
    snprintf (out, outlen, "Authorization: Bearer %s", self->token);
    pthread_mutex_unlock (&self->token_lock);
    return rc;
}
