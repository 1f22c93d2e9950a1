/*  test_pbjson: protobuf <-> JSON mapping (orr_pbjson) and the event topic table.
 *
 *  The real messages (NodeHeartbeat, ServerEvent, Call) cover what services exchange.
 *  Orrery's protos use few of protobuf's types, so the test also carries a "kitchen sink"
 *  message with every scalar type, an enum, repeated scalars, a oneof and a recursive
 *  field (for the depth limit), plus a proto2 message with required/optional fields and
 *  defaults. Their descriptors are written out below exactly as protoc-c 1.4 generates
 *  them (from the .proto in the comment), so the test needs no extra build step.
 *  Everything runs under ASan in the sanitizer build, so every error path (which frees a
 *  half-built message) is also a leak check.
 */
#include "testutil.h"

#include "orr_event_types.h"
#include "orr_pbjson.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"
#include "orrery/rpc.pb-c.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Test-only messages. Source:
 *
 *   syntax = "proto3"; package pbjtest;
 *   enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
 *   message Kitchen {
 *     int32 i32 = 1; uint32 u32 = 2; sint64 s64 = 3; uint64 u64 = 4; fixed64 f64 = 5;
 *     float flt = 6; double dbl = 7; bool flag = 8; Color color = 9;
 *     repeated Color colors = 10; repeated int64 nums = 11; repeated string words = 12;
 *     repeated bytes blobs = 13; repeated bool bools = 14; sfixed32 sf32 = 15;
 *     oneof choice { string choice_text = 16; int64 choice_num = 17;
 *                    Kitchen choice_kitchen = 18; }
 *     Kitchen child = 19; bytes blob = 20; repeated double dbls = 21;
 *   }
 *   // proto2:
 *   message Legacy { required string name = 1; optional int32 count = 2 [default = 7];
 *                    optional string note = 3 [default = "hi"]; optional bytes raw = 4; }
 * ------------------------------------------------------------------------------------ */

typedef enum { COLOR_UNSPECIFIED = 0, COLOR_RED = 1, COLOR_GREEN = 2 } Color;

typedef struct Kitchen Kitchen;
struct Kitchen {
    ProtobufCMessage base;
    int32_t i32;
    uint32_t u32;
    int64_t s64;
    uint64_t u64;
    uint64_t f64;
    float flt;
    double dbl;
    protobuf_c_boolean flag;
    Color color;
    size_t n_colors;
    Color *colors;
    size_t n_nums;
    int64_t *nums;
    size_t n_words;
    char **words;
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    size_t n_bools;
    protobuf_c_boolean *bools;
    int32_t sf32;
    Kitchen *child;
    ProtobufCBinaryData blob;
    size_t n_dbls;
    double *dbls;
    uint32_t choice_case;
    union {
        char *choice_text;
        int64_t choice_num;
        Kitchen *choice_kitchen;
    };
};

typedef struct {
    ProtobufCMessage base;
    char *name;
    protobuf_c_boolean has_count;
    int32_t count;
    char *note;
    protobuf_c_boolean has_raw;
    ProtobufCBinaryData raw;
} Legacy;

static const ProtobufCEnumValue color_values[] = {
    { "COLOR_UNSPECIFIED", "COLOR_UNSPECIFIED", 0 },
    { "RED", "COLOR_RED", 1 },
    { "GREEN", "COLOR_GREEN", 2 },
};
static const ProtobufCIntRange color_ranges[] = { { 0, 0 }, { 0, 3 } };
static const ProtobufCEnumValueIndex color_by_name[] = {
    { "COLOR_UNSPECIFIED", 0 }, { "GREEN", 2 }, { "RED", 1 } };
static const ProtobufCEnumDescriptor color_descriptor = {
    PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC, "pbjtest.Color", "Color", "Color", "pbjtest",
    3, color_values, 3, color_by_name, 1, color_ranges, NULL, NULL, NULL, NULL };

extern const ProtobufCMessageDescriptor kitchen_descriptor;

#define KF(name, id, label, type, quant, member, desc, flags)                                \
    { name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, quant,                     \
      offsetof (Kitchen, member), desc, NULL, flags, 0, NULL, NULL }
