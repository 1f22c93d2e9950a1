/*  gw_api_servers: starting and stopping users' servers -- POST and DELETE
 *  /hub/api/users/{name}/server and /hub/api/users/{name}/servers/{server}
 *  (jupyterhub-api.md §4, statuses as JupyterHub 3.0's code answers them).
 *
 *  The spawner owns the work (bus methods spawn and stop, docs/spawner.md); this file
 *  checks the caller, the user and the body, asks the spawner, and then waits up to
 *  SLOW_SPAWN_TIMEOUT_S for the outcome the way JupyterHub does: 201 ready, 500 failed, 202
 *  still starting (or 204 stopped, 202 still stopping). The wait holds no thread: the
 *  request registers a watcher (gw_watch.c) BEFORE it reads the record again -- so an event
 *  between the spawner's answer and the registration is not lost, it is in the record --
 *  and its connection is suspended until a final event for the server or the deadline.
 *  Whatever wakes it, the answer is decided from the record, never from the event alone.
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "gw_watch.h"
#include "orr_util.h"
#include "orrery/spawner.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_MIN_S 30       /* JupyterHub's spawn_throttle_retry_range */
#define RETRY_AFTER_MAX_S 60
#define WAIT_RESUSPEND_MAX 3       /* wake-ups that change nothing before answering anyway */

typedef struct {
    gw_watcher_t w;                /* first: the watch hands it back */
    gw_t *gw;
    char *user;
    char *server;
    bool stop;                     /* DELETE: waiting for stopped, else for ready */
    int64_t deadline_ms;
    bool expired;                  /* set by the watch thread: read and written atomically */
} server_wait_t;

static bool
s_final_topic (const char *topic)
{
    return strcmp (topic, "server.ready") == 0 || strcmp (topic, "server.failed") == 0
           || strcmp (topic, "server.stopped") == 0;
}

static bool
s_on_event (gw_watcher_t *w, const char *topic, const Orrery__ServerEvent *ev, const gw_watch_record_t *rec)
{
    return s_final_topic (topic);
}

static bool
s_on_tick (gw_watcher_t *w, int64_t now_ms)
{
    server_wait_t *wt = (server_wait_t *) w;
    if (__atomic_load_n (&wt->expired, __ATOMIC_ACQUIRE) || now_ms < wt->deadline_ms)
        return false;
    __atomic_store_n (&wt->expired, true, __ATOMIC_RELEASE);
    return true;
}

static void
s_on_stop (gw_watcher_t *w)
{
    __atomic_store_n (&((server_wait_t *) w)->expired, true, __ATOMIC_RELEASE);
}

static const gw_watcher_ops_t s_wait_ops = { s_on_event, s_on_tick, NULL, s_on_stop };

static void
s_wait_free (void *arg)
{
    server_wait_t *wt = arg;
    gw_watch_remove (wt->gw->watch, &wt->w);
    free (wt->user);
    free (wt->server);
    free (wt);
}

static enum MHD_Result
s_empty (const gw_request_t *req, unsigned status)
{
    return gw_reply (req, status, "text/plain", "", 0);
}

/* The answer the record gives now, or 0 while the wait should go on. */
static unsigned
s_outcome (const server_wait_t *wt, int found, const gw_server_t *s, char *msg, size_t msglen)
{
    if (found < 0)
        return 0;                                  /* Redis unreachable: wait for the deadline */
    if (wt->stop)
        return found == 0 || gw_server_is (s, "stopped") || gw_server_is (s, "failed") ? 204 : 0;
    if (gw_server_ready (s))
        return 201;
    if (gw_server_is (s, "failed")) {
        snprintf (msg, msglen, "Spawn failed: %s",
                  *s->reason ? s->reason : *s->message ? s->message : "the server did not start");
        return 500;
    }
    if (found == 0 || gw_server_is (s, "stopped")) {
        snprintf (msg, msglen, "Spawn failed: the server was stopped before it was ready");
        return 500;
    }
    return 0;                                      /* queued, pending_spawn, pending_stop */
}

static enum MHD_Result s_resume (void *arg, const gw_request_t *req);

/* Reads the record and answers, or suspends until something may have changed. The
 * watcher is registered. */
