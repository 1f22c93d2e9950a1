/*  spawner_records: server records, the spawn queue and leases in Redis.
 *
 *  See spawner_records.h for the contract and docs/spawner.md for the keys. Every script
 *  starts with the same prelude (key building that mirrors lib/orr_keys.c, the member
 *  format, Redis' own clock), so all replicas agree on time and names. Lease times are
 *  Redis TIME in milliseconds: replicas' clocks never meet.
 */
#include "spawner_records.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

#define LUA_PRELUDE                                                                                                    \
    "local function esc(s) return (string.gsub(s, '[%z\\1-\\31{}%%: \\127]', function(c) "                            \
    "return string.format('%%%02X', string.byte(c)) end)) end\n"                                                       \
    "local function rec_key(u, s) return 'orr:{u:' .. esc(u) .. '}:server:' .. esc(s) end\n"                          \
    "local function servers_key(u) return 'orr:{u:' .. esc(u) .. '}:servers' end\n"                                  \
    "local function fence_key(u) return 'orr:{u:' .. esc(u) .. '}:fence' end\n"                                      \
    "local function split(m) local i = string.find(m, '\\n', 1, true) "                                               \
    "return string.sub(m, 1, i - 1), string.sub(m, i + 1) end\n"                                                       \
    "local function now_ms() local t = redis.call('TIME') "                                                             \
    "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"                                           \
    "local IDX = 'orr:{idx}:'\n"

/* ARGV: user, server, options ("" = reuse), url, allow_named, named_limit, active_limit, now_us */
static const char *s_lua_spawn = LUA_PRELUDE
    "local u, s = ARGV[1], ARGV[2]\n"
    "local m = u .. '\\n' .. s\n"
    "local rec = rec_key(u, s)\n"
    "local st = redis.call('HGET', rec, 'state')\n"
    "if st == 'ready' then return {'error', '400', 'running'} end\n"
    "if st == 'pending_stop' then return {'error', '400', 'stopping'} end\n"
    "if st == 'queued' then return {'queued', tostring((redis.call('ZRANK', IDX .. 'spawn_queue', m) or 0) + 1)} end\n"
    "if st == 'pending_spawn' then return {'pending_spawn', '0'} end\n"
    "local servers = servers_key(u)\n"
    "if s ~= '' and redis.call('SISMEMBER', servers, s) == 0 then\n"
    "  if ARGV[5] ~= '1' then return {'error', '400', 'named_off'} end\n"
    "  local limit = tonumber(ARGV[6])\n"
    "  if limit > 0 then\n"
    "    local n = redis.call('SCARD', servers)\n"
    "    if redis.call('SISMEMBER', servers, '') == 1 then n = n - 1 end\n"
    "    if n >= limit then return {'error', '400', 'named_limit'} end\n"
    "  end\n"
    "end\n"
    "local alimit = tonumber(ARGV[7])\n"
    "if alimit > 0 and redis.call('SCARD', IDX .. 'active') >= alimit then return {'error', '429', 'active_limit'} end\n"
    "local opts = ARGV[3]\n"
    "if opts == '' then opts = redis.call('HGET', rec, 'user_options') or '{}' end\n"
    "redis.call('DEL', rec)\n"
    "redis.call('HSET', rec, 'user', u, 'name', s, 'state', 'queued', 'url', ARGV[4], 'user_options', opts,\n"
    "  'requested_us', ARGV[8], 'progress', '0', 'message', 'Server requested')\n"
    "redis.call('SADD', servers, s)\n"
    "redis.call('SADD', IDX .. 'active', m)\n"
    "redis.call('ZADD', IDX .. 'spawn_queue', redis.call('INCR', IDX .. 'spawn_seq'), m)\n"
    "return {'queued', tostring(redis.call('ZRANK', IDX .. 'spawn_queue', m) + 1), 'new'}\n";

