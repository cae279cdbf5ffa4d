/*
 * test_pbjson.c - the proto3 JSON mapping of src/core/pbjson.c.
 *
 * Most tests use jftest.v1.Everything from pbjson_test.proto. protoc-c
 * 1.4.1 cannot generate proto3 `optional`, so the has_-flag form of
 * presence (PROTOBUF_C_LABEL_OPTIONAL), and proto2 `required`, are tested
 * with a descriptor written here exactly as protoc-c emits it for
 *     message Opt { optional uint32 retry_after_ms = 1; optional string note = 2;
 *                   optional bytes blob = 3; required int32 id = 4; }
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "core/pbjson.h"
#include "pbjson_test.pb-c.h"

typedef Jftest__V1__Everything Everything;

#define EVERYTHING (&jftest__v1__everything__descriptor)

/* ---------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------- */

static Everything *decode_ok(const char *json)
{
    ProtobufCMessage *m = NULL;
    jf_err_t          err = { 0 };
    jf_status_t       st = jf_pbjson_decode(EVERYTHING, json, strlen(json), NULL, &m, &err);

    cr_assert_eq(st, JF_OK, "decode %s: %s (%s)", json, jf_status_name(st), err.msg);
    cr_assert_not_null(m);
    return (Everything *)m;
}

static char *encode_ok(const void *msg, unsigned flags)
{
    char       *out = NULL;
    size_t      len = 0;
    jf_err_t    err = { 0 };
    jf_status_t st = jf_pbjson_encode(msg, flags, &out, &len, &err);

    cr_assert_eq(st, JF_OK, "encode: %s (%s)", jf_status_name(st), err.msg);
    cr_assert_not_null(out);
    cr_assert_eq(len, strlen(out));
    return out;
}

/* Binary round trip: pack, then unpack into a fresh message. */
static ProtobufCMessage *repack(const ProtobufCMessage *m)
{
    size_t            n = protobuf_c_message_get_packed_size(m);
    uint8_t          *buf = malloc(n ? n : 1);
    ProtobufCMessage *back;

    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(m, buf), n);
    back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    cr_assert_not_null(back, "unpack failed");
    return back;
}

static void free_msg(void *m)
{
    protobuf_c_message_free_unpacked(m, NULL);
}

/* JSON → pb → JSON must reproduce canonical input byte for byte. */
static void assert_canonical(const char *json, unsigned flags)
{
    Everything *m = decode_ok(json);
    char       *s = encode_ok(m, flags);

    cr_assert_str_eq(s, json);
    free(s);
    free_msg(m);
}

/* ---------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------- */

static const char canonical_all[] =
    "{\"fDouble\":1.5,\"fFloat\":0.1,\"fInt32\":-42,\"fInt64\":\"-9223372036854775808\","
    "\"fUint32\":4294967295,\"fUint64\":\"18446744073709551615\",\"fSint32\":-2147483648,"
    "\"fSint64\":\"9223372036854775807\",\"fFixed32\":7,\"fFixed64\":\"8\",\"fSfixed32\":-9,"
    "\"fSfixed64\":\"-10\",\"fBool\":true,\"fString\":\"h\xc3\xa9llo \\\"q\\\" \xf0\x9f\x98\x80\","
    "\"fBytes\":\"AP8Q\",\"state\":\"JOB_STATE_RUNNING\","
    "\"inner\":{\"name\":\"in\",\"count\":3,\"child\":{\"name\":\"deep\"}},"
    "\"rInt32\":[1,-2,3],\"rString\":[\"a\",\"\",\"c\"],\"rInner\":[{\"name\":\"x\"},{}],"
    "\"rState\":[\"JOB_STATE_QUEUED\",\"JOB_STATE_FAILED\",7],\"rBytes\":[\"\",\"AQ==\"],"
    "\"rInt64\":[\"1\",\"-1\"],\"targetId\":\"12\",\"labels\":{\"a\":1,\"b\":-2},"
    "\"byId\":{\"5\":{\"name\":\"five\"},\"-1\":{}},\"retryAfterMs\":0,\"note\":\"\"}";

