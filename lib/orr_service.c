/*  orr_service: one loop per service process: bus requests, subscribed events, timers.
 *
 *  The loop polls the worker's socket and the event subscriber's socket with a timeout of
 *  the next timer (never longer than a heartbeat, so the subscriber's failover check
 *  runs). A request's body is a Call; the reply a Result. Unknown methods get 404, an
 *  unpackable Call 400, so a client can always tell what went wrong.
 *
 *  Stopping: SIGINT/SIGTERM or a hub.shutdown event set the stop flag; the loop finishes
 *  the request it holds (replies are sent before the check), then destroys the worker,
 *  which deregisters from every broker so none of them waits for this replica again.
 */
#include "orr_service.h"
#include "orr_bus_worker.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "orrery/rpc.pb-c.h"

#include <stdarg.h>
#include <string.h>

#define SERVICE_METHODS_MAX 64
#define SERVICE_HANDLERS_MAX 16
#define SERVICE_TIMERS_MAX 8
#define SERVICE_WORKER_CREDIT 4

typedef struct {
    char *method;
    orr_method_fn *fn;
    void *ctx;
} method_t;

typedef struct {
    char *prefix;
    orr_event_fn *fn;
    void *ctx;
} event_handler_t;

typedef struct {
    int interval_ms;
    int64_t next_ms;
    orr_tick_fn *fn;
    void *ctx;
} timer_t_;

struct orr_service_t {
    char *name;
    orr_bus_opts_t opts;
    orr_bus_worker_t *worker;
    orr_events_pub_t *pub;
    orr_events_sub_t *sub;
    method_t methods[SERVICE_METHODS_MAX];
    size_t nmethods;
    event_handler_t handlers[SERVICE_HANDLERS_MAX];
    size_t nhandlers;
    timer_t_ timers[SERVICE_TIMERS_MAX];
    size_t ntimers;
    uint64_t served;
};

void
orr_result_fail (orr_result_t *result, int status, const char *fmt, ...)
{
    result->status = status;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (result->error, sizeof result->error, fmt, ap);
    va_end (ap);
}

static void
s_ping (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    orr_service_t *self = ctx;
    Orrery__Pong pong = ORRERY__PONG__INIT;
    pong.service = self->name;
    pong.replica = (char *) orr_log_replica_id ();
    pong.time_us = orr_now_us ();
    result->len = orrery__pong__get_packed_size (&pong);
    result->body = orr_zalloc (result->len);
    orrery__pong__pack (&pong, result->body);
}

orr_service_t *
orr_service_new (const char *name, orr_config_t *config)
{
    orr_service_t *self = orr_zalloc (sizeof *self);
    self->name = orr_strdup (name);
    if (orr_bus_opts_from_config (&self->opts, config) != 0) {
        orr_service_destroy (&self);
        return NULL;
    }
    self->pub = orr_events_pub_new (&self->opts);
    if (!self->pub) {
        orr_error ("cannot connect the event publisher");
        orr_service_destroy (&self);
        return NULL;
    }
    orr_service_add_method (self, "ping", s_ping, self);
    return self;
}

void
orr_service_destroy (orr_service_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_service_t *self = *self_p;
    orr_bus_worker_destroy (&self->worker);
    orr_events_sub_destroy (&self->sub);
    orr_events_pub_destroy (&self->pub);
    for (size_t i = 0; i < self->nmethods; i++)
        free (self->methods[i].method);
    for (size_t i = 0; i < self->nhandlers; i++)
        free (self->handlers[i].prefix);
    orr_bus_opts_clear (&self->opts);
    free (self->name);
    free (self);
    *self_p = NULL;
}

void
orr_service_add_method (orr_service_t *self, const char *method, orr_method_fn *fn, void *ctx)
{
    if (self->nmethods == SERVICE_METHODS_MAX) {
        orr_error ("too many methods on service %s", self->name);
        return;
    }
    self->methods[self->nmethods++] = (method_t) { orr_strdup (method), fn, ctx };
}

void
orr_service_on_event (orr_service_t *self, const char *prefix, orr_event_fn *fn, void *ctx)
{
    if (self->nhandlers == SERVICE_HANDLERS_MAX) {
        orr_error ("too many event handlers on service %s", self->name);
        return;
    }
    self->handlers[self->nhandlers++] = (event_handler_t) { orr_strdup (prefix), fn, ctx };
}

void
orr_service_every (orr_service_t *self, int interval_ms, orr_tick_fn *fn, void *ctx)
{
    if (self->ntimers == SERVICE_TIMERS_MAX || interval_ms < 1)
        return;
    self->timers[self->ntimers++] = (timer_t_) { interval_ms, orr_mono_ms () + interval_ms, fn, ctx };
}

int
orr_service_publish (orr_service_t *self, const char *topic, const void *body, size_t len)
{
    return orr_events_publish (self->pub, topic, body, len);
}

