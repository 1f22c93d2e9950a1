/*  orr_bus_client: send a request to a service and wait for its reply, across brokers.
 *
 *  Synchronous, one request at a time, one client per thread (ZeroMQ sockets are not
 *  thread-safe). A request unanswered within opts.timeout_ms is sent again, with the same
 *  id, through the next broker, up to opts.retries attempts in all; a broker that has no
 *  connection right now is skipped at once (ZMQ_IMMEDIATE), so failover costs no timeout.
 */
#ifndef ORR_BUS_CLIENT_H
#define ORR_BUS_CLIENT_H

#include "orr_bus.h"

#include <stddef.h>

typedef struct orr_bus_client_t orr_bus_client_t;

typedef enum {
    ORR_BUS_OK = 0,           /* a worker replied */
    ORR_BUS_REFUSED = 1,      /* a broker answered ERROR (busy, no worker in time): see err */
    ORR_BUS_TIMEOUT = -1,     /* no answer after every attempt */
    ORR_BUS_INTERRUPTED = -2, /* a signal asked us to stop */
} orr_bus_status_t;

orr_bus_client_t *orr_bus_client_new (const orr_bus_opts_t *opts);
void orr_bus_client_destroy (orr_bus_client_t **self_p);

/* Sends `body` to `service`. request_id NULL = a fresh one. On ORR_BUS_OK, *reply is a
 * malloc'd copy of the reply body (caller frees) and *reply_len its size; on any other
 * status *reply is NULL and err holds the reason. */
orr_bus_status_t orr_bus_client_request (orr_bus_client_t *self, const char *service, const char *request_id,
                                         const void *body, size_t len, char **reply, size_t *reply_len, char *err,
                                         size_t errlen);

/* A fresh request id (24 hex chars) into out (>= 25 bytes). */
void orr_bus_new_request_id (char *out);

#endif
