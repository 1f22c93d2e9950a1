/*  Configuration and logs: precedence (argv > environment > file > default), --help on
 *  every binary lists each setting with its default, bad values are refused with a clear
 *  message, and every log line is one JSON object with time, level, service, replica,
 *  request_id and message.
 */
#include "orr_config.h"
#include "orr_util.h"
#include "testutil.h"

#include <jansson.h>
#include <string.h>
#include <sys/wait.h>

static const orr_setting_t s_settings[] = {
    { "ALPHA", "1", "a number" },
    { "BETA", "from-default", "a word" },
    { "GAMMA", "x", "another word" },
    { NULL, NULL, NULL },
};

/* Runs argv with extra env; captures stdout+stderr into a malloc'd string; returns the exit status. */
static int
s_run (char *const argv[], char *const env[], char **out)
{
    char *dir = tu_tmpdir ("cfg-run");
    char *log = orr_sprintf ("%s/out", dir);
    pid_t pid = tu_spawn (argv, env, log);
    int status = tu_stop (pid, 0, 10000);   /* signal 0: just wait */
    FILE *f = fopen (log, "r");
    size_t cap = 1 << 16, n = 0;
    *out = orr_zalloc (cap);
    if (f) {
        n = fread (*out, 1, cap - 1, f);
        fclose (f);
    }
    (*out)[n] = '\0';
    free (log);
    tu_tmpdir_remove (&dir);
    return status;
}

int
main (void)
{
    /* precedence */
    char *dir = tu_tmpdir ("cfg");
    char *file = orr_sprintf ("%s/orrery.conf", dir);
    FILE *f = fopen (file, "w");
    fprintf (f, "# comment\nORRERY_ALPHA = 2\nBETA=from-file\nGAMMA=from-file\n");
    fclose (f);
    setenv ("ORRERY_CONFIG_FILE", file, 1);
    setenv ("ORRERY_BETA", "from-env", 1);
    setenv ("ORRERY_GAMMA", "from-env", 1);
    orr_config_t *c = orr_config_new ("t", "test", s_settings);
    char *argv[] = { "t", "--gamma", "from-argv", NULL };
    CHECK_EQ_INT (orr_config_load (c, 3, argv), 0);
    CHECK_EQ_INT (orr_config_int (c, "ALPHA"), 2);
    CHECK_EQ_STR (orr_config_get (c, "BETA"), "from-env");
    CHECK_EQ_STR (orr_config_get (c, "GAMMA"), "from-argv");
    CHECK_EQ_STR (orr_config_get (c, "REDIS_URL"), "redis://127.0.0.1:6379/0");   /* common default */
    orr_config_destroy (&c);
    CHECK (c == NULL);
    /* an unknown option and an unknown file key are errors, not silently ignored */
    c = orr_config_new ("t", "test", s_settings);
    char *bad[] = { "t", "--no-such-thing", "1", NULL };
    CHECK_EQ_INT (orr_config_load (c, 3, bad), -1);
    orr_config_destroy (&c);
    /* one file may serve every program: a key another program uses is passed over */
    f = fopen (file, "a");
    fprintf (f, "ORRERY_PORT=9000\n");
    fclose (f);
    c = orr_config_new ("t", "test", s_settings);
    char *plain[] = { "t", NULL };
    CHECK_EQ_INT (orr_config_load (c, 1, plain), 0);
    CHECK_EQ_INT (orr_config_int (c, "ALPHA"), 2);
    orr_config_destroy (&c);
    /* --config-file on the command line is read, and is below the rest of the argv */
    unsetenv ("ORRERY_CONFIG_FILE");
    unsetenv ("ORRERY_BETA");
    unsetenv ("ORRERY_GAMMA");
    c = orr_config_new ("t", "test", s_settings);
    char *with_file[] = { "t", "--alpha", "7", "--config-file", file, NULL };
    CHECK_EQ_INT (orr_config_load (c, 5, with_file), 0);
    CHECK_EQ_INT (orr_config_int (c, "ALPHA"), 7);
    CHECK_EQ_STR (orr_config_get (c, "BETA"), "from-file");
    orr_config_destroy (&c);
    unsetenv ("ORRERY_CONFIG_FILE");
    unsetenv ("ORRERY_BETA");
    unsetenv ("ORRERY_GAMMA");

    /* --help everywhere */
    const char *bins[] = { "orrery-bus", "orrery-auth", "orrery-spawner", "orrery-scheduler", "orrery-proxyctl",
                           "orrery-gateway" };
    for (size_t i = 0; i < sizeof bins / sizeof *bins; i++) {
        char *path = tu_bin (bins[i]);
        char *av[] = { path, "--help", NULL };
        char *out;
        int st = s_run (av, NULL, &out);
        CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0, "%s --help exited %d", bins[i], st);
        CHECK (strstr (out, "ORRERY_REDIS_URL") && strstr (out, "default: redis://127.0.0.1:6379/0")
                   && strstr (out, "ORRERY_BUS ") && strstr (out, "ORRERY_LOG_LEVEL"),
               "%s --help lacks the common settings:\n%s", bins[i], out);
        free (out);
        free (path);
    }
    char *orrery = tu_bin ("orrery");
    char *up_help[] = { orrery, "up", "--help", NULL };
    char *out;
    int st = s_run (up_help, NULL, &out);
    CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0 && strstr (out, "ORRERY_PORT") && strstr (out, "default: 8000")
               && strstr (out, "ORRERY_STATE_DIR") && strstr (out, "default: ./.orrery"),
           "orrery up --help:\n%s", out);
    free (out);
    char *gw_help[] = { tu_bin ("orrery-gateway"), "--help", NULL };
    st = s_run (gw_help, NULL, &out);
    CHECK (strstr (out, "ORRERY_GATEWAY_PORT") && strstr (out, "default: 8081"), "gateway --help:\n%s", out);
    free (out);
    free (gw_help[0]);

    /* a bad setting: exit code 2 and a JSON log line that says what is wrong */
    char *auth[] = { tu_bin ("orrery-auth"), NULL };
    char *env[] = { "ORRERY_BUS=udp://nowhere", "ORRERY_REPLICA_ID=auth-test", NULL };
    st = s_run (auth, env, &out);
    CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 2, "bad ORRERY_BUS: exit %d", st);
    json_error_t jerr;
    json_t *line = json_loads (out, JSON_DISABLE_EOF_CHECK, &jerr);
    CHECK (line != NULL, "log line is not JSON: %s", out);
    CHECK_EQ_STR (json_string_value (json_object_get (line, "level")), "error");
    CHECK_EQ_STR (json_string_value (json_object_get (line, "service")), "auth");
    CHECK_EQ_STR (json_string_value (json_object_get (line, "replica")), "auth-test");
    CHECK (json_is_null (json_object_get (line, "request_id")));
    CHECK (json_string_value (json_object_get (line, "time")) != NULL);
    CHECK (strstr (json_string_value (json_object_get (line, "message")), "udp://nowhere") != NULL, "%s", out);
    json_decref (line);
    free (out);
    free (auth[0]);
    /* an unknown option is refused */
    char *bus_bad[] = { tu_bin ("orrery-bus"), "--frobnicate", "1", NULL };
    st = s_run (bus_bad, NULL, &out);
    CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 2 && strstr (out, "unknown option --frobnicate"), "%s", out);
    free (out);
    free (bus_bad[0]);
    free (orrery);
    free (file);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