/* ARGV: user, server, remove (0/1), now_us */
static const char *s_lua_stop = LUA_PRELUDE
    "local u, s = ARGV[1], ARGV[2]\n"
    "local m = u .. '\\n' .. s\n"
    "local rec = rec_key(u, s)\n"
    "local remove = ARGV[3] == '1'\n"
    "local st = redis.call('HGET', rec, 'state')\n"
    "if remove and s == '' then return {'error', '400', 'remove_default'} end\n"
    "if not st then if s ~= '' then return {'error', '404', 'unknown'} end return {'stopped', '0'} end\n"
    "local function drop() redis.call('DEL', rec) redis.call('SREM', servers_key(u), s) end\n"
    "if st == 'stopped' or st == 'failed' then if remove then drop() end return {st, '0'} end\n"
    "if remove then redis.call('HSET', rec, 'remove', '1') end\n"
    "if st == 'queued' then\n"
    "  redis.call('ZREM', IDX .. 'spawn_queue', m)\n"
    "  redis.call('SREM', IDX .. 'active', m)\n"
    "  redis.call('HSET', rec, 'state', 'stopped', 'stopped_us', ARGV[4], 'message', 'Spawn cancelled', 'progress', '100')\n"
    "  if remove then drop() end\n"
    "  return {'stopped', '1'}\n"
    "end\n"
    "redis.call('HSET', rec, 'stop', '1')\n"
    "local holder = redis.call('HGET', rec, 'holder')\n"
    "if holder then\n"
    "  local stops = 'orr:{h:' .. esc(holder) .. '}:stops'\n"
    "  redis.call('SADD', stops, m) redis.call('EXPIRE', stops, 86400)\n"
    "end\n"
    "if st == 'ready' then\n"
    "  redis.call('HSET', rec, 'state', 'pending_stop', 'message', 'Server stopping')\n"
    "  return {'pending_stop', '1'}\n"
    "end\n"
    "return {st, '0'}\n";

/* ARGV: replica, lease_ms, max_concurrent, now_us */
static const char *s_lua_take = LUA_PRELUDE
    "local max = tonumber(ARGV[3])\n"
    "if max > 0 and redis.call('SCARD', IDX .. 'spawning') >= max then return false end\n"
    "for i = 1, 16 do\n"
    "  local p = redis.call('ZPOPMIN', IDX .. 'spawn_queue')\n"
    "  if #p == 0 then return false end\n"
    "  local m = p[1]\n"
    "  local u, s = split(m)\n"
    "  local rec = rec_key(u, s)\n"
    "  if redis.call('HGET', rec, 'state') == 'queued' then\n"
    "    local fence = redis.call('INCR', fence_key(u))\n"
    "    local lease = now_ms() + tonumber(ARGV[2])\n"
    "    redis.call('HSET', rec, 'state', 'pending_spawn', 'holder', ARGV[1], 'fence', fence, 'lease_ms', lease,\n"
    "      'started_us', ARGV[4], 'progress', '10', 'message', 'Server starting')\n"
    "    redis.call('SADD', IDX .. 'spawning', m)\n"
    "    redis.call('ZADD', IDX .. 'leases', lease, m)\n"
    "    return redis.call('HGETALL', rec)\n"
    "  end\n"
    "end\n"
    "return false\n";

