/*  cli_util: path helpers of the `orrery` command (finding the service binaries next to
 *  itself, making the state directory).
 */
#include "cli.h"
#include "orr_util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *
cli_absolute (const char *path)
{
    if (path[0] == '/')
        return orr_strdup (path);
    char cwd[PATH_MAX];
    if (!getcwd (cwd, sizeof cwd))
        return orr_strdup (path);
    const char *p = strncmp (path, "./", 2) == 0 ? path + 2 : path;
    return orr_sprintf ("%s/%s", cwd, p);
}

int
cli_mkdirs (const char *path)
{
    char *copy = orr_strdup (path);
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir (copy, 0755) != 0 && errno != EEXIST) {
                free (copy);
                return -1;
            }
            *p = '/';
        }
    int rc = mkdir (copy, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free (copy);
    return rc;
}

char *
cli_sibling (const char *service)
{
    char exe[PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return orr_sprintf ("orrery-%s", service);
    exe[n] = '\0';
    char *slash = strrchr (exe, '/');
    if (slash)
        *slash = '\0';
    return orr_sprintf ("%s/orrery-%s", exe, service);
}
