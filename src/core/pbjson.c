/*
 * pbjson.c - the proto3 JSON mapping, driven by protobuf-c descriptors.
 *
 * protobuf-c has no JSON support, so this file walks the message and field
 * descriptors (reflection) and moves values between jansson trees and
 * protobuf-c structs. Decoding builds the message exactly as
 * protobuf_c_message_unpack() would with the default allocator: every
 * string, byte buffer, array and sub-message is malloc'ed, and every
 * pointer is either NULL, the field's default or a block of ours, with
 * counts that match. That invariant is kept after each single store, so on
 * any error protobuf_c_message_free_unpacked() can free the half-built
 * message and nothing leaks.
 *
 * protobuf-c 1.4 lacks two things the mapping needs: field descriptors
 * carry no json_name, so lowerCamelCase is derived from the proto name the
 * way protoc derives it; and map fields are plain repeated fields of a
 * nested "<Field>Entry" message, so a map is recognised by that shape.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/pbjson.h"

#define DEFAULT_MAX_DEPTH  32
#define PARSER_MAX_DEPTH   2048   /* jansson's own compiled-in nesting limit */
#define ENCODE_MAX_DEPTH   1024   /* guards the recursion against absurd messages */

/* ---------------------------------------------------------------------
 * Field paths and errors
 * ------------------------------------------------------------------- */

/* The proto path of the value being converted ("inner.r_int32[2]"), so
 * that every error names the field it is about. */
typedef struct {
    char   buf[160];
    size_t len;
} fpath_t;

static size_t path_push(fpath_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append a formatted segment; return the mark that path_pop() restores. */
static size_t path_push(fpath_t *p, const char *fmt, ...)
{
    size_t  mark = p->len;
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->len += (size_t)n < sizeof(p->buf) - p->len ? (size_t)n : sizeof(p->buf) - p->len - 1;
    return mark;
}

static size_t path_push_field(fpath_t *p, const char *name)
{
    return path_push(p, p->len ? ".%s" : "%s", name);
}

static void path_pop(fpath_t *p, size_t mark)
{
    p->len = mark;
    p->buf[mark] = '\0';
}

static jf_status_t path_err(jf_err_t *err, const fpath_t *p, jf_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set err to "field '<path>': <detail>", or just <detail> at top level. */
static jf_status_t path_err(jf_err_t *err, const fpath_t *p, jf_status_t code, const char *fmt, ...)
{
    char    detail[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (p->len == 0)
        return jf_err_set(err, code, "%s", detail);
    return jf_err_set(err, code, "field '%s': %s", p->buf, detail);
}

/* ---------------------------------------------------------------------
 * Descriptor helpers
 * ------------------------------------------------------------------- */

/* protoc's camel-case form of a proto name: drop each '_' and upper-case
 * the letter after it (and the first one when upper_first). False when it
 * does not fit in out. */
static bool camel_case(const char *proto, bool upper_first, char *out, size_t size)
{
    bool   cap = upper_first;
    size_t n = 0;

    for (; *proto; proto++) {
        if (*proto == '_') {
            cap = true;
            continue;
        }
        if (n + 1 >= size)
            return false;
        out[n++] = cap && *proto >= 'a' && *proto <= 'z' ? (char)(*proto - 'a' + 'A') : *proto;
        cap = false;
    }
    out[n] = '\0';
    return true;
}

/* True when key is the lowerCamelCase JSON name of the proto name. */
static bool json_name_eq(const char *proto, const char *key)
{
    char buf[256];

    return camel_case(proto, false, buf, sizeof(buf)) && strcmp(buf, key) == 0;
}

/* The JSON name of a field, malloc'ed. */
static char *json_name_dup(const char *proto)
{
    char buf[256];

    return camel_case(proto, false, buf, sizeof(buf)) ? strdup(buf) : NULL;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);

    for (unsigned i = 0; f == NULL && i < d->n_fields; i++)
        if (json_name_eq(d->fields[i].name, key))
            f = &d->fields[i];
    return f;
}

/* True when the entry name protoc gives the map field `field` ("by_id" ->
 * "ByIdEntry") is exactly `name`. */
static bool map_entry_name_eq(const char *field, const char *name)
{
    char   buf[256];
    size_t n;

    if (!camel_case(field, true, buf, sizeof(buf)))
        return false;
    n = strlen(buf);
    return strncmp(buf, name, n) == 0 && strcmp(name + n, "Entry") == 0;
}

/* protobuf-c 1.4 keeps no map_entry option, so a map field is recognised
 * by the shape protoc gives it: a repeated field of a message nested in
 * the parent, named "<Field>Entry", with exactly key = 1 and value = 2. */
static bool is_map_field(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t                            plen = strlen(parent->name);

    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0 ||
        e->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
        e->fields[1].label == PROTOBUF_C_LABEL_REPEATED)
        return false;
    switch (e->fields[0].type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_MESSAGE:
        return false;
    default:
        break;
    }
    return strncmp(e->name, parent->name, plen) == 0 && e->name[plen] == '.' &&
           map_entry_name_eq(f->name, e->name + plen + 1);
}

/* The well-known types whose JSON form is not their plain message form. */
static bool is_special_wkt(const ProtobufCMessageDescriptor *d)
{
    static const char *const names[] = {
        "Any", "Timestamp", "Duration", "FieldMask", "Struct", "Value", "ListValue",
        "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value",
        "UInt32Value", "BoolValue", "StringValue", "BytesValue",
    };
    static const char prefix[] = "google.protobuf.";

    if (strncmp(d->name, prefix, sizeof(prefix) - 1) != 0)
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(d->name + sizeof(prefix) - 1, names[i]) == 0)
            return true;
    return false;
}

