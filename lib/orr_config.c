/*  orr_config: settings from the environment, an optional file and the command line.
 *
 *  Design: a config is a flat list of declared settings (the program's table followed by
 *  orr_config_common) with one resolved value each. Resolution happens once in
 *  orr_config_load; readers never touch the environment again, so a value cannot change
 *  under a running service. Undeclared names are programmer errors (assert), while bad
 *  values are the operator's and get a clear message.
 */
#include "orr_config.h"
#include "orr_log.h"
#include "orr_util.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_SETTINGS 128
#define CONFIG_LINE_MAX 4096

const orr_setting_t orr_config_common[] = {
    { "CONFIG_FILE", NULL, "file of KEY=VALUE lines read before defaults (environment wins)" },
    { "LOG_LEVEL", "info", "debug, info, warn or error" },
    { "REPLICA_ID", NULL, "this replica's name in logs and on the bus (default: host-pid)" },
    { "REDIS_URL", "redis://127.0.0.1:6379/0", "the Redis that holds all shared state" },
    { "BUS", "tcp://127.0.0.1:5555",
      "comma-separated broker addresses; a broker at tcp://H:P serves requests on P, takes events on P+1, sends events on P+2" },
    { "BUS_TIMEOUT_MS", "2000", "a bus request unanswered this long is retried (same id) on the next broker" },
    { "BUS_RETRIES", "3", "how many times a bus request is sent in all before the caller gets an error" },
    { "BUS_HEARTBEAT_MS", "500", "heartbeat interval between brokers and workers" },
    { "BUS_LIVENESS", "3", "heartbeats missed before a peer counts as dead" },
    { "CURVE", "false", "encrypt and authenticate the bus with CURVE" },
    { "CURVE_SERVER_PUBLIC", NULL, "the brokers' public key (Z85), needed by every bus peer when CURVE is on" },
    { "CURVE_CERT", NULL, "this process's certificate file (zcert, with secret key) when CURVE is on" },
    { NULL, NULL, NULL }
};

typedef struct {
    const orr_setting_t *decl;
    char *value;
    const char *source;       /* "default", "file", "env", "argv" */
} config_entry_t;

struct orr_config_t {
    char *program;
    char *summary;
    config_entry_t entries[CONFIG_MAX_SETTINGS];
    size_t count;
};

static void
s_add_decls (orr_config_t *self, const orr_setting_t *decls)
{
    for (const orr_setting_t *d = decls; d && d->name; d++) {
        bool dup = false;
        for (size_t i = 0; i < self->count; i++)
            if (strcmp (self->entries[i].decl->name, d->name) == 0)
                dup = true;       /* a program may override a common default */
        if (dup)
            continue;
        assert (self->count < CONFIG_MAX_SETTINGS);
        self->entries[self->count].decl = d;
        self->entries[self->count].value = d->def ? orr_strdup (d->def) : NULL;
        self->entries[self->count].source = "default";
        self->count++;
    }
}

orr_config_t *
orr_config_new (const char *program, const char *summary, const orr_setting_t *settings)
{
    orr_config_t *self = orr_zalloc (sizeof *self);
    self->program = orr_strdup (program);
    self->summary = orr_strdup (summary ? summary : "");
    s_add_decls (self, settings);
    s_add_decls (self, orr_config_common);
    return self;
}

void
orr_config_destroy (orr_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_config_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free (self->entries[i].value);
    free (self->program);
    free (self->summary);
    free (self);
    *self_p = NULL;
}

static config_entry_t *
s_find (orr_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->entries[i].decl->name, name) == 0)
            return &self->entries[i];
    return NULL;
}

static void
s_set (config_entry_t *e, const char *value, const char *source)
{
    free (e->value);
    e->value = value ? orr_strdup (value) : NULL;
    e->source = source;
}

void
orr_config_set (orr_config_t *self, const char *name, const char *value)
{
    config_entry_t *e = s_find (self, name);
    assert (e);
    s_set (e, value, "argv");
}

/* "redis-url" or "REDIS_URL" -> "REDIS_URL" */
static void
s_normalise (const char *in, char *out, size_t size)
{
    size_t i = 0;
    for (; in[i] && i < size - 1; i++)
        out[i] = in[i] == '-' ? '_' : (char) toupper ((unsigned char) in[i]);
    out[i] = '\0';
}

static int
s_load_file (orr_config_t *self, const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "%s: cannot read config file %s: %s\n", self->program, path, strerror (errno));
        return -1;
    }
    char line[CONFIG_LINE_MAX];
    int lineno = 0, rc = 0;
    while (fgets (line, sizeof line, f)) {
        lineno++;
        char *s = orr_strtrim (line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr (s, '=');
        if (!eq) {
            fprintf (stderr, "%s: %s:%d: expected KEY=VALUE\n", self->program, path, lineno);
            rc = -1;
            continue;
        }
        *eq = '\0';
        char *key = orr_strtrim (s);
        char *value = orr_strtrim (eq + 1);
        if (strncmp (key, "ORRERY_", 7) == 0)
            key += 7;
        config_entry_t *e = s_find (self, key);
        if (!e) {
            /* One file may serve every Orrery program; each takes the settings it knows.
             * Say so, since a typo lands here too. */
            fprintf (stderr, "%s: %s:%d: setting %s is not one of this program's; ignored\n", self->program, path,
                     lineno, key);
            continue;
        }
        if (strcmp (e->source, "env") != 0 && strcmp (e->source, "argv") != 0)
            s_set (e, value, "file");
    }
    fclose (f);
    return rc;
}

