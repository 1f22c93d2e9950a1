/*  gw_pages_spawn: the browser's way to start a server -- GET /hub/spawn[/{user}[/{server}]]
 *  starts it with default options and sends the browser to GET
 *  /hub/spawn-pending/{user}[/{server}], a page whose progress bar follows the progress
 *  stream (EventSource on the server's progress_url) and which goes on to the server
 *  when it is ready, or shows why it failed.
 *
 *  Both need the login cookie and, for someone else's server, scope `servers` on it (the
 *  admin role has it); JupyterHub 3.0's SpawnHandler and SpawnPendingHandler decide the
 *  same way. The progress stream is an API call: the browser sends the login cookie and a
 *  Referer on this hub, which is what gw_auth.c asks of a cookie on /hub/api for a GET.
 *  `next` (a local path) is where to go once the server is ready; default its URL.
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

/* An HTML error page. */
static enum MHD_Result
s_error_page (const gw_request_t *req, unsigned status, const char *message, const char *const *headers)
{
    char *m = gw_html (message);
    char *body = orr_sprintf ("<p class=\"error\" id=\"error\">%s</p>", m);
    char title[32];
    snprintf (title, sizeof title, "Error %u", status);
    enum MHD_Result rc = gw_page (req, status, title, body, headers);
    free (body);
    free (m);
    return rc;
}

/* s as a JavaScript string literal, safe inside <script> (no "</", no line breaks). */
static char *
s_js_string (const char *s)
{
    json_t *v = json_string (s);
    char *text = v ? json_dumps (v, JSON_ENCODE_ANY) : NULL;
    json_decref (v);
    if (!text)
        return orr_strdup ("\"\"");
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '<' || *p == '>' || *p == '&' ? 6 : 1;
    char *out = orr_zalloc (n + 1), *o = out;
    for (const char *p = text; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&')
            o += sprintf (o, "\\u%04x", (unsigned char) *p);
        else
            *o++ = *p;
    }
    free (text);
    return out;
}

/* Login, scope `servers` on (user, server), the user and a named server's record. True to
 * go on, with the server's record in *s (found: 1 record, 0 none); else *rc answers. */
static bool
s_checks (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server,
          gw_server_t *s, enum MHD_Result *rc)
{
    memset (s, 0, sizeof *s);
    if (!caller->authenticated || !caller->via_cookie) {
        *rc = gw_to_login (gw, req);
        return false;
    }
    char *target = orr_sprintf ("%s/%s", user, server);
    orr_scope_target_t t = { .user = user, .server = target };
    static const char *const need[] = { "servers", NULL };
    orr_scope_decision_t d = orr_scopes_check (caller->id.scopes, need, &t, gw_is_member, gw);
    free (target);
    if (d != ORR_SCOPE_ALLOW) {
        *rc = s_error_page (req, d == ORR_SCOPE_NOT_FOUND ? 404 : 403,
                            d == ORR_SCOPE_NOT_FOUND ? "No access to resources or resources not found"
                                                     : "You may not start or watch this server", NULL);
        return false;
    }
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), user, &rec);
    orr_user_rec_clear (&rec);
    if (found == 1) {
        found = gw_server_load (gw, user, server, s);
        if (found == 0 && *server)
            found = 2;             /* a named server that does not exist (yet) */
    }
    else if (found == 0) {
        *rc = s_error_page (req, 404, "No such user", NULL);
        return false;
    }
    if (found < 0) {
        *rc = s_error_page (req, 503, "The server store is unavailable; please try again.", NULL);
        return false;
    }
    return true;
}

/* Where to go once ready: a local `next`, else the server's URL. Caller frees. */
static char *
s_next (gw_t *gw, const gw_request_t *req, const char *user, const char *server)
{
    const char *next = gw_arg (req, "next");
    return gw_local_path (next) ? orr_strdup (next) : gw_server_url (gw, user, server);
}

/* /hub/spawn-pending/... with the request's `next` kept. Caller frees. */
static char *
s_pending_url (gw_t *gw, const gw_request_t *req, const char *user, const char *server)
{
    char *url = gw_server_page_url (gw, "spawn-pending", user, server);
    const char *next = gw_arg (req, "next");
    if (gw_local_path (next)) {
        char *enc = gw_percent_encode (next);
        char *with = orr_sprintf ("%s?next=%s", url, enc);
        free (enc);
        free (url);
        url = with;
    }
    return url;
}

static enum MHD_Result
s_spawn (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    gw_server_t s;
    if (!s_checks (gw, req, caller, user, server, &s, &rc))
        return rc;
    const char *pending = gw_server_pending (&s);
    if (gw_server_ready (&s)) {
        char *to = s_next (gw, req, user, server);
        rc = gw_redirect (req, to, NULL);
        free (to);
    }
    else if (pending && strcmp (pending, "spawn") == 0) {
        char *to = s_pending_url (gw, req, user, server);
        rc = gw_redirect (req, to, NULL);
        free (to);
    }
    else {
        char state[16], msg[256];
        int st = gw_spawn (gw, user, server, "{}", caller->id.name, state, sizeof state, msg, sizeof msg);
        if (st == 200) {
            char *to = strcmp (state, "ready") == 0 ? s_next (gw, req, user, server) : s_pending_url (gw, req, user, server);
            rc = gw_redirect (req, to, NULL);
            free (to);
        }
        else if (st == 429) {
            const char *headers[] = { "Retry-After", "30", NULL };
            rc = s_error_page (req, 429, msg, headers);
        }
        else if (st == 503 || st == 504)
            rc = s_error_page (req, 503, "The spawner is unavailable; please try again.", NULL);
        else
            rc = s_error_page (req, (unsigned) (st >= 400 && st < 600 ? st : 502), msg, NULL);
    }
    gw_server_clear (&s);
    return rc;
}

