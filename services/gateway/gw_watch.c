/*  gw_watch: the registry of waiting requests and the thread that wakes them (gw_watch.h).
 *
 *  Why a thread of its own: MHD has two worker threads per replica and a spawn may take
 *  minutes in a queue, so a waiting request must not hold one. Events arrive on one
 *  subscriber socket here; the registry maps "user\nserver" to its watchers (a hash of
 *  chains) and keeps a list of all of them for the tick.
 *
 *  Costs, bounded: an event touches only its server's watchers; a final event with
 *  watchers costs one Redis read (outside the lock); a tick visits every watcher (a few
 *  comparisons each, 10 times a second); queue positions are recomputed at most every
 *  POSITIONS_MS with one pipelined round trip (ZRANK per queued watcher's server, ZCARD)
 *  and only when some server event arrived since, because that is the only way a queue
 *  can move.
 *
 *  Events are notifications and one can be lost (a broker restarting): every RECHECK_MS the
 *  records of all watched servers are read again in one pipeline, and a final state found
 *  there is handed to the watchers as if its event had arrived. A lost event thus delays a
 *  stream's end by at most RECHECK_MS instead of leaving it open for good.
 */
#include "gw_watch.h"
#include "gw_reply_cache.h"
#include "orr_events.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_store.h"
#include "orr_util.h"

#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 100
#define POSITIONS_MS 250
#define RECHECK_MS 5000         /* records of watched servers read again (a lost final event) */
#define POSITIONS_MAX 10000     /* distinct queued servers asked about per recompute */

struct gw_watch_t {
    char *redis_url;
    orr_bus_opts_t *bus;
    long streams_max;
    gw_reply_cache_t *replies;  /* invalidated by every server event (not owned) */
    pthread_mutex_t lock;
    zhashx_t *by_key;         /* key -> first gw_watcher_t of its chain (not owned) */
    gw_watcher_t *all;        /* every registered watcher */
    long streams;
    bool stopping;
    bool positions_dirty;
    pthread_t thread;
    bool started;
};

static char *
s_key (const char *user, const char *server)
{
    return orr_sprintf ("%s\n%s", user, server ? server : "");
}

/* Resumes w now if it is suspended, else remembers the wake-up. Lock held. */
static void
s_wake (gw_watcher_t *w)
{
    if (w->suspended) {
        w->suspended = false;
        MHD_resume_connection (w->conn);
    }
    else
        w->woken = true;
}

