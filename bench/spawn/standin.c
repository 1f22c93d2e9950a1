/*  orrery-standin: a lightweight stand-in for jupyterhub-singleuser, for benchmarks and
 *  tests that need many servers that start in milliseconds and cost next to no memory.
 *
 *  It honours the environment a spawner gives jupyterhub-singleuser
 *  (docs/spawner.md; JupyterHub's single-user server contract):
 *
 *    JUPYTERHUB_SERVICE_URL     http://127.0.0.1:PORT/user/alice/ -- binds exactly that
 *                               host and port (required)
 *    JUPYTERHUB_SERVICE_PREFIX  /user/alice/ (default: the path of JUPYTERHUB_SERVICE_URL)
 *    JUPYTERHUB_USER            shown on the tree page
 *    JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN
 *                               accepted and not used (the stand-in makes no calls to the
 *                               hub: no version check, no activity, no OAuth)
 *
 *  HTTP/1.1, one thread, poll(); every request gets one response and the connection is
 *  closed (Connection: close). Only the request line is parsed; headers and bodies are
 *  ignored. Every response carries X-JupyterHub-Version: 3.0.0.
 *
 *    GET  <prefix> (also without its trailing slash)  302, Location: <prefix>tree
 *    GET  <prefix>tree                                  200 text/html, "<title>stand-in</title>"
 *                                                       and the user's name
 *    anything else under <prefix>                       200 text/plain "ok"
 *    anything outside <prefix>                          404
 *
 *  Options, from the environment, or from the command line (which wins, for spawners that
 *  give their servers a clean environment: --start-delay-ms N, --allocate-mb N,
 *  --times-file PATH):
 *
 *    ORRERY_STANDIN_START_DELAY_MS  sleep this long before listening (default 0): emulates
 *                                   a real server's own start-up time
 *    ORRERY_STANDIN_ALLOCATE_MB     after listening, allocate and touch this many MiB, in
 *                                   16 MiB steps every 100 ms (default 0): for testing
 *                                   memory limits
 *    ORRERY_STANDIN_TIMES_FILE      if set, append one line "<exec_wall_us> <listening_wall_us>\n"
 *                                   (CLOCK_REALTIME microseconds at main() entry and right
 *                                   after listen()), in a single write, so a benchmark can
 *                                   subtract the stand-in's own start time from a spawn's.
 *                                   In the path, %u becomes JUPYTERHUB_USER, %n
 *                                   JUPYTERHUB_SERVER_NAME and %% a '%' (one file per
 *                                   server, so each line can be matched to its spawn)
 *
 *  SIGINT or SIGTERM: exit 0. Exit 2 on a bad setting, 1 when it cannot listen.
 *  Deliberately independent of liborrery: it is started hundreds of times at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX 8192           /* request line and headers; more gets 431 */
#define ALLOC_STEP_MB 16
#define ALLOC_INTERVAL_MS 100
#define MAX_CONNS 4096
#define DRAIN_MS 2000          /* how long a sent connection waits for the client's EOF */

typedef struct {
    int fd;
    int64_t drain_until;       /* > 0: response sent, reading the rest until EOF (no RST) */
    char in[REQ_MAX];
    size_t in_len;
    char *out;                 /* response being written, or NULL while reading */
    size_t out_len, out_off;
} conn_t;

static volatile sig_atomic_t s_stop;
static const char *s_prefix;
static size_t s_prefix_len;
static const char *s_user;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static int64_t
s_wall_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-negative integer setting, or -1 if malformed. */
static long
s_number (const char *name, const char *value)
{
    if (!value || !*value)
        return 0;
    char *end;
    errno = 0;
    long v = strtol (value, &end, 10);
    if (errno || *end || v < 0) {
        fprintf (stderr, "orrery-standin: %s must be a non-negative integer, not '%s'\n", name, value);
        return -1;
    }
    return v;
}

/* http://HOST:PORT/path -> host, port (allocated into *host). */
static int
s_parse_url (const char *url, char **host, char **port, const char **path)
{
    const char *p = url;
    if (strncmp (p, "http://", 7) != 0)
        return -1;
    p += 7;
    const char *end = p + strcspn (p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr (p, ']', (size_t) (end - p));
        if (!rb)
            return -1;
        *host = strndup (p + 1, (size_t) (rb - p - 1));
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    }
    else {
        colon = memchr (p, ':', (size_t) (end - p));
        *host = strndup (p, (size_t) ((colon ? colon : end) - p));
    }
    *port = colon ? strndup (colon + 1, (size_t) (end - colon - 1)) : strdup ("80");
    *path = *end ? end : "/";
    return **host && **port ? 0 : -1;
}

