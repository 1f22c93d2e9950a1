/*  test_scopes: the scope algebra (lib/orr_scopes), roles (lib/orr_roles), timestamps
 *  (lib/orr_time) and the crypto helpers, each against values worked out by hand from
 *  jupyterhub-api.md §1 and §8.
 */
#include "testutil.h"

#include "orr_crypto.h"
#include "orr_roles.h"
#include "orr_scopes.h"
#include "orr_time.h"
#include "orr_util.h"

#include <string.h>

/* A fixed membership table: alice and bob are in "lab". */
static bool
s_member (void *ctx, const char *user, const char *group)
{
    return strcmp (group, "lab") == 0 && (strcmp (user, "alice") == 0 || strcmp (user, "bob") == 0);
}

static orr_scopes_t *
s_expand (const char *const *scopes, const char *kind, const char *name)
{
    orr_scopes_t *s = orr_scopes_new ();
    char err[256];
    for (int i = 0; scopes[i]; i++)
        CHECK (orr_scopes_expand_into (s, scopes[i], kind, name, err, sizeof err) == 0, "%s: %s", scopes[i], err);
    return s;
}

static void
test_expansion (void)
{
    const char *admin_users[] = { "admin:users", NULL };
    orr_scopes_t *s = s_expand (admin_users, "user", "alice");
    /* admin:users -> admin:auth_state, users (-> read:users (-> name, groups, activity),
     * list:users, users:activity), read:roles:users, delete:users */
    const char *want[] = { "admin:auth_state", "admin:users", "delete:users", "list:users", "read:roles:users",
                           "read:users", "read:users:activity", "read:users:groups", "read:users:name", "users",
                           "users:activity", NULL };
    size_t n = 0;
    while (want[n])
        n++;
    CHECK_EQ_INT (orr_scopes_size (s), n);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_STR (orr_scopes_at (s, i), want[i]);
    orr_scopes_destroy (&s);

    /* filters are carried down; bare filters are filled from the owner */
    const char *filtered[] = { "servers!user", "read:servers!server=bob/gpu", NULL };
    s = s_expand (filtered, "user", "alice");
    CHECK (orr_scopes_contains (s, "servers!user=alice"));
    CHECK (orr_scopes_contains (s, "delete:servers!user=alice"));
    CHECK (orr_scopes_contains (s, "read:users:name!user=alice"));   /* read:servers -> read:users:name */
    CHECK (orr_scopes_contains (s, "read:servers!server=bob/gpu"));
    /* §8: a read:* scope with a server filter also grants read:users:name of that user */
    CHECK (orr_scopes_contains (s, "read:users:name!user=bob"));
    CHECK (!orr_scopes_contains (s, "servers"));
    orr_scopes_destroy (&s);

    /* self = the user's own scopes, all filtered to them */
    const char *self[] = { "self", NULL };
    s = s_expand (self, "user", "carol");
    CHECK (orr_scopes_contains (s, "tokens!user=carol"));
    CHECK (orr_scopes_contains (s, "access:servers!user=carol"));
    CHECK (!orr_scopes_contains (s, "list:users"));
    orr_scopes_destroy (&s);

    /* validity */
    CHECK (orr_scope_is_valid ("read:users!group=lab"));
    CHECK (!orr_scope_is_valid ("read:users!team=lab"));
    CHECK (!orr_scope_is_valid ("read:users!user="));
    CHECK (!orr_scope_is_valid ("read:servers!server=noslash"));
    CHECK (!orr_scope_is_valid ("read:servers!server=/x"), "a server filter needs its user");
    /* the read-server rule applies to implied read:* scopes too (found by fuzz_scopes) */
    const char *servers_one[] = { "servers!server=alice/x", NULL };
    orr_scopes_t *so = s_expand (servers_one, "user", "z");
    CHECK (orr_scopes_contains (so, "read:servers!server=alice/x"));
    CHECK (orr_scopes_contains (so, "read:users:name!user=alice"));
    orr_scopes_destroy (&so);
    CHECK (!orr_scope_is_valid ("no:such:scope"));
    CHECK (!orr_scope_is_valid ("custom:thing"));
    orr_scopes_define_custom ("custom:thing");
    CHECK (orr_scope_is_valid ("custom:thing!user=alice"));
    char err[256];
    orr_scopes_t *bad = orr_scopes_new ();
    CHECK (orr_scopes_expand_into (bad, "read:users!service", "user", "alice", err, sizeof err) != 0,
           "a user cannot fill a bare service filter");
    orr_scopes_destroy (&bad);
}

