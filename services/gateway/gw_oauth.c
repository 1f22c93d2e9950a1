/*  gw_oauth: the OAuth2 provider's HTTP side, authorization-code flow only
 *  (jupyterhub-api.md §7), for single-user servers and configured services.
 *
 *  authorize: the browser must be signed in (else to the login page and back); the client
 *  and its exact redirect URI are checked; the user must hold the client's access scope
 *  (access:servers!server=..., access:services!service=...), else 403. A confirmation page
 *  is shown unless the client is the user's own server, the client is configured with
 *  oauth_no_confirm, or the user already agreed to these scopes for this client. The code
 *  and the token come from the auth service.
 */
#include "gw_api.h"
#include "orr_crypto.h"
#include "orr_oauth.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

static enum MHD_Result
s_oauth_error (const gw_request_t *req, unsigned status, const char *error, const char *description)
{
    json_t *j = json_pack ("{s:s, s:s}", "error", error, "error_description", description);
    return gw_reply_jsonv (req, status, j);
}

/* Does the caller hold one of the client's access scopes? */
static bool
s_may_access (gw_t *gw, const gw_caller_t *caller, const json_t *access)
{
    size_t i;
    json_t *v;
    json_array_foreach (access, i, v) {
        const char *s = json_string_value (v);
        if (!s)
            continue;
        char base[ORR_SCOPE_MAX_LEN + 1];
        snprintf (base, sizeof base, "%s", s);
        char *bang = strchr (base, '!');
        orr_scope_target_t t = { 0 };
        if (bang) {
            *bang = '\0';
            char *eq = strchr (bang + 1, '=');
            if (!eq)
                continue;
            *eq = '\0';
            const char *kind = bang + 1, *value = eq + 1;
            if (strcmp (kind, "server") == 0)
                t.server = value;
            else if (strcmp (kind, "user") == 0)
                t.user = value;
            else if (strcmp (kind, "service") == 0)
                t.service = value;
            else if (strcmp (kind, "group") == 0)
                t.group = value;
        }
        if (orr_scopes_allows (caller->id.scopes, base, &t, gw_is_member, gw))
            return true;
    }
    return false;
}

/* The scopes the code will carry: the access scopes, plus requested scopes the client is
 * allowed to ask for (others are dropped, as JupyterHub does). New JSON array. */
static json_t *
s_code_scopes (const orr_oauth_client_t *client, const char *requested)
{
    json_t *out = json_deep_copy (client->access_scopes);
    if (!requested)
        return out;
    char *copy = orr_strdup (requested), *save = NULL;
    for (char *w = strtok_r (copy, " ", &save); w; w = strtok_r (NULL, " ", &save)) {
        size_t i;
        json_t *v;
        json_array_foreach (client->allowed_scopes, i, v)
            if (json_is_string (v) && strcmp (json_string_value (v), w) == 0)
                json_array_append_new (out, json_string (w));
    }
    free (copy);
    return out;
}

/* True when the user already agreed to `scopes` for this client. */
static bool
s_consented (gw_t *gw, const char *user, const char *client_id, const json_t *scopes)
{
    char *key = orr_key_user_oauth (user);
    redisReply *r = orr_store_command (gw_store (gw), "HGET %s %s", key, client_id);
    free (key);
    bool ok = false;
    if (r && r->type == REDIS_REPLY_STRING) {
        json_t *had = json_loads (r->str, 0, NULL);
        ok = json_is_array (had);
        size_t i, k;
        json_t *v, *h;
        json_array_foreach (scopes, i, v) {
            bool found = false;
            json_array_foreach (had, k, h)
                found = found || json_equal (h, v);
            ok = ok && found;
        }
        json_decref (had);
    }
    if (r)
        freeReplyObject (r);
    return ok;
}