/* Size of one value of the field's type as protobuf-c stores it. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:    /* 32-bit integers and enums (forced to int size) */
        return sizeof(uint32_t);
    }
}

/* Whether a pointer-valued (STRING or MESSAGE) member holds a value. */
static bool ptr_set(const ProtobufCFieldDescriptor *f, const void *member)
{
    const void *p = *(const void *const *)member;

    return p != NULL && p != f->default_value;
}

/* A proto2 (or proto3 `optional`) scalar keeps its presence in a has_
 * flag at quantifier_offset; strings and messages use the pointer. */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);

    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

/* A short rendering of a scalar JSON value, for error messages; reals
 * with the fewest digits that still read back as the same value. */
static const char *json_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, json_real_value(v));
            if (strtod(buf, NULL) == json_real_value(v))
                break;
        }
    } else if (json_is_string(v)) {
        snprintf(buf, size, "\"%.40s\"", json_string_value(v));
    } else {
        snprintf(buf, size, "%s", json_kind(v));
    }
    return buf;
}

/* ---------------------------------------------------------------------
 * Base64 and UTF-8
 * ------------------------------------------------------------------- */

/* Decode standard or URL-safe base64, padding optional, into a malloc'ed
 * buffer (NULL for zero bytes). EVP_DecodeBlock wants the standard
 * alphabet, padded, so the input is normalised into a copy first. */
static jf_status_t b64_decode(const char *s, size_t n, uint8_t **ret_data, size_t *ret_len)
{
    size_t   pads = 0, padded;
    char    *norm = NULL;
    uint8_t *data = NULL;
    int      got;
    jf_status_t st = JF_EDECODE;

    while (n > 0 && s[n - 1] == '=' && pads < 2) {
        n--;
        pads++;
    }
    if (n % 4 == 1 || (pads > 0 && (n + pads) % 4 != 0))
        return JF_EDECODE;
    padded = (n + 3) / 4 * 4;
    if (padded > INT32_MAX)
        return JF_ETOOBIG;
    if (padded == 0) {
        *ret_data = NULL;
        *ret_len = 0;
        return JF_OK;
    }
    norm = malloc(padded + 1);
    data = malloc(padded / 4 * 3 + 1);
    if (norm == NULL || data == NULL) {
        st = JF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (ch == '-')
            ch = '+';
        else if (ch == '_')
            ch = '/';
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            goto out;
        norm[i] = ch;
    }
    memset(norm + n, '=', padded - n);
    norm[padded] = '\0';
    got = EVP_DecodeBlock(data, (const unsigned char *)norm, (int)padded);
    if (got < 0)
        goto out;
    *ret_len = (size_t)got - (padded - n);
    *ret_data = data;
    data = NULL;
    st = JF_OK;
out:
    free(norm);
    free(data);
    return st;
}