#define KN(name, id, type, member) KF (name, id, NONE, type, 0, member, NULL, 0)
#define KR(name, id, type, member)                                                           \
    KF (name, id, REPEATED, type, offsetof (Kitchen, n_##member), member, NULL, 0)
#define KO(name, id, type, member, desc)                                                     \
    KF (name, id, NONE, type, offsetof (Kitchen, choice_case), member, desc,                \
        PROTOBUF_C_FIELD_FLAG_ONEOF)

static const ProtobufCFieldDescriptor kitchen_fields[] = {
    KN ("i32", 1, INT32, i32),
    KN ("u32", 2, UINT32, u32),
    KN ("s64", 3, SINT64, s64),
    KN ("u64", 4, UINT64, u64),
    KN ("f64", 5, FIXED64, f64),
    KN ("flt", 6, FLOAT, flt),
    KN ("dbl", 7, DOUBLE, dbl),
    KN ("flag", 8, BOOL, flag),
    KF ("color", 9, NONE, ENUM, 0, color, &color_descriptor, 0),
    KF ("colors", 10, REPEATED, ENUM, offsetof (Kitchen, n_colors), colors, &color_descriptor,
        PROTOBUF_C_FIELD_FLAG_PACKED),
    KR ("nums", 11, INT64, nums),
    KR ("words", 12, STRING, words),
    KR ("blobs", 13, BYTES, blobs),
    KR ("bools", 14, BOOL, bools),
    KN ("sf32", 15, SFIXED32, sf32),
    KO ("choice_text", 16, STRING, choice_text, NULL),
    KO ("choice_num", 17, INT64, choice_num, NULL),
    KO ("choice_kitchen", 18, MESSAGE, choice_kitchen, &kitchen_descriptor),
    KF ("child", 19, NONE, MESSAGE, 0, child, &kitchen_descriptor, 0),
    KN ("blob", 20, BYTES, blob),
    KR ("dbls", 21, DOUBLE, dbls),
};
static const unsigned kitchen_by_name[] = { 19, 12, 13, 18, 17, 16, 15, 8, 9, 6, 20,
                                            4,  7,  5,  0,  10, 2,  14, 1, 3, 11 };
static const ProtobufCIntRange kitchen_ranges[] = { { 1, 0 }, { 0, 21 } };

static void
kitchen_init (Kitchen *m)
{
    static const ProtobufCMessage base = PROTOBUF_C_MESSAGE_INIT (&kitchen_descriptor);
    memset (m, 0, sizeof *m);
    m->base = base;
}

const ProtobufCMessageDescriptor kitchen_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "pbjtest.Kitchen", "Kitchen", "Kitchen", "pbjtest",
    sizeof (Kitchen), 21, kitchen_fields, kitchen_by_name, 1, kitchen_ranges,
    (ProtobufCMessageInit) kitchen_init, NULL, NULL, NULL };

static const int32_t legacy_count_default = 7;
static char legacy_note_default[] = "hi";
extern const ProtobufCMessageDescriptor legacy_descriptor;

static const ProtobufCFieldDescriptor legacy_fields[] = {
    { "name", 1, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_STRING, 0, offsetof (Legacy, name),
      NULL, NULL, 0, 0, NULL, NULL },
    { "count", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32, offsetof (Legacy, has_count),
      offsetof (Legacy, count), NULL, &legacy_count_default, 0, 0, NULL, NULL },
    { "note", 3, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING, 0, offsetof (Legacy, note),
      NULL, legacy_note_default, 0, 0, NULL, NULL },
    { "raw", 4, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_BYTES, offsetof (Legacy, has_raw),
      offsetof (Legacy, raw), NULL, NULL, 0, 0, NULL, NULL },
};
static const unsigned legacy_by_name[] = { 1, 0, 2, 3 };
static const ProtobufCIntRange legacy_ranges[] = { { 1, 0 }, { 0, 4 } };

static void
legacy_init (Legacy *m)
{
    static const Legacy init = { PROTOBUF_C_MESSAGE_INIT (&legacy_descriptor), NULL, 0, 7,
                                 legacy_note_default, 0, { 0, NULL } };
    *m = init;
}

const ProtobufCMessageDescriptor legacy_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "pbjtest.Legacy", "Legacy", "Legacy", "pbjtest",
    sizeof (Legacy), 4, legacy_fields, legacy_by_name, 1, legacy_ranges,
    (ProtobufCMessageInit) legacy_init, NULL, NULL, NULL };

/* ------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------ */

static json_t *
s_parse (const char *text)
{
    json_error_t jerr;
    json_t *json = json_loads (text, JSON_DECODE_ANY, &jerr);
    CHECK (json != NULL, "test JSON does not parse: %s: %s", text, jerr.text);
    return json;
}

