/*  auth_tokens: issuing, revoking and touching API tokens.
 *
 *  A token is 32 random hex chars shown once; Redis keeps only its SHA-256
 *  (orr:{t:H}:token) and the owner's id -> hash map (orr:{u:U}:tokens), both written by
 *  one script that also refuses an owner who vanished meanwhile. Token scopes are stored as
 *  requested (JupyterHub 3.0 keeps scopes, not roles, on tokens) and narrowed to the
 *  owner's current scopes on every use (lib/orr_identity.c), so they are checked here only
 *  against what the owner holds today.
 *
 *  last_activity arrives in batches from the gateways (tokens.touch) instead of one write
 *  per request; the script only moves times forward and never recreates a deleted token.
 */
#include "auth.h"
#include "orr_crypto.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* KEYS: token, user tokens, token seq, user, done.  ARGV: hash, owner, scopes, created,
 * expires_at, note, session_id, oauth_client  -> the new id, or 'nouser'.
 * At most one token per request: the token text is shown once and never stored, so a
 * repeat (the first reply was lost with its replica) cannot answer with the first token;
 * it revokes that token and issues this one. The stored key name of a token is rebuilt
 * here from its hash: hex needs no escaping (lib/orr_keys.c). */
static const char *LUA_TOKEN_ISSUE =
    "if redis.call('EXISTS', KEYS[4]) == 0 then return 'nouser' end\n"
    "local prev = redis.call('GET', KEYS[5])\n"
    "if prev then\n"
    "  local old = redis.call('HGET', KEYS[2], prev)\n"
    "  if old then redis.call('DEL', 'orr:{t:' .. old .. '}:token') end\n"
    "  redis.call('HDEL', KEYS[2], prev)\n"
    "end\n"
    "local id = 'a' .. redis.call('INCR', KEYS[3])\n"
    "redis.call('HSET', KEYS[1], 'id', id, 'kind', 'user', 'owner', ARGV[2], 'scopes', ARGV[3],\n"
    "  'created', ARGV[4], 'expires_at', ARGV[5], 'note', ARGV[6], 'session_id', ARGV[7], 'oauth_client', ARGV[8])\n"
    "if tonumber(ARGV[5]) > 0 then\n"
    "  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(ARGV[5]) / 1000) + 60000)\n"
    "end\n"
    "redis.call('HSET', KEYS[2], id, ARGV[1])\n"
    "redis.call('SET', KEYS[5], id, 'EX', 300)\n"
    "return id\n";

/* KEYS: token1, user1, token2, user2, ...  ARGV: at1, at2, ... */
static const char *LUA_TOKENS_TOUCH =
    "for i = 1, #ARGV do\n"
    "  local tk, uk, at = KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[i])\n"
    "  if redis.call('EXISTS', tk) == 1 then\n"
    "    if (tonumber(redis.call('HGET', tk, 'last_activity')) or 0) < at then\n"
    "      redis.call('HSET', tk, 'last_activity', ARGV[i])\n"
    "    end\n"
    "    if redis.call('EXISTS', uk) == 1 and (tonumber(redis.call('HGET', uk, 'last_activity')) or 0) < at then\n"
    "      redis.call('HSET', uk, 'last_activity', ARGV[i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return #ARGV\n";

static orr_script_t *script_issue, *script_touch;

char *
auth_tokens_issue (auth_t *self, const orr_call_t *call, const char *owner, const char *scopes_json, const char *note,
                   int64_t expires_in_s, const char *oauth_client, const char *session_id, char *id_out, size_t id_len)
{
    char token[ORR_TOKEN_HEX_LEN + 1], hash[ORR_SHA256_HEX_LEN + 1];
    orr_token_new (token);
    orr_sha256_hex (token, strlen (token), hash);
    int64_t now = orr_now_us ();
    orr_args_t a = { 0 };
    orr_args_push (&a, orr_key_token (hash));
    orr_args_push (&a, orr_key_user_tokens (owner));
    orr_args_push (&a, orr_key_index (ORR_INDEX_TOKEN_SEQ));
    orr_args_push (&a, orr_key_user (owner));
    orr_args_push (&a, auth_done_key (call, "token.issue"));
    orr_args_push (&a, orr_strdup (hash));
    orr_args_push (&a, orr_strdup (owner));
    orr_args_push (&a, orr_strdup (scopes_json));
    orr_args_push (&a, orr_sprintf ("%lld", (long long) now));
    orr_args_push (&a, orr_sprintf ("%lld", (long long) (expires_in_s > 0 ? now + expires_in_s * 1000000 : 0)));
    orr_args_push (&a, orr_strdup (note ? note : ""));
    orr_args_push (&a, orr_strdup (session_id ? session_id : ""));
    orr_args_push (&a, orr_strdup (oauth_client ? oauth_client : ""));
    redisReply *r = orr_store_eval_args (auth_store (self), script_issue, 5, &a);
    orr_args_clear (&a);
    char *out = NULL;
    if (r && r->type == REDIS_REPLY_STRING && r->str[0] == 'a') {
        snprintf (id_out, id_len, "%s", r->str);
        out = orr_strdup (token);
        auth_publish (self, "token.created", "token", r->str, "created", owner);
    }
    else if (r && r->type == REDIS_REPLY_ERROR)
        orr_error ("token.issue script: %s", r->str);
    if (r)
        freeReplyObject (r);
    return out;
}