enum MHD_Result
gw_page_spawn (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (!caller->authenticated || !caller->via_cookie || strcmp (caller->id.kind, "user") != 0)
        return gw_to_login (gw, req);
    return s_spawn (gw, req, caller, caller->id.name, "");
}

enum MHD_Result
gw_page_spawn_user (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_spawn (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_page_spawn_named (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_spawn (gw, req, caller, params[0], params[1]);
}

/* The page of a server that is not starting: why it failed, if it did, and a start link. */
static enum MHD_Result
s_not_running (gw_t *gw, const gw_request_t *req, const char *user, const char *server, const gw_server_t *s)
{
    char *spawn = gw_server_page_url (gw, "spawn", user, server);
    char *label = gw_server_label (user, server);
    char *l = gw_html (label), *sp = gw_html (spawn);
    char *why = gw_server_is (s, "failed") ? orr_sprintf ("Spawn failed: %s", *s->reason ? s->reason : s->message)
                                           : orr_strdup ("");
    char *w = gw_html (why);
    char *body = orr_sprintf ("<p id=\"state\">The server of %s is not running.</p>\n%s%s%s"
                              "<p><a id=\"start\" href=\"%s\">%s</a></p>",
                              l, *why ? "<p class=\"error\" id=\"failed\">" : "", w, *why ? "</p>\n" : "", sp,
                              *why ? "Relaunch server" : "Launch server");
    enum MHD_Result rc = gw_page (req, 200, "Server not running", body, NULL);
    free (body);
    free (w);
    free (why);
    free (l);
    free (sp);
    free (label);
    free (spawn);
    return rc;
}

/* The progress page of a starting server. */
static enum MHD_Result
s_progress_page (gw_t *gw, const gw_request_t *req, const char *user, const char *server, const gw_server_t *s)
{
    char *progress = gw_server_progress_url (gw, user, server);
    char *next = s_next (gw, req, user, server);
    char *spawn = gw_server_page_url (gw, "spawn", user, server);
    char *label = gw_server_label (user, server);
    char *js_progress = s_js_string (progress), *js_next = s_js_string (next), *js_spawn = s_js_string (spawn);
    char *l = gw_html (label);
    char *body = orr_sprintf (
        "<p>Your server (%s) is starting up. You will be redirected automatically when it is ready.</p>\n"
        "<div id=\"progress-bar\" style=\"border:1px solid #888;height:1.2em\">"
        "<div id=\"progress\" style=\"background:#4a8;height:100%%;width:0%%\"></div></div>\n"
        "<p id=\"progress-message\">Server requested</p>\n"
        "<p id=\"relaunch\" hidden><a id=\"start\">Relaunch server</a></p>\n"
        "<script>\n"
        "(function () {\n"
        "  var bar = document.getElementById('progress'), msg = document.getElementById('progress-message');\n"
        "  var next = %s, spawn = %s;\n"
        "  var es = new EventSource(%s);\n"
        "  es.onmessage = function (e) {\n"
        "    var ev = JSON.parse(e.data);\n"
        "    if (typeof ev.progress === 'number') bar.style.width = ev.progress + '%%';\n"
        "    if (ev.message) msg.textContent = ev.message;\n"
        "    if (ev.ready) { es.close(); window.location.href = next; }\n"
        "    if (ev.failed) {\n"
        "      es.close(); msg.className = 'error';\n"
        "      var a = document.getElementById('start'); a.href = spawn;\n"
        "      document.getElementById('relaunch').hidden = false;\n"
        "    }\n"
        "  };\n"
        "  es.onerror = function () { if (es.readyState === 2) window.location.reload(); };\n"
        "})();\n"
        "</script>",
        l, js_next, js_spawn, js_progress);
    enum MHD_Result rc = gw_page (req, 200, "Server starting", body, NULL);
    free (body);
    free (l);
    free (js_progress);
    free (js_next);
    free (js_spawn);
    free (label);
    free (spawn);
    free (next);
    free (progress);
    return rc;
}

static enum MHD_Result
s_pending (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    gw_server_t s;
    if (!s_checks (gw, req, caller, user, server, &s, &rc))
        return rc;
    const char *pending = gw_server_pending (&s);
    if (gw_server_ready (&s)) {
        char *to = s_next (gw, req, user, server);
        rc = gw_redirect (req, to, NULL);
        free (to);
    }
    else if (pending && strcmp (pending, "spawn") == 0)
        rc = s_progress_page (gw, req, user, server, &s);
    else
        rc = s_not_running (gw, req, user, server, &s);
    gw_server_clear (&s);
    return rc;
}

enum MHD_Result
gw_page_spawn_pending (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_pending (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_page_spawn_pending_named (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_pending (gw, req, caller, params[0], params[1]);
}
