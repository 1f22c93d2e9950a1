/*  orr_bus: options and addressing shared by every bus peer (client, worker, publisher,
 *  subscriber). The protocol itself is described in orr_bus.h; the broker is in
 *  services/bus. Here: turning configuration into a validated orr_bus_opts_t, deriving
 *  the three endpoints of a broker address, and the CURVE client side of a socket.
 */
#include "orr_bus.h"
#include "orr_config.h"
#include "orr_log.h"
#include "orr_util.h"

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
orr_bus_endpoint (const char *addr, int offset, char *out, size_t outlen)
{
    if (strncmp (addr, "tcp://", 6) != 0)
        return -1;
    const char *colon = strrchr (addr + 6, ':');
    if (!colon || colon == addr + 6)
        return -1;
    long port;
    if (orr_parse_long (colon + 1, &port) != 0 || port < 1 || port + offset > 65535)
        return -1;
    int n = snprintf (out, outlen, "%.*s:%ld", (int) (colon - addr), addr, port + offset);
    return n > 0 && (size_t) n < outlen ? 0 : -1;
}

int
orr_bus_opts_init (orr_bus_opts_t *opts, const char *brokers_csv)
{
    memset (opts, 0, sizeof *opts);
    opts->brokers = orr_split (brokers_csv, ',', &opts->broker_count);
    opts->timeout_ms = 2000;
    opts->retries = 3;
    opts->heartbeat_ms = 500;
    opts->liveness = 3;
    if (opts->broker_count == 0 || opts->broker_count > ORR_BUS_MAX_BROKERS) {
        orr_error ("ORRERY_BUS must name 1 to %d brokers, got '%s'", ORR_BUS_MAX_BROKERS, brokers_csv ? brokers_csv : "");
        return -1;
    }
    for (size_t i = 0; i < opts->broker_count; i++) {
        char ep[256];
        if (orr_bus_endpoint (opts->brokers[i], 0, ep, sizeof ep) != 0) {
            orr_error ("bad broker address '%s': expected tcp://HOST:PORT", opts->brokers[i]);
            return -1;
        }
    }
    return 0;
}

int
orr_bus_opts_from_config (orr_bus_opts_t *opts, orr_config_t *config)
{
    if (orr_bus_opts_init (opts, orr_config_get (config, "BUS")) != 0)
        return -1;
    opts->timeout_ms = (int) orr_config_int (config, "BUS_TIMEOUT_MS");
    opts->retries = (int) orr_config_int (config, "BUS_RETRIES");
    opts->heartbeat_ms = (int) orr_config_int (config, "BUS_HEARTBEAT_MS");
    opts->liveness = (int) orr_config_int (config, "BUS_LIVENESS");
    if (opts->timeout_ms < 10 || opts->retries < 1 || opts->heartbeat_ms < 10 || opts->liveness < 1) {
        orr_error ("bus settings out of range: timeout %d ms (>= 10), retries %d (>= 1), heartbeat %d ms (>= 10), liveness %d (>= 1)",
                   opts->timeout_ms, opts->retries, opts->heartbeat_ms, opts->liveness);
        return -1;
    }
    opts->curve = orr_config_bool (config, "CURVE");
    if (opts->curve) {
        const char *pub = orr_config_get (config, "CURVE_SERVER_PUBLIC");
        const char *cert = orr_config_get (config, "CURVE_CERT");
        if (!pub || strlen (pub) != 40 || !cert || !*cert) {
            orr_error ("ORRERY_CURVE is on: set ORRERY_CURVE_SERVER_PUBLIC (40-char Z85 key) and ORRERY_CURVE_CERT");
            return -1;
        }
        opts->curve_server_public = orr_strdup (pub);
        opts->curve_cert = orr_strdup (cert);
    }
    return 0;
}

void
orr_bus_opts_clear (orr_bus_opts_t *opts)
{
    orr_strv_free (&opts->brokers);
    free (opts->curve_server_public);
    free (opts->curve_cert);
    memset (opts, 0, sizeof *opts);
}

int
orr_bus_apply_curve (void *zsock, const orr_bus_opts_t *opts)
{
    if (!opts->curve)
        return 0;
    zcert_t *cert = zcert_load (opts->curve_cert);
    if (!cert) {
        orr_error ("cannot load CURVE certificate %s", opts->curve_cert);
        return -1;
    }
    zcert_apply (cert, zsock);
    zcert_destroy (&cert);
    zsock_set_curve_serverkey (zsock, opts->curve_server_public);
    return 0;
}

bool
orr_bus_principal_is_trusted (const char *principal)
{
    return principal && (strcmp (principal, ORR_BUS_ANONYMOUS) == 0 || strncmp (principal, "service:", 8) == 0);
}

static void
s_zsys_init (void)
{
    zsys_init ();
}

void
orr_bus_init (void)
{
    /* czmq's zsys_init is not thread-safe: two threads creating their first sockets at
     * once can both run it, and the second trips czmq's "not valid after creating
     * sockets" assertion (seen with concurrent bus clients). Run it exactly once. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_zsys_init);
}