/* Deletes token `id` of `owner` (hash known); publishes token.revoked. */
static void
s_delete_one (auth_t *self, const char *owner, const char *id, const char *hash)
{
    orr_store_t *store = auth_store (self);
    char *tk = orr_key_token (hash), *ut = orr_key_user_tokens (owner);
    orr_store_append (store, "DEL %s", tk);
    orr_store_append (store, "HDEL %s %s", ut, id);
    orr_store_flush_replies (store, NULL, 2);
    free (tk);
    free (ut);
    /* gateways drop their cached validations when they see this */
    auth_publish (self, "token.revoked", "token", id, "revoked", owner);
}

int
auth_tokens_revoke_where (auth_t *self, const char *owner, const char *field, const char *value)
{
    orr_store_t *store = auth_store (self);
    char *ut = orr_key_user_tokens (owner);
    redisReply *all = orr_store_command (store, "HGETALL %s", ut);
    free (ut);
    if (!all || all->type != REDIS_REPLY_ARRAY) {
        if (all)
            freeReplyObject (all);
        return -1;
    }
    int revoked = 0;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        const char *id = all->element[i]->str, *hash = all->element[i + 1]->str;
        char *tk = orr_key_token (hash);
        redisReply *v = orr_store_command (store, "HGET %s %s", tk, field);
        free (tk);
        if (v && v->type == REDIS_REPLY_STRING && strcmp (v->str, value) == 0) {
            s_delete_one (self, owner, id, hash);
            revoked++;
        }
        if (v)
            freeReplyObject (v);
    }
    freeReplyObject (all);
    return revoked;
}

static bool
s_scope_word_ok (const char *s)
{
    return strcmp (s, "inherit") == 0 || strcmp (s, "self") == 0 || strcmp (s, "(no_scope)") == 0
           || orr_scope_is_valid (s);
}

