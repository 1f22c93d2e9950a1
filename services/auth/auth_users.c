/*  auth_users: creating, changing and deleting users and groups.
 *
 *  Each change is one Lua script, so other replicas and the gateway never see half of
 *  it. Scripts get every key they touch in KEYS (built by lib/orr_keys.c, the one place
 *  that knows key names). When the set of keys depends on data (the groups of a user being
 *  deleted), the C side reads that data first and passes its size; the script re-checks
 *  the size and answers "retry" if it changed meanwhile, and the C side starts over.
 */
#include "auth.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define RETRIES 5

/* KEYS: idx, seq, user keys...  ARGV: admin, now, names...  -> names created */
static const char *LUA_USERS_CREATE =
    "local created = {}\n"
    "for i = 3, #KEYS do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 0 then\n"
    "    local id = redis.call('INCR', KEYS[2])\n"
    "    redis.call('HSET', KEYS[i], 'name', ARGV[i], 'id', id, 'admin', ARGV[1], 'created', ARGV[2])\n"
    "    redis.call('ZADD', KEYS[1], id, ARGV[i])\n"
    "    created[#created + 1] = ARGV[i]\n"
    "  elseif ARGV[1] == '1' and ARGV[#KEYS + 1] == 'promote' then\n"
    "    redis.call('HSET', KEYS[i], 'admin', '1')\n"
    "  end\n"
    "end\n"
    "return created\n";

/* KEYS: user, groups, tokens, sessions, oauth, servers, idx, then G member keys, T token
 * keys, S session keys.  ARGV: name, G, T, S */
static const char *LUA_USER_DELETE =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
    "local g, t, s = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "if redis.call('SCARD', KEYS[2]) ~= g or redis.call('HLEN', KEYS[3]) ~= t\n"
    "   or redis.call('SCARD', KEYS[4]) ~= s then return 'retry' end\n"
    "for i = 8, 7 + g do redis.call('SREM', KEYS[i], ARGV[1]) end\n"
    "for i = 8 + g, 7 + g + t + s do redis.call('DEL', KEYS[i]) end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])\n"
    "redis.call('ZREM', KEYS[7], ARGV[1])\n"
    "return 'ok'\n";

/* KEYS: old user, new user, old groups, new groups, old tokens, new tokens, old sessions,
 * new sessions, old oauth, new oauth, old servers, idx, then G member keys, T token keys,
 * S session keys.  ARGV: old, new, G, T, S */
static const char *LUA_USER_RENAME =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 'taken' end\n"
    "if redis.call('SCARD', KEYS[11]) > 0 then return 'servers' end\n"
    "local g, t, s = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "if redis.call('SCARD', KEYS[3]) ~= g or redis.call('HLEN', KEYS[5]) ~= t\n"
    "   or redis.call('SCARD', KEYS[7]) ~= s then return 'retry' end\n"
    "for i = 13, 12 + g do redis.call('SREM', KEYS[i], ARGV[1]); redis.call('SADD', KEYS[i], ARGV[2]) end\n"
    "for i = 13 + g, 12 + g + t do redis.call('HSET', KEYS[i], 'owner', ARGV[2]) end\n"
    "for i = 13 + g + t, 12 + g + t + s do redis.call('HSET', KEYS[i], 'user', ARGV[2]) end\n"
    "for i = 1, 9, 2 do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 1]) end\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'name', ARGV[2])\n"
    "local id = redis.call('ZSCORE', KEYS[12], ARGV[1])\n"
    "redis.call('ZREM', KEYS[12], ARGV[1])\n"
    "redis.call('ZADD', KEYS[12], id, ARGV[2])\n"
    "return 'ok'\n";

/* KEYS: idx, seq, then per group (group key, members key), then per user (user key,
 * user groups key).  ARGV: now, ngroups, nusers, group names..., user names...
 * -> names created, or 'nouser:<name>' */