/* Jansson refuses strings that are not UTF-8; check first so that the
 * caller can tell that apart from running out of memory. */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p++, need;
        uint32_t cp, min;

        if (c < 0x80)
            continue;
        if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        while (need-- > 0) {
            if ((*p & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (*p++ & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------
 * Decoding: scalars
 * ------------------------------------------------------------------- */

typedef struct {
    jf_err_t *err;
    fpath_t   path;
} dctx_t;

/* Parse "-?[0-9]+" into sign and magnitude; *overflow when it does not
 * fit 64 bits. False when s is not of that form. */
static bool parse_decimal(const char *s, bool *neg, uint64_t *mag, bool *overflow)
{
    uint64_t m = 0;

    *neg = *s == '-';
    *overflow = false;
    if (*neg)
        s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned dig = (unsigned)(*s - '0');

        if (m > (UINT64_MAX - dig) / 10)
            *overflow = true;
        m = m * 10 + dig;
    }
    *mag = m;
    return *s == '\0';
}

/* Parse a string holding a JSON number ("1.5e3"), with jansson so that
 * the locale cannot change what a decimal point is. */
static bool parse_number_text(const char *s, double *ret, bool *overflow)
{
    size_t       n = strlen(s);
    json_error_t jerr;
    json_t      *num;
    bool         ok;

    *overflow = false;
    if (n == 0 || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) ||
        !(s[n - 1] >= '0' && s[n - 1] <= '9'))
        return false;
    num = json_loadb(s, n, JSON_DECODE_ANY, &jerr);
    if (num == NULL) {
        *overflow = json_error_code(&jerr) == json_error_numeric_overflow;
        return false;
    }
    ok = json_is_number(num);
    *ret = json_number_value(num);
    json_decref(num);
    return ok;
}

/* d, read from v, as sign and magnitude when it is integral. */
static jf_status_t real_to_int(dctx_t *c, double d, const json_t *v, bool *neg, uint64_t *mag)
{
    double a = d < 0 ? -d : d;
    char   text[64];

    if (!isfinite(d))
        return path_err(c->err, &c->path, JF_EDECODE, "%s is not an integer",
                        json_text(v, text, sizeof(text)));
    if (a >= 18446744073709551616.0)    /* 2^64 */
        return path_err(c->err, &c->path, JF_EDECODE, "%s is out of range",
                        json_text(v, text, sizeof(text)));
    *mag = (uint64_t)a;
    if ((double)*mag != a)
        return path_err(c->err, &c->path, JF_EDECODE, "%s is not an integer",
                        json_text(v, text, sizeof(text)));
    *neg = d < 0;
    return JF_OK;
}

/* Store sign and magnitude into an integer member of f's type, or fail
 * when the value (from v, or from map key `key` when v is NULL) is out of
 * that type's range. */
static jf_status_t store_integer(dctx_t *c, const ProtobufCFieldDescriptor *f, bool neg,
                                 uint64_t mag, bool overflow, const json_t *v, const char *key,
                                 void *member)
{
    char        text[64];
    const char *tname;
    uint64_t    neg_max, pos_max;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        tname = "int32", neg_max = (uint64_t)INT32_MAX + 1, pos_max = INT32_MAX;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        tname = "uint32", neg_max = 0, pos_max = UINT32_MAX;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        tname = "int64", neg_max = (uint64_t)INT64_MAX + 1, pos_max = INT64_MAX;
        break;
    default:
        tname = "uint64", neg_max = 0, pos_max = UINT64_MAX;
        break;
    }
    if (overflow || (neg ? mag > neg_max : mag > pos_max)) {
        if (v != NULL)
            json_text(v, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "\"%.40s\"", key);
        return path_err(c->err, &c->path, JF_EDECODE, "%s is out of range for %s", text, tname);
    }
    if (neg)    /* two's complement negation, exact down to INT64_MIN */
        mag = ~mag + 1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)member = (uint32_t)mag;
        break;
    default:
        *(uint64_t *)member = mag;
        break;
    }
    return JF_OK;
}

/* An integer field: a JSON number that is integral, or a string holding
 * one ("123", "-5", "1e3"). */
static jf_status_t decode_integer(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                                  void *member)
{
    char        text[64];
    bool        neg = false, overflow = false;
    uint64_t    mag = 0;
    double      d;
    jf_status_t st;

    switch (json_typeof(v)) {
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);

        neg = i < 0;
        mag = neg ? 0 - (uint64_t)i : (uint64_t)i;
        break;
    }
    case JSON_REAL:
        st = real_to_int(c, json_real_value(v), v, &neg, &mag);
        if (st != JF_OK)
            return st;
        break;
    case JSON_STRING:
        if (parse_decimal(json_string_value(v), &neg, &mag, &overflow))
            break;
        if (parse_number_text(json_string_value(v), &d, &overflow)) {
            st = real_to_int(c, d, v, &neg, &mag);
            if (st != JF_OK)
                return st;
            break;
        }
        if (overflow)
            break;
        return path_err(c->err, &c->path, JF_EDECODE, "expected an integer, got string %s",
                        json_text(v, text, sizeof(text)));
    default:
        return path_err(c->err, &c->path, JF_EDECODE, "expected a number, got %s", json_kind(v));
    }
    return store_integer(c, f, neg, mag, overflow, v, NULL, member);
}

/* A float or double field: a JSON number, a string holding one, or one of
 * "NaN", "Infinity", "-Infinity". */
static jf_status_t decode_real(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                               void *member)
{
    char   text[64];
    double d;
    bool   overflow;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        d = json_number_value(v);
        break;
    case JSON_STRING: {
        const char *s = json_string_value(v);

        if (strcmp(s, "NaN") == 0)
            d = NAN;
        else if (strcmp(s, "Infinity") == 0)
            d = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            d = -INFINITY;
        else if (parse_number_text(s, &d, &overflow))
            break;
        else if (overflow)
            return path_err(c->err, &c->path, JF_EDECODE, "%s is out of range for double",
                            json_text(v, text, sizeof(text)));
        else
            return path_err(c->err, &c->path, JF_EDECODE, "expected a number, got string %s",
                            json_text(v, text, sizeof(text)));
        break;
    }
    default:
        return path_err(c->err, &c->path, JF_EDECODE, "expected a number, got %s", json_kind(v));
    }
    if (f->type == PROTOBUF_C_TYPE_DOUBLE) {
        *(double *)member = d;
        return JF_OK;
    }
    /* Values below FLT_MAX + half an ulp still round to FLT_MAX. */
    if (isfinite(d) && (d < 0 ? -d : d) >= 0x1.ffffffp127)
        return path_err(c->err, &c->path, JF_EDECODE, "%s is out of range for float",
                        json_text(v, text, sizeof(text)));
    *(float *)member = (float)d;
    return JF_OK;
}