static void
s_handle_request (orr_service_t *self, orr_bus_request_t *req)
{
    orr_log_set_request_id (req->request_id);
    orr_result_t result = { .status = 200 };
    Orrery__Call *call = orrery__call__unpack (NULL, zframe_size (req->body), zframe_data (req->body));
    if (!call)
        orr_result_fail (&result, 400, "request body is not an orrery.Call");
    else {
        method_t *m = NULL;
        for (size_t i = 0; i < self->nmethods && !m; i++)
            if (strcmp (self->methods[i].method, call->method) == 0)
                m = &self->methods[i];
        if (!m)
            orr_result_fail (&result, 404, "service %s has no method '%s'", self->name, call->method);
        else {
            orr_call_t c = { call->method, req->principal, req->request_id, call->body.data, call->body.len };
            m->fn (m->ctx, &c, &result);
        }
    }
    Orrery__Result out = ORRERY__RESULT__INIT;
    out.status = result.status;
    out.error = result.error;
    out.body.data = result.body;
    out.body.len = result.len;
    size_t n = orrery__result__get_packed_size (&out);
    uint8_t *buf = orr_zalloc (n);
    orrery__result__pack (&out, buf);
    orr_bus_worker_reply (self->worker, req, buf, n);
    free (buf);
    free (result.body);
    if (call)
        orrery__call__free_unpacked (call, NULL);
    self->served++;
    orr_log_set_request_id (NULL);
}

static void
s_on_shutdown (void *ctx, const orr_event_t *event)
{
    /* With CURVE on, only Orrery's own services (the gateway, after its scope check) may
     * stop the hub; with CURVE off every peer is local and anonymous. */
    if (!orr_bus_principal_is_trusted (event->principal)) {
        orr_warn ("ignored hub.shutdown from principal '%s'", event->principal);
        return;
    }
    orr_info ("hub.shutdown from %s: stopping after in-flight work", event->principal);
    orr_signal_request_stop ();
}

void
orr_result_reply (orr_result_t *result, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size (msg);
    result->body = orr_zalloc (n + 1);
    result->len = protobuf_c_message_pack (msg, result->body);
}

int
orr_service_publish_msg (orr_service_t *self, const char *topic, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = orr_zalloc (n + 1);
    protobuf_c_message_pack (msg, buf);
    int rc = orr_service_publish (self, topic, buf, n);
    if (rc != 0)
        orr_warn ("could not publish %s", topic);
    free (buf);
    return rc;
}

bool
orr_call_trusted (const orr_call_t *call, orr_result_t *result, const char *service)
{
    if (orr_bus_principal_is_trusted (call->principal))
        return true;
    orr_result_fail (result, 403, "principal %s may not call %s.%s", call->principal, service, call->method);
    return false;
}

int
orr_service_run (orr_service_t *self)
{
    self->worker = orr_bus_worker_new (&self->opts, self->name, SERVICE_WORKER_CREDIT);
    if (!self->worker) {
        orr_error ("cannot start the bus worker for %s", self->name);
        return 1;
    }
    orr_service_on_event (self, "hub.shutdown", s_on_shutdown, self);
    const char *prefixes[SERVICE_HANDLERS_MAX + 1];
    for (size_t i = 0; i < self->nhandlers; i++)
        prefixes[i] = self->handlers[i].prefix;
    prefixes[self->nhandlers] = NULL;
    self->sub = orr_events_sub_new (&self->opts, prefixes);
    orr_info ("service %s ready on %zu broker(s)", self->name, self->opts.broker_count);

    while (!orr_signal_stop_requested ()) {
        int64_t now = orr_mono_ms (), next = now + self->opts.heartbeat_ms;
        for (size_t i = 0; i < self->ntimers; i++)
            if (self->timers[i].next_ms < next)
                next = self->timers[i].next_ms;
        zmq_pollitem_t events = { zsock_resolve (orr_events_sub_sock (self->sub)), 0, ZMQ_POLLIN, 0 };
        orr_bus_worker_poll (self->worker, &events, 1, next > now ? (int) (next - now) : 0);
        orr_bus_request_t req;
        for (int n = 0; n < 64 && orr_bus_worker_recv (self->worker, &req, 0) == 1; n++) {
            s_handle_request (self, &req);
            orr_bus_request_clear (&req);
        }
        orr_event_t ev;
        for (int n = 0; n < 256 && orr_events_recv (self->sub, &ev, 0) == 1; n++) {
            for (size_t i = 0; i < self->nhandlers; i++)
                if (strncmp (ev.topic, self->handlers[i].prefix, strlen (self->handlers[i].prefix)) == 0)
                    self->handlers[i].fn (self->handlers[i].ctx, &ev);
            orr_event_clear (&ev);
        }
        now = orr_mono_ms ();
        for (size_t i = 0; i < self->ntimers; i++)
            if (now >= self->timers[i].next_ms) {
                self->timers[i].fn (self->timers[i].ctx);
                self->timers[i].next_ms = orr_mono_ms () + self->timers[i].interval_ms;
            }
    }
    orr_info ("service %s stopping: %llu requests served", self->name, (unsigned long long) self->served);
    return 0;
}

int
orr_service_main (int argc, char **argv, const char *name, const char *summary, const orr_setting_t *settings,
                  orr_setup_fn *setup, orr_teardown_fn *teardown)
{
    orr_signal_install ();
    char program[80];
    snprintf (program, sizeof program, "orrery-%s", name);
    orr_config_t *config = orr_config_new (program, summary, settings);
    int rc = orr_config_load (config, argc, argv);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_config_apply_logging (config, name);
    zsys_set_linger (0);
    orr_service_t *svc = orr_service_new (name, config);
    void *state = NULL;
    if (!svc)
        rc = 2;
    else if (setup && (rc = setup (svc, config, &state)) != 0)
        orr_error ("%s: setup failed", name);
    else
        rc = orr_service_run (svc);
    orr_service_destroy (&svc);
    if (teardown)
        teardown (state);
    orr_config_destroy (&config);
    return rc;
}
