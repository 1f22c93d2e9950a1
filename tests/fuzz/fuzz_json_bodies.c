/*  fuzz_json_bodies: libFuzzer target for the JSON bodies the REST API accepts, and for the
 *  JSON configuration the same library code parses.
 *
 *  Input: one request body, bytes as received (no terminator: it sits in a buffer of
 *  exactly its length, as gw_body_json reads it with json_loadb).
 *
 *  What runs on it, exactly:
 *   1. For each endpoint with a JSON body -- POST /users {usernames, admin}; POST
 *      /users/{n} {admin}; PATCH /users/{n} {name, admin, auth_state, password}; POST
 *      /users/{n}/tokens {note, expires_in, scopes, roles, auth}; POST /groups {groups,
 *      users}; POST /groups/{g} {users}; POST and DELETE /groups/{g}/users {users}; POST
 *      /shutdown {servers, proxy} -- the real checks of services/gateway/gw_routes.c
 *      (gw_body_json with JSON_REJECT_DUPLICATES, gw_keys_ok, gw_string_list) followed by
 *      the handler's type checks, copied here in the handler's order. Their error replies
 *      are built for real and then refused by MHD_queue_response, which answers MHD_NO for
 *      a NULL connection (the request here has conn NULL; nothing else touches it).
 *      The handlers' own code is NOT called: after validation each one calls the auth
 *      service over the bus, which this target does not have.
 *   2. What an accepted body reaches next, with lib calls: the token endpoint's scopes and
 *      roles are resolved as services/auth/auth_tokens.c does (scope words checked with
 *      orr_scope_is_valid, expanded with orr_scopes_expand_into or orr_roles_expand for
 *      owner user "alice", then orr_scopes_intersect with the owner's scopes from
 *      orr_roles_user_scopes); user and group names go to orr_roles_of_user /
 *      orr_roles_of_group; PATCH's auth_state is dumped as the handler does.
 *   3. Every string of the parsed body (keys and values, depth <= 32, at most 256) goes to
 *      orr_scope_is_valid, orr_scopes_expand_into and orr_time_parse (this also covers the
 *      timestamps of the activity body of jupyterhub-api.md §6, which has no handler yet).
 *   4. json_dumps / json_loadb round trip of the parsed body: same value, same text.
 *   5. The input as configuration: orr_roles_new (load_roles) and orr_hubservices_new
 *      (services) on the text itself when it starts with '[' after the blanks they skip
 *      (anything else would be opened as a file path), and on "[" input "]" so one body
 *      is also one role or service entry; whatever loads is queried (roles of users,
 *      groups and services; user and service scopes; each service's model and lookups).
 *      The text is the input cut at its first NUL, as an environment variable would be.
 *
 *  Invariants (abort() on violation): gw_string_list keeps every string of an accepted
 *  list; auth_state survives its dump; an intersection keeps only scopes of its operands;
 *  the built-in roles always exist and a loaded role expands; a loaded service is found by
 *  its name, its OAuth client id and its token hash; and the round trip of 4. Beyond
 *  these, the target looks for what ASan, UBSan and LeakSanitizer report.
 *
 *  Not deterministic across inputs in one respect: orr_roles_new declares the custom
 *  scopes it reads process-wide (orr_scopes_define_custom, at most 256), so a custom scope
 *  of one input stays valid for later ones.
 */
#include "gw_api.h"
#include "orr_hubservices.h"
#include "orr_roles.h"
#include "orr_scopes.h"
#include "orr_time.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, what)                                                                         \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf (stderr, "fuzz_json_bodies: invariant violated: %s\n  (%s)\n", what, #cond); \
            abort ();                                                                             \
        }                                                                                         \
    } while (0)

static orr_roles_t *s_builtin_roles;

static bool
s_is_member (void *ctx, const char *user, const char *group)
{
    (void) ctx;
    return strcmp (user, "alice") == 0 && (strcmp (group, "staff") == 0 || strcmp (group, "dev") == 0);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    json_object_seed (1);   /* same key order in every run, so crashes replay */
    char err[256];
    s_builtin_roles = orr_roles_new (NULL, err, sizeof err);
    if (!s_builtin_roles)
        abort ();
    return 0;
}

