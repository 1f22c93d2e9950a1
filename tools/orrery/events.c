/*  events: `orrery events [PREFIX]` prints bus events as JSON lines; `orrery publish
 *  TOPIC JSON` publishes one.
 *
 *  The topic decides the protobuf message (lib/orr_event_types.c) and lib/orr_pbjson
 *  maps it to and from JSON, so integrators can watch and drive Orrery from a shell. The
 *  bus address comes from ORRERY_BUS or, when unset, from <state-dir>/orrery.env that
 *  `orrery up` writes.
 */
#include "cli.h"
#include "orr_config.h"
#include "orr_event_types.h"
#include "orr_events.h"
#include "orr_log.h"
#include "orr_pbjson.h"
#include "orr_signal.h"
#include "orr_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUBLISH_READY_MS 5000

static void
s_print_event (const orr_event_t *ev)
{
    json_t *line = json_object ();
    char when[40];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char stamp[64];
    snprintf (stamp, sizeof stamp, "%s.%06ldZ", when, ts.tv_nsec / 1000);
    json_object_set_new (line, "time", json_string (stamp));
    json_object_set_new (line, "topic", json_string (ev->topic));
    json_object_set_new (line, "principal", json_string (ev->principal));
    const ProtobufCMessageDescriptor *desc = orr_event_type_for_topic (ev->topic);
    char *text = orr_pbjson_unpack_to_json (desc, zframe_data (ev->body), zframe_size (ev->body));
    json_t *event = text ? json_loads (text, 0, NULL) : NULL;
    if (event) {
        json_object_set_new (line, "type", json_string (desc->name));
        json_object_set_new (line, "event", event);
    }
    else {
        /* not the message its topic names: show the bytes rather than hide the event */
        json_object_set_new (line, "undecodable_bytes", json_integer ((json_int_t) zframe_size (ev->body)));
    }
    free (text);
    char *out = json_dumps (line, JSON_COMPACT);
    printf ("%s\n", out);
    fflush (stdout);
    free (out);
    json_decref (line);
}

int
cli_events (int argc, char **argv)
{
    char *pos[1] = { NULL };
    int npos = cli_positionals (&argc, argv, pos, 1);
    if (npos < 0) {
        fprintf (stderr, "usage: orrery events [TOPIC-PREFIX] [--state-dir DIR]\n");
        return 2;
    }
    int rc;
    orr_config_t *config = cli_stack_config ("orrery events", "Prints bus events as JSON lines until Ctrl-C.", argc, argv, &rc);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    orr_bus_opts_t opts;
    if (orr_bus_opts_from_config (&opts, config) != 0) {
        orr_bus_opts_clear (&opts);
        orr_config_destroy (&config);
        return 2;
    }
    const char *prefixes[] = { pos[0], NULL };
    orr_events_sub_t *sub = orr_events_sub_new (&opts, pos[0] ? prefixes : NULL);
    while (!orr_signal_stop_requested ()) {
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 1000) == 1) {
            s_print_event (&ev);
            orr_event_clear (&ev);
        }
    }
    orr_events_sub_destroy (&sub);
    orr_bus_opts_clear (&opts);
    orr_config_destroy (&config);
    return 0;
}

int
cli_publish (int argc, char **argv)
{
    char *pos[2] = { NULL, NULL };
    int npos = cli_positionals (&argc, argv, pos, 2);
    bool help = argc > 1 && strcmp (argv[1], "--help") == 0;
    if (npos != 2 && !help) {
        fprintf (stderr, "usage: orrery publish TOPIC JSON [--state-dir DIR]\n");
        return 2;
    }
    int rc;
    orr_config_t *config = cli_stack_config ("orrery publish", "Publishes one event: TOPIC and a JSON object for its message.", argc, argv, &rc);
    if (rc != 0) {
        orr_config_destroy (&config);
        return rc > 0 ? 0 : 2;
    }
    const ProtobufCMessageDescriptor *desc = orr_event_type_for_topic (pos[0]);
    char err[256];
    size_t len = 0;
    char *packed = orr_pbjson_pack_from_json (desc, pos[1], &len, err, sizeof err);
    orr_bus_opts_t opts;
    memset (&opts, 0, sizeof opts);
    rc = 2;
    if (!packed) {
        fprintf (stderr, "orrery publish: %s is a %s: %s\n", pos[0], desc->name, err);
        goto done;
    }
    if (orr_bus_opts_from_config (&opts, config) != 0)
        goto done;
    orr_events_pub_t *pub = orr_events_pub_new (&opts);
    if (!pub || orr_events_pub_wait_ready (pub, PUBLISH_READY_MS) != 0) {
        fprintf (stderr, "orrery publish: no broker listening at %s within %d ms\n", orr_config_get (config, "BUS"), PUBLISH_READY_MS);
        rc = 1;
    }
    else if (orr_events_publish (pub, pos[0], packed, len) != 0)
        fprintf (stderr, "orrery publish: bad topic '%s' (printable, no spaces, at most %d chars)\n", pos[0], ORR_BUS_TOPIC_MAX);
    else
        rc = 0;
    orr_events_pub_destroy (&pub);
done:
    free (packed);
    orr_bus_opts_clear (&opts);
    orr_config_destroy (&config);
    return rc;
}