static void
s_token_create (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__TokenCreate *req;
    AUTH_UNPACK (req, orrery__token_create, call, result);
    orr_store_t *store = auth_store (self);
    char err[256];
    orr_user_rec_t owner = { 0 };
    json_t *scopes = json_array ();
    orr_scopes_t *owner_scopes = NULL, *wanted = NULL, *within = NULL;
    if (req->create_user && !auth_username_ok (req->owner, err, sizeof err))
        orr_result_fail (result, 400, "%s", err);
    else if (req->create_user && auth_users_ensure (self, req->owner, req->admin) != 0)
        orr_result_fail (result, 503, "user store unavailable");
    int found = result->status == 200 ? orr_user_load (store, req->owner, &owner) : 0;
    if (result->status != 200)
        ;
    else if (found < 0)
        orr_result_fail (result, 503, "user store unavailable");
    else if (found == 0)
        orr_result_fail (result, 404, "No such user: %s", req->owner);
    else if (req->n_roles && req->n_scopes)
        orr_result_fail (result, 400, "Can only assign one of scopes or roles");
    else if (req->expires_in_s < 0)
        orr_result_fail (result, 400, "expires_in must be a positive number of seconds");
    if (result->status == 200) {
        owner_scopes = orr_user_scopes (self->roles, &owner);
        wanted = orr_scopes_new ();
        for (size_t i = 0; i < req->n_roles && result->status == 200; i++) {
            if (orr_roles_expand (self->roles, req->roles[i], "user", req->owner, owner_scopes, wanted, err,
                                  sizeof err)
                != 0)
                orr_result_fail (result, 400, "%s", err);
        }
        for (size_t i = 0; i < req->n_scopes && result->status == 200; i++) {
            if (!s_scope_word_ok (req->scopes[i]))
                orr_result_fail (result, 400, "Undefined scope: %s", req->scopes[i]);
            else if (strcmp (req->scopes[i], "inherit") == 0)
                for (size_t k = 0; k < orr_scopes_size (owner_scopes); k++)
                    orr_scopes_add (wanted, orr_scopes_at (owner_scopes, k));
            else if (strcmp (req->scopes[i], "(no_scope)") != 0
                     && orr_scopes_expand_into (wanted, req->scopes[i], "user", req->owner, err, sizeof err) != 0)
                orr_result_fail (result, 400, "%s", err);
            json_array_append_new (scopes, json_string (req->scopes[i]));
        }
        if (req->n_roles) {
            json_t *expanded = orr_scopes_to_json (wanted);
            json_array_extend (scopes, expanded);
            json_decref (expanded);
        }
        if (!req->n_roles && !req->n_scopes)
            json_array_append_new (scopes, json_string ("inherit"));
    }
    if (result->status == 200) {
        /* every requested scope must be held by the owner now */
        within = orr_scopes_intersect (wanted, owner_scopes, orr_identity_is_member, store);
        for (size_t i = 0; i < orr_scopes_size (wanted) && result->status == 200; i++)
            if (!orr_scopes_contains (within, orr_scopes_at (wanted, i)))
                orr_result_fail (result, 400, "Not assigning requested scopes %s not held by %s",
                                 orr_scopes_at (wanted, i), req->owner);
    }
    if (result->status == 200) {
        char *scopes_text = json_dumps (scopes, JSON_COMPACT);
        char id[32];
        char *token = auth_tokens_issue (self, call, req->owner, scopes_text, req->note,
                                         req->expires_in_s, req->oauth_client, req->session_id, id, sizeof id);
        free (scopes_text);
        if (!token)
            orr_result_fail (result, 503, "token store unavailable");
        else {
            Orrery__TokenCreated out = ORRERY__TOKEN_CREATED__INIT;
            out.id = id;
            out.token = token;
            auth_reply (result, &out.base);
            free (token);
        }
    }
    json_decref (scopes);
    orr_scopes_destroy (&owner_scopes);
    orr_scopes_destroy (&wanted);
    orr_scopes_destroy (&within);
    orr_user_rec_clear (&owner);
    orrery__token_create__free_unpacked (req, NULL);
}

static void
s_token_delete (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__TokenDelete *req;
    AUTH_UNPACK (req, orrery__token_delete, call, result);
    orr_store_t *store = auth_store (self);
    char *ut = orr_key_user_tokens (req->owner);
    redisReply *h = orr_store_command (store, "HGET %s %s", ut, req->id);
    free (ut);
    if (!h)
        orr_result_fail (result, 503, "token store unavailable");
    else if (h->type != REDIS_REPLY_STRING)
        orr_result_fail (result, 404, "No such token: %s", req->id);
    else {
        char *tk = orr_key_token (h->str);
        redisReply *client = orr_store_command (store, "HGET %s oauth_client", tk);
        free (tk);
        s_delete_one (self, req->owner, req->id, h->str);
        /* §4: deleting an OAuth token revokes every token the user holds for that client */
        if (client && client->type == REDIS_REPLY_STRING && *client->str)
            auth_tokens_revoke_where (self, req->owner, "oauth_client", client->str);
        if (client)
            freeReplyObject (client);
    }
    if (h)
        freeReplyObject (h);
    orrery__token_delete__free_unpacked (req, NULL);
}

static void
s_tokens_touch (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__TokenTouch *req;
    AUTH_UNPACK (req, orrery__token_touch, call, result);
    orr_args_t a = { 0 };
    for (size_t i = 0; i < req->n_items; i++) {
        orr_args_push (&a, orr_key_token (req->items[i]->token_hash));
        orr_args_push (&a, orr_key_user (req->items[i]->owner));
    }
    size_t nkeys = a.n;
    for (size_t i = 0; i < req->n_items; i++)
        orr_args_push (&a, orr_sprintf ("%lld", (long long) req->items[i]->at_us));
    if (req->n_items) {
        redisReply *r = orr_store_eval_args (auth_store (self), script_touch, nkeys, &a);
        if (!r || r->type == REDIS_REPLY_ERROR)
            orr_result_fail (result, 503, "token store unavailable");
        if (r)
            freeReplyObject (r);
    }
    orr_args_clear (&a);
    orrery__token_touch__free_unpacked (req, NULL);
}

void
auth_tokens_register (auth_t *self)
{
    script_issue = orr_script_new ("token.issue", LUA_TOKEN_ISSUE);
    script_touch = orr_script_new ("tokens.touch", LUA_TOKENS_TOUCH);
    auth_method (self, "token.create", s_token_create);
    auth_method (self, "token.delete", s_token_delete);
    auth_method (self, "tokens.touch", s_tokens_touch);
}