/* --- 1 and 2: the endpoints ------------------------------------------------------------- */

static void
s_user_names (const orr_roles_t *roles, const char **names, size_t n, bool admin)
{
    for (size_t i = 0; i < n; i++)
        json_decref (orr_roles_of_user (roles, names[i], admin));
}

/* POST /hub/api/users (gw_api_users_create) */
static void
s_users_create (const gw_request_t *req, const orr_roles_t *roles)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return;
    static const char *const keys[] = { "usernames", "admin", NULL };
    size_t n = 0;
    const char **names = NULL;
    json_t *admin = json_object_get (body, "admin");
    if (!json_is_object (body) || !gw_keys_ok (req, body, keys, &rc) || (admin && !json_is_boolean (admin)))
        ;
    else if ((names = gw_string_list (req, json_object_get (body, "usernames"), "usernames", &n, &rc)) != NULL) {
        CHECK (n == json_array_size (json_object_get (body, "usernames")), "gw_string_list keeps every string");
        s_user_names (roles, names, n, json_is_true (admin));
    }
    free (names);
    json_decref (body);
}

/* POST /hub/api/users/{name} (gw_api_user_create); an accepted body goes to users.create
 * over the bus, so there is nothing more to run here. True when accepted. */
static bool
s_user_create (const gw_request_t *req)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return false;
    static const char *const keys[] = { "admin", NULL };
    json_t *admin = body ? json_object_get (body, "admin") : NULL;
    bool ok = !(body && !json_is_object (body)) && !(body && !gw_keys_ok (req, body, keys, &rc))
              && !(admin && !json_is_boolean (admin));
    json_decref (body);
    return ok;
}

/* PATCH /hub/api/users/{name} (gw_api_user_patch) */
static void
s_user_patch (const gw_request_t *req)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return;
    static const char *const keys[] = { "name", "admin", "auth_state", "password", NULL };
    json_t *name = json_object_get (body, "name"), *admin = json_object_get (body, "admin");
    json_t *state = json_object_get (body, "auth_state"), *password = json_object_get (body, "password");
    if (!json_is_object (body) || !gw_keys_ok (req, body, keys, &rc))
        ;
    else if ((name && !json_is_string (name)) || (admin && !json_is_boolean (admin))
             || (password && !json_is_string (password)) || (state && !json_is_object (state) && !json_is_null (state)))
        ;
    else if (state) {
        char *state_text = json_dumps (state, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK (state_text != NULL, "auth_state dumps");
        json_t *back = json_loads (state_text, JSON_DECODE_ANY, NULL);
        CHECK (back && json_equal (back, state), "auth_state survives its dump");
        json_decref (back);
        free (state_text);
    }
    json_decref (body);
}

/* POST /hub/api/users/{name}/tokens (gw_api_tokens_create), then the scope resolution of
 * auth_tokens.c s_token_create for owner alice. */
