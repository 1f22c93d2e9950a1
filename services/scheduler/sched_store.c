/*  sched_store: the scheduler's keys in Redis (docs/keyspace.md), every write a Lua script.
 *
 *  Per node, all under the node's hash tag so each script touches one Redis Cluster slot:
 *    orr:{n:N}:node          hash  cap_*, res_* (sums of reservations), use_*, labels,
 *                                  taints, cordoned, cordon_reason, hb_ms, registered_ms,
 *                                  lost, agent
 *    orr:{n:N}:reservations  hash  id -> "cpu mem gpus expire_ms group" (expire_ms 0: bound)
 *    orr:{n:N}:expiry        zset  id -> expire_ms, for reservations not yet bound
 *  Elsewhere, written after the node's script and only ever used as hints:
 *    orr:{p:ID}:placement    the node holding reservation ID (PX the TTL until bound)
 *    orr:{sg:G}:spread       hash node -> servers of group G there (the spread score)
 *    orr:{idx}:nodes         zset node -> last heartbeat (ms)
 *    orr:{idx}:reservation_expiry  zset "node\nid" -> expire_ms (the sweep's to-do list)
 *  The reserve script is the one authority on capacity: it re-checks readiness, the
 *  cordon and the fit against res_* and adds to them in the same atomic step, so no
 *  number of scheduler replicas can over-commit a node. It also gives back any of the
 *  node's reservations that expired first, so an expiry never waits for the sweep to
 *  make room. Amounts travel as decimal strings (Lua numbers are doubles; HINCRBY gets
 *  strings so 64-bit sums never pass through a float).
 */
#include "scheduler.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- labels and taints as stored ------------------------------------------------------- */

static bool
s_label_chars_ok (const char *s, bool allow_slash)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (!isalnum (*p) && *p != '.' && *p != '_' && *p != '-' && !(allow_slash && *p == '/'))
            return false;
    return true;
}

bool
sched_label_key_ok (const char *key)
{
    size_t n = key ? strlen (key) : 0;
    return n >= 1 && n <= SCHED_LABEL_KEY_MAX && s_label_chars_ok (key, true);
}

bool
sched_label_value_ok (const char *value)
{
    return value && strlen (value) <= SCHED_LABEL_VALUE_MAX && s_label_chars_ok (value, false);
}

int
sched_effect_parse (const char *text, bool allow_any)
{
    if (!text || !*text)
        return allow_any ? SCHED_EFFECT_ANY : -1;
    if (strcmp (text, "NoSchedule") == 0)
        return SCHED_EFFECT_NO_SCHEDULE;
    if (strcmp (text, "PreferNoSchedule") == 0)
        return SCHED_EFFECT_PREFER_NO_SCHEDULE;
    return -1;
}

const char *
sched_effect_name (sched_effect_t effect)
{
    return effect == SCHED_EFFECT_NO_SCHEDULE ? "NoSchedule"
           : effect == SCHED_EFFECT_PREFER_NO_SCHEDULE ? "PreferNoSchedule"
                                                        : "";
}

char *
sched_labels_encode (const sched_label_t *labels, size_t n)
{
    char *out = orr_strdup ("");
    for (size_t i = 0; i < n; i++) {
        char *next = orr_sprintf ("%s%s=%s\n", out, labels[i].key, labels[i].value);
        free (out);
        out = next;
    }
    return out;
}

char *
sched_taints_encode (const sched_taint_t *taints, size_t n)
{
    char *out = orr_strdup ("");
    for (size_t i = 0; i < n; i++) {
        char *next = orr_sprintf ("%s%s=%s:%s\n", out, taints[i].key, taints[i].value, sched_effect_name (taints[i].effect));
        free (out);
        out = next;
    }
    return out;
}

/* Splits the stored text into lines of "k=v" (and ":effect" for taints). Stored values were
 * validated on the way in, so a line that does not parse is skipped, never trusted. */
sched_label_t *
sched_labels_decode (const char *text, size_t *n)
{
    *n = 0;
    size_t count = 0;
    char **lines = orr_split (text ? text : "", '\n', &count);
    sched_label_t *out = count ? orr_zalloc (count * sizeof *out) : NULL;
    for (size_t i = 0; i < count; i++) {
        char *eq = strchr (lines[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        out[*n].key = orr_strdup (lines[i]);
        out[*n].value = orr_strdup (eq + 1);
        (*n)++;
    }
    orr_strv_free (&lines);
    return out;
}

sched_taint_t *
sched_taints_decode (const char *text, size_t *n)
{
    *n = 0;
    size_t count = 0;
    char **lines = orr_split (text ? text : "", '\n', &count);
    sched_taint_t *out = count ? orr_zalloc (count * sizeof *out) : NULL;
    for (size_t i = 0; i < count; i++) {
        char *eq = strchr (lines[i], '=');
        char *colon = eq ? strchr (eq, ':') : NULL;
        if (!colon)
            continue;
        *eq = *colon = '\0';
        int effect = sched_effect_parse (colon + 1, false);
        if (effect < 0)
            continue;
        out[*n].key = orr_strdup (lines[i]);
        out[*n].value = orr_strdup (eq + 1);
        out[*n].effect = (sched_effect_t) effect;
        (*n)++;
    }
    orr_strv_free (&lines);
    return out;
}

void
sched_labels_free (sched_label_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (labels[i].key);
        free (labels[i].value);
    }
    free (labels);
}

void
sched_taints_free (sched_taint_t *taints, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (taints[i].key);
        free (taints[i].value);
    }
    free (taints);
}

