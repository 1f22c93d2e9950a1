/*  cli_util: helpers of the `orrery` command: finding the service binaries next to
 *  itself, making the state directory, and finding a running stack's settings (its
 *  <state-dir>/orrery.env) for the commands that talk to it.
 */
#include "cli.h"
#include "orr_config.h"
#include "orr_log.h"
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

static const orr_setting_t s_settings[] = {
    { "STATE_DIR", "./.orrery", "the state directory of the `orrery up` to talk to (its orrery.env names the bus)" },
    { NULL, NULL, NULL },
};

/* Splits argv into options (kept in argv, compacted) and positional arguments. */
int
cli_positionals (int *argc, char **argv, char **pos, int max)
{
    int n = 0, out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strncmp (argv[i], "--", 2) == 0) {
            argv[out++] = argv[i];
            bool has_value = !strchr (argv[i], '=') && strcmp (argv[i], "--help") != 0;
            if (has_value && i + 1 < *argc)
                argv[out++] = argv[++i];
        }
        else if (n < max)
            pos[n++] = argv[i];
        else
            return -1;
    }
    *argc = out;
    return n;
}

/* Points CONFIG_FILE at <state>/orrery.env unless the caller chose a file or a bus. */
static void
s_find_stack (orr_config_t *config, int argc, char **argv)
{
    if (getenv ("ORRERY_CONFIG_FILE") || getenv ("ORRERY_BUS"))
        return;
    const char *state = getenv ("ORRERY_STATE_DIR");
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--state-dir") == 0 && i + 1 < argc)
            state = argv[i + 1];
        else if (strncmp (argv[i], "--state-dir=", 12) == 0)
            state = argv[i] + 12;
    }
    char *path = orr_sprintf ("%s/orrery.env", state ? state : "./.orrery");
    if (access (path, R_OK) == 0)
        orr_config_set (config, "CONFIG_FILE", path);
    free (path);
}

orr_config_t *
cli_stack_config (const char *program, const char *summary, int argc, char **argv, int *rc)
{
    orr_config_t *config = orr_config_new (program, summary, s_settings);
    s_find_stack (config, argc, argv);
    *rc = orr_config_load (config, argc, argv);
    orr_config_apply_logging (config, "cli");
    orr_log_set_level ("warn");
    return config;
}