static void
s_tokens_create (const gw_request_t *req, const orr_roles_t *roles)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return;
    if (!body)
        body = json_object ();
    static const char *const keys[] = { "note", "expires_in", "scopes", "roles", "auth", NULL };
    if (!json_is_object (body) || !gw_keys_ok (req, body, keys, &rc)) {
        json_decref (body);
        return;
    }
    json_t *auth = json_object_get (body, "auth");
    if (json_is_object (auth)) {
        /* the anonymous path reads these two as strings, or "" */
        const char *u = json_string_value (json_object_get (auth, "username"));
        const char *p = json_string_value (json_object_get (auth, "password"));
        (void) u;
        (void) p;
    }
    json_t *note = json_object_get (body, "note"), *expires = json_object_get (body, "expires_in");
    size_t nscopes = 0, nroles = 0;
    const char **scopes = NULL, **rnames = NULL;
    json_t *js = json_object_get (body, "scopes"), *jr = json_object_get (body, "roles");
    if ((note && !json_is_string (note) && !json_is_null (note))
        || (expires && !json_is_integer (expires) && !json_is_null (expires)))
        ;
    else if (js && jr)
        ;
    else if (js && !(scopes = gw_string_list (req, js, "scopes", &nscopes, &rc)))
        ;
    else if (jr && !(rnames = gw_string_list (req, jr, "roles", &nroles, &rc)))
        ;
    else {
        const char *groups[] = { "staff", "dev", NULL };
        orr_scopes_t *owner = orr_roles_user_scopes (roles, "alice", false, groups);
        orr_scopes_t *wanted = orr_scopes_new ();
        char err[256];
        bool ok = true;
        for (size_t i = 0; i < nroles && ok; i++)
            ok = orr_roles_expand (roles, rnames[i], "user", "alice", owner, wanted, err, sizeof err) == 0;
        for (size_t i = 0; i < nscopes && ok; i++) {
            const char *s = scopes[i];
            if (strcmp (s, "inherit") == 0)
                for (size_t k = 0; k < orr_scopes_size (owner); k++)
                    orr_scopes_add (wanted, orr_scopes_at (owner, k));
            else if (strcmp (s, "(no_scope)") == 0)
                ;
            else if (strcmp (s, "self") != 0 && !orr_scope_is_valid (s))
                ok = false;
            else
                ok = orr_scopes_expand_into (wanted, s, "user", "alice", err, sizeof err) == 0;
        }
        if (ok) {
            orr_scopes_t *within = orr_scopes_intersect (wanted, owner, s_is_member, NULL);
            for (size_t i = 0; i < orr_scopes_size (within); i++)
                CHECK (orr_scopes_contains (wanted, orr_scopes_at (within, i))
                           || orr_scopes_contains (owner, orr_scopes_at (within, i)),
                       "intersect only keeps scopes of its operands");
            json_t *j = orr_scopes_to_json (within);
            json_decref (j);
            orr_scopes_destroy (&within);
        }
        orr_scopes_destroy (&wanted);
        orr_scopes_destroy (&owner);
    }
    free (scopes);
    free (rnames);
    json_decref (body);
}

/* POST /hub/api/groups (gw_api_groups_create) */
static void
s_groups_create (const gw_request_t *req, const orr_roles_t *roles)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return;
    static const char *const keys[] = { "groups", "users", NULL };
    size_t n = 0, nu = 0;
    const char **names = NULL, **users = NULL;
    json_t *ju = json_is_object (body) ? json_object_get (body, "users") : NULL;
    if (!json_is_object (body) || !gw_keys_ok (req, body, keys, &rc))
        ;
    else if (!(names = gw_string_list (req, json_object_get (body, "groups"), "groups", &n, &rc)))
        ;
    else if (ju && !(users = gw_string_list (req, ju, "users", &nu, &rc)))
        ;
    else {
        for (size_t i = 0; i < n; i++)
            json_decref (orr_roles_of_group (roles, names[i]));
        s_user_names (roles, users, nu, false);
    }
    free (names);
    free (users);
    json_decref (body);
}

/* POST /hub/api/groups/{name} (gw_api_group_create) */
static void
s_group_create (const gw_request_t *req, const orr_roles_t *roles)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return;
    static const char *const keys[] = { "users", NULL };
    size_t nu = 0;
    const char **users = NULL;
    json_t *ju = json_is_object (body) ? json_object_get (body, "users") : NULL;
    if (body && !json_is_object (body))
        ;
    else if (body && !gw_keys_ok (req, body, keys, &rc))
        ;
    else if (ju && !(users = gw_string_list (req, ju, "users", &nu, &rc)))
        ;
    else
        s_user_names (roles, users, nu, false);
    free (users);
    json_decref (body);
}