static jf_status_t decode_enum(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                               void *member)
{
    /* proto3 enums are open: any int32 is kept, named or not */
    static const ProtobufCFieldDescriptor as_int32 = { .name = "", .type = PROTOBUF_C_TYPE_INT32 };
    const ProtobufCEnumDescriptor        *ed = f->descriptor;
    const ProtobufCEnumValue             *ev;

    if (json_is_string(v)) {
        ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        if (ev == NULL)
            return path_err(c->err, &c->path, JF_EDECODE, "unknown value '%.60s' for enum %s",
                            json_string_value(v), ed->name);
        *(int32_t *)member = ev->value;
        return JF_OK;
    }
    if (json_is_number(v))
        return decode_integer(c, &as_int32, v, member);
    return path_err(c->err, &c->path, JF_EDECODE, "expected an enum name or number, got %s",
                    json_kind(v));
}

/* ---------------------------------------------------------------------
 * Decoding: fields and messages
 * ------------------------------------------------------------------- */

static jf_status_t decode_message(dctx_t *c, const ProtobufCMessageDescriptor *d, json_t *obj,
                                  ProtobufCMessage *msg);

/* Decode one value of f's type from v into member, which holds zero or the
 * field's default. Strings, bytes and sub-messages are malloc'ed; a
 * sub-message is linked into member before it is filled, so that a failure
 * inside it is still freed with the parent. */
static jf_status_t decode_value(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                                void *member)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return decode_integer(c, f, v, member);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return decode_real(c, f, v, member);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return path_err(c->err, &c->path, JF_EDECODE, "expected true or false, got %s",
                            json_kind(v));
        *(protobuf_c_boolean *)member = json_is_true(v);
        return JF_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return decode_enum(c, f, v, member);
    case PROTOBUF_C_TYPE_STRING: {
        char *s;

        if (!json_is_string(v))
            return path_err(c->err, &c->path, JF_EDECODE, "expected a string, got %s",
                            json_kind(v));
        s = malloc(json_string_length(v) + 1);
        if (s == NULL)
            return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
        memcpy(s, json_string_value(v), json_string_length(v) + 1);
        *(char **)member = s;
        return JF_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = member;
        jf_status_t          st;

        if (!json_is_string(v))
            return path_err(c->err, &c->path, JF_EDECODE, "expected a base64 string, got %s",
                            json_kind(v));
        st = b64_decode(json_string_value(v), json_string_length(v), &bd->data, &bd->len);
        if (st == JF_ENOMEM)
            return path_err(c->err, &c->path, st, "out of memory");
        if (st != JF_OK)
            return path_err(c->err, &c->path, st, "invalid base64");
        return JF_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage                 *sub;

        if (!json_is_object(v))
            return path_err(c->err, &c->path, JF_EDECODE, "expected an object, got %s",
                            json_kind(v));
        sub = new_message(sd);
        if (sub == NULL)
            return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
        *(ProtobufCMessage **)member = sub;
        return decode_message(c, sd, v, sub);
    }
    }
    return path_err(c->err, &c->path, JF_EUNSUPPORTED, "field type %d is not supported",
                    (int)f->type);
}

/* Mark a proto2 / proto3-optional scalar as present. */
static void set_has(const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg)
{
    if (has_flag(f))
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
}

/* A map key: JSON object keys are strings, so integer and bool keys come
 * as their decimal or "true"/"false" text. */
static jf_status_t decode_map_key(dctx_t *c, const ProtobufCFieldDescriptor *kf, const char *key,
                                  void *member)
{
    bool     neg, overflow;
    uint64_t mag;

    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = strdup(key);

        if (s == NULL)
            return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
        *(char **)member = s;
        return JF_OK;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return path_err(c->err, &c->path, JF_EDECODE, "map key is not true or false");
        *(protobuf_c_boolean *)member = strcmp(key, "true") == 0;
        return JF_OK;
    default: {
        /* Only the canonical spelling: "1" and "01" (or "0" and "-0") would
         * otherwise be two JSON keys for one map key, a duplicate that
         * JSON_REJECT_DUPLICATES cannot see. */
        const char *d = key[0] == '-' ? key + 1 : key;
        bool canonical = d[0] != '\0' && strspn(d, "0123456789") == strlen(d) &&
                         (d[0] != '0' || (d[1] == '\0' && d == key));
        if (!canonical || !parse_decimal(key, &neg, &mag, &overflow))
            return path_err(c->err, &c->path, JF_EDECODE,
                            "map key is not an integer in canonical form (no sign on 0, no "
                            "leading zeros)");
        return store_integer(c, kf, neg, mag, overflow, NULL, key, member);
    }
    }
}

