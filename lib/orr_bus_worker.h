/*  orr_bus_worker: serve requests for one service from every broker.
 *
 *  One DEALER per broker: the worker registers (READY), heartbeats both ways and
 *  reconnects when a broker goes quiet or tells it to. The caller's thread does this
 *  work itself while it waits in orr_bus_worker_poll/recv; while it is busy elsewhere (a
 *  handler that takes seconds), a keeper thread keeps the heartbeats going, so a slow
 *  handler is never taken for a dead worker. A request id seen recently is answered from
 *  a cache of replies without reaching the caller again (clients retry with the same id).
 *
 *  Thread use: one caller thread per worker (plus the internal keeper).
 */
#ifndef ORR_BUS_WORKER_H
#define ORR_BUS_WORKER_H

#include "orr_bus.h"

#include <czmq.h>

typedef struct orr_bus_worker_t orr_bus_worker_t;

typedef struct {
    char request_id[ORR_BUS_REQUEST_ID_MAX + 1];
    char principal[ORR_BUS_PRINCIPAL_MAX + 1];
    zframe_t *body;           /* owned by the request; freed by orr_bus_request_clear */
} orr_bus_request_t;

/* `credit`: requests this worker may hold per broker (>= 1). NULL if opts are unusable. */
orr_bus_worker_t *orr_bus_worker_new (const orr_bus_opts_t *opts, const char *service, int credit);
/* Deregisters from every broker (DISCONNECT) and stops the keeper thread. */
void orr_bus_worker_destroy (orr_bus_worker_t **self_p);

/* Waits up to timeout_ms (-1 = forever) for a request, or for any of the caller's own
 * `extra` poll items (their revents are filled in). Returns how many requests are ready
 * (take them with orr_bus_worker_recv), 0 on timeout or when only extra items fired,
 * -1 when interrupted by a signal. */
int orr_bus_worker_poll (orr_bus_worker_t *self, zmq_pollitem_t *extra, int nextra, int timeout_ms);

/* Takes the next request: 1 got one, 0 timed out, -1 interrupted. timeout_ms -1 = forever. */
int orr_bus_worker_recv (orr_bus_worker_t *self, orr_bus_request_t *req, int timeout_ms);
/* Answers `req` (by its id). The body is copied. 0, or -1 if the request is unknown. */
int orr_bus_worker_reply (orr_bus_worker_t *self, const orr_bus_request_t *req, const void *body, size_t len);
void orr_bus_request_clear (orr_bus_request_t *req);

#endif