/* POST and DELETE /hub/api/groups/{name}/users (gw_api_groups.c s_members) */
static void
s_group_members (const gw_request_t *req, const orr_roles_t *roles)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return;
    static const char *const keys[] = { "users", NULL };
    size_t nu = 0;
    const char **users = NULL;
    if (!json_is_object (body) || !gw_keys_ok (req, body, keys, &rc))
        ;
    else if ((users = gw_string_list (req, json_object_get (body, "users"), "users", &nu, &rc)) != NULL)
        s_user_names (roles, users, nu, false);
    free (users);
    json_decref (body);
}

/* POST /hub/api/shutdown (gw_api_shutdown); an accepted body is published on the bus.
 * True when accepted. */
static bool
s_shutdown (const gw_request_t *req)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty;
    static const char *const keys[] = { "servers", "proxy", NULL };
    bool ok = json_is_object (body) && gw_keys_ok (req, body, keys, &rc);
    if (ok) {
        json_t *s = json_object_get (body, "servers"), *p = json_object_get (body, "proxy");
        ok = (!s || json_is_boolean (s)) && (!p || json_is_boolean (p));
    }
    json_decref (body);
    return ok;
}

/* --- 3 and 4: every string, and the round trip ------------------------------------------ */

typedef struct {
    size_t budget;
    orr_scopes_t *scratch;
} walk_t;

static void
s_string (walk_t *w, const char *s)
{
    if (w->budget == 0)
        return;
    w->budget--;
    char err[256];
    orr_scope_is_valid (s);
    orr_scopes_expand_into (w->scratch, s, "user", "alice", err, sizeof err);
    orr_scopes_expand_into (w->scratch, s, "service", "svc", err, sizeof err);
    int64_t us;
    if (orr_time_parse (s, &us) == 0) {
        char iso[ORR_ISO_LEN];
        orr_time_format (us, iso);
    }
}

static void
s_walk (walk_t *w, json_t *v, int depth)
{
    if (depth > 32 || w->budget == 0)
        return;
    if (json_is_string (v))
        s_string (w, json_string_value (v));
    else if (json_is_array (v)) {
        size_t i;
        json_t *e;
        json_array_foreach (v, i, e)
            s_walk (w, e, depth + 1);
    }
    else if (json_is_object (v)) {
        const char *k;
        json_t *e;
        json_object_foreach (v, k, e) {
            s_string (w, k);
            s_walk (w, e, depth + 1);
        }
    }
}

