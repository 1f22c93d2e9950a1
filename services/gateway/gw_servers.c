/*  gw_servers: reading the spawner's server records (gw_servers.h).
 *
 *  Round trips are the cost that matters: a page of 200 users is read in two pipelines
 *  (every user's server names and activity hash, then every record), one server in one.
 *  Field names follow docs/spawner.md; a field the spawner has not written reads as
 *  empty or 0.
 */
#include "gw_servers.h"
#include "orr_keys.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

static int64_t
s_int (const redisReply *hash, const char *field)
{
    return strtoll (orr_reply_field (hash, field, "0"), NULL, 10);
}

/* Fills s (named `name`) from an HGETALL reply of its record and its activity. */
static void
s_fill (gw_server_t *s, const char *name, const redisReply *rec, int64_t activity_us)
{
    memset (s, 0, sizeof *s);
    s->name = orr_strdup (name);
    s->last_activity_us = activity_us;
    s->message = orr_strdup ("");
    s->reason = orr_strdup ("");
    if (!rec || rec->type != REDIS_REPLY_ARRAY || rec->elements == 0)
        return;
    snprintf (s->state, sizeof s->state, "%s", orr_reply_field (rec, "state", "stopped"));
    const char *opts = orr_reply_field (rec, "user_options", "");
    s->user_options = *opts ? orr_strdup (opts) : NULL;
    free (s->message);
    free (s->reason);
    s->message = orr_strdup (orr_reply_field (rec, "message", ""));
    s->reason = orr_strdup (orr_reply_field (rec, "reason", ""));
    s->progress = (int) s_int (rec, "progress");
    s->started_us = s_int (rec, "started_us");
    s->pid = (long) s_int (rec, "pid");
}

/* The activity of `server` in an HGETALL reply of the activity hash (0 when none). */
static int64_t
s_activity (const redisReply *h, const char *server)
{
    return h && h->type == REDIS_REPLY_ARRAY ? s_int (h, server) : 0;
}

int
gw_server_load (gw_t *gw, const char *user, const char *server, gw_server_t *out)
{
    orr_store_t *store = gw_store (gw);
    char *rk = orr_key_server (user, server), *ak = orr_key_user_activity (user);
    orr_store_append (store, "HGETALL %s", rk);
    orr_store_append (store, "HGET %s %s", ak, server);
    free (rk);
    free (ak);
    redisReply *r[2] = { NULL, NULL };
    int rc = -1;
    if (orr_store_flush_replies (store, r, 2) == 0 && r[0]->type == REDIS_REPLY_ARRAY) {
        int64_t activity = r[1]->type == REDIS_REPLY_STRING ? strtoll (r[1]->str, NULL, 10) : 0;
        s_fill (out, server, r[0], activity);
        rc = out->state[0] ? 1 : 0;
    }
    else
        memset (out, 0, sizeof *out);
    for (int i = 0; i < 2; i++)
        if (r[i])
            freeReplyObject (r[i]);
    return rc;
}

static int
s_by_name (const void *a, const void *b)
{
    return strcmp (((const gw_server_t *) a)->name, ((const gw_server_t *) b)->name);
}

int
gw_servers_load_many (gw_t *gw, const char *const *users, size_t n, gw_servers_t *out)
{
    memset (out, 0, n * sizeof *out);
    if (n == 0)
        return 0;
    orr_store_t *store = gw_store (gw);
    for (size_t i = 0; i < n; i++) {
        char *sk = orr_key_user_servers (users[i]), *ak = orr_key_user_activity (users[i]);
        orr_store_append (store, "SMEMBERS %s", sk);
        orr_store_append (store, "HGETALL %s", ak);
        free (sk);
        free (ak);
    }
    redisReply **first = orr_zalloc (2 * n * sizeof *first);
    int rc = orr_store_flush_replies (store, first, 2 * n);
    size_t total = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (first[2 * i]->type != REDIS_REPLY_ARRAY)
            rc = -1;
        else
            total += first[2 * i]->elements;
    }
    redisReply **recs = NULL;
    if (rc == 0 && total) {
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < first[2 * i]->elements; k++) {
                char *rk = orr_key_server (users[i], first[2 * i]->element[k]->str);
                orr_store_append (store, "HGETALL %s", rk);
                free (rk);
            }
        recs = orr_zalloc (total * sizeof *recs);
        rc = orr_store_flush_replies (store, recs, total);
    }
    size_t j = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *names = first[2 * i];
        out[i].items = orr_zalloc ((names->elements + 1) * sizeof (gw_server_t));
        for (size_t k = 0; k < names->elements; k++, j++) {
            const char *name = names->element[k]->str;
            gw_server_t s;
            s_fill (&s, name, recs[j], s_activity (first[2 * i + 1], name));
            if (s.state[0])
                out[i].items[out[i].n++] = s;
            else
                gw_server_clear (&s);   /* listed but its record is gone (being removed) */
        }
        qsort (out[i].items, out[i].n, sizeof (gw_server_t), s_by_name);
    }
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            gw_servers_clear (&out[i]);
    for (size_t i = 0; i < 2 * n; i++)
        if (first[i])
            freeReplyObject (first[i]);
    for (size_t i = 0; recs && i < total; i++)
        if (recs[i])
            freeReplyObject (recs[i]);
    free (first);
    free (recs);
    return rc;
}

void
gw_server_clear (gw_server_t *s)
{
    free (s->name);
    free (s->user_options);
    free (s->message);
    free (s->reason);
    memset (s, 0, sizeof *s);
}