static char *
s_dump (json_t *json)
{
    return json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* text -> message -> JSON must equal `expected` (text), compared as JSON values. */
static void
s_check_maps_to (const ProtobufCMessageDescriptor *desc, const char *text, const char *expected)
{
    char err[256];
    json_t *in = s_parse (text);
    ProtobufCMessage *msg = orr_pbjson_to_message (desc, in, err, sizeof err);
    CHECK (msg != NULL, "%s: %s", text, err);
    json_t *out = orr_pbjson_from_message (msg);
    CHECK (out != NULL, "from_message failed for %s", text);
    json_t *want = s_parse (expected);
    char *got_text = s_dump (out), *want_text = s_dump (want);
    CHECK (json_equal (out, want), "%s\n  got:  %s\n  want: %s", text, got_text, want_text);
    free (got_text);
    free (want_text);
    json_decref (want);
    json_decref (out);
    json_decref (in);
    protobuf_c_message_free_unpacked (msg, NULL);
}

/* text must be refused with an error containing `expected_err`. */
static void
s_check_refused (const ProtobufCMessageDescriptor *desc, const char *text, const char *expected_err)
{
    char err[256] = "";
    json_t *in = s_parse (text);
    ProtobufCMessage *msg = orr_pbjson_to_message (desc, in, err, sizeof err);
    CHECK (msg == NULL, "%s was accepted", text);
    CHECK (strstr (err, expected_err) != NULL, "%s: error \"%s\", expected \"%s\"", text, err,
           expected_err);
    json_decref (in);
    /* The text entry point gives the same verdict. */
    size_t len = 0;
    char err2[256] = "";
    char *packed = orr_pbjson_pack_from_json (desc, text, &len, err2, sizeof err2);
    CHECK (packed == NULL && strcmp (err, err2) == 0, "pack_from_json: \"%s\" vs \"%s\"", err2,
           err);
}

/* ------------------------------------------------------------------------------------
 * Real messages
 * ------------------------------------------------------------------------------------ */

static void
test_heartbeat_round_trip (void)
{
    Orrery__Resources capacity = ORRERY__RESOURCES__INIT;
    capacity.cpu_millis = 16000;
    capacity.memory_bytes = INT64_C (68719476736); /* 64 GiB: beyond 32 bits */
    capacity.gpus = 2;
    capacity.servers = 110;
    Orrery__Resources usage = ORRERY__RESOURCES__INIT;
    usage.cpu_millis = 1500;
    usage.servers = 3; /* memory_bytes and gpus stay 0: omitted */
    Orrery__Label zone = ORRERY__LABEL__INIT, disk = ORRERY__LABEL__INIT;
    zone.key = "zone";
    zone.value = "eu-1";
    disk.key = "disk";
    disk.value = ""; /* empty value: the key alone is written */
    Orrery__Label *labels[] = { &zone, &disk };
    Orrery__Taint taint = ORRERY__TAINT__INIT;
    taint.key = "gpu";
    taint.value = "true";
    taint.effect = "NoSchedule";
    Orrery__Taint *taints[] = { &taint };
    Orrery__NodeHeartbeat hb = ORRERY__NODE_HEARTBEAT__INIT;
    hb.node = "node-7";
    hb.capacity = &capacity;
    hb.usage = &usage;
    hb.n_labels = 2;
    hb.labels = labels;
    hb.n_taints = 1;
    hb.taints = taints;
    hb.time_us = INT64_C (1700000000123456);

    json_t *json = orr_pbjson_from_message (&hb.base);
    CHECK (json != NULL, "heartbeat has no JSON form");
    json_t *want = s_parse (
        "{\"node\":\"node-7\","
        "\"capacity\":{\"cpu_millis\":\"16000\",\"memory_bytes\":\"68719476736\",\"gpus\":2,"
        "\"servers\":110},"
        "\"usage\":{\"cpu_millis\":\"1500\",\"servers\":3},"
        "\"labels\":[{\"key\":\"zone\",\"value\":\"eu-1\"},{\"key\":\"disk\"}],"
        "\"taints\":[{\"key\":\"gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}],"
        "\"time_us\":\"1700000000123456\"}");
    CHECK (json_equal (json, want), "got %s", s_dump (json));
    json_decref (want);

    /* Fields come out in field-number order. */
    char *text = json_dumps (json, JSON_COMPACT);
    CHECK (strncmp (text, "{\"node\":\"node-7\",\"capacity\":{\"cpu_millis\"", 40) == 0, "%s",
           text);

    /* JSON text -> packed bytes gives exactly the bytes protobuf-c packs from the struct. */
    size_t want_len = protobuf_c_message_get_packed_size (&hb.base);
    uint8_t *want_bytes = orr_zalloc (want_len);
    protobuf_c_message_pack (&hb.base, want_bytes);
    char err[256];
    size_t len = 0;
    char *packed = orr_pbjson_pack_from_json (&orrery__node_heartbeat__descriptor, text, &len, err,
                                              sizeof err);
    CHECK (packed != NULL, "%s", err);
    CHECK_EQ_INT (len, want_len);
    CHECK (memcmp (packed, want_bytes, len) == 0, "packed bytes differ from protobuf-c's");

    /* ...and the bytes come back as the same text. */
    char *back = orr_pbjson_unpack_to_json (&orrery__node_heartbeat__descriptor, packed, len);
    CHECK_EQ_STR (back, text);

    /* The unpacked struct holds the original values. */
    Orrery__NodeHeartbeat *hb2 =
        (Orrery__NodeHeartbeat *) orr_pbjson_to_message (&orrery__node_heartbeat__descriptor, json,
                                                         err, sizeof err);
    CHECK (hb2 != NULL, "%s", err);
    CHECK_EQ_STR (hb2->node, "node-7");
    CHECK_EQ_INT (hb2->capacity->memory_bytes, INT64_C (68719476736));
    CHECK_EQ_INT (hb2->usage->servers, 3);
    CHECK_EQ_INT (hb2->n_labels, 2);
    CHECK_EQ_STR (hb2->labels[1]->key, "disk");
    CHECK_EQ_STR (hb2->labels[1]->value, "");
    CHECK_EQ_STR (hb2->taints[0]->effect, "NoSchedule");
    CHECK_EQ_INT (hb2->time_us, INT64_C (1700000000123456));
    CHECK_EQ_STR (hb2->agent, "");
    protobuf_c_message_free_unpacked (&hb2->base, NULL);

    free (back);
    free (packed);
    free (want_bytes);
    free (text);
    json_decref (json);
}

static void
test_json_names_and_number_forms (void)
{
    /* lowerCamelCase names, int64 as numbers or strings, integral reals, null = unset. */
    s_check_maps_to (
        &orrery__node_heartbeat__descriptor,
        "{\"node\":\"n1\",\"capacity\":{\"cpuMillis\":4000,\"memoryBytes\":\"8589934592\","
        "\"gpus\":\"1\",\"servers\":1e2},\"timeUs\":1700000000000000,"
        "\"labels\":[{\"key\":\"zone\",\"value\":\"a\"}],\"agent\":null,\"usage\":null}",
        "{\"node\":\"n1\",\"capacity\":{\"cpu_millis\":\"4000\",\"memory_bytes\":"
        "\"8589934592\",\"gpus\":1,\"servers\":100},\"time_us\":\"1700000000000000\","
        "\"labels\":[{\"key\":\"zone\",\"value\":\"a\"}]}");
    /* Canonical output maps to itself. */
    const char *canonical = "{\"node\":\"n\",\"capacity\":{\"cpu_millis\":\"-1\",\"gpus\":-3},"
                            "\"taints\":[{\"key\":\"k\"},{\"effect\":\"NoSchedule\"}],\"time_us\":"
                            "\"9223372036854775807\"}";
    s_check_maps_to (&orrery__node_heartbeat__descriptor, canonical, canonical);
    /* Defaults are omitted, even when given explicitly; an empty message is {}. */
    s_check_maps_to (&orrery__node_heartbeat__descriptor,
                     "{\"node\":\"\",\"time_us\":0,\"labels\":[],\"capacity\":{}}",
                     "{\"capacity\":{}}");
    s_check_maps_to (&orrery__node_event__descriptor, "{}", "{}");
    s_check_maps_to (&orrery__resources__descriptor,
                     "{\"cpu_millis\":\"-9223372036854775808\",\"gpus\":-2147483648,"
                     "\"servers\":2147483647}",
                     "{\"cpu_millis\":\"-9223372036854775808\",\"gpus\":-2147483648,"
                     "\"servers\":2147483647}");
}

static void
test_server_event_round_trip (void)
{
    Orrery__ServerEvent ev = ORRERY__SERVER_EVENT__INIT;
    ev.user = "alice";
    ev.server = "";
    ev.state = "pending_spawn";
    ev.message = "Server requested \xe2\x9c\x93 \"quoted\"\n";
    ev.progress = 50;
    ev.url = "/user/alice/";
    ev.node = "node-1";
    ev.time_us = -5;
    size_t len = protobuf_c_message_get_packed_size (&ev.base);
    uint8_t *bytes = orr_zalloc (len);
    protobuf_c_message_pack (&ev.base, bytes);

    char *text = orr_pbjson_unpack_to_json (&orrery__server_event__descriptor, bytes, len);
    CHECK (text != NULL, "ServerEvent bytes did not convert");
    json_t *json = s_parse (text);
    json_t *want = s_parse ("{\"user\":\"alice\",\"state\":\"pending_spawn\",\"message\":"
                            "\"Server requested \xe2\x9c\x93 \\\"quoted\\\"\\n\",\"progress\":50,"
                            "\"url\":\"/user/alice/\",\"node\":\"node-1\",\"time_us\":\"-5\"}");
    CHECK (json_equal (json, want), "got %s", text);

    char err[256];
    Orrery__ServerEvent *ev2 =
        (Orrery__ServerEvent *) orr_pbjson_to_message (&orrery__server_event__descriptor, json, err,
                                                       sizeof err);
    CHECK (ev2 != NULL, "%s", err);
    CHECK_EQ_STR (ev2->message, ev.message);
    CHECK_EQ_STR (ev2->server, "");
    CHECK_EQ_STR (ev2->reason, "");
    CHECK_EQ_INT (ev2->progress, 50);
    CHECK_EQ_INT (ev2->time_us, -5);
    size_t len2 = protobuf_c_message_get_packed_size (&ev2->base);
    uint8_t *bytes2 = orr_zalloc (len2);
    protobuf_c_message_pack (&ev2->base, bytes2);
    CHECK (len2 == len && memcmp (bytes, bytes2, len) == 0, "re-packed bytes differ");

    /* Bytes that are not a ServerEvent do not unpack. */
    const char truncated[] = { 0x0a, 0x05, 'a', 'b' }; /* a 5-byte string cut at 2 */
    CHECK (orr_pbjson_unpack_to_json (&orrery__server_event__descriptor, truncated, 4) == NULL,
           "truncated bytes unpacked");
    char *empty = orr_pbjson_unpack_to_json (&orrery__server_event__descriptor, NULL, 0);
    CHECK_EQ_STR (empty, "{}");
    free (empty);

    free (bytes2);
    protobuf_c_message_free_unpacked (&ev2->base, NULL);
    json_decref (want);
    json_decref (json);
    free (text);
    free (bytes);
}

static void
test_bytes_base64 (void)
{
    /* Binary body (NUL, 0xff, ...) through Call.body. */
    static const uint8_t body[] = { 0x00, 0xff, 0x10, 'h', 'i', 0xfb, 0xef };
    Orrery__Call call = ORRERY__CALL__INIT;
    call.method = "ping";
    call.body.data = (uint8_t *) body;
    call.body.len = sizeof body;
    json_t *json = orr_pbjson_from_message (&call.base);
    CHECK_EQ_STR (json_string_value (json_object_get (json, "body")), "AP8QaGn77w==");
    char err[256];
    Orrery__Call *call2 =
        (Orrery__Call *) orr_pbjson_to_message (&orrery__call__descriptor, json, err, sizeof err);
    CHECK (call2 != NULL, "%s", err);
    CHECK_EQ_INT (call2->body.len, sizeof body);
    CHECK (memcmp (call2->body.data, body, sizeof body) == 0, "bytes changed");
    protobuf_c_message_free_unpacked (&call2->base, NULL);
    json_decref (json);

    /* Every padding length, and the accepted input variants. */
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"aGVsbG8=\"}",
                     "{\"body\":\"aGVsbG8=\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"aGVsbG8\"}",
                     "{\"body\":\"aGVsbG8=\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"aGk\"}", "{\"body\":\"aGk=\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"aA==\"}", "{\"body\":\"aA==\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"aGV5\"}", "{\"body\":\"aGV5\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"-_8\"}", "{\"body\":\"+/8=\"}");
    s_check_maps_to (&orrery__call__descriptor, "{\"body\":\"\",\"method\":\"m\"}",
                     "{\"method\":\"m\"}");
    s_check_maps_to (&orrery__result__descriptor,
                     "{\"status\":404,\"error\":\"no\",\"body\":\"AA==\"}",
                     "{\"status\":404,\"error\":\"no\",\"body\":\"AA==\"}");

    s_check_refused (&orrery__call__descriptor, "{\"body\":\"a\"}", "field 'body': invalid base64");
    s_check_refused (&orrery__call__descriptor, "{\"body\":\"aGVsbG8==\"}", "invalid base64");
    s_check_refused (&orrery__call__descriptor, "{\"body\":\"aG=sbG8=\"}", "invalid base64");
    s_check_refused (&orrery__call__descriptor, "{\"body\":\"aGVs bG8=\"}", "invalid base64");
    s_check_refused (&orrery__call__descriptor, "{\"body\":\"!!!!\"}", "invalid base64");
    s_check_refused (&orrery__call__descriptor, "{\"body\":5}",
                     "field 'body': expected base64 string");
}