/* --- scripts --------------------------------------------------------------------------- */

/* Gives back the reservation `id` of the node (KEYS[1..3] = node, reservations, expiry):
 * returns its group, or nil when there was none. Shared by reserve, release and expire. */
#define LUA_GIVE_BACK                                                                          \
    "local function give_back(id)\n"                                                           \
    "  local v = redis.call('HGET', KEYS[2], id)\n"                                            \
    "  redis.call('ZREM', KEYS[3], id)\n"                                                      \
    "  if not v then return nil end\n"                                                         \
    "  local cpu, mem, gpus, exp, group = string.match(v, '^(%d+) (%d+) (%d+) (%d+) ?(.*)$')\n" \
    "  redis.call('HDEL', KEYS[2], id)\n"                                                      \
    "  if not cpu then return '' end\n"                                                        \
    "  redis.call('HINCRBY', KEYS[1], 'res_cpu', '-' .. cpu)\n"                                \
    "  redis.call('HINCRBY', KEYS[1], 'res_mem', '-' .. mem)\n"                                \
    "  redis.call('HINCRBY', KEYS[1], 'res_gpus', '-' .. gpus)\n"                              \
    "  redis.call('HINCRBY', KEYS[1], 'res_servers', -1)\n"                                    \
    "  return group\n"                                                                         \
    "end\n"

/* KEYS node; ARGV now_ms cap_cpu cap_mem cap_gpus cap_servers use_cpu use_mem use_gpus
 * use_servers labels taints agent. */
static const char *s_lua_heartbeat =
    "local k = KEYS[1]\n"
    "local now = tonumber(ARGV[1])\n"
    "local existed = redis.call('EXISTS', k) == 1\n"
    "if existed and now < tonumber(redis.call('HGET', k, 'hb_ms') or '0') then return 0 end\n"
    "local was_lost = redis.call('HGET', k, 'lost') == '1'\n"
    "redis.call('HSET', k, 'hb_ms', ARGV[1], 'cap_cpu', ARGV[2], 'cap_mem', ARGV[3], 'cap_gpus', ARGV[4],\n"
    "  'cap_servers', ARGV[5], 'use_cpu', ARGV[6], 'use_mem', ARGV[7], 'use_gpus', ARGV[8],\n"
    "  'use_servers', ARGV[9], 'labels', ARGV[10], 'taints', ARGV[11], 'agent', ARGV[12], 'lost', '0')\n"
    "if not existed then\n"
    "  redis.call('HSET', k, 'registered_ms', ARGV[1], 'res_cpu', 0, 'res_mem', 0, 'res_gpus', 0,\n"
    "    'res_servers', 0, 'cordoned', 0)\n"
    "end\n"
    "if not existed or was_lost then return 2 end\n"
    "return 1\n";

/* KEYS node; ARGV now_ms timeout_ms */
static const char *s_lua_mark_lost =
    "local f = redis.call('HMGET', KEYS[1], 'hb_ms', 'lost')\n"
    "if not f[1] or f[2] == '1' then return 0 end\n"
    "if tonumber(f[1]) + tonumber(ARGV[2]) >= tonumber(ARGV[1]) then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'lost', '1')\n"
    "return 1\n";

/* KEYS node; ARGV cordoned(0|1) reason */
static const char *s_lua_cordon =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "local before = redis.call('HGET', KEYS[1], 'cordoned') or '0'\n"
    "redis.call('HSET', KEYS[1], 'cordoned', ARGV[1], 'cordon_reason', ARGV[2])\n"
    "if before == ARGV[1] then return 0 end\n"
    "return 1\n";

/* KEYS node reservations expiry; ARGV id cpu mem gpus now_ms timeout_ms expire_ms group.
 * Returns {status, res_cpu, res_mem, res_gpus, res_servers, cordoned, hb_ms, pruned...}
 * where pruned lists id, group pairs of expired reservations given back on the way. */
