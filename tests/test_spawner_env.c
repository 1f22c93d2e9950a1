/*  test_spawner_env: what a single-user server is told (services/spawner/spawner_env.c),
 *  checked against JupyterHub's contract (shared/reference/jupyterhub-api.md §9). Pure.
 *
 *  Covers: the server prefix (names quoted as JupyterHub's url_escape_path does: '@' and
 *  '~' kept, everything else but [A-Za-z0-9_.-] as %XX; named servers; a base URL other
 *  than "/"); the OAuth client id (quoted as Python's quote(): '@' becomes %40, because
 *  the id is the login cookie's name); the access scopes as JSON; and the whole
 *  environment of two specs, variable by variable, with exact values, no variable twice
 *  and no variable that is not expected (profile variables only with a profile that sets
 *  them, JUPYTERHUB_SINGLEUSER_APP and ORRERY_STACK only when set).
 */
#include "spawner_env.h"
#include "spawner_profile.h"
#include "orr_util.h"
#include "testutil.h"

#include <jansson.h>
#include <string.h>

static int s_checks;

#define EXPECT_STR(a, b)                                                                                               \
    do {                                                                                                               \
        CHECK_EQ_STR (a, b);                                                                                           \
        s_checks++;                                                                                                    \
    } while (0)

/* --- URLs, client ids, scopes -------------------------------------------------------------- */

static void
s_url (const char *base, const char *user, const char *server, const char *expected)
{
    char *url = spawner_server_url (base, user, server);
    CHECK (url && strcmp (url, expected) == 0, "spawner_server_url(\"%s\", \"%s\", \"%s\") = \"%s\", expected \"%s\"",
           base, user, server ? server : "(null)", url ? url : "(null)", expected);
    s_checks++;
    free (url);
}

static void
s_client_id (const char *user, const char *server, const char *expected)
{
    char *id = spawner_client_id (user, server);
    CHECK (id && strcmp (id, expected) == 0, "spawner_client_id(\"%s\", \"%s\") = \"%s\", expected \"%s\"", user,
           server ? server : "(null)", id ? id : "(null)", expected);
    s_checks++;
    free (id);
}

/* `text` must be a JSON array of exactly the strings a and b, in that order. */
static void
s_expect_scopes_json (const char *text, const char *a, const char *b)
{
    CHECK (text != NULL, "no scopes");
    json_error_t jerr;
    json_t *v = json_loads (text, 0, &jerr);
    CHECK (v != NULL, "scopes %s are not JSON: %s", text, jerr.text);
    CHECK (json_is_array (v) && json_array_size (v) == 2, "scopes %s: not a list of two", text);
    CHECK (json_is_string (json_array_get (v, 0)) && json_is_string (json_array_get (v, 1)), "scopes %s: not strings",
           text);
    EXPECT_STR (json_string_value (json_array_get (v, 0)), a);
    EXPECT_STR (json_string_value (json_array_get (v, 1)), b);
    json_decref (v);
}

static void
test_server_url (void)
{
    s_url ("/", "alice", "", "/user/alice/");
    s_url ("/", "alice", NULL, "/user/alice/");
    s_url ("/", "a b", "", "/user/a%20b/");
    s_url ("/", "x@y~z", "", "/user/x@y~z/");
    s_url ("/", "Al_i.c-e9", "", "/user/Al_i.c-e9/");
    s_url ("/", "alice", "gpu", "/user/alice/gpu/");
    s_url ("/", "alice", "my gpu", "/user/alice/my%20gpu/");
    s_url ("/", "alice", "x@y~z", "/user/alice/x@y~z/");
    s_url ("/", "a/b", "c/d", "/user/a%2Fb/c%2Fd/");
    s_url ("/", "zo\xc3\xab", "", "/user/zo%C3%AB/");
    s_url ("/", "p%q", "", "/user/p%25q/");
    s_url ("/", "c\x01" "d?e#f", "", "/user/c%01d%3Fe%23f/");
    s_url ("/jh/", "alice", "", "/jh/user/alice/");
    s_url ("/jh/", "alice", "gpu", "/jh/user/alice/gpu/");
    s_url ("/jh/", "a b", "g p", "/jh/user/a%20b/g%20p/");
}

