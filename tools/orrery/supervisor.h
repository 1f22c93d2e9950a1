/*  supervisor: runs a set of child processes, restarts those that die (with backoff) and
 *  stops them all, in reverse start order, leaving none behind.
 */
#ifndef SUPERVISOR_H
#define SUPERVISOR_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct supervisor_t supervisor_t;

supervisor_t *supervisor_new (const char *log_dir);
/* Stops every child still running, then frees. */
void supervisor_destroy (supervisor_t **self_p);

/* Adds and starts a child named `name` (log: <log_dir>/<name>.log). argv and env
 * ("K=V", added to the supervisor's environment) are copied. Returns its index or -1. */
int supervisor_start (supervisor_t *self, const char *name, char *const argv[], char *const env[]);
pid_t supervisor_pid (supervisor_t *self, int index);

/* Reaps exits and restarts what is due; call often (it never blocks). Returns how many
 * children are running. */
int supervisor_tend (supervisor_t *self);
/* SIGTERM to each child (newest first), SIGKILL after `grace_ms`, waiting for all. */
void supervisor_stop_all (supervisor_t *self, int grace_ms);

#endif
