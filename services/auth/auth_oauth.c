/*  auth_oauth: the OAuth2 authorization-code flow's writes (jupyterhub-api.md §7).
 *
 *  The gateway runs the browser side (who is signed in, may they reach the client, is a
 *  confirmation page needed) and asks here for what changes state: registering clients
 *  (the spawner, for each single-user server), issuing a code (orr:{oa:H}:oauth_code, by
 *  hash, with a TTL) and exchanging it for a token. A code is taken and deleted in one
 *  script, so it can be exchanged once.
 */
#include "auth.h"
#include "orr_crypto.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_oauth.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* KEYS: code -> the code's fields (HGETALL) after deleting it (a repeat of the request
 * gets the same fields again: auth_script_once) */
static const char *LUA_CODE_TAKE =
    "local v = redis.call('HGETALL', KEYS[1])\n"
    "redis.call('DEL', KEYS[1])\n"
    "return v\n";

static orr_script_t *script_take;

static json_t *
s_strings (char **v, size_t n)
{
    json_t *a = json_array ();
    for (size_t i = 0; i < n; i++)
        json_array_append_new (a, json_string (v[i]));
    return a;
}

static void
s_client_set (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__OAuthClient *req;
    AUTH_UNPACK (req, orrery__oauth_client, call, result);
    if (!*req->client_id || !*req->secret || !*req->redirect_uri)
        orr_result_fail (result, 400, "an OAuth client needs an id, a secret and a redirect URI");
    else {
        char hash[ORR_SHA256_HEX_LEN + 1];
        orr_sha256_hex (req->secret, strlen (req->secret), hash);
        json_t *access = s_strings (req->access_scopes, req->n_access_scopes);
        json_t *allowed = s_strings (req->allowed_scopes, req->n_allowed_scopes);
        char *a = json_dumps (access, JSON_COMPACT), *b = json_dumps (allowed, JSON_COMPACT);
        char *key = orr_key_oauth_client (req->client_id);
        orr_store_t *store = auth_store (self);
        orr_store_append (store, "DEL %s", key);
        orr_store_append (store, "HSET %s secret_hash %s redirect_uri %s description %s owner %s access_scopes %s "
                                 "allowed_scopes %s",
                          key, hash, req->redirect_uri, req->description, req->owner, a, b);
        if (orr_store_flush_replies (store, NULL, 2) != 0)
            orr_result_fail (result, 503, "client store unavailable");
        free (key);
        free (a);
        free (b);
        json_decref (access);
        json_decref (allowed);
    }
    orrery__oauth_client__free_unpacked (req, NULL);
}

static void
s_client_delete (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__OAuthClientDelete *req;
    AUTH_UNPACK (req, orrery__oauth_client_delete, call, result);
    char *key = orr_key_oauth_client (req->client_id);
    redisReply *r = orr_store_command (auth_store (self), "DEL %s", key);
    if (!r)
        orr_result_fail (result, 503, "client store unavailable");
    else
        freeReplyObject (r);
    free (key);
    orrery__oauth_client_delete__free_unpacked (req, NULL);
}

static void
s_authorize (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__OAuthAuthorize *req;
    AUTH_UNPACK (req, orrery__oauth_authorize, call, result);
    char code[33], hash[ORR_SHA256_HEX_LEN + 1];
    orr_random_hex (code, 16);
    orr_sha256_hex (code, strlen (code), hash);
    json_t *scopes = s_strings (req->scopes, req->n_scopes);
    char *scopes_text = json_dumps (scopes, JSON_COMPACT);
    char *key = orr_key_oauth_code (hash), *consent = orr_key_user_oauth (req->user);
    orr_store_t *store = auth_store (self);
    orr_store_append (store, "HSET %s client_id %s user %s redirect_uri %s scopes %s session_id %s", key,
                      req->client_id, req->user, req->redirect_uri, scopes_text, req->session_id);
    orr_store_append (store, "EXPIRE %s %ld", key, self->oauth_code_ttl_s);
    /* what the user agreed to for this client: later requests for no more skip the page */
    orr_store_append (store, "HSET %s %s %s", consent, req->client_id, scopes_text);
    if (orr_store_flush_replies (store, NULL, 3) != 0)
        orr_result_fail (result, 503, "code store unavailable");
    else {
        Orrery__OAuthCode out = ORRERY__OAUTH_CODE__INIT;
        out.code = code;
        auth_reply (result, &out.base);
    }
    free (key);
    free (consent);
    free (scopes_text);
    json_decref (scopes);
    orrery__oauth_authorize__free_unpacked (req, NULL);
}