static const char *LUA_GROUPS_CREATE =
    "local ng, nu = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "for j = 1, nu do\n"
    "  if redis.call('EXISTS', KEYS[2 + 2 * ng + 2 * j - 1]) == 0 then return 'nouser:' .. ARGV[3 + ng + j] end\n"
    "end\n"
    "local created = {}\n"
    "for i = 1, ng do\n"
    "  local gk, mk, name = KEYS[1 + 2 * i], KEYS[2 + 2 * i], ARGV[3 + i]\n"
    "  if redis.call('EXISTS', gk) == 0 then\n"
    "    local id = redis.call('INCR', KEYS[2])\n"
    "    redis.call('HSET', gk, 'name', name, 'id', id, 'created', ARGV[1])\n"
    "    redis.call('ZADD', KEYS[1], id, name)\n"
    "    for j = 1, nu do\n"
    "      redis.call('SADD', mk, ARGV[3 + ng + j])\n"
    "      redis.call('SADD', KEYS[2 + 2 * ng + 2 * j], name)\n"
    "    end\n"
    "    created[#created + 1] = name\n"
    "  end\n"
    "end\n"
    "return created\n";

/* KEYS: group, members, then per user (user key, user groups key).
 * ARGV: 'add'|'remove', group name, user names... */
static const char *LUA_GROUP_MEMBERS =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
    "for j = 3, #ARGV do\n"
    "  if ARGV[1] == 'add' and redis.call('EXISTS', KEYS[2 * j - 3]) == 0 then return 'nouser:' .. ARGV[j] end\n"
    "end\n"
    "for j = 3, #ARGV do\n"
    "  if ARGV[1] == 'add' then\n"
    "    redis.call('SADD', KEYS[2], ARGV[j]); redis.call('SADD', KEYS[2 * j - 2], ARGV[2])\n"
    "  else\n"
    "    redis.call('SREM', KEYS[2], ARGV[j]); redis.call('SREM', KEYS[2 * j - 2], ARGV[2])\n"
    "  end\n"
    "end\n"
    "return 'ok'\n";

/* KEYS: group, members, idx, then M user groups keys.  ARGV: name, M */
static const char *LUA_GROUP_DELETE =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end\n"
    "if redis.call('SCARD', KEYS[2]) ~= tonumber(ARGV[2]) then return 'retry' end\n"
    "for i = 4, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end\n"
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "return 'ok'\n";

static orr_script_t *script_users_create, *script_user_delete, *script_user_rename, *script_groups_create,
    *script_group_members, *script_group_delete;

static redisReply *
s_eval (auth_t *self, orr_script_t *script, size_t nkeys, orr_args_t *a)
{
    return orr_store_eval_args (auth_store (self), script, nkeys, a);
}

/* Runs the users.create script; returns its reply (caller frees) or NULL. */
static redisReply *
s_create_users (auth_t *self, const orr_call_t *call, char **names, size_t n, bool admin, bool promote)
{
    orr_args_t a = { 0 };
    orr_args_push (&a, orr_key_index (ORR_INDEX_USERS));
    orr_args_push (&a, orr_key_index (ORR_INDEX_USER_SEQ));
    for (size_t i = 0; i < n; i++)
        orr_args_push (&a, orr_key_user (names[i]));
    orr_args_push (&a, auth_done_key (call, "users.create"));
    orr_args_push (&a, orr_strdup (admin ? "1" : "0"));
    orr_args_push (&a, orr_sprintf ("%lld", (long long) orr_now_us ()));
    for (size_t i = 0; i < n; i++)
        orr_args_push (&a, orr_strdup (names[i]));
    orr_args_push (&a, orr_strdup (promote ? "promote" : "-"));
    redisReply *r = s_eval (self, script_users_create, n + 3, &a);
    orr_args_clear (&a);
    return r;
}

