/*  gw_http: libmicrohttpd wiring for the gateway.
 *
 *  Design: MHD's epoll mode with a small thread pool (measured fastest here, see
 *  shared/reference/machine-probe.md §5). The access handler is two-phase: the first call
 *  for a request only allocates its state, later calls collect the body up to max_body,
 *  and the last one routes; answering on the first call would turn off keep-alive.
 *  The listening socket sets SO_REUSEPORT so several gateway replicas share one port and
 *  the kernel spreads connections over them.
 *
 *  Waiting without a thread: a handler may defer its answer (gw_request_defer) and have
 *  its connection suspended (MHD_ALLOW_SUSPEND_RESUME; gw_watch.c suspends and resumes);
 *  the request's state here then remembers what to call when MHD hands the request back,
 *  so a resumed request is answered by its own continuation rather than routed again.
 *
 *  Limits, each with its own answer: body > max_body -> 413 (JSON); connections beyond
 *  max_connections are refused by MHD; an idle or slow connection is closed after
 *  timeout_s; request headers beyond MHD's per-connection memory (32 KiB here) -> 431
 *  from MHD itself.
 */
#include "gw_http.h"
#include "orr_log.h"
#include "orr_util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_CONNECTION_MEMORY (32 * 1024)

struct gw_http_t {
    gw_http_opts_t opts;
    char *base_url;
    struct MHD_Daemon *daemon;
    gw_route_fn *route;
    void *ctx;
};

typedef struct {
    char *body;
    size_t len;
    bool too_large;
    /* a deferred answer (gw_request_defer) */
    gw_resume_fn *resume;
    void *resume_arg;
    void (*resume_free) (void *);
    gw_reply_capture_t *capture;  /* gw_request_capture */
} request_state_t;

static void
s_add_common_headers (struct MHD_Response *resp, bool api)
{
    MHD_add_response_header (resp, "X-JupyterHub-Version", "3.0.0");
    MHD_add_response_header (resp, "Access-Control-Allow-Headers", "accept, content-type, authorization");
    MHD_add_response_header (resp, "Content-Security-Policy",
                             api ? "frame-ancestors 'self'; report-uri /hub/security/csp-report; default-src 'none'"
                                 : "frame-ancestors 'self'; report-uri /hub/security/csp-report");
}

void
gw_response_common_headers (struct MHD_Response *resp, const gw_request_t *req)
{
    s_add_common_headers (resp, strncmp (req->path, "/hub/api", 8) == 0);
}

void
gw_request_defer (const gw_request_t *req, gw_resume_fn *resume, void *arg, void (*free_fn) (void *))
{
    request_state_t *state = req->state;
    if (state->resume_free && state->resume_arg && state->resume_arg != arg)
        state->resume_free (state->resume_arg);
    state->resume = resume;
    state->resume_arg = arg;
    state->resume_free = free_fn;
}

void
gw_request_capture (const gw_request_t *req, gw_reply_capture_t *capture)
{
    request_state_t *state = req->state;
    if (state)
        state->capture = capture;
}

/* Adds the headers every answer has and queues it; takes resp. */
static enum MHD_Result
s_queue (const gw_request_t *req, unsigned status, struct MHD_Response *resp, const char *content_type,
         const char *const *headers)
{
    if (!resp)
        return MHD_NO;
    s_add_common_headers (resp, strncmp (req->path, "/hub/api", 8) == 0);
    if (content_type)
        MHD_add_response_header (resp, "Content-Type", content_type);
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header (resp, headers[i], headers[i + 1]);
    enum MHD_Result rc = MHD_queue_response (req->conn, status, resp);
    MHD_destroy_response (resp);
    return rc;
}

enum MHD_Result
gw_reply_take (const gw_request_t *req, unsigned status, const char *content_type, char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free (body);
    return s_queue (req, status, resp, content_type, NULL);
}

enum MHD_Result
gw_reply_with (const gw_request_t *req, unsigned status, const char *content_type, const char *body, size_t len,
               const char *const *headers)
{
    request_state_t *state = req->state;
    if (state && state->capture && !state->capture->body && status == 200 && !headers && content_type
        && strcmp (content_type, "application/json") == 0) {
        state->capture->body = orr_zalloc (len + 1);
        memcpy (state->capture->body, body, len);
        state->capture->len = len;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer (len, (void *) body, MHD_RESPMEM_MUST_COPY);
    return s_queue (req, status, resp, content_type, headers);
}

enum MHD_Result
gw_reply (const gw_request_t *req, unsigned status, const char *content_type, const char *body, size_t len)
{
    return gw_reply_with (req, status, content_type, body, len, NULL);
}

enum MHD_Result
gw_reply_jsonv (const gw_request_t *req, unsigned status, json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT);
    json_decref (value);
    enum MHD_Result rc = gw_reply_json (req, status, text ? text : "null");
    free (text);
    return rc;
}

