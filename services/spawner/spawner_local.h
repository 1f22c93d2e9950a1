/*  spawner_local: the local backend's processes — start one server's process tree with
 *  its environment and limits, find out whether it still runs, stop it, clean up.
 *
 *  No Redis, no bus: the lifecycle (spawner_engine.c) decides what to do; this file does
 *  it to the operating system, so it is tested on its own (tests/test_spawner_local.c).
 *
 *  - A process group and session of its own per server (setsid), so a stop reaches every
 *    process the server started and a spawner that dies leaves its servers running, to be
 *    adopted by its successor (not PR_SET_PDEATHSIG: servers must outlive spawner restarts).
 *  - Identity of a process = pid + start time (/proc/PID/stat field 22), so a reused pid
 *    is never taken for a server.
 *  - Limits: cgroup v2 (memory.max, cpu.max, pids.max) when the unified hierarchy has
 *    those controllers; else cgroup v1 (memory.limit_in_bytes, cpu.cfs_quota_us, pids.max)
 *    in per-server groups below CGROUP_PARENT; else rlimits (RLIMIT_AS for memory; cpu and
 *    pids then go unenforced, and the start says so in its log). The child moves itself
 *    into its groups before exec, so no instruction of the server runs unlimited.
 *  - A clean environment: only what the caller gives (reference §9) plus PATH, LANG, ...
 *    inherited from the spawner when set.
 */
#ifndef SPAWNER_LOCAL_H
#define SPAWNER_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
    LOCAL_LIMITS_NONE = 0,            /* nothing asked */
    LOCAL_LIMITS_CGROUP2,
    LOCAL_LIMITS_CGROUP1,
    LOCAL_LIMITS_RLIMIT,
} local_limits_kind_t;

typedef struct {
    const char *const *argv;          /* NULL-terminated; argv[0] looked up in PATH when it has no '/' */
    const char *const *env;           /* "K=V", NULL-terminated: the whole environment but the inherited few */
    const char *cwd;                  /* created (mode 0700) when missing */
    const char *log_path;             /* stdout+stderr appended; its directory is created */
    const char *cgroup_name;          /* unique per server, e.g. "alice--gpu" (no '/'); used below the parent */
    int64_t mem_limit_bytes;          /* 0 = none */
    int64_t cpu_limit_millis;         /* 0 = none */
    int64_t pids_limit;               /* 0 = none */
} local_start_t;

typedef struct {
    pid_t pid;                        /* process group leader = session leader */
    uint64_t start_time;              /* /proc/PID/stat field 22 */
    local_limits_kind_t limits;       /* what enforces the limits */
} local_proc_t;

/* Where per-server cgroups go (created on first use): "orrery" by default, below
 * /sys/fs/cgroup/<controller>/ (v1) or the unified root (v2). Set once at start-up. */
void local_set_cgroup_parent (const char *name);

/* Tests only: true makes every start with limits use rlimits as if no cgroup were
 * writable, so the fallback can be tested on a host with cgroups. Off by default. */
void local_force_rlimits (bool on);

/* Forks and execs. 0 and *out filled, or -1 with the reason in err (fork failed, cgroup
 * could not be made though limits were asked and cgroups are writable, ...). An exec
 * failure shows later as an exit with status 127 and the reason in the log. */
int local_start (const local_start_t *spec, local_proc_t *out, char *err, size_t errlen);

/* Start time of pid from /proc, 0 when there is no such process. */
uint64_t local_start_time_of (pid_t pid);
/* True when pid runs and still has this start time (a zombie child counts as gone). */
bool local_alive (pid_t pid, uint64_t start_time);

/* Signals the whole process group (after checking identity). 0, or -1 when gone. */
int local_signal (pid_t pid, uint64_t start_time, int sig);

/* Reaps the child when it is ours and has exited: true and *status (waitpid's) filled.
 * For an adopted (not our child) process: true once it no longer runs, status -1. */
bool local_exited (pid_t pid, uint64_t start_time, int *status);

/* True when the kernel's OOM killer killed a process of this server's memory cgroup
 * (v2 memory.events oom_kill, v1 memory.oom_control oom_kill or memory.failcnt with the
 * process gone by SIGKILL). */
bool local_oom_killed (const char *cgroup_name);

/* Kills whatever is left in the server's cgroups (SIGKILL) and removes them. Safe to call
 * twice, and for a server that never had cgroups. */
void local_cleanup (const char *cgroup_name);

/* "exited with status 1", "killed by signal 9 (SIGKILL)", plus ": memory limit reached"
 * when oom: a reason for users. */
void local_describe_exit (int status, bool oom, char *out, size_t outlen);

/* The last `max` bytes of the log (whole lines), for failure reasons and the logs API.
 * Caller frees; NULL when unreadable. */
char *local_log_tail (const char *log_path, size_t max);

#endif
