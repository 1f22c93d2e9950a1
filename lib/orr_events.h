/*  orr_events: publish and subscribe to bus events.
 *
 *  A publisher connects to every broker (an XPUB socket, so it sees each broker's
 *  subscription and can tell when all of them listen); a subscriber connects to one broker
 *  and moves to the next when that broker's "bus.tick" stops. Events are notifications:
 *  what they describe is in Redis, so an event lost while a broker restarts costs a
 *  refresh, never data. Order is kept per publisher.
 */
#ifndef ORR_EVENTS_H
#define ORR_EVENTS_H

#include "orr_bus.h"

#include <czmq.h>

typedef struct orr_events_pub_t orr_events_pub_t;
typedef struct orr_events_sub_t orr_events_sub_t;

typedef struct {
    char topic[ORR_BUS_TOPIC_MAX + 1];
    char principal[ORR_BUS_PRINCIPAL_MAX + 1];
    zframe_t *body;           /* owned; freed by orr_event_clear */
} orr_event_t;

orr_events_pub_t *orr_events_pub_new (const orr_bus_opts_t *opts);
void orr_events_pub_destroy (orr_events_pub_t **self_p);
/* Waits until every broker has subscribed (events sent before that may be dropped).
 * 0 when all have, -1 on timeout. */
int orr_events_pub_wait_ready (orr_events_pub_t *self, int timeout_ms);
/* 0, or -1 for a bad topic (empty, longer than ORR_BUS_TOPIC_MAX, non-printable). */
int orr_events_publish (orr_events_pub_t *self, const char *topic, const void *body, size_t len);

/* `prefixes`: NULL-terminated topic prefixes; NULL or {NULL} = everything. Prefixes longer
 * than ORR_BUS_TOPIC_MAX are ignored; NULL if that leaves none. */
orr_events_sub_t *orr_events_sub_new (const orr_bus_opts_t *opts, const char *const *prefixes);
void orr_events_sub_destroy (orr_events_sub_t **self_p);
/* Waits for the first tick of the broker we listen to: subscriptions are in place. */
int orr_events_sub_wait_ready (orr_events_sub_t *self, int timeout_ms);
/* Next event: 1 got one, 0 timeout, -1 interrupted. Ticks are consumed here, never
 * returned; a silent broker is replaced here. */
int orr_events_recv (orr_events_sub_t *self, orr_event_t *ev, int timeout_ms);
/* For callers that poll the socket themselves: the socket to poll now (it changes on
 * failover) and the check to run at least every heartbeat. */
zsock_t *orr_events_sub_sock (orr_events_sub_t *self);
void orr_events_sub_maintain (orr_events_sub_t *self);
void orr_event_clear (orr_event_t *ev);

#endif