int
orr_config_load (orr_config_t *self, int argc, char **argv)
{
    for (size_t i = 0; i < self->count; i++) {
        char env[160];
        snprintf (env, sizeof env, "ORRERY_%s", self->entries[i].decl->name);
        const char *v = getenv (env);
        if (v)
            s_set (&self->entries[i], v, "env");
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            orr_config_print_help (self, stdout);
            return 1;
        }
    }
    /* the file is read before the other options, so find --config-file first */
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--config-file") == 0 && i + 1 < argc)
            s_set (s_find (self, "CONFIG_FILE"), argv[i + 1], "argv");
        else if (strncmp (argv[i], "--config-file=", 14) == 0)
            s_set (s_find (self, "CONFIG_FILE"), argv[i] + 14, "argv");
    }
    const char *file = orr_config_get (self, "CONFIG_FILE");
    if (file && *file && s_load_file (self, file) != 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp (argv[i], "--", 2) != 0) {
            fprintf (stderr, "%s: unexpected argument '%s' (see --help)\n", self->program, argv[i]);
            return -1;
        }
        char name[128];
        const char *eq = strchr (argv[i], '=');
        const char *value;
        if (eq) {
            size_t n = (size_t) (eq - argv[i] - 2);
            char raw[128];
            snprintf (raw, sizeof raw, "%.*s", (int) (n < sizeof raw ? n : sizeof raw - 1), argv[i] + 2);
            s_normalise (raw, name, sizeof name);
            value = eq + 1;
        }
        else {
            s_normalise (argv[i] + 2, name, sizeof name);
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: %s needs a value\n", self->program, argv[i]);
                return -1;
            }
            value = argv[++i];
        }
        config_entry_t *e = s_find (self, name);
        if (!e) {
            fprintf (stderr, "%s: unknown option %s (see --help)\n", self->program, arg);
            return -1;
        }
        s_set (e, value, "argv");
    }
    return 0;
}

const char *
orr_config_get (orr_config_t *self, const char *name)
{
    config_entry_t *e = s_find (self, name);
    assert (e && "setting not declared");
    return e->value;
}

long
orr_config_int (orr_config_t *self, const char *name)
{
    config_entry_t *e = s_find (self, name);
    assert (e && "setting not declared");
    long v;
    if (e->value && orr_parse_long (e->value, &v) == 0)
        return v;
    if (e->decl->def && orr_parse_long (e->decl->def, &v) == 0) {
        if (e->value)
            orr_warn ("ORRERY_%s=%s is not an integer; using %s", name, e->value, e->decl->def);
        return v;
    }
    return 0;
}

double
orr_config_double (orr_config_t *self, const char *name)
{
    config_entry_t *e = s_find (self, name);
    assert (e && "setting not declared");
    char *end;
    if (e->value) {
        errno = 0;
        double v = strtod (e->value, &end);
        if (errno == 0 && end != e->value && *end == '\0')
            return v;
        orr_warn ("ORRERY_%s=%s is not a number; using %s", name, e->value, e->decl->def ? e->decl->def : "0");
    }
    return e->decl->def ? strtod (e->decl->def, NULL) : 0.0;
}

bool
orr_config_bool (orr_config_t *self, const char *name)
{
    const char *v = orr_config_get (self, name);
    if (!v)
        return false;
    return strcasecmp (v, "1") == 0 || strcasecmp (v, "true") == 0 || strcasecmp (v, "yes") == 0
           || strcasecmp (v, "on") == 0;
}

void
orr_config_print_help (orr_config_t *self, void *file)
{
    FILE *f = file;
    fprintf (f, "usage: %s [--setting-name VALUE ...]\n%s\n\n", self->program, self->summary);
    fprintf (f, "Settings (environment variable, default, meaning); --name VALUE on the command line\n"
                "overrides ORRERY_NAME, which overrides the file named by ORRERY_CONFIG_FILE.\n\n");
    for (size_t i = 0; i < self->count; i++) {
        const orr_setting_t *d = self->entries[i].decl;
        fprintf (f, "  ORRERY_%-26s default: %s\n      %s\n", d->name, d->def ? d->def : "(unset)", d->help);
    }
}

void
orr_config_apply_logging (orr_config_t *self, const char *service)
{
    const char *replica = orr_config_get (self, "REPLICA_ID");
    char fallback[96];
    if (!replica || !*replica) {
        char host[64] = "host";
        gethostname (host, sizeof host - 1);
        snprintf (fallback, sizeof fallback, "%s-%d", host, (int) getpid ());
        replica = fallback;
    }
    orr_log_init (service, replica);
    const char *level = orr_config_get (self, "LOG_LEVEL");
    if (orr_log_set_level (level) != 0)
        orr_warn ("ORRERY_LOG_LEVEL=%s is not one of debug, info, warn, error; keeping info", level);
}