static enum MHD_Result
s_decide (server_wait_t *wt, const gw_request_t *req)
{
    for (int round = 0; round < WAIT_RESUSPEND_MAX; round++) {
        gw_server_t s;
        int found = gw_server_load (wt->gw, wt->user, wt->server, &s);
        char msg[700] = "";
        unsigned status = s_outcome (wt, found, &s, msg, sizeof msg);
        gw_server_clear (&s);
        bool expired = __atomic_load_n (&wt->expired, __ATOMIC_ACQUIRE);
        if (status == 0 && !expired && orr_mono_ms () < wt->deadline_ms) {
            gw_request_defer (req, s_resume, wt, s_wait_free);
            if (gw_watch_suspend (wt->gw->watch, &wt->w))
                return MHD_YES;
            continue;                              /* woken meanwhile: read again */
        }
        gw_watch_remove (wt->gw->watch, &wt->w);
        if (status == 0)
            return s_empty (req, 202);             /* still starting or stopping */
        return status == 500 ? gw_reply_error (req, 500, msg) : s_empty (req, status);
    }
    gw_watch_remove (wt->gw->watch, &wt->w);
    return s_empty (req, 202);
}

static enum MHD_Result
s_resume (void *arg, const gw_request_t *req)
{
    return s_decide (arg, req);
}

/* Waits for the outcome of a start (stop = false) or stop just asked for. */
static enum MHD_Result
s_wait (gw_t *gw, const gw_request_t *req, const char *user, const char *server, bool stop)
{
    server_wait_t *wt = orr_zalloc (sizeof *wt);
    wt->w.ops = &s_wait_ops;
    wt->w.conn = req->conn;
    wt->gw = gw;
    wt->user = orr_strdup (user);
    wt->server = orr_strdup (server);
    wt->stop = stop;
    wt->deadline_ms = orr_mono_ms () + gw->slow_spawn_timeout_s * 1000;
    /* owned by the request from here on (freed when it ends) */
    gw_request_defer (req, s_resume, wt, s_wait_free);
    if (gw_watch_add (gw->watch, &wt->w, user, server) != 0)
        __atomic_store_n (&wt->expired, true, __ATOMIC_RELEASE);   /* stopping: answer from the record now */
    return s_decide (wt, req);
}

/* A spawner call that did not answer 200. */
static enum MHD_Result
s_reply_failed (const gw_request_t *req, int status, const char *message)
{
    if (status == 503 || status == 504)
        return gw_reply_error (req, 503, "spawner unavailable");
    if (status == 429) {
        char retry[16];
        snprintf (retry, sizeof retry, "%d", RETRY_AFTER_MIN_S + rand () % (RETRY_AFTER_MAX_S - RETRY_AFTER_MIN_S + 1));
        json_t *j = json_pack ("{s:i, s:s}", "status", 429, "message", message);
        char *text = json_dumps (j, JSON_COMPACT);
        json_decref (j);
        const char *headers[] = { "Retry-After", retry, NULL };
        enum MHD_Result rc = gw_reply_with (req, 429, "application/json", text ? text : "{}", text ? strlen (text) : 2,
                                            headers);
        free (text);
        return rc;
    }
    return gw_reply_error (req, (unsigned) (status >= 400 && status < 600 ? status : 502), message);
}

int
gw_spawn (gw_t *gw, const char *user, const char *server, const char *options_json, const char *by, char *state,
          size_t statelen, char *msg, size_t msglen)
{
    Orrery__SpawnRequest m = ORRERY__SPAWN_REQUEST__INIT;
    m.user = (char *) user;
    m.server = (char *) server;
    m.user_options_json = (char *) options_json;   /* "" = reuse the previous options */
    m.requested_by = (char *) (by ? by : "");
    Orrery__ServerStatus *status = NULL;
    int st = gw_call (gw, "spawner", "spawn", &m.base, &orrery__server_status__descriptor,
                      (ProtobufCMessage **) &status, msg, msglen);
    snprintf (state, statelen, "%s", st == 200 && status->state ? status->state : "");
    if (status)
        orrery__server_status__free_unpacked (status, NULL);
    return st;
}

