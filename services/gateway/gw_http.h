/*  gw_http: the gateway's HTTP server on libmicrohttpd, and its response helpers.
 *
 *  Every response carries the headers JupyterHub 3.0 clients expect
 *  (shared/reference/jupyterhub-api.md §1); errors are {"status": N, "message": "..."}.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <microhttpd.h>
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
} gw_request_t;

/* Answers one request; returns an MHD result from one of the gw_reply_* helpers. */
typedef enum MHD_Result (gw_route_fn) (void *ctx, const gw_request_t *req);

gw_http_t *gw_http_new (const gw_http_opts_t *opts, gw_route_fn *route, void *ctx);
void gw_http_destroy (gw_http_t **self_p);

enum MHD_Result gw_reply (const gw_request_t *req, unsigned status, const char *content_type, const char *body, size_t len);
enum MHD_Result gw_reply_json (const gw_request_t *req, unsigned status, const char *json_text);
enum MHD_Result gw_reply_error (const gw_request_t *req, unsigned status, const char *message);

#endif