int
auth_users_ensure (auth_t *self, const char *name, bool admin)
{
    char *names[] = { (char *) name };
    redisReply *r = s_create_users (self, NULL, names, 1, admin, true);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    if (r->elements == 1)
        auth_publish (self, "user.created", "user", name, "created", NULL);
    freeReplyObject (r);
    return 0;
}

/* Answers a create script's reply (the names it created) as a NameList, publishing
 * <kind>.created for each; 409 when it created none, 503 when Redis failed. */
static void
s_reply_created (auth_t *self, orr_result_t *result, const redisReply *r, const char *kind, size_t requested)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        orr_result_fail (result, 503, "%s store unavailable", kind);
        return;
    }
    if (r->elements == 0) {
        orr_result_fail (result, 409, "All %zu %ss already exist", requested, kind);
        return;
    }
    char topic[32];
    snprintf (topic, sizeof topic, "%s.created", kind);
    Orrery__NameList out = ORRERY__NAME_LIST__INIT;
    out.n_names = r->elements;
    out.names = orr_zalloc (r->elements * sizeof (char *));
    for (size_t i = 0; i < r->elements; i++) {
        out.names[i] = r->element[i]->str;
        auth_publish (self, topic, kind, r->element[i]->str, "created", NULL);
    }
    auth_reply (result, &out.base);
    free (out.names);
}

static void
s_users_create (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__UsersCreate *req;
    AUTH_UNPACK (req, orrery__users_create, call, result);
    char err[256];
    if (req->n_names == 0)
        orr_result_fail (result, 400, "Must specify at least one user to create");
    for (size_t i = 0; i < req->n_names && result->status == 200; i++)
        if (!auth_username_ok (req->names[i], err, sizeof err))
            orr_result_fail (result, 400, "%s", err);
    if (result->status == 200) {
        redisReply *r = s_create_users (self, call, req->names, req->n_names, req->admin, false);
        s_reply_created (self, result, r, "user", req->n_names);
        if (r)
            freeReplyObject (r);
    }
    orrery__users_create__free_unpacked (req, NULL);
}

/* Reads the members of a set or the values of a hash (HVALS) at `key`. */
static redisReply *
s_read (auth_t *self, const char *cmd, const char *key)
{
    return orr_store_command (auth_store (self), "%s %s", cmd, key);
}

static void
s_push_each (orr_args_t *a, const redisReply *r, char *(*build) (const char *))
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        orr_args_push (a, build (r->element[i]->str));
}

static size_t
s_count (const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
}

/* Deletes or renames a user: 'ok', 'missing', 'taken', 'servers', or NULL on store loss. */
static char *
s_user_move (auth_t *self, const orr_call_t *call, const char *name, const char *new_name)
{
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        char *gk = orr_key_user_groups (name), *tk = orr_key_user_tokens (name), *sk = orr_key_user_sessions (name);
        redisReply *groups = s_read (self, "SMEMBERS", gk);
        redisReply *tokens = s_read (self, "HVALS", tk);
        redisReply *sessions = s_read (self, "SMEMBERS", sk);
        free (gk);
        free (tk);
        free (sk);
        char *outcome = NULL;
        if (groups && tokens && sessions) {
            orr_args_t a = { 0 };
            char *(*pair[]) (const char *) = { orr_key_user, orr_key_user_groups, orr_key_user_tokens,
                                                orr_key_user_sessions, orr_key_user_oauth };
            for (size_t i = 0; i < 5; i++) {
                orr_args_push (&a, pair[i] (name));
                if (new_name)
                    orr_args_push (&a, pair[i] (new_name));
            }
            orr_args_push (&a, orr_key_user_servers (name));
            orr_args_push (&a, orr_key_index (ORR_INDEX_USERS));
            s_push_each (&a, groups, orr_key_group_members);
            s_push_each (&a, tokens, orr_key_token);
            s_push_each (&a, sessions, orr_key_session);
            orr_args_push (&a, auth_done_key (call, new_name ? "user.rename" : "user.delete"));
            size_t nkeys = a.n;
            orr_args_push (&a, orr_strdup (name));
            if (new_name)
                orr_args_push (&a, orr_strdup (new_name));
            orr_args_push (&a, orr_sprintf ("%zu", s_count (groups)));
            orr_args_push (&a, orr_sprintf ("%zu", s_count (tokens)));
            orr_args_push (&a, orr_sprintf ("%zu", s_count (sessions)));
            redisReply *r = s_eval (self, new_name ? script_user_rename : script_user_delete, nkeys, &a);
            orr_args_clear (&a);
            if (r && r->type == REDIS_REPLY_STRING && strcmp (r->str, "retry") != 0)
                outcome = orr_strdup (r->str);
            else if (!r || r->type != REDIS_REPLY_STRING) {
                if (r && r->type == REDIS_REPLY_ERROR)
                    orr_error ("user script: %s", r->str);
                attempt = RETRIES;
            }
            if (r)
                freeReplyObject (r);
        }
        else
            attempt = RETRIES;
        if (groups)
            freeReplyObject (groups);
        if (tokens)
            freeReplyObject (tokens);
        if (sessions)
            freeReplyObject (sessions);
        if (outcome)
            return outcome;
    }
    return NULL;
}