static void
test_errors (void)
{
    const ProtobufCMessageDescriptor *hb = &orrery__node_heartbeat__descriptor;
    s_check_refused (hb, "{\"capacity\":{\"cpu_millis\":\"abc\"}}",
                     "field 'capacity.cpu_millis': expected integer");
    s_check_refused (hb, "{\"capacity\":{\"cpuMillis\":true}}",
                     "field 'capacity.cpuMillis': expected integer");
    s_check_refused (hb, "{\"capacity\":{\"cpu_millis\":\" 5\"}}", "expected integer");
    s_check_refused (hb, "{\"capacity\":{\"cpu_millis\":1.5}}", "expected integer");
    s_check_refused (hb, "{\"node\":5}", "field 'node': expected string");
    s_check_refused (hb, "{\"capacity\":\"big\"}", "field 'capacity': expected object");
    s_check_refused (hb, "{\"labels\":{}}", "field 'labels': expected array");
    s_check_refused (hb, "{\"labels\":[{\"key\":\"a\"},{\"key\":1}]}",
                     "field 'labels[1].key': expected string");
    s_check_refused (hb, "{\"labels\":[null]}", "field 'labels[0]': expected object");
    s_check_refused (hb, "{\"nope\":1}", "unknown field 'nope'");
    s_check_refused (hb, "{\"capacity\":{\"cpu\":1}}", "unknown field 'capacity.cpu'");
    s_check_refused (hb, "{\"Node\":\"x\"}", "unknown field 'Node'");
    s_check_refused (hb, "{\"capacity\":{\"gpus\":2147483648}}",
                     "field 'capacity.gpus': integer out of range");
    s_check_refused (hb, "{\"capacity\":{\"gpus\":-2147483649}}", "integer out of range");
    s_check_refused (hb, "{\"capacity\":{\"cpu_millis\":\"9223372036854775808\"}}",
                     "field 'capacity.cpu_millis': integer out of range");
    s_check_refused (hb, "{\"time_us\":1e19}", "field 'time_us': integer out of range");
    s_check_refused (hb, "{\"time_us\":\"1\",\"timeUs\":\"2\"}", "given twice");
    s_check_refused (hb, "[]", "expected a JSON object for orrery.NodeHeartbeat");
    s_check_refused (hb, "\"x\"", "expected a JSON object");

    char err[256];
    size_t len = 99;
    CHECK (orr_pbjson_pack_from_json (hb, "{\"node\":", &len, err, sizeof err) == NULL,
           "truncated JSON accepted");
    CHECK (strstr (err, "invalid JSON") != NULL, "%s", err);
    CHECK (orr_pbjson_pack_from_json (hb, NULL, &len, err, sizeof err) == NULL, "NULL text");
    CHECK (orr_pbjson_to_message (NULL, NULL, err, sizeof err) == NULL, "NULL descriptor");
    CHECK (orr_pbjson_to_message (hb, NULL, NULL, 0) == NULL, "NULL JSON"); /* err optional */
    CHECK (orr_pbjson_from_message (NULL) == NULL, "NULL message");
    /* A NUL inside a JSON string cannot become a C string. */
    const char *with_nul = "{\"node\":\"a\\u0000b\"}";
    CHECK (orr_pbjson_pack_from_json (hb, with_nul, &len, err, sizeof err) == NULL,
           "embedded NUL accepted");
    CHECK (strstr (err, "NUL") != NULL, "%s", err);
}