static void
test_client_id (void)
{
    s_client_id ("alice", "", "jupyterhub-user-alice");
    s_client_id ("alice", NULL, "jupyterhub-user-alice");
    s_client_id ("alice", "gpu", "jupyterhub-user-alice-gpu");
    s_client_id ("a b", "", "jupyterhub-user-a%20b");
    s_client_id ("alice", "my gpu", "jupyterhub-user-alice-my%20gpu");
    s_client_id ("zo\xc3\xab", "", "jupyterhub-user-zo%C3%AB");
    s_client_id ("p%q", "s:1", "jupyterhub-user-p%25q-s%3A1");
    /* JupyterHub: client_id = 'jupyterhub-user-%s' % quote(name): quote()'s only safe
     * characters beyond [A-Za-z0-9_.-~] are '/', so '@' is quoted (the id is the name of
     * the login cookie, and '@' is not allowed in a cookie name: Python's SimpleCookie,
     * which tornado uses, drops such a cookie). */
    s_client_id ("x@y~z", "", "jupyterhub-user-x%40y~z");
    s_client_id ("bob@example.org", "gpu@1", "jupyterhub-user-bob%40example.org-gpu%401");
    s_client_id ("a/b", "", "jupyterhub-user-a/b");
}

static void
test_access_scopes (void)
{
    char *s = spawner_access_scopes_json ("alice", "");
    s_expect_scopes_json (s, "access:servers!server=alice/", "access:servers!user=alice");
    free (s);
    s = spawner_access_scopes_json ("alice", NULL);
    s_expect_scopes_json (s, "access:servers!server=alice/", "access:servers!user=alice");
    free (s);
    s = spawner_access_scopes_json ("alice", "gpu");
    s_expect_scopes_json (s, "access:servers!server=alice/gpu", "access:servers!user=alice");
    free (s);
    /* names are not quoted in scopes (JupyterHub: f"access:servers!server={user.name}/{name}") */
    s = spawner_access_scopes_json ("a \"b\"", "zo\xc3\xab");
    s_expect_scopes_json (s, "access:servers!server=a \"b\"/zo\xc3\xab", "access:servers!user=a \"b\"");
    free (s);
}

/* --- the environment --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;    /* NULL: check separately (JSON) */
} var_t;

/* The value of `name` in env (NULL when absent); fails when it appears twice. */
static const char *
s_env_get (char **env, const char *name)
{
    size_t n = strlen (name);
    const char *found = NULL;
    for (char **e = env; *e; e++)
        if (strncmp (*e, name, n) == 0 && (*e)[n] == '=') {
            CHECK (found == NULL, "%s appears twice", name);
            found = *e + n + 1;
        }
    return found;
}

/* env holds exactly the variables of `want` (no other, none twice), with these values. */
static void
s_expect_env (char **env, const var_t *want, size_t nwant)
{
    CHECK (env != NULL, "no environment");
    size_t count = 0;
    for (char **e = env; *e; e++) {
        count++;
        const char *eq = strchr (*e, '=');
        CHECK (eq != NULL && eq != *e, "malformed entry \"%s\"", *e);
        bool known = false;
        for (size_t i = 0; i < nwant; i++)
            if (strlen (want[i].name) == (size_t) (eq - *e) && strncmp (*e, want[i].name, (size_t) (eq - *e)) == 0)
                known = true;
        CHECK (known, "unexpected variable \"%s\"", *e);
        /* no name twice: compare with every later entry */
        for (char **f = e + 1; *f; f++) {
            const char *feq = strchr (*f, '=');
            CHECK (!(feq && feq - *f == eq - *e && strncmp (*f, *e, (size_t) (eq - *e)) == 0),
                   "variable appears twice: \"%s\" and \"%s\"", *e, *f);
        }
        s_checks++;
    }
    CHECK_EQ_INT (count, nwant);
    for (size_t i = 0; i < nwant; i++) {
        const char *v = s_env_get (env, want[i].name);
        CHECK (v != NULL, "%s is missing", want[i].name);
        if (want[i].value) {
            CHECK (strcmp (v, want[i].value) == 0, "%s = \"%s\", expected \"%s\"", want[i].name, v, want[i].value);
            s_checks++;
        }
    }
}