Test(pbjson, round_trip_through_binary_keeps_every_field)
{
    Everything       *m = decode_ok(canonical_all);
    ProtobufCMessage *back = repack(&m->base);
    char             *s1 = encode_ok(m, 0);
    char             *s2 = encode_ok(back, 0);

    cr_assert_str_eq(s1, canonical_all);
    cr_assert_str_eq(s2, canonical_all);

    /* spot checks of what the struct holds */
    cr_assert_eq(m->f_int64, INT64_MIN);
    cr_assert_eq(m->f_uint64, UINT64_MAX);
    cr_assert_eq(m->f_bytes.len, 3);
    cr_assert_eq(memcmp(m->f_bytes.data, "\x00\xff\x10", 3), 0);
    cr_assert_eq(m->state, JFTEST__V1__JOB_STATE__JOB_STATE_RUNNING);
    cr_assert_str_eq(m->inner->child->name, "deep");
    cr_assert_eq(m->n_r_state, 3);
    cr_assert_eq(m->r_state[2], 7);
    cr_assert_eq(m->target_case, JFTEST__V1__EVERYTHING__TARGET_TARGET_ID);
    cr_assert_eq(m->target_id, 12);
    cr_assert_eq(m->n_labels, 2);
    cr_assert_str_eq(m->labels[1]->key, "b");
    cr_assert_eq(m->labels[1]->value, -2);
    cr_assert_eq(m->n_by_id, 2);
    cr_assert_eq(m->by_id[1]->key, -1);
    cr_assert_eq(m->_retry_after_ms_case, JFTEST__V1__EVERYTHING___RETRY_AFTER_MS_RETRY_AFTER_MS);
    cr_assert_eq(m->_note_case, JFTEST__V1__EVERYTHING___NOTE_NOTE);

    free(s1);
    free(s2);
    free_msg(back);
    free_msg(m);
}

Test(pbjson, empty_input_and_empty_object_give_the_default_message)
{
    const char *inputs[] = { "", "  \n\t", "{}", " { } " };

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        Everything *m = decode_ok(inputs[i]);
        char       *s = encode_ok(m, 0);

        cr_assert_str_eq(s, "{}", "input '%s'", inputs[i]);
        cr_assert_str_eq(m->f_string, "");
        cr_assert_null(m->inner);
        cr_assert_eq(m->target_case, JFTEST__V1__EVERYTHING__TARGET__NOT_SET);
        free(s);
        free_msg(m);
    }
    /* NULL text is fine when there are no bytes */
    ProtobufCMessage *m = NULL;
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, NULL, 0, NULL, &m, NULL), JF_OK);
    free_msg(m);
}

Test(pbjson, null_means_default_for_every_kind_of_field)
{
    Everything *m = decode_ok("{\"fInt32\":null,\"fString\":null,\"fBytes\":null,\"inner\":null,"
                              "\"rInt32\":null,\"labels\":null,\"targetUrl\":null,"
                              "\"targetId\":null,\"note\":null,\"state\":null}");
    char       *s = encode_ok(m, 0);

    cr_assert_str_eq(s, "{}");
    cr_assert_eq(m->target_case, JFTEST__V1__EVERYTHING__TARGET__NOT_SET);
    cr_assert_eq(m->_note_case, JFTEST__V1__EVERYTHING___NOTE__NOT_SET);
    free(s);
    free_msg(m);
}

/* ---------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------- */

Test(pbjson, accepts_proto_names_and_json_names)
{
    Everything *a = decode_ok("{\"retry_after_ms\":5,\"f_sfixed64\":\"-3\",\"r_inner\":[{\"name\":\"p\"}],"
                              "\"target_inner\":{\"count\":1}}");
    Everything *b = decode_ok("{\"retryAfterMs\":5,\"fSfixed64\":\"-3\",\"rInner\":[{\"name\":\"p\"}],"
                              "\"targetInner\":{\"count\":1}}");
    char       *sa = encode_ok(a, 0), *sb = encode_ok(b, 0);
    char       *orig = encode_ok(a, JF_PBJSON_ORIG_NAMES);

    cr_assert_eq(a->retry_after_ms, 5);
    cr_assert_eq(a->f_sfixed64, -3);
    cr_assert_str_eq(sa, sb);
    cr_assert_str_eq(sa, "{\"fSfixed64\":\"-3\",\"rInner\":[{\"name\":\"p\"}],"
                         "\"targetInner\":{\"count\":1},\"retryAfterMs\":5}");
    cr_assert_str_eq(orig, "{\"f_sfixed64\":\"-3\",\"r_inner\":[{\"name\":\"p\"}],"
                           "\"target_inner\":{\"count\":1},\"retry_after_ms\":5}");
    assert_canonical("{\"f_sfixed64\":\"-3\",\"r_inner\":[{\"name\":\"p\"}],"
                     "\"target_inner\":{\"count\":1},\"retry_after_ms\":5}",
                     JF_PBJSON_ORIG_NAMES);
    free(sa);
    free(sb);
    free(orig);
    free_msg(a);
    free_msg(b);
}

/* ---------------------------------------------------------------------
 * Scalars
 * ------------------------------------------------------------------- */