/* Issues a code and redirects the browser back to the client. */
static enum MHD_Result
s_issue (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const orr_oauth_client_t *client, json_t *scopes,
         const char *state)
{
    Orrery__OAuthAuthorize m = ORRERY__OAUTH_AUTHORIZE__INIT;
    m.user = caller->id.name;
    m.client_id = client->client_id;
    m.redirect_uri = client->redirect_uri;
    m.session_id = caller->id.session_id ? caller->id.session_id : "";
    m.n_scopes = json_array_size (scopes);
    m.scopes = orr_zalloc ((m.n_scopes + 1) * sizeof (char *));
    for (size_t i = 0; i < m.n_scopes; i++)
        m.scopes[i] = (char *) json_string_value (json_array_get (scopes, i));
    Orrery__OAuthCode *code = NULL;
    char msg[256];
    int st = gw_call_auth (gw, "oauth.authorize", &m.base, &orrery__oauth_code__descriptor, (ProtobufCMessage **) &code,
                           msg, sizeof msg);
    free (m.scopes);
    if (st != 200)
        return gw_reply_error (req, (unsigned) st, msg);
    /* state is the client's own value: pass it back percent-encoded */
    char *enc_state = gw_percent_encode (state ? state : "");
    char *loc = orr_sprintf ("%s%scode=%s&state=%s", client->redirect_uri, strchr (client->redirect_uri, '?') ? "&" : "?",
                             code->code, enc_state);
    const char *hdr[] = { "Location", loc, NULL };
    enum MHD_Result rc = gw_reply_with (req, 302, "text/html", "", 0, hdr);
    free (loc);
    free (enc_state);
    orrery__oauth_code__free_unpacked (code, NULL);
    return rc;
}

/* Shared checks of GET and POST; returns false with *rc set when the flow stops here. */
static bool
s_prepare (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, orr_oauth_client_t *client, enum MHD_Result *rc)
{
    if (!caller->authenticated || !caller->via_cookie) {
        static const char *const none[] = { NULL };
        char *query = gw_query (req, none);
        char *here = gw_url (gw, "hub/api/oauth2/authorize");
        char *next = orr_sprintf ("%s?%s", here, query);
        /* next goes into a query string itself */
        char *enc = gw_percent_encode (next);
        char *login = gw_url (gw, "hub/login?next=");
        char *loc = orr_sprintf ("%s%s", login, enc);
        const char *hdr[] = { "Location", loc, NULL };
        *rc = gw_reply_with (req, 302, "text/html", "", 0, hdr);
        free (query);
        free (here);
        free (next);
        free (enc);
        free (login);
        free (loc);
        return false;
    }
    const char *client_id = gw_arg (req, "client_id"), *redirect = gw_arg (req, "redirect_uri");
    const char *type = gw_arg (req, "response_type");
    if (!client_id || !redirect || !type) {
        *rc = s_oauth_error (req, 400, "invalid_request", "client_id, redirect_uri and response_type are required");
        return false;
    }
    if (strcmp (type, "code") != 0) {
        *rc = s_oauth_error (req, 400, "unsupported_response_type", "only response_type=code is supported");
        return false;
    }
    int found = orr_oauth_client_load (gw_store (gw), gw->services, client_id, client);
    if (found <= 0) {
        *rc = found < 0 ? gw_reply_error (req, 503, "Client store unavailable; try again")
                        : s_oauth_error (req, 400, "invalid_client", "unknown client_id");
        return false;
    }
    if (strcmp (redirect, client->redirect_uri) != 0) {
        *rc = s_oauth_error (req, 400, "invalid_request", "redirect_uri does not match the client's");
        return false;
    }
    if (!s_may_access (gw, caller, client->access_scopes)) {
        *rc = gw_reply_errorf (req, 403, "You do not have permission to access %s", client->description);
        return false;
    }
    return true;
}

