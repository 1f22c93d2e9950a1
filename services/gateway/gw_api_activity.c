/*  gw_api_activity: POST /hub/api/users/{name}/activity -- what single-user servers report
 *  every 5 minutes (jupyterhub-api.md §6), validated as JupyterHub 3.0's
 *  ActivityAPIHandler does.
 *
 *  Body: {"last_activity": <ts>, "servers": {<name>: {"last_activity": <ts>}}}, at least
 *  one of the two (a falsy value counts as absent, as in Python). A timestamp is ISO-8601
 *  with any UTC offset (none = UTC) and at most 59 minutes in the future. Everything is
 *  checked before anything is written, so a 400 changes nothing.
 *
 *  Writers reused, none added: a server's activity goes through orr_activity_record (the
 *  one writer of orr:{u:U}:activity, which only moves forward); the user's last_activity
 *  through the auth service's tokens.touch, the one writer of users' and tokens'
 *  last_activity, as the credential that made this request (touch also only moves times
 *  forward). A caller without a stored token (a login cookie, a configured service token)
 *  has no token to touch, so its report updates the servers only.
 */
#include "gw_api.h"
#include "gw_servers.h"
#include "orr_activity.h"
#include "orr_log.h"
#include "orr_time.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define FUTURE_MAX_US (59LL * 60 * 1000000)
#define ACTIVITY_SERVERS_MAX 1000     /* servers in one report */

static const char *s_servers_shape = "servers must be a dict of the form {server_name: {last_activity: timestamp}}";

/* Python's truth value of a JSON value. */
static bool
s_truthy (const json_t *v)
{
    if (!v || json_is_null (v) || json_is_false (v))
        return false;
    if (json_is_string (v))
        return json_string_length (v) > 0;
    if (json_is_integer (v))
        return json_integer_value (v) != 0;
    if (json_is_real (v))
        return json_real_value (v) != 0.0;
    if (json_is_object (v))
        return json_object_size (v) > 0;
    if (json_is_array (v))
        return json_array_size (v) > 0;
    return true;
}

/* Parses a timestamp; 0 with *us, or 400 with the message. */
static int
s_timestamp (const char *name, const json_t *v, int64_t now, int64_t *us, char *msg, size_t msglen)
{
    char *shown = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
    int rc = 0;
    if (!json_is_string (v) || orr_time_parse (json_string_value (v), us) != 0) {
        snprintf (msg, msglen, "Invalid %s timestamp %.200s", name, shown ? shown : "?");
        rc = 400;
    }
    else if (*us - now > FUTURE_MAX_US) {
        char iso[ORR_ISO_LEN];
        snprintf (msg, msglen, "Rejecting activity from more than an hour in the future: %s",
                  orr_time_format (*us, iso));
        rc = 400;
    }
    free (shown);
    return rc;
}

/* Records the user's last_activity through tokens.touch as the caller's token. */
static void
s_touch_user (gw_t *gw, const gw_caller_t *caller, const char *user, int64_t us)
{
    if (!caller->id.token_id || !caller->id.token_hash)
        return;
    Orrery__TokenActivity item = ORRERY__TOKEN_ACTIVITY__INIT;
    item.token_hash = caller->id.token_hash;
    item.owner = (char *) user;
    item.at_us = us;
    Orrery__TokenActivity *items[] = { &item };
    Orrery__TokenTouch msg = ORRERY__TOKEN_TOUCH__INIT;
    msg.items = items;
    msg.n_items = 1;
    char err[256];
    if (gw_call_auth (gw, "tokens.touch", &msg.base, NULL, NULL, err, sizeof err) != 200)
        orr_warn ("activity of %s not recorded: %s", user, err);
}

enum MHD_Result
gw_api_user_activity (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    const char *user = params[0];
    static const char *const need[] = { "users:activity", NULL };
    orr_scope_target_t t = { .user = user };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), user, &rec);
    orr_user_rec_clear (&rec);
    if (found < 0)
        return gw_reply_error (req, 503, "User store unavailable; try again");
    if (found == 0)
        return gw_reply_errorf (req, 404, "No such user: %.200s", user);
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    if (!json_is_object (body)) {
        json_decref (body);
        return gw_reply_error (req, 400, "body must be a json dict");
    }
    json_t *last = json_object_get (body, "last_activity"), *servers = json_object_get (body, "servers");
    if (!s_truthy (last) && !s_truthy (servers)) {
        json_decref (body);
        return gw_reply_error (req, 400, "body must contain at least one of `last_activity` or `servers`");
    }
    int64_t now = orr_now_us (), user_us = 0;
    char msg[512] = "";
    unsigned status = 0;
    size_t n = 0;
    const char **names = NULL;
    int64_t *times = NULL;
    if (s_truthy (servers)) {
        if (!json_is_object (servers) || json_object_size (servers) > ACTIVITY_SERVERS_MAX) {
            snprintf (msg, sizeof msg, "%s", s_servers_shape);
            status = 400;
        }
        else {
            /* which servers exist: the default always does, named ones by their record */
            gw_servers_t known;
            if (gw_servers_load_many (gw, &user, 1, &known) != 0) {
                json_decref (body);
                return gw_reply_error (req, 503, "Server store unavailable; try again");
            }
            names = orr_zalloc ((json_object_size (servers) + 1) * sizeof (char *));
            times = orr_zalloc ((json_object_size (servers) + 1) * sizeof (int64_t));
            const char *name;
            json_t *info;
            json_object_foreach (servers, name, info) {
                if (*name && !gw_servers_find (&known, name)) {
                    snprintf (msg, sizeof msg, "No such server '%.200s' for user %.200s", name, user);
                    status = 400;
                }
                else if (!json_is_object (info) || !json_object_get (info, "last_activity")) {
                    snprintf (msg, sizeof msg, "%s", s_servers_shape);
                    status = 400;
                }
                else
                    status = (unsigned) s_timestamp ("last_activity", json_object_get (info, "last_activity"), now,
                                                     &times[n], msg, sizeof msg);
                if (status)
                    break;
                names[n++] = name;
            }
            gw_servers_clear (&known);
        }
    }
    if (!status && s_truthy (last))
        status = (unsigned) s_timestamp ("last_activity", last, now, &user_us, msg, sizeof msg);
    if (status)
        rc = gw_reply_error (req, status, msg);
    else {
        bool ok = true;
        for (size_t i = 0; i < n; i++)
            if (times[i] > 0)          /* before 1970: older than anything stored */
                ok = orr_activity_record (gw_store (gw), user, names[i], times[i]) >= 0 && ok;
        if (user_us > 0)
            s_touch_user (gw, caller, user, user_us);
        rc = ok ? gw_reply (req, 200, NULL, "", 0) : gw_reply_error (req, 503, "Activity store unavailable; try again");
    }
    free (names);
    free (times);
    json_decref (body);
    return rc;
}