static void
test_env_default_server (void)
{
    spawner_env_spec_t spec = {
        .user = "alice",
        .server = "",
        .base_url = "/",
        .hub_api_url = "http://127.0.0.1:8081/hub/api",
        .public_host = "",
        .token = "tok-0123456789abcdef",
        .bind_url = "http://127.0.0.1:40001",
        .home = "/srv/orrery/home/alice",
        .singleuser_app = NULL,
        .stack_id = "stack-7",
        .profile = NULL,
    };
    char **env = spawner_env_build (&spec);
    const var_t want[] = {
        { "JUPYTERHUB_API_TOKEN", "tok-0123456789abcdef" },
        { "JPY_API_TOKEN", "tok-0123456789abcdef" },
        { "JUPYTERHUB_CLIENT_ID", "jupyterhub-user-alice" },
        { "JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api" },
        { "JUPYTERHUB_ACTIVITY_URL", "http://127.0.0.1:8081/hub/api/users/alice/activity" },
        { "JUPYTERHUB_BASE_URL", "/" },
        { "JUPYTERHUB_HOST", "" },
        { "JUPYTERHUB_SERVICE_PREFIX", "/user/alice/" },
        { "JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:40001/user/alice/" },
        { "JUPYTERHUB_OAUTH_CALLBACK_URL", "/user/alice/oauth_callback" },
        { "JUPYTERHUB_OAUTH_ACCESS_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]" },
        { "JUPYTERHUB_USER", "alice" },
        { "JUPYTERHUB_SERVER_NAME", "" },
        { "USER", "alice" },
        { "HOME", "/srv/orrery/home/alice" },
        { "SHELL", "/bin/sh" },
        { "ORRERY_STACK", "stack-7" },
    };
    s_expect_env (env, want, sizeof want / sizeof want[0]);
    s_expect_scopes_json (s_env_get (env, "JUPYTERHUB_OAUTH_ACCESS_SCOPES"), "access:servers!server=alice/",
                          "access:servers!user=alice");
    s_expect_scopes_json (s_env_get (env, "JUPYTERHUB_OAUTH_SCOPES"), "access:servers!server=alice/",
                          "access:servers!user=alice");
    json_t *allowed = json_loads (s_env_get (env, "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES"), 0, NULL);
    CHECK (json_is_array (allowed) && json_array_size (allowed) == 0, "allowed scopes are not an empty JSON list");
    json_decref (allowed);
    /* the variables JupyterHub never sets, and the profile's without a profile */
    const char *absent[] = { "JUPYTERHUB_SINGLEUSER_APP", "MEM_LIMIT", "MEM_GUARANTEE", "CPU_LIMIT",
                             "CPU_GUARANTEE", "JUPYTERHUB_SERVICE_NAME", "JUPYTERHUB_ACTIVITY_INTERVAL", NULL };
    for (const char **a = absent; *a; a++) {
        CHECK (s_env_get (env, *a) == NULL, "%s is set without reason", *a);
        s_checks++;
    }
    orr_strv_free (&env);
    CHECK (env == NULL, "orr_strv_free did not clear");

    /* the built-in "default" profile sets no limits: no MEM_/CPU_ variables; an empty
     * singleuser_app and stack are "not set" */
    char err[256] = "";
    spawner_profiles_t *profiles = spawner_profiles_new (NULL, err, sizeof err);
    CHECK (profiles != NULL, "built-in profiles: %s", err);
    spec.profile = spawner_profiles_find (profiles, NULL);
    CHECK (spec.profile != NULL, "no default profile");
    spec.singleuser_app = "";
    spec.stack_id = "";
    env = spawner_env_build (&spec);
    s_expect_env (env, want, sizeof want / sizeof want[0] - 1);   /* all but ORRERY_STACK */
    CHECK (s_env_get (env, "ORRERY_STACK") == NULL, "empty stack id set");
    orr_strv_free (&env);
    spawner_profiles_destroy (&profiles);
}