static void
test_checks (void)
{
    const char *held[] = { "read:users!user=alice", "servers!group=lab", "list:groups", NULL };
    orr_scopes_t *s = s_expand (held, "user", "x");
    const char *read_any[] = { "read:users", "read:users:name", NULL };
    orr_scope_target_t alice = { .user = "alice" }, bob = { .user = "bob" }, carol = { .user = "carol" };
    CHECK_EQ_INT (orr_scopes_check (s, read_any, &alice, s_member, NULL), ORR_SCOPE_ALLOW);
    /* held but filtered away: 404, not 403 */
    CHECK_EQ_INT (orr_scopes_check (s, read_any, &bob, s_member, NULL), ORR_SCOPE_NOT_FOUND);
    const char *admin[] = { "admin:users", NULL };
    CHECK_EQ_INT (orr_scopes_check (s, admin, &alice, s_member, NULL), ORR_SCOPE_MISSING);
    /* group filter: members and their servers */
    const char *servers[] = { "servers", NULL };
    orr_scope_target_t bob_gpu = { .server = "bob/gpu" };
    CHECK_EQ_INT (orr_scopes_check (s, servers, &bob_gpu, s_member, NULL), ORR_SCOPE_ALLOW);
    CHECK_EQ_INT (orr_scopes_check (s, servers, &carol, s_member, NULL), ORR_SCOPE_NOT_FOUND);
    /* unfiltered wins for any target, including none */
    const char *lg[] = { "list:groups", NULL };
    orr_scope_target_t none = { 0 };
    CHECK_EQ_INT (orr_scopes_check (s, lg, &none, s_member, NULL), ORR_SCOPE_ALLOW);
    /* scopes are tried in order: the first held decides, even when a later one would
     * allow (carol: read:users:name is held only for alice and group lab) */
    const char *order[] = { "read:users:name", "list:groups", NULL };
    CHECK_EQ_INT (orr_scopes_check (s, order, &carol, s_member, NULL), ORR_SCOPE_NOT_FOUND);
    /* bob is in lab: servers!group=lab implies read:users:name!group=lab */
    CHECK_EQ_INT (orr_scopes_check (s, order, &bob, s_member, NULL), ORR_SCOPE_ALLOW);
    orr_scopes_destroy (&s);
}

static void
test_intersection (void)
{
    char err[256];
    /* token asks for all of read:users; the owner may only read alice: narrowed */
    orr_scopes_t *token = orr_scopes_new (), *owner = orr_scopes_new ();
    orr_scopes_expand_into (token, "read:users", "user", "x", err, sizeof err);
    orr_scopes_expand_into (owner, "read:users!user=alice", "user", "x", err, sizeof err);
    orr_scopes_t *eff = orr_scopes_intersect (token, owner, s_member, NULL);
    CHECK (orr_scopes_contains (eff, "read:users!user=alice"));
    CHECK (!orr_scopes_contains (eff, "read:users"));
    orr_scopes_destroy (&eff);
    orr_scopes_destroy (&token);
    orr_scopes_destroy (&owner);
    /* a server filter survives an owner's user filter; a user inside a group survives */
    token = orr_scopes_new ();
    owner = orr_scopes_new ();
    orr_scopes_expand_into (token, "access:servers!server=alice/", "user", "x", err, sizeof err);
    orr_scopes_expand_into (token, "servers!user=bob", "user", "x", err, sizeof err);
    orr_scopes_expand_into (token, "admin:users", "user", "x", err, sizeof err);
    orr_scopes_expand_into (owner, "access:servers!user=alice", "user", "x", err, sizeof err);
    orr_scopes_expand_into (owner, "servers!group=lab", "user", "x", err, sizeof err);
    eff = orr_scopes_intersect (token, owner, s_member, NULL);
    CHECK (orr_scopes_contains (eff, "access:servers!server=alice/"));
    CHECK (orr_scopes_contains (eff, "servers!user=bob"));
    CHECK (!orr_scopes_contains (eff, "admin:users"), "the owner lost admin:users: the token loses it too");
    CHECK (!orr_scopes_contains (eff, "servers!group=lab"), "never wider than what the token asked");
    orr_scopes_destroy (&eff);
    orr_scopes_destroy (&token);
    orr_scopes_destroy (&owner);
}