enum MHD_Result
gw_reply_errorf (const gw_request_t *req, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (msg, sizeof msg, fmt, ap);
    va_end (ap);
    return gw_reply_error (req, status, msg);
}

const char *
gw_arg (const gw_request_t *req, const char *name)
{
    return MHD_lookup_connection_value (req->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool
gw_arg_present (const gw_request_t *req, const char *name)
{
    const char *value;
    size_t len;
    return MHD_lookup_connection_value_n (req->conn, MHD_GET_ARGUMENT_KIND, name, strlen (name), &value, &len) == MHD_YES;
}

const char *
gw_header (const gw_request_t *req, const char *name)
{
    return MHD_lookup_connection_value (req->conn, MHD_HEADER_KIND, name);
}

const char *
gw_cookie (const gw_request_t *req, const char *name)
{
    return MHD_lookup_connection_value (req->conn, MHD_COOKIE_KIND, name);
}

typedef struct {
    const char *name;
    const char **values;
    size_t n;
} args_collect_t;

static enum MHD_Result
s_collect_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    args_collect_t *c = cls;
    if (key && value && strcmp (key, c->name) == 0 && c->n < 64) {
        c->values = orr_realloc (c->values, (c->n + 2) * sizeof (char *));
        c->values[c->n++] = value;
        c->values[c->n] = NULL;
    }
    return MHD_YES;
}

const char **
gw_args_all (const gw_request_t *req, const char *name)
{
    args_collect_t c = { name, orr_zalloc (sizeof (char *)), 0 };
    MHD_get_connection_values (req->conn, MHD_GET_ARGUMENT_KIND, s_collect_arg, &c);
    return c.values;
}

static int
s_hexval (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of a form-encoded value ('+' is a space, %XX a byte) into a new string;
 * *outlen gets the decoded length (which a decoded NUL makes differ from strlen). */
static char *
s_form_decode (const char *s, size_t n, size_t *outlen)
{
    char *out = orr_zalloc (n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n && s_hexval (s[i + 1]) >= 0
                 && s_hexval (s[i + 2]) >= 0) {
            out[o++] = (char) (s_hexval (s[i + 1]) * 16 + s_hexval (s[i + 2]));
            i += 2;
        }
        else
            out[o++] = s[i];
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

char *
gw_form_value (const gw_request_t *req, const char *name)
{
    const char *p = req->body, *end = req->body + req->body_len;
    size_t nlen = strlen (name);
    while (p < end) {
        const char *amp = memchr (p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr (p, '=', (size_t) (stop - p));
        if (eq && (size_t) (eq - p) == nlen && memcmp (p, name, nlen) == 0) {
            size_t len;
            char *value = s_form_decode (eq + 1, (size_t) (stop - eq - 1), &len);
            /* an encoded NUL would cut the value short in C ("alice%00x" -> "alice"):
             * such a field is refused as if absent */
            if (strlen (value) != len) {
                free (value);
                return NULL;
            }
            return value;
        }
        p = stop + 1;
    }
    return NULL;
}

/* Appends a percent-encoded copy of s to *out. */
static void
s_append_encoded (char **out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen (*out), add = 3 * strlen (s) + 1;
    *out = orr_realloc (*out, n + add);
    char *p = *out + n;
    for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr ("-._~", *c))
            *p++ = (char) *c;
        else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
}

typedef struct {
    char *out;
    const char *const *skip;
} query_build_t;

static enum MHD_Result
s_keep_arg (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    query_build_t *q = cls;
    char **out = &q->out;
    for (size_t i = 0; key && q->skip && q->skip[i]; i++)
        if (strcmp (key, q->skip[i]) == 0)
            return MHD_YES;
    if (!key)
        return MHD_YES;
    if (**out) {
        char *grown = orr_sprintf ("%s&", *out);
        free (*out);
        *out = grown;
    }
    s_append_encoded (out, key);
    if (value) {
        char *grown = orr_sprintf ("%s=", *out);
        free (*out);
        *out = grown;
        s_append_encoded (out, value);
    }
    return MHD_YES;
}

char *
gw_percent_encode (const char *s)
{
    char *out = orr_strdup ("");
    s_append_encoded (&out, s);
    return out;
}

char *
gw_query (const gw_request_t *req, const char *const *skip)
{
    query_build_t q = { orr_strdup (""), skip };
    MHD_get_connection_values (req->conn, MHD_GET_ARGUMENT_KIND, s_keep_arg, &q);
    return q.out;
}

void
gw_client_addr (const gw_request_t *req, char *out, size_t outlen)
{
    snprintf (out, outlen, "unknown");
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info && info->client_addr && info->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) info->client_addr;
        inet_ntop (AF_INET, &sin->sin_addr, out, (socklen_t) outlen);
    }
    const char *xff = gw_header (req, "X-Forwarded-For");
    if (xff && strcmp (out, "127.0.0.1") == 0) {
        /* the proxy appends the address it saw last */
        const char *last = strrchr (xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        if (*last && strlen (last) < outlen)
            snprintf (out, outlen, "%s", last);
    }
}

enum MHD_Result
gw_reply_json (const gw_request_t *req, unsigned status, const char *json_text)
{
    return gw_reply (req, status, "application/json", json_text, strlen (json_text));
}

enum MHD_Result
gw_reply_error (const gw_request_t *req, unsigned status, const char *message)
{
    json_t *j = json_pack ("{s:i, s:s}", "status", (int) status, "message", message);
    char *text = json_dumps (j, JSON_COMPACT);
    enum MHD_Result rc = gw_reply_json (req, status, text);
    free (text);
    json_decref (j);
    return rc;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_size, void **con_cls)
{
    gw_http_t *self = cls;
    request_state_t *state = *con_cls;
    if (!state) {
        *con_cls = orr_zalloc (sizeof (request_state_t));
        return MHD_YES;
    }
    if (*upload_size) {
        if (state->len + *upload_size > self->opts.max_body)
            state->too_large = true;
        else {
            state->body = orr_realloc (state->body, state->len + *upload_size + 1);
            memcpy (state->body + state->len, upload_data, *upload_size);
            state->len += *upload_size;
            state->body[state->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    gw_request_t req = { conn, method, url, state->body ? state->body : "", state->len, state };
    /* strip the base URL; anything outside it is not ours */
    size_t blen = strlen (self->base_url);
    char path[2048];
    if (strncmp (url, self->base_url, blen) == 0) {
        snprintf (path, sizeof path, "/%s", url + blen);
        req.path = path;
    }
    else {
        req.path = url;
        return gw_reply_error (&req, 404, "Not Found");
    }
    if (state->too_large) {
        char msg[96];
        snprintf (msg, sizeof msg, "Request body larger than %zu bytes", self->opts.max_body);
        return gw_reply_error (&req, 413, msg);
    }
    if (state->resume) {
        /* resumed after gw_request_defer: the deferred handler answers */
        gw_resume_fn *resume = state->resume;
        state->resume = NULL;
        return resume (state->resume_arg, &req);
    }
    if (strcmp (method, "OPTIONS") == 0)
        return gw_reply (&req, 200, NULL, "", 0);
    return self->route (self->ctx, &req);
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    request_state_t *state = *con_cls;
    if (state) {
        if (state->resume_free && state->resume_arg)
            state->resume_free (state->resume_arg);
        free (state->body);
        free (state);
        *con_cls = NULL;
    }
}

/* MHD's unescaper for the path and query arguments, except that "%00" stays as is: a
 * decoded NUL would silently cut a name short in C ("/users/alice%00x" would act on
 * "alice"); kept literal, it makes a name that matches nothing. */
static size_t
s_unescape (void *cls, struct MHD_Connection *conn, char *s)
{
    char *r = s, *w = s;
    while (*r) {
        if (r[0] == '%' && s_hexval (r[1]) >= 0 && s_hexval (r[2]) >= 0) {
            char b = (char) (s_hexval (r[1]) * 16 + s_hexval (r[2]));
            if (b != '\0') {
                *w++ = b;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t) (w - s);
}

gw_http_t *
gw_http_new (const gw_http_opts_t *opts, gw_route_fn *route, void *ctx)
{
    gw_http_t *self = orr_zalloc (sizeof *self);
    self->opts = *opts;
    const char *b = opts->base_url && *opts->base_url ? opts->base_url : "/";
    size_t n = strlen (b);
    self->base_url = orr_sprintf ("%s%s%s", b[0] == '/' ? "" : "/", b, b[n - 1] == '/' ? "" : "/");
    self->route = route;
    self->ctx = ctx;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) opts->port) };
    if (inet_pton (AF_INET, opts->ip, &sa.sin_addr) != 1) {
        orr_error ("gateway: bad listen address %s", opts->ip);
        gw_http_destroy (&self);
        return NULL;
    }
    self->daemon = MHD_start_daemon (
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, (uint16_t) opts->port, NULL, NULL, s_access, self,
        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE, opts->threads, MHD_OPTION_CONNECTION_LIMIT,
        opts->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, opts->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t) GW_CONNECTION_MEMORY, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_NOTIFY_COMPLETED,
        s_completed, self, MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, self, MHD_OPTION_END);
    if (!self->daemon) {
        orr_error ("gateway: cannot listen on %s:%d", opts->ip, opts->port);
        gw_http_destroy (&self);
        return NULL;
    }
    orr_info ("gateway listening on http://%s:%d%s", opts->ip, opts->port, self->base_url);
    return self;
}

void
gw_http_destroy (gw_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_http_t *self = *self_p;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    free (self->base_url);
    free (self);
    *self_p = NULL;
}
