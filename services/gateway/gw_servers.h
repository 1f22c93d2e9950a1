/*  gw_servers: users' servers as the gateway reads them -- the spawner's records in Redis
 *  (docs/spawner.md), their activity, the URLs JupyterHub builds for them, and how their
 *  states map onto JupyterHub's ready / pending / stopped.
 *
 *  The spawner owns the records; the gateway only reads them (changes are bus calls).
 */
#ifndef GW_SERVERS_H
#define GW_SERVERS_H

#include "gw.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *name;               /* "" = the default server */
    char state[16];           /* queued, pending_spawn, ready, pending_stop, stopped, failed; "" = no record */
    char *user_options;       /* JSON text of the record, NULL when none */
    char *message;            /* what happens now ("" when none) */
    char *reason;             /* why it failed ("" when none) */
    int progress;
    int64_t started_us;       /* 0 = not started */
    int64_t last_activity_us; /* orr:{u:U}:activity, 0 = none */
    long pid;
} gw_server_t;

/* One user's servers that have a record, sorted by name. */
typedef struct {
    gw_server_t *items;
    size_t n;
} gw_servers_t;

/* One server of `user` with its activity, in one round trip: 1 a record, 0 none (out is
 * then a stopped server with no record: name set, state ""), -1 Redis unavailable. */
int gw_server_load (gw_t *gw, const char *user, const char *server, gw_server_t *out);
/* The servers of n users in two pipelined round trips (names and activity, then records).
 * out[i] belongs to users[i]. 0, or -1 when Redis is unavailable (out then empty). */
int gw_servers_load_many (gw_t *gw, const char *const *users, size_t n, gw_servers_t *out);
void gw_server_clear (gw_server_t *s);
void gw_servers_clear (gw_servers_t *s);
/* The server called `name`, or NULL. */
const gw_server_t *gw_servers_find (const gw_servers_t *s, const char *name);

/* JupyterHub's view of a state (docs/spawner.md, "States"). */
bool gw_server_ready (const gw_server_t *s);
/* "spawn" (queued, pending_spawn), "stop" (pending_stop) or NULL. */
const char *gw_server_pending (const gw_server_t *s);
/* Ready or pending: what user lists show without include_stopped_servers. */
bool gw_server_active (const gw_server_t *s);
bool gw_server_is (const gw_server_t *s, const char *state);

/* URLs JupyterHub builds (names quoted, base_url first); caller frees.
 *   /user/alice/  /user/alice/gpu/
 *   /hub/api/users/alice/server/progress  /hub/api/users/alice/servers/gpu/progress
 *   /hub/spawn/alice  /hub/spawn/alice/gpu  (and spawn-pending) */
char *gw_server_url (gw_t *gw, const char *user, const char *server);
char *gw_server_progress_url (gw_t *gw, const char *user, const char *server);
char *gw_server_page_url (gw_t *gw, const char *page, const char *user, const char *server);
/* How JupyterHub names a server in messages: "alice" or "alice:gpu". Caller frees. */
char *gw_server_label (const char *user, const char *server);

/* A queued server's place in the spawn queue (1 = next) and the queue's length, in one
 * round trip; *position 0 when it is not queued. 0, or -1 when Redis is unavailable. */
int gw_server_queue_position (gw_t *gw, const char *user, const char *server, long *position, long *total);

/* Users with a ready or pending server, and users with a ready one (sets of names), from
 * the spawner's active index: SMEMBERS plus one pipelined read of those servers' states.
 * 0, or -1 when Redis is unavailable. Caller destroys both. */
int gw_servers_active_users (gw_t *gw, zhashx_t **active, zhashx_t **ready);

#endif
