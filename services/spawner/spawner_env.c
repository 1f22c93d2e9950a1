/*  spawner_env: a single-user server's URL, OAuth client and environment (reference §9).
 *
 *  Names in URLs are quoted as JupyterHub quotes them (orr_url_quote), so a server
 *  started by Orrery sees byte-for-byte what JupyterHub would have told it; the user
 *  name in JUPYTERHUB_USER is left as it is.
 */
#include "spawner_env.h"
#include "orr_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *
spawner_server_url (const char *base_url, const char *user, const char *server)
{
    char *qu = orr_url_quote (user);
    char *url;
    if (server && *server) {
        char *qs = orr_url_quote (server);
        url = orr_sprintf ("%suser/%s/%s/", base_url, qu, qs);
        free (qs);
    }
    else
        url = orr_sprintf ("%suser/%s/", base_url, qu);
    free (qu);
    return url;
}

/* Python's urllib.parse.quote(s) (safe="/"), as JupyterHub builds client ids: unlike
 * url_escape_path (orr_url_quote), '@' is quoted, since the id is also the name of the
 * server's login cookie and Python's SimpleCookie (used by tornado) drops cookies whose
 * name holds '@'. Caller frees. */
static char *
s_py_quote (const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = orr_zalloc (3 * strlen (s) + 1);
    char *p = out;
    for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr ("_.-~/", *c))
            *p++ = (char) *c;
        else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}

char *
spawner_client_id (const char *user, const char *server)
{
    char *qu = s_py_quote (user);
    char *id;
    if (server && *server) {
        char *qs = s_py_quote (server);
        id = orr_sprintf ("jupyterhub-user-%s-%s", qu, qs);
        free (qs);
    }
    else
        id = orr_sprintf ("jupyterhub-user-%s", qu);
    free (qu);
    return id;
}

char *
spawner_access_scopes_json (const char *user, const char *server)
{
    char *by_server = orr_sprintf ("access:servers!server=%s/%s", user, server ? server : "");
    char *by_user = orr_sprintf ("access:servers!user=%s", user);
    json_t *a = json_pack ("[s, s]", by_server, by_user);
    char *text = json_dumps (a, JSON_COMPACT);
    json_decref (a);
    free (by_server);
    free (by_user);
    return text;
}

typedef struct {
    char **v;
    size_t n, cap;
} env_list_t;

static void
s_set (env_list_t *e, const char *name, const char *value)
{
    if (!value)
        return;
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? 2 * e->cap : 32;
        e->v = orr_realloc (e->v, e->cap * sizeof (char *));
    }
    e->v[e->n++] = orr_sprintf ("%s=%s", name, value);
    e->v[e->n] = NULL;
}

static void
s_set_profile_var (void *ctx, const char *name, const char *value)
{
    s_set (ctx, name, value);
}

char **
spawner_env_build (const spawner_env_spec_t *spec)
{
    env_list_t e = { 0 };
    const char *server = spec->server ? spec->server : "";
    char *prefix = spawner_server_url (spec->base_url, spec->user, server);
    char *client_id = spawner_client_id (spec->user, server);
    char *quoted_user = orr_url_quote (spec->user);   /* JupyterHub: user.escaped_name */
    char *activity = orr_sprintf ("%s/users/%s/activity", spec->hub_api_url, quoted_user);
    free (quoted_user);
    char *service_url = orr_sprintf ("%s%s", spec->bind_url, prefix);
    char *callback = orr_sprintf ("%soauth_callback", prefix);
    char *scopes = spawner_access_scopes_json (spec->user, server);

    s_set (&e, "JUPYTERHUB_API_TOKEN", spec->token);
    s_set (&e, "JPY_API_TOKEN", spec->token);
    s_set (&e, "JUPYTERHUB_CLIENT_ID", client_id);
    s_set (&e, "JUPYTERHUB_API_URL", spec->hub_api_url);
    s_set (&e, "JUPYTERHUB_ACTIVITY_URL", activity);
    s_set (&e, "JUPYTERHUB_BASE_URL", spec->base_url);
    s_set (&e, "JUPYTERHUB_HOST", spec->public_host ? spec->public_host : "");
    s_set (&e, "JUPYTERHUB_SERVICE_PREFIX", prefix);
    s_set (&e, "JUPYTERHUB_SERVICE_URL", service_url);
    s_set (&e, "JUPYTERHUB_OAUTH_CALLBACK_URL", callback);
    s_set (&e, "JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes);
    s_set (&e, "JUPYTERHUB_OAUTH_SCOPES", scopes);
    s_set (&e, "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]");
    s_set (&e, "JUPYTERHUB_USER", spec->user);
    s_set (&e, "JUPYTERHUB_SERVER_NAME", server);
    if (spec->singleuser_app && *spec->singleuser_app)
        s_set (&e, "JUPYTERHUB_SINGLEUSER_APP", spec->singleuser_app);
    if (spec->profile)
        spawner_profile_env (spec->profile, s_set_profile_var, &e);
    s_set (&e, "USER", spec->user);
    s_set (&e, "HOME", spec->home);
    s_set (&e, "SHELL", "/bin/sh");
    if (spec->stack_id && *spec->stack_id)
        s_set (&e, "ORRERY_STACK", spec->stack_id);
    if (!e.v)
        e.v = orr_zalloc (sizeof (char *));

    free (prefix);
    free (client_id);
    free (activity);
    free (service_url);
    free (callback);
    free (scopes);
    return e.v;
}
