/*  gw_reply_cache: rendered answers to user and group reads, kept for ttl_ms (default 500).
 *
 *  Why: reading a user costs Redis round trips, and rendering a page of users costs far
 *  more than sending it. Clients that poll (dashboards, the singleuser server asking who
 *  its token belongs to) ask the same question many times a second; under ab the hit
 *  rate is nearly 100 %.
 *
 *  Why it stays correct: every change to what these answers show produces an event
 *  (user.*, group.*, server.*, token.revoked, session.*) or is made through this replica;
 *  both invalidate at once (main.c, gw_watch.c and gw_route for local mutations). What
 *  has no event -- last_activity copied from the proxy, written in batches anyway -- is
 *  at most ttl_ms old. An answer computed while an invalidation happened is not stored
 *  (the generation check), so a change is never hidden for longer than the event takes.
 *
 *  Design: one mutex over a czmq hash; an invalidation purges the hash and bumps the
 *  generation. Entries own a copy of their body; a hit copies it out under the lock
 *  (bodies are small: a page of 50 users is ~9 KB).
 */
#include "gw_reply_cache.h"
#include "orr_util.h"

#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *body;
    size_t len;
    size_t cost;              /* body + key, counted against max_bytes */
    int64_t expires_ms;
} entry_t;

struct gw_reply_cache_t {
    pthread_mutex_t lock;
    zhashx_t *entries;        /* key -> entry_t */
    long ttl_ms;
    size_t max_bytes, bytes;
    uint64_t generation;
    uint64_t hits, misses, invalidations;
};

static void
s_entry_free (void **item)
{
    entry_t *e = *item;
    if (e) {
        free (e->body);
        free (e);
        *item = NULL;
    }
}

gw_reply_cache_t *
gw_reply_cache_new (long ttl_ms, size_t max_bytes)
{
    gw_reply_cache_t *self = orr_zalloc (sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_free);
    self->ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
    self->max_bytes = max_bytes;
    return self;
}

void
gw_reply_cache_destroy (gw_reply_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_reply_cache_t *self = *self_p;
    zhashx_destroy (&self->entries);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

bool
gw_reply_cache_enabled (const gw_reply_cache_t *self)
{
    return self && self->ttl_ms > 0;
}

/* Under the lock. */
static void
s_purge (gw_reply_cache_t *self)
{
    zhashx_purge (self->entries);
    self->bytes = 0;
}

char *
gw_reply_cache_get (gw_reply_cache_t *self, const char *key, size_t *len)
{
    if (!gw_reply_cache_enabled (self))
        return NULL;
    char *out = NULL;
    int64_t now = orr_mono_ms ();
    pthread_mutex_lock (&self->lock);
    entry_t *e = zhashx_lookup (self->entries, key);
    if (e && e->expires_ms > now) {
        out = orr_zalloc (e->len + 1);
        memcpy (out, e->body, e->len);
                *len = e->len;
        self->hits++;
    }
    else {
        if (e) {
            self->bytes -= e->cost;
            zhashx_delete (self->entries, key);
        }
        self->misses++;
    }
    pthread_mutex_unlock (&self->lock);
    return out;
}

uint64_t
gw_reply_cache_generation (gw_reply_cache_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t g = self->generation;
    pthread_mutex_unlock (&self->lock);
    return g;
}

void
gw_reply_cache_put (gw_reply_cache_t *self, const char *key, uint64_t generation, const char *body, size_t len)
{
    if (!gw_reply_cache_enabled (self) || len > GW_REPLY_CACHE_MAX_BODY)
        return;
    entry_t *e = orr_zalloc (sizeof *e);
    e->body = orr_zalloc (len ? len : 1);
    memcpy (e->body, body, len);
    e->len = len;
    e->cost = len + strlen (key) + sizeof *e;
    e->expires_ms = orr_mono_ms () + self->ttl_ms;
    pthread_mutex_lock (&self->lock);
    if (generation != self->generation) {
        pthread_mutex_unlock (&self->lock);
        s_entry_free ((void **) &e);
        return;
    }
    entry_t *old = zhashx_lookup (self->entries, key);
    if (old)
        self->bytes -= old->cost;
    if (self->bytes + e->cost > self->max_bytes)
        s_purge (self);     /* many distinct callers or URLs: start over rather than track age */
    zhashx_update (self->entries, key, e);
    self->bytes += e->cost;
    pthread_mutex_unlock (&self->lock);
}

void
gw_reply_cache_invalidate (gw_reply_cache_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->generation++;
    self->invalidations++;
    if (zhashx_size (self->entries))
        s_purge (self);
    pthread_mutex_unlock (&self->lock);
}

void
gw_reply_cache_stats (gw_reply_cache_t *self, uint64_t *hits, uint64_t *misses, uint64_t *invalidations)
{
    pthread_mutex_lock (&self->lock);
    *hits = self->hits;
    *misses = self->misses;
    *invalidations = self->invalidations;
    pthread_mutex_unlock (&self->lock);
}
