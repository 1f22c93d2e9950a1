/*  orr_service: the skeleton every Orrery service runs on.
 *
 *  It reads the common settings, registers a bus worker for the service's name, answers
 *  "ping", dispatches each Call (proto/orrery/rpc.proto) to the handler registered for its
 *  method, publishes events, and leaves its loop on SIGINT/SIGTERM or a hub.shutdown
 *  event, after the request in hand is answered. Handlers run on the loop's thread; a
 *  service that needs concurrency runs more replicas (each is a worker).
 */
#ifndef ORR_SERVICE_H
#define ORR_SERVICE_H

#include "orr_bus.h"
#include "orr_config.h"
#include "orr_events.h"

#include <protobuf-c/protobuf-c.h>

#include <stddef.h>
#include <stdint.h>

typedef struct orr_service_t orr_service_t;

typedef struct {
    const char *method;
    const char *principal;    /* who sent it (see orr_bus.h) */
    const char *request_id;
    const uint8_t *body;
    size_t len;
} orr_call_t;

typedef struct {
    int status;               /* HTTP-like; 200 unless the handler says otherwise */
    char error[256];
    uint8_t *body;            /* malloc'd by the handler (or NULL); freed by the skeleton */
    size_t len;
} orr_result_t;

typedef void (orr_method_fn) (void *ctx, const orr_call_t *call, orr_result_t *result);
/* Called for every event the service subscribed to. */
typedef void (orr_event_fn) (void *ctx, const orr_event_t *event);
/* Called at least every `interval_ms` (timers, reconciliation loops). */
typedef void (orr_tick_fn) (void *ctx);

/* NULL (reason logged) when the bus settings are unusable. */
orr_service_t *orr_service_new (const char *name, orr_config_t *config);
void orr_service_destroy (orr_service_t **self_p);

void orr_service_add_method (orr_service_t *self, const char *method, orr_method_fn *fn, void *ctx);
/* Subscribes to topics starting with `prefix`. Call before orr_service_run. */
void orr_service_on_event (orr_service_t *self, const char *prefix, orr_event_fn *fn, void *ctx);
void orr_service_every (orr_service_t *self, int interval_ms, orr_tick_fn *fn, void *ctx);

/* Publishes an event (packed protobuf body). 0 or -1. */
int orr_service_publish (orr_service_t *self, const char *topic, const void *body, size_t len);

/* Runs until stopped; returns the process exit code (0 for an orderly stop). */
int orr_service_run (orr_service_t *self);

/* Packs `msg` as the result's body. */
void orr_result_reply (orr_result_t *result, const ProtobufCMessage *msg);
/* Publishes a protobuf message as an event (logs a failure). 0 or -1. */
int orr_service_publish_msg (orr_service_t *self, const char *topic, const ProtobufCMessage *msg);
/* True when the caller is one of Orrery's own services (orr_bus_principal_is_trusted);
 * otherwise fails the result with 403 naming `service`.method and returns false. */
bool orr_call_trusted (const orr_call_t *call, orr_result_t *result, const char *service);
/* In a method handler: unpacks the request body into `var` or answers 400 and returns. */
#define ORR_UNPACK_OR_400(type, fn, var)                                                   \
    type *var = fn (NULL, call->len, call->body);                                          \
    if (!var) {                                                                            \
        orr_result_fail (result, 400, "%s: malformed request body", call->method);          \
        return;                                                                            \
    }

/* Sets result->status and the error text. */
void orr_result_fail (orr_result_t *result, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));



/* The whole main() of a service: signals, settings (--help), logging, the skeleton,
 * `setup` to register methods/events/timers (return non-zero to abort, state for
 * teardown), run, teardown. Returns the exit code. */
typedef int (orr_setup_fn) (orr_service_t *svc, orr_config_t *config, void **state);
typedef void (orr_teardown_fn) (void *state);
int orr_service_main (int argc, char **argv, const char *name, const char *summary, const orr_setting_t *settings,
                      orr_setup_fn *setup, orr_teardown_fn *teardown);
#endif
