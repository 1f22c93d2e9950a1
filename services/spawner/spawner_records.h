/*  spawner_records: server records, the spawn queue and leases in Redis (docs/spawner.md).
 *
 *  Every change of a record is one Lua script, so a state moves atomically with the
 *  indexes that mirror it (queue, spawning set, leases, active set). Writes made while
 *  working on a server carry the lease's fencing token and are refused (SREC_FENCED) when
 *  the record holds another: the holder then drops the server without touching it.
 *  Scripts build the keys of the member they act on (same escaping as lib/orr_keys.c,
 *  checked by test_spawner_records), so one script can pop a queue entry and update its
 *  record in one step.
 */
#ifndef SPAWNER_RECORDS_H
#define SPAWNER_RECORDS_H

#include "orr_store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *user;
    char *server;
    char *state;              /* queued, pending_spawn, ready, pending_stop, stopped, failed; "" = none */
    char *url;
    char *user_options;
    char *profile;
    char *node;
    char *target;
    char *holder;
    char *token_id;
    char *client_id;
    char *log;
    char *pod;                /* Kubernetes backend: the pod's name */
    char *message;
    char *reason;
    int64_t fence;
    int64_t lease_ms;
    int64_t pid;
    int64_t pid_start;
    int64_t port;
    int64_t started_us;
    bool stop;
    bool remove;
} srec_t;

void srec_clear (srec_t *rec);

typedef enum {
    SREC_OK = 0,
    SREC_FENCED = 1,          /* the record holds another fencing token: drop the work */
    SREC_ERROR = -1,          /* Redis unreachable or a script error (logged) */
} srec_status_t;

/* Loads the scripts (once per process). */
void srec_init (void);
void srec_shutdown (void);

/* "user\nserver": the member of every index. Caller frees. */
char *srec_member (const char *user, const char *server);
/* Splits a member; false when it has no '\n'. Caller frees both. */
bool srec_member_split (const char *member, char **user, char **server);

/* The record, or SREC_ERROR. A missing record gives SREC_OK with state "". */
srec_status_t srec_read (orr_store_t *store, const char *user, const char *server, srec_t *out);

/* --- requests (any replica) ----------------------------------------------------------- */
typedef struct {
    int status;               /* 200, or 400 / 404 / 429 with message */
    char state[16];
    char message[256];
    int queue_position;       /* while queued */
    bool changed;             /* stop: the state moved (publish an event) */
} srec_answer_t;

typedef struct {
    bool allow_named;
    int64_t named_limit;      /* 0 = none */
    int64_t active_limit;     /* 0 = none */
} srec_limits_t;

/* Queues a spawn (or answers the current pending state). options "" = reuse the last. */
srec_status_t srec_spawn (orr_store_t *store, const char *user, const char *server, const char *options_json,
                          const char *url, const srec_limits_t *limits, srec_answer_t *answer);
/* Stops a ready server, cancels a queued one, flags a pending one for its holder. */
srec_status_t srec_stop (orr_store_t *store, const char *user, const char *server, bool remove,
                         srec_answer_t *answer);

/* --- the holder's side -------------------------------------------------------------- */
/* Takes the queue's head when fewer than max_concurrent spawns are pending (0 = no
 * limit): the record becomes pending_spawn with a new lease held by `replica`. SREC_OK
 * and out filled, SREC_FENCED when nothing was taken (empty queue or at the limit). */
srec_status_t srec_take (orr_store_t *store, const char *replica, int64_t lease_ms, int64_t max_concurrent,
                         srec_t *out);
/* Takes over a record with a new fencing token: when its holder is `expect_holder` (a
 * hand-over), or, with expect_holder NULL, when its lease has expired. SREC_FENCED when
 * neither holds (someone else has it). */
srec_status_t srec_claim (orr_store_t *store, const char *user, const char *server, const char *replica,
                          const char *expect_holder, int64_t lease_ms, srec_t *out);
/* Fenced write of field/value pairs (NULL-terminated; value "" deletes the field);
 * lease_ms > 0 also renews the lease. *stop (may be NULL) = a stop was asked. */
srec_status_t srec_update (orr_store_t *store, const char *user, const char *server, int64_t fence,
                           int64_t lease_ms, bool *stop, const char *const *pairs);
/* Fenced end of a phase: "ready" (keeps the lease), "failed" or "stopped" (ends it). */
srec_status_t srec_finish (orr_store_t *store, const char *user, const char *server, int64_t fence,
                           const char *outcome, const char *message, const char *reason, int64_t lease_ms,
                           bool *stop);

/* Renews many leases in one call. fences[i] for (users[i], servers[i]); out[i] = 0
 * fenced, 1 held, 2 held and a stop was asked. */
srec_status_t srec_renew (orr_store_t *store, size_t n, char *const *users, char *const *servers,
                          const int64_t *fences, int64_t lease_ms, int *out);

/* Members whose lease ended before now - grace_ms (at most max). Caller frees with
 * orr_strv_free. */
char **srec_expired (orr_store_t *store, int64_t grace_ms, size_t max, size_t *count);

/* Stops asked of servers whose lease `holder` holds (the stop script notes them in
 * orr:{h:H}:stops, so a holder learns of them with one cheap SPOP instead of reading its
 * records): up to max, removed from the set. Caller frees with orr_strv_free. */
char **srec_stops_pop (orr_store_t *store, const char *holder, size_t max, size_t *count);

/* Members of every record not stopped or failed. Caller frees with orr_strv_free. */
char **srec_active (orr_store_t *store, size_t *count);

/* Hand-over list of a node: push one, pop one (NULL when empty; caller frees). */
int srec_handover_push (orr_store_t *store, const char *node, const char *member);
char *srec_handover_pop (orr_store_t *store, const char *node);

#endif
