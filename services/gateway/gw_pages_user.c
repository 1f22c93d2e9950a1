/*  gw_pages_user: requests for a user's server that reach the hub instead (jupyterhub-api.md
 *  §10: the proxy sends every path without a route to the hub route "/").
 *
 *  /user/{name}/...     -> 302 /hub/user/{name}/... (query kept); /user/{name} first gets
 *                          its slash (301), as JupyterHub's AddSlashHandler does.
 *  /hub/user/{name}/... -> JupyterHub 3.0's UserUrlHandler:
 *     - the server is ready (the proxy had no route yet): 302 back to /user/{name}/...
 *       with a `redirects` count; at USER_REDIRECT_LIMIT, 500 "Redirect loop detected."
 *     - a request that wants JSON (Accept prefers application/json, or "api" is a path
 *       segment), and every method but GET: 424 {"status", "message": "JupyterHub server
 *       no longer running at ... Restart the server at ..."}
 *     - starting (or its last start failed): 303 /hub/spawn-pending/{name}[/{server}]
 *     - otherwise 424, an HTML page with a "Launch server" link.
 *  /hub/user/alice/gpu/... means the named server "gpu" only when alice has a record for
 *  it; otherwise the default server's path "gpu/..." (JupyterHub's rule too).
 *  Login (cookie or token) is required for GET; access:servers on the server decides
 *  whether the caller may learn anything about it (404 otherwise).
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USER_REDIRECT_LIMIT 4      /* JupyterHub's user_redirect_limit */

/* The path percent-encoded again for a Location header (MHD hands it decoded): bytes
 * outside unreserved, sub-delims, ':', '@' and '/' become %XX. Caller frees. */
