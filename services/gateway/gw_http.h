/*  gw_http: the gateway's HTTP server on libmicrohttpd, and its response helpers.
 *
 *  Every response carries the headers JupyterHub 3.0 clients expect
 *  (shared/reference/jupyterhub-api.md §1); errors are {"status": N, "message": "..."}.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct gw_http_t gw_http_t;

typedef struct {
    const char *ip;
    int port;
    unsigned threads;
    unsigned max_connections;
    unsigned timeout_s;
    size_t max_body;          /* bytes; larger bodies get 413 */
    const char *base_url;     /* "/" or "/prefix/" */
} gw_http_opts_t;

typedef struct {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;         /* with base_url removed, always starting with "/" */
    const char *body;
    size_t body_len;
    void *state;              /* gw_http's per-request state (for gw_request_defer) */
} gw_request_t;

/* A request argument (query string or urlencoded form), header or cookie; NULL if absent.
 * Owned by MHD, valid during the request. Header names are case-insensitive. */
const char *gw_arg (const gw_request_t *req, const char *name);
/* Is the query argument there at all ("?flag" has no value, so gw_arg gives NULL)? */
bool gw_arg_present (const gw_request_t *req, const char *name);
const char *gw_header (const gw_request_t *req, const char *name);
const char *gw_cookie (const gw_request_t *req, const char *name);
/* A field of an application/x-www-form-urlencoded body, decoded; caller frees; NULL if
 * absent. */
char *gw_form_value (const gw_request_t *req, const char *name);
/* s percent-encoded for a URL query value (unreserved characters kept); caller frees. */
char *gw_percent_encode (const char *s);
/* The query string rebuilt (percent-encoded) without the arguments named in skip
 * (NULL-terminated or NULL); "" when empty. Caller frees. */
char *gw_query (const gw_request_t *req, const char *const *skip);
/* Every value of a repeated query argument (?scopes=a&scopes=b), NULL-terminated; caller frees
 * the array (not the strings). */
const char **gw_args_all (const gw_request_t *req, const char *name);
/* The client's address: the proxy's X-Forwarded-For entry when the peer is loopback (the
 * proxy), else the peer. Into out. */
void gw_client_addr (const gw_request_t *req, char *out, size_t outlen);

/* Deferring an answer. A handler that cannot answer yet (it waits for an event) calls
 * gw_request_defer and then suspends the connection (gw_watch.c does, under its lock);
 * no thread is held meanwhile. When the connection is resumed, MHD calls the access
 * handler again for the same request, and gw_http calls `resume` (instead of routing
 * again) with the same `arg`; it must answer, or defer and suspend once more. `arg` lives
 * as long as the request: `free_fn` (may be NULL) frees it when the request ends,
 * answered or not (the client went away, the daemon stopped). The daemon runs with
 * MHD_ALLOW_SUSPEND_RESUME. */
typedef enum MHD_Result (gw_resume_fn) (void *arg, const gw_request_t *req);
void gw_request_defer (const gw_request_t *req, gw_resume_fn *resume, void *arg, void (*free_fn) (void *));

/* Capturing an answer. While a capture is set on a request, a 200 application/json answer
 * with no extra headers is also copied into it (body, len; the setter frees body). The
 * router sets one around handlers whose answers the reply cache may keep. */
typedef struct {
    char *body;
    size_t len;
} gw_reply_capture_t;
void gw_request_capture (const gw_request_t *req, gw_reply_capture_t *capture);

/* Answers one request; returns an MHD result from one of the gw_reply_* helpers. */
typedef enum MHD_Result (gw_route_fn) (void *ctx, const gw_request_t *req);

gw_http_t *gw_http_new (const gw_http_opts_t *opts, gw_route_fn *route, void *ctx);
void gw_http_destroy (gw_http_t **self_p);

enum MHD_Result gw_reply (const gw_request_t *req, unsigned status, const char *content_type, const char *body, size_t len);
/* gw_reply for a body the caller allocated (malloc): MHD sends it without a copy and
 * frees it. */
enum MHD_Result gw_reply_take (const gw_request_t *req, unsigned status, const char *content_type, char *body,
                               size_t len);
enum MHD_Result gw_reply_json (const gw_request_t *req, unsigned status, const char *json_text);
enum MHD_Result gw_reply_error (const gw_request_t *req, unsigned status, const char *message);
/* As gw_reply, plus extra headers given as name, value, name, value, ..., NULL. A name
 * may repeat (Set-Cookie). */
enum MHD_Result gw_reply_with (const gw_request_t *req, unsigned status, const char *content_type, const char *body,
                               size_t len, const char *const *headers);
/* JSON text of `value` (stolen) with status. */
enum MHD_Result gw_reply_jsonv (const gw_request_t *req, unsigned status, json_t *value);
/* The common headers (version, CORS, CSP) on a response built elsewhere (streams). */
void gw_response_common_headers (struct MHD_Response *resp, const gw_request_t *req);
/* Status and message printf-style, as a JSON error. */
enum MHD_Result gw_reply_errorf (const gw_request_t *req, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