static const char *s_lua_reserve =
    LUA_GIVE_BACK
    "local node = KEYS[1]\n"
    "if redis.call('EXISTS', node) == 0 then return {'gone'} end\n"
    "local now = tonumber(ARGV[5])\n"
    "local pruned = {}\n"
    "for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 64)) do\n"
    "  local group = give_back(id)\n"
    "  if group then pruned[#pruned + 1] = id; pruned[#pruned + 1] = group end\n"
    "end\n"
    "local function reply(status)\n"
    "  local s = redis.call('HMGET', node, 'res_cpu', 'res_mem', 'res_gpus', 'res_servers', 'cordoned', 'hb_ms')\n"
    "  local r = {status, s[1] or '0', s[2] or '0', s[3] or '0', s[4] or '0', s[5] or '0', s[6] or '0'}\n"
    "  for _, x in ipairs(pruned) do r[#r + 1] = x end\n"
    "  return r\n"
    "end\n"
    "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return reply('held') end\n"
    "local f = redis.call('HMGET', node, 'cap_cpu', 'cap_mem', 'cap_gpus', 'cap_servers',\n"
    "  'res_cpu', 'res_mem', 'res_gpus', 'res_servers', 'cordoned', 'hb_ms')\n"
    "if f[9] == '1' then return reply('cordoned') end\n"
    "if tonumber(f[10] or '0') + tonumber(ARGV[6]) < now then return reply('not_ready') end\n"
    "local function fits(cap, res, want)\n"
    "  want = tonumber(want)\n"
    "  if want <= 0 then return true end\n"
    "  return tonumber(res or '0') + want <= tonumber(cap or '0')\n"
    "end\n"
    "local max_servers = tonumber(f[4] or '0')\n"
    "if not fits(f[1], f[5], ARGV[2]) or not fits(f[2], f[6], ARGV[3]) or not fits(f[3], f[7], ARGV[4])\n"
    "   or (max_servers > 0 and tonumber(f[8] or '0') + 1 > max_servers) then return reply('full') end\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[7] .. ' ' .. ARGV[8])\n"
    "redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])\n"
    "redis.call('HINCRBY', node, 'res_cpu', ARGV[2])\n"
    "redis.call('HINCRBY', node, 'res_mem', ARGV[3])\n"
    "redis.call('HINCRBY', node, 'res_gpus', ARGV[4])\n"
    "redis.call('HINCRBY', node, 'res_servers', 1)\n"
    "return reply('ok')\n";

/* KEYS node reservations expiry; ARGV id. Returns {1, group} or {0}. */
static const char *s_lua_release =
    LUA_GIVE_BACK
    "local group = give_back(ARGV[1])\n"
    "if group then return {1, group} end\n"
    "return {0}\n";

/* KEYS node reservations expiry; ARGV id now_ms. Only a reservation still unbound and past
 * its time is given back. Returns {1, group} or {0}. */
static const char *s_lua_expire =
    LUA_GIVE_BACK
    "local at = redis.call('ZSCORE', KEYS[3], ARGV[1])\n"
    "if not at or tonumber(at) > tonumber(ARGV[2]) then return {0} end\n"
    "local group = give_back(ARGV[1])\n"
    "if group then return {1, group} end\n"
    "return {0}\n";

/* KEYS node reservations expiry; ARGV id. The server started: no expiry any more. */
static const char *s_lua_bind =
    "local v = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if not v then return 0 end\n"
    "local cpu, mem, gpus, exp, group = string.match(v, '^(%d+) (%d+) (%d+) (%d+) ?(.*)$')\n"
    "if cpu then redis.call('HSET', KEYS[2], ARGV[1], cpu .. ' ' .. mem .. ' ' .. gpus .. ' 0 ' .. group) end\n"
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "return 1\n";

/* KEYS placement; ARGV node. Deletes the placement record only if it names this node. */
static const char *s_lua_forget_placement =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

static orr_script_t *s_heartbeat, *s_mark_lost, *s_cordon, *s_reserve, *s_release, *s_expire, *s_bind,
    *s_forget_placement;

int
sched_store_init (void)
{
    s_heartbeat = orr_script_new ("sched.heartbeat", s_lua_heartbeat);
    s_mark_lost = orr_script_new ("sched.mark_lost", s_lua_mark_lost);
    s_cordon = orr_script_new ("sched.cordon", s_lua_cordon);
    s_reserve = orr_script_new ("sched.reserve", s_lua_reserve);
    s_release = orr_script_new ("sched.release", s_lua_release);
    s_expire = orr_script_new ("sched.expire", s_lua_expire);
    s_bind = orr_script_new ("sched.bind", s_lua_bind);
    s_forget_placement = orr_script_new ("sched.forget_placement", s_lua_forget_placement);
    return 0;
}

void
sched_store_fini (void)
{
    orr_script_destroy (&s_heartbeat);
    orr_script_destroy (&s_mark_lost);
    orr_script_destroy (&s_cordon);
    orr_script_destroy (&s_reserve);
    orr_script_destroy (&s_release);
    orr_script_destroy (&s_expire);
    orr_script_destroy (&s_bind);
    orr_script_destroy (&s_forget_placement);
}

/* --- helpers --------------------------------------------------------------------------- */

static char *
s_i64 (int64_t v)
{
    return orr_sprintf ("%lld", (long long) v);
}

