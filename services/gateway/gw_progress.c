/*  gw_progress: GET /hub/api/users/{name}/server/progress and .../servers/{s}/progress --
 *  the spawn progress event stream (jupyterhub-api.md §5).
 *
 *  Wire format as JupyterHub 3.0 writes it: text/event-stream, Cache-Control: no-cache,
 *  each event "data: <json>\n\n", a bare "\n\n" every KEEPALIVE_MS. A ready server gets one
 *  ready event; a server that is not starting gets its failure event if its last start
 *  failed, else 400; a starting one gets "Server requested", then the spawner's events
 *  (server.progress, server.scheduled; while queued, "Waiting in queue: position N of M",
 *  recomputed by gw_watch whenever the queue may have moved), then the ready or failed
 *  event, and the stream ends.
 *
 *  A stream holds no thread: the response's content reader hands out what is buffered
 *  and, when there is nothing, suspends the connection (gw_watch_suspend_locked); the
 *  watch thread appends events with its lock held and resumes it. The buffer and the
 *  stream live until MHD frees the response (the client went away, or the stream ended),
 *  whose free callback unregisters the watcher first. Limits: PROGRESS_STREAMS_MAX open
 *  streams per replica (503 beyond) and STREAM_BUFFER_MAX buffered bytes per stream (a
 *  client that reads nothing while that much accumulates is ended).
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "gw_watch.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_MS 8000
#define STREAM_BUFFER_MAX (64 * 1024)
#define STREAM_BLOCK 4096

typedef struct {
    gw_watcher_t w;                /* first: the watch hands it back */
    gw_t *gw;
    char *url;                     /* the server's URL (for the ready event) */
    /* under the watch's lock */
    char *buf;
    size_t len, off;
    bool finished;                 /* end the stream once the buffer is sent */
    int progress;                  /* the last progress sent */
    long position, total;          /* the last queue position sent */
    int64_t last_write_ms;
} stream_t;

/* --- events --------------------------------------------------------------------------- */

static void
s_append (stream_t *st, const char *text)
{
    size_t n = strlen (text);
    if (st->finished)
        return;
    if (st->len - st->off + n > STREAM_BUFFER_MAX) {
        st->finished = true;       /* the client reads nothing: stop feeding it */
        return;
    }
    if (st->off && st->off == st->len)
        st->off = st->len = 0;
    st->buf = orr_realloc (st->buf, st->len + n + 1);
    memcpy (st->buf + st->len, text, n + 1);
    st->len += n;
    st->last_write_ms = orr_mono_ms ();
}