/* ------------------------------------------------------------------------------------
 * Every type, oneofs, proto2 presence, depth
 * ------------------------------------------------------------------------------------ */

static void
test_all_types (void)
{
    const ProtobufCMessageDescriptor *k = &kitchen_descriptor;
    s_check_maps_to (
        k,
        "{\"i32\":-5,\"u32\":4000000000,\"s64\":\"-9223372036854775808\","
        "\"u64\":\"18446744073709551615\",\"f64\":1,\"flt\":1.5,\"dbl\":\"NaN\",\"flag\":true,"
        "\"color\":\"GREEN\",\"colors\":[\"RED\",2,\"COLOR_UNSPECIFIED\",9],"
        "\"nums\":[\"1\",2,-3],\"words\":[\"a\",\"\"],\"blobs\":[\"AQID\",\"\"],"
        "\"bools\":[true,false],\"sf32\":-7,\"choiceNum\":\"0\",\"child\":{\"i32\":1},"
        "\"blob\":\"AA==\",\"dbls\":[0.5,\"Infinity\",\"-Infinity\",-0.25,\"1e3\"]}",
        "{\"i32\":-5,\"u32\":4000000000,\"s64\":\"-9223372036854775808\","
        "\"u64\":\"18446744073709551615\",\"f64\":\"1\",\"flt\":1.5,\"dbl\":\"NaN\",\"flag\":true,"
        "\"color\":\"GREEN\",\"colors\":[\"RED\",\"GREEN\",\"COLOR_UNSPECIFIED\",9],"
        "\"nums\":[\"1\",\"2\",\"-3\"],\"words\":[\"a\",\"\"],\"blobs\":[\"AQID\",\"\"],"
        "\"bools\":[true,false],\"sf32\":-7,\"choice_num\":\"0\",\"child\":{\"i32\":1},"
        "\"blob\":\"AA==\",\"dbls\":[0.5,\"Infinity\",\"-Infinity\",-0.25,1000.0]}");
    /* Zero values of every type are omitted; a set oneof member is not, even when empty. */
    s_check_maps_to (
        k,
        "{\"i32\":0,\"u32\":0,\"s64\":0,\"u64\":\"0\",\"flt\":0,\"dbl\":0.0,"
        "\"flag\":false,\"color\":\"COLOR_UNSPECIFIED\",\"blob\":\"\",\"choice_text\":\"\"}",
        "{\"choice_text\":\"\"}");
    s_check_maps_to (k, "{\"choiceKitchen\":{}}", "{\"choice_kitchen\":{}}");
    s_check_maps_to (k, "{\"choice_kitchen\":{\"choice_kitchen\":{\"words\":[\"deep\"]}}}",
                     "{\"choice_kitchen\":{\"choice_kitchen\":{\"words\":[\"deep\"]}}}");

    /* The struct holds what the JSON said. */
    char err[256];
    json_t *json = s_parse ("{\"u64\":\"18446744073709551615\",\"color\":\"RED\",\"colors\":[2],"
                            "\"choice_text\":\"t\",\"flt\":0.1,\"bools\":[true],\"i32\":\"-0\"}");
    Kitchen *m = (Kitchen *) orr_pbjson_to_message (k, json, err, sizeof err);
    CHECK (m != NULL, "%s", err);
    CHECK (m->u64 == UINT64_MAX, "u64 = %" PRIu64, m->u64);
    CHECK_EQ_INT (m->color, COLOR_RED);
    CHECK_EQ_INT (m->n_colors, 1);
    CHECK_EQ_INT (m->colors[0], COLOR_GREEN);
    CHECK_EQ_INT (m->choice_case, 16);
    CHECK_EQ_STR (m->choice_text, "t");
    CHECK (m->flt == 0.1f, "flt = %.9g", (double) m->flt);
    CHECK_EQ_INT (m->bools[0], 1);
    /* Packs and unpacks with protobuf-c itself. */
    size_t len = protobuf_c_message_get_packed_size (&m->base);
    uint8_t *bytes = orr_zalloc (len);
    protobuf_c_message_pack (&m->base, bytes);
    char *text = orr_pbjson_unpack_to_json (k, bytes, len);
    CHECK (text != NULL, "Kitchen bytes did not convert");
    json_t *back = s_parse (text);
    CHECK_EQ_STR (json_string_value (json_object_get (back, "choice_text")), "t");
    CHECK_EQ_STR (json_string_value (json_object_get (back, "u64")), "18446744073709551615");
    CHECK (json_real_value (json_object_get (back, "flt")) == (double) 0.1f, "float changed");
    json_decref (back);
    free (text);
    free (bytes);
    protobuf_c_message_free_unpacked (&m->base, NULL);
    json_decref (json);

    s_check_refused (k, "{\"choice_text\":\"x\",\"choice_num\":1}", "oneof is already set");
    s_check_refused (k, "{\"choice_kitchen\":{\"words\":[\"a\"]},\"choice_text\":\"x\"}",
                     "oneof is already set by field 'choice_kitchen'");
    s_check_refused (k, "{\"color\":\"BLUE\"}",
                     "field 'color': unknown value 'BLUE' for enum pbjtest.Color");
    s_check_refused (k, "{\"colors\":[\"RED\",true]}",
                     "field 'colors[1]': expected enum name or number");
    s_check_refused (k, "{\"u32\":-1}", "field 'u32': integer out of range");
    s_check_refused (k, "{\"u32\":4294967296}", "integer out of range");
    s_check_refused (k, "{\"u64\":\"-1\"}", "integer out of range");
    s_check_refused (k, "{\"u64\":\"18446744073709551616\"}", "integer out of range");
    s_check_refused (k, "{\"f64\":\"1e3\"}", "expected integer");
    s_check_refused (k, "{\"flt\":1e39}", "field 'flt': number out of range for float");
    s_check_refused (k, "{\"dbl\":\"fast\"}", "field 'dbl': expected number");
    s_check_refused (k, "{\"dbl\":\"0x10\"}", "expected number");
    s_check_refused (k, "{\"dbl\":true}", "expected number");
    s_check_refused (k, "{\"flag\":1}", "field 'flag': expected boolean");
    s_check_refused (k, "{\"flag\":\"true\"}", "expected boolean");
    s_check_refused (k, "{\"bools\":[true,null]}", "field 'bools[1]': expected boolean");
    /* Errors deep inside partly built messages and arrays (leak checks under ASan). */
    s_check_refused (k, "{\"words\":[\"a\"],\"child\":{\"child\":{\"words\":[\"a\",\"b\",3]}}}",
                     "field 'child.child.words[2]': expected string");
    s_check_refused (k, "{\"choice_kitchen\":{\"words\":[\"x\"],\"blobs\":[\"AQID\",\"!\"]}}",
                     "field 'choice_kitchen.blobs[1]': invalid base64");
    s_check_refused (k, "{\"blob\":\"AQID\",\"nums\":[1,2,\"x\"]}", "field 'nums[2]'");
    s_check_refused (k, "{\"child\":{\"blob\":\"AQID\",\"choice_text\":\"a\",\"x\":1}}",
                     "unknown field 'child.x'");
}