int
gw_watch_add (gw_watch_t *self, gw_watcher_t *w, const char *user, const char *server)
{
    int rc = 0;
    pthread_mutex_lock (&self->lock);
    if (w->registered)
        ;
    else if (self->stopping)
        rc = -1;
    else if (w->is_stream && self->streams >= self->streams_max)
        rc = -2;
    else {
        w->key = s_key (user, server);
        w->registered = true;
        w->suspended = false;
        w->woken = false;
        w->prev = NULL;
        w->next = self->all;
        if (self->all)
            self->all->prev = w;
        self->all = w;
        w->key_next = zhashx_lookup (self->by_key, w->key);
        zhashx_update (self->by_key, w->key, w);
        if (w->is_stream)
            self->streams++;
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

static void
s_remove (gw_watch_t *self, gw_watcher_t *w)
{
    if (!w->registered)
        return;
    gw_watcher_t *first = zhashx_lookup (self->by_key, w->key);
    if (first == w) {
        if (w->key_next)
            zhashx_update (self->by_key, w->key, w->key_next);
        else
            zhashx_delete (self->by_key, w->key);
    }
    else
        for (gw_watcher_t *p = first; p; p = p->key_next)
            if (p->key_next == w) {
                p->key_next = w->key_next;
                break;
            }
    if (w->prev)
        w->prev->next = w->next;
    else
        self->all = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (w->is_stream)
        self->streams--;
    free (w->key);
    w->key = NULL;
    w->registered = false;
    w->prev = w->next = w->key_next = NULL;
}

void
gw_watch_remove (gw_watch_t *self, gw_watcher_t *w)
{
    pthread_mutex_lock (&self->lock);
    s_remove (self, w);
    pthread_mutex_unlock (&self->lock);
}

bool
gw_watch_suspend_locked (gw_watch_t *self, gw_watcher_t *w)
{
    if (w->woken || self->stopping || !w->registered) {
        w->woken = false;
        return false;
    }
    MHD_suspend_connection (w->conn);
    w->suspended = true;
    return true;
}

bool
gw_watch_suspend (gw_watch_t *self, gw_watcher_t *w)
{
    pthread_mutex_lock (&self->lock);
    bool suspended = gw_watch_suspend_locked (self, w);
    pthread_mutex_unlock (&self->lock);
    return suspended;
}

void
gw_watch_lock (gw_watch_t *self)
{
    pthread_mutex_lock (&self->lock);
}

void
gw_watch_unlock (gw_watch_t *self)
{
    pthread_mutex_unlock (&self->lock);
}

long
gw_watch_streams (gw_watch_t *self)
{
    pthread_mutex_lock (&self->lock);
    long n = self->streams;
    pthread_mutex_unlock (&self->lock);
    return n;
}

/* --- the thread ----------------------------------------------------------------------- */

static bool
s_final_topic (const char *topic)
{
    return strcmp (topic, "server.ready") == 0 || strcmp (topic, "server.failed") == 0
           || strcmp (topic, "server.stopped") == 0;
}

/* The record's state and reason now (outside the lock). */
static void
s_read_record (gw_watch_t *self, const char *user, const char *server, gw_watch_record_t *rec)
{
    memset (rec, 0, sizeof *rec);
    char *key = orr_key_server (user, server);
    redisReply *r = orr_store_command (orr_store_thread (self->redis_url), "HMGET %s state reason", key);
    free (key);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        rec->known = true;
        if (r->element[0]->type == REDIS_REPLY_STRING)
            snprintf (rec->state, sizeof rec->state, "%s", r->element[0]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            snprintf (rec->reason, sizeof rec->reason, "%s", r->element[1]->str);
    }
    if (r)
        freeReplyObject (r);
}

static void
s_on_event (gw_watch_t *self, const orr_event_t *ev)
{
    /* server.start.requested and server.stop.requested are intents, not ServerEvents */
    if (strstr (ev->topic, ".requested"))
        return;
    gw_reply_cache_invalidate (self->replies);
    Orrery__ServerEvent *se = orrery__server_event__unpack (NULL, zframe_size (ev->body), zframe_data (ev->body));
    if (!se)
        return;
    char *key = s_key (se->user, se->server);
    pthread_mutex_lock (&self->lock);
    bool any = zhashx_lookup (self->by_key, key) != NULL;
    self->positions_dirty = true;
    pthread_mutex_unlock (&self->lock);
    if (any) {
        gw_watch_record_t rec;
        bool final = s_final_topic (ev->topic);
        if (final)
            s_read_record (self, se->user, se->server, &rec);
        pthread_mutex_lock (&self->lock);
        gw_watcher_t *w = zhashx_lookup (self->by_key, key);
        while (w) {
            gw_watcher_t *next = w->key_next;    /* a callback does not unregister, but be safe */
            if (w->ops->on_event && w->ops->on_event (w, ev->topic, se, final ? &rec : NULL))
                s_wake (w);
            w = next;
        }
        pthread_mutex_unlock (&self->lock);
    }
    free (key);
    orrery__server_event__free_unpacked (se, NULL);
}

static void
s_tick (gw_watch_t *self)
{
    int64_t now = orr_mono_ms ();
    pthread_mutex_lock (&self->lock);
    for (gw_watcher_t *w = self->all; w; w = w->next)
        if (w->ops->on_tick && w->ops->on_tick (w, now))
            s_wake (w);
    pthread_mutex_unlock (&self->lock);
}

/* Queue positions for every watcher that wants one: ZRANK per distinct server, one ZCARD,
 * one round trip. */
static void
s_positions (gw_watch_t *self)
{
    zlistx_t *keys = zlistx_new ();
    zlistx_set_destructor (keys, (czmq_destructor *) zstr_free);
    pthread_mutex_lock (&self->lock);
    self->positions_dirty = false;
    zhashx_t *seen = zhashx_new ();
    for (gw_watcher_t *w = self->all; w && zlistx_size (keys) < POSITIONS_MAX; w = w->next)
        if (w->wants_position && !zhashx_lookup (seen, w->key)) {
            zhashx_insert (seen, w->key, (void *) 1);
            zlistx_add_end (keys, strdup (w->key));
        }
    zhashx_destroy (&seen);
    pthread_mutex_unlock (&self->lock);
    size_t n = zlistx_size (keys);
    if (n == 0) {
        zlistx_destroy (&keys);
        return;
    }
    orr_store_t *store = orr_store_thread (self->redis_url);
    char *qk = orr_key_index (ORR_INDEX_SPAWN_QUEUE);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys))
        orr_store_append (store, "ZRANK %s %s", qk, k);
    orr_store_append (store, "ZCARD %s", qk);
    free (qk);
    redisReply **replies = orr_zalloc ((n + 1) * sizeof *replies);
    if (orr_store_flush_replies (store, replies, n + 1) == 0 && replies[n]->type == REDIS_REPLY_INTEGER) {
        long total = (long) replies[n]->integer;
        pthread_mutex_lock (&self->lock);
        size_t i = 0;
        for (char *k = zlistx_first (keys); k; k = zlistx_next (keys), i++) {
            long pos = replies[i]->type == REDIS_REPLY_INTEGER ? (long) replies[i]->integer + 1 : 0;
            for (gw_watcher_t *w = zhashx_lookup (self->by_key, k); w; w = w->key_next)
                if (w->wants_position && w->ops->on_position && w->ops->on_position (w, pos, total))
                    s_wake (w);
        }
        pthread_mutex_unlock (&self->lock);
    }
    for (size_t i = 0; i <= n; i++)
        if (replies[i])
            freeReplyObject (replies[i]);
    free (replies);
    zlistx_destroy (&keys);
}