static char *
s_path_encode (const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = orr_zalloc (3 * strlen (path) + 1), *o = out;
    for (const unsigned char *c = (const unsigned char *) path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
            || strchr ("-._~!$&'()*+,;=:@/", *c))
            *o++ = (char) *c;
        else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* base_url + rel + "?" + query (without the args in skip) + extra ("k=v" or NULL). */
static char *
s_with_query (gw_t *gw, const gw_request_t *req, const char *rel, const char *const *skip, const char *extra)
{
    char *query = gw_query (req, skip);
    char *path = s_path_encode (rel);
    char *url = gw_url (gw, path);
    bool q = *query || extra;
    char *out = orr_sprintf ("%s%s%s%s%s", url, q ? "?" : "", query, *query && extra ? "&" : "", extra ? extra : "");
    free (query);
    free (path);
    free (url);
    return out;
}

enum MHD_Result
gw_page_user_prefix (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (strcmp (req->method, "GET") != 0 && strcmp (req->method, "HEAD") != 0)
        return gw_reply_error (req, 405, "Method Not Allowed");
    const char *rest = req->path + strlen ("/user/");
    if (!*rest || *rest == '/')
        return gw_reply_error (req, 404, "Not Found");
    char *to;
    if (!strchr (rest, '/')) {
        char *rel = orr_sprintf ("%s/", req->path + 1);
        to = s_with_query (gw, req, rel, NULL, NULL);
        free (rel);
        const char *headers[] = { "Location", to, NULL };
        enum MHD_Result rc = gw_reply_with (req, 301, "text/html", "", 0, headers);
        free (to);
        return rc;
    }
    char *rel = orr_sprintf ("hub%s", req->path);
    to = s_with_query (gw, req, rel, NULL, NULL);
    enum MHD_Result rc = gw_redirect (req, to, NULL);
    free (rel);
    free (to);
    return rc;
}

/* Does the request prefer JSON? JupyterHub's get_accepted_mimetype over
 * [application/json, text/html]: the highest-q entry that is one of them decides. */
static bool
s_wants_json (const gw_request_t *req)
{
    const char *accept = gw_header (req, "Accept");
    if (!accept)
        return false;
    double best_q = -1;
    bool json = false;
    char *copy = orr_strdup (accept);
    char *save = NULL;
    for (char *item = strtok_r (copy, ",", &save); item; item = strtok_r (NULL, ",", &save)) {
        char *semi = strchr (item, ';');
        double q = 1.0;
        if (semi) {
            *semi = '\0';
            char *qp = strstr (semi + 1, "q=");
            if (qp)
                q = strtod (qp + 2, NULL);
        }
        char *mime = orr_strtrim (item);
        bool is_json = strcasecmp (mime, "application/json") == 0;
        if ((is_json || strcasecmp (mime, "text/html") == 0) && q > best_q) {
            best_q = q;
            json = is_json;
        }
    }
    free (copy);
    return json;
}

/* Is "api" one of the path's segments? */
static bool
s_api_path (const char *user_path)
{
    size_t n;
    char **parts = orr_split (user_path, '/', &n);
    bool api = false;
    for (size_t i = 0; i < n && !api; i++)
        api = strcmp (parts[i], "api") == 0;
    orr_strv_free (&parts);
    return api;
}

static enum MHD_Result
s_not_running_json (gw_t *gw, const gw_request_t *req, const char *user, const char *server)
{
    char *u = orr_url_quote (user), *s = orr_url_quote (server);
    char *rel = orr_sprintf ("hub/spawn/%s%s%s", u, *s ? "/" : "", s);
    char *spawn = gw_absolute_url (gw, req, rel);
    /* the path as JupyterHub shows it: without the hub prefix */
    char *message = orr_sprintf ("JupyterHub server no longer running at %s. Restart the server at %s",
                                 req->path + strlen ("/hub"), spawn);
    enum MHD_Result rc = gw_reply_error (req, 424, message);
    free (message);
    free (spawn);
    free (rel);
    free (u);
    free (s);
    return rc;
}

static enum MHD_Result
s_not_running_page (gw_t *gw, const gw_request_t *req, const char *user, const char *server)
{
    char *spawn = gw_server_page_url (gw, "spawn", user, server);
    char *here = s_with_query (gw, req, req->path + 1, NULL, NULL);
    char *next = gw_percent_encode (here);
    char *link = orr_sprintf ("%s?next=%s", spawn, next);
    char *label = gw_server_label (user, server);
    char *l = gw_html (label), *k = gw_html (link);
    char *body = orr_sprintf ("<p id=\"state\">The server of %s is not running.</p>\n"
                              "<p><a id=\"start\" href=\"%s\">Launch server</a></p>",
                              l, k);
    enum MHD_Result rc = gw_page (req, 424, "Server not running", body, NULL);
    free (body);
    free (l);
    free (k);
    free (label);
    free (link);
    free (next);
    free (here);
    free (spawn);
    return rc;
}

/* Back to the server through the proxy, counting redirects. */
static enum MHD_Result
s_to_server (gw_t *gw, const gw_request_t *req)
{
    long redirects = 0;
    const char *arg = gw_arg (req, "redirects");
    if (arg && orr_parse_long (arg, &redirects) != 0)
        redirects = 0;
    if (redirects >= USER_REDIRECT_LIMIT) {
        char *body = gw_html ("Redirect loop detected.");
        char *html = orr_sprintf ("<p class=\"error\" id=\"error\">%s</p>", body);
        enum MHD_Result rc = gw_page (req, 500, "Error 500", html, NULL);
        free (html);
        free (body);
        return rc;
    }
    static const char *const skip[] = { "redirects", NULL };
    char count[32];
    snprintf (count, sizeof count, "redirects=%ld", redirects + 1);
    char *to = s_with_query (gw, req, req->path + strlen ("/hub/"), skip, count);
    enum MHD_Result rc = gw_redirect (req, to, NULL);
    free (to);
    return rc;
}

/* The GET of /hub/user/{user}{user_path} for a signed-in caller. */
static enum MHD_Result
s_hub_user_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server,
                const char *user_path)
{
    char *target = orr_sprintf ("%s/%s", user, server);
    orr_scope_target_t t = { .user = user, .server = target };
    bool allowed = orr_scopes_allows (caller->id.scopes, "access:servers", &t, gw_is_member, gw);
    free (target);
    orr_user_rec_t rec;
    int exists = allowed ? orr_user_load (gw_store (gw), user, &rec) : 0;
    if (allowed)
        orr_user_rec_clear (&rec);
    if (!allowed || exists == 0) {
        char *m = gw_html (!allowed ? "No access to resources or resources not found" : "No such user");
        char *body = orr_sprintf ("<p class=\"error\" id=\"error\">%s</p>", m);
        enum MHD_Result rc = gw_page (req, 404, "Error 404", body, NULL);
        free (body);
        free (m);
        return rc;
    }
    gw_server_t s;
    int found = exists == 1 ? gw_server_load (gw, user, server, &s) : -1;
    enum MHD_Result rc;
    if (found < 0)
        rc = gw_reply_error (req, 503, "Server store unavailable; try again");
    else if (gw_server_ready (&s))
        rc = s_to_server (gw, req);
    else if (s_wants_json (req) || s_api_path (user_path))
        rc = s_not_running_json (gw, req, user, server);
    else if (gw_server_pending (&s) || gw_server_is (&s, "failed")) {
        char *pending_url = gw_server_page_url (gw, "spawn-pending", user, server);
        char *here = s_with_query (gw, req, req->path + 1, NULL, NULL);
        char *next = gw_percent_encode (here);
        char *to = orr_sprintf ("%s?next=%s", pending_url, next);
        rc = gw_redirect_status (req, 303, to);
        free (to);
        free (next);
        free (here);
        free (pending_url);
    }
    else
        rc = s_not_running_page (gw, req, user, server);
    if (found >= 0)
        gw_server_clear (&s);
    return rc;
}

enum MHD_Result
gw_page_hub_user (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    /* /hub/user/<name>[<user_path>] */
    const char *name_start = req->path + strlen ("/hub/user/");
    const char *slash = strchr (name_start, '/');
    if (!*name_start || slash == name_start)
        return gw_reply_error (req, 404, "Not Found");
    char *user = slash ? orr_strndup (name_start, (size_t) (slash - name_start)) : orr_strdup (name_start);
    const char *user_path = slash ? slash : "/";
    /* a named server: the first segment, when the user has a record for it */
    char *first = orr_strdup (user_path + 1);
    char *cut = strchr (first, '/');
    if (cut)
        *cut = '\0';
    bool named = false;
    if (*first) {
        gw_server_t probe;
        named = gw_server_load (gw, user, first, &probe) == 1;
        gw_server_clear (&probe);
    }
    const char *server = named ? first : "";
    enum MHD_Result rc;
    if (strcmp (req->method, "GET") != 0 && strcmp (req->method, "HEAD") != 0)
        rc = s_not_running_json (gw, req, user, server);   /* assumed API calls */
    else if (!caller->authenticated)
        rc = gw_to_login (gw, req);
    else
        rc = s_hub_user_get (gw, req, caller, user, server, user_path);
    free (first);
    free (user);
    return rc;
}
