/*  orr_event_types: the topic -> message type table of the event bus.
 *
 *  The table is plain data, one row per topic or topic prefix, so adding an event type is
 *  one line here (plus its message in proto/orrery/events.proto). Lookup makes two passes:
 *  exact topics first, then prefixes in table order, so a specific topic such as
 *  "server.start.requested" wins over the "server." family whatever the row order; among
 *  prefixes the first match wins (keep longer prefixes above shorter ones if they
 *  overlap). Topics nothing matches carry GenericEvent (a JSON document), so integrators can
 *  publish their own event types without touching this file.
 *
 *  Tables are tiny (a dozen rows) and lookups happen once per event, so a linear scan is
 *  cheaper than any index would be to maintain.
 */
#include "orr_event_types.h"

#include "orrery/events.pb-c.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
    const char *topic;   /* the exact topic, or a prefix ending in '.' */
    bool is_prefix;
    const ProtobufCMessageDescriptor *descriptor;
} event_type_row_t;

static const event_type_row_t s_event_types[] = {
    { "node.heartbeat", false, &orrery__node_heartbeat__descriptor },
    { "server.start.requested", false, &orrery__server_intent__descriptor },
    { "server.stop.requested", false, &orrery__server_intent__descriptor },
    { "hub.shutdown", false, &orrery__shutdown__descriptor },
    { "node.", true, &orrery__node_event__descriptor },     /* registered, lost, (un)cordoned */
    { "server.", true, &orrery__server_event__descriptor }, /* pending, ready, stopped, ... */
    { "user.", true, &orrery__identity_event__descriptor },
    { "group.", true, &orrery__identity_event__descriptor },
    { "token.", true, &orrery__identity_event__descriptor },
    { "service.", true, &orrery__identity_event__descriptor },
    { "session.", true, &orrery__identity_event__descriptor },  /* session.ended */
};

#define S_EVENT_TYPES_COUNT (sizeof s_event_types / sizeof s_event_types[0])

const ProtobufCMessageDescriptor *
orr_event_type_for_topic (const char *topic)
{
    if (!topic)
        topic = "";
    for (size_t i = 0; i < S_EVENT_TYPES_COUNT; i++)
        if (!s_event_types[i].is_prefix && strcmp (topic, s_event_types[i].topic) == 0)
            return s_event_types[i].descriptor;
    for (size_t i = 0; i < S_EVENT_TYPES_COUNT; i++) {
        const char *prefix = s_event_types[i].topic;
        if (s_event_types[i].is_prefix && strncmp (topic, prefix, strlen (prefix)) == 0)
            return s_event_types[i].descriptor;
    }
    return &orrery__generic_event__descriptor;
}

void
orr_event_types_print (FILE *out)
{
    fprintf (out, "| topic | message |\n|---|---|\n");
    /* Same order as the lookup: exact topics, then prefixes, then the fallback. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < S_EVENT_TYPES_COUNT; i++)
            if (s_event_types[i].is_prefix == (pass == 1))
                fprintf (out, "| `%s%s` | %s |\n", s_event_types[i].topic,
                         s_event_types[i].is_prefix ? "*" : "", s_event_types[i].descriptor->name);
    fprintf (out, "| anything else | %s |\n", orrery__generic_event__descriptor.name);
}
