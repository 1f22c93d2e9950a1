/*  orr_http: outbound HTTP on libcurl's easy interface.
 *
 *  Each orr_http_t owns one CURL easy handle for its whole life. The handle is where
 *  libcurl keeps its connection cache, so reusing it is what gives keep-alive: the next
 *  request to the same host:port goes out on the already-open connection. Between requests
 *  the handle is curl_easy_reset, which forgets every option of the previous request (a
 *  POST body, a custom method) but keeps the live connections and the DNS cache.
 *
 *  libcurl must be initialised once per process before any handle exists, and
 *  curl_global_init is not thread-safe on older versions; pthread_once makes the first
 *  orr_http_new do it, from whichever thread comes first. It is never cleaned up: services
 *  make HTTP calls until they exit.
 *
 *  Bodies are collected into a growing buffer with a hard cap. A response over the cap is
 *  an error, not a truncation: a cut JSON document parsed as if whole is worse than a
 *  clear failure. The cap is enforced twice: CURLOPT_MAXFILESIZE refuses a too-large
 *  Content-Length before any byte is read, and the write callback stops chunked or
 *  close-delimited bodies as soon as they pass it.
 *
 *  CURLOPT_NOSIGNAL keeps libcurl from using SIGALRM for timeouts, which is unsafe in
 *  threaded programs; Debian's libcurl resolves names on a thread, so timeouts still
 *  cover DNS.
 */
#include "orr_http.h"

#include "orr_util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct orr_http {
    CURL *curl;
    char *ca_file;        /* CAINFO for every request, or NULL for the system bundle */
};

/* The response body being received, bounded by max. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool too_large;
} body_sink_t;

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;

static void
s_curl_global_init (void)
{
    CURLcode rc = curl_global_init (CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        /* Only fails when out of memory or the TLS library cannot start: fatal, as OOM is
         * everywhere in Orrery. */
        fprintf (stderr, "orrery: curl_global_init: %s\n", curl_easy_strerror (rc));
        abort ();
    }
}

orr_http_t *
orr_http_new (void)
{
    pthread_once (&s_curl_once, s_curl_global_init);
    orr_http_t *http = orr_zalloc (sizeof *http);
    http->curl = curl_easy_init ();
    if (!http->curl) {
        fprintf (stderr, "orrery: curl_easy_init failed\n");
        abort ();
    }
    return http;
}

void
orr_http_destroy (orr_http_t **http_p)
{
    if (!http_p || !*http_p)
        return;
    curl_easy_cleanup ((*http_p)->curl);
    free ((*http_p)->ca_file);
    free (*http_p);
    *http_p = NULL;
}

void
orr_http_set_ca_file (orr_http_t *http, const char *path)
{
    if (!http)
        return;
    free (http->ca_file);
    http->ca_file = path ? orr_strdup (path) : NULL;
}

void
orr_http_response_clear (orr_http_response_t *resp)
{
    if (!resp)
        return;
    free (resp->body);
    free (resp->content_type);
    resp->body = NULL;
    resp->content_type = NULL;
    resp->body_len = 0;
    resp->status = 0;
    resp->error[0] = '\0';
}

static size_t
s_on_body (char *chunk, size_t size, size_t nmemb, void *userdata)
{
    body_sink_t *sink = userdata;
    size_t n = size * nmemb;
    if (n > sink->max - sink->len) {
        sink->too_large = true;
        return CURL_WRITEFUNC_ERROR; /* anything but n aborts the transfer */
    }
    if (sink->len + n + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap < sink->len + n + 1)
            cap *= 2;
        sink->data = orr_realloc (sink->data, cap);
        sink->cap = cap;
    }
    memcpy (sink->data + sink->len, chunk, n);
    sink->len += n;
    sink->data[sink->len] = '\0';
    return n;
}

static bool
s_has_header (const char *const *headers, const char *name)
{
    size_t len = strlen (name);
    for (const char *const *h = headers; h && *h; h++)
        if (strncasecmp (*h, name, len) == 0 && ((*h)[len] == ':' || (*h)[len] == ';'))
            return true;
    return false;
}

static struct curl_slist *
s_header_list (const char *const *headers)
{
    struct curl_slist *list = NULL;
    for (const char *const *h = headers; h && *h; h++) {
        list = curl_slist_append (list, *h);
        if (!list)
            abort (); /* out of memory */
    }
    /* No "Expect: 100-continue" round trip before larger bodies: our peers answer fast and
     * some minimal servers never send the interim 100. */
    if (!s_has_header (headers, "Expect")) {
        list = curl_slist_append (list, "Expect:");
        if (!list)
            abort ();
    }
    return list;
}