/* Appends "data: <json>\n\n" of ev (stolen). */
static void
s_event (stream_t *st, json_t *ev)
{
    char *text = json_dumps (ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (ev);
    if (!text)
        return;
    char *line = orr_sprintf ("data: %s\n\n", text);
    s_append (st, line);
    free (line);
    free (text);
}

static json_t *
s_progress_event (int progress, const char *message)
{
    json_t *ev = json_object ();
    json_object_set_new (ev, "progress", json_integer (progress));
    json_t *m = json_string (message ? message : "");
    json_object_set_new (ev, "message", m ? m : json_string (""));
    return ev;
}

static json_t *
s_ready_event (const char *url)
{
    char *message = orr_sprintf ("Server ready at %s", url);
    char *html = orr_sprintf ("Server ready at <a href=\"%s\">%s</a>", url, url);
    json_t *ev = json_object ();
    json_object_set_new (ev, "progress", json_integer (100));
    json_object_set_new (ev, "ready", json_true ());
    json_object_set_new (ev, "message", json_string (message));
    json_object_set_new (ev, "html_message", json_string (html));
    json_object_set_new (ev, "url", json_string (url));
    free (message);
    free (html);
    return ev;
}

static json_t *
s_failed_event (const char *reason)
{
    char *message = orr_sprintf ("Spawn failed: %s", reason && *reason ? reason : "the server did not start");
    json_t *ev = json_object ();
    json_object_set_new (ev, "progress", json_integer (100));
    json_object_set_new (ev, "failed", json_true ());
    json_t *m = json_string (message);
    json_object_set_new (ev, "message", m ? m : json_string ("Spawn failed"));
    free (message);
    return ev;
}

static void
s_queue_event (stream_t *st, long position, long total)
{
    char message[96];
    snprintf (message, sizeof message, "Waiting in queue: position %ld of %ld", position, total);
    st->position = position;
    st->total = total;
    s_event (st, s_progress_event (st->progress, message));
}

/* Ends the stream as the record's final state says; false when it is not final. */
static bool
s_finish (stream_t *st, const char *state, const char *reason)
{
    if (strcmp (state, "ready") == 0)
        s_event (st, s_ready_event (st->url));
    else if (strcmp (state, "failed") == 0)
        s_event (st, s_failed_event (reason));
    else if (strcmp (state, "stopped") == 0 || !*state)
        s_event (st, s_failed_event ("the server was stopped before it was ready"));
    else
        return false;
    st->finished = true;
    return true;
}

/* --- the watch's callbacks (its lock held) ----------------------------------------------- */

static bool
s_on_event (gw_watcher_t *w, const char *topic, const Orrery__ServerEvent *ev, const gw_watch_record_t *rec)
{
    stream_t *st = (stream_t *) w;
    if (st->finished)
        return false;
    if (rec) {
        /* a final topic: the record decides (a late event of an earlier start is ignored) */
        const char *state = rec->known ? rec->state : strcmp (topic, "server.ready") == 0 ? "ready"
                                                  : strcmp (topic, "server.failed") == 0 ? "failed"
                                                                                          : "stopped";
        const char *reason = rec->known && *rec->reason ? rec->reason : ev->reason;
        return s_finish (st, state, reason);
    }
    if (strcmp (topic, "server.pending") == 0) {
        st->w.wants_position = true;   /* queued again: "Server requested" was sent */
        return false;
    }
    if (strcmp (topic, "server.progress") != 0 && strcmp (topic, "server.scheduled") != 0)
        return false;                  /* server.stopping: wait for server.stopped */
    if (ev->state && strcmp (ev->state, "queued") != 0 && *ev->state)
        st->w.wants_position = false;  /* left the queue */
    if (ev->progress > st->progress)
        st->progress = ev->progress > 99 ? 99 : ev->progress;
    char placed[300];
    const char *message = ev->message;
    if ((!message || !*message) && strcmp (topic, "server.scheduled") == 0) {
        snprintf (placed, sizeof placed, "Placed on node %.250s", ev->node ? ev->node : "");
        message = placed;
    }
    if (!message || !*message)
        return false;
    s_event (st, s_progress_event (st->progress, message));
    return true;
}

static bool
s_on_position (gw_watcher_t *w, long position, long total)
{
    stream_t *st = (stream_t *) w;
    if (st->finished || position <= 0 || (position == st->position && total == st->total))
        return false;
    s_queue_event (st, position, total);
    return true;
}

static bool
s_on_tick (gw_watcher_t *w, int64_t now_ms)
{
    stream_t *st = (stream_t *) w;
    if (st->finished || now_ms - st->last_write_ms < KEEPALIVE_MS)
        return false;
    s_append (st, "\n\n");
    return true;
}

static void
s_on_stop (gw_watcher_t *w)
{
    ((stream_t *) w)->finished = true;
}

static const gw_watcher_ops_t s_stream_ops = { s_on_event, s_on_tick, s_on_position, s_on_stop };

/* --- the response ------------------------------------------------------------------------- */

static ssize_t
s_read (void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *st = cls;
    gw_watch_t *watch = st->gw->watch;
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    gw_watch_lock (watch);
    for (int round = 0; round < 2; round++) {
        if (st->len > st->off) {
            size_t k = st->len - st->off < max ? st->len - st->off : max;
            memcpy (buf, st->buf + st->off, k);
            st->off += k;
            n = (ssize_t) k;
            break;
        }
        if (st->finished)
            break;
        if (gw_watch_suspend_locked (watch, &st->w)) {
            n = 0;                 /* resumed when there is something to send */
            break;
        }
        /* woken meanwhile: look again; nothing twice means the watch stops */
    }
    gw_watch_unlock (watch);
    return n;
}

static void
s_stream_free (void *cls)
{
    stream_t *st = cls;
    gw_watch_remove (st->gw->watch, &st->w);
    free (st->buf);
    free (st->url);
    free (st);
}

static const char *const s_sse_headers[] = { "Cache-Control", "no-cache", NULL };

/* The whole stream at once (ready or failed already). */
static enum MHD_Result
s_reply_events (const gw_request_t *req, json_t *ev)
{
    char *text = json_dumps (ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (ev);
    char *body = orr_sprintf ("data: %s\n\n", text ? text : "{}");
    enum MHD_Result rc = gw_reply_with (req, 200, "text/event-stream", body, strlen (body), s_sse_headers);
    free (body);
    free (text);
    return rc;
}

static enum MHD_Result
s_progress (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    char *target = orr_sprintf ("%s/%s", user, server);
    orr_scope_target_t t = { .user = user, .server = target };
    static const char *const need[] = { "read:servers", NULL };
    bool ok = gw_allowed (gw, req, caller, need, &t, &rc);
    free (target);
    if (!ok)
        return rc;
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), user, &rec);
    orr_user_rec_clear (&rec);
    if (found < 0)
        return gw_reply_error (req, 503, "User store unavailable; try again");
    if (found == 0)
        return gw_reply_errorf (req, 404, "No such user: %.200s", user);
    gw_server_t s;
    found = gw_server_load (gw, user, server, &s);
    char *label = gw_server_label (user, server);
    char *url = gw_server_url (gw, user, server);
    if (found < 0)
        rc = gw_reply_error (req, 503, "Server store unavailable; try again");
    else if (*server && found == 0)
        rc = gw_reply_errorf (req, 404, "%.200s has no such server %.200s", user, server);
    else if (gw_server_ready (&s))
        rc = s_reply_events (req, s_ready_event (url));
    else if (gw_server_is (&s, "failed"))
        rc = s_reply_events (req, s_failed_event (*s.reason ? s.reason : s.message));
    else if (!gw_server_pending (&s) || strcmp (gw_server_pending (&s), "spawn") != 0)
        rc = gw_reply_errorf (req, 400, "%.200s is not starting...", label);
    else {
        stream_t *st = orr_zalloc (sizeof *st);
        st->w.ops = &s_stream_ops;
        st->w.conn = req->conn;
        st->w.is_stream = true;
        bool queued = gw_server_is (&s, "queued");
        st->w.wants_position = queued;
        st->gw = gw;
        st->url = url;
        url = NULL;
        st->position = st->total = -1;
        st->last_write_ms = orr_mono_ms ();
        int added = gw_watch_add (gw->watch, &st->w, user, server);
        if (added != 0) {
            s_stream_free (st);
            rc = gw_reply_error (req, 503, added == -2 ? "Too many progress streams open; try again later"
                                                       : "Shutting down; try again");
        }
        else {
            /* registered first, then read again: nothing that happens from here is lost */
            gw_server_t now;
            int again = gw_server_load (gw, user, server, &now);
            long position = 0, total = 0;
            if (queued)
                gw_server_queue_position (gw, user, server, &position, &total);
            gw_watch_lock (gw->watch);
            s_event (st, s_progress_event (0, "Server requested"));
            if (again >= 0 && !gw_server_pending (&now))
                s_finish (st, again == 0 ? "" : now.state, *now.reason ? now.reason : now.message);
            else if (position > 0)
                s_queue_event (st, position, total);
            else if (again > 0 && now.progress > 0 && *now.message) {
                st->progress = now.progress > 99 ? 99 : now.progress;
                s_event (st, s_progress_event (st->progress, now.message));
            }
            gw_watch_unlock (gw->watch);
            gw_server_clear (&now);
            struct MHD_Response *resp
                = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, STREAM_BLOCK, s_read, st, s_stream_free);
            if (!resp) {
                s_stream_free (st);
                rc = MHD_NO;
            }
            else {
                gw_response_common_headers (resp, req);
                MHD_add_response_header (resp, "Content-Type", "text/event-stream");
                MHD_add_response_header (resp, "Cache-Control", "no-cache");
                rc = MHD_queue_response (req->conn, 200, resp);
                MHD_destroy_response (resp);
            }
        }
    }
    free (url);
    free (label);
    gw_server_clear (&s);
    return rc;
}

enum MHD_Result
gw_api_server_progress (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_progress (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_api_named_server_progress (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_progress (gw, req, caller, params[0], params[1]);
}
