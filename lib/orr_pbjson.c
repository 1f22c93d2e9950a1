/*  orr_pbjson: protobuf-c messages <-> JSON, for any message, from runtime descriptors.
 *
 *  Every generated protobuf-c message carries a ProtobufCMessageDescriptor: its fields in
 *  number order, each with a label (required / optional / repeated / none = proto3 without
 *  presence), a type, the byte offset of the value inside the C struct and, for repeated,
 *  optional-scalar and oneof fields, the offset of the "quantifier" next to it (n_xxx count,
 *  has_xxx flag, or xxx_case). Walking those descriptors lets one pair of recursive walkers
 *  map every message in proto/ with no per-message code; a new .proto message is JSON-ready
 *  the moment protoc-c generates it.
 *
 *  JSON -> message builds the C struct in place rather than packing and re-parsing: each
 *  message is calloc'd at the descriptor's sizeof_message and initialised by its own
 *  message_init, strings and bytes are fresh malloc'd copies, repeated fields are calloc'd
 *  arrays. That is exactly the memory layout protobuf_c_message_unpack produces with the
 *  default (malloc) allocator, so protobuf_c_message_free_unpacked (msg, NULL) releases
 *  it. The same call cleans up after an error half-way through: every allocation is linked
 *  into the tree (pointer stored, count bumped, oneof case set) before anything can fail
 *  beneath it, so a partially built message is always a well-formed one.
 *
 *  Errors name the path of the offending field ("labels[2].key"), kept in a fixed buffer
 *  that grows on the way down and is cut back on the way up.
 *
 *  Output follows proto3's JSON mapping (see orr_pbjson.h) with .proto field names;
 *  fields are written in field-number order (jansson keeps insertion order).
 */
#include "orr_pbjson.h"

#include "orr_util.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Layout helpers shared by both directions
 * ------------------------------------------------------------------------------------ */

/* Size of one value of `type` as protobuf-c stores it (an element of a repeated array, or
 * a singular member). Enums are stored as int (protobuf-c forces enums to int size). */
static size_t
s_value_size (ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof (int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof (int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof (float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof (double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof (protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof (char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof (ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof (ProtobufCMessage *);
    }
    return sizeof (void *);
}

static void *
s_member (const ProtobufCMessage *msg, unsigned offset)
{
    return (char *) msg + offset;
}

static ProtobufCMessage *
s_new_message (const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = orr_zalloc (desc->sizeof_message);
    protobuf_c_message_init (desc, msg);
    return msg;
}

static const char s_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------------------------------
 * Message -> JSON
 * ------------------------------------------------------------------------------------ */

static json_t *s_message_to_json (const ProtobufCMessage *msg, int depth);

/* proto3 fields without presence are "set" when they differ from the type's zero. */
static bool
s_value_is_zero (ProtobufCType type, const void *member)
{
    switch (type) {
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *) member == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *) member == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *) member;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *) member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const ProtobufCMessage *const *) member == NULL;
    default:
        if (s_value_size (type) == sizeof (int64_t))
            return *(const uint64_t *) member == 0;
        return *(const uint32_t *) member == 0;
    }
}

/* Whether `fd` is written on output: the same presence rules protobuf-c's packer uses. */
static bool
s_field_is_present (const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
    const void *member = s_member (msg, fd->offset);
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *) s_member (msg, fd->quantifier_offset) == fd->id;
    switch (fd->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return true;
    case PROTOBUF_C_LABEL_REPEATED:
        return *(const size_t *) s_member (msg, fd->quantifier_offset) > 0;
    case PROTOBUF_C_LABEL_OPTIONAL:
        /* Pointer-typed optionals have no has_ flag: set means "not NULL and not the
         * shared default". Everything else has a has_ flag. */
        if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            const void *p = *(const void *const *) member;
            return p != NULL && p != fd->default_value;
        }
        return *(const protobuf_c_boolean *) s_member (msg, fd->quantifier_offset);
    case PROTOBUF_C_LABEL_NONE:
    default:
        return !s_value_is_zero (fd->type, member);
    }
}