static int64_t
s_reply_i64 (const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll (r->str, NULL, 10);
    return 0;
}

static int64_t
s_field_i64 (const redisReply *hash, const char *field)
{
    return strtoll (orr_reply_field (hash, field, "0"), NULL, 10);
}

/* The three keys of a node's scripts, pushed onto args. */
static void
s_push_node_keys (orr_args_t *args, const char *node)
{
    orr_args_push (args, orr_key_node (node));
    orr_args_push (args, orr_key_node_reservations (node));
    orr_args_push (args, orr_key_node_expiry (node));
}

static char *
s_expiry_member (const char *node, const char *id)
{
    return orr_sprintf ("%s\n%s", node, id);
}

/* Best effort: the hint keys that follow a reservation given back. */
static void
s_forget (scheduler_t *s, const char *node, const char *id, const char *group)
{
    orr_store_t *store = scheduler_store (s);
    char *placement = orr_key_placement (id);
    const char *argv[] = { placement, node };
    redisReply *r = orr_store_eval (store, s_forget_placement, 1, 2, argv, NULL);
    if (r)
        freeReplyObject (r);
    free (placement);
    if (group && *group) {
        char *spread = orr_key_spread_group (group);
        r = orr_store_command (store, "HINCRBY %s %s -1", spread, node);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer <= 0) {
            freeReplyObject (r);
            r = orr_store_command (store, "HDEL %s %s", spread, node);
        }
        if (r)
            freeReplyObject (r);
        free (spread);
    }
    char *idx = orr_key_index (ORR_INDEX_RESERVATION_EXPIRY);
    char *member = s_expiry_member (node, id);
    r = orr_store_command (store, "ZREM %s %s", idx, member);
    if (r)
        freeReplyObject (r);
    free (member);
    free (idx);
}

/* --- node agent, lost, cordon ---------------------------------------------------------- */

void
sched_heartbeat_meta (const Orrery__NodeHeartbeat *hb, sched_label_t *labels, sched_taint_t *taints)
{
    for (size_t i = 0; i < hb->n_labels; i++)
        labels[i] = (sched_label_t) { hb->labels[i]->key, hb->labels[i]->value };
    for (size_t i = 0; i < hb->n_taints; i++)
        taints[i] = (sched_taint_t) { hb->taints[i]->key, hb->taints[i]->value,
                                      (sched_effect_t) sched_effect_parse (hb->taints[i]->effect, false) };
}

int
sched_store_heartbeat (scheduler_t *s, const Orrery__NodeHeartbeat *hb, int64_t now_ms)
{
    sched_label_t labels[SCHED_LABELS_MAX];
    sched_taint_t taints[SCHED_TAINTS_MAX];
    sched_heartbeat_meta (hb, labels, taints);
    const Orrery__Resources none = ORRERY__RESOURCES__INIT;
    const Orrery__Resources *cap = hb->capacity ? hb->capacity : &none;
    const Orrery__Resources *use = hb->usage ? hb->usage : &none;
    orr_args_t args = { 0 };
    orr_args_push (&args, orr_key_node (hb->node));
    orr_args_push (&args, s_i64 (now_ms));
    orr_args_push (&args, s_i64 (cap->cpu_millis));
    orr_args_push (&args, s_i64 (cap->memory_bytes));
    orr_args_push (&args, s_i64 (cap->gpus));
    orr_args_push (&args, s_i64 (cap->servers));
    orr_args_push (&args, s_i64 (use->cpu_millis));
    orr_args_push (&args, s_i64 (use->memory_bytes));
    orr_args_push (&args, s_i64 (use->gpus));
    orr_args_push (&args, s_i64 (use->servers));
    orr_args_push (&args, sched_labels_encode (labels, hb->n_labels));
    orr_args_push (&args, sched_taints_encode (taints, hb->n_taints));
    orr_args_push (&args, orr_strdup (hb->agent ? hb->agent : ""));
    orr_store_t *store = scheduler_store (s);
    redisReply *r = orr_store_eval_args (store, s_heartbeat, 1, &args);
    orr_args_clear (&args);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        rc = (int) r->integer;
    else
        orr_warn ("node %s: heartbeat not stored: %s", hb->node,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : orr_store_error (store));
    if (r)
        freeReplyObject (r);
    if (rc > 0) {
        char *idx = orr_key_index (ORR_INDEX_NODES);
        r = orr_store_command (store, "ZADD %s %lld %s", idx, (long long) now_ms, hb->node);
        if (r)
            freeReplyObject (r);
        free (idx);
    }
    return rc;
}

int
sched_store_mark_lost (scheduler_t *s, const char *node, int64_t now_ms)
{
    char *key = orr_key_node (node);
    char *now = s_i64 (now_ms), *timeout = s_i64 (s->node_timeout_ms);
    const char *argv[] = { key, now, timeout };
    redisReply *r = orr_store_eval (scheduler_store (s), s_mark_lost, 1, 3, argv, NULL);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? (int) r->integer : -1;
    if (r)
        freeReplyObject (r);
    free (key);
    free (now);
    free (timeout);
    return rc;
}

