/*  test_http: orr_http against a real HTTP/1.1 server running inside the test.
 *
 *  The server is a minimal hand-written HTTP/1.1 responder on 127.0.0.1: one accept
 *  thread, one thread per connection, keep-alive with Content-Length framing, and a few
 *  routes that make each client behaviour observable (echo the method, body or a header,
 *  send N bytes with or without Content-Length, never answer, count connections). Being
 *  our own code, it can misbehave on purpose in ways a stock server will not.
 */
#include "testutil.h"

#include "orr_http.h"
#include "orr_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

typedef struct {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    int n_conns; /* connections accepted so far */
} test_server_t;

typedef struct {
    test_server_t *server;
    int fd;
} conn_arg_t;

static int
s_listen (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    CHECK (fd >= 0, "socket: %s", strerror (errno));
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    CHECK (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0, "bind %d: %s", port,
           strerror (errno));
    CHECK (listen (fd, 16) == 0, "listen: %s", strerror (errno));
    return fd;
}

static bool
s_send_all (int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL); /* the client may hang up first */
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t) n;
    }
    return true;
}

/* Sends a Content-Length framed response; a HEAD request gets the head alone. */
static bool
s_respond (int fd, const char *method, int status, const char *content_type, const char *body,
           size_t body_len)
{
    char head[256];
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                      content_type, body_len);
    if (strcmp (method, "HEAD") == 0)
        body_len = 0;
    return s_send_all (fd, head, (size_t) n) && s_send_all (fd, body, body_len);
}

/* Value of header `name` in the request head, copied into out ("" if absent). */
static void
s_header_value (const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t name_len = strlen (name);
    for (const char *line = strstr (head, "\r\n"); line; line = strstr (line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp (h, name, name_len) == 0 && h[name_len] == ':') {
            h += name_len + 1;
            while (*h == ' ')
                h++;
            size_t len = strcspn (h, "\r");
            if (len >= outlen)
                len = outlen - 1;
            memcpy (out, h, len);
            out[len] = '\0';
            return;
        }
    }
}

