/*
 * pbjson.h - the proto3 JSON mapping for protobuf-c messages.
 *
 * Job payloads are protobuf messages, but operators and webhooks speak JSON.
 * This module converts between the two for any message type, driven only
 * by the protobuf-c descriptors (reflection), following the proto3 JSON
 * mapping (https://protobuf.dev/programming-guides/json/). Decoding is
 * strict: unknown fields, duplicate keys and type mismatches are errors,
 * because a job must never silently drop data.
 *
 * Not supported: the well-known types with a special JSON form
 * (google.protobuf.Timestamp, Duration, Any, Struct, Value, ListValue,
 * FieldMask and the wrappers) - both directions return JF_EUNSUPPORTED.
 */
#ifndef JF_CORE_PBJSON_H
#define JF_CORE_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include <jetfleet/status.h>

#include "shared/err.h"

typedef struct jf_pbjson_limits {
    size_t max_bytes;   /* input size limit; 0 = no limit */
    int    max_depth;   /* deepest nesting of objects/arrays; 0 = 32 */
} jf_pbjson_limits_t;

/* Decode JSON text (len bytes, not necessarily NUL-terminated; json may be
 * NULL when len is 0) into a new message of descriptor d.
 *
 * The top level must be a JSON object; empty (or all-blank) input and {}
 * yield a default message. Field names may be the proto name
 * ("retry_after_ms") or the lowerCamelCase JSON name ("retryAfterMs").
 * limits is borrowed and may be NULL (no size limit, depth 32).
 *
 * On success *out is a message allocated exactly as
 * protobuf_c_message_unpack() would with the default allocator; the caller
 * owns it and frees it with protobuf_c_message_free_unpacked(*out, NULL).
 * On failure *out is untouched, nothing leaks, and err (may be NULL) says
 * where and why, naming the field by its proto path ("inner.count",
 * "r_int32[2]", "labels[k]"). Returns:
 *   JF_EINVAL       bad arguments (NULL d or out, negative max_depth)
 *   JF_ETOOBIG      input longer than max_bytes, or nested deeper than
 *                   max_depth (the top-level object is depth 1)
 *   JF_EDECODE      invalid JSON, duplicate key, unknown field, type
 *                   mismatch, out-of-range number, bad base64, unknown enum
 *                   name, two members of one oneof, missing proto2 required
 *                   field
 *   JF_EUNSUPPORTED a well-known type with a special JSON form
 *   JF_ENOMEM       allocation failed */
jf_status_t jf_pbjson_decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                             const jf_pbjson_limits_t *limits, ProtobufCMessage **out,
                             jf_err_t *err);

#define JF_PBJSON_EMIT_DEFAULTS 0x1u  /* also print fields that have their default value */
#define JF_PBJSON_ORIG_NAMES    0x2u  /* use proto field names instead of lowerCamelCase */

/* Encode msg (borrowed) to compact JSON, fields in field-number order.
 *
 * Fields without presence that hold their default value (0, "", empty
 * bytes, the zero enum, empty repeated and map) are omitted unless
 * JF_PBJSON_EMIT_DEFAULTS; fields with presence (message fields, oneof
 * members, proto2/proto3 optional) are printed exactly when set. 64-bit
 * integers are printed as strings, bytes as standard base64, enums by name
 * (or number when the value has no name), NaN and infinities as "NaN",
 * "Infinity" and "-Infinity".
 *
 * On success *out is malloc'ed and NUL-terminated, the caller free()s it,
 * and *out_len (when out_len is not NULL) is its length without the NUL.
 * On failure *out and *out_len are untouched. Returns JF_EINVAL for bad
 * arguments, unknown flags or a string field that is not valid UTF-8,
 * JF_ETOOBIG for messages nested deeper than 1024, JF_EUNSUPPORTED for
 * well-known types, JF_ENOMEM when allocation fails. */
jf_status_t jf_pbjson_encode(const ProtobufCMessage *msg, unsigned flags, char **out,
                             size_t *out_len, jf_err_t *err);

#endif /* JF_CORE_PBJSON_H */
