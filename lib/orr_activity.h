/*  orr_activity: servers' last activity, kept in orr:{u:U}:activity (docs/keyspace.md).
 *
 *  The hash maps a server name ("" = the default server) to the time of its last known
 *  activity in microseconds since the epoch. Several writers report activity -- proxyctl
 *  copies each route's last_activity from every configurable-http-proxy, the gateway
 *  takes POST /hub/api/users/{name}/activity -- in any order and any number of times, so
 *  the value is written only through one Lua script that keeps the newest: a late or
 *  repeated report can never move it backwards, and writers need no coordination.
 */
#ifndef ORR_ACTIVITY_H
#define ORR_ACTIVITY_H

#include "orr_store.h"

#include <stdint.h>

/* Records that `user`'s server `server` ("" = default) was active at `us` (> 0). Returns 1
 * when the stored value moved forward, 0 when it was already as new or newer, -1 when
 * `us` is not positive, Redis could not be reached (orr_store_error says why) or it
 * answered an error. Not resent after a lost connection (orr_store_eval's rule), though a
 * resend would be harmless: a caller may simply call again. */
int orr_activity_record (orr_store_t *store, const char *user, const char *server, int64_t us);

/* The stored activity of one server into *us (0 when none). 0, or -1 on a Redis failure. */
int orr_activity_get (orr_store_t *store, const char *user, const char *server, int64_t *us);

#endif
