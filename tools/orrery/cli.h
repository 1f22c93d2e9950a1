/*  cli: the `orrery` command's subcommands and the small helpers they share. */
#ifndef CLI_H
#define CLI_H

int cli_up (int argc, char **argv);
int cli_events (int argc, char **argv);
int cli_publish (int argc, char **argv);

/* Absolute form of `path` (need not exist); caller frees. */
char *cli_absolute (const char *path);
/* mkdir -p; 0 or -1 with errno. */
int cli_mkdirs (const char *path);
/* "<dir of this executable>/orrery-<service>"; caller frees. */
char *cli_sibling (const char *service);

#endif
