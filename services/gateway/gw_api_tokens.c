/*  gw_api_tokens: /hub/api/users/{name}/tokens[/{id}] (jupyterhub-api.md §4).
 *
 *  Creating a token needs the `tokens` scope on its owner -- checked here, in code, as
 *  JupyterHub does -- or, for an anonymous caller, a username and password in the body's
 *  "auth" object, which go to the authenticator (with login throttling) like a login.
 */
#include "gw_api.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* The hash of token `id` of `owner` (caller frees), or NULL. *unavailable on store loss. */
static char *
s_token_hash (gw_t *gw, const char *owner, const char *id, bool *unavailable)
{
    char *ut = orr_key_user_tokens (owner);
    redisReply *r = orr_store_command (gw_store (gw), "HGET %s %s", ut, id);
    free (ut);
    *unavailable = !r;
    char *hash = r && r->type == REDIS_REPLY_STRING ? orr_strdup (r->str) : NULL;
    if (r)
        freeReplyObject (r);
    return hash;
}

enum MHD_Result
gw_api_tokens_list (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:tokens", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), params[0], &rec);
    orr_user_rec_clear (&rec);
    if (found <= 0)
        return found < 0 ? gw_reply_error (req, 503, "User store unavailable; try again")
                         : gw_reply_errorf (req, 404, "No such user: %s", params[0]);
    char *ut = orr_key_user_tokens (params[0]);
    redisReply *all = orr_store_command (gw_store (gw), "HVALS %s", ut);
    free (ut);
    if (!all)
        return gw_reply_error (req, 503, "Token store unavailable; try again");
    json_t *list = json_array ();
    for (size_t i = 0; all->type == REDIS_REPLY_ARRAY && i < all->elements; i++) {
        json_t *m = gw_token_model (gw, all->element[i]->str);
        if (m)
            json_array_append_new (list, m);
    }
    freeReplyObject (all);
    /* JupyterHub lists by id */
    size_t n = json_array_size (list);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const char *a = json_string_value (json_object_get (json_array_get (list, j - 1), "id"));
            const char *b = json_string_value (json_object_get (json_array_get (list, j), "id"));
            long ia = 0, ib = 0;
            orr_parse_long (a ? a + 1 : "0", &ia);
            orr_parse_long (b ? b + 1 : "0", &ib);
            if (ia <= ib)
                break;
            json_t *tmp = json_incref (json_array_get (list, j - 1));
            json_array_set (list, j - 1, json_array_get (list, j));
            json_array_set_new (list, j, tmp);
        }
    return gw_reply_jsonv (req, 200, json_pack ("{s:o}", "api_tokens", list));
}

