/*  orr_http: outbound HTTP client (libcurl easy interface).
 *
 *  One orr_http_t is one reusable connection cache: keep one per thread (or per worker)
 *  and make every call through it, so requests to the same host reuse the kept-alive
 *  connection. A handle is not thread-safe; different handles are independent.
 *
 *  Usage:
 *      orr_http_t *http = orr_http_new ();
 *      orr_http_response_t resp = {0};               // zeroed before first use
 *      resp.max_body = 1 << 20;                      // optional cap, 0 = 16 MiB
 *      if (orr_http_request (http, "GET", url, NULL, NULL, 0, 5000, &resp) == 0)
 *          use (resp.status, resp.body, resp.body_len);
 *      else
 *          orr_warn ("GET %s: %s", url, resp.error);
 *      orr_http_response_clear (&resp);
 *      orr_http_destroy (&http);
 *
 *  Redirects are not followed (internal service calls should not be redirected, and a
 *  caller that wants to can read the Location itself); only http and https URLs are
 *  allowed. Proxies come from the environment (http_proxy, https_proxy, no_proxy) as
 *  with the curl tool. A body without a Content-Type header goes out as curl's default,
 *  application/x-www-form-urlencoded: name the type when it matters.
 */
#ifndef ORR_HTTP_H
#define ORR_HTTP_H

#include <jansson.h>
#include <stddef.h>

/* Response bodies larger than this are refused unless the caller sets max_body. */
#define ORR_HTTP_DEFAULT_MAX_BODY ((size_t) 16 << 20)
/* timeout_ms <= 0 means this. */
#define ORR_HTTP_DEFAULT_TIMEOUT_MS 30000L

typedef struct orr_http orr_http_t;

typedef struct {
    /* in: the largest body accepted; 0 = ORR_HTTP_DEFAULT_MAX_BODY. A larger body makes the
     * request fail (-1), it is never silently truncated. Kept across requests and clears. */
    size_t max_body;
    /* out: */
    long status;          /* HTTP status code; 0 when no response arrived */
    char *body;           /* malloc'd, NUL-terminated ("" when empty) on success, else NULL */
    size_t body_len;      /* bytes in body, not counting the NUL */
    char *content_type;   /* malloc'd copy of Content-Type, or NULL */
    char error[512];      /* why the request failed ("METHOD url: reason"), when it returned -1 */
} orr_http_response_t;

orr_http_t *orr_http_new (void);
void orr_http_destroy (orr_http_t **http_p);

/* Sends one request and waits for the whole response, at most timeout_ms in total
 * (connect included). `headers` is NULL or a NULL-terminated array of "Name: value".
 * `body` (body_len bytes, may contain NULs) is sent when non-NULL, for any method.
 * `resp` must be zeroed before its first use; a previous response in it is released.
 * Returns 0 when a response was received, whatever its status, and -1 on a transport
 * failure (refused, timed out, TLS, body over max_body, ...) with resp->error set. */
int orr_http_request (orr_http_t *http, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len,
                      long timeout_ms, orr_http_response_t *resp);

/* Trusts the PEM certificates in `path` (libcurl's CAINFO) instead of the system's CA
 * bundle for every later https request of this handle, e.g. a Kubernetes service
 * account's ca.crt. NULL goes back to the system bundle. The path is copied; the file is
 * read at each connection. */
void orr_http_set_ca_file (orr_http_t *http, const char *path);

/* Frees the body and content type and resets the output fields (max_body is kept). */
void orr_http_response_clear (orr_http_response_t *resp);

/* JSON in, JSON out: sends `body` (may be NULL) as application/json, asks for JSON and
 * returns the parsed response body (caller owns; json null for an empty body) whatever the
 * status, which goes to *status (may be NULL). NULL with `err` set on a transport failure
 * or a response body that is not JSON. Response bodies are capped at the default size. */
json_t *orr_http_json (orr_http_t *http, const char *method, const char *url,
                       const char *const *headers, json_t *body, long timeout_ms, long *status,
                       char *err, size_t errlen);

#endif