/* ARGV: user, server, replica, lease_ms, expect_holder ("" = the lease must have expired) */
static const char *s_lua_claim = LUA_PRELUDE
    "local u, s = ARGV[1], ARGV[2]\n"
    "local m = u .. '\\n' .. s\n"
    "local rec = rec_key(u, s)\n"
    "local st = redis.call('HGET', rec, 'state')\n"
    "if st ~= 'pending_spawn' and st ~= 'ready' and st ~= 'pending_stop' then\n"
    "  if not st or st == 'stopped' or st == 'failed' then redis.call('ZREM', IDX .. 'leases', m)\n"
    "    redis.call('SREM', IDX .. 'spawning', m) end\n"
    "  return false\n"
    "end\n"
    "local now = now_ms()\n"
    "if ARGV[5] ~= '' then\n"
    "  if redis.call('HGET', rec, 'holder') ~= ARGV[5] then return false end\n"
    "elseif tonumber(redis.call('HGET', rec, 'lease_ms') or '0') > now then return false end\n"
    "local fence = redis.call('INCR', fence_key(u))\n"
    "local lease = now + tonumber(ARGV[4])\n"
    "redis.call('HSET', rec, 'holder', ARGV[3], 'fence', fence, 'lease_ms', lease)\n"
    "redis.call('ZADD', IDX .. 'leases', lease, m)\n"
    "if st == 'pending_spawn' then redis.call('SADD', IDX .. 'spawning', m) end\n"
    "return redis.call('HGETALL', rec)\n";

/* ARGV: user, server, fence, lease_ms (0 = keep), field, value, ... ("" deletes) */
static const char *s_lua_update = LUA_PRELUDE
    "local u, s = ARGV[1], ARGV[2]\n"
    "local rec = rec_key(u, s)\n"
    "if redis.call('HGET', rec, 'fence') ~= ARGV[3] then return {0} end\n"
    "for i = 5, #ARGV, 2 do\n"
    "  if ARGV[i + 1] == '' then redis.call('HDEL', rec, ARGV[i]) else redis.call('HSET', rec, ARGV[i], ARGV[i + 1]) end\n"
    "end\n"
    "if tonumber(ARGV[4]) > 0 then\n"
    "  local lease = now_ms() + tonumber(ARGV[4])\n"
    "  redis.call('HSET', rec, 'lease_ms', lease)\n"
    "  redis.call('ZADD', IDX .. 'leases', lease, u .. '\\n' .. s)\n"
    "end\n"
    "return {1, redis.call('HGET', rec, 'stop') or ''}\n";

/* ARGV: user, server, fence, outcome, now_us, message, reason, lease_ms */
static const char *s_lua_finish = LUA_PRELUDE
    "local u, s = ARGV[1], ARGV[2]\n"
    "local m = u .. '\\n' .. s\n"
    "local rec = rec_key(u, s)\n"
    "if redis.call('HGET', rec, 'fence') ~= ARGV[3] then return {0} end\n"
    "local o = ARGV[4]\n"
    "redis.call('SREM', IDX .. 'spawning', m)\n"
    "if o == 'ready' then\n"
    "  local lease = now_ms() + tonumber(ARGV[8])\n"
    "  redis.call('HSET', rec, 'state', 'ready', 'ready_us', ARGV[5], 'progress', '100', 'message', ARGV[6], 'lease_ms', lease)\n"
    "  redis.call('ZADD', IDX .. 'leases', lease, m)\n"
    "  return {1, redis.call('HGET', rec, 'stop') or ''}\n"
    "end\n"
    "redis.call('ZREM', IDX .. 'leases', m)\n"
    "redis.call('SREM', IDX .. 'active', m)\n"
    "redis.call('HDEL', rec, 'holder', 'lease_ms', 'pid', 'pid_start', 'port', 'target', 'stop', 'token_id', 'client_id', 'pod')\n"
    "redis.call('HSET', rec, 'state', o, 'stopped_us', ARGV[5], 'message', ARGV[6], 'reason', ARGV[7], 'progress', '100')\n"
    "if o == 'stopped' and redis.call('HGET', rec, 'remove') == '1' then\n"
    "  redis.call('DEL', rec) redis.call('SREM', servers_key(u), s)\n"
    "end\n"
    "return {1, ''}\n";

