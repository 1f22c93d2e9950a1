/*  gw_pages: the browser pages -- login, logout, home, change password -- and the page
 *  helpers every HTML-serving file shares (gw_api.h).
 *
 *  Plain HTML forms and no build step; the only script is the home page's "Stop My
 *  Server" (a DELETE on the API with the session's XSRF token, as JupyterHub's home page
 *  does). Cookies: "jupyterhub-hub-login" holds the signed session (HttpOnly, SameSite=Lax, Secure behind HTTPS, path <base>hub/);
 *  "jupyterhub-session-id" holds the bare session id at path / because single-user
 *  servers read it (jupyterhub-api.md §9). Forms carry an XSRF value: on the login form a
 *  random double-submit cookie "_xsrf", on signed-in forms the session's HMAC-derived
 *  token, so a page on another site cannot post them.
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "orr_crypto.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

char *
gw_html (const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += 6;
    char *out = orr_zalloc (n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: *o++ = *p; continue;
        }
        size_t k = strlen (rep);
        memcpy (o, rep, k);
        o += k;
    }
    *o = '\0';
    return out;
}

enum MHD_Result
gw_page (const gw_request_t *req, unsigned status, const char *title, const char *body, const char *const *headers)
{
    char *t = gw_html (title);
    char *html = orr_sprintf ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s - Orrery</title>"
                              "<style>body{font-family:sans-serif;max-width:30em;margin:3em auto}"
                              "label{display:block;margin:.6em 0}input{width:100%%}"
                              ".error{color:#a00}</style></head>\n<body><h1>%s</h1>\n%s\n</body></html>\n",
                              t, t, body);
    enum MHD_Result rc = gw_reply_with (req, status, "text/html; charset=utf-8", html, strlen (html), headers);
    free (html);
    free (t);
    return rc;
}

static bool
s_https (const gw_request_t *req)
{
    const char *proto = gw_header (req, "X-Forwarded-Proto");
    return proto && strncmp (proto, "https", 5) == 0;
}

bool
gw_local_path (const char *next)
{
    return next && next[0] == '/' && next[1] != '/' && next[1] != '\\' && !strpbrk (next, "\r\n");
}

/* A local path to go to after login: only "/..." and never "//host" or "/\host". */
static char *
s_safe_next (gw_t *gw, const char *next)
{
    if (gw_local_path (next))
        return orr_strdup (next);
    return gw_url (gw, "hub/home");
}

enum MHD_Result
gw_redirect_status (const gw_request_t *req, unsigned status, const char *location)
{
    const char *headers[] = { "Location", location, NULL };
    return gw_reply_with (req, status, "text/html", "", 0, headers);
}

enum MHD_Result
gw_redirect (const gw_request_t *req, const char *location, const char *const *cookies)
{
    const char *headers[12] = { "Location", location };
    size_t h = 2;
    for (size_t i = 0; cookies && cookies[i] && h < 10; i++) {
        headers[h++] = "Set-Cookie";
        headers[h++] = cookies[i];
    }
    headers[h] = NULL;
    return gw_reply_with (req, 302, "text/html", "", 0, headers);
}

static enum MHD_Result
s_login_form (gw_t *gw, const gw_request_t *req, unsigned status, const char *error, const char *next,
              const char *const *extra_headers)
{
    char xsrf_new[33];
    const char *xsrf = gw_cookie (req, "_xsrf");
    if (!xsrf || strlen (xsrf) != 32) {
        orr_random_hex (xsrf_new, 16);
        xsrf = xsrf_new;
    }
    char *action = gw_url (gw, "hub/login");
    char *e = gw_html (error ? error : ""), *n = gw_html (next ? next : "");
    char *body = orr_sprintf ("%s%s%s<form method=\"post\" action=\"%s\">\n"
                              "<input type=\"hidden\" name=\"_xsrf\" value=\"%s\">\n"
                              "<input type=\"hidden\" name=\"next\" value=\"%s\">\n"
                              "<label>Username <input name=\"username\" autocomplete=\"username\" autofocus></label>\n"
                              "<label>Password <input name=\"password\" type=\"password\" "
                              "autocomplete=\"current-password\"></label>\n"
                              "<button type=\"submit\" id=\"login_submit\">Sign in</button>\n</form>",
                              error ? "<p class=\"error\" id=\"login_error\">" : "", e, error ? "</p>" : "", action,
                              xsrf, n);
    char *cookie = orr_sprintf ("_xsrf=%s; Path=%shub/; HttpOnly; SameSite=Lax%s", xsrf, gw->base_url,
                                s_https (req) ? "; Secure" : "");
    const char *headers[8] = { "Set-Cookie", cookie };
    size_t h = 2;
    for (size_t i = 0; extra_headers && extra_headers[i] && h < 6; i++)
        headers[h++] = extra_headers[i];
    headers[h] = NULL;
    enum MHD_Result rc = gw_page (req, status, "Sign in", body, headers);
    free (cookie);
    free (body);
    free (e);
    free (n);
    free (action);
    return rc;
}

