/*  table: the route table in Redis, the source of truth every proxy is made equal to.
 *
 *    orr:{routes}:table   hash  canonical path -> {"target","user","server","created_us"}
 *    orr:{u:U}:activity   hash  server name -> last activity (µs), read here for replies
 *
 *  Writes are Lua scripts so that any number of proxyctl replicas may add and delete at
 *  once: the add script compares with what is stored (a repeat keeps its created_us and
 *  reports "already there", so only real changes are announced) and enforces ROUTES_MAX
 *  in the same atomic step; the delete script reports whether it removed anything. The
 *  route's JSON is built in C (64-bit created_us must never pass through a Lua double);
 *  the scripts only compare target, user and server.
 */
#include "proxyctl.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

/* KEYS[1] table; ARGV path, json, target, user, server, routes_max.
 * -> {1, json} written, {0, stored json} already there, {-2, ""} table full. */
static const char *s_lua_add
    = "local cur = redis.call ('HGET', KEYS[1], ARGV[1])\n"
      "if cur then\n"
      "  local ok, r = pcall (cjson.decode, cur)\n"
      "  if ok and type (r) == 'table' and r.target == ARGV[3] and r.user == ARGV[4] and r.server == ARGV[5] then\n"
      "    return {0, cur}\n"
      "  end\n"
      "elseif redis.call ('HLEN', KEYS[1]) >= tonumber (ARGV[6]) then\n"
      "  return {-2, ''}\n"
      "end\n"
      "redis.call ('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
      "return {1, ARGV[2]}\n";

static orr_script_t *s_add;

int
table_init (void)
{
    s_add = orr_script_new ("proxyctl.route_add", s_lua_add);
    return 0;
}

void
table_fini (void)
{
    orr_script_destroy (&s_add);
}

orr_store_t *
table_store (proxyctl_t *self)
{
    return orr_store_thread (self->redis_url);
}

int
table_read (proxyctl_t *self, route_table_t *out)
{
    memset (out, 0, sizeof *out);
    char *key = orr_key_routes ();
    redisReply *reply = orr_store_command (table_store (self), "HGETALL %s", key);
    free (key);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply)
            freeReplyObject (reply);
        return -1;
    }
    out->v = orr_zalloc ((reply->elements / 2 + 1) * sizeof *out->v);
    size_t skipped = 0;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *path = reply->element[i], *json = reply->element[i + 1];
        if (path->type == REDIS_REPLY_STRING && json->type == REDIS_REPLY_STRING
            && route_decode (path->str, json->str, &out->v[out->n]) == 0)
            out->n++;
        else
            skipped++;
    }
    if (skipped)
        orr_debug ("%zu entries of the route table are not routes; ignored", skipped);
    freeReplyObject (reply);
    route_table_sort (out);
    return 0;
}

int
table_add (proxyctl_t *self, const route_t *want, route_t *stored)
{
    memset (stored, 0, sizeof *stored);
    char *key = orr_key_routes ();
    char *json = route_encode (want);
    char *max = orr_sprintf ("%ld", self->routes_max);
    const char *argv[] = { key, want->path, json, want->target, want->user, want->server, max };
    redisReply *reply = orr_store_eval (table_store (self), s_add, 1, 7, argv, NULL);
    int rc = -1;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_STRING) {
        rc = (int) reply->element[0]->integer;
        if (rc >= 0 && route_decode (want->path, reply->element[1]->str, stored) != 0)
            *stored = route_copy (want);   /* an entry written by hand, without created_us */
    }
    else if (reply && reply->type == REDIS_REPLY_ERROR)
        orr_warn ("route add script: %s", reply->str);
    if (reply)
        freeReplyObject (reply);
    free (key);
    free (json);
    free (max);
    return rc;
}

int
table_delete (proxyctl_t *self, const char *path)
{
    char *key = orr_key_routes ();
    redisReply *reply = orr_store_command (table_store (self), "HDEL %s %s", key, path);
    free (key);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? (reply->integer > 0) : -1;
    if (reply)
        freeReplyObject (reply);
    return rc;
}

int
table_activity (proxyctl_t *self, const route_t *routes, size_t n, int64_t *out)
{
    orr_store_t *store = table_store (self);
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        if (!*routes[i].user)
            continue;
        char *key = orr_key_user_activity (routes[i].user);
        orr_store_append (store, "HGET %s %s", key, routes[i].server);   /* a failure poisons the flush */
        free (key);
        queued++;
    }
    if (queued == 0)
        return 0;
    redisReply **replies = orr_zalloc (queued * sizeof *replies);
    int rc = orr_store_flush_replies (store, replies, queued);
    for (size_t i = 0, k = 0; rc == 0 && i < n; i++) {
        if (!*routes[i].user)
            continue;
        if (replies[k]->type == REDIS_REPLY_STRING)
            out[i] = strtoll (replies[k]->str, NULL, 10);
        freeReplyObject (replies[k++]);
    }
    free (replies);
    return rc;
}
