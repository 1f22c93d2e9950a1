/*  gw_api_server_logs: GET /hub/api/users/{name}/server/logs and
 *  .../servers/{server}/logs -- the tail of a server's log, an Orrery extension
 *  (docs/api.md) for admins: JupyterHub 3.0 has no such endpoint, and a log may show what
 *  the user ran, so it needs admin:servers (which the admin role holds) rather than
 *  anything a user holds on their own servers.
 *
 *  The log lives on the server's node; the spawner replicas of that node answer the bus
 *  method "logs" (proto/orrery/spawner.proto). The reply is the text as text/plain.
 */
#include "gw_api.h"
#include "orr_util.h"
#include "orrery/spawner.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define LOGS_MAX_BYTES (1024 * 1024)      /* the spawner's own bound on max_bytes */

static enum MHD_Result
s_logs (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *user, const char *server)
{
    enum MHD_Result rc;
    char *target = orr_sprintf ("%s/%s", user, server);
    orr_scope_target_t t = { .user = user, .server = target };
    static const char *const need[] = { "admin:servers", NULL };
    bool ok = gw_allowed (gw, req, caller, need, &t, &rc);
    free (target);
    if (!ok)
        return rc;
    long max_bytes = 0;
    const char *arg = gw_arg (req, "max_bytes");
    if (arg && (orr_parse_long (arg, &max_bytes) != 0 || max_bytes < 1 || max_bytes > LOGS_MAX_BYTES))
        return gw_reply_errorf (req, 400, "max_bytes must be an integer from 1 to %d", LOGS_MAX_BYTES);
    Orrery__LogsRequest m = ORRERY__LOGS_REQUEST__INIT;
    m.user = (char *) user;
    m.server = (char *) server;
    m.max_bytes = (int32_t) max_bytes;
    Orrery__LogsReply *reply = NULL;
    char msg[256];
    int st = gw_call (gw, "spawner", "logs", &m.base, &orrery__logs_reply__descriptor, (ProtobufCMessage **) &reply,
                      msg, sizeof msg);
    if (st == 503 || st == 504)
        rc = gw_reply_error (req, 503, "spawner unavailable");
    else if (st != 200)
        rc = gw_reply_error (req, (unsigned) (st >= 400 && st < 600 ? st : 502), msg);
    else {
        const char *text = reply->text ? reply->text : "";
        rc = gw_reply (req, 200, "text/plain; charset=utf-8", text, strlen (text));
    }
    if (reply)
        orrery__logs_reply__free_unpacked (reply, NULL);
    return rc;
}

enum MHD_Result
gw_api_server_logs (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_logs (gw, req, caller, params[0], "");
}

enum MHD_Result
gw_api_named_server_logs (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_logs (gw, req, caller, params[0], params[1]);
}
