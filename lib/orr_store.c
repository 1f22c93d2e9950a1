/*  orr_store: one blocking hiredis connection per thread, with safe reconnects.
 *
 *  Design. A store is a parsed URL plus at most one live redisContext. Connecting is lazy
 *  and happens at the top of every call that has no live connection, so a store can be
 *  made before Redis is up and survives any number of Redis restarts without being
 *  recreated. A hiredis context whose `err` is set can never be used again, so every
 *  failure frees the context (s_drop) and the next call starts afresh.
 *
 *  Two moments of failure are treated differently, because they differ in what Redis may
 *  have done:
 *   1. Before sending. A pooled connection goes stale when Redis restarts or kills idle
 *      clients; the kernel then already holds the FIN (or RST). s_ensure_connected polls the
 *      socket with a zero timeout before each command: a socket that is readable while we
 *      expect no reply is dead (or out of step), and is replaced. Nothing was sent, so this
 *      is always safe and is what makes "Redis restarted" invisible to callers.
 *   2. After sending. The command may or may not have run. Only the resending variants
 *      (orr_store_command/commandv, for reads and idempotent writes) reconnect and send the
 *      very same bytes once more; everything else reports the loss. A timeout (SO_RCVTIMEO
 *      via redisSetTimeout expires, read returns EAGAIN) is never resent: the server is
 *      up but slow, and resending would double both the wait and the work.
 *
 *  Commands are formatted to RESP once (redisvFormatCommand / redisFormatCommandArgv) and
 *  the resulting bytes are what is sent, so a resend needs no second va_list walk and
 *  sends exactly what the first attempt sent.
 *
 *  Pipelines append formatted commands into the context's output buffer (no I/O) and the
 *  flush writes them all and reads the replies. A pipeline is never replayed: on any loss
 *  part-way the replies read so far are freed and the caller sees -1.
 *
 *  Scripts carry their SHA1, computed locally once (czmq's zdigest), so they are immutable
 *  and shareable across threads and connections; NOSCRIPT (a restarted or flushed Redis)
 *  triggers one SCRIPT LOAD and one more EVALSHA. NOSCRIPT proves the script did not run,
 *  which is why that retry is safe even for writing scripts.
 *
 *  SIGPIPE. hiredis 0.14 writes with write(2), and writing to a socket the server has
 *  reset raises SIGPIPE, whose default action kills the process. Rather than changing the
 *  process-wide disposition behind the program's back, each I/O section blocks SIGPIPE in
 *  the calling thread and afterwards consumes a SIGPIPE that the section itself raised
 *  (write then reports EPIPE, which is handled as a lost connection).
 */
#include "orr_store.h"
#include "orr_log.h"
#include "orr_util.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_ERROR_MAX 256

struct orr_store_t {
    char *url;                  /* as given; the key for orr_store_thread */
    char *display_url;          /* password masked, for logs and errors */
    bool is_unix;
    char *host;                 /* TCP host (brackets of an IPv6 literal removed) */
    int port;
    char *path;                 /* unix socket path */
    char *user;                 /* NULL: AUTH with the password only */
    char *password;             /* NULL: no AUTH */
    int db;
    int connect_timeout_ms;
    int command_timeout_ms;

    redisContext *ctx;          /* NULL when not connected */
    uint64_t connects;
    bool reported_down;         /* a connect failure was logged; log the recovery once */

    size_t pending;             /* commands appended and not yet flushed */
    bool pipeline_failed;       /* an append failed: the next flush must fail */

    bool thread_owned;          /* made by orr_store_thread: freed by the thread, not by callers */
    orr_store_t *thread_next;   /* the thread's other stores (other URLs) */

    char error[STORE_ERROR_MAX];
};

struct orr_script_t {
    char *name;
    char *lua;
    char sha[41];
};

/* How a round trip ended; decides whether a resend is allowed. */
typedef enum {
    S_OK,
    S_LOST,                     /* EOF, reset, broken pipe: the connection died */
    S_TIMEOUT,                  /* no reply within the command timeout */
    S_BROKEN                    /* protocol error or the like: never resend */
} s_outcome_t;

/* ------------------------------------------------------------------------------------ */
/* Small helpers                                                                        */