static json_t *
s_double_to_json (double d)
{
    if (isnan (d))
        return json_string ("NaN");
    if (isinf (d))
        return json_string (d > 0 ? "Infinity" : "-Infinity");
    return json_real (d);
}

static json_t *
s_base64_to_json (const uint8_t *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = orr_zalloc (out_len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t chunk = (uint32_t) data[i] << 16;
        if (i + 1 < len)
            chunk |= (uint32_t) data[i + 1] << 8;
        if (i + 2 < len)
            chunk |= data[i + 2];
        out[o++] = s_base64_alphabet[(chunk >> 18) & 63];
        out[o++] = s_base64_alphabet[(chunk >> 12) & 63];
        out[o++] = i + 1 < len ? s_base64_alphabet[(chunk >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? s_base64_alphabet[chunk & 63] : '=';
    }
    json_t *json = json_stringn (out, o);
    free (out);
    return json;
}

/* One value (a singular member or one repeated element) as JSON; NULL when it cannot be
 * expressed (invalid UTF-8, too deep). */
static json_t *
s_value_to_json (const ProtobufCFieldDescriptor *fd, const void *value, int depth)
{
    char num[32];
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer (*(const int32_t *) value);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer (*(const uint32_t *) value);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        /* proto3 JSON: 64-bit integers are strings, beyond a double's 53-bit mantissa. */
        snprintf (num, sizeof num, "%" PRId64, *(const int64_t *) value);
        return json_string (num);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf (num, sizeof num, "%" PRIu64, *(const uint64_t *) value);
        return json_string (num);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_double_to_json (*(const float *) value);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_double_to_json (*(const double *) value);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean (*(const protobuf_c_boolean *) value);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t number = *(const int32_t *) value;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value (fd->descriptor, number);
        /* Open enums may hold numbers this build does not know: keep the number. */
        return ev ? json_string (ev->name) : json_integer (number);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *) value;
        return json_string (s ? s : ""); /* NULL for invalid UTF-8 */
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = value;
        return s_base64_to_json (bd->data, bd->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *) value;
        return sub ? s_message_to_json (sub, depth + 1) : NULL;
    }
    }
    return NULL;
}

static json_t *
s_message_to_json (const ProtobufCMessage *msg, int depth)
{
    if (depth > ORR_PBJSON_MAX_DEPTH)
        return NULL;
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *obj = json_object ();
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[f];
        if (!s_field_is_present (msg, fd))
            continue;
        json_t *value;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *) s_member (msg, fd->quantifier_offset);
            const char *elements = *(char *const *) s_member (msg, fd->offset);
            size_t size = s_value_size (fd->type);
            value = json_array ();
            for (size_t i = 0; i < count; i++) {
                json_t *element = s_value_to_json (fd, elements + i * size, depth);
                if (!element || json_array_append_new (value, element) != 0) {
                    json_decref (value);
                    value = NULL;
                    break;
                }
            }
        }
        else
            value = s_value_to_json (fd, s_member (msg, fd->offset), depth);
        if (!value || json_object_set_new (obj, fd->name, value) != 0) {
            json_decref (obj);
            return NULL;
        }
    }
    return obj;
}

json_t *
orr_pbjson_from_message (const ProtobufCMessage *msg)
{
    if (!msg || !msg->descriptor)
        return NULL;
    return s_message_to_json (msg, 1);
}

/* ------------------------------------------------------------------------------------
 * JSON -> message
 * ------------------------------------------------------------------------------------ */

/* State of one conversion: where to report, and the path of the field being read. */
typedef struct {
    char *err;
    size_t errlen;
    char path[256];
    size_t path_len;
} pbjson_reader_t;

/* Appends ".name" (or "name" at the top) to the path; returns the length to restore. */
static size_t
s_path_push_name (pbjson_reader_t *rd, const char *name)
{
    size_t mark = rd->path_len;
    int n = snprintf (rd->path + mark, sizeof rd->path - mark, "%s%s", mark ? "." : "", name);
    rd->path_len = n < 0 ? mark : mark + (size_t) n;
    if (rd->path_len >= sizeof rd->path)
        rd->path_len = sizeof rd->path - 1; /* truncated; the error is still useful */
    return mark;
}

