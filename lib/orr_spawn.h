/*  orr_spawn: start a child program that cannot outlive its parent.
 *
 *  Shared by `orrery up`'s supervisor, the tests and the benchmarks: every child gets
 *  PR_SET_PDEATHSIG(SIGKILL) (so a killed parent leaves nothing behind), a process group
 *  of its own (a terminal's Ctrl-C reaches only the parent, which stops children in its
 *  own order, and killing the group reaches grandchildren), default signal handling,
 *  stdin from /dev/null and, optionally, stdout and stderr appended to a log file.
 */
#ifndef ORR_SPAWN_H
#define ORR_SPAWN_H

#include <sys/types.h>

/* argv[0] is looked up in PATH when it has no '/'. `env`: extra "K=V" entries added to
 * the inherited environment (NULL = none). `log_path`: NULL = inherit stdout/stderr.
 * Returns the pid, or -1 when fork fails (errno set). A failed exec makes the child
 * print why (into the log) and exit 127. */
pid_t orr_spawn (char *const argv[], char *const env[], const char *log_path);

#endif
