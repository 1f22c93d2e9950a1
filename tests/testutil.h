/*  testutil: assertions and process fixtures shared by every test program.
 *
 *  Tests are plain C programs run by ctest; a failed CHECK prints where and why and exits
 *  1 so the ctest line shows the failure. Fixtures start real programs (redis-server, the
 *  built orrery binaries) on private ports below 32768 in a private directory, and the
 *  test stops them; nothing is left running (each child also gets PR_SET_PDEATHSIG).
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf (stderr, "FAIL %s:%d: %s:", __FILE__, __LINE__, #cond);                \
            fprintf (stderr, " " __VA_ARGS__);                                             \
            fprintf (stderr, "\n");                                                        \
            exit (1);                                                                      \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
    do {                                                                                   \
        long long _a = (long long) (a), _b = (long long) (b);                              \
        CHECK (_a == _b, "%s = %lld, expected %lld", #a, _a, _b);                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *_a = (a), *_b = (b);                                                   \
        CHECK (_a && _b && strcmp (_a, _b) == 0, "%s = \"%s\", expected \"%s\"", #a,        \
               _a ? _a : "(null)", _b ? _b : "(null)");                                    \
    } while (0)

/* A private temporary directory, removed (recursively) by tu_tmpdir_remove. */
char *tu_tmpdir (const char *tag);
void tu_tmpdir_remove (char **dir_p);

/* Path of a built executable (ORRERY_BIN_DIR is set by ctest to the build's bin/). */
char *tu_bin (const char *name);

/* Starts argv[0] (a path) with extra environment "K=V" entries (NULL-terminated, may be
 * NULL), stdout/stderr appended to `logfile` (or inherited when NULL). The child dies with
 * the test (PR_SET_PDEATHSIG). Returns the pid. */
pid_t tu_spawn (char *const argv[], char *const env[], const char *logfile);
/* Sends `sig`, waits up to `timeout_ms` for exit, then SIGKILLs. Returns the wait status. */
int tu_stop (pid_t pid, int sig, int timeout_ms);
bool tu_alive (pid_t pid);

/* A real redis-server on a free port below 32768 in its own directory. */
typedef struct {
    pid_t pid;
    int port;
    char *dir;
    char url[64];
} tu_redis_t;
int tu_redis_start (tu_redis_t *r);
void tu_redis_stop (tu_redis_t *r);

/* Polls until connecting to 127.0.0.1:port succeeds or timeout; 0 on success. */
int tu_wait_port (int port, int timeout_ms);

#endif