static size_t
s_path_push_index (pbjson_reader_t *rd, size_t index)
{
    size_t mark = rd->path_len;
    int n = snprintf (rd->path + mark, sizeof rd->path - mark, "[%zu]", index);
    rd->path_len = n < 0 ? mark : mark + (size_t) n;
    if (rd->path_len >= sizeof rd->path)
        rd->path_len = sizeof rd->path - 1;
    return mark;
}

static void
s_path_restore (pbjson_reader_t *rd, size_t mark)
{
    rd->path_len = mark;
    rd->path[mark] = '\0';
}

/* Reports "field '<path>': <reason>" (or just the reason at the top level); returns -1. */
static int __attribute__ ((format (printf, 2, 3)))
s_fail (pbjson_reader_t *rd, const char *fmt, ...)
{
    if (!rd->err || rd->errlen == 0)
        return -1;
    char reason[192];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (reason, sizeof reason, fmt, ap);
    va_end (ap);
    if (rd->path_len)
        snprintf (rd->err, rd->errlen, "field '%s': %s", rd->path, reason);
    else
        snprintf (rd->err, rd->errlen, "%s", reason);
    return -1;
}

static int s_read_message (pbjson_reader_t *rd, ProtobufCMessage *msg, json_t *obj, int depth);

/* protoc's JSON name: drop each '_' and upper-case the letter after it (time_us -> timeUs). */
static bool
s_json_name_matches (const char *proto_name, const char *key)
{
    bool upper_next = false;
    for (; *proto_name; proto_name++) {
        if (*proto_name == '_') {
            upper_next = true;
            continue;
        }
        char c = upper_next ? (char) toupper ((unsigned char) *proto_name) : *proto_name;
        upper_next = false;
        if (*key++ != c)
            return false;
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *
s_find_field (const ProtobufCMessageDescriptor *desc, const char *key)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name (desc, key);
    if (fd)
        return fd;
    for (unsigned f = 0; f < desc->n_fields; f++)
        if (s_json_name_matches (desc->fields[f].name, key))
            return &desc->fields[f];
    return NULL;
}

/* "-?[0-9]+" and nothing else: strtoll alone would take spaces, '+' and trailing junk. */
static bool
s_is_decimal_integer (const char *s)
{
    if (*s == '-')
        s++;
    if (!isdigit ((unsigned char) *s))
        return false;
    while (isdigit ((unsigned char) *s))
        s++;
    return *s == '\0';
}

/* Any JSON form of a signed integer (number, integral real such as 1e3, decimal string),
 * checked against [lo, hi]. */
static int
s_read_signed (pbjson_reader_t *rd, json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t x;
    if (json_is_integer (v))
        x = json_integer_value (v);
    else if (json_is_real (v)) {
        double d = json_real_value (v);
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return s_fail (rd, "integer out of range");
        x = (int64_t) d;
        if ((double) x != d)
            return s_fail (rd, "expected integer");
    }
    else if (json_is_string (v)) {
        const char *s = json_string_value (v);
        if (!s_is_decimal_integer (s))
            return s_fail (rd, "expected integer");
        errno = 0;
        long long parsed = strtoll (s, NULL, 10);
        if (errno == ERANGE)
            return s_fail (rd, "integer out of range");
        x = parsed;
    }
    else
        return s_fail (rd, "expected integer");
    if (x < lo || x > hi)
        return s_fail (rd, "integer out of range");
    *out = x;
    return 0;
}

static int
s_read_unsigned (pbjson_reader_t *rd, json_t *v, uint64_t hi, uint64_t *out)
{
    uint64_t x;
    if (json_is_integer (v)) {
        json_int_t i = json_integer_value (v);
        if (i < 0)
            return s_fail (rd, "integer out of range");
        x = (uint64_t) i;
    }
    else if (json_is_real (v)) {
        double d = json_real_value (v);
        if (!(d >= 0 && d < 18446744073709551616.0))
            return s_fail (rd, "integer out of range");
        x = (uint64_t) d;
        if ((double) x != d)
            return s_fail (rd, "expected integer");
    }
    else if (json_is_string (v)) {
        const char *s = json_string_value (v);
        if (!s_is_decimal_integer (s))
            return s_fail (rd, "expected integer");
        /* Negative is out of range, except for a (silly but valid) "-0". */
        if (s[0] == '-' && strspn (s + 1, "0") != strlen (s + 1))
            return s_fail (rd, "integer out of range");
        errno = 0;
        unsigned long long parsed = strtoull (s, NULL, 10);
        if (errno == ERANGE)
            return s_fail (rd, "integer out of range");
        x = parsed;
    }
    else
        return s_fail (rd, "expected integer");
    if (x > hi)
        return s_fail (rd, "integer out of range");
    *out = x;
    return 0;
}

static int
s_read_double (pbjson_reader_t *rd, json_t *v, double *out)
{
    if (json_is_number (v)) {
        *out = json_number_value (v);
        return 0;
    }
    if (!json_is_string (v))
        return s_fail (rd, "expected number");
    const char *s = json_string_value (v);
    if (strcmp (s, "NaN") == 0)
        *out = NAN;
    else if (strcmp (s, "Infinity") == 0)
        *out = INFINITY;
    else if (strcmp (s, "-Infinity") == 0)
        *out = -INFINITY;
    else {
        /* A number in a string, as proto3 allows; strtod alone would also take hex, "inf"
         * and leading spaces, so only decimal-number characters are let through. */
        char *end;
        if (s[0] == '\0' || strspn (s, "0123456789+-.eE") != strlen (s))
            return s_fail (rd, "expected number");
        errno = 0;
        *out = strtod (s, &end);
        if (*end != '\0')
            return s_fail (rd, "expected number");
        if (errno == ERANGE && isinf (*out))
            return s_fail (rd, "number out of range");
    }
    return 0;
}

static int
s_base64_digit (unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-') /* standard or URL-safe alphabet */
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padded or not. 0 and a malloc'd buffer (NULL when empty),
 * or -1 on anything malformed. */
static int
s_base64_decode (const char *in, size_t in_len, uint8_t **out_p, size_t *out_len_p)
{
    size_t n = in_len;
    while (n > 0 && in[n - 1] == '=' && in_len - n < 2)
        n--;
    if (n < in_len && in_len % 4 != 0) /* padding present: only as complete quads */
        return -1;
    if (n % 4 == 1) /* one leftover character cannot encode a byte */
        return -1;
    *out_p = NULL;
    *out_len_p = 0;
    if (n == 0)
        return 0;
    uint8_t *out = orr_zalloc (n / 4 * 3 + 3);
    size_t o = 0;
    uint32_t bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < n; i++) {
        int digit = s_base64_digit ((unsigned char) in[i]);
        if (digit < 0) {
            free (out);
            return -1;
        }
        bits = (bits << 6) | (uint32_t) digit;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out[o++] = (uint8_t) (bits >> nbits);
        }
    }
    *out_p = out;
    *out_len_p = o;
    return 0;
}