/* A map field: a JSON object, decoded into repeated key/value entries. */
static jf_status_t decode_map(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                              ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor   *kf = &ed->fields[0], *vf = &ed->fields[1];
    ProtobufCMessage                **arr;
    const char                       *key;
    json_t                           *val;
    size_t                            n = json_object_size(v), i = 0;
    jf_status_t                       st = JF_OK;

    if (!json_is_object(v))
        return path_err(c->err, &c->path, JF_EDECODE, "expected an object (map), got %s",
                        json_kind(v));
    if (n == 0)
        return JF_OK;
    arr = calloc(n, sizeof(*arr));
    if (arr == NULL)
        return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(ProtobufCMessage ***)((char *)msg + f->offset) = arr;
    json_object_foreach(v, key, val) {
        size_t            mark = path_push(&c->path, "[%.60s]", key);
        ProtobufCMessage *entry = new_message(ed);

        if (entry == NULL) {
            st = path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
        } else {
            arr[i++] = entry;
            st = decode_map_key(c, kf, key, (char *)entry + kf->offset);
            if (st == JF_OK && json_is_null(val))
                st = path_err(c->err, &c->path, JF_EDECODE, "map value is null");
            if (st == JF_OK)
                st = decode_value(c, vf, val, (char *)entry + vf->offset);
            if (st == JF_OK) {
                set_has(kf, entry);
                set_has(vf, entry);
            }
        }
        path_pop(&c->path, mark);
        if (st != JF_OK)
            return st;
    }
    return JF_OK;
}

/* A repeated field: a JSON array of values of the field's type. */
static jf_status_t decode_repeated(dctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v,
                                   ProtobufCMessage *msg)
{
    size_t      n, sz = elem_size(f), i;
    json_t     *e;
    char       *arr;
    jf_status_t st = JF_OK;

    if (!json_is_array(v))
        return path_err(c->err, &c->path, JF_EDECODE, "expected an array, got %s",
                        json_kind(v));
    n = json_array_size(v);
    if (n == 0)
        return JF_OK;
    arr = calloc(n, sz);
    if (arr == NULL)
        return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(void **)((char *)msg + f->offset) = arr;
    json_array_foreach(v, i, e) {
        size_t mark = path_push(&c->path, "[%zu]", i);

        if (json_is_null(e))
            st = path_err(c->err, &c->path, JF_EDECODE, "null is not allowed in a list");
        else
            st = decode_value(c, f, e, arr + i * sz);
        path_pop(&c->path, mark);
        if (st != JF_OK)
            return st;
    }
    return JF_OK;
}

static jf_status_t decode_field(dctx_t *c, const ProtobufCMessageDescriptor *d,
                                const ProtobufCFieldDescriptor *f, json_t *v,
                                ProtobufCMessage *msg)
{
    void       *member = (char *)msg + f->offset;
    jf_status_t st;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return is_map_field(d, f) ? decode_map(c, f, v, msg) : decode_repeated(c, f, v, msg);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *qcase = (uint32_t *)((char *)msg + f->quantifier_offset);

        if (*qcase != 0 && *qcase != f->id) {
            const ProtobufCFieldDescriptor *other = protobuf_c_message_descriptor_get_field(d, *qcase);

            return path_err(c->err, &c->path, JF_EDECODE, "oneof already set by field '%s'",
                            other ? other->name : "?");
        }
        /* case first, so that a sub-message linked in by a failing decode
         * is still found and freed by protobuf_c_message_free_unpacked */
        memset(member, 0, elem_size(f));
        *qcase = f->id;
        return decode_value(c, f, v, member);
    }
    st = decode_value(c, f, v, member);
    if (st == JF_OK)
        set_has(f, msg);
    return st;
}

enum { FIELD_SEEN = 1, FIELD_SET = 2 };

static jf_status_t decode_message(dctx_t *c, const ProtobufCMessageDescriptor *d, json_t *obj,
                                  ProtobufCMessage *msg)
{
    unsigned char *state = NULL;
    const char    *key;
    json_t        *v;
    jf_status_t    st = JF_OK;

    if (is_special_wkt(d))
        return path_err(c->err, &c->path, JF_EUNSUPPORTED,
                        "%s has a special JSON form that is not supported", d->name);
    if (d->n_fields > 0) {
        state = calloc(d->n_fields, 1);
        if (state == NULL)
            return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
    }
    json_object_foreach(obj, key, v) {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        size_t                          idx, mark;

        if (f == NULL) {
            st = jf_err_set(c->err, JF_EDECODE, "unknown field '%s%s%.60s'", c->path.buf,
                            c->path.len ? "." : "", key);
            goto out;
        }
        idx = (size_t)(f - d->fields);
        mark = path_push_field(&c->path, f->name);
        if (state[idx] != 0) {
            st = path_err(c->err, &c->path, JF_EDECODE,
                          "given twice, by proto name and by JSON name");
        } else {
            state[idx] = FIELD_SEEN;
            if (!json_is_null(v)) {     /* null means "default" */
                st = decode_field(c, d, f, v, msg);
                state[idx] = FIELD_SET;
            }
        }
        path_pop(&c->path, mark);
        if (st != JF_OK)
            goto out;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && state[i] != FIELD_SET) {
            st = jf_err_set(c->err, JF_EDECODE, "missing required field '%s%s%s'", c->path.buf,
                            c->path.len ? "." : "", d->fields[i].name);
            goto out;
        }
    }
