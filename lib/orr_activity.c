/*  orr_activity: the one writer of orr:{u:U}:activity (see orr_activity.h).
 *
 *  The script compares numerically: microseconds since the epoch stay below 2^53 until
 *  the year 2255, so Lua's doubles hold them exactly. A stored value that is not a number
 *  (never written by this file) is replaced. The script object is made once per process
 *  and shared by every thread (scripts are immutable).
 */
#include "orr_activity.h"
#include "orr_keys.h"
#include "orr_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* KEYS[1] the user's activity hash; ARGV[1] server name, ARGV[2] µs. 1 written, 0 not newer. */
static const char *s_lua_record
    = "local cur = tonumber (redis.call ('HGET', KEYS[1], ARGV[1]) or '')\n"
      "if cur and cur >= tonumber (ARGV[2]) then return 0 end\n"
      "redis.call ('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
      "return 1\n";

static orr_script_t *s_record;
static pthread_once_t s_record_once = PTHREAD_ONCE_INIT;

static void
s_record_make (void)
{
    s_record = orr_script_new ("activity.record", s_lua_record);
}

int
orr_activity_record (orr_store_t *store, const char *user, const char *server, int64_t us)
{
    if (us <= 0)
        return -1;
    pthread_once (&s_record_once, s_record_make);
    char *key = orr_key_user_activity (user);
    char value[32];
    snprintf (value, sizeof value, "%" PRId64, us);
    const char *argv[] = { key, server ? server : "", value };
    redisReply *reply = orr_store_eval (store, s_record, 1, 3, argv, NULL);
    free (key);
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? (int) reply->integer : -1;
    if (reply)
        freeReplyObject (reply);
    return rc;
}

int
orr_activity_get (orr_store_t *store, const char *user, const char *server, int64_t *us)
{
    *us = 0;
    char *key = orr_key_user_activity (user);
    redisReply *reply = orr_store_command (store, "HGET %s %s", key, server ? server : "");
    free (key);
    int rc = reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL) ? 0 : -1;
    if (rc == 0 && reply->type == REDIS_REPLY_STRING)
        *us = strtoll (reply->str, NULL, 10);
    if (reply)
        freeReplyObject (reply);
    return rc;
}