/* The topic a final state would have been announced with, or NULL while not final. */
static const char *
s_final_topic_of (const char *state)
{
    if (!*state || strcmp (state, "stopped") == 0)
        return "server.stopped";
    if (strcmp (state, "ready") == 0)
        return "server.ready";
    if (strcmp (state, "failed") == 0)
        return "server.failed";
    return NULL;
}

/* Reads the record of every watched server (one pipeline) and dispatches final states. */
static void
s_recheck (gw_watch_t *self)
{
    zlistx_t *keys = zlistx_new ();
    zlistx_set_destructor (keys, (czmq_destructor *) zstr_free);
    pthread_mutex_lock (&self->lock);
    for (void *item = zhashx_first (self->by_key); item; item = zhashx_next (self->by_key))
        zlistx_add_end (keys, strdup ((const char *) zhashx_cursor (self->by_key)));
    pthread_mutex_unlock (&self->lock);
    size_t n = zlistx_size (keys);
    if (n == 0) {
        zlistx_destroy (&keys);
        return;
    }
    orr_store_t *store = orr_store_thread (self->redis_url);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        char *nl = strchr (k, '\n');
        *nl = '\0';
        char *rk = orr_key_server (k, nl + 1);
        *nl = '\n';
        orr_store_append (store, "HMGET %s state reason", rk);
        free (rk);
    }
    redisReply **replies = orr_zalloc (n * sizeof *replies);
    if (orr_store_flush_replies (store, replies, n) == 0) {
        size_t i = 0;
        pthread_mutex_lock (&self->lock);
        for (char *k = zlistx_first (keys); k; k = zlistx_next (keys), i++) {
            const redisReply *r = replies[i];
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                continue;
            gw_watch_record_t rec = { .known = true };
            if (r->element[0]->type == REDIS_REPLY_STRING)
                snprintf (rec.state, sizeof rec.state, "%s", r->element[0]->str);
            if (r->element[1]->type == REDIS_REPLY_STRING)
                snprintf (rec.reason, sizeof rec.reason, "%s", r->element[1]->str);
            const char *topic = s_final_topic_of (rec.state);
            if (!topic)
                continue;
            Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
            for (gw_watcher_t *w = zhashx_lookup (self->by_key, k); w; w = w->key_next)
                if (w->ops->on_event && w->ops->on_event (w, topic, &ev, &rec))
                    s_wake (w);
        }
        pthread_mutex_unlock (&self->lock);
    }
    for (size_t i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject (replies[i]);
    free (replies);
    zlistx_destroy (&keys);
}

