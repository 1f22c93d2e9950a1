/*  orr_event_types: which protobuf message a bus event's topic carries.
 *
 *  The topic of an event names its type ("node.heartbeat", "server.ready", ...); the body
 *  is one protobuf message whose type follows from the topic alone, so subscribers,
 *  `orrery events` and the JSON bridges can decode any event without a type tag on the
 *  wire. docs/events.md shows the same table (printed by orr_event_types_print).
 */
#ifndef ORR_EVENT_TYPES_H
#define ORR_EVENT_TYPES_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

/* The message type of events published on `topic`: an exact topic match first, then the
 * first matching prefix ("node.", "server.", ...), else orrery.GenericEvent. Never NULL
 * (a NULL topic is treated as ""). */
const ProtobufCMessageDescriptor *orr_event_type_for_topic (const char *topic);

/* Writes the table as Markdown rows: | topic | message |. */
void orr_event_types_print (FILE *out);

#endif
