/*  orr_util: the few helpers every file wants: memory that aborts on exhaustion, strings,
 *  numbers, clocks, random ids and free ports.
 *
 *  Out-of-memory policy (one for the whole project): allocation failure aborts, as czmq
 *  and Redis do. A service that cannot allocate cannot answer correctly anyway, and its
 *  supervisor (orrery up, or Kubernetes) restarts it; no caller checks for NULL.
 */
#ifndef ORR_UTIL_H
#define ORR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *orr_zalloc (size_t size);
void *orr_realloc (void *p, size_t size);
char *orr_strdup (const char *s);
char *orr_strndup (const char *s, size_t n);
/* printf into a new string the caller frees. */
char *orr_sprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Trims white space in place; returns the start inside `s`. */
char *orr_strtrim (char *s);
/* Whole-string base-10 parse; 0 on success, -1 on junk or overflow. */
int orr_parse_long (const char *s, long *out);

/* Wall clock in microseconds since the epoch; monotonic clock in milliseconds. */
int64_t orr_now_us (void);
int64_t orr_mono_ms (void);
void orr_sleep_ms (int ms);

/* n bytes as 2*n lowercase hex chars + NUL into out (>= 2*n + 1 bytes). */
void orr_hex_encode (const void *data, size_t n, char *out);
/* Fills `out` with 2*nbytes lowercase hex chars + NUL from the kernel's CSPRNG. */
void orr_random_hex (char *out, size_t nbytes);

/* A TCP port on 127.0.0.1 that is free right now, below the ephemeral range
 * (20000..32767), or -1. Racy by nature: bind it soon. */
int orr_free_port (void);

/* True when nothing listens on 127.0.0.1:port and it can be bound now. */
bool orr_port_free (int port);
/* Polls until a TCP connect to 127.0.0.1:port succeeds; 0, or -1 after timeout_ms. */
int orr_wait_port (int port, int timeout_ms);

/* Splits "a,b,c" into a NULL-terminated array of trimmed, non-empty strings (caller frees
 * with orr_strv_free). */
char **orr_split (const char *s, char sep, size_t *count);
void orr_strv_free (char ***v_p);

/* s percent-quoted for a URL path segment as JupyterHub quotes names in the URLs it builds
 * (Python's quote(name, safe='@~'): letters, digits, '_.-~@' kept). Caller frees. */
char *orr_url_quote (const char *s);

#endif
