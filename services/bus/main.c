/*  orrery-bus: the broker process. Reads its settings, binds, and runs the broker loop
 *  until SIGINT/SIGTERM. Several replicas may run at once (each with its own address in
 *  ORRERY_BUS of every peer); they share nothing.
 */
#include "broker.h"
#include "orr_config.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <czmq.h>
#include <stdlib.h>

static const orr_setting_t s_settings[] = {
    { "BUS_BIND", NULL, "address this broker binds, tcp://HOST:PORT (default: the first of ORRERY_BUS)" },
    { "BUS_QUEUE_MAX", "10000", "requests queued per service before new ones get a 'busy' error" },
    { "BUS_REQUEST_TTL_MS", "10000", "a request no worker took in this time gets an 'unavailable' error" },
    { "BUS_MAX_MESSAGE", "4194304", "largest message in bytes; a peer sending more is disconnected" },
    { "BUS_EVENTS_HWM", "100000", "events queued per subscriber; beyond it new events to that subscriber are dropped" },
    { "CURVE_SERVER_CERT", NULL, "the brokers' certificate file (with secret key) when CURVE is on" },
    { "CURVE_ALLOW", NULL, "allow-list file of '<Z85 public key> <principal>' lines when CURVE is on" },
    { NULL, NULL, NULL },
};

int
main (int argc, char **argv)
{
    orr_signal_install ();
    orr_config_t *config = orr_config_new ("orrery-bus", "The Orrery bus broker: request routing and events.", s_settings);
    int rc = orr_config_load (config, argc, argv);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_config_apply_logging (config, "bus");
    zsys_set_linger (0);

    const char *bind = orr_config_get (config, "BUS_BIND");
    char **brokers = orr_split (orr_config_get (config, "BUS"), ',', NULL);
    if (!bind || !*bind)
        bind = brokers[0] ? brokers[0] : "";
    broker_opts_t opts = {
        .bind = bind,
        .heartbeat_ms = (int) orr_config_int (config, "BUS_HEARTBEAT_MS"),
        .liveness = (int) orr_config_int (config, "BUS_LIVENESS"),
        .queue_max = (size_t) orr_config_int (config, "BUS_QUEUE_MAX"),
        .request_ttl_ms = (int) orr_config_int (config, "BUS_REQUEST_TTL_MS"),
        .max_message = orr_config_int (config, "BUS_MAX_MESSAGE"),
        .events_hwm = (int) orr_config_int (config, "BUS_EVENTS_HWM"),
        .curve = orr_config_bool (config, "CURVE"),
        .curve_server_cert = orr_config_get (config, "CURVE_SERVER_CERT"),
        .curve_allow = orr_config_get (config, "CURVE_ALLOW"),
    };
    if (opts.heartbeat_ms < 10 || opts.liveness < 1 || opts.request_ttl_ms < 1 || opts.max_message < 1024
        || opts.events_hwm < 1) {
        orr_error ("bus settings out of range (heartbeat >= 10 ms, liveness >= 1, ttl >= 1 ms, max message >= 1024, hwm >= 1)");
        orr_strv_free (&brokers);
        orr_config_destroy (&config);
        return 2;
    }
    broker_t *broker = broker_new (&opts);
    if (!broker) {
        orr_strv_free (&brokers);
        orr_config_destroy (&config);
        return 1;
    }
    broker_run (broker, orr_signal_stop_flag ());
    broker_stats_t st = broker_stats (broker);
    orr_info ("broker stopping: %llu requests, %llu replies, %llu errors, %llu malformed, %llu events in, %llu out, %llu refused, %llu workers purged, %llu requeued",
              (unsigned long long) st.requests, (unsigned long long) st.replies, (unsigned long long) st.errors,
              (unsigned long long) st.malformed, (unsigned long long) st.events_in, (unsigned long long) st.events_out,
              (unsigned long long) st.events_refused, (unsigned long long) st.workers_purged,
              (unsigned long long) st.requeued);
    broker_destroy (&broker);
    orr_strv_free (&brokers);
    orr_config_destroy (&config);
    return 0;
}