static void
s_user_update (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__UserUpdate *req;
    AUTH_UNPACK (req, orrery__user_update, call, result);
    orr_store_t *store = auth_store (self);
    char *uk = orr_key_user (req->name);
    char err[256];
    redisReply *exists = orr_store_command (store, "EXISTS %s", uk);
    if (!exists)
        orr_result_fail (result, 503, "user store unavailable");
    else if (exists->integer == 0)
        orr_result_fail (result, 404, "No such user: %s", req->name);
    else if (req->has_password && self->kind != AUTH_BUILTIN)
        orr_result_fail (result, 400, "Passwords are kept by the %s authenticator, not by Orrery",
                         self->kind == AUTH_LDAP ? "LDAP" : "demo");
    else if (req->has_password && (long) strlen (req->password) < self->password_min_length)
        orr_result_fail (result, 400, "Password must be at least %ld characters", self->password_min_length);
    else if (req->has_new_name && !auth_username_ok (req->new_name, err, sizeof err))
        orr_result_fail (result, 400, "%s", err);
    if (exists)
        freeReplyObject (exists);
    const char *name = req->name;
    if (result->status == 200 && req->has_new_name && strcmp (req->new_name, req->name) != 0) {
        char *outcome = s_user_move (self, call, req->name, req->new_name);
        if (!outcome)
            orr_result_fail (result, 503, "user store unavailable");
        else if (strcmp (outcome, "taken") == 0)
            orr_result_fail (result, 400, "User %s already exists, username must be unique", req->new_name);
        else if (strcmp (outcome, "missing") == 0)
            orr_result_fail (result, 404, "No such user: %s", req->name);
        else if (strcmp (outcome, "servers") == 0)
            orr_result_fail (result, 400, "Stop %s's servers before renaming", req->name);
        else
            name = req->new_name;
        free (outcome);
    }
    if (result->status == 200) {
        free (uk);
        uk = orr_key_user (name);
        char *pw = req->has_password ? auth_password_hash (req->password) : NULL;
        if (req->has_password && !pw)
            orr_result_fail (result, 500, "could not hash the password");
        if (req->has_admin)
            orr_store_append (store, "HSET %s admin %s", uk, req->admin ? "1" : "0");
        if (req->has_auth_state_json && strcmp (req->auth_state_json, "null") == 0)
            orr_store_append (store, "HDEL %s auth_state", uk);
        else if (req->has_auth_state_json)
            orr_store_append (store, "HSET %s auth_state %s", uk, req->auth_state_json);
        if (pw)
            orr_store_append (store, "HSET %s password %s", uk, pw);
        size_t n = orr_store_pending (store);
        if (n && orr_store_flush_replies (store, NULL, n) != 0)
            orr_result_fail (result, 503, "user store unavailable");
        free (pw);
        if (result->status == 200) {
            if (strcmp (name, req->name) != 0)
                auth_publish (self, "user.renamed", "user", name, "renamed", req->name);
            auth_publish (self, "user.updated", "user", name, "updated", NULL);
        }
    }
    free (uk);
    orrery__user_update__free_unpacked (req, NULL);
}

