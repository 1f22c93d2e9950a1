/*  orr_spawn: fork/exec with the guarantees every Orrery parent wants. See orr_spawn.h.
 *
 *  The child checks getppid() after PR_SET_PDEATHSIG: if the parent died between fork
 *  and prctl, the signal will never come, so the child exits instead of running
 *  orphaned. The process group is set on both sides of the fork so it holds before the
 *  parent might signal the group.
 */
#include "orr_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SPAWN_CLOSE_FDS_UP_TO 1024

pid_t
orr_spawn (char *const argv[], char *const env[], const char *log_path)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        setpgid (0, 0);
        signal (SIGINT, SIG_DFL);
        signal (SIGTERM, SIG_DFL);
        signal (SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        int devnull = open ("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2 (devnull, 0);
        if (log_path) {
            int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND, 0640);
            if (fd >= 0) {
                dup2 (fd, 1);
                dup2 (fd, 2);
            }
        }
        for (int fd = 3; fd < SPAWN_CLOSE_FDS_UP_TO; fd++)
            close (fd);
        for (char *const *e = env; e && *e; e++)
            putenv (*e);
        execvp (argv[0], argv);
        fprintf (stderr, "cannot run %s: %s\n", argv[0], strerror (errno));
        _exit (127);
    }
    setpgid (pid, pid);
    return pid;
}
