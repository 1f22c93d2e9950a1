/*  orr_store: the one way Orrery talks to Redis (hiredis 0.14, blocking, RESP2).
 *
 *  An orr_store_t is one connection to one Redis, used by ONE thread at a time: it is not
 *  thread-safe. Services get theirs from orr_store_thread(), which keeps one store per
 *  thread per URL, so no redisContext is ever shared between threads.
 *
 *  URLs:  redis://[[user]:password@]host[:port][/db][?opts]     (port 6379, db 0 by default)
 *         unix:///path/to/redis.sock[?db=N][&password=P][&user=U][&opts]
 *  opts:  connect_timeout_ms=N (default 1000), timeout_ms=N (per command, default 5000).
 *  User and password may be %XX-encoded. The store connects lazily: Redis need not be up
 *  when it is created, and every call connects first when there is no live connection.
 *
 *  Retry rules (the part callers must know):
 *  - A connection found dead BEFORE a command is sent (the server closed it, e.g. after a
 *    Redis restart) is silently replaced. Nothing was sent, so this is always safe.
 *  - A connection lost AFTER a command was sent leaves its fate unknown: it may or may not
 *    have run. orr_store_command/orr_store_commandv then reconnect and send it ONCE more,
 *    so use them only for reads and idempotent writes (SET k v, HSET, SADD, DEL, a write
 *    guarded by a request-dedup key...). Use orr_store_command_once/_commandv_once for
 *    anything that must not run twice (INCR, LPUSH, ...): they report the loss instead.
 *  - A command that times out is never resent (the server is alive but slow; resending
 *    would double the wait and likely the work). The connection is dropped.
 *  - orr_store_eval never resends after a loss either (scripts are usually writes); it only
 *    retries after NOSCRIPT, which proves the script did not run.
 *  - Pipelines are never replayed.
 *  Blocking commands (BLPOP ...) need a command timeout longer than their own.
 *
 *  Replies: a redisReply the caller frees with freeReplyObject(). A Redis error reply
 *  (REDIS_REPLY_ERROR, e.g. WRONGTYPE) is a normal reply, not a failure: check reply->type.
 *  NULL means no reply could be had (cannot connect, connection lost, timeout, bad format);
 *  orr_store_error() says why.
 */
#ifndef ORR_STORE_H
#define ORR_STORE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orr_store_t orr_store_t;
typedef struct orr_script_t orr_script_t;

#define ORR_STORE_CONNECT_TIMEOUT_MS 1000
#define ORR_STORE_COMMAND_TIMEOUT_MS 5000

/* Parses the URL and returns a new, not yet connected store; NULL (and an error logged) if
 * the URL is malformed. The caller owns the store and frees it with orr_store_destroy. */
orr_store_t *orr_store_new (const char *redis_url);

/* Closes the connection and frees the store; NULL-safe; sets *self_p to NULL. Any queued
 * pipeline commands are discarded. Never call it on a store from orr_store_thread. */
void orr_store_destroy (orr_store_t **self_p);

/* The calling thread's own store for this URL, created (not connected) on first use and
 * returned again on later calls with the same URL. Owned by the thread: freed by
 * orr_store_thread_release() or automatically when the thread exits (the main thread,
 * which does not run thread-exit destructors, should call the release). NULL on a bad URL. */
orr_store_t *orr_store_thread (const char *redis_url);

/* Frees every store orr_store_thread() made for the calling thread. Safe to call twice. */
void orr_store_thread_release (void);

/* Sets both timeouts in milliseconds (<= 0 keeps the current value). The connect timeout
 * applies from the next connect, the command timeout at once. */
void orr_store_set_timeouts (orr_store_t *self, int connect_timeout_ms, int command_timeout_ms);

/* Why the last failed call on this store failed ("" after a success). Owned by the store,
 * valid until the next call on it. */
const char *orr_store_error (orr_store_t *self);

/* The URL with any password replaced by "***", for logs. Owned by the store. */
const char *orr_store_url (orr_store_t *self);

/* How many connections this store has opened so far (reconnects included). */
uint64_t orr_store_connects (orr_store_t *self);