/* ARGV: lease_ms, then (user, server, fence) triples */
static const char *s_lua_renew = LUA_PRELUDE
    "local lease = now_ms() + tonumber(ARGV[1])\n"
    "local out = {}\n"
    "for i = 2, #ARGV, 3 do\n"
    "  local rec = rec_key(ARGV[i], ARGV[i + 1])\n"
    "  local st = redis.call('HGET', rec, 'state')\n"
    "  if redis.call('HGET', rec, 'fence') == ARGV[i + 2] and (st == 'pending_spawn' or st == 'ready' or st == 'pending_stop') then\n"
    "    redis.call('HSET', rec, 'lease_ms', lease)\n"
    "    redis.call('ZADD', IDX .. 'leases', lease, ARGV[i] .. '\\n' .. ARGV[i + 1])\n"
    "    if redis.call('HGET', rec, 'stop') == '1' then out[#out + 1] = 2 else out[#out + 1] = 1 end\n"
    "  else out[#out + 1] = 0 end\n"
    "end\n"
    "return out\n";

/* ARGV: grace_ms, max */
static const char *s_lua_expired = LUA_PRELUDE
    "return redis.call('ZRANGEBYSCORE', IDX .. 'leases', '-inf', now_ms() - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))\n";

static orr_script_t *s_spawn, *s_stop, *s_take, *s_claim, *s_update, *s_finish, *s_renew, *s_expired;

void
srec_init (void)
{
    if (s_spawn)
        return;
    s_spawn = orr_script_new ("spawner.spawn", s_lua_spawn);
    s_stop = orr_script_new ("spawner.stop", s_lua_stop);
    s_take = orr_script_new ("spawner.take", s_lua_take);
    s_claim = orr_script_new ("spawner.claim", s_lua_claim);
    s_update = orr_script_new ("spawner.update", s_lua_update);
    s_finish = orr_script_new ("spawner.finish", s_lua_finish);
    s_renew = orr_script_new ("spawner.renew", s_lua_renew);
    s_expired = orr_script_new ("spawner.expired", s_lua_expired);
}

void
srec_shutdown (void)
{
    orr_script_destroy (&s_spawn);
    orr_script_destroy (&s_stop);
    orr_script_destroy (&s_take);
    orr_script_destroy (&s_claim);
    orr_script_destroy (&s_update);
    orr_script_destroy (&s_finish);
    orr_script_destroy (&s_renew);
    orr_script_destroy (&s_expired);
}

/* --- records ----------------------------------------------------------------------------- */

void
srec_clear (srec_t *rec)
{
    char **strs[] = { &rec->user, &rec->server, &rec->state, &rec->url, &rec->user_options, &rec->profile,
                      &rec->node, &rec->target, &rec->holder, &rec->token_id, &rec->client_id, &rec->log, &rec->pod,
                      &rec->message, &rec->reason };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free (*strs[i]);
        *strs[i] = NULL;
    }
    memset (rec, 0, sizeof *rec);
}

char *
srec_member (const char *user, const char *server)
{
    return orr_sprintf ("%s\n%s", user, server ? server : "");
}

bool
srec_member_split (const char *member, char **user, char **server)
{
    const char *nl = member ? strchr (member, '\n') : NULL;
    if (!nl)
        return false;
    *user = orr_strndup (member, (size_t) (nl - member));
    *server = orr_strdup (nl + 1);
    return true;
}

static int64_t
s_int (const redisReply *hash, const char *field)
{
    const char *v = orr_reply_field (hash, field, "0");
    return strtoll (v, NULL, 10);
}

