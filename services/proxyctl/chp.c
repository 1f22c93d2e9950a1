/*  chp: configurable-http-proxy's REST API, one proxy at a time (jupyterhub-api.md §10).
 *
 *  Each proxy has its own orr_http_t, so its connection stays alive between the sync ticks
 *  and the pushes of route.add/route.delete. Authentication is "Authorization: token T"
 *  (CHP accepts only the lower-case scheme). Every request has the CHP timeout setting.
 *  GET /api/routes is the one large answer (every route with its data and last_activity),
 *  accepted up to chp_body_max bytes.
 */
#include "proxyctl.h"
#include "orr_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
chp_init (proxy_t *proxy, const char *api)
{
    size_t n = strlen (api);
    while (n > 0 && api[n - 1] == '/')   /* "http://h:8001/" and "http://h:8001" are one */
        n--;
    proxy->api = orr_strndup (api, n);
    proxy->http = orr_http_new ();
    proxy->state = PROXY_UNKNOWN;
    proxy->seen = json_object ();
}

void
chp_clear (proxy_t *proxy)
{
    free (proxy->api);
    orr_http_destroy (&proxy->http);
    json_decref (proxy->seen);
    memset (proxy, 0, sizeof *proxy);
}

/* One request; the status, or -1 with `err` set when no answer came. */
static long
s_request (proxyctl_t *self, proxy_t *proxy, const char *method, const char *url, json_t *body,
           orr_http_response_t *resp, char *err, size_t errlen)
{
    const char *headers[] = { self->auth_header, "Accept: application/json", "Content-Type: application/json", NULL };
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    int rc = orr_http_request (proxy->http, method, url, headers, text, text ? strlen (text) : 0, self->timeout_ms,
                               resp);
    free (text);
    if (rc != 0) {
        snprintf (err, errlen, "%s", resp->error);
        return -1;
    }
    return resp->status;
}

int
chp_routes (proxyctl_t *self, proxy_t *proxy, json_t **routes, char *err, size_t errlen)
{
    *routes = NULL;
    char *url = orr_sprintf ("%s/api/routes", proxy->api);
    orr_http_response_t resp = { .max_body = self->chp_body_max };
    long status = s_request (self, proxy, "GET", url, NULL, &resp, err, errlen);
    free (url);
    if (status == 200) {
        json_error_t jerr;
        *routes = json_loadb (resp.body, resp.body_len, 0, &jerr);
        if (!json_is_object (*routes)) {
            snprintf (err, errlen, "GET /api/routes: not a JSON object (%s)", jerr.text);
            json_decref (*routes);
            *routes = NULL;
        }
    }
    else if (status > 0)
        snprintf (err, errlen, "GET /api/routes: HTTP %ld", status);
    orr_http_response_clear (&resp);
    return *routes ? 0 : -1;
}

/* A write's outcome: 0 when the status is one of `ok`, else -1 with `err` saying why. */
static int
s_write (proxyctl_t *self, proxy_t *proxy, const char *method, const char *path, json_t *body, const long *ok,
         char *err, size_t errlen)
{
    char *url = route_chp_url (proxy->api, path);
    orr_http_response_t resp = { 0 };
    long status = s_request (self, proxy, method, url, body, &resp, err, errlen);
    free (url);
    orr_http_response_clear (&resp);
    for (; *ok; ok++)
        if (status == *ok)
            return 0;
    if (status > 0)
        snprintf (err, errlen, "%s %s: HTTP %ld", method, path, status);
    return -1;
}

int
chp_post (proxyctl_t *self, proxy_t *proxy, const char *path, json_t *body, char *err, size_t errlen)
{
    static const long ok[] = { 201, 200, 0 };
    return s_write (self, proxy, "POST", path, body, ok, err, errlen);
}

int
chp_delete (proxyctl_t *self, proxy_t *proxy, const char *path, char *err, size_t errlen)
{
    static const long ok[] = { 204, 404, 200, 0 };   /* 404: already gone */
    return s_write (self, proxy, "DELETE", path, NULL, ok, err, errlen);
}
