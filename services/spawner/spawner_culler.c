/*  spawner_culler: stops idle servers (and optionally deletes idle users). See the header.
 *
 *  The round runs on the service loop's timer. Its lock is a plain SET NX PX with this
 *  replica's holder id and a life of one interval: the replicas race once per interval
 *  and one walks. Stopping goes through srec_stop, the same atomic script as the stop
 *  method, so a user's own stop and the culler's cannot both act on one server.
 */
#include "spawner_culler.h"
#include "orr_bus_client.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_rpc.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"
#include "orrery/events.pb-c.h"
#include "spawner_records.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CULL_BATCH_MAX 100000        /* servers looked at per round */
#define CULL_CHUNK 256               /* servers read per pipelined round trip */

struct spawner_culler_t {
    orr_service_t *svc;
    char *redis_url;
    char *holder;
    int64_t timeout_us, max_age_us, every_ms;
    bool cull_users;
    orr_bus_opts_t bus_opts;
    orr_bus_client_t *bus;
    void (*poke) (void *);
    void *poke_ctx;
};

static void
s_publish_stopping (spawner_culler_t *self, const char *user, const char *server)
{
    Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
    ev.user = (char *) user;
    ev.server = (char *) server;
    ev.state = "pending_stop";
    ev.message = "Server stopping (idle)";
    ev.time_us = orr_now_us ();
    orr_service_publish_msg (self->svc, "server.stopping", &ev.base);
}

/* Deletes a user with no server left whose last activity is older than the timeout. */
static void
s_cull_user (spawner_culler_t *self, orr_store_t *store, const char *user, int64_t now_us)
{
    char *key = orr_key_user (user);
    redisReply *r = orr_store_command (store, "HMGET %s admin last_activity created", key);
    free (key);
    bool idle = false;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[1]->type != REDIS_REPLY_NIL) {
        bool admin = r->element[0]->type == REDIS_REPLY_STRING && strcmp (r->element[0]->str, "1") == 0;
        int64_t last = strtoll (r->element[1]->str, NULL, 10);
        idle = !admin && last > 0 && now_us - last > self->timeout_us;
    }
    if (r)
        freeReplyObject (r);
    if (!idle)
        return;
    char *servers = orr_key_user_servers (user);
    size_t n = 0;
    r = orr_store_command (store, "SMEMBERS %s", servers);
    free (servers);
    bool any_active = false;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        srec_t rec;
        if (srec_read (store, user, r->element[i]->str, &rec) == SREC_OK) {
            any_active |= *rec.state && strcmp (rec.state, "stopped") != 0 && strcmp (rec.state, "failed") != 0;
            srec_clear (&rec);
        }
        n++;
    }
    if (r)
        freeReplyObject (r);
    if (any_active)
        return;
    Orrery__UserDelete del = ORRERY__USER_DELETE__INIT;
    del.name = (char *) user;
    char err[256];
    if (orr_rpc_call_msg (self->bus, "auth", "user.delete", &del.base, NULL, NULL, err, sizeof err) == 200)
        orr_info ("culler: deleted idle user %s", user);
    else
        orr_warn ("culler: deleting idle user %s: %s", user, err);
}

