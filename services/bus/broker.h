/*  broker: the Orrery bus broker (request routing + event forwarding) as one object.
 *  Protocol: lib/orr_bus.h. Design notes: broker.c.
 */
#ifndef BROKER_H
#define BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct broker_t broker_t;

typedef struct {
    const char *bind;          /* tcp://H:P: requests on P, events in P+1, events out P+2 */
    int heartbeat_ms;
    int liveness;
    size_t queue_max;          /* queued requests per service before ERROR busy */
    int request_ttl_ms;        /* a queued request older than this gets ERROR unavailable */
    int64_t max_message;       /* bytes; larger messages drop the sending peer (ZMQ_MAXMSGSIZE) */
    int events_hwm;            /* per-subscriber queue of events before drops */
    bool curve;
    const char *curve_server_cert;  /* secret certificate of the brokers */
    const char *curve_allow;        /* allow-list file: "<Z85 public key> <principal>" per line */
} broker_opts_t;

typedef struct {
    uint64_t requests, replies, errors, malformed, events_in, events_out, events_refused,
        workers_purged, requeued;
} broker_stats_t;

/* Binds every socket; NULL (reason logged) if any bind fails. */
broker_t *broker_new (const broker_opts_t *opts);
void broker_destroy (broker_t **self_p);
/* Runs until *stop becomes true (checked every wake-up, at least every heartbeat). */
void broker_run (broker_t *self, volatile int *stop);
broker_stats_t broker_stats (broker_t *self);

#endif
