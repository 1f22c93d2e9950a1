/*  gw_watch: requests that wait for a server's events without holding a thread.
 *
 *  A watcher is a suspended (or about to be suspended) connection interested in one
 *  server ("user\nserver"): a POST/DELETE waiting for the server to be ready or stopped
 *  (gw_api_servers.c), or a progress stream (gw_progress.c). One thread per gateway
 *  listens to the bus's server.* events and, with the watch's lock held, tells each
 *  watcher of its server what happened (ops below); a watcher that answers true is
 *  resumed (MHD_resume_connection), and MHD calls the request's continuation or the
 *  stream's content reader again in one of its own threads. The same thread ticks every
 *  ~100 ms for deadlines and keep-alives, and recomputes queue positions for watchers that
 *  want them whenever the queue may have moved.
 *
 *  Suspend/resume protocol (it is undefined behaviour in MHD to resume a connection that is
 *  not suspended, and a fatal error to stop the daemon while one is): both happen only with
 *  the watch's lock held. A wake-up that comes before the owner suspended is remembered
 *  (`woken`) and makes gw_watch_suspend return false, so the owner answers at once instead
 *  of sleeping through it. After gw_watch_stop nothing suspends any more and everything
 *  suspended has been resumed, so MHD_stop_daemon may run.
 */
#ifndef GW_WATCH_H
#define GW_WATCH_H

#include "gw_reply_cache.h"
#include "orr_bus.h"
#include "orrery/events.pb-c.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct gw_watch_t gw_watch_t;
typedef struct gw_watcher_t gw_watcher_t;

/* What the record says when a final event (server.ready, server.failed, server.stopped)
 * arrives: the watch thread reads it from Redis so that a late event of an earlier start
 * or stop cannot end a newer one. `state` "" = no record; known false = Redis could not be
 * read (then trust the event). */
typedef struct {
    bool known;
    char state[16];
    char reason[512];
} gw_watch_record_t;

/* Called by the watch thread with the lock held; each returns true to resume the
 * connection. Any may be NULL. */
typedef struct {
    /* A server.* event for the watcher's server. `rec` is non-NULL for the final topics. */
    bool (*on_event) (gw_watcher_t *w, const char *topic, const Orrery__ServerEvent *ev, const gw_watch_record_t *rec);
    /* Every tick, about every 100 ms. */
    bool (*on_tick) (gw_watcher_t *w, int64_t now_ms);
    /* A new queue position for watchers with wants_position (position 0 = not queued). */
    bool (*on_position) (gw_watcher_t *w, long position, long total);
    /* The watch stops; the watcher is resumed right after this and may not suspend again. */
    void (*on_stop) (gw_watcher_t *w);
} gw_watcher_ops_t;

/* Embedded in the owner's own struct; the owner sets ops, conn, is_stream and
 * wants_position, and leaves the rest to the watch. */
struct gw_watcher_t {
    const gw_watcher_ops_t *ops;
    struct MHD_Connection *conn;
    bool is_stream;           /* counted against streams_max */
    bool wants_position;      /* queue position updates (changed only with the lock held) */
    /* the watch's (under its lock) */
    char *key;                /* "user\nserver" while registered */
    bool registered, suspended, woken;
    gw_watcher_t *prev, *next;        /* every registered watcher */
    gw_watcher_t *key_next;           /* watchers of the same server */
};

/* Starts the thread (subscribed to "server." events). streams_max bounds open streams.
 * Every server event invalidates `replies` (may be NULL) before any watcher is woken, so
 * a client woken by an event never reads an answer older than it. */
gw_watch_t *gw_watch_new (const char *redis_url, const orr_bus_opts_t *bus, long streams_max,
                          gw_reply_cache_t *replies);
/* Resumes every watcher (after on_stop), refuses new ones and suspensions, ends the
 * thread. Call before MHD_stop_daemon. */
void gw_watch_stop (gw_watch_t *self);
void gw_watch_destroy (gw_watch_t **self_p);

/* Registers w for server (user, server). 0; -1 while stopping; -2 when w is a stream and
 * streams_max streams are open. */
int gw_watch_add (gw_watch_t *self, gw_watcher_t *w, const char *user, const char *server);
/* Unregisters w (no-op when not registered). Never call it for a suspended watcher. */
void gw_watch_remove (gw_watch_t *self, gw_watcher_t *w);
/* Suspends w's connection unless it was woken since it last suspended or the watch
 * stops; true when suspended (the handler then returns MHD_YES). Clears `woken`. Only
 * from the access handler or the content reader of w's connection. */
bool gw_watch_suspend (gw_watch_t *self, gw_watcher_t *w);
/* The lock, for owners that share data with their callbacks (stream buffers), and
 * gw_watch_suspend for a caller that holds it. */
void gw_watch_lock (gw_watch_t *self);
void gw_watch_unlock (gw_watch_t *self);
bool gw_watch_suspend_locked (gw_watch_t *self, gw_watcher_t *w);
/* Open streams now (for metrics and tests). */
long gw_watch_streams (gw_watch_t *self);

#endif