Test(pbjson, integers_from_numbers_and_strings)
{
    Everything *m = decode_ok("{\"fInt64\":123,\"rInt64\":[\"-9223372036854775808\",9223372036854775807,"
                              "\"1e3\",2.0,-0],\"fUint64\":\"18446744073709551615\","
                              "\"fInt32\":\"-7\",\"fUint32\":\"4294967295\",\"fSint32\":1e2,"
                              "\"fFixed64\":4.5e1}");

    cr_assert_eq(m->f_int64, 123);
    cr_assert_eq(m->n_r_int64, 5);
    cr_assert_eq(m->r_int64[0], INT64_MIN);
    cr_assert_eq(m->r_int64[1], INT64_MAX);
    cr_assert_eq(m->r_int64[2], 1000);
    cr_assert_eq(m->r_int64[3], 2);
    cr_assert_eq(m->r_int64[4], 0);
    cr_assert_eq(m->f_uint64, UINT64_MAX);
    cr_assert_eq(m->f_int32, -7);
    cr_assert_eq(m->f_uint32, UINT32_MAX);
    cr_assert_eq(m->f_sint32, 100);
    cr_assert_eq(m->f_fixed64, 45);
    free_msg(m);

    /* 64-bit integers always leave as strings */
    assert_canonical("{\"fInt64\":\"123\",\"fUint64\":\"1\",\"fSint64\":\"-1\",\"fFixed64\":\"2\","
                     "\"fSfixed64\":\"3\"}", 0);
}

Test(pbjson, floats_doubles_and_their_special_values)
{
    Everything *m = decode_ok("{\"fDouble\":\"NaN\",\"fFloat\":\"-Infinity\"}");
    char       *s = encode_ok(m, 0);

    cr_assert(isnan(m->f_double));
    cr_assert(isinf(m->f_float) && m->f_float < 0);
    cr_assert_str_eq(s, "{\"fDouble\":\"NaN\",\"fFloat\":\"-Infinity\"}");
    free(s);
    free_msg(m);

    m = decode_ok("{\"fDouble\":\"Infinity\",\"fFloat\":\"2.5\"}");
    cr_assert(isinf(m->f_double) && m->f_double > 0);
    cr_assert_float_eq(m->f_float, 2.5f, 0);
    free_msg(m);

    /* short where that is exact, 17 digits only when needed */
    assert_canonical("{\"fDouble\":0.1}", 0);
    assert_canonical("{\"fFloat\":0.1}", 0);
    assert_canonical("{\"fDouble\":3.0}", 0);
    assert_canonical("{\"fDouble\":-2.5e-300}", 0);
    assert_canonical("{\"fDouble\":0.30000000000000004,\"fFloat\":0.10000000149011612}", 0);
}

Test(pbjson, reals_survive_a_json_round_trip_bit_for_bit)
{
    static const double doubles[] = { DBL_MAX, -DBL_MAX, DBL_MIN, 5e-324, 1e23, 0.1 + 0.2,
                                      1.0 / 3, 123456789.125, -0.0, 9007199254740993.0 };
    static const float  floats[] = { FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, 16777217.0f,
                                     3.14159265f, 1.0f / 3 };

    for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
        for (size_t j = 0; j < sizeof(floats) / sizeof(floats[0]); j++) {
            Everything in = JFTEST__V1__EVERYTHING__INIT;
            Everything *back;
            char       *s;

            in.f_double = doubles[i];
            in.f_float = floats[j];
            s = encode_ok(&in, 0);
            back = decode_ok(s);
            cr_assert_eq(memcmp(&back->f_double, &in.f_double, sizeof(double)), 0,
                         "%s: %.17g", s, back->f_double);
            cr_assert_eq(memcmp(&back->f_float, &in.f_float, sizeof(float)), 0,
                         "%s: %.9g", s, (double)back->f_float);
            free(s);
            free_msg(back);
        }
    }
}

Test(pbjson, bytes_accept_both_base64_alphabets_and_missing_padding)
{
    Everything *m = decode_ok("{\"fBytes\":\"-_8\",\"rBytes\":[\"+/8=\",\"+/8\",\"AQ\",\"AQ==\","
                              "\"AQI\",\"\"]}");
    char       *s;

    cr_assert_eq(m->f_bytes.len, 2);
    cr_assert_eq(memcmp(m->f_bytes.data, "\xfb\xff", 2), 0);
    cr_assert_eq(m->n_r_bytes, 6);
    cr_assert_eq(m->r_bytes[0].len, 2);
    cr_assert_eq(memcmp(m->r_bytes[0].data, "\xfb\xff", 2), 0);
    cr_assert_eq(m->r_bytes[1].len, 2);
    cr_assert_eq(m->r_bytes[2].len, 1);
    cr_assert_eq(m->r_bytes[2].data[0], 1);
    cr_assert_eq(m->r_bytes[3].len, 1);
    cr_assert_eq(m->r_bytes[4].len, 2);
    cr_assert_eq(m->r_bytes[5].len, 0);
    s = encode_ok(m, 0);
    cr_assert_str_eq(s, "{\"fBytes\":\"+/8=\",\"rBytes\":[\"+/8=\",\"+/8=\",\"AQ==\",\"AQ==\","
                        "\"AQI=\",\"\"]}");
    free(s);
    free_msg(m);
}