enum MHD_Result
gw_page_login (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    const char *next = gw_arg (req, "next");
    if (caller->authenticated && caller->via_cookie) {
        char *to = s_safe_next (gw, next);
        enum MHD_Result rc = gw_redirect (req, to, NULL);
        free (to);
        return rc;
    }
    return s_login_form (gw, req, 200, NULL, next, NULL);
}

enum MHD_Result
gw_page_login_post (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    char *xsrf = gw_form_value (req, "_xsrf"), *user = gw_form_value (req, "username");
    char *pass = gw_form_value (req, "password"), *next = gw_form_value (req, "next");
    const char *cookie = gw_cookie (req, "_xsrf");
    enum MHD_Result rc;
    if (!xsrf || !cookie || !orr_secret_equal (xsrf, cookie))
        rc = s_login_form (gw, req, 403, "Your sign-in form expired; please try again.", next, NULL);
    else {
        Orrery__Login m = ORRERY__LOGIN__INIT;
        char addr[64];
        gw_client_addr (req, addr, sizeof addr);
        m.username = user ? user : "";
        m.password = pass ? pass : "";
        m.client_addr = addr;
        m.create_session = true;
        Orrery__LoginResult *res = NULL;
        char msg[256];
        int st = gw_call_auth (gw, "login", &m.base, &orrery__login_result__descriptor, (ProtobufCMessage **) &res, msg,
                               sizeof msg);
        if (st != 200)
            rc = s_login_form (gw, req, 503, "Sign-in is unavailable right now; please try again.", next, NULL);
        else if (res->status == 200) {
            char signed_cookie[160];
            gw_session_cookie (gw, res->session_id, signed_cookie, sizeof signed_cookie);
            const char *secure = s_https (req) ? "; Secure" : "";
            char *c1 = orr_sprintf ("jupyterhub-hub-login=%s; Path=%shub/; HttpOnly; SameSite=Lax%s", signed_cookie,
                                    gw->base_url, secure);
            char *c2 = orr_sprintf ("jupyterhub-session-id=%s; Path=/; HttpOnly; SameSite=Lax%s", res->session_id, secure);
            const char *cookies[] = { c1, c2, NULL };
            char *to = s_safe_next (gw, next);
            rc = gw_redirect (req, to, cookies);
            free (to);
            free (c1);
            free (c2);
        }
        else if (res->status == 429) {
            char retry[16];
            snprintf (retry, sizeof retry, "%d", res->retry_after_s);
            const char *extra[] = { "Retry-After", retry, NULL };
            rc = s_login_form (gw, req, 429, res->message, next, extra);
        }
        else
            rc = s_login_form (gw, req, res->status == 503 ? 503 : 403, res->message, next, NULL);
        if (res)
            orrery__login_result__free_unpacked (res, NULL);
    }
    free (xsrf);
    free (user);
    free (pass);
    free (next);
    return rc;
}