static void s_set_error (orr_store_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (orr_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, ap);
    va_end (ap);
}

static struct timeval
s_timeval_ms (int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return tv;
}

typedef struct {
    sigset_t old_mask;
    bool was_pending;           /* a SIGPIPE pending before we started is not ours to eat */
} s_sigpipe_guard_t;

static void
s_sigpipe_block (s_sigpipe_guard_t *guard)
{
    sigset_t pipe_set, pending;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, &guard->old_mask);
    sigemptyset (&pending);
    sigpending (&pending);
    guard->was_pending = sigismember (&pending, SIGPIPE) == 1;
}

static void
s_sigpipe_unblock (s_sigpipe_guard_t *guard)
{
    int saved_errno = errno;
    if (!guard->was_pending) {
        sigset_t pipe_set, pending;
        sigemptyset (&pipe_set);
        sigaddset (&pipe_set, SIGPIPE);
        sigemptyset (&pending);
        sigpending (&pending);
        if (sigismember (&pending, SIGPIPE) == 1) {
            struct timespec zero = { 0, 0 };
            while (sigtimedwait (&pipe_set, NULL, &zero) == -1 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask (SIG_SETMASK, &guard->old_mask, NULL);
    errno = saved_errno;
}

/* ------------------------------------------------------------------------------------ */
/* URL parsing                                                                          */

static int
s_hex_value (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in [s, s+len) into a new string; NULL on a bad escape or an embedded NUL
 * (neither can be passed to AUTH as a C string). */
static char *
s_percent_decode (const char *s, size_t len)
{
    char *out = orr_zalloc (len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 < len) {
            int hi = s_hex_value (s[i + 1]);
            int lo = s_hex_value (s[i + 2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                out[o++] = (char) (hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        free (out);
        return NULL;
    }
    return out;
}

static int
s_parse_int_range (const char *s, size_t len, long min, long max, long *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy (buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
    long v;
    if (orr_parse_long (buf, &v) != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Applies one "key=value" option. Returns 0, or -1 with the reason in self->error. */
static int
s_apply_option (orr_store_t *self, const char *opt, size_t len)
{
    const char *eq = memchr (opt, '=', len);
    if (!eq) {
        s_set_error (self, "option without a value: %.*s", (int) len, opt);
        return -1;
    }
    size_t klen = (size_t) (eq - opt);
    const char *v = eq + 1;
    size_t vlen = len - klen - 1;
    long n;
#define S_IS(name) (klen == strlen (name) && memcmp (opt, name, klen) == 0)
    if (S_IS ("db")) {
        if (s_parse_int_range (v, vlen, 0, 1000000, &n) != 0) {
            s_set_error (self, "bad db number");
            return -1;
        }
        self->db = (int) n;
    }
    else if (S_IS ("connect_timeout_ms") || S_IS ("timeout_ms")) {
        if (s_parse_int_range (v, vlen, 1, 3600000, &n) != 0) {
            s_set_error (self, "bad %.*s", (int) klen, opt);
            return -1;
        }
        if (S_IS ("timeout_ms"))
            self->command_timeout_ms = (int) n;
        else
            self->connect_timeout_ms = (int) n;
    }
    else if (S_IS ("password") || S_IS ("user")) {
        char *decoded = s_percent_decode (v, vlen);
        if (!decoded) {
            s_set_error (self, "bad %%-escape in %.*s", (int) klen, opt);
            return -1;
        }
        char **slot = S_IS ("user") ? &self->user : &self->password;
        free (*slot);
        *slot = decoded;
    }
    else {
        s_set_error (self, "unknown option %.*s", (int) klen, opt);
        return -1;
    }
#undef S_IS
    return 0;
}

/* Applies "k=v&k=v" options (empty ones are skipped). 0, or -1 with self->error set. */
static int
s_parse_query (orr_store_t *self, const char *query)
{
    const char *p = query;
    for (;;) {
        const char *amp = strchr (p, '&');
        size_t len = amp ? (size_t) (amp - p) : strlen (p);
        if (len > 0 && s_apply_option (self, p, len) != 0)
            return -1;
        if (!amp)
            return 0;
        p = amp + 1;
    }
}

/* redis://[[user]:password@]host[:port][/db][?opts] */
static int
s_parse_tcp (orr_store_t *self, const char *rest)
{
    const char *query = strchr (rest, '?');
    size_t main_len = query ? (size_t) (query - rest) : strlen (rest);
    const char *slash = memchr (rest, '/', main_len);
    size_t auth_len = slash ? (size_t) (slash - rest) : main_len;

    /* userinfo ends at the LAST '@' of the authority: passwords may contain '@'. */
    const char *host_start = rest;
    for (size_t i = auth_len; i > 0; i--)
        if (rest[i - 1] == '@') {
            host_start = rest + i;
            break;
        }
    if (host_start != rest) {
        size_t info_len = (size_t) (host_start - 1 - rest);
        const char *colon = memchr (rest, ':', info_len);
        if (!colon) {
            s_set_error (self, "credentials must be [user]:password");
            return -1;
        }
        size_t user_len = (size_t) (colon - rest);
        if (user_len > 0 && !(self->user = s_percent_decode (rest, user_len))) {
            s_set_error (self, "bad %%-escape in user");
            return -1;
        }
        self->password = s_percent_decode (colon + 1, info_len - user_len - 1);
        if (!self->password) {
            s_set_error (self, "bad %%-escape in password");
            return -1;
        }
    }

    const char *auth_end = rest + auth_len;
    const char *host_end;
    const char *port_start = NULL;
    if (*host_start == '[') {
        const char *close = memchr (host_start, ']', (size_t) (auth_end - host_start));
        if (!close) {
            s_set_error (self, "unclosed [ in host");
            return -1;
        }
        self->host = orr_strndup (host_start + 1, (size_t) (close - host_start - 1));
        host_end = close + 1;
        if (host_end < auth_end) {
            if (*host_end != ':') {
                s_set_error (self, "junk after ]");
                return -1;
            }
            port_start = host_end + 1;
        }
    }
    else {
        const char *colon = memchr (host_start, ':', (size_t) (auth_end - host_start));
        host_end = colon ? colon : auth_end;
        self->host = orr_strndup (host_start, (size_t) (host_end - host_start));
        if (colon)
            port_start = colon + 1;
    }
    if (!*self->host) {
        s_set_error (self, "missing host");
        return -1;
    }
    if (port_start) {
        long port;
        if (s_parse_int_range (port_start, (size_t) (auth_end - port_start), 1, 65535, &port) != 0) {
            s_set_error (self, "bad port");
            return -1;
        }
        self->port = (int) port;
    }
    if (slash) {
        size_t db_len = main_len - auth_len - 1;
        long db;
        if (db_len > 0) {
            if (s_parse_int_range (slash + 1, db_len, 0, 1000000, &db) != 0) {
                s_set_error (self, "bad db number");
                return -1;
            }
            self->db = (int) db;
        }
    }
    return query ? s_parse_query (self, query + 1) : 0;
}

/* unix:///path[?opts] */
static int
s_parse_unix (orr_store_t *self, const char *rest)
{
    const char *query = strchr (rest, '?');
    size_t path_len = query ? (size_t) (query - rest) : strlen (rest);
    if (path_len < 2 || rest[0] != '/') {
        s_set_error (self, "unix socket path must be absolute (unix:///path)");
        return -1;
    }
    self->path = orr_strndup (rest, path_len);
    return query ? s_parse_query (self, query + 1) : 0;
}

static void
s_free (orr_store_t *self)
{
    if (self->ctx)
        redisFree (self->ctx);
    free (self->url);
    free (self->display_url);
    free (self->host);
    free (self->path);
    free (self->user);
    free (self->password);
    free (self);
}

orr_store_t *
orr_store_new (const char *redis_url)
{
    orr_store_t *self = orr_zalloc (sizeof *self);
    self->url = orr_strdup (redis_url ? redis_url : "");
    self->port = 6379;
    self->connect_timeout_ms = ORR_STORE_CONNECT_TIMEOUT_MS;
    self->command_timeout_ms = ORR_STORE_COMMAND_TIMEOUT_MS;

    int rc;
    if (strncmp (self->url, "redis://", 8) == 0)
        rc = s_parse_tcp (self, self->url + 8);
    else if (strncmp (self->url, "unix://", 7) == 0) {
        self->is_unix = true;
        rc = s_parse_unix (self, self->url + 7);
    }
    else {
        s_set_error (self, "scheme must be redis:// or unix:// (no TLS in this build)");
        rc = -1;
    }
    if (rc != 0) {
        /* The URL may hold a password: name the problem, not the URL. */
        orr_error ("bad Redis URL: %s", self->error);
        s_free (self);
        return NULL;
    }
    const char *mask = self->password ? ":***@" : "";
    if (self->is_unix)
        self->display_url = orr_sprintf ("unix://%s?db=%d%s", self->path, self->db,
                                         self->password ? "&password=***" : "");
    else
        self->display_url = orr_sprintf ("redis://%s%s%s%s%s:%d/%d", self->user ? self->user : "",
                                         mask, strchr (self->host, ':') ? "[" : "", self->host,
                                         strchr (self->host, ':') ? "]" : "", self->port, self->db);
    return self;
}

void
orr_store_destroy (orr_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_store_t *self = *self_p;
    *self_p = NULL;
    if (self->thread_owned) {
        /* Freeing it here would leave a dangling pointer in the thread's list. */
        orr_error ("orr_store_destroy on a per-thread store: ignored (use orr_store_thread_release)");
        return;
    }
    s_free (self);
}

/* ------------------------------------------------------------------------------------ */
/* Per-thread stores                                                                    */

static pthread_key_t s_thread_key;
static pthread_once_t s_thread_key_once = PTHREAD_ONCE_INIT;

/* Thread-exit destructor, and the body of orr_store_thread_release. */
static void
s_thread_stores_free (void *head)
{
    orr_store_t *store = head;
    while (store) {
        orr_store_t *next = store->thread_next;
        s_free (store);
        store = next;
    }
}

static void
s_thread_key_create (void)
{
    if (pthread_key_create (&s_thread_key, s_thread_stores_free) != 0)
        abort ();   /* out of keys: a build-time bug, not a runtime condition */
}

orr_store_t *
orr_store_thread (const char *redis_url)
{
    pthread_once (&s_thread_key_once, s_thread_key_create);
    orr_store_t *head = pthread_getspecific (s_thread_key);
    for (orr_store_t *s = head; s; s = s->thread_next)
        if (strcmp (s->url, redis_url ? redis_url : "") == 0)
            return s;
    orr_store_t *store = orr_store_new (redis_url);
    if (!store)
        return NULL;
    store->thread_owned = true;
    store->thread_next = head;
    pthread_setspecific (s_thread_key, store);
    return store;
}

void
orr_store_thread_release (void)
{
    pthread_once (&s_thread_key_once, s_thread_key_create);
    orr_store_t *head = pthread_getspecific (s_thread_key);
    pthread_setspecific (s_thread_key, NULL);
    s_thread_stores_free (head);
}

/* ------------------------------------------------------------------------------------ */
/* Connection                                                                           */

void
orr_store_set_timeouts (orr_store_t *self, int connect_timeout_ms, int command_timeout_ms)
{
    if (connect_timeout_ms > 0)
        self->connect_timeout_ms = connect_timeout_ms;
    if (command_timeout_ms > 0) {
        self->command_timeout_ms = command_timeout_ms;
        if (self->ctx && redisSetTimeout (self->ctx, s_timeval_ms (command_timeout_ms)) != REDIS_OK) {
            redisFree (self->ctx);   /* a socket that refuses options is not worth keeping */
            self->ctx = NULL;
        }
    }
}

const char *
orr_store_error (orr_store_t *self)
{
    return self->error;
}

const char *
orr_store_url (orr_store_t *self)
{
    return self->display_url;
}

uint64_t
orr_store_connects (orr_store_t *self)
{
    return self->connects;
}

static void
s_drop (orr_store_t *self)
{
    if (self->ctx) {
        redisFree (self->ctx);
        self->ctx = NULL;
    }
}

void
orr_store_disconnect (orr_store_t *self)
{
    s_drop (self);
    self->pending = 0;
    self->pipeline_failed = false;
}

/* Runs AUTH or SELECT on a fresh context. 0, or -1 with the error set. */
static int
s_handshake (orr_store_t *self, redisContext *ctx, int argc, const char **argv, const char *what)
{
    s_sigpipe_guard_t guard;
    s_sigpipe_block (&guard);
    redisReply *reply = redisCommandArgv (ctx, argc, argv, NULL);
    s_sigpipe_unblock (&guard);
    if (!reply) {
        s_set_error (self, "%s on %s: %s", what, self->display_url, ctx->errstr);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        s_set_error (self, "%s on %s refused: %s", what, self->display_url, reply->str);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

static int
s_connect (orr_store_t *self)
{
    struct timeval connect_tv = s_timeval_ms (self->connect_timeout_ms);
    redisContext *ctx = self->is_unix ? redisConnectUnixWithTimeout (self->path, connect_tv)
                                      : redisConnectWithTimeout (self->host, self->port, connect_tv);
    if (!ctx)
        abort ();   /* hiredis returns NULL only when it cannot allocate: project OOM policy */
    int rc = 0;
    if (ctx->err) {
        s_set_error (self, "cannot connect to %s: %s", self->display_url, ctx->errstr);
        rc = -1;
    }
    else if (redisSetTimeout (ctx, s_timeval_ms (self->command_timeout_ms)) != REDIS_OK) {
        s_set_error (self, "cannot set timeouts on %s: %s", self->display_url, ctx->errstr);
        rc = -1;
    }
    /* Keepalive notices a peer that vanished without FIN (host down, network cut). */
    if (rc == 0 && !self->is_unix && redisEnableKeepAlive (ctx) != REDIS_OK) {
        s_set_error (self, "cannot enable keepalive on %s: %s", self->display_url, ctx->errstr);
        rc = -1;
    }
    if (rc == 0 && self->password) {
        const char *argv[] = { "AUTH", self->user ? self->user : self->password, self->password };
        rc = s_handshake (self, ctx, self->user ? 3 : 2, argv, "AUTH");
    }
    if (rc == 0 && self->db != 0) {
        char db[16];
        snprintf (db, sizeof db, "%d", self->db);
        const char *argv[] = { "SELECT", db };
        rc = s_handshake (self, ctx, 2, argv, "SELECT");
    }
    if (rc != 0) {
        redisFree (ctx);
        /* One warning per outage, not one per call while Redis is down. */
        if (!self->reported_down)
            orr_warn ("redis: %s", self->error);
        self->reported_down = true;
        return -1;
    }
    if (self->reported_down)
        orr_info ("redis: connected to %s again", self->display_url);
    self->reported_down = false;
    self->ctx = ctx;
    self->connects++;
    return 0;
}

/* True when the idle connection cannot be trusted: readable although no reply is due
 * means EOF, reset, or bytes we did not ask for. */
static bool
s_connection_stale (redisContext *ctx)
{
    if (ctx->err)
        return true;
    struct pollfd pfd = { .fd = ctx->fd, .events = POLLIN | POLLRDHUP };
    int n;
    while ((n = poll (&pfd, 1, 0)) == -1 && errno == EINTR)
        ;
    return n != 0;
}

static int
s_ensure_connected (orr_store_t *self)
{
    if (self->ctx && s_connection_stale (self->ctx)) {
        orr_debug ("redis: idle connection to %s was closed; reconnecting", self->display_url);
        s_drop (self);
    }
    return self->ctx ? 0 : s_connect (self);
}

/* Classifies the failure on self->ctx (errno as it was right after the failing call),
 * writes the error as "<what>: <reason>", and drops the context. */
static s_outcome_t
s_take_failure (orr_store_t *self, int saved_errno, const char *what)
{
    s_outcome_t outcome;
    int err = self->ctx->err;
    if (err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
        outcome = S_TIMEOUT;
        s_set_error (self, "%s: %s timed out after %d ms", what, self->display_url,
                     self->command_timeout_ms);
    }
    else {
        outcome = err == REDIS_ERR_IO || err == REDIS_ERR_EOF ? S_LOST : S_BROKEN;
        s_set_error (self, "%s: %s: %s", what, self->display_url, self->ctx->errstr);
    }
    s_drop (self);
    return outcome;
}

/* Sends one formatted command on the live connection and reads its reply. */
static s_outcome_t
s_roundtrip (orr_store_t *self, const char *cmd, size_t len, redisReply **reply_p)
{
    s_sigpipe_guard_t guard;
    void *reply = NULL;
    s_sigpipe_block (&guard);
    int rc = redisAppendFormattedCommand (self->ctx, cmd, len);
    if (rc == REDIS_OK)
        rc = redisGetReply (self->ctx, &reply);
    int saved_errno = errno;
    s_sigpipe_unblock (&guard);
    if (rc == REDIS_OK && reply) {
        *reply_p = reply;
        return S_OK;
    }
    return s_take_failure (self, saved_errno, "command failed");
}

/* Connects if needed, runs the command, and resends it once after a lost connection when
 * `resend` allows. The reply or NULL with the error set. */
static redisReply *
s_execute (orr_store_t *self, const char *cmd, size_t len, bool resend)
{
    if (self->pending) {
        s_set_error (self, "%zu pipelined commands are queued: flush them first", self->pending);
        return NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s_ensure_connected (self) != 0)
            return NULL;
        redisReply *reply = NULL;
        s_outcome_t outcome = s_roundtrip (self, cmd, len, &reply);
        if (outcome == S_OK) {
            self->error[0] = '\0';
            return reply;
        }
        if (outcome != S_LOST || !resend || attempt > 0)
            break;
        orr_warn ("redis: %s; reconnecting and sending the command once more", self->error);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Commands                                                                             */

/* Formats with hiredis's printf-like rules; -1 (error set) on a bad format. */
static int
s_format (orr_store_t *self, char **cmd_p, const char *fmt, va_list ap)
{
    int len = redisvFormatCommand (cmd_p, fmt, ap);
    if (len == -1)
        abort ();   /* hiredis could not allocate */
    if (len < 0) {
        s_set_error (self, "invalid command format \"%s\"", fmt);
        return -1;
    }
    return len;
}

static int
s_formatv (orr_store_t *self, char **cmd_p, int argc, const char **argv, const size_t *lens)
{
    if (argc < 1 || !argv) {
        s_set_error (self, "empty command");
        return -1;
    }
    int len = redisFormatCommandArgv (cmd_p, argc, argv, lens);
    if (len < 0)
        abort ();   /* the only failure is allocation */
    return len;
}

static redisReply *
s_vcommand (orr_store_t *self, bool resend, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    self->error[0] = '\0';
    int len = s_format (self, &cmd, fmt, ap);
    if (len < 0)
        return NULL;
    redisReply *reply = s_execute (self, cmd, (size_t) len, resend);
    redisFreeCommand (cmd);
    return reply;
}

static redisReply *
s_commandv (orr_store_t *self, bool resend, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    self->error[0] = '\0';
    int len = s_formatv (self, &cmd, argc, argv, lens);
    if (len < 0)
        return NULL;
    redisReply *reply = s_execute (self, cmd, (size_t) len, resend);
    redisFreeCommand (cmd);
    return reply;
}

redisReply *
orr_store_command (orr_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    redisReply *reply = s_vcommand (self, true, fmt, ap);
    va_end (ap);
    return reply;
}

redisReply *
orr_store_command_once (orr_store_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    redisReply *reply = s_vcommand (self, false, fmt, ap);
    va_end (ap);
    return reply;
}

redisReply *
orr_store_commandv (orr_store_t *self, int argc, const char **argv, const size_t *lens)
{
    return s_commandv (self, true, argc, argv, lens);
}

redisReply *
orr_store_commandv_once (orr_store_t *self, int argc, const char **argv, const size_t *lens)
{
    return s_commandv (self, false, argc, argv, lens);
}

/* ------------------------------------------------------------------------------------ */
/* Pipelining                                                                           */

/* Queues a formatted command (len < 0: formatting already failed). Every call counts as a
 * queued command, failed or not, so the caller's n always matches at flush time. */
static int
s_queue (orr_store_t *self, char *cmd, int len)
{
    int rc = -1;
    if (self->pipeline_failed)
        ;   /* keep the first error: it is the one that explains the failure */
    else if (len < 0)
        self->pipeline_failed = true;
    else if (self->pending == 0 && s_ensure_connected (self) != 0)
        self->pipeline_failed = true;
    else if (!self->ctx) {
        /* Dropped under a half-built pipeline (orr_store_set_timeouts failing). */
        s_set_error (self, "connection to %s lost while queueing", self->display_url);
        self->pipeline_failed = true;
    }
    else {
        if (self->pending == 0)
            self->error[0] = '\0';
        if (redisAppendFormattedCommand (self->ctx, cmd, (size_t) len) != REDIS_OK)
            abort ();   /* appending is buffering only; it fails only when out of memory */
        rc = 0;
    }
    self->pending++;
    if (cmd)
        redisFreeCommand (cmd);
    return rc;
}

int
orr_store_append (orr_store_t *self, const char *fmt, ...)
{
    char *cmd = NULL;
    int len = -1;
    if (!self->pipeline_failed) {
        va_list ap;
        va_start (ap, fmt);
        len = s_format (self, &cmd, fmt, ap);
        va_end (ap);
    }
    return s_queue (self, cmd, len);
}

int
orr_store_appendv (orr_store_t *self, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = self->pipeline_failed ? -1 : s_formatv (self, &cmd, argc, argv, lens);
    return s_queue (self, cmd, len);
}

size_t
orr_store_pending (orr_store_t *self)
{
    return self->pending;
}

int
orr_store_flush_replies (orr_store_t *self, redisReply **replies, size_t n)
{
    size_t queued = self->pending;
    bool failed = self->pipeline_failed;
    self->pending = 0;
    self->pipeline_failed = false;
    if (replies)
        memset (replies, 0, n * sizeof *replies);

    if (failed) {
        s_drop (self);   /* its output buffer may hold part of the discarded pipeline */
        return -1;
    }
    if (n != queued) {
        s_set_error (self, "flush asked for %zu replies but %zu commands are queued", n, queued);
        s_drop (self);
        return -1;
    }
    if (n == 0)
        return 0;
    if (!self->ctx) {
        s_set_error (self, "connection to %s lost before the flush", self->display_url);
        return -1;
    }

    /* The blocking redisGetReply writes the whole output buffer before its first read;
     * Redis keeps reading commands while our unread replies pile up in its output buffer,
     * so even a large pipeline cannot deadlock. */
    s_sigpipe_guard_t guard;
    size_t got = 0;
    int rc = REDIS_OK;
    int saved_errno = 0;
    s_sigpipe_block (&guard);
    for (; got < n; got++) {
        void *reply = NULL;
        rc = redisGetReply (self->ctx, &reply);
        if (rc != REDIS_OK || !reply) {
            saved_errno = errno;
            rc = REDIS_ERR;
            break;
        }
        if (replies)
            replies[got] = reply;
        else
            freeReplyObject (reply);
    }
    s_sigpipe_unblock (&guard);
    if (rc == REDIS_OK)
        return 0;

    if (replies)
        for (size_t i = 0; i < got; i++) {
            freeReplyObject (replies[i]);
            replies[i] = NULL;
        }
    char what[96];
    snprintf (what, sizeof what, "pipeline failed after %zu of %zu replies", got, n);
    s_take_failure (self, saved_errno, what);
    orr_warn ("redis: %s (not replayed)", self->error);
    return -1;
}

/* ------------------------------------------------------------------------------------ */
/* Scripts                                                                              */

orr_script_t *
orr_script_new (const char *name, const char *lua)
{
    assert (lua);
    orr_script_t *self = orr_zalloc (sizeof *self);
    self->name = orr_strdup (name ? name : "script");
    self->lua = orr_strdup (lua);
    zdigest_t *digest = zdigest_new ();
    if (!digest)
        abort ();
    zdigest_update (digest, (const byte *) lua, strlen (lua));
    const byte *sha = zdigest_data (digest);
    if (!sha || zdigest_size (digest) != 20)
        abort ();   /* czmq built without SHA-1: nothing here can work */
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        self->sha[2 * i] = hex[sha[i] >> 4];
        self->sha[2 * i + 1] = hex[sha[i] & 15];
    }
    self->sha[40] = '\0';
    zdigest_destroy (&digest);
    return self;
}

void
orr_script_destroy (orr_script_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->name);
    free ((*self_p)->lua);
    free (*self_p);
    *self_p = NULL;
}

const char *
orr_script_sha (const orr_script_t *self)
{
    return self->sha;
}

const char *
orr_script_name (const orr_script_t *self)
{
    return self->name;
}

/* SCRIPT LOAD. 0 when Redis now knows the script under its SHA1. -1 otherwise: either
 * *error_reply_p holds Redis's error reply (a Lua syntax error), which the caller returns
 * like any error reply, or it stays NULL and the store's error says what went wrong. */
static int
s_script_load (orr_store_t *self, const orr_script_t *script, redisReply **error_reply_p)
{
    const char *argv[] = { "SCRIPT", "LOAD", script->lua };
    /* Loading is idempotent, so it may be resent. */
    redisReply *reply = s_commandv (self, true, 3, argv, NULL);
    if (!reply)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) {
        *error_reply_p = reply;
        return -1;
    }
    int rc = 0;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40
        || strncasecmp (reply->str, script->sha, 40) != 0) {
        s_set_error (self, "SCRIPT LOAD of %s returned an unexpected SHA1", script->name);
        orr_error ("redis: %s", self->error);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

redisReply *
orr_store_eval (orr_store_t *self, const orr_script_t *script, int nkeys, int argc,
                const char **argv, const size_t *lens)
{
    assert (script && nkeys >= 0 && argc >= nkeys && (argc == 0 || argv));
    self->error[0] = '\0';
    size_t total = 3 + (size_t) argc;
    const char **call_argv = orr_zalloc (total * sizeof *call_argv);
    size_t *call_lens = orr_zalloc (total * sizeof *call_lens);
    char nkeys_text[16];
    snprintf (nkeys_text, sizeof nkeys_text, "%d", nkeys);
    call_argv[0] = "EVALSHA";
    call_argv[1] = script->sha;
    call_argv[2] = nkeys_text;
    for (int i = 0; i < argc; i++) {
        call_argv[3 + i] = argv[i];
        call_lens[3 + i] = lens ? lens[i] : strlen (argv[i]);
    }
    for (int i = 0; i < 3; i++)
        call_lens[i] = strlen (call_argv[i]);

    char *cmd = NULL;
    int len = s_formatv (self, &cmd, (int) total, call_argv, call_lens);
    free (call_argv);
    free (call_lens);

    redisReply *reply = s_execute (self, cmd, (size_t) len, false);
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp (reply->str, "NOSCRIPT", 8) == 0) {
        /* Redis does not know the script (restart, SCRIPT FLUSH, another replica of a
         * failover pair): it did not run, so loading it and calling again is safe. */
        freeReplyObject (reply);
        reply = NULL;
        orr_debug ("redis: loading script %s (%s)", script->name, script->sha);
        if (s_script_load (self, script, &reply) == 0)
            reply = s_execute (self, cmd, (size_t) len, false);
    }
    redisFreeCommand (cmd);
    return reply;
}

void
orr_args_push (orr_args_t *args, char *owned)
{
    if (args->n == args->cap) {
        args->cap = args->cap ? args->cap * 2 : 16;
        args->v = orr_realloc (args->v, args->cap * sizeof (char *));
    }
    args->v[args->n++] = owned;
}

void
orr_args_clear (orr_args_t *args)
{
    for (size_t i = 0; i < args->n; i++)
        free (args->v[i]);
    free (args->v);
    memset (args, 0, sizeof *args);
}

redisReply *
orr_store_eval_args (orr_store_t *self, const orr_script_t *script, size_t nkeys, const orr_args_t *args)
{
    return orr_store_eval (self, script, (int) nkeys, (int) args->n, (const char **) args->v, NULL);
}

const char *
orr_reply_field (const redisReply *hash, const char *field, const char *def)
{
    for (size_t i = 0; hash && hash->type == REDIS_REPLY_ARRAY && i + 1 < hash->elements; i += 2)
        if (strcmp (hash->element[i]->str, field) == 0)
            return hash->element[i + 1]->str;
    return def;
}