int
sched_store_cordon (scheduler_t *s, const char *node, bool cordon, const char *reason)
{
    char *key = orr_key_node (node);
    const char *argv[] = { key, cordon ? "1" : "0", reason ? reason : "" };
    redisReply *r = orr_store_eval (scheduler_store (s), s_cordon, 1, 3, argv, NULL);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? (int) r->integer : -2;
    if (r)
        freeReplyObject (r);
    free (key);
    return rc == -1 ? -404 : rc == -2 ? -1 : rc;
}

/* --- reservations ---------------------------------------------------------------------- */

sched_reserve_t
sched_store_reserve (scheduler_t *s, sched_node_t *node, const char *id, const sched_resources_t *want,
                     const char *group, int64_t now_ms)
{
    orr_args_t args = { 0 };
    s_push_node_keys (&args, node->name);
    orr_args_push (&args, orr_strdup (id));
    orr_args_push (&args, s_i64 (want->cpu_millis));
    orr_args_push (&args, s_i64 (want->memory_bytes));
    orr_args_push (&args, s_i64 (want->gpus));
    orr_args_push (&args, s_i64 (now_ms));
    orr_args_push (&args, s_i64 (s->node_timeout_ms));
    orr_args_push (&args, s_i64 (now_ms + s->reservation_ttl_ms));
    orr_args_push (&args, orr_strdup (group ? group : ""));
    orr_store_t *store = scheduler_store (s);
    redisReply *r = orr_store_eval_args (store, s_reserve, 3, &args);
    orr_args_clear (&args);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) {
        orr_warn ("node %s: reserve failed: %s", node->name,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : orr_store_error (store));
        if (r)
            freeReplyObject (r);
        return SCHED_RESERVE_ERROR;
    }
    const char *status = r->element[0]->str;
    sched_reserve_t out = strcmp (status, "ok") == 0          ? SCHED_RESERVE_OK
                          : strcmp (status, "held") == 0      ? SCHED_RESERVE_HELD
                          : strcmp (status, "full") == 0      ? SCHED_RESERVE_FULL
                          : strcmp (status, "cordoned") == 0  ? SCHED_RESERVE_CORDONED
                          : strcmp (status, "not_ready") == 0 ? SCHED_RESERVE_NOT_READY
                                                              : SCHED_RESERVE_GONE;
    if (r->elements >= 7) {
        node->reserved.cpu_millis = s_reply_i64 (r->element[1]);
        node->reserved.memory_bytes = s_reply_i64 (r->element[2]);
        node->reserved.gpus = s_reply_i64 (r->element[3]);
        node->reserved.servers = s_reply_i64 (r->element[4]);
        node->cordoned = s_reply_i64 (r->element[5]) == 1;
        node->heartbeat_ms = s_reply_i64 (r->element[6]);
        for (size_t i = 7; i + 1 < r->elements; i += 2)
            s_forget (s, node->name, r->element[i]->str, r->element[i + 1]->str);
    }
    else if (out == SCHED_RESERVE_GONE)
        node->heartbeat_ms = 0;   /* no such node in Redis: never ready again until it beats */
    freeReplyObject (r);
    return out;
}

char *
sched_store_after_reserve (scheduler_t *s, const char *node, const char *id, const char *group, int64_t now_ms)
{
    /* one round trip for the three hint writes; the spread count and the to-do entry are
     * undone below in the rare case that another replica placed the same id first */
    orr_store_t *store = scheduler_store (s);
    char *placement = orr_key_placement (id);
    char *spread = group && *group ? orr_key_spread_group (group) : NULL;
    char *idx = orr_key_index (ORR_INDEX_RESERVATION_EXPIRY);
    char *member = s_expiry_member (node, id);
    size_t n = 0;
    n += orr_store_append (store, "SET %s %s PX %lld NX", placement, node, (long long) s->reservation_ttl_ms) == 0;
    if (spread)
        n += orr_store_append (store, "HINCRBY %s %s 1", spread, node) == 0;
    n += orr_store_append (store, "ZADD %s %lld %s", idx, (long long) (now_ms + s->reservation_ttl_ms), member) == 0;
    redisReply *replies[3] = { NULL, NULL, NULL };
    bool first = orr_store_flush_replies (store, replies, orr_store_pending (store)) == 0 && n == (spread ? 3u : 2u);
    bool raced = first && replies[0]->type == REDIS_REPLY_NIL;
    for (size_t i = 0; i < 3; i++)
        if (replies[i])
            freeReplyObject (replies[i]);
    char *holder = NULL;
    if (raced) {
        redisReply *r = orr_store_command (store, "GET %s", placement);
        if (r && r->type == REDIS_REPLY_STRING && strcmp (r->str, node) != 0) {
            holder = orr_strdup (r->str);
            orr_info ("reservation %s: placed twice at once; keeping %s, releasing %s", id, holder, node);
            sched_store_release (s, node, id);   /* also takes back the spread count and the to-do entry */
        }
        if (r)
            freeReplyObject (r);
    }
    free (member);
    free (idx);
    free (spread);
    free (placement);
    return holder ? holder : orr_strdup (node);
}