out:
    free(state);
    return st;
}

/* True when v nests objects and arrays deeper than max (v is at depth). */
static bool too_deep(json_t *v, int depth, int max)
{
    const char *key;
    json_t     *child;
    size_t      i;

    if (!json_is_object(v) && !json_is_array(v))
        return false;
    if (depth > max)
        return true;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
            if (too_deep(child, depth + 1, max))
                return true;
    } else {
        json_array_foreach(v, i, child)
            if (too_deep(child, depth + 1, max))
                return true;
    }
    return false;
}

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

jf_status_t jf_pbjson_decode(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                             const jf_pbjson_limits_t *limits, ProtobufCMessage **out,
                             jf_err_t *err)
{
    size_t            max_bytes = limits ? limits->max_bytes : 0;
    int               max_depth = limits && limits->max_depth ? limits->max_depth : DEFAULT_MAX_DEPTH;
    dctx_t            c = { .err = err };
    ProtobufCMessage *msg = NULL;
    json_t           *root = NULL;
    json_error_t      jerr;
    jf_status_t       st;

    if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || out == NULL ||
        (json == NULL && len > 0))
        return jf_err_set(err, JF_EINVAL, "pbjson decode: invalid arguments");
    if (max_depth < 0)
        return jf_err_set(err, JF_EINVAL, "pbjson decode: max_depth %d is negative", max_depth);
    if (max_bytes > 0 && len > max_bytes)
        return jf_err_set(err, JF_ETOOBIG, "payload is %zu bytes, limit %zu", len, max_bytes);
    if (is_special_wkt(d))
        return jf_err_set(err, JF_EUNSUPPORTED,
                          "%s has a special JSON form that is not supported", d->name);

    msg = new_message(d);
    if (msg == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    if (blank(json, len)) {
        st = JF_OK;
        goto out;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_stack_overflow)
            st = max_depth <= PARSER_MAX_DEPTH
                     ? jf_err_set(err, JF_ETOOBIG, "JSON nesting deeper than %d", max_depth)
                     : jf_err_set(err, JF_ETOOBIG, "JSON nesting deeper than %d (parser limit)",
                                  PARSER_MAX_DEPTH);
        else if (json_error_code(&jerr) == json_error_out_of_memory)
            st = jf_err_set(err, JF_ENOMEM, "out of memory");
        else
            st = jf_err_set(err, JF_EDECODE, "invalid JSON at line %d, column %d: %s",
                            jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        st = jf_err_set(err, JF_EDECODE, "expected a JSON object at top level, got %s",
                        json_kind(root));
        goto out;
    }
    if (too_deep(root, 1, max_depth)) {
        st = jf_err_set(err, JF_ETOOBIG, "JSON nesting deeper than %d", max_depth);
        goto out;
    }
    st = decode_message(&c, d, root, msg);
out:
    json_decref(root);
    if (st != JF_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return st;
    }
    *out = msg;
    return JF_OK;
}

/* ---------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------- */

/* Every float and double put in the tree, to choose the print precision. */
typedef struct {
    double v;
    bool   is_float;
} ereal_t;

typedef struct {
    unsigned  flags;
    jf_err_t *err;
    fpath_t   path;
    int       depth;
    ereal_t  *reals;
    size_t    n_reals, cap_reals;
} ectx_t;

static jf_status_t encode_message(ectx_t *c, const ProtobufCMessage *msg, json_t **ret);

static jf_status_t enomem(ectx_t *c)
{
    return path_err(c->err, &c->path, JF_ENOMEM, "out of memory");
}

static json_t *encode_real(ectx_t *c, double v, bool is_float)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    if (c->n_reals == c->cap_reals) {
        size_t   cap = c->cap_reals ? c->cap_reals * 2 : 16;
        ereal_t *r = realloc(c->reals, cap * sizeof(*r));

        if (r == NULL)
            return NULL;
        c->reals = r;
        c->cap_reals = cap;
    }
    c->reals[c->n_reals++] = (ereal_t){ .v = v, .is_float = is_float };
    return json_real(v);
}

static bool round_trips(const ereal_t *r, int prec)
{
    char   buf[48];
    double back;

    snprintf(buf, sizeof(buf), "%.*g", prec, r->v);
    back = strtod(buf, NULL);
    return r->is_float ? (float)back == (float)r->v : back == r->v;
}

/* jansson prints every real with one precision per dump (17 digits by
 * default, which turns 0.1 into 0.10000000000000001 and a float 0.1 into
 * 0.10000000149011612). Pick the smallest precision at which every real
 * in this message still reads back as the same value; 17 always does. */
