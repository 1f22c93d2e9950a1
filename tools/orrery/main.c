/*  orrery: the command-line tool. `orrery up` runs the stack; `orrery events` and
 *  `orrery publish` speak to its bus. Each subcommand lives in a file of its own.
 */
#include "cli.h"
#include "orr_signal.h"

#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *f)
{
    fprintf (f, "usage: orrery COMMAND [options]\n\n"
                "  up                      run the whole stack on this machine (--help for options)\n"
                "  events [TOPIC-PREFIX]   print bus events as JSON lines until Ctrl-C\n"
                "  publish TOPIC JSON      publish one event (JSON mapped to the topic's protobuf message)\n"
                "  token create --user N   create user N if needed and print a new API token\n"
                "  user passwd NAME        set NAME's built-in password from stdin\n\n"
                "Each command takes --help. Settings also come from ORRERY_* variables (see docs/configuration.md).\n");
}

int
main (int argc, char **argv)
{
    orr_signal_install ();
    if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp (argv[1], "up") == 0)
        return cli_up (argc - 1, argv + 1);
    if (strcmp (argv[1], "events") == 0)
        return cli_events (argc - 1, argv + 1);
    if (strcmp (argv[1], "publish") == 0)
        return cli_publish (argc - 1, argv + 1);
    if (strcmp (argv[1], "token") == 0)
        return cli_token (argc - 1, argv + 1);
    if (strcmp (argv[1], "user") == 0)
        return cli_user (argc - 1, argv + 1);
    fprintf (stderr, "orrery: unknown command '%s'\n", argv[1]);
    s_usage (stderr);
    return 2;
}