/* Serves requests on one connection until the client closes it (or a route closes it). */
static void *
s_connection (void *arg_p)
{
    conn_arg_t arg = *(conn_arg_t *) arg_p;
    free (arg_p);
    size_t cap = 1 << 20;
    char *buf = orr_zalloc (cap + 1);
    size_t len = 0;
    for (;;) {
        /* Read the head. */
        char *end;
        while (!(end = strstr (buf, "\r\n\r\n"))) {
            ssize_t n = len < cap ? recv (arg.fd, buf + len, cap - len, 0) : -1;
            if (n <= 0)
                goto done;
            len += (size_t) n;
            buf[len] = '\0';
        }
        size_t head_len = (size_t) (end - buf) + 4;
        char method[16] = "", path[256] = "", value[256];
        sscanf (buf, "%15s %255s", method, path);
        *end = '\0'; /* the head is now a string of its own */
        s_header_value (buf, "Content-Length", value, sizeof value);
        size_t body_len = (size_t) strtoul (value, NULL, 10);
        CHECK (head_len + body_len <= cap, "request too large for the test server");
        while (len < head_len + body_len) {
            ssize_t n = recv (arg.fd, buf + len, cap - len, 0);
            if (n <= 0)
                goto done;
            len += (size_t) n;
        }
        char *body = buf + head_len;

        bool ok = true;
        if (strcmp (path, "/hello") == 0)
            ok = s_respond (arg.fd, method, 200, "text/plain", "hello world", 11);
        else if (strcmp (path, "/method") == 0)
            ok = s_respond (arg.fd, method, 200, "text/plain", method, strlen (method));
        else if (strcmp (path, "/echo") == 0) {
            s_header_value (buf, "Content-Type", value, sizeof value);
            ok = s_respond (arg.fd, method, 200, value[0] ? value : "application/octet-stream",
                            body, body_len);
        }
        else if (strncmp (path, "/header/", 8) == 0) {
            s_header_value (buf, path + 8, value, sizeof value);
            ok = s_respond (arg.fd, method, 200, "text/plain", value, strlen (value));
        }
        else if (strcmp (path, "/json") == 0)
            ok = s_respond (arg.fd, method, 200, "application/json", "{\"ok\":true,\"n\":3}", 17);
        else if (strcmp (path, "/notjson") == 0)
            ok = s_respond (arg.fd, method, 200, "text/html", "<html>", 6);
        else if (strcmp (path, "/empty") == 0)
            ok = s_send_all (arg.fd, "HTTP/1.1 204 No Content\r\n\r\n", 27);
        else if (strcmp (path, "/conns") == 0) {
            pthread_mutex_lock (&arg.server->lock);
            int n_conns = arg.server->n_conns;
            pthread_mutex_unlock (&arg.server->lock);
            snprintf (value, sizeof value, "%d", n_conns);
            ok = s_respond (arg.fd, method, 200, "text/plain", value, strlen (value));
        }
        else if (strncmp (path, "/big/", 5) == 0 || strncmp (path, "/stream/", 8) == 0) {
            /* N bytes, framed by Content-Length (/big) or by closing the connection
             * (/stream), so both of the client's size checks are exercised. */
            bool framed = path[1] == 'b';
            size_t n = strtoul (strchr (path + 1, '/') + 1, NULL, 10);
            char *data = orr_zalloc (n + 1);
            memset (data, 'x', n);
            char head[128];
            int head_n = framed ? snprintf (head, sizeof head,
                                            "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n)
                                : snprintf (head, sizeof head,
                                            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            ok = s_send_all (arg.fd, head, (size_t) head_n) && s_send_all (arg.fd, data, n);
            free (data);
            if (!framed)
                ok = false; /* the end of the connection ends the body */
        }
        else if (strcmp (path, "/hang") == 0) {
            /* Accepted and read, never answered: wait for the client to give up. */
        }
        else
            ok = s_respond (arg.fd, method, 404, "text/plain", "not found", 9);
        if (!ok)
            break;
        /* Keep whatever followed this request (nothing, unless pipelined). */
        len -= head_len + body_len;
        memmove (buf, buf + head_len + body_len, len);
        buf[len] = '\0';
    }
done:
    shutdown (arg.fd, SHUT_RDWR); /* the fd itself is closed by s_server_stop */
    free (buf);
    return NULL;
}

static void *
s_acceptor (void *server_p)
{
    test_server_t *server = server_p;
    for (;;) {
        int fd = accept (server->listen_fd, NULL, NULL);
        if (fd < 0)
            break; /* listening socket shut down: the test is over */
        pthread_mutex_lock (&server->lock);
        if (server->n_conns == MAX_CONNS) {
            pthread_mutex_unlock (&server->lock);
            close (fd);
            continue;
        }
        /* Head and body go out in separate sends: without NODELAY, Nagle holds the body
         * for the client's delayed ACK (40 ms a response). */
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_arg_t *arg = orr_zalloc (sizeof *arg);
        arg->server = server;
        arg->fd = fd;
        server->conn_fds[server->n_conns] = fd;
        pthread_t *thread = &server->conn_threads[server->n_conns];
        CHECK (pthread_create (thread, NULL, s_connection, arg) == 0, "pthread_create failed");
        server->n_conns++;
        pthread_mutex_unlock (&server->lock);
    }
    return NULL;
}

static void
s_server_start (test_server_t *server)
{
    memset (server, 0, sizeof *server);
    server->port = orr_free_port ();
    CHECK (server->port > 0, "no free port");
    server->listen_fd = s_listen (server->port);
    pthread_mutex_init (&server->lock, NULL);
    CHECK (pthread_create (&server->acceptor, NULL, s_acceptor, server) == 0,
           "pthread_create failed");
}

static void
s_server_stop (test_server_t *server)
{
    shutdown (server->listen_fd, SHUT_RDWR); /* wakes accept() */
    pthread_join (server->acceptor, NULL);
    close (server->listen_fd);
    for (int i = 0; i < server->n_conns; i++) {
        shutdown (server->conn_fds[i], SHUT_RDWR);
        pthread_join (server->conn_threads[i], NULL);
        close (server->conn_fds[i]);
    }
    pthread_mutex_destroy (&server->lock);
}

/* ------------------------------------------------------------------------------------ */

static char s_base[64]; /* http://127.0.0.1:port, set once before any request */

/* The test server's URL for `path`, in a buffer per thread (the workers run at once). */
static const char *
s_url (const char *path)
{
    static _Thread_local char url[128];
    snprintf (url, sizeof url, "%s%s", s_base, path);
    return url;
}

/* A request to the test server's `path`. */
static int
s_call (orr_http_t *http, const char *method, const char *path, const char *const *headers,
        const char *body, size_t body_len, orr_http_response_t *resp)
{
    return orr_http_request (http, method, s_url (path), headers, body, body_len, 5000, resp);
}

static void
test_basic_requests (orr_http_t *http)
{
    orr_http_response_t resp = { 0 };

    CHECK (s_call (http, "GET", "/hello", NULL, NULL, 0, &resp) == 0, "GET /hello: %s", resp.error);
    CHECK_EQ_INT (resp.status, 200);
    CHECK_EQ_STR (resp.body, "hello world");
    CHECK_EQ_INT (resp.body_len, 11);
    CHECK_EQ_STR (resp.content_type, "text/plain");

    /* POST a body with a NUL inside: it comes back byte for byte. */
    static const char payload[] = "line one\0line two\n";
    const char *headers[] = { "Content-Type: application/x-test", NULL };
    CHECK (s_call (http, "POST", "/echo", headers, payload, sizeof payload, &resp) == 0,
           "POST /echo: %s", resp.error);
    CHECK_EQ_INT (resp.status, 200);
    CHECK_EQ_INT (resp.body_len, sizeof payload);
    CHECK (memcmp (resp.body, payload, sizeof payload) == 0, "echoed body differs");
    CHECK_EQ_STR (resp.content_type, "application/x-test");

    /* Methods, with and without bodies; the previous response is released by the call. */
    const char *methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" };
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        CHECK (s_call (http, methods[i], "/method", NULL, NULL, 0, &resp) == 0, "%s: %s",
               methods[i], resp.error);
        CHECK_EQ_STR (resp.body, methods[i]);
        CHECK (s_call (http, methods[i], "/method", NULL, "b", 1, &resp) == 0, "%s with body: %s",
               methods[i], resp.error);
        CHECK_EQ_STR (resp.body, methods[i]);
    }
    CHECK (s_call (http, "HEAD", "/hello", NULL, NULL, 0, &resp) == 0, "HEAD: %s", resp.error);
    CHECK_EQ_INT (resp.status, 200);
    CHECK_EQ_STR (resp.body, "");

    /* Caller headers are sent. */
    const char *x_test[] = { "X-Test: forty two", NULL };
    CHECK (s_call (http, "GET", "/header/X-Test", x_test, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_STR (resp.body, "forty two");
    /* No Expect: 100-continue wait before a large body. */
    size_t big_len = 200000;
    char *big = orr_zalloc (big_len);
    memset (big, 'b', big_len);
    int64_t t0 = orr_mono_ms ();
    CHECK (s_call (http, "PUT", "/echo", NULL, big, big_len, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.body_len, big_len);
    CHECK (orr_mono_ms () - t0 < 900, "large PUT took %lld ms", (long long) (orr_mono_ms () - t0));
    free (big);
    CHECK (s_call (http, "GET", "/header/Expect", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_STR (resp.body, "");

    /* A 404 is a response, not a failure. */
    CHECK (s_call (http, "GET", "/missing", NULL, NULL, 0, &resp) == 0, "GET /missing: %s",
           resp.error);
    CHECK_EQ_INT (resp.status, 404);
    CHECK_EQ_STR (resp.body, "not found");

    /* 204: empty body, still a string. */
    CHECK (s_call (http, "GET", "/empty", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.status, 204);
    CHECK (resp.body && resp.body_len == 0, "204 body should be \"\"");

    /* All of the above went over one kept-alive connection. */
    CHECK (s_call (http, "GET", "/conns", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_STR (resp.body, "1");

    orr_http_response_clear (&resp);
    CHECK (resp.body == NULL && resp.status == 0, "clear leaves the response empty");
    orr_http_response_clear (&resp); /* twice is harmless */
}

static void
test_body_cap (orr_http_t *http)
{
    orr_http_response_t resp = { 0 };
    resp.max_body = 1000;
    /* Exactly at the cap is fine. */
    CHECK (s_call (http, "GET", "/big/1000", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.body_len, 1000);
    CHECK_EQ_INT (strlen (resp.body), 1000);
    /* One byte over, announced by Content-Length or only discovered while reading. */
    const char *over[] = { "/big/1001", "/big/100000", "/stream/1001", "/stream/100000" };
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        CHECK (s_call (http, "GET", over[i], NULL, NULL, 0, &resp) == -1,
               "%s accepted over the cap", over[i]);
        CHECK (strstr (resp.error, "exceeds 1000 bytes") != NULL, "%s: %s", over[i], resp.error);
        CHECK (resp.body == NULL && resp.body_len == 0, "%s: no partial body", over[i]);
    }
    CHECK_EQ_INT (resp.max_body, 1000); /* kept for the next request */
    CHECK (s_call (http, "GET", "/stream/1000", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.body_len, 1000);

    /* The default cap: 16 MiB. */
    resp.max_body = 0;
    CHECK (s_call (http, "GET", "/stream/300000", NULL, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_INT (resp.body_len, 300000);
    char path[64];
    snprintf (path, sizeof path, "/big/%zu", ORR_HTTP_DEFAULT_MAX_BODY + 1);
    CHECK (orr_http_request (http, "GET", s_url (path), NULL, NULL, 0, 10000, &resp) == -1,
           "16 MiB + 1 accepted");
    CHECK (strstr (resp.error, "exceeds 16777216 bytes") != NULL, "%s", resp.error);
    orr_http_response_clear (&resp);
}

static void
test_failures (orr_http_t *http)
{
    orr_http_response_t resp = { 0 };

    /* Nothing listens: refused at once. */
    int closed_port = orr_free_port ();
    char url[64];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", closed_port);
    int64_t t0 = orr_mono_ms ();
    CHECK (orr_http_request (http, "GET", url, NULL, NULL, 0, 5000, &resp) == -1,
           "refused port answered");
    CHECK (orr_mono_ms () - t0 < 2000, "refusal took %lld ms", (long long) (orr_mono_ms () - t0));
    CHECK (strcasestr (resp.error, "connect") != NULL, "error: %s", resp.error);
    CHECK (resp.status == 0 && resp.body == NULL, "no response after a refusal");

    /* A listener that completes the handshake (kernel backlog) and never reads. */
    int silent_port = orr_free_port ();
    int silent_fd = s_listen (silent_port);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", silent_port);
    t0 = orr_mono_ms ();
    CHECK (orr_http_request (http, "GET", url, NULL, NULL, 0, 300, &resp) == -1,
           "silent server answered");
    int64_t took = orr_mono_ms () - t0;
    CHECK (took >= 250 && took < 2000, "timeout after %lld ms, wanted ~300", (long long) took);
    CHECK (strstr (resp.error, "timed out") != NULL, "error: %s", resp.error);
    close (silent_fd);

    /* Our server accepts and reads the request, and never answers. */
    t0 = orr_mono_ms ();
    CHECK (orr_http_request (http, "POST", s_url ("/hang"), NULL, "x", 1, 300, &resp) == -1,
           "hanging route answered");
    took = orr_mono_ms () - t0;
    CHECK (took >= 250 && took < 2000, "timeout after %lld ms, wanted ~300", (long long) took);
    CHECK (strstr (resp.error, "timed out") != NULL, "error: %s", resp.error);

    /* The handle is still good afterwards. */
    CHECK (s_call (http, "GET", "/hello", NULL, NULL, 0, &resp) == 0, "after failures: %s",
           resp.error);
    CHECK_EQ_STR (resp.body, "hello world");

    /* Not an HTTP URL at all. */
    CHECK (orr_http_request (http, "GET", "file:///etc/passwd", NULL, NULL, 0, 5000, &resp) == -1,
           "file:// URL fetched");
    CHECK (resp.error[0] != '\0', "no error text");
    CHECK (orr_http_request (http, "GET", "not a url", NULL, NULL, 0, 5000, &resp) == -1,
           "junk URL fetched");
    orr_http_response_clear (&resp);
}

static void
test_json (orr_http_t *http)
{
    char err[256] = "";
    long status = 0;
    json_t *reply =
        orr_http_json (http, "GET", s_url ("/json"), NULL, NULL, 5000, &status, err, sizeof err);
    CHECK (reply != NULL, "%s", err);
    CHECK_EQ_INT (status, 200);
    CHECK (json_is_true (json_object_get (reply, "ok")), "reply.ok");
    CHECK_EQ_INT (json_integer_value (json_object_get (reply, "n")), 3);
    json_decref (reply);

    json_t *body = json_pack ("{s:[i,i], s:s}", "a", 1, 2, "name", "\xc3\xa9l\xc3\xa8ve");
    reply =
        orr_http_json (http, "POST", s_url ("/echo"), NULL, body, 5000, &status, err, sizeof err);
    CHECK (reply != NULL && json_equal (reply, body), "echo: %s", err);
    json_decref (reply);
    json_decref (body);

    /* The JSON headers are sent, and caller headers ride along. */
    const char *headers[] = { "X-Test: yes", NULL };
    orr_http_response_t resp = { 0 };
    CHECK (s_call (http, "GET", "/header/X-Test", headers, NULL, 0, &resp) == 0, "%s", resp.error);
    CHECK_EQ_STR (resp.body, "yes");
    orr_http_response_clear (&resp);
    reply = orr_http_json (http, "PUT", s_url ("/echo"), headers, json_true (), 5000, &status, err,
                           sizeof err);
    CHECK (reply == json_true (), "a bare JSON value round-trips: %s", err);

    reply =
        orr_http_json (http, "GET", s_url ("/empty"), NULL, NULL, 5000, &status, err, sizeof err);
    CHECK (json_is_null (reply), "empty body -> null: %s", err);
    CHECK_EQ_INT (status, 204);

    reply =
        orr_http_json (http, "GET", s_url ("/notjson"), NULL, NULL, 5000, &status, err, sizeof err);
    CHECK (reply == NULL, "HTML parsed as JSON");
    CHECK (strstr (err, "is not JSON") != NULL, "%s", err);
    CHECK_EQ_INT (status, 200);

    reply = orr_http_json (http, "GET", s_url ("/hang"), NULL, NULL, 200, NULL, err, sizeof err);
    CHECK (reply == NULL && strstr (err, "timed out") != NULL, "%s", err);
}

/* Handles are independent: one per thread, used at the same time. */
static void *
s_worker (void *arg)
{
    orr_http_t *http = orr_http_new ();
    orr_http_response_t resp = { 0 };
    for (int i = 0; i < 20; i++) {
        CHECK (s_call (http, "GET", "/hello", NULL, NULL, 0, &resp) == 0, "worker: %s", resp.error);
        CHECK_EQ_STR (resp.body, "hello world");
    }
    orr_http_response_clear (&resp);
    orr_http_destroy (&http);
    CHECK (http == NULL, "destroy clears the pointer");
    return arg;
}

static void
test_threads (void)
{
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        CHECK (pthread_create (&threads[i], NULL, s_worker, NULL) == 0, "pthread_create");
    for (int i = 0; i < 4; i++)
        pthread_join (threads[i], NULL);
}

int
main (void)
{
    test_server_t server;
    s_server_start (&server);
    snprintf (s_base, sizeof s_base, "http://127.0.0.1:%d", server.port);

    orr_http_t *http = orr_http_new ();
    test_basic_requests (http);
    test_body_cap (http);
    test_failures (http);
    test_json (http);
    orr_http_destroy (&http);
    orr_http_destroy (&http); /* NULL-safe */
    test_threads ();

    s_server_stop (&server);
    printf ("test_http: ok\n");
    return 0;
}