static void
s_token (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__OAuthExchange *req;
    AUTH_UNPACK (req, orrery__oauth_exchange, call, result);
    orr_store_t *store = auth_store (self);
    orr_oauth_client_t client;
    int found = orr_oauth_client_load (store, self->services, req->client_id, &client);
    char secret_hash[ORR_SHA256_HEX_LEN + 1];
    orr_sha256_hex (req->client_secret, strlen (req->client_secret), secret_hash);
    redisReply *code = NULL;
    if (found < 0)
        orr_result_fail (result, 503, "temporarily_unavailable");
    else if (found == 0 || !orr_secret_equal (client.secret_hash, secret_hash))
        orr_result_fail (result, 401, "invalid_client");
    else {
        char hash[ORR_SHA256_HEX_LEN + 1];
        orr_sha256_hex (req->code, strlen (req->code), hash);
        char *key = orr_key_oauth_code (hash), *done = auth_done_key (call, "oauth.code_take");
        const char *argv[] = { key, done };
        code = orr_store_eval (store, script_take, 2, 2, argv, NULL);
        free (key);
        free (done);
        if (!code)
            orr_result_fail (result, 503, "temporarily_unavailable");
        else if (code->type != REDIS_REPLY_ARRAY || code->elements == 0)
            orr_result_fail (result, 400, "invalid_grant");
        else if (strcmp (orr_reply_field (code, "client_id", ""), req->client_id) != 0
                 || strcmp (orr_reply_field (code, "redirect_uri", ""), req->redirect_uri) != 0)
            orr_result_fail (result, 400, "invalid_grant");
    }
    if (result->status == 200) {
        char id[32];
        char *token = auth_tokens_issue (self, call, orr_reply_field (code, "user", ""), orr_reply_field (code, "scopes", ""), "OAuth token",
                                         self->oauth_token_expires_in_s, req->client_id, orr_reply_field (code, "session_id", ""),
                                         id, sizeof id);
        if (!token)
            orr_result_fail (result, 400, "invalid_grant");
        else {
            json_t *scopes = json_loads (orr_reply_field (code, "scopes", ""), 0, NULL);
            Orrery__OAuthAccess out = ORRERY__OAUTH_ACCESS__INIT;
            out.access_token = token;
            out.expires_in = self->oauth_token_expires_in_s;
            out.n_scopes = json_array_size (scopes);
            out.scopes = orr_zalloc ((out.n_scopes + 1) * sizeof (char *));
            for (size_t i = 0; i < out.n_scopes; i++)
                out.scopes[i] = (char *) json_string_value (json_array_get (scopes, i));
            auth_reply (result, &out.base);
            free (out.scopes);
            json_decref (scopes);
            free (token);
        }
    }
    if (code)
        freeReplyObject (code);
    if (found > 0)
        orr_oauth_client_clear (&client);
    orrery__oauth_exchange__free_unpacked (req, NULL);
}

void
auth_oauth_register (auth_t *self)
{
    script_take = auth_script_once ("oauth.code_take", LUA_CODE_TAKE);
    auth_method (self, "oauth.client.set", s_client_set);
    auth_method (self, "oauth.client.delete", s_client_delete);
    auth_method (self, "oauth.authorize", s_authorize);
    auth_method (self, "oauth.token", s_token);
}