static void
test_roles (void)
{
    char err[512] = "";
    orr_roles_t *roles = orr_roles_new (
        "[{\"name\": \"lab-reader\", \"scopes\": [\"read:users!group=lab\"], \"groups\": [\"lab\"]},"
        " {\"name\": \"admin\", \"users\": [\"root\"]}]",
        err, sizeof err);
    CHECK (roles, "%s", err);
    const char *groups[] = { "lab", NULL };
    orr_scopes_t *s = orr_roles_user_scopes (roles, "bob", false, groups);
    CHECK (orr_scopes_contains (s, "read:users!group=lab"));
    CHECK (orr_scopes_contains (s, "tokens!user=bob"), "every user holds the user role");
    CHECK (!orr_scopes_contains (s, "admin:users"));
    orr_scopes_destroy (&s);
    s = orr_roles_user_scopes (roles, "root", false, NULL);
    CHECK (orr_scopes_contains (s, "admin:users"), "load_roles may add members to the admin role");
    orr_scopes_destroy (&s);
    json_t *names = orr_roles_of_user (roles, "root", true);
    CHECK_EQ_INT (json_array_size (names), 2);   /* user, admin: once, though held twice */
    json_decref (names);
    orr_roles_destroy (&roles);
    CHECK (!orr_roles_new ("[{\"name\": \"BadName\", \"scopes\": []}]", err, sizeof err));
    CHECK (!orr_roles_new ("[{\"name\": \"r1\", \"scopes\": [\"nope\"]}]", err, sizeof err));
    CHECK (!orr_roles_new ("[{\"name\": \"user\", \"scopes\": [\"admin:users\"]}]", err, sizeof err),
           "built-in roles keep their scopes");
    CHECK (!orr_roles_new ("{not json", err, sizeof err));
    /* several members in one list (found by fuzz_json_bodies: the merge lost its terminator) */
    roles = orr_roles_new ("[{\"name\": \"many\", \"scopes\": [\"read:hub\"], \"users\": [\"a\", \"b\", \"c\", \"a\"],"
                           " \"groups\": [\"s\", \"\"]}]",
                           err, sizeof err);
    CHECK (roles, "%s", err);
    s = orr_roles_user_scopes (roles, "c", false, NULL);
    CHECK (orr_scopes_contains (s, "read:hub"));
    orr_scopes_destroy (&s);
    orr_roles_destroy (&roles);
}

static void
test_time_and_crypto (void)
{
    char buf[ORR_ISO_LEN];
    CHECK_EQ_STR (orr_time_format (1668588150000000LL, buf), "2022-11-16T08:42:30Z");
    CHECK_EQ_STR (orr_time_format (1668588150123456LL, buf), "2022-11-16T08:42:30.123456Z");
    int64_t us;
    CHECK (orr_time_parse ("2022-11-16T08:42:30.123456Z", &us) == 0 && us == 1668588150123456LL);
    CHECK (orr_time_parse ("2022-11-16T10:42:30+02:00", &us) == 0 && us == 1668588150000000LL);
    CHECK (orr_time_parse ("2022-11-16 08:42:30", &us) == 0 && us == 1668588150000000LL);
    CHECK (orr_time_parse ("2022-02-30T00:00:00Z", &us) != 0, "no 30 February");
    CHECK (orr_time_parse ("2015-06-31T23:59:60Z", &us) != 0, "no 31 June, leap second or not (fuzz_http_route)");
    CHECK (orr_time_parse ("2016-12-31T23:59:60Z", &us) == 0 && us == 1483228800000000LL, "a real leap second");
    CHECK (orr_time_parse ("2022-11-16T08:42:30Zjunk", &us) != 0);
    CHECK (orr_time_parse ("yesterday", &us) != 0);
    char hex[ORR_SHA256_HEX_LEN + 1];
    orr_sha256_hex ("abc", 3, hex);
    CHECK_EQ_STR (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    orr_hmac_sha256_hex ("key", "The quick brown fox jumps over the lazy dog", 43, hex);
    CHECK_EQ_STR (hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    char t1[ORR_TOKEN_HEX_LEN + 1], t2[ORR_TOKEN_HEX_LEN + 1];
    orr_token_new (t1);
    orr_token_new (t2);
    CHECK (strlen (t1) == 32 && strcmp (t1, t2) != 0);
    CHECK (orr_secret_equal ("abc", "abc") && !orr_secret_equal ("abc", "abd") && !orr_secret_equal ("abc", "abcd"));
}

int
main (void)
{
    test_expansion ();
    test_checks ();
    test_intersection ();
    test_roles ();
    test_time_and_crypto ();
    printf ("test_scopes: ok\n");
    return 0;
}
