/*  gw: the gateway's shared context and the request plumbing every handler uses.
 *
 *  One gw_t per process, read-only after start-up except for what is behind its own locks
 *  (the credential cache, the activity batch, the event publisher). MHD's threads run the
 *  handlers; each thread lazily gets its own Redis store and bus client (neither is
 *  thread-safe), so handlers never share a connection.
 */
#ifndef GW_H
#define GW_H

#include "gw_http.h"
#include "orr_bus.h"
#include "orr_bus_client.h"
#include "orr_events.h"
#include "orr_hubservices.h"
#include "orr_identity.h"
#include "orr_roles.h"
#include "orr_store.h"

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct gw_cache_t gw_cache_t;
typedef struct gw_activity_t gw_activity_t;
typedef struct gw_watch_t gw_watch_t;
typedef struct gw_reply_cache_t gw_reply_cache_t;

typedef struct {
    char *redis_url;
    orr_bus_opts_t *bus;
    orr_roles_t *roles;
    orr_hubservices_t *services;
    char *cookie_secret;
    char *base_url;           /* "/" or "/prefix/" */
    long cache_ms;            /* how long a validated credential is trusted without Redis */
    long page_max;            /* api_page_max_limit */
    long slow_spawn_timeout_s;/* how long POST/DELETE of a server wait before 202 */
    char *hub_url;            /* the hub route's target (what GET /hub/api/proxy shows for "/") */
    gw_watch_t *watch;        /* server events for waiting requests and progress streams */
    gw_cache_t *cache;
    gw_reply_cache_t *replies;/* rendered user and group reads (gw_reply_cache.h) */
    gw_activity_t *activity;
    orr_events_pub_t *pub;
    pthread_mutex_t pub_lock;
    /* metrics */
    uint64_t requests, cache_hits, cache_misses;
    uint64_t by_class[6];     /* responses by status class 1xx..5xx */
} gw_t;

/* Who is asking. */
typedef struct {
    bool authenticated;
    bool via_cookie;
    orr_identity_t id;
    char credential[128];     /* "t:<sha256 of the token>" or "s:<session id>" when authenticated */
} gw_caller_t;

/* The thread's store and bus client. */
orr_store_t *gw_store (gw_t *gw);
orr_bus_client_t *gw_bus (gw_t *gw);

/* Calls <service>.<method> over the bus with `msg` as body. Returns the status (200 ok;
 * 503 no worker, 429 busy, 504 no reply: lib/orr_rpc.h) and fills message on failure
 * (the service's error text, else "<service> service unavailable"); on success, *reply
 * (if not NULL) is the unpacked reply of type `reply_desc` (free with
 * protobuf_c_message_free_unpacked), or 502 when the body is not one. */
int gw_call (gw_t *gw, const char *service, const char *method, const ProtobufCMessage *msg,
             const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, char *message, size_t msglen);
/* gw_call to the auth service. */
int gw_call_auth (gw_t *gw, const char *method, const ProtobufCMessage *msg,
                  const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply, char *message,
                  size_t msglen);

/* --- credentials (gw_auth.c) --- */
gw_cache_t *gw_cache_new (void);
void gw_cache_destroy (gw_cache_t **self_p);
void gw_cache_flush (gw_cache_t *self);
/* Drops what this replica remembers of identities and answers (the credential cache and
 * the reply cache): something they depend on changed. */
void gw_forget_cached (gw_t *gw);
/* Fills caller from the request's token or cookie. Returns 0, or 503 when Redis is down. */
int gw_resolve_caller (gw_t *gw, const gw_request_t *req, gw_caller_t *caller);
void gw_caller_clear (gw_caller_t *caller);
/* The signed cookie value for a session, and the XSRF token of a session (both into out,
 * >= 100 bytes). */
void gw_session_cookie (gw_t *gw, const char *session_id, char *out, size_t outlen);
void gw_xsrf_token (gw_t *gw, const char *session_id, char *out, size_t outlen);
/* The session id of a valid signed login cookie, or NULL (into out). */
bool gw_session_from_cookie (gw_t *gw, const gw_request_t *req, char *out, size_t outlen);

/* --- token activity batching (gw_activity.c) --- */
gw_activity_t *gw_activity_new (gw_t *gw, long flush_ms);
void gw_activity_destroy (gw_activity_t **self_p);
void gw_activity_note (gw_activity_t *self, const char *token_hash, const char *owner);

/* Membership callback over the thread's store. */
bool gw_is_member (void *gw, const char *user, const char *group);

/* An absolute URL for `path_and_query` (which starts after base_url, e.g.
 * "hub/api/users?offset=2"), from the request's scheme and host (X-Forwarded-* honoured).
 * Caller frees. */
char *gw_absolute_url (gw_t *gw, const gw_request_t *req, const char *path_and_query);
/* base_url + rel (rel without a leading '/'); caller frees. */
char *gw_url (gw_t *gw, const char *rel);

#endif