/* Reads one JSON value into `slot` (a singular member or one repeated element). For
 * messages, the new submessage is stored in the slot before its fields are read, so a
 * failure below still leaves it reachable for protobuf_c_message_free_unpacked. */
static int
s_read_value (pbjson_reader_t *rd, const ProtobufCFieldDescriptor *fd, json_t *v, void *slot,
              int depth)
{
    int64_t i64;
    uint64_t u64;
    double d;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_read_signed (rd, v, INT32_MIN, INT32_MAX, &i64))
            return -1;
        *(int32_t *) slot = (int32_t) i64;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_read_signed (rd, v, INT64_MIN, INT64_MAX, &i64))
            return -1;
        *(int64_t *) slot = i64;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_read_unsigned (rd, v, UINT32_MAX, &u64))
            return -1;
        *(uint32_t *) slot = (uint32_t) u64;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (s_read_unsigned (rd, v, UINT64_MAX, &u64))
            return -1;
        *(uint64_t *) slot = u64;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (s_read_double (rd, v, &d))
            return -1;
        if (isfinite (d) && (d > FLT_MAX || d < -FLT_MAX))
            return s_fail (rd, "number out of range for float");
        *(float *) slot = (float) d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (s_read_double (rd, v, &d))
            return -1;
        *(double *) slot = d;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean (v))
            return s_fail (rd, "expected boolean");
        *(protobuf_c_boolean *) slot = json_is_true (v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = fd->descriptor;
        if (json_is_string (v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name (ed, json_string_value (v));
            if (!ev)
                return s_fail (rd, "unknown value '%s' for enum %s", json_string_value (v),
                               ed->name);
            *(int32_t *) slot = ev->value;
            return 0;
        }
        if (!json_is_number (v))
            return s_fail (rd, "expected enum name or number");
        if (s_read_signed (rd, v, INT32_MIN, INT32_MAX, &i64))
            return -1;
        *(int32_t *) slot = (int32_t) i64;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string (v))
            return s_fail (rd, "expected string");
        size_t len = json_string_length (v);
        if (memchr (json_string_value (v), '\0', len))
            return s_fail (rd, "string contains a NUL character");
        *(char **) slot = orr_strndup (json_string_value (v), len);
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = slot;
        if (!json_is_string (v))
            return s_fail (rd, "expected base64 string");
        if (s_base64_decode (json_string_value (v), json_string_length (v), &bd->data, &bd->len))
            return s_fail (rd, "invalid base64");
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object (v))
            return s_fail (rd, "expected object");
        if (depth + 1 > ORR_PBJSON_MAX_DEPTH)
            return s_fail (rd, "messages nested deeper than %d levels", ORR_PBJSON_MAX_DEPTH);
        ProtobufCMessage *sub = s_new_message (fd->descriptor);
        *(ProtobufCMessage **) slot = sub;
        return s_read_message (rd, sub, v, depth + 1);
    }
    }
    return s_fail (rd, "unsupported field type %d", (int) fd->type);
}

