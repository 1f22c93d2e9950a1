/*  gw_activity: token and user last_activity, batched.
 *
 *  Writing last_activity on every request would put a Redis write (and an auth round
 *  trip) on the hot path; JupyterHub itself only updates it periodically. Each request
 *  notes (token hash, owner, now) in a map; a flusher thread sends the whole map to the
 *  auth service (tokens.touch) every flush_ms, so activity is at most flush_ms stale.
 *  The map is bounded: beyond ACTIVITY_MAX distinct tokens per interval, more are dropped
 *  until the next flush (their activity is then late by one interval, never wrong).
 */
#include "gw.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define ACTIVITY_MAX 100000

typedef struct {
    char *owner;
    int64_t at_us;
} mark_t;

struct gw_activity_t {
    gw_t *gw;
    long flush_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    zhashx_t *marks;          /* token hash -> mark_t */
    bool stopping;
    pthread_t thread;
};

static void
s_mark_free (void **item)
{
    mark_t *m = *item;
    if (m) {
        free (m->owner);
        free (m);
        *item = NULL;
    }
}

void
gw_activity_note (gw_activity_t *self, const char *token_hash, const char *owner)
{
    if (!self || !token_hash || !owner)
        return;
    int64_t now = orr_now_us ();
    pthread_mutex_lock (&self->lock);
    mark_t *m = zhashx_lookup (self->marks, token_hash);
    if (m)
        m->at_us = now;
    else if (zhashx_size (self->marks) < ACTIVITY_MAX) {
        m = orr_zalloc (sizeof *m);
        m->owner = orr_strdup (owner);
        m->at_us = now;
        zhashx_insert (self->marks, token_hash, m);
    }
    pthread_mutex_unlock (&self->lock);
}

static void
s_flush (gw_activity_t *self)
{
    pthread_mutex_lock (&self->lock);
    zhashx_t *batch = self->marks;
    self->marks = zhashx_new ();
    zhashx_set_destructor (self->marks, s_mark_free);
    pthread_mutex_unlock (&self->lock);
    size_t n = zhashx_size (batch);
    if (n) {
        Orrery__TokenTouch msg = ORRERY__TOKEN_TOUCH__INIT;
        Orrery__TokenActivity *items = orr_zalloc (n * sizeof *items);
        msg.items = orr_zalloc (n * sizeof (Orrery__TokenActivity *));
        size_t i = 0;
        for (mark_t *m = zhashx_first (batch); m; m = zhashx_next (batch), i++) {
            orrery__token_activity__init (&items[i]);
            items[i].token_hash = (char *) zhashx_cursor (batch);
            items[i].owner = m->owner;
            items[i].at_us = m->at_us;
            msg.items[i] = &items[i];
        }
        msg.n_items = n;
        char err[256];
        int st = gw_call_auth (self->gw, "tokens.touch", &msg.base, NULL, NULL, err, sizeof err);
        if (st != 200)
            orr_warn ("token activity for %zu tokens not recorded: %s", n, err);
        free (msg.items);
        free (items);
    }
    zhashx_destroy (&batch);
}

static void *
s_run (void *arg)
{
    gw_activity_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (!self->stopping) {
        struct timespec deadline;
        clock_gettime (CLOCK_REALTIME, &deadline);
        deadline.tv_sec += self->flush_ms / 1000;
        deadline.tv_nsec += (self->flush_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait (&self->wake, &self->lock, &deadline);
        pthread_mutex_unlock (&self->lock);
        s_flush (self);
        pthread_mutex_lock (&self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

gw_activity_t *
gw_activity_new (gw_t *gw, long flush_ms)
{
    gw_activity_t *self = orr_zalloc (sizeof *self);
    self->gw = gw;
    self->flush_ms = flush_ms;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    self->marks = zhashx_new ();
    zhashx_set_destructor (self->marks, s_mark_free);
    pthread_create (&self->thread, NULL, s_run, self);
    return self;
}

void
gw_activity_destroy (gw_activity_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_activity_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);   /* its last pass flushes what was noted */
    zhashx_destroy (&self->marks);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    orr_store_thread_release ();
    free (self);
    *self_p = NULL;
}