enum MHD_Result
gw_api_tokens_create (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    if (!body)
        body = json_object ();
    static const char *const keys[] = { "note", "expires_in", "scopes", "roles", "auth", NULL };
    if (!json_is_object (body)) {
        json_decref (body);
        return gw_reply_error (req, 400, "Body must be a JSON object");
    }
    if (!gw_keys_ok (req, body, keys, &rc)) {
        json_decref (body);
        return rc;
    }
    orr_scope_target_t t = { .user = params[0] };
    bool may = caller->authenticated && orr_scopes_allows (caller->id.scopes, "tokens", &t, gw_is_member, gw);
    json_t *auth = json_object_get (body, "auth");
    if (!caller->authenticated && json_is_object (auth)) {
        /* anonymous: the body's credentials decide, like a login */
        const char *u = json_string_value (json_object_get (auth, "username"));
        const char *p = json_string_value (json_object_get (auth, "password"));
        Orrery__Login login = ORRERY__LOGIN__INIT;
        char addr[64];
        gw_client_addr (req, addr, sizeof addr);
        login.username = (char *) (u ? u : "");
        login.password = (char *) (p ? p : "");
        login.client_addr = addr;
        Orrery__LoginResult *res = NULL;
        char msg[256];
        int st = gw_call_auth (gw, "login", &login.base, &orrery__login_result__descriptor, (ProtobufCMessage **) &res,
                               msg, sizeof msg);
        if (st == 200 && res->status == 429) {
            char retry[16];
            snprintf (retry, sizeof retry, "%d", res->retry_after_s);
            const char *hdr[] = { "Retry-After", retry, NULL };
            char *text = orr_sprintf ("{\"status\":429,\"message\":\"%s\"}", res->message);
            rc = gw_reply_with (req, 429, "application/json", text, strlen (text), hdr);
            free (text);
            orrery__login_result__free_unpacked (res, NULL);
            json_decref (body);
            return rc;
        }
        may = st == 200 && res->status == 200 && strcmp (res->username, params[0]) == 0;
        if (res)
            orrery__login_result__free_unpacked (res, NULL);
    }
    json_t *note = json_object_get (body, "note"), *expires = json_object_get (body, "expires_in");
    size_t nscopes = 0, nroles = 0;
    const char **scopes = NULL, **roles = NULL;
    json_t *js = json_object_get (body, "scopes"), *jr = json_object_get (body, "roles");
    if (!may)
        rc = gw_reply_errorf (req, 403, "Not allowed to create tokens for %s", params[0]);
    else if ((note && !json_is_string (note) && !json_is_null (note))
             || (expires && !json_is_integer (expires) && !json_is_null (expires)))
        rc = gw_reply_error (req, 400, "note must be a string and expires_in an integer number of seconds");
    else if (js && jr)
        rc = gw_reply_error (req, 400, "Can only assign one of scopes or roles");
    else if (js && !(scopes = gw_string_list (req, js, "scopes", &nscopes, &rc)))
        ;
    else if (jr && !(roles = gw_string_list (req, jr, "roles", &nroles, &rc)))
        ;
    else {
        Orrery__TokenCreate m = ORRERY__TOKEN_CREATE__INIT;
        m.owner = params[0];
        char *default_note = NULL;
        if (json_is_string (note))
            m.note = (char *) json_string_value (note);
        else if (caller->authenticated && strcmp (caller->id.name, params[0]) != 0)
            m.note = default_note = orr_sprintf ("Requested via api by %s %s", caller->id.kind, caller->id.name);
        else
            m.note = "Requested via api";
        m.expires_in_s = json_is_integer (expires) ? json_integer_value (expires) : 0;
        m.scopes = (char **) scopes;
        m.n_scopes = nscopes;
        m.roles = (char **) roles;
        m.n_roles = nroles;
        Orrery__TokenCreated *made = NULL;
        char msg[256];
        int st = gw_call_auth (gw, "token.create", &m.base, &orrery__token_created__descriptor,
                               (ProtobufCMessage **) &made, msg, sizeof msg);
        free (default_note);
        if (st == 404)
            rc = gw_reply_errorf (req, 403, "Not allowed to create tokens for %s", params[0]);
        else if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else {
            bool unavailable;
            char *hash = s_token_hash (gw, params[0], made->id, &unavailable);
            json_t *model = hash ? gw_token_model (gw, hash) : NULL;
            free (hash);
            if (!model)
                model = json_pack ("{s:s, s:s}", "id", made->id, "user", params[0]);
            json_object_set_new (model, "token", json_string (made->token));
            rc = gw_reply_jsonv (req, 201, model);
            orrery__token_created__free_unpacked (made, NULL);
        }
    }
    free (scopes);
    free (roles);
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_token_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:tokens", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    bool unavailable;
    char *hash = s_token_hash (gw, params[0], params[1], &unavailable);
    json_t *m = hash ? gw_token_model (gw, hash) : NULL;
    free (hash);
    if (unavailable)
        return gw_reply_error (req, 503, "Token store unavailable; try again");
    if (!m)
        return gw_reply_errorf (req, 404, "Token not found %s", params[1]);
    return gw_reply_jsonv (req, 200, m);
}

enum MHD_Result
gw_api_token_delete (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "tokens", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    Orrery__TokenDelete m = ORRERY__TOKEN_DELETE__INIT;
    m.owner = params[0];
    m.id = params[1];
    char msg[256];
    int st = gw_call_auth (gw, "token.delete", &m.base, NULL, NULL, msg, sizeof msg);
    if (st != 200)
        return gw_reply_error (req, (unsigned) st, msg);
    gw_cache_flush (gw->cache);   /* this replica at once; the others on the event (gw_route drops replies) */
    return gw_reply (req, 204, NULL, "", 0);
}