static int
s_listen (const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo (host, port, &hints, &res);
    if (rc != 0) {
        fprintf (stderr, "orrery-standin: cannot resolve %s:%s: %s\n", host, port, gai_strerror (rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket (ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind (fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen (fd, 1024) == 0)
            break;
        fprintf (stderr, "orrery-standin: cannot listen on %s:%s: %s\n", host, port, strerror (errno));
        close (fd);
        fd = -1;
    }
    freeaddrinfo (res);
    return fd;
}

/* The times file's path with %u, %n and %% expanded; caller frees. */
static char *
s_expand_path (const char *tmpl)
{
    const char *user = getenv ("JUPYTERHUB_USER");
    const char *server = getenv ("JUPYTERHUB_SERVER_NAME");
    size_t cap = strlen (tmpl) + 1;
    for (const char *p = tmpl; *p; p++)
        if (*p == '%')
            cap += (user ? strlen (user) : 0) + (server ? strlen (server) : 0);
    char *out = malloc (cap);
    if (!out)
        return NULL;
    size_t n = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *rep = NULL;
        if (p[0] == '%' && p[1] == 'u')
            rep = user ? user : "";
        else if (p[0] == '%' && p[1] == 'n')
            rep = server ? server : "";
        else if (p[0] == '%' && p[1] == '%')
            rep = "%";
        if (rep) {
            size_t l = strlen (rep);
            memcpy (out + n, rep, l);
            n += l;
            p++;
        }
        else
            out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

static void
s_write_times (const char *tmpl, int64_t exec_us, int64_t listen_us)
{
    char *path = s_expand_path (tmpl);
    if (!path)
        return;
    char line[64];
    int n = snprintf (line, sizeof line, "%lld %lld\n", (long long) exec_us, (long long) listen_us);
    int fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write (fd, line, (size_t) n) != n)
        fprintf (stderr, "orrery-standin: cannot append to %s: %s\n", path, strerror (errno));
    if (fd >= 0)
        close (fd);
    free (path);
}

/* Minimal HTML escaping of the user name. */
static void
s_html_escape (const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        default: break;
        }
        if (rep) {
            size_t l = strlen (rep);
            memcpy (out + n, rep, l);
            n += l;
        }
        else
            out[n++] = *s;
    }
    out[n] = '\0';
}

static char *
s_response (int status, const char *reason, const char *type, const char *location, const char *body,
            bool head, size_t *len)
{
    size_t blen = strlen (body);
    size_t cap = 512 + blen + (location ? strlen (location) : 0);
    char *r = malloc (cap);
    if (!r)
        return NULL;
    int n = snprintf (r, cap,
                      "HTTP/1.1 %d %s\r\n"
                      "X-JupyterHub-Version: 3.0.0\r\n"
                      "Content-Type: %s\r\n"
                      "%s%s%s"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n"
                      "\r\n%s",
                      status, reason, type, location ? "Location: " : "", location ? location : "",
                      location ? "\r\n" : "", blen, head ? "" : body);
    *len = (size_t) n;
    return r;
}

/* The response to a request whose request line is `line` (NUL-terminated). */
static char *
s_handle (char *line, size_t *len)
{
    char *method = line;
    char *sp = strchr (line, ' ');
    if (!sp)
        return s_response (400, "Bad Request", "text/plain", NULL, "bad request\n", false, len);
    *sp = '\0';
    char *target = sp + 1;
    sp = strchr (target, ' ');
    if (sp)
        *sp = '\0';
    target[strcspn (target, "?#")] = '\0';
    bool head = strcmp (method, "HEAD") == 0;
    bool get = head || strcmp (method, "GET") == 0;
    size_t tlen = strlen (target);

    bool at_prefix = strcmp (target, s_prefix) == 0
                  || (s_prefix_len > 1 && tlen == s_prefix_len - 1 && strncmp (target, s_prefix, tlen) == 0);
    if (get && at_prefix) {
        char location[REQ_MAX + 8];
        snprintf (location, sizeof location, "%stree", s_prefix);
        return s_response (302, "Found", "text/plain", location, "", head, len);
    }
    if (strncmp (target, s_prefix, s_prefix_len) != 0)
        return s_response (404, "Not Found", "text/plain", NULL, "not found\n", head, len);
    const char *rest = target + s_prefix_len;
    if (get && (strcmp (rest, "tree") == 0 || strncmp (rest, "tree/", 5) == 0)) {
        char user[1024], body[2048];
        s_html_escape (s_user, user, sizeof user);
        snprintf (body, sizeof body,
                  "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>stand-in</title></head>\n"
                  "<body><h1>stand-in</h1><p>Server of <span id=\"user\">%s</span></p></body></html>\n",
                  user);
        return s_response (200, "OK", "text/html; charset=UTF-8", NULL, body, head, len);
    }
    return s_response (200, "OK", "text/plain", NULL, "ok\n", head, len);
}

static void
s_close (conn_t *c)
{
    close (c->fd);
    free (c->out);
    free (c);
}

/* Reads what is there; returns false when the connection is finished (closed). */
static bool
s_on_readable (conn_t *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in - 1) {
            size_t len;
            c->out = s_response (431, "Request Header Fields Too Large", "text/plain", NULL, "too large\n", false, &len);
            c->out_len = len;
            return c->out != NULL;
        }
        ssize_t n = read (c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        if (n == 0)
            return false;
        c->in_len += (size_t) n;
        c->in[c->in_len] = '\0';
        if (strstr (c->in, "\r\n\r\n") || strstr (c->in, "\n\n")) {
            c->in[strcspn (c->in, "\r\n")] = '\0';
            size_t len;
            c->out = s_handle (c->in, &len);
            c->out_len = len;
            return c->out != NULL;
        }
    }
}