static int real_precision(const ectx_t *c)
{
    int  prec = 1;
    bool raised;

    do {
        raised = false;
        for (size_t i = 0; i < c->n_reals; i++) {
            while (prec < 17 && !round_trips(&c->reals[i], prec)) {
                prec++;
                raised = true;
            }
        }
    } while (raised);
    return prec;
}

static jf_status_t encode_string(ectx_t *c, const char *s, json_t **ret)
{
    if (s == NULL)
        s = "";
    if (!utf8_valid(s))
        return path_err(c->err, &c->path, JF_EINVAL, "string is not valid UTF-8");
    *ret = json_string(s);
    return *ret ? JF_OK : enomem(c);
}

static jf_status_t encode_bytes(ectx_t *c, const ProtobufCBinaryData *bd, json_t **ret)
{
    char *buf;

    if (bd->len > (size_t)INT32_MAX / 4 * 3)
        return path_err(c->err, &c->path, JF_ETOOBIG, "%zu bytes are too many to encode",
                        bd->len);
    buf = malloc((bd->len + 2) / 3 * 4 + 1);
    if (buf == NULL)
        return enomem(c);
    if (bd->len > 0)
        EVP_EncodeBlock((unsigned char *)buf, bd->data, (int)bd->len);
    else
        buf[0] = '\0';
    *ret = json_string(buf);
    free(buf);
    return *ret ? JF_OK : enomem(c);
}

/* One value of f's type, read from member. */
static jf_status_t encode_value(ectx_t *c, const ProtobufCFieldDescriptor *f,
                                const void *member, json_t **ret)
{
    char  num[32];
    json_t *v = NULL;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        v = json_integer(*(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        v = json_integer(*(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_INT64:     /* 64-bit integers are strings in proto3 JSON */
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof(num), "%" PRId64, *(const int64_t *)member);
        v = json_string(num);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)member);
        v = json_string(num);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        v = encode_real(c, *(const float *)member, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        v = encode_real(c, *(const double *)member, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        v = json_boolean(*(const protobuf_c_boolean *)member);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t                   e = *(const int32_t *)member;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, e);

        v = ev ? json_string(ev->name) : json_integer(e);
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        return encode_string(c, *(const char *const *)member, ret);
    case PROTOBUF_C_TYPE_BYTES:
        return encode_bytes(c, member, ret);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;

        if (sub != NULL)
            return encode_message(c, sub, ret);
        v = json_object();      /* a NULL list element or map value */
        break;
    }
    default:
        return path_err(c->err, &c->path, JF_EUNSUPPORTED, "field type %d is not supported",
                        (int)f->type);
    }
    if (v == NULL)
        return enomem(c);
    *ret = v;
    return JF_OK;
}

/* A map key as JSON object key text: strings as they are, integers in
 * decimal, bools as "true"/"false". */
static jf_status_t map_key_text(ectx_t *c, const ProtobufCFieldDescriptor *kf, const void *member,
                                char *buf, size_t size, const char **ret)
{
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;

        *ret = s ? s : "";
        if (!utf8_valid(*ret))
            return path_err(c->err, &c->path, JF_EINVAL, "map key is not valid UTF-8");
        return JF_OK;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *ret = *(const protobuf_c_boolean *)member ? "true" : "false";
        return JF_OK;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, size, "%" PRId32, *(const int32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, size, "%" PRIu32, *(const uint32_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)member);
        break;
    default:
        snprintf(buf, size, "%" PRId64, *(const int64_t *)member);
        break;
    }
    *ret = buf;
    return JF_OK;
}

static jf_status_t encode_map(ectx_t *c, const ProtobufCFieldDescriptor *f, size_t n,
                              const ProtobufCMessage *const *entries, json_t *obj)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor   *kf = &ed->fields[0], *vf = &ed->fields[1];

    for (size_t i = 0; i < n; i++) {
        const char *e = (const char *)entries[i];
        char        buf[32];
        const char *key;
        json_t     *val = NULL;
        size_t      mark;
        jf_status_t st;

        if (e == NULL)
            continue;
        st = map_key_text(c, kf, e + kf->offset, buf, sizeof(buf), &key);
        if (st != JF_OK)
            return st;
        mark = path_push(&c->path, "[%.60s]", key);
        st = encode_value(c, vf, e + vf->offset, &val);
        if (st == JF_OK && json_object_set_new(obj, key, val) != 0)
            st = enomem(c);
        path_pop(&c->path, mark);
        if (st != JF_OK)
            return st;
    }
    return JF_OK;
}