static void
s_round (void *ctx)
{
    spawner_culler_t *self = ctx;
    orr_store_t *store = orr_store_thread (self->redis_url);
    char *lock = orr_key_index (ORR_INDEX_CULLER_LOCK);
    redisReply *r = orr_store_command (store, "SET %s %s NX PX %lld", lock, self->holder,
                                       (long long) (self->every_ms > 200 ? self->every_ms - 100 : self->every_ms));
    free (lock);
    bool won = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject (r);
    if (!won)
        return;
    size_t n;
    char **active = srec_active (store, &n);
    if (n > CULL_BATCH_MAX)
        n = CULL_BATCH_MAX;
    int64_t now = orr_now_us ();
    int stopped = 0;
    /* state, ready time and activity of CULL_CHUNK servers per round trip: a round over
     * thousands of servers must not hold the loop that answers spawn and stop */
    for (size_t base = 0; base < n; base += CULL_CHUNK) {
        size_t m = n - base < CULL_CHUNK ? n - base : CULL_CHUNK;
        char *users[CULL_CHUNK], *servers[CULL_CHUNK];
        size_t k = 0;
        for (size_t i = 0; i < m; i++) {
            if (!srec_member_split (active[base + i], &users[k], &servers[k]))
                continue;
            char *key = orr_key_server (users[k], servers[k]);
            char *act = orr_key_user_activity (users[k]);
            orr_store_append (store, "HMGET %s state ready_us", key);
            orr_store_append (store, "HGET %s %s", act, servers[k]);
            free (key);
            free (act);
            k++;
        }
        redisReply *replies[2 * CULL_CHUNK];
        bool got = orr_store_flush_replies (store, replies, 2 * k) == 0;
        for (size_t i = 0; i < k; i++) {
            redisReply *rec = got ? replies[2 * i] : NULL, *a = got ? replies[2 * i + 1] : NULL;
            bool ready = rec && rec->type == REDIS_REPLY_ARRAY && rec->elements == 2
                         && rec->element[0]->type == REDIS_REPLY_STRING && strcmp (rec->element[0]->str, "ready") == 0;
            int64_t ready_us = ready && rec->element[1]->type == REDIS_REPLY_STRING
                               ? strtoll (rec->element[1]->str, NULL, 10) : 0;
            int64_t activity = a && a->type == REDIS_REPLY_STRING ? strtoll (a->str, NULL, 10) : 0;
            if (ready && a && a->type != REDIS_REPLY_ERROR) {
                int64_t last = activity > ready_us ? activity : ready_us;
                bool idle = self->timeout_us > 0 && last > 0 && now - last > self->timeout_us;
                bool old = self->max_age_us > 0 && ready_us > 0 && now - ready_us > self->max_age_us;
                srec_answer_t ans;
                if ((idle || old) && srec_stop (store, users[i], servers[i], false, &ans) == SREC_OK && ans.changed) {
                    orr_info ("culler: stopping %s/%s (%s %lld s)", users[i], servers[i],
                              idle ? "idle for" : "running for",
                              (long long) ((now - (idle ? last : ready_us)) / 1000000));
                    s_publish_stopping (self, users[i], servers[i]);
                    stopped++;
                }
            }
            if (rec)
                freeReplyObject (rec);
            if (a)
                freeReplyObject (a);
            free (users[i]);
            free (servers[i]);
        }
    }
    orr_strv_free (&active);
    if (stopped && self->poke)
        self->poke (self->poke_ctx);
    if (!self->cull_users)
        return;
    char *users_key = orr_key_index (ORR_INDEX_USERS);
    r = orr_store_command (store, "ZRANGE %s 0 -1", users_key);
    free (users_key);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        s_cull_user (self, store, r->element[i]->str, now);
    if (r)
        freeReplyObject (r);
}

spawner_culler_t *
spawner_culler_new (orr_service_t *svc, orr_config_t *config, const char *holder, void (*poke) (void *),
                    void *poke_ctx, int *rc)
{
    *rc = 0;
    int64_t timeout = orr_config_int (config, "CULL_IDLE_TIMEOUT_S");
    int64_t every = orr_config_int (config, "CULL_EVERY_S");
    int64_t max_age = orr_config_int (config, "CULL_MAX_AGE_S");
    if (timeout < 0 || every < 0 || max_age < 0) {
        orr_error ("CULL_IDLE_TIMEOUT_S, CULL_EVERY_S and CULL_MAX_AGE_S must be >= 0");
        *rc = 2;
        return NULL;
    }
    if (timeout == 0 && max_age == 0)
        return NULL;
    spawner_culler_t *self = orr_zalloc (sizeof *self);
    self->svc = svc;
    self->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    self->holder = orr_strdup (holder);
    self->timeout_us = timeout * 1000000;
    self->max_age_us = max_age * 1000000;
    int64_t base = timeout ? timeout : max_age;
    self->every_ms = (every ? every : (base / 2 > 0 ? base / 2 : 1)) * 1000;
    const char *users = orr_config_get (config, "CULL_USERS");
    self->cull_users = users && (strcmp (users, "1") == 0 || strcasecmp (users, "true") == 0);
    self->poke = poke;
    self->poke_ctx = poke_ctx;
    if (orr_bus_opts_from_config (&self->bus_opts, config) != 0 || !(self->bus = orr_bus_client_new (&self->bus_opts))) {
        spawner_culler_destroy (&self);
        *rc = 2;
        return NULL;
    }
    orr_service_every (svc, (int) self->every_ms, s_round, self);
    orr_info ("culler: servers idle for %lld s%s are stopped; looking every %lld ms", (long long) timeout,
              self->cull_users ? " (and idle users deleted)" : "", (long long) self->every_ms);
    return self;
}

void
spawner_culler_destroy (spawner_culler_t **self_p)
{
    spawner_culler_t *self = *self_p;
    if (!self)
        return;
    orr_bus_client_destroy (&self->bus);
    orr_bus_opts_clear (&self->bus_opts);
    free (self->redis_url);
    free (self->holder);
    free (self);
    *self_p = NULL;
}
