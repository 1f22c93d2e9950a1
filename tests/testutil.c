/*  testutil: fixtures for tests: temp dirs, child processes, a real redis-server.
 *
 *  Children are started with fork/exec so the test controls their signals precisely (the
 *  bus tests SIGKILL brokers and workers on purpose). PR_SET_PDEATHSIG makes every child
 *  die with the test even when the test itself is killed by ctest's timeout.
 */
#include "testutil.h"
#include "orr_spawn.h"
#include "orr_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *
tu_tmpdir (const char *tag)
{
    char tmpl[256];
    snprintf (tmpl, sizeof tmpl, "/tmp/orrery-test-%s-XXXXXX", tag);
    char *d = mkdtemp (tmpl);
    CHECK (d != NULL, "mkdtemp: %s", strerror (errno));
    return orr_strdup (d);
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (path);
}

void
tu_tmpdir_remove (char **dir_p)
{
    if (!dir_p || !*dir_p)
        return;
    if (!getenv ("ORRERY_TEST_KEEP"))
        nftw (*dir_p, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free (*dir_p);
    *dir_p = NULL;
}

char *
tu_bin (const char *name)
{
    const char *dir = getenv ("ORRERY_BIN_DIR");
    return orr_sprintf ("%s/%s", dir ? dir : ".", name);
}

pid_t
tu_spawn (char *const argv[], char *const env[], const char *logfile)
{
    pid_t pid = orr_spawn (argv, env, logfile);
    CHECK (pid >= 0, "fork: %s", strerror (errno));
    return pid;
}

bool
tu_alive (pid_t pid)
{
    int status;
    return waitpid (pid, &status, WNOHANG) == 0;
}

int
tu_stop (pid_t pid, int sig, int timeout_ms)
{
    int status = 0;
    if (pid <= 0)
        return 0;
    kill (pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        pid_t r = waitpid (pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return status;
        orr_sleep_ms (5);
    }
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    return status;
}

int
tu_wait_port (int port, int timeout_ms)
{
    return orr_wait_port (port, timeout_ms);
}

int
tu_redis_start (tu_redis_t *r)
{
    memset (r, 0, sizeof *r);
    r->dir = tu_tmpdir ("redis");
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = orr_free_port ();
        char port[16];
        snprintf (port, sizeof port, "%d", r->port);
        char *log = orr_sprintf ("%s/redis.log", r->dir);
        char *argv[] = { "/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1",
                         "--dir", r->dir, "--save", "", "--appendonly", "no",
                         "--daemonize", "no", NULL };
        r->pid = tu_spawn (argv, NULL, log);
        free (log);
        if (tu_wait_port (r->port, 3000) == 0 && tu_alive (r->pid)) {
            snprintf (r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
            return 0;
        }
        tu_stop (r->pid, SIGKILL, 100);
    }
    return -1;
}

void
tu_redis_stop (tu_redis_t *r)
{
    tu_stop (r->pid, SIGKILL, 1000);
    r->pid = 0;
    tu_tmpdir_remove (&r->dir);
}
