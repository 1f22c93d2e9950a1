/*  gw_routes: the gateway's routing table, from method and path to a handler.
 *
 *  The JupyterHub 3.0 contract (shared/reference/jupyterhub-api.md §4) decides paths and
 *  statuses. This revision serves the endpoints that need no identity: the API root,
 *  /hub/health and /hub/api/health; every other /hub/api path is a JSON 404, as the hub
 *  answers unknown API paths. Identity-bearing endpoints join with the auth service.
 */
#include "gw_routes.h"

#include <stdbool.h>
#include <string.h>

static bool
s_is (const gw_request_t *req, const char *method, const char *path)
{
    return strcmp (req->method, method) == 0 && strcmp (req->path, path) == 0;
}

enum MHD_Result
gw_route (void *ctx, const gw_request_t *req)
{
    bool get = strcmp (req->method, "GET") == 0 || strcmp (req->method, "HEAD") == 0;
    if (get && (strcmp (req->path, "/hub/health") == 0 || strcmp (req->path, "/hub/api/health") == 0))
        return gw_reply (req, 200, "text/html", "", 0);
    if (s_is (req, "GET", "/hub/api") || s_is (req, "GET", "/hub/api/"))
        return gw_reply_json (req, 200, "{\"version\":\"3.0.0\"}");
    /* unknown paths, in the API or not, are JSON 404s as the hub answers them */
    return gw_reply_error (req, 404, "Not Found");
}
