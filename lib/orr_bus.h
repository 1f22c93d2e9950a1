/*  orr_bus: the wire protocol of the Orrery bus and the options every bus peer shares.
 *
 *  The bus is a Majordomo-style broker (ZeroMQ guide ch. 4, MDP/0.2) plus an event
 *  forwarder. A broker at address tcp://H:P has three sockets:
 *
 *    P     ROUTER  requests: clients (DEALER) and workers (DEALER) both connect here
 *    P+1   XSUB    events in: publishers (XPUB) connect here
 *    P+2   XPUB    events out: subscribers (SUB) connect here
 *
 *  Client <-> broker, every frame mandatory:
 *    C: ["ORC1"] [0x01 REQUEST] [service] [request-id] [body]
 *    B: ["ORC1"] [0x02 REPLY | 0x03 ERROR] [service] [request-id] [body | reason text]
 *
 *  Worker <-> broker:
 *    W: ["ORW1"] [0x01 READY] [service]
 *    B: ["ORW1"] [0x02 REQUEST] [client-route] [request-id] [principal] [body]
 *    W: ["ORW1"] [0x03 REPLY] [client-route] [request-id] [body]
 *    *: ["ORW1"] [0x04 HEARTBEAT]
 *    *: ["ORW1"] [0x05 DISCONNECT]
 *
 *  Events: publishers send [topic] [body]; the broker checks both, adds the publisher's
 *  principal and subscribers receive [topic] [principal] [body]. Every heartbeat interval
 *  the broker publishes "bus.tick" so subscribers can tell a live broker from a quiet one.
 *
 *  Request ids travel end to end: a client that times out sends the same id again (to the
 *  next broker); workers answer a repeated id from their cache of recent replies, and
 *  handlers whose effects cross replicas must be idempotent per id.
 *
 *  The principal is who the peer proved to be: with CURVE on, the name the brokers'
 *  allow-list gives the peer's public key; with CURVE off, "anonymous".
 */
#ifndef ORR_BUS_H
#define ORR_BUS_H

#include <stdbool.h>
#include <stddef.h>

#define ORR_BUS_CLIENT "ORC1"
#define ORR_BUS_WORKER "ORW1"

#define ORR_BUS_C_REQUEST 0x01
#define ORR_BUS_C_REPLY 0x02
#define ORR_BUS_C_ERROR 0x03

#define ORR_BUS_W_READY 0x01
#define ORR_BUS_W_REQUEST 0x02
#define ORR_BUS_W_REPLY 0x03
#define ORR_BUS_W_HEARTBEAT 0x04
#define ORR_BUS_W_DISCONNECT 0x05

#define ORR_BUS_TICK_TOPIC "bus.tick"
#define ORR_BUS_ANONYMOUS "anonymous"

/* Limits: a frame or field longer than these is refused (malformed). */
#define ORR_BUS_SERVICE_MAX 64
#define ORR_BUS_REQUEST_ID_MAX 64
#define ORR_BUS_TOPIC_MAX 128
#define ORR_BUS_PRINCIPAL_MAX 128
#define ORR_BUS_MAX_BROKERS 16

struct orr_config_t;

typedef struct {
    char **brokers;           /* NULL-terminated broker addresses, tcp://H:P */
    size_t broker_count;
    int timeout_ms;           /* client: wait per attempt */
    int retries;              /* client: attempts in all */
    int heartbeat_ms;
    int liveness;             /* heartbeats missed before a peer is dead */
    bool curve;
    char *curve_server_public;  /* Z85, 40 chars */
    char *curve_cert;           /* path of this peer's zcert (public + secret) */
} orr_bus_opts_t;

/* Fills opts from the ORRERY_BUS* and ORRERY_CURVE* settings. 0, or -1 with the reason
 * logged (bad address, CURVE on without keys). Free with orr_bus_opts_clear. */
int orr_bus_opts_from_config (orr_bus_opts_t *opts, struct orr_config_t *config);
/* From a comma-separated list and defaults (used by tests and tools). */
int orr_bus_opts_init (orr_bus_opts_t *opts, const char *brokers_csv);
void orr_bus_opts_clear (orr_bus_opts_t *opts);

/* Endpoint of broker address `addr` at port offset 0 (requests), 1 (events in) or
 * 2 (events out); written into out. -1 if addr is not tcp://host:port. */
int orr_bus_endpoint (const char *addr, int offset, char *out, size_t outlen);

/* Whether an event from `principal` may command Orrery itself (hub.shutdown): true for
 * Orrery's own services ("service:*") and, with CURVE off, for the anonymous local peers. */
bool orr_bus_principal_is_trusted (const char *principal);

/* Applies CURVE client settings to a socket (a zsock_t *) if opts->curve. 0 or -1. */
int orr_bus_apply_curve (void *zsock, const orr_bus_opts_t *opts);

/* Initialises czmq once per process, thread-safely. Every constructor of a bus socket
 * (client, worker, events) calls it first. */
void orr_bus_init (void);

#endif