Test(pbjson, enums_by_name_or_number)
{
    Everything *m = decode_ok("{\"state\":2,\"rState\":[\"JOB_STATE_FAILED\",-1,1.0,99]}");
    char       *s = encode_ok(m, 0);

    cr_assert_eq(m->state, JFTEST__V1__JOB_STATE__JOB_STATE_RUNNING);
    cr_assert_eq(m->r_state[0], JFTEST__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(m->r_state[1], JFTEST__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(m->r_state[3], 99);
    /* names out, numbers only for values the enum does not name */
    cr_assert_str_eq(s, "{\"state\":\"JOB_STATE_RUNNING\",\"rState\":[\"JOB_STATE_FAILED\","
                        "\"JOB_STATE_FAILED\",\"JOB_STATE_QUEUED\",99]}");
    free(s);
    free_msg(m);
}

Test(pbjson, strings_keep_unicode_escapes_as_utf8)
{
    Everything *m = decode_ok("{\"fString\":\"\\u00e9\\ud83d\\ude00\\n\"}");
    char       *s = encode_ok(m, 0);

    cr_assert_str_eq(m->f_string, "\xc3\xa9\xf0\x9f\x98\x80\n");
    cr_assert_str_eq(s, "{\"fString\":\"\xc3\xa9\xf0\x9f\x98\x80\\n\"}");
    free(s);
    free_msg(m);
}

/* ---------------------------------------------------------------------
 * Presence: oneof, optional, defaults
 * ------------------------------------------------------------------- */

Test(pbjson, oneof_members_are_printed_when_set_even_if_default)
{
    assert_canonical("{\"targetUrl\":\"\"}", 0);
    assert_canonical("{\"targetInner\":{}}", 0);
    assert_canonical("{\"targetId\":\"0\"}", 0);
    assert_canonical("{\"retryAfterMs\":0}", 0);

    Everything       *m = decode_ok("{\"targetUrl\":\"\"}");
    ProtobufCMessage *back = repack(&m->base);

    cr_assert_eq(((Everything *)back)->target_case, JFTEST__V1__EVERYTHING__TARGET_TARGET_URL);
    free_msg(back);
    free_msg(m);
}

Test(pbjson, emit_defaults_prints_fields_without_presence)
{
    Everything *m = decode_ok("{}");
    char       *s = encode_ok(m, JF_PBJSON_EMIT_DEFAULTS);

    cr_assert_str_eq(s, "{\"fDouble\":0.0,\"fFloat\":0.0,\"fInt32\":0,\"fInt64\":\"0\","
                        "\"fUint32\":0,\"fUint64\":\"0\",\"fSint32\":0,\"fSint64\":\"0\","
                        "\"fFixed32\":0,\"fFixed64\":\"0\",\"fSfixed32\":0,\"fSfixed64\":\"0\","
                        "\"fBool\":false,\"fString\":\"\",\"fBytes\":\"\","
                        "\"state\":\"JOB_STATE_UNSPECIFIED\",\"rInt32\":[],\"rString\":[],"
                        "\"rInner\":[],\"rState\":[],\"rBytes\":[],\"rInt64\":[],"
                        "\"labels\":{},\"byId\":{}}");
    free(s);
    free_msg(m);
}

/* What protoc-c emits for the proto2 message in the file comment. */
typedef struct {
    ProtobufCMessage    base;
    protobuf_c_boolean  has_retry_after_ms;
    uint32_t            retry_after_ms;
    char               *note;
    protobuf_c_boolean  has_blob;
    ProtobufCBinaryData blob;
    int32_t             id;
} Opt;

extern const ProtobufCMessageDescriptor opt_descriptor;

static void opt_init(ProtobufCMessage *m)
{
    static const Opt init = { PROTOBUF_C_MESSAGE_INIT(&opt_descriptor), 0, 0, NULL, 0, { 0, NULL }, 0 };

    memcpy(m, &init, sizeof(init));
}

static const ProtobufCFieldDescriptor opt_fields[4] = {
    { "retry_after_ms", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_UINT32,
      offsetof(Opt, has_retry_after_ms), offsetof(Opt, retry_after_ms), NULL, NULL, 0, 0, NULL, NULL },
    { "note", 2, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
      0, offsetof(Opt, note), NULL, NULL, 0, 0, NULL, NULL },
    { "blob", 3, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_BYTES,
      offsetof(Opt, has_blob), offsetof(Opt, blob), NULL, NULL, 0, 0, NULL, NULL },
    { "id", 4, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_INT32,
      0, offsetof(Opt, id), NULL, NULL, 0, 0, NULL, NULL },
};
static const unsigned         opt_by_name[] = { 2, 3, 1, 0 };
static const ProtobufCIntRange opt_ranges[] = { { 1, 0 }, { 0, 4 } };

const ProtobufCMessageDescriptor opt_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "jftest.v1.Opt", "Opt", "Jftest__V1__Opt", "jftest.v1",
    sizeof(Opt), 4, opt_fields, opt_by_name, 1, opt_ranges, opt_init, NULL, NULL, NULL,
};

static Opt *decode_opt(const char *json, jf_status_t want, jf_err_t *err)
{
    ProtobufCMessage *m = NULL;

    cr_assert_eq(jf_pbjson_decode(&opt_descriptor, json, strlen(json), NULL, &m, err), want,
                 "%s: %s", json, err->msg);
    return (Opt *)m;
}

Test(pbjson, optional_fields_set_and_follow_has_flags)
{
    jf_err_t          err = { 0 };
    Opt              *o = decode_opt("{\"retryAfterMs\":0,\"blob\":\"\",\"id\":4}", JF_OK, &err);
    ProtobufCMessage *back = repack(&o->base);
    char             *s = encode_ok(o, JF_PBJSON_EMIT_DEFAULTS);
    char             *s2 = encode_ok(back, 0);

    cr_assert(o->has_retry_after_ms);
    cr_assert_eq(o->retry_after_ms, 0);
    cr_assert(o->has_blob);
    cr_assert_null(o->note);
    /* optional fields are printed exactly when set, defaults or not */
    cr_assert_str_eq(s, "{\"retryAfterMs\":0,\"blob\":\"\",\"id\":4}");
    cr_assert_str_eq(s2, s);
    free(s);
    free(s2);
    free_msg(back);
    free_msg(o);

    o = decode_opt("{\"id\":0,\"note\":\"\"}", JF_OK, &err);
    cr_assert(!o->has_retry_after_ms);
    cr_assert(!o->has_blob);
    cr_assert_str_eq(o->note, "");
    s = encode_ok(o, 0);
    cr_assert_str_eq(s, "{\"note\":\"\",\"id\":0}");
    free(s);
    free_msg(o);

    o = decode_opt("{\"retryAfterMs\":1}", JF_EDECODE, &err);
    cr_assert_null(o);
    cr_assert(strstr(err.msg, "missing required field 'id'"), "%s", err.msg);
    o = decode_opt("{\"id\":null}", JF_EDECODE, &err);
    cr_assert_null(o);
}

/* ---------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------- */

/* {"inner":{"child":{"child":...{}}}}: `levels` objects deep. */
static char *nested(int levels)
{
    size_t n = (size_t)levels * 12 + 16;
    char  *s = calloc(1, n);

    cr_assert_not_null(s);
    strcat(s, "{");
    for (int i = 1; i < levels; i++)
        strcat(s, i == 1 ? "\"inner\":{" : "\"child\":{");
    for (int i = 0; i < levels; i++)
        strcat(s, "}");
    return s;
}

Test(pbjson, depth_limit_counts_the_top_object_as_one)
{
    jf_pbjson_limits_t lim = { .max_depth = 3 };
    ProtobufCMessage  *m = NULL;
    jf_err_t           err = { 0 };
    char              *ok = nested(3), *deep = nested(4), *def_ok = nested(32), *def_deep = nested(33);

    cr_assert_eq(jf_pbjson_decode(EVERYTHING, ok, strlen(ok), &lim, &m, &err), JF_OK, "%s", err.msg);
    free_msg(m);
    m = NULL;
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, deep, strlen(deep), &lim, &m, &err), JF_ETOOBIG);
    cr_assert_str_eq(err.msg, "JSON nesting deeper than 3");
    cr_assert_null(m);
    /* arrays count too */
    {
        const char *arr = "{\"rInner\":[{\"child\":{}}]}";

        cr_assert_eq(jf_pbjson_decode(EVERYTHING, arr, strlen(arr), &lim, &m, &err), JF_ETOOBIG);
    }
    /* 0 means 32 */
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, def_ok, strlen(def_ok), NULL, &m, &err), JF_OK);
    free_msg(m);
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, def_deep, strlen(def_deep), NULL, &m, &err),
                 JF_ETOOBIG);
    cr_assert_str_eq(err.msg, "JSON nesting deeper than 32");
    /* deeper than jansson parses at all: still a limit error, not a crash */
    {
        char *huge = malloc(20001);

        cr_assert_not_null(huge);
        memset(huge, '[', 10000);
        memset(huge + 10000, ']', 10000);
        huge[20000] = '\0';
        cr_assert_eq(jf_pbjson_decode(EVERYTHING, huge, 20000, NULL, &m, &err), JF_ETOOBIG);
        free(huge);
    }
    free(ok);
    free(deep);
    free(def_ok);
    free(def_deep);
}