/* Fills rec from an HGETALL-shaped reply. */
static void
s_rec_from_reply (const redisReply *r, srec_t *rec)
{
    memset (rec, 0, sizeof *rec);
    rec->user = orr_strdup (orr_reply_field (r, "user", ""));
    rec->server = orr_strdup (orr_reply_field (r, "name", ""));
    rec->state = orr_strdup (orr_reply_field (r, "state", ""));
    rec->url = orr_strdup (orr_reply_field (r, "url", ""));
    rec->user_options = orr_strdup (orr_reply_field (r, "user_options", "{}"));
    rec->profile = orr_strdup (orr_reply_field (r, "profile", ""));
    rec->node = orr_strdup (orr_reply_field (r, "node", ""));
    rec->target = orr_strdup (orr_reply_field (r, "target", ""));
    rec->holder = orr_strdup (orr_reply_field (r, "holder", ""));
    rec->token_id = orr_strdup (orr_reply_field (r, "token_id", ""));
    rec->client_id = orr_strdup (orr_reply_field (r, "client_id", ""));
    rec->log = orr_strdup (orr_reply_field (r, "log", ""));
    rec->pod = orr_strdup (orr_reply_field (r, "pod", ""));
    rec->message = orr_strdup (orr_reply_field (r, "message", ""));
    rec->reason = orr_strdup (orr_reply_field (r, "reason", ""));
    rec->fence = s_int (r, "fence");
    rec->lease_ms = s_int (r, "lease_ms");
    rec->pid = s_int (r, "pid");
    rec->pid_start = s_int (r, "pid_start");
    rec->port = s_int (r, "port");
    rec->started_us = s_int (r, "started_us");
    rec->stop = strcmp (orr_reply_field (r, "stop", ""), "1") == 0;
    rec->remove = strcmp (orr_reply_field (r, "remove", ""), "1") == 0;
}

srec_status_t
srec_read (orr_store_t *store, const char *user, const char *server, srec_t *out)
{
    char *key = orr_key_server (user, server);
    redisReply *r = orr_store_command (store, "HGETALL %s", key);
    free (key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        memset (out, 0, sizeof *out);
        return SREC_ERROR;
    }
    s_rec_from_reply (r, out);
    freeReplyObject (r);
    return SREC_OK;
}

/* --- calling the scripts ----------------------------------------------------------------- */

/* EVALSHA with no keys (the scripts build their own) over args; logs script errors. */
static redisReply *
s_eval (orr_store_t *store, const orr_script_t *script, orr_args_t *args)
{
    redisReply *r = orr_store_eval_args (store, script, 0, args);
    orr_args_clear (args);
    if (!r) {
        orr_warn ("%s: %s", orr_script_name (script), orr_store_error (store));
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        orr_error ("%s: %s", orr_script_name (script), r->str);
        freeReplyObject (r);
        return NULL;
    }
    return r;
}

static void
s_push (orr_args_t *a, const char *s)
{
    orr_args_push (a, orr_strdup (s ? s : ""));
}

static void
s_push_int (orr_args_t *a, int64_t v)
{
    orr_args_push (a, orr_sprintf ("%lld", (long long) v));
}

static const char *
s_elem (const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return "";
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
        return e->str;
    return "";
}

static int64_t
s_elem_int (const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll (e->str, NULL, 10);
    return 0;
}

/* The reply of spawn/stop: {state, n} or {'error', status, code}. */
static void
s_answer (const redisReply *r, const char *user, const char *server, srec_answer_t *a)
{
    memset (a, 0, sizeof *a);
    a->status = 200;
    const char *first = s_elem (r, 0);
    if (strcmp (first, "error") == 0) {
        a->status = (int) strtol (s_elem (r, 1), NULL, 10);
        const char *code = s_elem (r, 2);
        const char *who = server && *server ? server : "";
        const char *sep = *who ? ":" : "";   /* JupyterHub names a server "alice" or "alice:gpu" */
        if (strcmp (code, "running") == 0)
            snprintf (a->message, sizeof a->message, "%s%s%s is already running", user, sep, who);
        else if (strcmp (code, "stopping") == 0)
            snprintf (a->message, sizeof a->message, "%s%s%s is pending stop; try again when it has stopped", user,
                      sep, who);
        else if (strcmp (code, "named_off") == 0)
            snprintf (a->message, sizeof a->message, "Named servers are not enabled.");
        else if (strcmp (code, "named_limit") == 0)
            snprintf (a->message, sizeof a->message, "User %s already has the maximum of named servers.", user);
        else if (strcmp (code, "active_limit") == 0)
            snprintf (a->message, sizeof a->message, "Active user limit exceeded. Try again in a few minutes.");
        else if (strcmp (code, "unknown") == 0)
            snprintf (a->message, sizeof a->message, "%s has no server named '%s'", user, who);
        else if (strcmp (code, "remove_default") == 0)
            snprintf (a->message, sizeof a->message, "Cannot remove the default server");
        else
            snprintf (a->message, sizeof a->message, "%s", code);
        return;
    }
    snprintf (a->state, sizeof a->state, "%s", first);
    long n = strtol (s_elem (r, 1), NULL, 10);
    if (strcmp (first, "queued") == 0)
        a->queue_position = (int) n;
    a->changed = n == 1;
}