static void
test_proto2_presence (void)
{
    const ProtobufCMessageDescriptor *l = &legacy_descriptor;
    s_check_maps_to (l, "{\"name\":\"x\"}", "{\"name\":\"x\"}");
    /* Optional fields set to their default (even zero) are present. */
    s_check_maps_to (l, "{\"name\":\"\",\"count\":0,\"note\":\"hi\",\"raw\":\"\"}",
                     "{\"name\":\"\",\"count\":0,\"note\":\"hi\",\"raw\":\"\"}");
    s_check_refused (l, "{}", "field 'name': required field missing");
    s_check_refused (l, "{\"name\":null,\"count\":1}", "field 'name': required field missing");

    char err[256];
    json_t *json = s_parse ("{\"name\":\"n\"}");
    Legacy *m = (Legacy *) orr_pbjson_to_message (l, json, err, sizeof err);
    CHECK (m != NULL, "%s", err);
    CHECK_EQ_INT (m->has_count, 0);
    CHECK_EQ_INT (m->count, 7);
    CHECK (m->note == legacy_note_default, "unset note should keep the shared default");
    protobuf_c_message_free_unpacked (&m->base, NULL);
    json_decref (json);
    json = s_parse ("{\"count\":0,\"name\":\"n\"}");
    m = (Legacy *) orr_pbjson_to_message (l, json, err, sizeof err);
    CHECK (m != NULL && m->has_count && m->count == 0, "count 0 should be present: %s", err);
    protobuf_c_message_free_unpacked (&m->base, NULL);
    json_decref (json);
}