void
gw_servers_clear (gw_servers_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        gw_server_clear (&s->items[i]);
    free (s->items);
    memset (s, 0, sizeof *s);
}

const gw_server_t *
gw_servers_find (const gw_servers_t *s, const char *name)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp (s->items[i].name, name) == 0)
            return &s->items[i];
    return NULL;
}

bool
gw_server_is (const gw_server_t *s, const char *state)
{
    return s && strcmp (s->state, state) == 0;
}

bool
gw_server_ready (const gw_server_t *s)
{
    return gw_server_is (s, "ready");
}

const char *
gw_server_pending (const gw_server_t *s)
{
    if (gw_server_is (s, "queued") || gw_server_is (s, "pending_spawn"))
        return "spawn";
    if (gw_server_is (s, "pending_stop"))
        return "stop";
    return NULL;
}

bool
gw_server_active (const gw_server_t *s)
{
    return gw_server_ready (s) || gw_server_pending (s);
}

char *
gw_server_url (gw_t *gw, const char *user, const char *server)
{
    char *u = orr_url_quote (user), *s = orr_url_quote (server ? server : "");
    char *out = orr_sprintf ("%suser/%s/%s%s", gw->base_url, u, s, *s ? "/" : "");
    free (u);
    free (s);
    return out;
}

char *
gw_server_progress_url (gw_t *gw, const char *user, const char *server)
{
    char *u = orr_url_quote (user), *s = orr_url_quote (server ? server : "");
    char *out = *s ? orr_sprintf ("%shub/api/users/%s/servers/%s/progress", gw->base_url, u, s)
                   : orr_sprintf ("%shub/api/users/%s/server/progress", gw->base_url, u);
    free (u);
    free (s);
    return out;
}

char *
gw_server_page_url (gw_t *gw, const char *page, const char *user, const char *server)
{
    char *u = orr_url_quote (user), *s = orr_url_quote (server ? server : "");
    char *out = orr_sprintf ("%shub/%s/%s%s%s", gw->base_url, page, u, *s ? "/" : "", s);
    free (u);
    free (s);
    return out;
}

char *
gw_server_label (const char *user, const char *server)
{
    return server && *server ? orr_sprintf ("%s:%s", user, server) : orr_strdup (user);
}

int
gw_server_queue_position (gw_t *gw, const char *user, const char *server, long *position, long *total)
{
    *position = *total = 0;
    orr_store_t *store = gw_store (gw);
    char *qk = orr_key_index (ORR_INDEX_SPAWN_QUEUE);
    char *member = orr_sprintf ("%s\n%s", user, server ? server : "");
    orr_store_append (store, "ZRANK %s %s", qk, member);
    orr_store_append (store, "ZCARD %s", qk);
    free (qk);
    free (member);
    redisReply *r[2] = { NULL, NULL };
    int rc = orr_store_flush_replies (store, r, 2);
    if (rc == 0 && r[1]->type == REDIS_REPLY_INTEGER) {
        *position = r[0]->type == REDIS_REPLY_INTEGER ? (long) r[0]->integer + 1 : 0;
        *total = (long) r[1]->integer;
    }
    else
        rc = -1;
    for (int i = 0; i < 2; i++)
        if (r[i])
            freeReplyObject (r[i]);
    return rc;
}

int
gw_servers_active_users (gw_t *gw, zhashx_t **active, zhashx_t **ready)
{
    *active = zhashx_new ();
    *ready = zhashx_new ();
    orr_store_t *store = gw_store (gw);
    char *ak = orr_key_index (ORR_INDEX_ACTIVE);
    redisReply *members = orr_store_command (store, "SMEMBERS %s", ak);
    free (ak);
    if (!members || members->type != REDIS_REPLY_ARRAY) {
        if (members)
            freeReplyObject (members);
        zhashx_destroy (active);
        zhashx_destroy (ready);
        return -1;
    }
    size_t n = members->elements;
    char **users = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        const char *m = members->element[i]->str;
        const char *nl = strchr (m, '\n');
        users[i] = nl ? orr_strndup (m, (size_t) (nl - m)) : NULL;
        if (users[i]) {
            char *rk = orr_key_server (users[i], nl + 1);
            orr_store_append (store, "HGET %s state", rk);
            free (rk);
        }
    }
    size_t asked = orr_store_pending (store);
    redisReply **states = orr_zalloc ((asked + 1) * sizeof *states);
    int rc = asked ? orr_store_flush_replies (store, states, asked) : 0;
    for (size_t i = 0, k = 0; rc == 0 && i < n; i++) {
        if (!users[i])
            continue;
        const redisReply *st = states[k++];
        const char *state = st->type == REDIS_REPLY_STRING ? st->str : "";
        /* the index may lag a record by a moment: the record decides */
        gw_server_t probe = { 0 };
        snprintf (probe.state, sizeof probe.state, "%s", state);
        if (gw_server_active (&probe))
            zhashx_update (*active, users[i], (void *) 1);
        if (gw_server_ready (&probe))
            zhashx_update (*ready, users[i], (void *) 1);
    }
    for (size_t i = 0; i < asked; i++)
        if (states[i])
            freeReplyObject (states[i]);
    for (size_t i = 0; i < n; i++)
        free (users[i]);
    free (users);
    free (states);
    freeReplyObject (members);
    if (rc != 0) {
        zhashx_destroy (active);
        zhashx_destroy (ready);
    }
    return rc;
}
