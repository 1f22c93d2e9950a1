/*  orrery-test-echo-worker: a bus worker for tests of the bus itself.
 *
 *  Serves service ECHO_SERVICE (default "echo") with the real worker library and answers
 *  "<replica>|<principal>|<body>". A body "hold:<replica>" makes only that replica sit on
 *  the request for 30 s (so a test can kill it while it holds one); every other replica
 *  answers at once. A body "sleep:<ms>" makes any replica take that long (a slow handler).
 *  Each request also bumps a count printed at exit ("served N"), so a test can tell how
 *  often a handler ran. Settings come from ORRERY_* like any service (CURVE included).
 */
#include "orr_bus_worker.h"
#include "orr_config.h"
#include "orr_log.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <stdio.h>
#include <string.h>

static const orr_setting_t s_settings[] = {
    { "ECHO_SERVICE", "echo", "service name to serve" },
    { "ECHO_CREDIT", "1", "requests held at once per broker" },
    { NULL, NULL, NULL },
};

int
main (int argc, char **argv)
{
    orr_signal_install ();
    orr_config_t *config = orr_config_new ("orrery-test-echo-worker", "test echo worker", s_settings);
    if (orr_config_load (config, argc, argv) != 0)
        return 2;
    orr_config_apply_logging (config, "echo");
    orr_bus_opts_t opts;
    if (orr_bus_opts_from_config (&opts, config) != 0)
        return 2;
    orr_bus_worker_t *worker = orr_bus_worker_new (&opts, orr_config_get (config, "ECHO_SERVICE"),
                                                   (int) orr_config_int (config, "ECHO_CREDIT"));
    const char *replica = orr_log_replica_id ();
    char hold[160];
    snprintf (hold, sizeof hold, "hold:%s", replica);
    long served = 0;
    while (!orr_signal_stop_requested ()) {
        orr_bus_request_t req;
        if (orr_bus_worker_recv (worker, &req, 200) != 1)
            continue;
        size_t n = zframe_size (req.body);
        served++;
        if (n == strlen (hold) && memcmp (zframe_data (req.body), hold, n) == 0)
            for (int i = 0; i < 300 && !orr_signal_stop_requested (); i++)
                orr_sleep_ms (100);
        char text[32];
        long ms;
        snprintf (text, sizeof text, "%.*s", (int) (n < 31 ? n : 31), (char *) zframe_data (req.body));
        if (strncmp (text, "sleep:", 6) == 0 && orr_parse_long (text + 6, &ms) == 0 && ms > 0 && ms <= 60000)
            orr_sleep_ms ((int) ms);
        char *reply = orr_sprintf ("%s|%s|%.*s", replica, req.principal, (int) n, (char *) zframe_data (req.body));
        orr_bus_worker_reply (worker, &req, reply, strlen (reply));
        free (reply);
        orr_bus_request_clear (&req);
    }
    orr_info ("served %ld", served);
    orr_bus_worker_destroy (&worker);
    orr_bus_opts_clear (&opts);
    orr_config_destroy (&config);
    return 0;
}