char *
sched_store_placement (scheduler_t *s, const char *id)
{
    orr_store_t *store = scheduler_store (s);
    char *placement = orr_key_placement (id);
    redisReply *r = orr_store_command (store, "GET %s", placement);
    free (placement);
    char *node = r && r->type == REDIS_REPLY_STRING ? orr_strdup (r->str) : NULL;
    if (r)
        freeReplyObject (r);
    if (!node)
        return NULL;
    char *rsv = orr_key_node_reservations (node);
    r = orr_store_command (store, "HEXISTS %s %s", rsv, id);
    free (rsv);
    bool held = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject (r);
    if (!held) {
        free (node);
        return NULL;
    }
    return node;
}

/* Runs a {1, group} / {0} script for one reservation. */
static int
s_give_back (scheduler_t *s, const orr_script_t *script, const char *node, const char *id, const char *now)
{
    orr_args_t args = { 0 };
    s_push_node_keys (&args, node);
    orr_args_push (&args, orr_strdup (id));
    if (now)
        orr_args_push (&args, orr_strdup (now));
    redisReply *r = orr_store_eval_args (scheduler_store (s), script, 3, &args);
    orr_args_clear (&args);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        rc = (int) s_reply_i64 (r->element[0]);
        if (rc == 1)
            s_forget (s, node, id, r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    }
    if (r)
        freeReplyObject (r);
    return rc;
}

int
sched_store_release (scheduler_t *s, const char *node, const char *id)
{
    return s_give_back (s, s_release, node, id, NULL);
}

int
sched_store_bind (scheduler_t *s, const char *node, const char *id)
{
    orr_args_t args = { 0 };
    s_push_node_keys (&args, node);
    orr_args_push (&args, orr_strdup (id));
    orr_store_t *store = scheduler_store (s);
    redisReply *r = orr_store_eval_args (store, s_bind, 3, &args);
    orr_args_clear (&args);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? (int) r->integer : -1;
    if (r)
        freeReplyObject (r);
    if (rc == 1) {
        char *placement = orr_key_placement (id);
        r = orr_store_command (store, "SET %s %s", placement, node);
        if (r)
            freeReplyObject (r);
        free (placement);
        char *idx = orr_key_index (ORR_INDEX_RESERVATION_EXPIRY);
        char *member = s_expiry_member (node, id);
        r = orr_store_command (store, "ZREM %s %s", idx, member);
        if (r)
            freeReplyObject (r);
        free (member);
        free (idx);
    }
    return rc;
}