static void
s_user_delete (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__UserDelete *req;
    AUTH_UNPACK (req, orrery__user_delete, call, result);
    char *outcome = s_user_move (self, call, req->name, NULL);
    if (!outcome)
        orr_result_fail (result, 503, "user store unavailable");
    else if (strcmp (outcome, "missing") == 0)
        orr_result_fail (result, 404, "No such user: %s", req->name);
    else
        auth_publish (self, "user.deleted", "user", req->name, "deleted", NULL);
    free (outcome);
    orrery__user_delete__free_unpacked (req, NULL);
}

static bool
s_group_name_ok (const char *name)
{
    size_t n = strlen (name);
    if (n == 0 || n > 255)
        return false;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/')
            return false;
    return true;
}

static void
s_groups_create (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__GroupsCreate *req;
    AUTH_UNPACK (req, orrery__groups_create, call, result);
    if (req->n_names == 0)
        orr_result_fail (result, 400, "Must specify at least one group to create");
    for (size_t i = 0; i < req->n_names && result->status == 200; i++)
        if (!s_group_name_ok (req->names[i]))
            orr_result_fail (result, 400, "Invalid group name: %s", req->names[i]);
    if (result->status == 200) {
        orr_args_t a = { 0 };
        orr_args_push (&a, orr_key_index (ORR_INDEX_GROUPS));
        orr_args_push (&a, orr_key_index (ORR_INDEX_GROUP_SEQ));
        for (size_t i = 0; i < req->n_names; i++) {
            orr_args_push (&a, orr_key_group (req->names[i]));
            orr_args_push (&a, orr_key_group_members (req->names[i]));
        }
        for (size_t j = 0; j < req->n_users; j++) {
            orr_args_push (&a, orr_key_user (req->users[j]));
            orr_args_push (&a, orr_key_user_groups (req->users[j]));
        }
        orr_args_push (&a, auth_done_key (call, "groups.create"));
        size_t nkeys = a.n;
        orr_args_push (&a, orr_sprintf ("%lld", (long long) orr_now_us ()));
        orr_args_push (&a, orr_sprintf ("%zu", req->n_names));
        orr_args_push (&a, orr_sprintf ("%zu", req->n_users));
        for (size_t i = 0; i < req->n_names; i++)
            orr_args_push (&a, orr_strdup (req->names[i]));
        for (size_t j = 0; j < req->n_users; j++)
            orr_args_push (&a, orr_strdup (req->users[j]));
        redisReply *r = s_eval (self, script_groups_create, nkeys, &a);
        orr_args_clear (&a);
        if (r && r->type == REDIS_REPLY_STRING && strncmp (r->str, "nouser:", 7) == 0)
            orr_result_fail (result, 400, "No such user: %s", r->str + 7);
        else
            s_reply_created (self, result, r, "group", req->n_names);
        if (r)
            freeReplyObject (r);
    }
    orrery__groups_create__free_unpacked (req, NULL);
}