static void
s_round_trip (json_t *v)
{
    char *text = json_dumps (v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    CHECK (text != NULL, "a parsed body dumps");
    json_t *back = json_loadb (text, strlen (text), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    CHECK (back != NULL && json_equal (back, v), "a dumped body parses back equal");
    char *again = json_dumps (back, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    CHECK (again && strcmp (again, text) == 0, "dump, parse, dump gives the same text");
    free (again);
    json_decref (back);
    free (text);
}

/* --- 5: the input as configuration ------------------------------------------------------ */

static void
s_query_roles (const orr_roles_t *roles, json_t *body)
{
    const char *who[] = { "alice", "bob", "svc", NULL, NULL };
    const char *name = json_string_value (json_object_get (body, "name"));
    who[3] = name;
    for (int i = 0; who[i]; i++) {
        json_decref (orr_roles_of_user (roles, who[i], i == 0));
        json_decref (orr_roles_of_group (roles, who[i]));
        json_decref (orr_roles_of_service (roles, who[i], i == 1));
        const char *groups[] = { who[i], "staff", NULL };
        orr_scopes_t *s = orr_roles_user_scopes (roles, who[i], i == 0, groups);
        orr_scopes_destroy (&s);
        s = orr_roles_service_scopes (roles, who[i], i == 2);
        orr_scopes_destroy (&s);
    }
    static const char *const builtin[] = { "user", "admin", "server", "token", NULL };
    for (int i = 0; builtin[i]; i++)
        CHECK (orr_roles_exists (roles, builtin[i]), "built-in roles always exist");
    if (name && orr_roles_exists (roles, name)) {
        orr_scopes_t *into = orr_scopes_new ();
        char err[256];
        CHECK (orr_roles_expand (roles, name, "user", "alice", NULL, into, err, sizeof err) == 0,
               "a loaded role expands");
        orr_scopes_destroy (&into);
    }
}

static void
s_query_services (const orr_hubservices_t *hs, const orr_roles_t *roles)
{
    for (size_t i = 0; i < orr_hubservices_count (hs); i++) {
        const orr_hubservice_t *svc = orr_hubservices_at (hs, i);
        CHECK (orr_hubservices_find (hs, svc->name) == svc, "a service is found by its name");
        CHECK (orr_hubservices_by_client (hs, svc->oauth_client_id) != NULL, "a service is found by its client id");
        if (svc->token_hash[0])
            CHECK (orr_hubservices_by_token_hash (hs, svc->token_hash) != NULL, "a service is found by its token");
        json_t *m = orr_hubservices_model (hs, svc, roles);
        CHECK (m != NULL, "every service has a model");
        char *text = json_dumps (m, JSON_COMPACT);
        free (text);
        json_decref (m);
    }
}

static bool
s_starts_with_bracket (const char *text)
{
    /* the blanks orr_roles_new and orr_hubservices_new skip before deciding */
    while (*text == ' ' || *text == '\n' || *text == '\t')
        text++;
    return *text == '[';
}

static void
s_as_config (const char *text, json_t *body)
{
    char err[512];
    orr_roles_t *roles = orr_roles_new (text, err, sizeof err);
    if (roles) {
        s_query_roles (roles, body);
        orr_hubservices_t *hs = orr_hubservices_new (text, err, sizeof err);
        if (hs) {
            s_query_services (hs, roles);
            orr_hubservices_destroy (&hs);
        }
        orr_roles_destroy (&roles);
    }
    else {
        orr_hubservices_t *hs = orr_hubservices_new (text, err, sizeof err);
        if (hs) {
            s_query_services (hs, s_builtin_roles);
            orr_hubservices_destroy (&hs);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *body = malloc (size ? size : 1);
    memcpy (body, data, size);
    gw_request_t req = { .conn = NULL, .method = "POST", .path = "/hub/api/users", .body = body, .body_len = size };

    /* the configuration first, so the endpoints below can use roles it defines */
    char *text = strndup ((const char *) data, size);
    char *wrapped = malloc (strlen (text) + 3);
    sprintf (wrapped, "[%s]", text);
    json_t *parsed = json_loadb (body, size, JSON_REJECT_DUPLICATES, NULL);
    if (s_starts_with_bracket (text))
        s_as_config (text, parsed);
    s_as_config (wrapped, parsed);
    char err[512];
    orr_roles_t *loaded = orr_roles_new (wrapped, err, sizeof err);
    const orr_roles_t *roles = loaded ? loaded : s_builtin_roles;

    /* 1 and 2 */
    s_users_create (&req, roles);
    req.path = "/hub/api/users/alice";
    s_user_create (&req);
    req.method = "PATCH";
    s_user_patch (&req);
    req.method = "POST";
    req.path = "/hub/api/users/alice/tokens";
    s_tokens_create (&req, roles);
    req.path = "/hub/api/groups";
    s_groups_create (&req, roles);
    req.path = "/hub/api/groups/dev";
    s_group_create (&req, roles);
    req.path = "/hub/api/groups/dev/users";
    s_group_members (&req, roles);
    req.method = "DELETE";
    s_group_members (&req, roles);
    req.method = "POST";
    req.path = "/hub/api/shutdown";
    s_shutdown (&req);

    /* 3 and 4 */
    if (parsed) {
        walk_t w = { .budget = 256, .scratch = orr_scopes_new () };
        s_walk (&w, parsed, 0);
        orr_scopes_destroy (&w.scratch);
        s_round_trip (parsed);
    }

    json_decref (parsed);
    orr_roles_destroy (&loaded);
    free (wrapped);
    free (text);
    free (body);
    return 0;
}