int
sched_store_expire (scheduler_t *s, int64_t now_ms, int max)
{
    orr_store_t *store = scheduler_store (s);
    char *idx = orr_key_index (ORR_INDEX_RESERVATION_EXPIRY);
    redisReply *due = orr_store_command (store, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d", idx, (long long) now_ms, max);
    int expired = 0;
    char *now = s_i64 (now_ms);
    for (size_t i = 0; due && due->type == REDIS_REPLY_ARRAY && i < due->elements; i++) {
        const char *member = due->element[i]->str;
        const char *nl = strchr (member, '\n');
        if (nl) {
            char *node = orr_strndup (member, (size_t) (nl - member));
            int rc = s_give_back (s, s_expire, node, nl + 1, now);
            if (rc == 1) {
                expired++;
                orr_info ("reservation %s on %s expired: its server never started", nl + 1, node);
            }
            free (node);
            if (rc < 0)
                continue;   /* Redis trouble: keep the to-do entry for the next sweep */
        }
        redisReply *r = orr_store_command (store, "ZREM %s %s", idx, member);
        if (r)
            freeReplyObject (r);
    }
    if (due)
        freeReplyObject (due);
    free (now);
    free (idx);
    return expired;
}

char *
sched_store_lookup (scheduler_t *s, const char *id, const char *group, redisReply **spread)
{
    /* one round trip: the placement record and the group's spread counts */
    orr_store_t *store = scheduler_store (s);
    *spread = NULL;
    char *placement = orr_key_placement (id);
    orr_store_append (store, "GET %s", placement);
    free (placement);
    if (group && *group) {
        char *key = orr_key_spread_group (group);
        orr_store_append (store, "HGETALL %s", key);
        free (key);
    }
    redisReply *r[2] = { NULL, NULL };
    size_t n = orr_store_pending (store);
    if (orr_store_flush_replies (store, r, n) != 0)
        return NULL;
    if (n == 2)
        *spread = r[1];
    char *node = r[0]->type == REDIS_REPLY_STRING ? orr_strdup (r[0]->str) : NULL;
    freeReplyObject (r[0]);
    if (!node)
        return NULL;
    /* the record is a hint: the reservation itself must still be there */
    char *rsv = orr_key_node_reservations (node);
    redisReply *held = orr_store_command (store, "HEXISTS %s %s", rsv, id);
    free (rsv);
    if (!held || held->type != REDIS_REPLY_INTEGER || held->integer != 1) {
        free (node);
        node = NULL;
    }
    if (held)
        freeReplyObject (held);
    return node;
}

void
sched_store_group_counts (scheduler_t *s, const redisReply *spread, sched_node_t *const *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nodes[i]->group_count = 0;
    for (size_t i = 0; spread && spread->type == REDIS_REPLY_ARRAY && i + 1 < spread->elements; i += 2) {
        sched_node_t *node = sched_cache_find (s->cache, spread->element[i]->str);
        if (node)
            node->group_count = (int) s_reply_i64 (spread->element[i + 1]);
    }
}

/* --- reading nodes --------------------------------------------------------------------- */

#define REFRESH_BATCH 1000

static void
s_node_from_hash (sched_node_t *node, const redisReply *h)
{
    node->capacity = (sched_resources_t) { s_field_i64 (h, "cap_cpu"), s_field_i64 (h, "cap_mem"),
                                           s_field_i64 (h, "cap_gpus"), s_field_i64 (h, "cap_servers") };
    node->reserved = (sched_resources_t) { s_field_i64 (h, "res_cpu"), s_field_i64 (h, "res_mem"),
                                           s_field_i64 (h, "res_gpus"), s_field_i64 (h, "res_servers") };
    node->usage = (sched_resources_t) { s_field_i64 (h, "use_cpu"), s_field_i64 (h, "use_mem"),
                                        s_field_i64 (h, "use_gpus"), s_field_i64 (h, "use_servers") };
    node->cordoned = s_field_i64 (h, "cordoned") == 1;
    node->heartbeat_ms = s_field_i64 (h, "hb_ms");
    node->lost_marked = s_field_i64 (h, "lost") == 1;
    size_t nl = 0, nt = 0;
    sched_label_t *labels = sched_labels_decode (orr_reply_field (h, "labels", ""), &nl);
    sched_taint_t *taints = sched_taints_decode (orr_reply_field (h, "taints", ""), &nt);
    sched_node_set_meta (node, labels, nl, taints, nt);
    sched_labels_free (labels, nl);
    sched_taints_free (taints, nt);
}

/* HGETALL of names[0..n-1], pipelined in batches; calls fn for each existing node. */
static int
s_each_hash (scheduler_t *s, char **names, size_t n, void (*fn) (void *, const char *, const redisReply *), void *ctx)
{
    orr_store_t *store = scheduler_store (s);
    redisReply **replies = orr_zalloc (REFRESH_BATCH * sizeof *replies);
    int rc = 0;
    for (size_t base = 0; base < n && rc == 0; base += REFRESH_BATCH) {
        size_t m = n - base < REFRESH_BATCH ? n - base : REFRESH_BATCH;
        for (size_t i = 0; i < m; i++) {
            char *key = orr_key_node (names[base + i]);
            orr_store_append (store, "HGETALL %s", key);
            free (key);
        }
        if (orr_store_flush_replies (store, replies, m) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < m; i++) {
            if (replies[i]->type == REDIS_REPLY_ARRAY && replies[i]->elements > 0)
                fn (ctx, names[base + i], replies[i]);
            freeReplyObject (replies[i]);
        }
    }
    free (replies);
    return rc;
}

/* Node names from the index (caller frees with orr_strv_free-compatible free). */
static char **
s_index_names (scheduler_t *s, size_t *n)
{
    *n = 0;
    char *idx = orr_key_index (ORR_INDEX_NODES);
    redisReply *r = orr_store_command (scheduler_store (s), "ZRANGE %s 0 -1", idx);
    free (idx);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return NULL;
    }
    char **names = orr_zalloc ((r->elements + 1) * sizeof *names);
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            names[(*n)++] = orr_strdup (r->element[i]->str);
    freeReplyObject (r);
    return names;
}

static void
s_refresh_one (void *ctx, const char *name, const redisReply *h)
{
    scheduler_t *s = ctx;
    sched_node_t *node = sched_cache_find (s->cache, name);
    if (!node) {
        if ((long) sched_cache_count (s->cache) >= s->max_nodes)
            return;
        node = sched_cache_upsert (s->cache, name);
    }
    s_node_from_hash (node, h);
}

int
sched_store_refresh (scheduler_t *s)
{
    size_t n = 0;
    char **names = s_index_names (s, &n);
    if (!names)
        return -1;
    int rc = s_each_hash (s, names, n, s_refresh_one, s);
    orr_strv_free (&names);
    return rc;
}

int
sched_store_refresh_node (scheduler_t *s, const char *name)
{
    char *names[1] = { (char *) name };
    return s_each_hash (s, names, 1, s_refresh_one, s);
}

