/*  cli: the `orrery` command's subcommands and the small helpers they share. */
#ifndef CLI_H
#define CLI_H

int cli_up (int argc, char **argv);
int cli_events (int argc, char **argv);
int cli_publish (int argc, char **argv);

int cli_token (int argc, char **argv);
int cli_user (int argc, char **argv);

#include <stdio.h>
/* Prints how to sign in to the stack just started (creating the first admin's password
 * when the built-in authenticator is used). */
void cli_first_admin (const char *bus, const char *redis_url, const char *public_url, const char *state, FILE *out);

struct orr_config_t;
/* Splits argv into options (kept in argv, compacted) and up to `max` positional
 * arguments; returns their number or -1 when there are more. */
int cli_positionals (int *argc, char **argv, char **pos, int max);
/* Settings for a command that talks to a running stack: STATE_DIR plus the common ones,
 * read from <state-dir>/orrery.env unless ORRERY_BUS or ORRERY_CONFIG_FILE say otherwise.
 * *rc as orr_config_load. */
struct orr_config_t *cli_stack_config (const char *program, const char *summary, int argc, char **argv, int *rc);

/* Absolute form of `path` (need not exist); caller frees. */
char *cli_absolute (const char *path);
/* mkdir -p; 0 or -1 with errno. */
int cli_mkdirs (const char *path);
/* "<dir of this executable>/orrery-<service>"; caller frees. */
char *cli_sibling (const char *service);

#endif
