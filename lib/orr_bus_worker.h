/*  orr_bus_worker: serve requests for one service from every broker.
 *
 *  A background actor owns one DEALER per broker, registers (READY), heartbeats both ways
 *  and reconnects when a broker goes quiet or tells it to, so a handler may take as long
 *  as it needs without being taken for dead. Requests reach the caller one at a time via
 *  orr_bus_worker_recv; a request id seen recently is answered from a cache of replies
 *  without reaching the caller again (clients retry with the same id).
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
/* Deregisters from every broker (DISCONNECT) and stops the actor. */
void orr_bus_worker_destroy (orr_bus_worker_t **self_p);

/* The socket that becomes readable when a request waits (for callers with their own poll). */
zsock_t *orr_bus_worker_sock (orr_bus_worker_t *self);

/* Takes the next request: 1 got one, 0 timed out, -1 interrupted. timeout_ms -1 = forever. */
int orr_bus_worker_recv (orr_bus_worker_t *self, orr_bus_request_t *req, int timeout_ms);
/* Answers `req` (by its id). The body is copied. 0, or -1 if the actor is gone. */
int orr_bus_worker_reply (orr_bus_worker_t *self, const orr_bus_request_t *req, const void *body, size_t len);
void orr_bus_request_clear (orr_bus_request_t *req);

#endif