static void
s_group_members (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__GroupMembers *req;
    AUTH_UNPACK (req, orrery__group_members, call, result);
    orr_args_t a = { 0 };
    orr_args_push (&a, orr_key_group (req->group));
    orr_args_push (&a, orr_key_group_members (req->group));
    for (size_t j = 0; j < req->n_users; j++) {
        orr_args_push (&a, orr_key_user (req->users[j]));
        orr_args_push (&a, orr_key_user_groups (req->users[j]));
    }
    orr_args_push (&a, auth_done_key (call, "group.members"));
    size_t nkeys = a.n;
    orr_args_push (&a, orr_strdup (req->remove ? "remove" : "add"));
    orr_args_push (&a, orr_strdup (req->group));
    for (size_t j = 0; j < req->n_users; j++)
        orr_args_push (&a, orr_strdup (req->users[j]));
    redisReply *r = s_eval (self, script_group_members, nkeys, &a);
    orr_args_clear (&a);
    if (!r || r->type != REDIS_REPLY_STRING)
        orr_result_fail (result, 503, "group store unavailable");
    else if (strcmp (r->str, "missing") == 0)
        orr_result_fail (result, 404, "No such group: %s", req->group);
    else if (strncmp (r->str, "nouser:", 7) == 0)
        orr_result_fail (result, 400, "No such user: %s", r->str + 7);
    else
        auth_publish (self, "group.updated", "group", req->group, "updated", NULL);
    if (r)
        freeReplyObject (r);
    orrery__group_members__free_unpacked (req, NULL);
}

static void
s_group_delete (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__GroupDelete *req;
    AUTH_UNPACK (req, orrery__group_delete, call, result);
    bool done = false;
    for (int attempt = 0; attempt < RETRIES && !done && result->status == 200; attempt++) {
        char *mk = orr_key_group_members (req->name);
        redisReply *members = s_read (self, "SMEMBERS", mk);
        free (mk);
        if (!members) {
            orr_result_fail (result, 503, "group store unavailable");
            break;
        }
        orr_args_t a = { 0 };
        orr_args_push (&a, orr_key_group (req->name));
        orr_args_push (&a, orr_key_group_members (req->name));
        orr_args_push (&a, orr_key_index (ORR_INDEX_GROUPS));
        s_push_each (&a, members, orr_key_user_groups);
        orr_args_push (&a, auth_done_key (call, "group.delete"));
        size_t nkeys = a.n;
        orr_args_push (&a, orr_strdup (req->name));
        orr_args_push (&a, orr_sprintf ("%zu", s_count (members)));
        freeReplyObject (members);
        redisReply *r = s_eval (self, script_group_delete, nkeys, &a);
        orr_args_clear (&a);
        if (!r || r->type != REDIS_REPLY_STRING)
            orr_result_fail (result, 503, "group store unavailable");
        else if (strcmp (r->str, "missing") == 0)
            orr_result_fail (result, 404, "No such group: %s", req->name);
        else if (strcmp (r->str, "ok") == 0) {
            done = true;
            auth_publish (self, "group.deleted", "group", req->name, "deleted", NULL);
        }
        if (r)
            freeReplyObject (r);
    }
    if (!done && result->status == 200)
        orr_result_fail (result, 503, "group changed too often to delete; try again");
    orrery__group_delete__free_unpacked (req, NULL);
}

void
auth_users_register (auth_t *self)
{
    script_users_create = auth_script_once ("users.create", LUA_USERS_CREATE);
    script_user_delete = auth_script_once ("user.delete", LUA_USER_DELETE);
    script_user_rename = auth_script_once ("user.rename", LUA_USER_RENAME);
    script_groups_create = auth_script_once ("groups.create", LUA_GROUPS_CREATE);
    script_group_members = auth_script_once ("group.members", LUA_GROUP_MEMBERS);
    script_group_delete = auth_script_once ("group.delete", LUA_GROUP_DELETE);
    auth_method (self, "users.create", s_users_create);
    auth_method (self, "user.update", s_user_update);
    auth_method (self, "user.delete", s_user_delete);
    auth_method (self, "groups.create", s_groups_create);
    auth_method (self, "group.members", s_group_members);
    auth_method (self, "group.delete", s_group_delete);
}