enum MHD_Result
gw_page_logout (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    char sid[80];
    if (gw_session_from_cookie (gw, req, sid, sizeof sid)) {
        Orrery__Logout m = ORRERY__LOGOUT__INIT;
        m.session_id = sid;
        char msg[256];
        if (gw_call_auth (gw, "logout", &m.base, NULL, NULL, msg, sizeof msg) != 200)
            orr_warn ("logout: %s", msg);
        gw_forget_cached (gw);
    }
    char *c1 = orr_sprintf ("jupyterhub-hub-login=; Path=%shub/; Max-Age=0; HttpOnly; SameSite=Lax", gw->base_url);
    char *c2 = orr_strdup ("jupyterhub-session-id=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    const char *cookies[] = { c1, c2, NULL };
    char *to = gw_url (gw, "hub/login");
    enum MHD_Result rc = gw_redirect (req, to, cookies);
    free (to);
    free (c1);
    free (c2);
    return rc;
}

enum MHD_Result
gw_to_login (gw_t *gw, const gw_request_t *req)
{
    char *query = gw_query (req, NULL);
    char *path = gw_url (gw, req->path);
    char *here = orr_sprintf ("%s%s%s", path, *query ? "?" : "", query);
    char *next = gw_percent_encode (here);
    char *to = gw_url (gw, "hub/login?next=");
    char *loc = orr_sprintf ("%s%s", to, next);
    enum MHD_Result rc = gw_redirect (req, loc, NULL);
    free (query);
    free (path);
    free (here);
    free (next);
    free (to);
    free (loc);
    return rc;
}

/* The home page's part about the default server: its state and what can be done. */
static char *
s_home_server (gw_t *gw, gw_caller_t *caller)
{
    gw_server_t s;
    int found = gw_server_load (gw, caller->id.name, "", &s);
    const char *pending = found >= 0 ? gw_server_pending (&s) : NULL;
    char *url = gw_server_url (gw, caller->id.name, "");
    char *u = gw_html (url);
    char *out;
    if (found < 0)
        out = orr_strdup ("<p id=\"server-state\">Your server's state is unavailable right now.</p>");
    else if (gw_server_ready (&s) || (pending && strcmp (pending, "stop") == 0)) {
        /* stop through the API, as JupyterHub's home page does: cookie + Referer + XSRF */
        char xsrf[64];
        gw_xsrf_token (gw, caller->id.session_id ? caller->id.session_id : "", xsrf, sizeof xsrf);
        char *api = gw_server_page_url (gw, "api/users", caller->id.name, "");
        char *stop_url = orr_sprintf ("%s/server", api);
        char *a = gw_html (stop_url);
        out = orr_sprintf ("<p id=\"server-state\">%s</p>\n"
                           "<p><a id=\"start\" href=\"%s\">My Server</a> &middot; "
                           "<button id=\"stop\" type=\"button\" data-url=\"%s\" data-xsrf=\"%s\">Stop My Server</button></p>\n"
                           "<script>\n"
                           "document.getElementById('stop').addEventListener('click', function () {\n"
                           "  var b = this; b.disabled = true; b.textContent = 'Stopping...';\n"
                           "  fetch(b.dataset.url, {method: 'DELETE', credentials: 'same-origin',\n"
                           "    headers: {'X-XSRFToken': b.dataset.xsrf}}).then(function () { window.location.reload(); });\n"
                           "});\n"
                           "</script>",
                           pending ? "Your server is stopping." : "Your server is running.", u, a, xsrf);
        free (a);
        free (stop_url);
        free (api);
    }
    else if (pending) {
        char *to = gw_server_page_url (gw, "spawn-pending", caller->id.name, "");
        char *t = gw_html (to);
        out = orr_sprintf ("<p id=\"server-state\">Your server is starting.</p>\n"
                           "<p><a id=\"start\" href=\"%s\">My Server</a></p>",
                           t);
        free (t);
        free (to);
    }
    else {
        char *to = gw_url (gw, "hub/spawn");
        char *t = gw_html (to);
        out = orr_sprintf ("<p id=\"server-state\">Your server is not running.</p>\n"
                           "<p><a id=\"start\" href=\"%s\">Start My Server</a></p>",
                           t);
        free (t);
        free (to);
    }
    free (u);
    free (url);
    if (found >= 0)
        gw_server_clear (&s);
    return out;
}

enum MHD_Result
gw_page_home (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (!caller->authenticated || !caller->via_cookie)
        return gw_to_login (gw, req);
    char *name = gw_html (caller->id.name);
    char *logout = gw_url (gw, "hub/logout"), *pw = gw_url (gw, "hub/change-password");
    char *server = s_home_server (gw, caller);
    char *body = orr_sprintf ("<p>Signed in as <strong id=\"user\">%s</strong>%s.</p>\n%s\n"
                              "<p><a href=\"%s\">Change password</a> &middot; <a href=\"%s\" id=\"logout\">Sign out</a></p>",
                              name, caller->id.admin ? " (admin)" : "", server, pw, logout);
    enum MHD_Result rc = gw_page (req, 200, "Home", body, NULL);
    free (body);
    free (server);
    free (logout);
    free (pw);
    free (name);
    return rc;
}

enum MHD_Result
gw_page_root (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    char *to = gw_url (gw, "hub/");
    enum MHD_Result rc = gw_redirect (req, to, NULL);
    free (to);
    return rc;
}

enum MHD_Result
gw_page_hub_root (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    char *to = gw_url (gw, caller->authenticated && caller->via_cookie ? "hub/home" : "hub/login");
    enum MHD_Result rc = gw_redirect (req, to, NULL);
    free (to);
    return rc;
}

static enum MHD_Result
s_password_form (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, unsigned status, const char *note)
{
    char xsrf[64];
    gw_xsrf_token (gw, caller->id.session_id, xsrf, sizeof xsrf);
    char *action = gw_url (gw, "hub/change-password");
    char *n = gw_html (note ? note : "");
    char *body = orr_sprintf ("%s%s%s<form method=\"post\" action=\"%s\">\n"
                              "<input type=\"hidden\" name=\"_xsrf\" value=\"%s\">\n"
                              "<label>Current password <input name=\"old_password\" type=\"password\"></label>\n"
                              "<label>New password <input name=\"new_password\" type=\"password\"></label>\n"
                              "<label>New password again <input name=\"new_password_confirm\" type=\"password\"></label>\n"
                              "<button type=\"submit\">Change password</button>\n</form>",
                              note ? "<p class=\"note\" id=\"note\">" : "", n, note ? "</p>" : "", action, xsrf);
    enum MHD_Result rc = gw_page (req, status, "Change password", body, NULL);
    free (body);
    free (n);
    free (action);
    return rc;
}

enum MHD_Result
gw_page_change_password (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (!caller->authenticated || !caller->via_cookie)
        return gw_to_login (gw, req);
    return s_password_form (gw, req, caller, 200, NULL);
}

enum MHD_Result
gw_page_change_password_post (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    if (!caller->authenticated || !caller->via_cookie)
        return gw_to_login (gw, req);
    char expected[64];
    gw_xsrf_token (gw, caller->id.session_id, expected, sizeof expected);
    char *xsrf = gw_form_value (req, "_xsrf"), *old_pw = gw_form_value (req, "old_password");
    char *new_pw = gw_form_value (req, "new_password"), *confirm = gw_form_value (req, "new_password_confirm");
    enum MHD_Result rc;
    if (!xsrf || !orr_secret_equal (xsrf, expected))
        rc = s_password_form (gw, req, caller, 403, "The form expired; please try again.");
    else if (!new_pw || !confirm || strcmp (new_pw, confirm) != 0)
        rc = s_password_form (gw, req, caller, 400, "The new passwords do not match.");
    else {
        Orrery__PasswordChange m = ORRERY__PASSWORD_CHANGE__INIT;
        m.username = caller->id.name;
        m.old_password = old_pw ? old_pw : "";
        m.new_password = new_pw;
        char msg[256];
        int st = gw_call_auth (gw, "password.change", &m.base, NULL, NULL, msg, sizeof msg);
        rc = s_password_form (gw, req, caller, st == 200 ? 200 : (unsigned) st,
                              st == 200 ? "Your password has been changed." : msg);
    }
    free (xsrf);
    free (old_pw);
    free (new_pw);
    free (confirm);
    return rc;
}

/* GET /hub/logo: the logo single-user pages show (the classic notebook's header loads it
 * from the hub, as JupyterHub serves its own there). Public, like JupyterHub's. */
enum MHD_Result
gw_page_logo (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    (void) gw;
    (void) caller;
    (void) params;
    static const char svg[] =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"28\" viewBox=\"0 0 120 28\">"
        "<circle cx=\"14\" cy=\"14\" r=\"5\" fill=\"#f37726\"/>"
        "<ellipse cx=\"14\" cy=\"14\" rx=\"12\" ry=\"5\" fill=\"none\" stroke=\"#4e4e4e\" stroke-width=\"1.5\"/>"
        "<text x=\"32\" y=\"20\" font-family=\"sans-serif\" font-size=\"17\" fill=\"#4e4e4e\">Orrery</text></svg>";
    return gw_reply (req, 200, "image/svg+xml", svg, sizeof svg - 1);
}