/* Writes what it can; returns false when done (or failed): close it. */
static bool
s_on_writable (conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write (c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->out_off += (size_t) n;
    }
    shutdown (c->fd, SHUT_WR);
    c->drain_until = s_mono_ms () + DRAIN_MS;
    return true;
}

/* Discards what the client still sends; returns false at EOF (or error): close it. */
static bool
s_on_drain (conn_t *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read (c->fd, buf, sizeof buf);
        if (n < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && s_mono_ms () < c->drain_until;
        if (n == 0)
            return false;
    }
}

static const char *
s_opt (int argc, char **argv, const char *flag, const char *env)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp (argv[i], flag) == 0)
            return argv[i + 1];
    return getenv (env);
}

int
main (int argc, char **argv)
{
    int64_t exec_us = s_wall_us ();
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            printf ("usage: orrery-standin [--start-delay-ms N] [--allocate-mb N] [--times-file PATH]\n"
                    "A stand-in for jupyterhub-singleuser: serves JUPYTERHUB_SERVICE_PREFIX on the host and port\n"
                    "of JUPYTERHUB_SERVICE_URL. Options also from ORRERY_STANDIN_START_DELAY_MS,\n"
                    "ORRERY_STANDIN_ALLOCATE_MB and ORRERY_STANDIN_TIMES_FILE (see the top of bench/spawn/standin.c).\n");
            return 0;
        }
        /* anything else (e.g. a spawner's args such as --allow-root) is ignored */
    }
    const char *service_url = getenv ("JUPYTERHUB_SERVICE_URL");
    if (!service_url || !*service_url) {
        fprintf (stderr, "orrery-standin: JUPYTERHUB_SERVICE_URL is not set\n");
        return 2;
    }
    char *host = NULL, *port = NULL;
    const char *url_path = NULL;
    if (s_parse_url (service_url, &host, &port, &url_path) != 0) {
        fprintf (stderr, "orrery-standin: JUPYTERHUB_SERVICE_URL '%s' is not http://HOST:PORT/PATH\n", service_url);
        return 2;
    }
    s_prefix = getenv ("JUPYTERHUB_SERVICE_PREFIX");
    if (!s_prefix || !*s_prefix)
        s_prefix = url_path;
    if (s_prefix[0] != '/' || strlen (s_prefix) > REQ_MAX / 2) {
        fprintf (stderr, "orrery-standin: bad JUPYTERHUB_SERVICE_PREFIX '%s'\n", s_prefix);
        return 2;
    }
    s_prefix_len = strlen (s_prefix);
    s_user = getenv ("JUPYTERHUB_USER");
    if (!s_user)
        s_user = "";
    long delay_ms = s_number ("start delay", s_opt (argc, argv, "--start-delay-ms", "ORRERY_STANDIN_START_DELAY_MS"));
    long alloc_mb = s_number ("allocation", s_opt (argc, argv, "--allocate-mb", "ORRERY_STANDIN_ALLOCATE_MB"));
    const char *times_file = s_opt (argc, argv, "--times-file", "ORRERY_STANDIN_TIMES_FILE");
    if (delay_ms < 0 || alloc_mb < 0)
        return 2;

    /* SIGINT/SIGTERM are blocked except inside ppoll, so none is lost between checks */
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    sigset_t block, waitmask;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    sigprocmask (SIG_BLOCK, &block, &waitmask);
    sigdelset (&waitmask, SIGINT);
    sigdelset (&waitmask, SIGTERM);

    if (delay_ms > 0) {
        /* the signals are blocked: wait for them, at most delay_ms */
        struct timespec ts = { .tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L };
        int64_t deadline = s_mono_ms () + delay_ms;
        for (;;) {
            int sig = sigtimedwait (&block, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM) {
                free (host);
                free (port);
                return 0;
            }
            int64_t left = deadline - s_mono_ms ();
            if (left <= 0)
                break;
            ts = (struct timespec) { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L };
        }
    }

    int lfd = s_listen (host, port);
    if (lfd < 0)
        return 1;
    int64_t listen_us = s_wall_us ();
    if (times_file && *times_file)
        s_write_times (times_file, exec_us, listen_us);
    fprintf (stderr, "orrery-standin: %s listening on %s:%s for %s (pid %d)\n", s_user, host, port, s_prefix,
             (int) getpid ());
    free (host);
    free (port);

    conn_t **conns = calloc (MAX_CONNS, sizeof *conns);
    struct pollfd *pfds = calloc (MAX_CONNS + 1, sizeof *pfds);
    if (!conns || !pfds)
        return 1;
    size_t nconns = 0;
    long allocated_mb = 0;
    int64_t next_alloc = s_mono_ms ();

    while (!s_stop) {
        int timeout = -1;
        if (allocated_mb < alloc_mb) {
            int64_t now = s_mono_ms ();
            if (now >= next_alloc) {
                long step = alloc_mb - allocated_mb < ALLOC_STEP_MB ? alloc_mb - allocated_mb : ALLOC_STEP_MB;
                size_t bytes = (size_t) step << 20;
                void *p = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                    fprintf (stderr, "orrery-standin: cannot allocate %ld MiB more: %s\n", step, strerror (errno));
                    alloc_mb = allocated_mb;
                }
                else {
                    memset (p, 0x5a, bytes);   /* touch every page: it counts as resident */
                    allocated_mb += step;
                    fprintf (stderr, "orrery-standin: %ld MiB allocated\n", allocated_mb);
                }
                next_alloc = now + ALLOC_INTERVAL_MS;
            }
            if (allocated_mb < alloc_mb)
                timeout = (int) (next_alloc - s_mono_ms () > 0 ? next_alloc - s_mono_ms () : 0);
        }
        pfds[0] = (struct pollfd) { .fd = nconns < MAX_CONNS ? lfd : -1, .events = POLLIN };
        bool draining = false;
        for (size_t i = 0; i < nconns; i++) {
            conn_t *c = conns[i];
            pfds[i + 1] = (struct pollfd) { .fd = c->fd, .events = c->out && !c->drain_until ? POLLOUT : POLLIN };
            draining |= c->drain_until > 0;
        }
        if (draining && (timeout < 0 || timeout > 250))
            timeout = 250;   /* to give up on clients that never close */
        struct timespec ts = { timeout / 1000, (timeout % 1000) * 1000000L };
        int n = ppoll (pfds, nconns + 1, timeout < 0 ? NULL : &ts, &waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf (stderr, "orrery-standin: poll: %s\n", strerror (errno));
            return 1;
        }
        /* connections first (their indices shift as finished ones are removed) */
        size_t kept = 0;
        for (size_t i = 0; i < nconns; i++) {
            conn_t *c = conns[i];
            short re = pfds[i + 1].revents;
            bool alive = true;
            if (re & (POLLERR | POLLNVAL))
                alive = false;
            else if (c->drain_until > 0)
                alive = s_on_drain (c);
            else {
                if (!c->out && (re & (POLLIN | POLLHUP)))
                    alive = s_on_readable (c);
                if (alive && c->out)
                    alive = s_on_writable (c);
            }
            if (alive)
                conns[kept++] = c;
            else
                s_close (c);
        }
        nconns = kept;
        if (pfds[0].revents & POLLIN) {
            while (nconns < MAX_CONNS) {
                int fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                conn_t *c = calloc (1, sizeof *c);
                if (!c) {
                    close (fd);
                    break;
                }
                c->fd = fd;
                conns[nconns++] = c;
            }
        }
    }
    for (size_t i = 0; i < nconns; i++)
        s_close (conns[i]);
    free (conns);
    free (pfds);
    close (lfd);
    return 0;
}
