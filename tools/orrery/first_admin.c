/*  first_admin: how to sign in to a stack `orrery up` just started.
 *
 *  With the built-in authenticator, the first admin (the first of ORRERY_ADMIN_USERS, or
 *  "admin") gets a random password the first time the state directory is used, printed
 *  once on the terminal and never stored in clear; later starts say how to reset it.
 *  With LDAP or the demo authenticator there is no password of ours to give.
 */
#include "cli.h"
#include "orr_bus_client.h"
#include "orr_identity.h"
#include "orr_rpc.h"
#include "orr_store.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_call (orr_bus_client_t *client, const char *method, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = orr_zalloc (n + 1);
    protobuf_c_message_pack (msg, buf);
    orr_rpc_reply_t reply;
    int st = orr_rpc_call (client, "auth", method, NULL, buf, n, &reply);
    orr_rpc_reply_clear (&reply);
    free (buf);
    return st;
}

void
cli_first_admin (const char *bus, const char *redis_url, const char *public_url, const char *state, FILE *out)
{
    const char *kind = getenv ("ORRERY_AUTHENTICATOR");
    const char *admins = getenv ("ORRERY_ADMIN_USERS");
    char admin[256] = "admin";
    if (admins && *admins) {
        size_t n = strcspn (admins, ",");
        snprintf (admin, sizeof admin, "%.*s", (int) n, admins);
    }
    if (kind && strcmp (kind, "demo") == 0) {
        fprintf (out, "  sign in:   %shub/login with any user name and the demo password (ORRERY_DEMO_PASSWORD)\n",
                 public_url);
        return;
    }
    if (kind && strcmp (kind, "ldap") == 0) {
        fprintf (out, "  sign in:   %shub/login with your LDAP user name and password%s%s%s\n", public_url,
                 admins ? " (admins: " : "", admins ? admins : "", admins ? ")" : "");
        return;
    }
    orr_bus_opts_t opts;
    orr_bus_opts_init (&opts, bus);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    orr_store_t *store = orr_store_new (redis_url);
    char *names[] = { admin };
    Orrery__UsersCreate create = ORRERY__USERS_CREATE__INIT;
    create.names = names;
    create.n_names = 1;
    create.admin = true;
    int st = s_call (client, "users.create", &create.base);
    orr_user_rec_t rec;
    int found = st == 200 || st == 409 ? orr_user_load (store, admin, &rec) : -1;
    if (found == 1 && !rec.password_hash) {
        char password[25];
        orr_random_hex (password, 12);
        Orrery__UserUpdate set = ORRERY__USER_UPDATE__INIT;
        set.name = admin;
        set.password = password;
        set.has_password = true;
        set.admin = true;
        set.has_admin = true;
        if (s_call (client, "user.update", &set.base) == 200)
            fprintf (out,
                     "  sign in:   %shub/login as %s with password %s\n"
                     "             (shown once; change it at %shub/change-password)\n",
                     public_url, admin, password, public_url);
        else
            fprintf (out, "  sign in:   could not set %s's password; try: orrery user passwd %s --state-dir %s\n",
                     admin, admin, state);
    }
    else if (found == 1)
        fprintf (out,
                 "  sign in:   %shub/login as %s with the password set earlier\n"
                 "             (forgotten? echo NEW | orrery user passwd %s --state-dir %s)\n",
                 public_url, admin, admin, state);
    else
        fprintf (out, "  sign in:   the auth service did not answer; create a token with: orrery token create --user %s "
                      "--admin --state-dir %s\n",
                 admin, state);
    if (found >= 0)
        orr_user_rec_clear (&rec);
    orr_store_destroy (&store);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
}