static int
s_read_repeated (pbjson_reader_t *rd, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd,
                 json_t *array, int depth)
{
    if (!json_is_array (array))
        return s_fail (rd, "expected array");
    size_t count = json_array_size (array);
    size_t size = s_value_size (fd->type);
    size_t *n_elements = s_member (msg, fd->quantifier_offset);
    char *elements = count ? orr_zalloc (count * size) : NULL;
    *(char **) s_member (msg, fd->offset) = elements;
    *n_elements = 0;
    for (size_t i = 0; i < count; i++) {
        size_t mark = s_path_push_index (rd, i);
        int rc = s_read_value (rd, fd, json_array_get (array, i), elements + i * size, depth);
        s_path_restore (rd, mark);
        /* Counted even on failure: the slot is zeroed or holds what s_read_value stored
         * (a half-read submessage), and free_unpacked copes with both. */
        *n_elements = i + 1;
        if (rc)
            return -1;
    }
    return 0;
}

static int
s_read_field (pbjson_reader_t *rd, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd,
              json_t *v, int depth)
{
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
        return s_read_repeated (rd, msg, fd, v, depth);
    void *member = s_member (msg, fd->offset);
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *oneof_case = s_member (msg, fd->quantifier_offset);
        if (*oneof_case != 0) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field (msg->descriptor, *oneof_case);
            return s_fail (rd, "its oneof is already set by field '%s'",
                           other ? other->name : "?");
        }
        /* Case first: free_unpacked only frees the member the case names. */
        *oneof_case = fd->id;
        return s_read_value (rd, fd, v, member, depth);
    }
    if (s_read_value (rd, fd, v, member, depth))
        return -1;
    if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_STRING
        && fd->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *) s_member (msg, fd->quantifier_offset) = 1;
    return 0;
}

enum { FIELD_UNSEEN = 0, FIELD_SET, FIELD_NULL };