srec_status_t
srec_spawn (orr_store_t *store, const char *user, const char *server, const char *options_json, const char *url,
            const srec_limits_t *limits, srec_answer_t *answer)
{
    orr_args_t a = { 0 };
    s_push (&a, user);
    s_push (&a, server);
    s_push (&a, options_json);
    s_push (&a, url);
    s_push (&a, limits->allow_named ? "1" : "0");
    s_push_int (&a, limits->named_limit);
    s_push_int (&a, limits->active_limit);
    s_push_int (&a, orr_now_us ());
    redisReply *r = s_eval (store, s_spawn, &a);
    if (!r)
        return SREC_ERROR;
    s_answer (r, user, server, answer);
    /* only a new queue entry is a change (the third element); an already queued server
     * answers its position and must not publish server.pending again */
    answer->changed = answer->status == 200 && strcmp (s_elem (r, 2), "new") == 0;
    freeReplyObject (r);
    return SREC_OK;
}

srec_status_t
srec_stop (orr_store_t *store, const char *user, const char *server, bool remove, srec_answer_t *answer)
{
    orr_args_t a = { 0 };
    s_push (&a, user);
    s_push (&a, server);
    s_push (&a, remove ? "1" : "0");
    s_push_int (&a, orr_now_us ());
    redisReply *r = s_eval (store, s_stop, &a);
    if (!r)
        return SREC_ERROR;
    s_answer (r, user, server, answer);
    freeReplyObject (r);
    return SREC_OK;
}

/* A script that answers the record it took (HGETALL) or nil when it took nothing. */
static srec_status_t
s_eval_record (orr_store_t *store, const orr_script_t *script, orr_args_t *args, srec_t *out)
{
    redisReply *r = s_eval (store, script, args);
    if (!r)
        return SREC_ERROR;
    srec_status_t rc = SREC_FENCED;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        s_rec_from_reply (r, out);
        rc = SREC_OK;
    }
    freeReplyObject (r);
    return rc;
}

srec_status_t
srec_take (orr_store_t *store, const char *replica, int64_t lease_ms, int64_t max_concurrent, srec_t *out)
{
    orr_args_t a = { 0 };
    s_push (&a, replica);
    s_push_int (&a, lease_ms);
    s_push_int (&a, max_concurrent);
    s_push_int (&a, orr_now_us ());
    return s_eval_record (store, s_take, &a, out);
}

srec_status_t
srec_claim (orr_store_t *store, const char *user, const char *server, const char *replica,
            const char *expect_holder, int64_t lease_ms, srec_t *out)
{
    orr_args_t a = { 0 };
    s_push (&a, user);
    s_push (&a, server);
    s_push (&a, replica);
    s_push_int (&a, lease_ms);
    s_push (&a, expect_holder);
    return s_eval_record (store, s_claim, &a, out);
}

srec_status_t
srec_update (orr_store_t *store, const char *user, const char *server, int64_t fence, int64_t lease_ms, bool *stop,
             const char *const *pairs)
{
    orr_args_t a = { 0 };
    s_push (&a, user);
    s_push (&a, server);
    s_push_int (&a, fence);
    s_push_int (&a, lease_ms);
    for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2) {
        s_push (&a, pairs[i]);
        s_push (&a, pairs[i + 1]);
    }
    redisReply *r = s_eval (store, s_update, &a);
    if (!r)
        return SREC_ERROR;
    srec_status_t rc = s_elem_int (r, 0) == 1 ? SREC_OK : SREC_FENCED;
    if (stop)
        *stop = strcmp (s_elem (r, 1), "1") == 0;
    freeReplyObject (r);
    return rc;
}

