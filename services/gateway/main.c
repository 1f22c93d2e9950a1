/*  orrery-gateway: the HTTP face of Orrery (JupyterHub 3.0's REST API and pages).
 *
 *  Stateless: it reads Redis and asks the owning services over the bus. Replicas share
 *  one port (SO_REUSEPORT). The main thread only waits for a stop: SIGINT/SIGTERM or a
 *  hub.shutdown event; MHD's threads serve requests meanwhile.
 */
#include "gw_http.h"
#include "gw_routes.h"
#include "orr_bus.h"
#include "orr_config.h"
#include "orr_events.h"
#include "orr_log.h"
#include "orr_signal.h"

#include <czmq.h>
#include <string.h>

static const orr_setting_t s_settings[] = {
    { "GATEWAY_IP", "127.0.0.1", "address the gateway listens on" },
    { "GATEWAY_PORT", "8081", "port the gateway listens on (shared by all local replicas)" },
    { "GATEWAY_THREADS", "2", "HTTP worker threads per replica" },
    { "GATEWAY_MAX_CONNECTIONS", "4000", "open connections per replica; more are refused" },
    { "GATEWAY_TIMEOUT_S", "60", "idle or slow connections are closed after this many seconds" },
    { "GATEWAY_MAX_BODY", "1048576", "largest request body in bytes (413 beyond)" },
    { "BASE_URL", "/", "URL prefix of everything Orrery serves" },
    { NULL, NULL, NULL },
};

int
main (int argc, char **argv)
{
    orr_signal_install ();
    orr_config_t *config = orr_config_new ("orrery-gateway", "Orrery gateway: the JupyterHub-compatible HTTP API.", s_settings);
    int rc = orr_config_load (config, argc, argv);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_config_apply_logging (config, "gateway");
    zsys_set_linger (0);

    orr_bus_opts_t opts;
    gw_http_t *http = NULL;
    orr_events_sub_t *sub = NULL;
    rc = 1;
    if (orr_bus_opts_from_config (&opts, config) != 0)
        goto done;
    long port = orr_config_int (config, "GATEWAY_PORT");
    long threads = orr_config_int (config, "GATEWAY_THREADS");
    long conns = orr_config_int (config, "GATEWAY_MAX_CONNECTIONS");
    long timeout = orr_config_int (config, "GATEWAY_TIMEOUT_S");
    long max_body = orr_config_int (config, "GATEWAY_MAX_BODY");
    if (port < 1 || port > 65535 || threads < 1 || threads > 64 || conns < 1 || timeout < 1 || max_body < 0) {
        orr_error ("gateway settings out of range (port 1-65535, threads 1-64, connections >= 1, timeout >= 1)");
        goto done;
    }
    gw_http_opts_t hopts = {
        .ip = orr_config_get (config, "GATEWAY_IP"),
        .port = (int) port,
        .threads = (unsigned) threads,
        .max_connections = (unsigned) conns,
        .timeout_s = (unsigned) timeout,
        .max_body = (size_t) max_body,
        .base_url = orr_config_get (config, "BASE_URL"),
    };
    http = gw_http_new (&hopts, gw_route, NULL);
    if (!http)
        goto done;
    const char *topics[] = { "hub.shutdown", NULL };
    sub = orr_events_sub_new (&opts, topics);
    rc = 0;
    while (!orr_signal_stop_requested ()) {
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 1000) == 1) {
            if (orr_bus_principal_is_trusted (ev.principal)) {
                orr_info ("hub.shutdown from %s: stopping", ev.principal);
                orr_signal_request_stop ();
            }
            orr_event_clear (&ev);
        }
    }
    orr_info ("gateway stopping");
done:
    orr_events_sub_destroy (&sub);
    gw_http_destroy (&http);
    orr_bus_opts_clear (&opts);
    orr_config_destroy (&config);
    return rc;
}
