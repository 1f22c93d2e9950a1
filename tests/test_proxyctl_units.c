/*  test_proxyctl_units: the pure rules of a route (services/proxyctl/route.c), compiled
 *  straight into the test: the canonical path (as configurable-http-proxy keys it), target
 *  and name checks, the API URL CHP decodes back to the path, the JSON kept in Redis, and
 *  the sorted table's lookup.
 */
#include "proxyctl.h"
#include "orr_util.h"
#include "testutil.h"

#include <string.h>

static void
s_canonical_is (const char *in, const char *want)
{
    char *out = NULL, err[256] = "";
    CHECK (route_path_canonical (in, &out, err, sizeof err) == 0, "'%s' refused: %s", in, err);
    CHECK_EQ_STR (out, want);
    free (out);
}

static void
s_canonical_refused (const char *in)
{
    char *out = NULL, err[256] = "";
    CHECK (route_path_canonical (in, &out, err, sizeof err) == -1 && !out && err[0], "'%s' accepted", in ? in : "(null)");
}

static void
s_paths (void)
{
    s_canonical_is ("/user/alice", "/user/alice");
    s_canonical_is ("/user/alice/", "/user/alice");
    s_canonical_is ("/user/alice//", "/user/alice");
    s_canonical_is ("/user/alice/gpu", "/user/alice/gpu");
    s_canonical_is ("/user/a%20b/", "/user/a b");              /* JupyterHub quotes names */
    s_canonical_is ("/user/%C3%A9l%C3%A8ve", "/user/\xC3\xA9l\xC3\xA8ve");
    s_canonical_is ("/user/\xC3\xA9", "/user/\xC3\xA9");       /* raw UTF-8 kept */
    s_canonical_is ("/user/x%2Fy", "/user/x/y");               /* as CHP decodes it */
    s_canonical_is ("/user/a%25b", "/user/a%b");
    s_canonical_refused (NULL);
    s_canonical_refused ("");
    s_canonical_refused ("user/alice");
    s_canonical_refused ("/");
    s_canonical_refused ("//");
    s_canonical_refused ("/%2F");
    s_canonical_refused ("/user/a%2");                         /* short escape */
    s_canonical_refused ("/user/a%zz");
    s_canonical_refused ("/user/a%00b");
    s_canonical_refused ("/user/%FF");                         /* not UTF-8 */
    s_canonical_refused ("/user/\xC3");
    char longest[ROUTE_PATH_MAX + 2];
    memset (longest, 'a', sizeof longest);
    longest[0] = '/';
    longest[ROUTE_PATH_MAX] = '\0';
    char *out = NULL, err[256];
    CHECK (route_path_canonical (longest, &out, err, sizeof err) == 0, "1024 bytes refused");
    free (out);
    longest[ROUTE_PATH_MAX] = 'a';
    longest[ROUTE_PATH_MAX + 1] = '\0';
    s_canonical_refused (longest);
}

static void
s_targets_and_names (void)
{
    CHECK (route_target_ok ("http://127.0.0.1:8888"));
    CHECK (route_target_ok ("https://node-3.example.org:443/prefix"));
    CHECK (!route_target_ok (NULL));
    CHECK (!route_target_ok (""));
    CHECK (!route_target_ok ("http://"));
    CHECK (!route_target_ok ("http:///x"));
    CHECK (!route_target_ok ("ftp://host"));
    CHECK (!route_target_ok ("127.0.0.1:8888"));
    CHECK (!route_target_ok ("http://host name"));
    CHECK (!route_target_ok ("http://h\xC3\xA9"));
    CHECK (route_name_ok (""));
    CHECK (route_name_ok ("alice"));
    CHECK (route_name_ok ("\xC3\xA9l\xC3\xA8ve"));
    CHECK (!route_name_ok ("\xFF"));
    CHECK (!route_name_ok (NULL));
}

static void
s_urls (void)
{
    char *url = route_chp_url ("http://127.0.0.1:8001", "/user/alice");
    CHECK_EQ_STR (url, "http://127.0.0.1:8001/api/routes/user/alice");
    free (url);
    url = route_chp_url ("http://h:1", "/");
    CHECK_EQ_STR (url, "http://h:1/api/routes/");
    free (url);
    url = route_chp_url ("http://h:1", "/user/a b?c#d%e/\xC3\xA9");
    CHECK_EQ_STR (url, "http://h:1/api/routes/user/a%20b%3Fc%23d%25e/%C3%A9");
    free (url);
    url = route_chp_url ("http://h:1", "/user/a@b:c~d.e_f-g");
    CHECK_EQ_STR (url, "http://h:1/api/routes/user/a@b:c~d.e_f-g");
    free (url);
}

static void
s_json (void)
{
    route_t r = { "/user/alice", "http://10.0.0.5:40123", "alice", "", 1700000000123456LL };
    char *text = route_encode (&r);
    CHECK_EQ_STR (text, "{\"created_us\":1700000000123456,\"server\":\"\","
                        "\"target\":\"http://10.0.0.5:40123\",\"user\":\"alice\"}");
    route_t back;
    CHECK (route_decode ("/user/alice", text, &back) == 0);
    CHECK_EQ_STR (back.path, "/user/alice");
    CHECK_EQ_STR (back.target, r.target);
    CHECK_EQ_STR (back.user, "alice");
    CHECK_EQ_STR (back.server, "");
    CHECK_EQ_INT (back.created_us, r.created_us);
    route_clear (&back);
    free (text);
    CHECK (route_decode ("/x", "not json", &back) == -1);
    CHECK (route_decode ("/x", "{\"target\":\"http://a\"}", &back) == -1);

    json_t *body = route_chp_body (&r);
    CHECK (route_chp_matches (&r, body));
    CHECK (route_chp_managed (body));
    json_object_set_new (body, "last_activity", json_string ("2026-01-01T00:00:00.000Z"));
    CHECK (route_chp_matches (&r, body), "CHP's own keys do not matter");
    json_object_set_new (body, "target", json_string ("http://10.0.0.6:1"));
    CHECK (!route_chp_matches (&r, body));
    json_decref (body);
    body = json_pack ("{s:s, s:s, s:s}", "target", r.target, "user", "alice", "server_name", "");
    CHECK (!route_chp_matches (&r, body), "without \"jupyterhub\": true");
    CHECK (!route_chp_managed (body));
    json_decref (body);
}

static void
s_table (void)
{
    route_table_t t = { orr_zalloc (3 * sizeof (route_t)), 3 };
    const char *paths[] = { "/user/c", "/user/a", "/user/b" };
    for (int i = 0; i < 3; i++)
        t.v[i] = (route_t) { orr_strdup (paths[i]), orr_strdup ("http://x"), orr_strdup (""), orr_strdup (""), i };
    route_table_sort (&t);
    CHECK_EQ_STR (t.v[0].path, "/user/a");
    CHECK_EQ_STR (t.v[2].path, "/user/c");
    CHECK (route_table_find (&t, "/user/b") == &t.v[1]);
    CHECK (route_table_find (&t, "/user/d") == NULL);
    route_table_clear (&t);
    CHECK (route_table_find (&t, "/user/a") == NULL);
}

int
main (void)
{
    s_paths ();
    s_targets_and_names ();
    s_urls ();
    s_json ();
    s_table ();
    printf ("test_proxyctl_units: ok\n");
    return 0;
}