/* Sets the method and body: GET and HEAD have their own options, a body is always sent
 * as POSTFIELDS, and any other verb is a custom request line over that. */
static void
s_set_method (CURL *curl, const char *method, const char *body, size_t body_len)
{
    bool wants_body = body != NULL || strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0
                      || strcmp (method, "PATCH") == 0;
    if (wants_body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body ? body : "");
        if (strcmp (method, "POST") != 0)
            curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    }
    else if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    else if (strcmp (method, "GET") == 0)
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
    else
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
}

int
orr_http_request (orr_http_t *http, const char *method, const char *url,
                  const char *const *headers, const char *body, size_t body_len,
                  long timeout_ms, orr_http_response_t *resp)
{
    if (!resp)
        return -1;
    orr_http_response_clear (resp);
    if (!http || !url || !method || !*method) {
        snprintf (resp->error, sizeof resp->error, "bad request arguments");
        return -1;
    }
    CURL *curl = http->curl;
    body_sink_t sink = { .max = resp->max_body ? resp->max_body : ORR_HTTP_DEFAULT_MAX_BODY };
    char curl_error[CURL_ERROR_SIZE] = "";
    struct curl_slist *header_list = s_header_list (headers);

    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS,
                      timeout_ms > 0 ? timeout_ms : ORR_HTTP_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, header_list);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "orrery");
    if (http->ca_file) /* curl_easy_reset above restored the system bundle */
        curl_easy_setopt (curl, CURLOPT_CAINFO, http->ca_file);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    if (sink.max <= (size_t) INT64_MAX) /* a larger cap is no cap */
        curl_easy_setopt (curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) sink.max);
    s_set_method (curl, method, body, body_len);

    CURLcode rc = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &resp->status);
    /* The error buffer lives on this stack frame: unhook it before returning. */
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all (header_list);

    if (rc != CURLE_OK) {
        if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED)
            snprintf (resp->error, sizeof resp->error, "%s %s: response body exceeds %zu bytes",
                      method, url, sink.max);
        else
            snprintf (resp->error, sizeof resp->error, "%s %s: %s", method, url,
                      curl_error[0] ? curl_error : curl_easy_strerror (rc));
        free (sink.data);
        return -1;
    }
    char *content_type = NULL;
    if (curl_easy_getinfo (curl, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK && content_type)
        resp->content_type = orr_strdup (content_type);
    resp->body = sink.data ? sink.data : orr_strdup ("");
    resp->body_len = sink.len;
    return 0;
}

/* Compact JSON text in a malloc'd buffer of our own (json_dumps would use jansson's
 * allocator, which the caller's free() need not match). */
static char *
s_json_text (json_t *json, size_t *len)
{
    size_t n = json_dumpb (json, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    char *text = orr_zalloc (n + 1);
    json_dumpb (json, text, n, JSON_COMPACT | JSON_ENCODE_ANY);
    *len = n;
    return text;
}

json_t *
orr_http_json (orr_http_t *http, const char *method, const char *url, const char *const *headers,
               json_t *body, long timeout_ms, long *status, char *err, size_t errlen)
{
    size_t n_headers = 0;
    while (headers && headers[n_headers])
        n_headers++;
    const char **all = orr_zalloc ((n_headers + 3) * sizeof *all);
    size_t n_all = 0;
    for (size_t i = 0; i < n_headers; i++)
        all[n_all++] = headers[i];
    if (!s_has_header (headers, "Accept"))
        all[n_all++] = "Accept: application/json";
    if (body && !s_has_header (headers, "Content-Type"))
        all[n_all++] = "Content-Type: application/json";

    size_t text_len = 0;
    char *text = body ? s_json_text (body, &text_len) : NULL;
    orr_http_response_t resp = { 0 };
    int rc = orr_http_request (http, method, url, all, text, text_len, timeout_ms, &resp);
    free (text);
    free (all);
    if (status)
        *status = resp.status;
    json_t *reply = NULL;
    if (rc != 0) {
        if (err && errlen)
            snprintf (err, errlen, "%s", resp.error);
    }
    else if (strspn (resp.body, " \t\r\n") == resp.body_len)
        reply = json_null ();
    else {
        json_error_t jerr;
        reply = json_loadb (resp.body, resp.body_len, JSON_DECODE_ANY, &jerr);
        if (!reply && err && errlen)
            snprintf (err, errlen, "%s %s: response (HTTP %ld) is not JSON: %s", method, url,
                      resp.status, jerr.text);
    }
    orr_http_response_clear (&resp);
    return reply;
}
