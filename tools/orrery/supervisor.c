/*  supervisor: the process table behind `orrery up`.
 *
 *  Children are started by orr_spawn: a process group each, so a Ctrl-C in the terminal
 *  reaches only `orrery up`, which then stops the children in reverse start order
 *  (gateway and proxy before the services, the bus and Redis last, so in-flight work can
 *  finish); and PR_SET_PDEATHSIG(SIGKILL), so if `orrery up` itself is killed no child
 *  outlives it. A child that exits while we are not stopping is restarted after a
 *  delay that doubles from 250 ms to 10 s, reset once it has stayed up for 30 s, so a
 *  crash loop neither spins nor waits long after a one-off failure.
 */
#include "supervisor.h"
#include "orr_log.h"
#include "orr_spawn.h"
#include "orr_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUPERVISOR_MAX_CHILDREN 64
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define STABLE_AFTER_MS 30000

typedef struct {
    char *name;
    char **argv;
    char **env;
    char *log;
    pid_t pid;                /* 0 when not running */
    int64_t started_ms;
    int64_t restart_at_ms;    /* 0 = not scheduled */
    int backoff_ms;
    int restarts;
} child_t;

struct supervisor_t {
    char *log_dir;
    child_t children[SUPERVISOR_MAX_CHILDREN];
    int count;
    bool stopping;
};

static char **
s_strv_copy (char *const v[])
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        out[i] = orr_strdup (v[i]);
    return out;
}

supervisor_t *
supervisor_new (const char *log_dir)
{
    supervisor_t *self = orr_zalloc (sizeof *self);
    self->log_dir = orr_strdup (log_dir);
    return self;
}

static int
s_spawn (supervisor_t *self, child_t *c)
{
    pid_t pid = orr_spawn (c->argv, c->env, c->log);
    if (pid < 0) {
        orr_error ("cannot fork %s: %s", c->name, strerror (errno));
        return -1;
    }
    c->pid = pid;
    c->started_ms = orr_mono_ms ();
    c->restart_at_ms = 0;
    return 0;
}

int
supervisor_start (supervisor_t *self, const char *name, char *const argv[], char *const env[])
{
    if (self->count == SUPERVISOR_MAX_CHILDREN)
        return -1;
    child_t *c = &self->children[self->count];
    c->name = orr_strdup (name);
    c->argv = s_strv_copy (argv);
    c->env = s_strv_copy (env);
    c->log = orr_sprintf ("%s/%s.log", self->log_dir, name);
    c->backoff_ms = BACKOFF_MIN_MS;
    if (s_spawn (self, c) != 0) {
        orr_strv_free (&c->argv);
        orr_strv_free (&c->env);
        free (c->name);
        free (c->log);
        memset (c, 0, sizeof *c);
        return -1;
    }
    return self->count++;
}

pid_t
supervisor_pid (supervisor_t *self, int index)
{
    return index >= 0 && index < self->count ? self->children[index].pid : 0;
}

int
supervisor_tend (supervisor_t *self)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < self->count; i++) {
            child_t *c = &self->children[i];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            /* the whole group goes: CHP's node or a server's helpers must not linger */
            kill (-pid, SIGKILL);
            if (self->stopping)
                break;
            int64_t now = orr_mono_ms ();
            if (now - c->started_ms >= STABLE_AFTER_MS)
                c->backoff_ms = BACKOFF_MIN_MS;
            c->restart_at_ms = now + c->backoff_ms;
            char why[64];
            if (WIFSIGNALED (status))
                snprintf (why, sizeof why, "killed by signal %d", WTERMSIG (status));
            else
                snprintf (why, sizeof why, "exited with status %d", WEXITSTATUS (status));
            orr_warn ("%s (pid %d) %s; restarting in %d ms (see %s)", c->name, (int) pid, why, c->backoff_ms, c->log);
            c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
            break;
        }
    }
    int running = 0;
    int64_t now = orr_mono_ms ();
    for (int i = 0; i < self->count; i++) {
        child_t *c = &self->children[i];
        if (!c->pid && c->restart_at_ms && now >= c->restart_at_ms && !self->stopping) {
            if (s_spawn (self, c) == 0) {
                c->restarts++;
                orr_info ("%s restarted (pid %d, restart %d)", c->name, (int) c->pid, c->restarts);
            }
            else
                c->restart_at_ms = now + c->backoff_ms;
        }
        running += c->pid != 0;
    }
    return running;
}

void
supervisor_stop_all (supervisor_t *self, int grace_ms)
{
    self->stopping = true;
    for (int i = self->count - 1; i >= 0; i--) {
        child_t *c = &self->children[i];
        if (!c->pid)
            continue;
        kill (c->pid, SIGTERM);
        int64_t deadline = orr_mono_ms () + grace_ms;
        while (c->pid && orr_mono_ms () < deadline) {
            supervisor_tend (self);
            if (c->pid)
                orr_sleep_ms (10);
        }
        if (c->pid) {
            orr_warn ("%s did not stop within %d ms; killing it", c->name, grace_ms);
            kill (-c->pid, SIGKILL);
            kill (c->pid, SIGKILL);
            waitpid (c->pid, NULL, 0);
            c->pid = 0;
        }
    }
}

void
supervisor_destroy (supervisor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    supervisor_t *self = *self_p;
    supervisor_stop_all (self, 5000);
    for (int i = 0; i < self->count; i++) {
        child_t *c = &self->children[i];
        orr_strv_free (&c->argv);
        orr_strv_free (&c->env);
        free (c->name);
        free (c->log);
    }
    free (self->log_dir);
    free (self);
    *self_p = NULL;
}
