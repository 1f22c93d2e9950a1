/*  gw_reply_cache: rendered answers to the hub API's user and group reads, kept for a
 *  short time and dropped on any change.
 *
 *  Keyed by the caller's credential and everything else the answer depends on (path,
 *  query, Accept, Host and X-Forwarded-*), so one caller never sees another's view.
 *  A generation counter guards against a stale answer stored after a change: a request
 *  reads the generation before it reads Redis, and its answer is stored only if no
 *  invalidation happened in between.
 */
#ifndef GW_REPLY_CACHE_H
#define GW_REPLY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_reply_cache_t gw_reply_cache_t;

/* ttl_ms 0 switches the cache off; max_bytes bounds keys plus bodies (when a new answer
 * would pass it, everything is dropped and the cache starts over). */
gw_reply_cache_t *gw_reply_cache_new (long ttl_ms, size_t max_bytes);
void gw_reply_cache_destroy (gw_reply_cache_t **self_p);
bool gw_reply_cache_enabled (const gw_reply_cache_t *self);

/* A fresh copy of the body stored under key (malloc'd: caller frees, or hands it to
 * gw_reply_take), or NULL. */
char *gw_reply_cache_get (gw_reply_cache_t *self, const char *key, size_t *len);
/* The generation to pass to put: read it before reading what the answer is made of. */
uint64_t gw_reply_cache_generation (gw_reply_cache_t *self);
/* Stores a copy of body under key unless an invalidation happened since `generation`. */
void gw_reply_cache_put (gw_reply_cache_t *self, const char *key, uint64_t generation, const char *body, size_t len);
/* Forgets every answer (a user, group, server, token or session changed). */
void gw_reply_cache_invalidate (gw_reply_cache_t *self);

/* Counters for /hub/metrics. */
void gw_reply_cache_stats (gw_reply_cache_t *self, uint64_t *hits, uint64_t *misses, uint64_t *invalidations);

/* The largest answer worth keeping. */
#define GW_REPLY_CACHE_MAX_BODY (1024 * 1024)

#endif