static Orrery__Resources *
s_resources (int64_t cpu, int64_t mem, int64_t gpus, int64_t servers)
{
    Orrery__Resources *r = orr_zalloc (sizeof *r);
    orrery__resources__init (r);
    r->cpu_millis = cpu;
    r->memory_bytes = mem;
    r->gpus = (int32_t) gpus;
    r->servers = (int32_t) servers;
    return r;
}

static void
s_add_info (void *ctx, const char *name, const redisReply *h)
{
    Orrery__NodeList *list = ctx;
    Orrery__NodeInfo *info = orr_zalloc (sizeof *info);
    orrery__node_info__init (info);
    info->name = orr_strdup (name);
    info->capacity = s_resources (s_field_i64 (h, "cap_cpu"), s_field_i64 (h, "cap_mem"), s_field_i64 (h, "cap_gpus"),
                                  s_field_i64 (h, "cap_servers"));
    info->reserved = s_resources (s_field_i64 (h, "res_cpu"), s_field_i64 (h, "res_mem"), s_field_i64 (h, "res_gpus"),
                                  s_field_i64 (h, "res_servers"));
    info->usage = s_resources (s_field_i64 (h, "use_cpu"), s_field_i64 (h, "use_mem"), s_field_i64 (h, "use_gpus"),
                               s_field_i64 (h, "use_servers"));
    size_t nl = 0, nt = 0;
    sched_label_t *labels = sched_labels_decode (orr_reply_field (h, "labels", ""), &nl);
    sched_taint_t *taints = sched_taints_decode (orr_reply_field (h, "taints", ""), &nt);
    info->labels = nl ? orr_zalloc (nl * sizeof *info->labels) : NULL;
    for (size_t i = 0; i < nl; i++) {
        info->labels[i] = orr_zalloc (sizeof *info->labels[i]);
        orrery__label__init (info->labels[i]);
        info->labels[i]->key = labels[i].key;       /* ownership moves to the message */
        info->labels[i]->value = labels[i].value;
    }
    info->n_labels = nl;
    info->taints = nt ? orr_zalloc (nt * sizeof *info->taints) : NULL;
    for (size_t i = 0; i < nt; i++) {
        info->taints[i] = orr_zalloc (sizeof *info->taints[i]);
        orrery__taint__init (info->taints[i]);
        info->taints[i]->key = taints[i].key;
        info->taints[i]->value = taints[i].value;
        info->taints[i]->effect = orr_strdup (sched_effect_name (taints[i].effect));
    }
    info->n_taints = nt;
    free (labels);
    free (taints);
    info->cordoned = s_field_i64 (h, "cordoned") == 1;
    info->cordon_reason = orr_strdup (orr_reply_field (h, "cordon_reason", ""));
    info->heartbeat_time_us = s_field_i64 (h, "hb_ms") * 1000;
    info->registered_time_us = s_field_i64 (h, "registered_ms") * 1000;
    info->agent = orr_strdup (orr_reply_field (h, "agent", ""));
    list->nodes = orr_realloc (list->nodes, (list->n_nodes + 1) * sizeof *list->nodes);
    list->nodes[list->n_nodes++] = info;
}

int
sched_store_nodes (scheduler_t *s, const char *name, Orrery__NodeList *out)
{
    orrery__node_list__init (out);
    char *one[2] = { (char *) name, NULL };
    size_t n = 1;
    char **names = name && *name ? one : s_index_names (s, &n);
    if (!names)
        return -1;
    int rc = s_each_hash (s, names, n, s_add_info, out);
    if (names != one)
        orr_strv_free (&names);
    if (rc != 0)
        return -1;
    int64_t now_ms = orr_now_us () / 1000;
    for (size_t i = 0; i < out->n_nodes; i++)
        out->nodes[i]->ready = out->nodes[i]->heartbeat_time_us > 0
                               && now_ms - out->nodes[i]->heartbeat_time_us / 1000 <= s->node_timeout_ms;
    return name && *name && out->n_nodes == 0 ? 404 : 0;
}

void
sched_node_list_free (Orrery__NodeList *list)
{
    for (size_t i = 0; i < list->n_nodes; i++) {
        Orrery__NodeInfo *info = list->nodes[i];
        free (info->name);
        free (info->capacity);
        free (info->reserved);
        free (info->usage);
        for (size_t j = 0; j < info->n_labels; j++) {
            free (info->labels[j]->key);
            free (info->labels[j]->value);
            free (info->labels[j]);
        }
        free (info->labels);
        for (size_t j = 0; j < info->n_taints; j++) {
            free (info->taints[j]->key);
            free (info->taints[j]->value);
            free (info->taints[j]->effect);
            free (info->taints[j]);
        }
        free (info->taints);
        free (info->cordon_reason);
        free (info->agent);
        free (info);
    }
    free (list->nodes);
    list->nodes = NULL;
    list->n_nodes = 0;
}
