/*  orr_util: allocation, string, number, clock, randomness and port helpers.
 *
 *  Everything here is small and leaf-level (no other orr_ module is used), so any file
 *  may include it. Allocation aborts on failure; see orr_util.h for why.
 */
#include "orr_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void
s_oom (size_t size)
{
    fprintf (stderr, "orrery: out of memory allocating %zu bytes\n", size);
    abort ();
}

void *
orr_zalloc (size_t size)
{
    void *p = calloc (1, size ? size : 1);
    if (!p)
        s_oom (size);
    return p;
}

void *
orr_realloc (void *p, size_t size)
{
    void *q = realloc (p, size ? size : 1);
    if (!q)
        s_oom (size);
    return q;
}

char *
orr_strdup (const char *s)
{
    return orr_strndup (s, strlen (s));
}

char *
orr_strndup (const char *s, size_t n)
{
    char *p = orr_zalloc (n + 1);
    memcpy (p, s, n);
    p[n] = '\0';
    return p;
}

char *
orr_sprintf (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (NULL, 0, fmt, ap);
    va_end (ap);
    char *p = orr_zalloc ((size_t) n + 1);
    va_start (ap, fmt);
    vsnprintf (p, (size_t) n + 1, fmt, ap);
    va_end (ap);
    return p;
}

char *
orr_strtrim (char *s)
{
    while (isspace ((unsigned char) *s))
        s++;
    size_t n = strlen (s);
    while (n > 0 && isspace ((unsigned char) s[n - 1]))
        s[--n] = '\0';
    return s;
}

int
orr_parse_long (const char *s, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int64_t
orr_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
orr_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
orr_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

void
orr_hex_encode (const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void
orr_random_hex (char *out, size_t nbytes)
{
    unsigned char buf[256];
    while (nbytes > 0) {
        size_t n = nbytes < sizeof buf ? nbytes : sizeof buf;
        size_t got = 0;
        while (got < n) {
            ssize_t r = getrandom (buf + got, n - got, 0);
            if (r < 0 && errno != EINTR)
                abort ();   /* no entropy source: nothing secret can be made */
            if (r > 0)
                got += (size_t) r;
        }
        orr_hex_encode (buf, n, out);
        out += 2 * n;
        nbytes -= n;
    }
    *out = '\0';
}

static bool
s_bind_ok (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    close (fd);
    return ok;
}

bool
orr_port_free (int port)
{
    return port > 0 && port < 65536 && s_bind_ok (port);
}

int
orr_wait_port (int port, int timeout_ms)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    do {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        int ok = fd >= 0 && connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
        if (fd >= 0)
            close (fd);
        if (ok)
            return 0;
        if (orr_mono_ms () >= deadline)
            break;
        orr_sleep_ms (10);
    } while (1);
    return -1;
}

int
orr_free_port (void)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        unsigned short r;
        if (getrandom (&r, sizeof r, 0) != sizeof r)
            r = (unsigned short) (getpid () + attempt * 7919);
        int port = 20000 + r % 12700;
        if (s_bind_ok (port))
            return port;
    }
    return -1;
}

char **
orr_split (const char *s, char sep, size_t *count)
{
    size_t cap = 4, n = 0;
    char **v = orr_zalloc (cap * sizeof *v);
    const char *p = s ? s : "";
    while (1) {
        const char *e = strchr (p, sep);
        size_t len = e ? (size_t) (e - p) : strlen (p);
        char *item = orr_strndup (p, len);
        char *t = orr_strtrim (item);
        if (*t) {
            if (n + 2 > cap)
                v = orr_realloc (v, (cap *= 2) * sizeof *v);
            v[n++] = orr_strdup (t);
        }
        free (item);
        if (!e)
            break;
        p = e + 1;
    }
    v[n] = NULL;
    if (count)
        *count = n;
    return v;
}

void
orr_strv_free (char ***v_p)
{
    if (!v_p || !*v_p)
        return;
    for (char **p = *v_p; *p; p++)
        free (*p);
    free (*v_p);
    *v_p = NULL;
}

char *
orr_url_quote (const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen (s);
    char *out = orr_zalloc (3 * n + 1);
    char *p = out;
    for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr ("_.-~@", *c))
            *p++ = (char) *c;
        else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}