static jf_status_t encode_field(ectx_t *c, const ProtobufCMessageDescriptor *d,
                                const ProtobufCFieldDescriptor *f, const char *base,
                                json_t **ret)
{
    const void *member = base + f->offset;
    size_t      n, sz = elem_size(f);
    const char *arr;
    json_t     *list;
    jf_status_t st = JF_OK;

    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return encode_value(c, f, member, ret);
    n = *(const size_t *)(base + f->quantifier_offset);
    arr = *(const char *const *)member;
    list = is_map_field(d, f) ? json_object() : json_array();
    if (list == NULL)
        return enomem(c);
    if (json_is_object(list)) {
        st = encode_map(c, f, n, (const ProtobufCMessage *const *)arr, list);
    } else {
        for (size_t i = 0; i < n && st == JF_OK; i++) {
            size_t  mark = path_push(&c->path, "[%zu]", i);
            json_t *v = NULL;

            st = encode_value(c, f, arr + i * sz, &v);
            if (st == JF_OK && json_array_append_new(list, v) != 0)
                st = enomem(c);
            path_pop(&c->path, mark);
        }
    }
    if (st != JF_OK) {
        json_decref(list);
        return st;
    }
    *ret = list;
    return JF_OK;
}

/* The proto3 "default value" test for fields without presence. Reals
 * compare as bits, as protobuf's C++ and Go runtimes do, so that -0.0 is
 * printed and survives a round trip. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *member)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;

        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)member == NULL;
    default:
        return elem_size(f) == sizeof(uint64_t) ? *(const uint64_t *)member == 0
                                                 : *(const uint32_t *)member == 0;
    }
}

/* Whether field f of the message at base is printed: fields with presence
 * when present (the same tests protobuf_c_message_pack makes), fields
 * without presence when not default or when defaults are wanted. */
static bool field_printed(const ectx_t *c, const ProtobufCFieldDescriptor *f, const char *base)
{
    const void *member = base + f->offset;
    const void *q = base + f->quantifier_offset;
    bool        ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
    bool        all = c->flags & JF_PBJSON_EMIT_DEFAULTS;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return all || *(const size_t *)q > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)q == f->id && (!ptr_type || ptr_set(f, member));
    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return f->type != PROTOBUF_C_TYPE_MESSAGE || *(const void *const *)member != NULL;
    case PROTOBUF_C_LABEL_OPTIONAL:
        return ptr_type ? ptr_set(f, member) : *(const protobuf_c_boolean *)q != 0;
    default:
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            return *(const void *const *)member != NULL;
        return all || !is_default(f, member);
    }
}

static jf_status_t encode_message(ectx_t *c, const ProtobufCMessage *msg, json_t **ret)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char                       *base = (const char *)msg;
    json_t                           *obj = NULL;
    jf_status_t                       st = JF_OK;

    if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return path_err(c->err, &c->path, JF_EINVAL, "message has no descriptor");
    if (is_special_wkt(d))
        return path_err(c->err, &c->path, JF_EUNSUPPORTED,
                        "%s has a special JSON form that is not supported", d->name);
    if (c->depth >= ENCODE_MAX_DEPTH)
        return path_err(c->err, &c->path, JF_ETOOBIG, "messages nested deeper than %d",
                        ENCODE_MAX_DEPTH);
    obj = json_object();
    if (obj == NULL)
        return enomem(c);
    c->depth++;
    for (unsigned i = 0; i < d->n_fields && st == JF_OK; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t                          mark;
        json_t                         *v = NULL;
        char                           *name = NULL;

        if (!field_printed(c, f, base))
            continue;
        mark = path_push_field(&c->path, f->name);
        st = encode_field(c, d, f, base, &v);
        if (st == JF_OK && !(c->flags & JF_PBJSON_ORIG_NAMES)) {
            name = json_name_dup(f->name);
            if (name == NULL) {
                json_decref(v);
                st = enomem(c);
            }
        }
        if (st == JF_OK && json_object_set_new(obj, name ? name : f->name, v) != 0)
            st = enomem(c);
        free(name);
        path_pop(&c->path, mark);
    }
    c->depth--;
    if (st != JF_OK) {
        json_decref(obj);
        return st;
    }
    *ret = obj;
    return JF_OK;
}

jf_status_t jf_pbjson_encode(const ProtobufCMessage *msg, unsigned flags, char **out,
                             size_t *out_len, jf_err_t *err)
{
    ectx_t      c = { .flags = flags, .err = err };
    json_t     *root = NULL;
    char       *buf = NULL;
    size_t      n;
    size_t      dflags;
    jf_status_t st;

    if (msg == NULL || out == NULL)
        return jf_err_set(err, JF_EINVAL, "pbjson encode: invalid arguments");
    if (flags & ~(JF_PBJSON_EMIT_DEFAULTS | JF_PBJSON_ORIG_NAMES))
        return jf_err_set(err, JF_EINVAL, "pbjson encode: unknown flags 0x%x", flags);
    st = encode_message(&c, msg, &root);
    if (st != JF_OK)
        goto out;
    dflags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(real_precision(&c));
    /* json_dumpb rather than json_dumps: the text is ours to malloc, so the
     * caller's free() is right even if jansson's allocator is replaced */
    n = json_dumpb(root, NULL, 0, dflags);
    buf = n ? malloc(n + 1) : NULL;
    if (buf == NULL || json_dumpb(root, buf, n, dflags) != n) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (out_len != NULL)
        *out_len = n;
out:
    free(buf);
    free(c.reals);
    json_decref(root);
    return st;
}