/* Common checks: the name, the scope, the user. True to go on; else *rc is the answer. */
static bool
s_checks (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server,
          const char *scope, enum MHD_Result *rc)
{
    if (strchr (server, '/')) {
        *rc = gw_reply_errorf (req, 400, "Invalid server_name (may not contain '/'): %.200s", server);
        return false;
    }
    char *target = orr_sprintf ("%s/%s", user, server);
    orr_scope_target_t t = { .user = user, .server = target };
    const char *need[] = { scope, NULL };
    bool ok = gw_allowed (gw, req, caller, need, &t, rc);
    free (target);
    if (!ok)
        return false;
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), user, &rec);
    orr_user_rec_clear (&rec);
    if (found < 0)
        *rc = gw_reply_error (req, 503, "User store unavailable; try again");
    else if (found == 0)
        *rc = gw_reply_errorf (req, 404, "No such user: %.200s", user);
    return found == 1;
}

static enum MHD_Result
s_start (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    if (!s_checks (gw, req, caller, user, server, "servers", &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    if (body && !json_is_object (body)) {
        json_decref (body);
        return gw_reply_error (req, 400, "user_options must be a JSON object");
    }
    char *options = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    /* a start already pending answers 202 at once, as JupyterHub does */
    gw_server_t s;
    int found = gw_server_load (gw, user, server, &s);
    const char *pending = found == 1 ? gw_server_pending (&s) : NULL;
    bool spawn_pending = pending && strcmp (pending, "spawn") == 0;
    gw_server_clear (&s);
    if (found < 0) {
        free (options);
        return gw_reply_error (req, 503, "Server store unavailable; try again");
    }
    if (spawn_pending) {
        free (options);
        return s_empty (req, 202);
    }
    char state[16], msg[256];
    int st = gw_spawn (gw, user, server, options ? options : "", caller->id.name, state, sizeof state, msg, sizeof msg);
    free (options);
    if (st != 200)
        return s_reply_failed (req, st, msg);
    if (strcmp (state, "ready") == 0)
        return s_empty (req, 201);
    return s_wait (gw, req, user, server, false);
}

static enum MHD_Result
s_stop (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    if (!s_checks (gw, req, caller, user, server, "delete:servers", &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    json_t *remove = json_is_object (body) ? json_object_get (body, "remove") : NULL;
    bool bad = (body && !json_is_object (body)) || (remove && !json_is_boolean (remove) && !json_is_null (remove));
    bool want_remove = json_is_true (remove);
    json_decref (body);
    if (bad)
        return gw_reply_error (req, 400, "Body must be a JSON object, with remove true or false");
    gw_server_t s;
    int found = gw_server_load (gw, user, server, &s);
    const char *pending = found == 1 ? gw_server_pending (&s) : NULL;
    bool stopping = pending && strcmp (pending, "stop") == 0;
    bool active = found == 1 && gw_server_active (&s);
    gw_server_clear (&s);
    if (found < 0)
        return gw_reply_error (req, 503, "Server store unavailable; try again");
    if (*server && found == 0)
        return gw_reply_errorf (req, 404, "%.200s has no server named '%.200s'", user, server);
    if (!*server && want_remove)
        return gw_reply_error (req, 400, "Cannot delete the default server");
    if (stopping && !want_remove)
        return s_empty (req, 202);                 /* already stopping */
    if (!active && !want_remove)
        return s_empty (req, 204);                 /* nothing runs: nothing to ask */
    Orrery__StopRequest m = ORRERY__STOP_REQUEST__INIT;
    m.user = (char *) user;
    m.server = (char *) server;
    m.remove = want_remove;
    Orrery__ServerStatus *status = NULL;
    char msg[256];
    int st = gw_call (gw, "spawner", "stop", &m.base, &orrery__server_status__descriptor,
                      (ProtobufCMessage **) &status, msg, sizeof msg);
    if (st != 200)
        rc = s_reply_failed (req, st, msg);
    else if (!status->state || !*status->state || strcmp (status->state, "stopped") == 0
             || strcmp (status->state, "failed") == 0)
        rc = s_empty (req, 204);
    else
        rc = s_wait (gw, req, user, server, true);
    if (status)
        orrery__server_status__free_unpacked (status, NULL);
    return rc;
}

enum MHD_Result
gw_api_server_start (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_start (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_api_named_server_start (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_start (gw, req, caller, params[0], params[1]);
}

enum MHD_Result
gw_api_server_stop (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_stop (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_api_named_server_stop (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_stop (gw, req, caller, params[0], params[1]);
}
