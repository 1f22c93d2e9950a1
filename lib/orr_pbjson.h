/*  orr_pbjson: any protobuf-c message <-> JSON (jansson), driven by runtime descriptors.
 *
 *  The mapping follows proto3's canonical JSON mapping, with field names as written in the
 *  .proto (snake_case) on output:
 *    - int32/uint32 (and sint32, fixed32, sfixed32) are JSON numbers; the 64-bit integer
 *      types are JSON strings ("1700000000000000") so JavaScript keeps every digit. Input
 *      accepts numbers or decimal strings for every integer type, and integral reals (1e3).
 *    - float/double are numbers, with "NaN", "Infinity" and "-Infinity" as strings.
 *    - bytes are standard base64 with padding; input also takes URL-safe and unpadded.
 *    - enums are value names; input also takes the number.
 *    - repeated fields are arrays, nested messages objects, JSON null means "not set".
 *    - proto3 fields without presence that hold their default (0, "", false, empty,
 *      unset message) are left out; oneof members and proto2/proto3-optional fields are
 *      written whenever they are set, even to a default value.
 *  Input accepts the .proto name or the lowerCamelCase JSON name ("time_us" or "timeUs").
 *  Unknown fields, a field given twice, two members of one oneof, type mismatches,
 *  out-of-range integers, bad base64, unknown enum names, missing proto2 required fields
 *  and nesting deeper than ORR_PBJSON_MAX_DEPTH are errors.
 *
 *  Not specialised: maps (protobuf-c sees them as repeated key/value entry messages, and so
 *  does this module) and the well-known types (Timestamp, Struct, ...), which map as the
 *  plain messages they are.
 */
#ifndef ORR_PBJSON_H
#define ORR_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Messages nest at most this deep (the top-level message is depth 1), in both directions. */
#define ORR_PBJSON_MAX_DEPTH 32

/* The message as a new JSON object (caller owns the reference). NULL when `msg` is NULL,
 * nests deeper than ORR_PBJSON_MAX_DEPTH, or holds a string that is not valid UTF-8. */
json_t *orr_pbjson_from_message (const ProtobufCMessage *msg);

/* A new message of type `desc` from a JSON object, allocated exactly as
 * protobuf_c_message_unpack (…, NULL allocator, …) would: release it with
 * protobuf_c_message_free_unpacked (msg, NULL). On error returns NULL and writes a reason
 * naming the field's path into `err` (may be NULL), e.g.
 * "field 'capacity.cpu_millis': expected integer". */
ProtobufCMessage *orr_pbjson_to_message (const ProtobufCMessageDescriptor *desc, json_t *json,
                                         char *err, size_t errlen);

/* JSON text -> packed protobuf bytes (malloc'd, caller frees; *len set). NULL + err on
 * invalid JSON or any orr_pbjson_to_message error. */
char *orr_pbjson_pack_from_json (const ProtobufCMessageDescriptor *desc, const char *json_text,
                                 size_t *len, char *err, size_t errlen);

/* Packed protobuf bytes -> compact JSON text (malloc'd, caller frees), or NULL when the
 * bytes do not unpack as `desc` (or cannot be expressed, see orr_pbjson_from_message). */
char *orr_pbjson_unpack_to_json (const ProtobufCMessageDescriptor *desc, const void *data,
                                 size_t len);

#endif