static int
s_read_message (pbjson_reader_t *rd, ProtobufCMessage *msg, json_t *obj, int depth)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    unsigned char *seen = orr_zalloc (desc->n_fields);
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        size_t mark = s_path_push_name (rd, key);
        const ProtobufCFieldDescriptor *fd = s_find_field (desc, key);
        if (!fd) {
            /* Reported whole: "unknown field 'capacity.foo'". */
            if (rd->err && rd->errlen)
                snprintf (rd->err, rd->errlen, "unknown field '%s'", rd->path);
            rc = -1;
        }
        else if (seen[fd - desc->fields] != FIELD_UNSEEN)
            rc = s_fail (rd, "given twice (as '%s' and its JSON name)", fd->name);
        else if (json_is_null (value))
            seen[fd - desc->fields] = FIELD_NULL; /* null means "not set" */
        else {
            seen[fd - desc->fields] = FIELD_SET;
            rc = s_read_field (rd, msg, fd, value, depth);
        }
        s_path_restore (rd, mark);
        if (rc)
            break;
    }
    for (unsigned f = 0; rc == 0 && f < desc->n_fields; f++) {
        if (desc->fields[f].label == PROTOBUF_C_LABEL_REQUIRED && seen[f] != FIELD_SET) {
            size_t mark = s_path_push_name (rd, desc->fields[f].name);
            rc = s_fail (rd, "required field missing");
            s_path_restore (rd, mark);
        }
    }
    free (seen);
    return rc;
}

ProtobufCMessage *
orr_pbjson_to_message (const ProtobufCMessageDescriptor *desc, json_t *json, char *err,
                       size_t errlen)
{
    pbjson_reader_t rd = { .err = err, .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    if (!desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
        s_fail (&rd, "no message descriptor");
        return NULL;
    }
    if (!json_is_object (json)) {
        s_fail (&rd, "expected a JSON object for %s", desc->name);
        return NULL;
    }
    ProtobufCMessage *msg = s_new_message (desc);
    if (s_read_message (&rd, msg, json, 1) != 0) {
        protobuf_c_message_free_unpacked (msg, NULL);
        return NULL;
    }
    return msg;
}

/* ------------------------------------------------------------------------------------
 * Text and wire conveniences
 * ------------------------------------------------------------------------------------ */

char *
orr_pbjson_pack_from_json (const ProtobufCMessageDescriptor *desc, const char *json_text,
                           size_t *len, char *err, size_t errlen)
{
    if (!json_text) {
        if (err && errlen)
            snprintf (err, errlen, "no JSON text");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loads (json_text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (err && errlen)
            snprintf (err, errlen, "invalid JSON at line %d column %d: %s", jerr.line,
                      jerr.column, jerr.text);
        return NULL;
    }
    ProtobufCMessage *msg = orr_pbjson_to_message (desc, root, err, errlen);
    json_decref (root);
    if (!msg)
        return NULL;
    size_t packed_len = protobuf_c_message_get_packed_size (msg);
    /* +1 so an empty message still yields a non-NULL buffer. */
    uint8_t *packed = orr_zalloc (packed_len + 1);
    protobuf_c_message_pack (msg, packed);
    protobuf_c_message_free_unpacked (msg, NULL);
    if (len)
        *len = packed_len;
    return (char *) packed;
}

char *
orr_pbjson_unpack_to_json (const ProtobufCMessageDescriptor *desc, const void *data, size_t len)
{
    if (!desc || (!data && len))
        return NULL;
    ProtobufCMessage *msg =
        protobuf_c_message_unpack (desc, NULL, len, data ? data : (const void *) "");
    if (!msg)
        return NULL;
    json_t *json = orr_pbjson_from_message (msg);
    protobuf_c_message_free_unpacked (msg, NULL);
    if (!json)
        return NULL;
    /* Dumped into our own buffer (rather than json_dumps) so the caller's free() is right
     * whatever allocator jansson was configured with. */
    size_t text_len = json_dumpb (json, NULL, 0, JSON_COMPACT);
    char *text = orr_zalloc (text_len + 1);
    json_dumpb (json, text, text_len, JSON_COMPACT);
    json_decref (json);
    return text;
}