static void *
s_run (void *arg)
{
    gw_watch_t *self = arg;
    const char *topics[] = { "server.", NULL };
    orr_events_sub_t *sub = orr_events_sub_new (self->bus, topics);
    int64_t last_tick = 0, last_positions = 0, last_recheck = orr_mono_ms ();
    while (1) {
        pthread_mutex_lock (&self->lock);
        bool stopping = self->stopping;
        bool dirty = self->positions_dirty;
        pthread_mutex_unlock (&self->lock);
        if (stopping)
            break;
        orr_event_t ev;
        int got = sub ? orr_events_recv (sub, &ev, TICK_MS) : 0;
        if (got == 1) {
            s_on_event (self, &ev);
            orr_event_clear (&ev);
        }
        else if (got < 0 || !sub)
            orr_sleep_ms (TICK_MS / 2);   /* a stop signal arrived: keep ticking until gw_watch_stop */
        int64_t now = orr_mono_ms ();
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            s_tick (self);
        }
        if (dirty && now - last_positions >= POSITIONS_MS) {
            last_positions = now;
            s_positions (self);
        }
        if (now - last_recheck >= RECHECK_MS) {
            last_recheck = now;
            s_recheck (self);
        }
    }
    orr_events_sub_destroy (&sub);
    orr_store_thread_release ();
    return NULL;
}

gw_watch_t *
gw_watch_new (const char *redis_url, const orr_bus_opts_t *bus, long streams_max, gw_reply_cache_t *replies)
{
    gw_watch_t *self = orr_zalloc (sizeof *self);
    self->replies = replies;
    self->redis_url = orr_strdup (redis_url);
    self->bus = (orr_bus_opts_t *) bus;
    self->streams_max = streams_max;
    pthread_mutex_init (&self->lock, NULL);
    self->by_key = zhashx_new ();
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        orr_error ("gateway: cannot start the server-event thread");
        gw_watch_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
gw_watch_stop (gw_watch_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    for (gw_watcher_t *w = self->all; w; w = w->next) {
        if (w->ops->on_stop)
            w->ops->on_stop (w);
        s_wake (w);
    }
    pthread_mutex_unlock (&self->lock);
    if (self->started) {
        pthread_join (self->thread, NULL);
        self->started = false;
    }
}

void
gw_watch_destroy (gw_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_watch_t *self = *self_p;
    gw_watch_stop (self);
    /* watchers belong to their requests, which MHD has ended (and unregistered) by now */
    if (self->all)
        orr_warn ("gateway: %s waiting request(s) outlived the HTTP server", self->all->next ? "several" : "one");
    zhashx_destroy (&self->by_key);
    pthread_mutex_destroy (&self->lock);
    free (self->redis_url);
    free (self);
    *self_p = NULL;
}
