/*  orr_config: every setting from ORRERY_* environment variables, with documented defaults.
 *
 *  A program declares its settings as a table of {name, default, help}; names are written
 *  without the ORRERY_ prefix ("REDIS_URL" is read from ORRERY_REDIS_URL). The settings
 *  every service shares (orr_config_common) are added automatically. Values come, in order
 *  of precedence, from the environment, then from the file named by ORRERY_CONFIG_FILE
 *  (KEY=VALUE lines, '#' comments, the ORRERY_ prefix optional), then the default.
 *  `--help` prints every setting with its default and exits.
 */
#ifndef ORR_CONFIG_H
#define ORR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;   /* without the ORRERY_ prefix, upper case */
    const char *def;    /* default value; NULL = unset */
    const char *help;   /* one line */
} orr_setting_t;

typedef struct orr_config_t orr_config_t;

/* The settings every Orrery process understands (bus, Redis, logging, CURVE). */
extern const orr_setting_t orr_config_common[];

/* `settings` ends with an entry whose name is NULL; it must outlive the config. */
orr_config_t *orr_config_new (const char *program, const char *summary, const orr_setting_t *settings);
void orr_config_destroy (orr_config_t **self_p);

/* Reads environment, file and argv (--help, --NAME=VALUE for any setting, e.g.
 * --redis-url=...). Returns 0 when ready, 1 when --help was printed (exit 0), -1 on an
 * error already printed to stderr (exit 2). */
int orr_config_load (orr_config_t *self, int argc, char **argv);

/* Sets a value as if it came from the command line (highest precedence). Copies. */
void orr_config_set (orr_config_t *self, const char *name, const char *value);

/* Returns the value or NULL when unset; owned by the config. Asserts the name is declared. */
const char *orr_config_get (orr_config_t *self, const char *name);
/* Integer/float/bool readers; an unparsable value is reported and yields the default's. */
long orr_config_int (orr_config_t *self, const char *name);
double orr_config_double (orr_config_t *self, const char *name);
bool orr_config_bool (orr_config_t *self, const char *name);

/* Prints the settings table (used by --help and by docs generation). */
void orr_config_print_help (orr_config_t *self, void *file);

/* Sets up logging (service name, replica id, level) from the config: every main calls it. */
void orr_config_apply_logging (orr_config_t *self, const char *service);

#endif