srec_status_t
srec_finish (orr_store_t *store, const char *user, const char *server, int64_t fence, const char *outcome,
             const char *message, const char *reason, int64_t lease_ms, bool *stop)
{
    orr_args_t a = { 0 };
    s_push (&a, user);
    s_push (&a, server);
    s_push_int (&a, fence);
    s_push (&a, outcome);
    s_push_int (&a, orr_now_us ());
    s_push (&a, message);
    s_push (&a, reason);
    s_push_int (&a, lease_ms);
    redisReply *r = s_eval (store, s_finish, &a);
    if (!r)
        return SREC_ERROR;
    srec_status_t rc = s_elem_int (r, 0) == 1 ? SREC_OK : SREC_FENCED;
    if (stop)
        *stop = strcmp (s_elem (r, 1), "1") == 0;
    freeReplyObject (r);
    return rc;
}

srec_status_t
srec_renew (orr_store_t *store, size_t n, char *const *users, char *const *servers, const int64_t *fences,
            int64_t lease_ms, int *out)
{
    if (n == 0)
        return SREC_OK;
    orr_args_t a = { 0 };
    s_push_int (&a, lease_ms);
    for (size_t i = 0; i < n; i++) {
        s_push (&a, users[i]);
        s_push (&a, servers[i]);
        s_push_int (&a, fences[i]);
    }
    redisReply *r = s_eval (store, s_renew, &a);
    if (!r)
        return SREC_ERROR;
    for (size_t i = 0; i < n; i++)
        out[i] = (int) s_elem_int (r, i);
    freeReplyObject (r);
    return SREC_OK;
}

/* The strings of an array reply as a NULL-terminated vector. */
static char **
s_strv (const redisReply *r, size_t *count)
{
    *count = 0;
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    char **v = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            v[(*count)++] = orr_strndup (r->element[i]->str, r->element[i]->len);
    return v;
}

char **
srec_expired (orr_store_t *store, int64_t grace_ms, size_t max, size_t *count)
{
    orr_args_t a = { 0 };
    s_push_int (&a, grace_ms);
    s_push_int (&a, (int64_t) max);
    redisReply *r = s_eval (store, s_expired, &a);
    char **v = s_strv (r, count);
    if (r)
        freeReplyObject (r);
    return v;
}

char **
srec_stops_pop (orr_store_t *store, const char *holder, size_t max, size_t *count)
{
    char *key = orr_key_holder_stops (holder);
    redisReply *r = orr_store_command (store, "SPOP %s %zu", key, max);
    free (key);
    char **v = s_strv (r, count);
    if (r)
        freeReplyObject (r);
    return v;
}

char **
srec_active (orr_store_t *store, size_t *count)
{
    char *key = orr_key_index (ORR_INDEX_ACTIVE);
    redisReply *r = orr_store_command (store, "SMEMBERS %s", key);
    free (key);
    char **v = s_strv (r, count);
    if (r)
        freeReplyObject (r);
    return v;
}

int
srec_handover_push (orr_store_t *store, const char *node, const char *member)
{
    char *key = orr_key_node_starts (node);
    redisReply *r = orr_store_command (store, "RPUSH %s %s", key, member);
    free (key);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (r)
        freeReplyObject (r);
    return rc;
}

char *
srec_handover_pop (orr_store_t *store, const char *node)
{
    char *key = orr_key_node_starts (node);
    redisReply *r = orr_store_command (store, "LPOP %s", key);
    free (key);
    char *out = r && r->type == REDIS_REPLY_STRING ? orr_strndup (r->str, r->len) : NULL;
    if (r)
        freeReplyObject (r);
    return out;
}