/* Closes the connection now (the next call reconnects). Queued pipeline commands are
 * discarded. Used by services that want to give back a connection while idle. */
void orr_store_disconnect (orr_store_t *self);

/* Runs one command given as a hiredis format ("SET %s %b", key, val, vallen). Returns the
 * reply (caller frees with freeReplyObject; may be REDIS_REPLY_ERROR) or NULL with
 * orr_store_error() set. Resends ONCE after a connection loss: reads and idempotent
 * writes only (see the retry rules above). NULL too while pipeline commands are queued. */
redisReply *orr_store_command (orr_store_t *self, const char *fmt, ...);

/* As orr_store_command, but argc arguments with explicit lengths (binary-safe; `lens`
 * may be NULL when every argument is a C string). */
redisReply *orr_store_commandv (orr_store_t *self, int argc, const char **argv, const size_t *lens);

/* As above, but never resent: after a connection loss they return NULL and the caller
 * decides (the command may or may not have run). For non-idempotent writes. */
redisReply *orr_store_command_once (orr_store_t *self, const char *fmt, ...);
redisReply *orr_store_commandv_once (orr_store_t *self, int argc, const char **argv,
                                     const size_t *lens);

/* Pipelining. orr_store_append/appendv queue a command (nothing is sent yet); they return
 * 0, or -1 with orr_store_error() set (cannot connect, bad format). After a -1 the pipeline
 * is poisoned: the following flush fails and discards it, so the reply indexes the caller
 * expects can never shift. */
int orr_store_append (orr_store_t *self, const char *fmt, ...);
int orr_store_appendv (orr_store_t *self, int argc, const char **argv, const size_t *lens);

/* How many commands are queued and not yet flushed. */
size_t orr_store_pending (orr_store_t *self);

/* Sends every queued command and reads their replies, in order, into replies[0..n-1]
 * (or frees them when `replies` is NULL). n must equal orr_store_pending(). Returns 0 when
 * all n replies were read: the caller owns and frees each (some may be error replies).
 * Returns -1 on a poisoned pipeline, a count mismatch, a timeout or a connection loss
 * part-way: then every replies[i] is NULL, the connection is dropped and NOTHING is
 * replayed; commands before the loss may have run. The queue is empty afterwards. */
int orr_store_flush_replies (orr_store_t *self, redisReply **replies, size_t n);

/* Lua scripts, called by SHA1. A script is immutable after creation (its SHA1 is computed
 * locally), so one orr_script_t may be shared by every thread and every store. `name` is
 * only for logs. The caller owns it and frees it with orr_script_destroy (NULL-safe). */
orr_script_t *orr_script_new (const char *name, const char *lua);
void orr_script_destroy (orr_script_t **self_p);
/* 40 lowercase hex chars; owned by the script. */
const char *orr_script_sha (const orr_script_t *self);
const char *orr_script_name (const orr_script_t *self);

/* EVALSHA of the script. argv holds argc strings: the nkeys keys first, then the
 * arguments (lens may be NULL for C strings). On NOSCRIPT (Redis restarted, SCRIPT FLUSH)
 * it loads the script and calls it once more. Returns the reply (caller frees; a Lua error
 * is a REDIS_REPLY_ERROR reply) or NULL with orr_store_error() set. Never resent after a
 * connection loss (see the retry rules). */
redisReply *orr_store_eval (orr_store_t *self, const orr_script_t *script, int nkeys, int argc,
                            const char **argv, const size_t *lens);

/* Building a script's argv: a growable list of owned strings (keys first, then arguments). */
typedef struct {
    char **v;
    size_t n, cap;
} orr_args_t;
/* Appends `owned` (taken over; freed by orr_args_clear). */
void orr_args_push (orr_args_t *args, char *owned);
void orr_args_clear (orr_args_t *args);
/* orr_store_eval over args: the first nkeys entries are keys. */
redisReply *orr_store_eval_args (orr_store_t *self, const orr_script_t *script, size_t nkeys, const orr_args_t *args);

/* The value of `field` in an HGETALL reply (a flat name, value, ... array), or `def`
 * when the field is absent or the reply is not an array. Owned by the reply. */
const char *orr_reply_field (const redisReply *hash, const char *field, const char *def);

#endif