/* {"child":{"child":...{"i32":1}}} with `levels` messages in all. */
static json_t *
s_nested_kitchen_json (int levels)
{
    json_t *json = json_pack ("{s:i}", "i32", 1);
    for (int i = 1; i < levels; i++)
        json = json_pack ("{s:o}", "child", json);
    return json;
}

static void
test_depth_limit (void)
{
    char err[256];
    json_t *ok = s_nested_kitchen_json (ORR_PBJSON_MAX_DEPTH);
    Kitchen *m = (Kitchen *) orr_pbjson_to_message (&kitchen_descriptor, ok, err, sizeof err);
    CHECK (m != NULL, "%s", err);
    json_t *out = orr_pbjson_from_message (&m->base);
    CHECK (out != NULL && json_equal (out, ok), "32 levels do not round-trip");
    json_decref (out);

    json_t *deep = s_nested_kitchen_json (ORR_PBJSON_MAX_DEPTH + 1);
    CHECK (orr_pbjson_to_message (&kitchen_descriptor, deep, err, sizeof err) == NULL,
           "33 levels accepted");
    CHECK (strstr (err, "nested deeper than 32") != NULL, "%s", err);
    CHECK (strncmp (err, "field 'child.child.", 19) == 0, "%s", err);
    json_decref (deep);
    json_t *very_deep = s_nested_kitchen_json (5000);
    CHECK (orr_pbjson_to_message (&kitchen_descriptor, very_deep, err, sizeof err) == NULL,
           "5000 levels accepted");
    json_decref (very_deep);

    /* A message one level too deep (built by hand) has no JSON form either. */
    Kitchen top;
    kitchen_init (&top);
    top.child = m;
    CHECK (orr_pbjson_from_message (&top.base) == NULL, "33 levels written");
    size_t len = protobuf_c_message_get_packed_size (&top.base);
    uint8_t *bytes = orr_zalloc (len);
    protobuf_c_message_pack (&top.base, bytes);
    CHECK (orr_pbjson_unpack_to_json (&kitchen_descriptor, bytes, len) == NULL,
           "33 levels written from bytes");
    free (bytes);
    protobuf_c_message_free_unpacked (&m->base, NULL);
    json_decref (ok);
}

/* ------------------------------------------------------------------------------------
 * Garbage in: no crash, no leak, and whatever is accepted round-trips
 * ------------------------------------------------------------------------------------ */

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t) (s_rng >> 11);
}

static const char *const s_keys[] = {
    "i32", "u32", "s64", "u64", "f64", "flt", "dbl", "flag", "color", "colors", "nums",
    "words", "blobs", "bools", "sf32", "choice_text", "choiceNum", "choice_kitchen", "child",
    "blob", "dbls", "node", "capacity", "usage", "labels", "taints", "time_us", "cpuMillis",
    "key", "value", "gpus", "bogus", "" };
static const char *const s_strings[] = {
    "", "RED", "GREEN", "NaN", "Infinity", "-1", "18446744073709551616", "42", "AQID", "a=b",
    "-_8", "\xc3\xa9t\xc3\xa9", "9223372036854775807", "1e5", "COLOR_UNSPECIFIED" };