static void
test_env_named_server_with_profile (void)
{
    char err[256] = "";
    spawner_profiles_t *profiles = spawner_profiles_new (
        "[{\"slug\": \"small\", \"default\": true},"
        " {\"slug\": \"big\", \"mem_limit\": \"1G\", \"mem_guarantee\": \"512M\", \"cpu_limit\": 2,"
        "  \"cpu_guarantee\": \"500m\", \"pids_limit\": 100},"
        " {\"slug\": \"memonly\", \"mem_limit\": 1048576, \"cpu_guarantee\": 0.25}]",
        err, sizeof err);
    CHECK (profiles != NULL, "profiles: %s", err);
    CHECK_EQ_INT (spawner_profiles_count (profiles), 3);

    spawner_env_spec_t spec = {
        .user = "a b",
        .server = "gpu",
        .base_url = "/jh/",
        .hub_api_url = "http://10.0.0.5:8081/jh/hub/api",
        .public_host = "https://hub.example.org",
        .token = "secret-token",
        .bind_url = "http://127.0.0.1:45555",
        .home = "/home/a%20b",
        .singleuser_app = "notebook.notebookapp.NotebookApp",
        .stack_id = "s1",
        .profile = spawner_profiles_find (profiles, "big"),
    };
    CHECK (spec.profile != NULL, "no profile big");
    char **env = spawner_env_build (&spec);
    const var_t want[] = {
        { "JUPYTERHUB_API_TOKEN", "secret-token" },
        { "JPY_API_TOKEN", "secret-token" },
        { "JUPYTERHUB_CLIENT_ID", "jupyterhub-user-a%20b-gpu" },
        { "JUPYTERHUB_API_URL", "http://10.0.0.5:8081/jh/hub/api" },
        /* JupyterHub: url_path_join(api_url, 'users', user.escaped_name, 'activity') */
        { "JUPYTERHUB_ACTIVITY_URL", "http://10.0.0.5:8081/jh/hub/api/users/a%20b/activity" },
        { "JUPYTERHUB_BASE_URL", "/jh/" },
        { "JUPYTERHUB_HOST", "https://hub.example.org" },
        { "JUPYTERHUB_SERVICE_PREFIX", "/jh/user/a%20b/gpu/" },
        { "JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:45555/jh/user/a%20b/gpu/" },
        { "JUPYTERHUB_OAUTH_CALLBACK_URL", "/jh/user/a%20b/gpu/oauth_callback" },
        { "JUPYTERHUB_OAUTH_ACCESS_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]" },
        { "JUPYTERHUB_USER", "a b" },
        { "JUPYTERHUB_SERVER_NAME", "gpu" },
        { "JUPYTERHUB_SINGLEUSER_APP", "notebook.notebookapp.NotebookApp" },
        { "MEM_LIMIT", "1073741824" },
        { "MEM_GUARANTEE", "536870912" },
        { "CPU_LIMIT", "2.0" },
        { "CPU_GUARANTEE", "0.5" },
        { "USER", "a b" },
        { "HOME", "/home/a%20b" },
        { "SHELL", "/bin/sh" },
        { "ORRERY_STACK", "s1" },
    };
    s_expect_env (env, want, sizeof want / sizeof want[0]);
    s_expect_scopes_json (s_env_get (env, "JUPYTERHUB_OAUTH_ACCESS_SCOPES"), "access:servers!server=a b/gpu",
                          "access:servers!user=a b");
    s_expect_scopes_json (s_env_get (env, "JUPYTERHUB_OAUTH_SCOPES"), "access:servers!server=a b/gpu",
                          "access:servers!user=a b");
    orr_strv_free (&env);

    /* a profile with only some of them: exactly those */
    spec.profile = spawner_profiles_find (profiles, "memonly");
    CHECK (spec.profile != NULL, "no profile memonly");
    spec.singleuser_app = NULL;
    spec.user = "x@y~z";
    spec.server = "";
    spec.base_url = "/";
    spec.hub_api_url = "http://127.0.0.1:8081/hub/api";
    spec.public_host = NULL;   /* NULL = "" */
    env = spawner_env_build (&spec);
    const var_t want2[] = {
        { "JUPYTERHUB_API_TOKEN", "secret-token" },
        { "JPY_API_TOKEN", "secret-token" },
        { "JUPYTERHUB_CLIENT_ID", "jupyterhub-user-x%40y~z" },
        { "JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api" },
        { "JUPYTERHUB_ACTIVITY_URL", "http://127.0.0.1:8081/hub/api/users/x@y~z/activity" },
        { "JUPYTERHUB_BASE_URL", "/" },
        { "JUPYTERHUB_HOST", "" },
        { "JUPYTERHUB_SERVICE_PREFIX", "/user/x@y~z/" },
        { "JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:45555/user/x@y~z/" },
        { "JUPYTERHUB_OAUTH_CALLBACK_URL", "/user/x@y~z/oauth_callback" },
        { "JUPYTERHUB_OAUTH_ACCESS_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_SCOPES", NULL },
        { "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]" },
        { "JUPYTERHUB_USER", "x@y~z" },
        { "JUPYTERHUB_SERVER_NAME", "" },
        { "MEM_LIMIT", "1048576" },
        { "CPU_GUARANTEE", "0.25" },
        { "USER", "x@y~z" },
        { "HOME", "/home/a%20b" },
        { "SHELL", "/bin/sh" },
        { "ORRERY_STACK", "s1" },
    };
    s_expect_env (env, want2, sizeof want2 / sizeof want2[0]);
    s_expect_scopes_json (s_env_get (env, "JUPYTERHUB_OAUTH_ACCESS_SCOPES"), "access:servers!server=x@y~z/",
                          "access:servers!user=x@y~z");
    orr_strv_free (&env);
    spawner_profiles_destroy (&profiles);
}

int
main (void)
{
    test_server_url ();
    test_client_id ();
    test_access_scopes ();
    test_env_default_server ();
    test_env_named_server_with_profile ();
    printf ("test_spawner_env: OK (%d checks)\n", s_checks);
    return 0;
}
