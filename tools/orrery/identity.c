/*  identity: `orrery token create` and `orrery user passwd`, the two identity chores an
 *  operator scripts against a running stack.
 *
 *  Both are bus clients of the auth service, found through <state-dir>/orrery.env like
 *  `orrery events`. On a bus without CURVE every local client is trusted (anonymous);
 *  with CURVE the command needs a service:* certificate (ORRERY_CURVE_CERT).
 */
#include "cli.h"
#include "orr_bus_client.h"
#include "orr_config.h"
#include "orr_rpc.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCOPES 64

/* Calls auth.<method>; prints the failure and returns non-zero, or 0 with *reply set. */
static int
s_call (orr_config_t *config, const char *method, const ProtobufCMessage *msg, orr_rpc_reply_t *reply)
{
    orr_bus_opts_t opts;
    if (orr_bus_opts_from_config (&opts, config) != 0)
        return 2;
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    size_t n = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = orr_zalloc (n + 1);
    protobuf_c_message_pack (msg, buf);
    int st = orr_rpc_call (client, "auth", method, NULL, buf, n, reply);
    free (buf);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    if (st != 200) {
        fprintf (stderr, "orrery: %s (HTTP-like status %d)\n", reply->error[0] ? reply->error : "auth unavailable", st);
        return 1;
    }
    return 0;
}

/* Removes argv[i] (and its value when `with_value`) from the list. */
static void
s_drop (int *argc, char **argv, int i, bool with_value)
{
    int k = with_value ? 2 : 1;
    memmove (argv + i, argv + i + k, (size_t) (*argc - i - k + 1) * sizeof (char *));
    *argc -= k;
}

int
cli_token (int argc, char **argv)
{
    const char *usage = "usage: orrery token create --user NAME [--admin] [--note TEXT] [--expires-in SECONDS]\n"
                        "                           [--scope SCOPE]... [--state-dir DIR]\n"
                        "Creates the user if needed and prints a new API token alone on stdout.\n";
    if (argc < 2 || strcmp (argv[1], "create") != 0) {
        fputs (usage, argc >= 2 && strcmp (argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp (argv[1], "--help") == 0 ? 0 : 2;
    }
    s_drop (&argc, argv, 1, false);
    const char *user = NULL, *note = "Requested via orrery token create";
    long expires = 0;
    bool admin = false;
    char *scopes[MAX_SCOPES];
    size_t nscopes = 0;
    for (int i = 1; i < argc;) {
        bool has_next = i + 1 < argc;
        if (strcmp (argv[i], "--user") == 0 && has_next) {
            user = argv[i + 1];
            s_drop (&argc, argv, i, true);
        }
        else if (strcmp (argv[i], "--note") == 0 && has_next) {
            note = argv[i + 1];
            s_drop (&argc, argv, i, true);
        }
        else if (strcmp (argv[i], "--expires-in") == 0 && has_next) {
            if (orr_parse_long (argv[i + 1], &expires) != 0 || expires < 0) {
                fprintf (stderr, "orrery: --expires-in takes a number of seconds\n");
                return 2;
            }
            s_drop (&argc, argv, i, true);
        }
        else if (strcmp (argv[i], "--scope") == 0 && has_next && nscopes < MAX_SCOPES) {
            scopes[nscopes++] = argv[i + 1];
            s_drop (&argc, argv, i, true);
        }
        else if (strcmp (argv[i], "--admin") == 0) {
            admin = true;
            s_drop (&argc, argv, i, false);
        }
        else
            i++;
    }
    int rc;
    orr_config_t *config = cli_stack_config ("orrery token create", usage, argc, argv, &rc);
    if (rc != 0 || !user) {
        if (rc == 0)
            fputs (usage, stderr);
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    Orrery__TokenCreate m = ORRERY__TOKEN_CREATE__INIT;
    m.owner = (char *) user;
    m.note = (char *) note;
    m.expires_in_s = expires;
    m.scopes = scopes;
    m.n_scopes = nscopes;
    m.create_user = true;
    m.admin = admin;
    orr_rpc_reply_t reply;
    rc = s_call (config, "token.create", &m.base, &reply);
    if (rc == 0) {
        Orrery__TokenCreated *made = orrery__token_created__unpack (NULL, reply.len, reply.body);
        if (made) {
            printf ("%s\n", made->token);
            orrery__token_created__free_unpacked (made, NULL);
        }
        else
            rc = 1;
    }
    orr_rpc_reply_clear (&reply);
    orr_config_destroy (&config);
    return rc;
}

int
cli_user (int argc, char **argv)
{
    const char *usage = "usage: orrery user passwd NAME [--state-dir DIR]\n"
                        "Sets NAME's built-in password to the first line read from stdin.\n";
    if (argc < 3 || strcmp (argv[1], "passwd") != 0) {
        bool help = argc >= 2 && strcmp (argv[1], "--help") == 0;
        fputs (usage, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *name = argv[2];
    s_drop (&argc, argv, 1, true);
    int rc;
    orr_config_t *config = cli_stack_config ("orrery user passwd", usage, argc, argv, &rc);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    char line[1024];
    if (!fgets (line, sizeof line, stdin)) {
        fprintf (stderr, "orrery: no password on stdin\n");
        orr_config_destroy (&config);
        return 2;
    }
    line[strcspn (line, "\r\n")] = '\0';
    Orrery__UserUpdate m = ORRERY__USER_UPDATE__INIT;
    m.name = (char *) name;
    m.password = line;
    m.has_password = true;
    orr_rpc_reply_t reply;
    rc = s_call (config, "user.update", &m.base, &reply);
    orr_rpc_reply_clear (&reply);
    explicit_bzero (line, sizeof line);
    if (rc == 0)
        fprintf (stderr, "password of %s set\n", name);
    orr_config_destroy (&config);
    return rc;
}