enum MHD_Result
gw_oauth_authorize (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    orr_oauth_client_t client = { 0 };
    enum MHD_Result rc;
    if (!s_prepare (gw, req, caller, &client, &rc)) {
        orr_oauth_client_clear (&client);
        return rc;
    }
    json_t *scopes = s_code_scopes (&client, gw_arg (req, "scope"));
    bool own = client.owner && strcmp (client.owner, caller->id.name) == 0;
    if (own || client.no_confirm || s_consented (gw, caller->id.name, client.client_id, scopes))
        rc = s_issue (gw, req, caller, &client, scopes, gw_arg (req, "state"));
    else {
        char xsrf[64];
        gw_xsrf_token (gw, caller->id.session_id, xsrf, sizeof xsrf);
        static const char *const none[] = { NULL };
        char *query = gw_query (req, none);
        char *action = gw_url (gw, "hub/api/oauth2/authorize");
        char *list = orr_strdup ("");
        size_t i;
        json_t *v;
        json_array_foreach (scopes, i, v) {
            char *grown = orr_sprintf ("%s<li>%s</li>", list, json_string_value (v));
            free (list);
            list = grown;
        }
        char *html = orr_sprintf ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Authorize access</title>"
                                  "</head><body><h1>Authorize access</h1><p>%s would like permission to identify you "
                                  "and to use these scopes:</p><ul>%s</ul>"
                                  "<form method=\"post\" action=\"%s?%s\"><input type=\"hidden\" name=\"_xsrf\" "
                                  "value=\"%s\"><button type=\"submit\" id=\"authorize\">Authorize</button></form>"
                                  "</body></html>",
                                  client.description, list, action, query, xsrf);
        rc = gw_reply (req, 200, "text/html; charset=utf-8", html, strlen (html));
        free (html);
        free (list);
        free (action);
        free (query);
    }
    json_decref (scopes);
    orr_oauth_client_clear (&client);
    return rc;
}

enum MHD_Result
gw_oauth_authorize_post (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    orr_oauth_client_t client = { 0 };
    enum MHD_Result rc;
    if (!s_prepare (gw, req, caller, &client, &rc)) {
        orr_oauth_client_clear (&client);
        return rc;
    }
    char xsrf[64];
    gw_xsrf_token (gw, caller->id.session_id, xsrf, sizeof xsrf);
    char *given = gw_form_value (req, "_xsrf");
    if (!given || !orr_secret_equal (given, xsrf))
        rc = gw_reply_error (req, 403, "XSRF check failed: reload the authorization page");
    else {
        json_t *scopes = s_code_scopes (&client, gw_arg (req, "scope"));
        rc = s_issue (gw, req, caller, &client, scopes, gw_arg (req, "state"));
        json_decref (scopes);
    }
    free (given);
    orr_oauth_client_clear (&client);
    return rc;
}

enum MHD_Result
gw_oauth_token (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    char *client_id = gw_form_value (req, "client_id"), *secret = gw_form_value (req, "client_secret");
    char *grant = gw_form_value (req, "grant_type"), *code = gw_form_value (req, "code");
    char *redirect = gw_form_value (req, "redirect_uri");
    enum MHD_Result rc;
    if (!grant || strcmp (grant, "authorization_code") != 0)
        rc = s_oauth_error (req, 400, "unsupported_grant_type", "only authorization_code is supported");
    else if (!client_id || !secret || !code || !redirect)
        rc = s_oauth_error (req, 400, "invalid_request", "client_id, client_secret, code and redirect_uri are required");
    else {
        Orrery__OAuthExchange m = ORRERY__OAUTH_EXCHANGE__INIT;
        m.client_id = client_id;
        m.client_secret = secret;
        m.code = code;
        m.redirect_uri = redirect;
        Orrery__OAuthAccess *access = NULL;
        char msg[256];
        int st = gw_call_auth (gw, "oauth.token", &m.base, &orrery__oauth_access__descriptor,
                               (ProtobufCMessage **) &access, msg, sizeof msg);
        if (st == 200) {
            char *scope = orr_strdup ("");
            for (size_t i = 0; i < access->n_scopes; i++) {
                char *grown = orr_sprintf ("%s%s%s", scope, i ? " " : "", access->scopes[i]);
                free (scope);
                scope = grown;
            }
            rc = gw_reply_jsonv (req, 200,
                                 json_pack ("{s:s, s:s, s:I, s:s}", "access_token", access->access_token, "token_type",
                                            "Bearer", "expires_in", (json_int_t) access->expires_in, "scope", scope));
            free (scope);
            orrery__oauth_access__free_unpacked (access, NULL);
        }
        else if (st == 400 || st == 401)
            rc = s_oauth_error (req, (unsigned) st, msg, st == 401 ? "client authentication failed"
                                                                    : "the code is invalid, used or expired");
        else
            rc = s_oauth_error (req, (unsigned) st, "temporarily_unavailable", msg);
    }
    free (client_id);
    free (secret);
    free (grant);
    free (code);
    free (redirect);
    return rc;
}