Test(pbjson, size_limit_applies_before_parsing)
{
    jf_pbjson_limits_t lim = { .max_bytes = 8 };
    ProtobufCMessage  *m = NULL;
    jf_err_t           err = { 0 };

    cr_assert_eq(jf_pbjson_decode(EVERYTHING, "{\"fInt32\":1}", 12, &lim, &m, &err), JF_ETOOBIG);
    cr_assert_str_eq(err.msg, "payload is 12 bytes, limit 8");
    cr_assert_null(m);
    /* the length, not the NUL, bounds the input */
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, "{}garbage", 2, &lim, &m, &err), JF_OK);
    free_msg(m);
}

/* ---------------------------------------------------------------------
 * Decode errors
 * ------------------------------------------------------------------- */

/* Inline arrays, not pointers: Criterion's BoxFort workers may run at
 * another address (ASLR), where pointers to the parent's string literals
 * are invalid (Criterion issues #208, #510). */
struct bad_json {
    char        json[200];
    jf_status_t code;
    char        fragment[100];  /* must appear in err.msg */
    size_t      max_bytes;
};

ParameterizedTestParameters(pbjson, rejects_bad_input)
{
    static struct bad_json cases[] = {
        /* not an object */
        { "[1,2]", JF_EDECODE, "expected a JSON object at top level, got array", 0 },
        { "42", JF_EDECODE, "top level, got number", 0 },
        { "null", JF_EDECODE, "top level, got null", 0 },
        /* invalid JSON, duplicates */
        { "{\"fInt32\": }", JF_EDECODE, "invalid JSON at line 1", 0 },
        { "{\"fInt32\":1", JF_EDECODE, "invalid JSON", 0 },
        { "{\"fInt32\":1,\"fInt32\":2}", JF_EDECODE, "duplicate", 0 },
        { "{\"f_int32\":1,\"fInt32\":2}", JF_EDECODE, "field 'f_int32': given twice", 0 },
        { "{\"fString\":\"a\\u0000b\"}", JF_EDECODE, "invalid JSON", 0 },
        /* unknown fields */
        { "{\"foo\":1}", JF_EDECODE, "unknown field 'foo'", 0 },
        { "{\"inner\":{\"child\":{\"bogus\":true}}}", JF_EDECODE, "unknown field 'inner.child.bogus'", 0 },
        { "{\"FInt32\":1}", JF_EDECODE, "unknown field 'FInt32'", 0 },
        /* type mismatches */
        { "{\"fInt32\":\"abc\"}", JF_EDECODE, "field 'f_int32': expected an integer, got string", 0 },
        { "{\"fInt32\":true}", JF_EDECODE, "field 'f_int32': expected a number, got boolean", 0 },
        { "{\"fInt64\":[]}", JF_EDECODE, "field 'f_int64': expected a number, got array", 0 },
        { "{\"fDouble\":\"fast\"}", JF_EDECODE, "field 'f_double': expected a number, got string", 0 },
        { "{\"fDouble\":\"nan\"}", JF_EDECODE, "field 'f_double'", 0 },
        { "{\"fBool\":\"true\"}", JF_EDECODE, "field 'f_bool': expected true or false, got string", 0 },
        { "{\"fBool\":1}", JF_EDECODE, "field 'f_bool'", 0 },
        { "{\"fString\":5}", JF_EDECODE, "field 'f_string': expected a string, got number", 0 },
        { "{\"fBytes\":{}}", JF_EDECODE, "field 'f_bytes': expected a base64 string", 0 },
        { "{\"inner\":[]}", JF_EDECODE, "field 'inner': expected an object, got array", 0 },
        { "{\"inner\":{\"count\":\"x\"}}", JF_EDECODE, "field 'inner.count'", 0 },
        { "{\"rInt32\":5}", JF_EDECODE, "field 'r_int32': expected an array, got number", 0 },
        { "{\"rInt32\":[1,null]}", JF_EDECODE, "field 'r_int32[1]': null", 0 },
        { "{\"rInner\":[{},{\"count\":1.5}]}", JF_EDECODE, "field 'r_inner[1].count'", 0 },
        { "{\"labels\":[]}", JF_EDECODE, "field 'labels': expected an object", 0 },
        { "{\"labels\":{\"a\":1,\"b\":\"x\"}}", JF_EDECODE, "field 'labels[b]'", 0 },
        { "{\"labels\":{\"a\":null}}", JF_EDECODE, "field 'labels[a]': map value is null", 0 },
        { "{\"byId\":{\"x\":{}}}", JF_EDECODE, "field 'by_id[x]': map key is not an integer", 0 },
        { "{\"byId\":{\"1\":{},\"01\":{}}}", JF_EDECODE, "field 'by_id[01]': map key is not an integer in canonical form", 0 },
        { "{\"byId\":{\"0\":{},\"-0\":{}}}", JF_EDECODE, "field 'by_id[-0]': map key is not an integer in canonical form", 0 },
        { "{\"byId\":{\"1\":{\"nope\":1}}}", JF_EDECODE, "unknown field 'by_id[1].nope'", 0 },
        { "{\"state\":true}", JF_EDECODE, "field 'state': expected an enum name or number", 0 },
        /* out of range */
        { "{\"fInt32\":2147483648}", JF_EDECODE, "field 'f_int32': 2147483648 is out of range for int32", 0 },
        { "{\"fInt32\":-2147483649}", JF_EDECODE, "field 'f_int32'", 0 },
        { "{\"fSfixed32\":1e10}", JF_EDECODE, "field 'f_sfixed32'", 0 },
        { "{\"fUint32\":-1}", JF_EDECODE, "field 'f_uint32': -1 is out of range for uint32", 0 },
        { "{\"fFixed32\":\"4294967296\"}", JF_EDECODE, "field 'f_fixed32'", 0 },
        { "{\"fInt64\":\"9223372036854775808\"}", JF_EDECODE, "field 'f_int64'", 0 },
        { "{\"fUint64\":\"18446744073709551616\"}", JF_EDECODE, "field 'f_uint64'", 0 },
        { "{\"fUint64\":\"-1\"}", JF_EDECODE, "field 'f_uint64'", 0 },
        { "{\"fFloat\":1e39}", JF_EDECODE, "field 'f_float': 1e+39 is out of range for float", 0 },
        { "{\"fDouble\":\"1e999\"}", JF_EDECODE, "field 'f_double'", 0 },
        { "{\"state\":4294967296}", JF_EDECODE, "field 'state': 4294967296 is out of range for int32", 0 },
        { "{\"state\":2.5}", JF_EDECODE, "field 'state': 2.5 is not an integer", 0 },
        { "{\"byId\":{\"9223372036854775808\":{}}}", JF_EDECODE, "field 'by_id[9223372036854775808]'", 0 },
        /* not integral */
        { "{\"fInt32\":1.5}", JF_EDECODE, "field 'f_int32': 1.5 is not an integer", 0 },
        { "{\"fInt64\":\"2.5\"}", JF_EDECODE, "field 'f_int64': \"2.5\" is not an integer", 0 },
        { "{\"rInt64\":[\"1\",\"0x10\"]}", JF_EDECODE, "field 'r_int64[1]'", 0 },
        /* bad base64 */
        { "{\"fBytes\":\"@@@@\"}", JF_EDECODE, "field 'f_bytes': invalid base64", 0 },
        { "{\"fBytes\":\"QUJDR\"}", JF_EDECODE, "field 'f_bytes': invalid base64", 0 },
        { "{\"fBytes\":\"QQ=\"}", JF_EDECODE, "field 'f_bytes': invalid base64", 0 },
        { "{\"fBytes\":\"Q=Q=\"}", JF_EDECODE, "field 'f_bytes': invalid base64", 0 },
        { "{\"rBytes\":[\"AQ==\",\"A Q=\"]}", JF_EDECODE, "field 'r_bytes[1]': invalid base64", 0 },
        /* unknown enum name */
        { "{\"state\":\"JOB_STATE_NOPE\"}", JF_EDECODE,
          "field 'state': unknown value 'JOB_STATE_NOPE' for enum jftest.v1.JobState", 0 },
        { "{\"rState\":[\"job_state_running\"]}", JF_EDECODE, "field 'r_state[0]'", 0 },
        /* two members of one oneof */
        { "{\"targetUrl\":\"x\",\"targetId\":\"1\"}", JF_EDECODE,
          "field 'target_id': oneof already set by field 'target_url'", 0 },
        { "{\"targetInner\":{\"name\":\"a\"},\"target_url\":\"y\"}", JF_EDECODE,
          "field 'target_url': oneof already set by field 'target_inner'", 0 },
        /* failures after allocations (leak checks) */
        { "{\"rString\":[\"a\",\"b\",1]}", JF_EDECODE, "field 'r_string[2]'", 0 },
        { "{\"targetInner\":{\"name\":\"x\",\"count\":true}}", JF_EDECODE, "field 'target_inner.count'", 0 },
        { "{\"fString\":\"s\",\"fBytes\":\"AQ==\",\"inner\":{\"child\":{\"name\":\"n\"}},\"note\":\"x\","
          "\"byId\":{\"1\":{\"name\":\"v\"},\"2\":{\"count\":\"z\"}}}", JF_EDECODE, "field 'by_id[2].count'", 0 },
        /* size */
        { "{\"fString\":\"0123456789\"}", JF_ETOOBIG, "payload is 24 bytes, limit 16", 16 },
    };
    return cr_make_param_array(struct bad_json, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_json *c, pbjson, rejects_bad_input)
{
    jf_pbjson_limits_t lim = { .max_bytes = c->max_bytes };
    ProtobufCMessage  *sentinel = (ProtobufCMessage *)&lim, *m = sentinel;
    jf_err_t           err = { 0 };
    jf_status_t        st = jf_pbjson_decode(EVERYTHING, c->json, strlen(c->json), &lim, &m, &err);

    cr_assert_eq(st, c->code, "%s: got %s (%s)", c->json, jf_status_name(st), err.msg);
    cr_assert_eq(err.code, c->code);
    cr_assert(strstr(err.msg, c->fragment) != NULL, "%s: message '%s' lacks '%s'", c->json,
              err.msg, c->fragment);
    cr_assert_eq(m, sentinel, "out-param touched on failure");
}

/* ---------------------------------------------------------------------
 * Argument and encode errors
 * ------------------------------------------------------------------- */

Test(pbjson, rejects_bad_arguments)
{
    ProtobufCMessage  *m = NULL;
    jf_pbjson_limits_t lim = { .max_depth = -1 };
    Everything         e = JFTEST__V1__EVERYTHING__INIT;
    char              *out = NULL;
    jf_err_t           err = { 0 };

    cr_assert_eq(jf_pbjson_decode(NULL, "{}", 2, NULL, &m, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, "{}", 2, NULL, NULL, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, NULL, 2, NULL, &m, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, "{}", 2, &lim, &m, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_encode(NULL, 0, &out, NULL, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_encode(&e.base, 0, NULL, NULL, &err), JF_EINVAL);
    cr_assert_eq(jf_pbjson_encode(&e.base, 0x80, &out, NULL, &err), JF_EINVAL);
    cr_assert_str_eq(err.msg, "pbjson encode: unknown flags 0x80");
    cr_assert_null(m);
    cr_assert_null(out);
    /* err may be NULL */
    cr_assert_eq(jf_pbjson_decode(EVERYTHING, "[]", 2, NULL, &m, NULL), JF_EDECODE);
}

Test(pbjson, encode_refuses_invalid_utf8_and_names_the_field)
{
    Jftest__V1__Inner child = JFTEST__V1__INNER__INIT;
    Everything        e = JFTEST__V1__EVERYTHING__INIT;
    char              bad[] = "ok\xff";
    char             *list[] = { "fine", bad };
    char             *out = NULL;
    jf_err_t          err = { 0 };

    child.name = bad;
    e.inner = &child;
    cr_assert_eq(jf_pbjson_encode(&e.base, 0, &out, NULL, &err), JF_EINVAL);
    cr_assert_str_eq(err.msg, "field 'inner.name': string is not valid UTF-8");
    cr_assert_null(out);

    e.inner = NULL;
    e.n_r_string = 2;
    e.r_string = list;
    cr_assert_eq(jf_pbjson_encode(&e.base, 0, &out, NULL, &err), JF_EINVAL);
    cr_assert_str_eq(err.msg, "field 'r_string[1]': string is not valid UTF-8");
    cr_assert_null(out);
}

Test(pbjson, well_known_types_are_unsupported)
{
    ProtobufCMessageDescriptor ts = jftest__v1__inner__descriptor;
    ProtobufCMessage          *m = NULL;
    jf_err_t                   err = { 0 };

    ts.name = "google.protobuf.Timestamp";
    cr_assert_eq(jf_pbjson_decode(&ts, "{}", 2, NULL, &m, &err), JF_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "google.protobuf.Timestamp"), "%s", err.msg);
    cr_assert_null(m);
}

Test(pbjson, encode_handles_null_list_elements_and_map_values)
{
    Jftest__V1__Everything__ByIdEntry  ent = JFTEST__V1__EVERYTHING__BY_ID_ENTRY__INIT;
    Jftest__V1__Everything__ByIdEntry *ents[] = { &ent };
    Jftest__V1__Inner                 *inners[] = { NULL };
    Everything                         e = JFTEST__V1__EVERYTHING__INIT;
    char                              *s;

    ent.key = 7;
    e.n_by_id = 1;
    e.by_id = ents;
    e.n_r_inner = 1;
    e.r_inner = inners;
    s = encode_ok(&e, 0);
    cr_assert_str_eq(s, "{\"rInner\":[{}],\"byId\":{\"7\":{}}}");
    free(s);
}