static json_t *
s_random_json (int depth)
{
    unsigned kind = s_rand () % (depth > 40 ? 7 : 9);
    switch (kind) {
    case 0: return json_null ();
    case 1: return json_boolean (s_rand () & 1);
    case 2:
        return json_integer ((json_int_t) ((uint64_t) s_rand () << (s_rand () % 40))
                             - (json_int_t) (s_rand () % 1000));
    case 3:
        return json_real ((double) (int32_t) s_rand () / ((s_rand () % 7) + 1)
                          * ((s_rand () % 3) ? 1 : 1e30));
    case 4:
    case 5: return json_string (s_strings[s_rand () % (sizeof s_strings / sizeof *s_strings)]);
    case 6: return json_integer (s_rand () % 4);
    case 7: {
        json_t *a = json_array ();
        for (unsigned i = s_rand () % 4; i > 0; i--)
            json_array_append_new (a, s_random_json (depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object ();
        for (unsigned i = s_rand () % 5; i > 0; i--)
            json_object_set_new (o, s_keys[s_rand () % (sizeof s_keys / sizeof *s_keys)],
                                 s_random_json (depth + 1));
        return o;
    }
    }
}

static void
test_garbage (void)
{
    const ProtobufCMessageDescriptor *descs[] = {
        &kitchen_descriptor, &orrery__node_heartbeat__descriptor, &orrery__resources__descriptor,
        &orrery__call__descriptor, &legacy_descriptor };
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const ProtobufCMessageDescriptor *desc = descs[iter % 5];
        json_t *json = s_random_json (0);
        char err[256] = "";
        ProtobufCMessage *msg = orr_pbjson_to_message (desc, json, err, sizeof err);
        if (msg) {
            accepted++;
            json_t *out = orr_pbjson_from_message (msg);
            CHECK (out != NULL, "accepted message has no JSON form");
            ProtobufCMessage *again = orr_pbjson_to_message (desc, out, err, sizeof err);
            CHECK (again != NULL, "re-reading own output: %s", err);
            json_t *out2 = orr_pbjson_from_message (again);
            CHECK (json_equal (out, out2), "unstable: %s vs %s", s_dump (out), s_dump (out2));
            json_decref (out2);
            json_decref (out);
            protobuf_c_message_free_unpacked (again, NULL);
            protobuf_c_message_free_unpacked (msg, NULL);
        }
        else
            CHECK (err[0] != '\0', "refused without a reason");
        json_decref (json);
    }
    CHECK (accepted > 100, "only %d random documents accepted", accepted);

    /* Mangled text and random bytes. */
    const char *seed = "{\"node\":\"n\",\"capacity\":{\"cpu_millis\":\"4\",\"gpus\":1},"
                       "\"labels\":[{\"key\":\"k\",\"value\":\"v\"}],\"time_us\":\"7\"}";
    size_t seed_len = strlen (seed);
    char text[256];
    uint8_t bytes[64];
    for (int iter = 0; iter < 20000; iter++) {
        memcpy (text, seed, seed_len + 1);
        for (unsigned n = 1 + s_rand () % 4; n > 0; n--)
            text[s_rand () % seed_len] = (char) (s_rand () % 255 + 1);
        char err[256];
        size_t len;
        char *packed = orr_pbjson_pack_from_json (&orrery__node_heartbeat__descriptor, text, &len,
                                                  err, sizeof err);
        free (packed);

        size_t n = s_rand () % sizeof bytes;
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t) s_rand ();
        char *json_text = orr_pbjson_unpack_to_json (descs[iter % 5], bytes, n);
        free (json_text);
    }
}

/* ------------------------------------------------------------------------------------
 * Topic table
 * ------------------------------------------------------------------------------------ */

static void
test_topics (void)
{
    struct { const char *topic; const ProtobufCMessageDescriptor *desc; } cases[] = {
        { "node.heartbeat", &orrery__node_heartbeat__descriptor },
        { "node.registered", &orrery__node_event__descriptor },
        { "node.lost", &orrery__node_event__descriptor },
        { "node.cordoned", &orrery__node_event__descriptor },
        { "node.uncordoned", &orrery__node_event__descriptor },
        { "node.heartbeat.v2", &orrery__node_event__descriptor },
        { "server.start.requested", &orrery__server_intent__descriptor },
        { "server.stop.requested", &orrery__server_intent__descriptor },
        { "server.ready", &orrery__server_event__descriptor },
        { "server.pending", &orrery__server_event__descriptor },
        { "server.start.requested.x", &orrery__server_event__descriptor },
        { "hub.shutdown", &orrery__shutdown__descriptor },
        { "hub.other", &orrery__generic_event__descriptor },
        { "user.created", &orrery__identity_event__descriptor },
        { "group.updated", &orrery__identity_event__descriptor },
        { "token.revoked", &orrery__identity_event__descriptor },
        { "service.deleted", &orrery__identity_event__descriptor },
        { "users.created", &orrery__generic_event__descriptor },
        { "node", &orrery__generic_event__descriptor },
        { "acme.deploy", &orrery__generic_event__descriptor },
        { "", &orrery__generic_event__descriptor },
        { NULL, &orrery__generic_event__descriptor },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ProtobufCMessageDescriptor *got = orr_event_type_for_topic (cases[i].topic);
        CHECK (got == cases[i].desc, "topic %s -> %s, expected %s",
               cases[i].topic ? cases[i].topic : "(null)", got->name, cases[i].desc->name);
    }

    char *doc = NULL;
    size_t doc_len = 0;
    FILE *out = open_memstream (&doc, &doc_len);
    orr_event_types_print (out);
    fclose (out);
    CHECK (strstr (doc, "| `node.heartbeat` | orrery.NodeHeartbeat |\n") != NULL, "%s", doc);
    CHECK (strstr (doc, "| `server.*` | orrery.ServerEvent |\n") != NULL, "%s", doc);
    CHECK (strstr (doc, "| anything else | orrery.GenericEvent |\n") != NULL, "%s", doc);
    /* Exact topics are listed before the prefixes they override. */
    CHECK (strstr (doc, "server.start.requested") < strstr (doc, "`server.*`"), "%s", doc);
    free (doc);
}

int
main (void)
{
    test_heartbeat_round_trip ();
    test_json_names_and_number_forms ();
    test_server_event_round_trip ();
    test_bytes_base64 ();
    test_errors ();
    test_all_types ();
    test_proto2_presence ();
    test_depth_limit ();
    test_garbage ();
    test_topics ();
    printf ("test_pbjson: ok\n");
    return 0;
}
