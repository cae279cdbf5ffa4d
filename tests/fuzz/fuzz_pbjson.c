/*
 * fuzz_pbjson.c - libFuzzer target for the proto3 JSON mapping
 * (jf_pbjson_decode and jf_pbjson_encode, src/core/pbjson.h).
 *
 * A job published with Content-Type: application/json is decoded by
 * jf_pbjson_decode straight from the message body, with the worker's
 * limits. Input: one selector byte (the message type, fuzz_messages.h),
 * then the JSON text, passed as it is (not NUL-terminated, so that ASan
 * sees any read past its end). Limits: 1 MiB, depth 32.
 *
 * On failure *out must be untouched and err must say why, with one of the
 * documented statuses. On success the message must be one that
 * protobuf-c accepts, and for each encoder flag set: encoding succeeds,
 * the JSON decodes again, both messages pack to the same bytes, and the
 * second encoding is the same text as the first. The packed bytes must
 * also survive protobuf_c_message_unpack and pack unchanged. Everything
 * is freed, so LeakSanitizer finds what a path forgets.
 */
#include <stdbool.h>

#include "core/pbjson.h"
#include "fuzz.h"
#include "fuzz_messages.h"

static const jf_pbjson_limits_t limits = { .max_bytes = 1u << 20, .max_depth = 32 };

/* What the encoder printed is read back with jansson's own limit: the
 * round trip is under test here, not the limits (EMIT_DEFAULTS may print
 * an empty list or map one level below the deepest message). */
static const jf_pbjson_limits_t deep = { .max_bytes = 0, .max_depth = 2048 };

static const unsigned flag_sets[] = {
    0,
    JF_PBJSON_EMIT_DEFAULTS | JF_PBJSON_ORIG_NAMES,
};

/* The packed form of m, malloc'ed; *ret_len its length. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len)
{
    size_t   n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);

    if (buf == NULL)
        abort();
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == n, "pack size differs from get_packed_size");
    *ret_len = n;
    return buf;
}

/* JSON -> message -> JSON -> message, for one flag set. */
static void check_json_round_trip(const ProtobufCMessage *m1, const uint8_t *bin1, size_t n1,
                                  unsigned flags)
{
    const ProtobufCMessageDescriptor *d = m1->descriptor;
    ProtobufCMessage                 *m2 = NULL;
    char                             *text1 = NULL, *text2 = NULL;
    size_t                            len1 = 0, len2 = 0, n2;
    uint8_t                          *bin2;
    jf_err_t                          err = { 0 };
    jf_status_t                       st;

    st = jf_pbjson_encode(m1, flags, &text1, &len1, &err);
    FUZZ_CHECK(st == JF_OK, "encoding a decoded %s (flags %u) failed: %s: %s", d->name, flags,
               jf_status_name(st), err.msg);
    FUZZ_CHECK(strlen(text1) == len1, "encode: length %zu, text of %zu", len1, strlen(text1));
    st = jf_pbjson_decode(d, text1, len1, &deep, &m2, &err);
    FUZZ_CHECK(st == JF_OK, "%s printed as %s does not decode: %s: %s", d->name, text1,
               jf_status_name(st), err.msg);
    bin2 = pack(m2, &n2);
    FUZZ_CHECK(n1 == n2 && memcmp(bin1, bin2, n1) == 0,
               "%s changed in a JSON round trip (flags %u) through %s: %zu bytes, then %zu",
               d->name, flags, text1, n1, n2);
    st = jf_pbjson_encode(m2, flags, &text2, &len2, &err);
    FUZZ_CHECK(st == JF_OK && len1 == len2 && strcmp(text1, text2) == 0,
               "%s printed as %s, then as %s", d->name, text1, text2 ? text2 : "(error)");
    free(text1);
    free(text2);
    free(bin2);
    protobuf_c_message_free_unpacked(m2, NULL);
}

/* The packed bytes are a message protobuf-c reads back as the same. */
static void check_binary_round_trip(const ProtobufCMessageDescriptor *d, const uint8_t *bin1,
                                    size_t n1)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n1, bin1);
    uint8_t          *bin2;
    size_t            n2;

    FUZZ_CHECK(m != NULL, "the packed form of a decoded %s does not unpack", d->name);
    bin2 = pack(m, &n2);
    FUZZ_CHECK(n1 == n2 && memcmp(bin1, bin2, n1) == 0, "%s changed in pack/unpack", d->name);
    free(bin2);
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ProtobufCMessage           sentinel;
    const ProtobufCMessageDescriptor *d;
    ProtobufCMessage                 *m = &sentinel;
    const char                       *json;
    size_t                            len, n;
    uint8_t                          *bin;
    jf_err_t                          err = { 0 };
    jf_status_t                       st;

    if (size == 0)
        return 0;
    d = fuzz_message_pick(data[0])->descriptor;
    json = size > 1 ? (const char *)data + 1 : NULL;
    len = size - 1;

    st = jf_pbjson_decode(d, json, len, &limits, &m, &err);
    if (st != JF_OK) {
        FUZZ_CHECK(m == &sentinel, "jf_pbjson_decode wrote *out on failure");
        FUZZ_CHECK(st == JF_EDECODE || st == JF_ETOOBIG || st == JF_EUNSUPPORTED ||
                   st == JF_ENOMEM, "jf_pbjson_decode failed with %s", jf_status_name(st));
        FUZZ_CHECK(err.code == st && err.msg[0] != '\0' &&
                   fuzz_terminated(err.msg, sizeof(err.msg)),
                   "jf_pbjson_decode failed with %s but no message", jf_status_name(st));
        return 0;
    }
    FUZZ_CHECK(m != NULL && m != &sentinel && m->descriptor == d,
               "jf_pbjson_decode succeeded without a %s", d->name);
    FUZZ_CHECK(protobuf_c_message_check(m), "jf_pbjson_decode built an invalid %s", d->name);

    bin = pack(m, &n);
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++)
        check_json_round_trip(m, bin, n, flag_sets[i]);
    check_binary_round_trip(d, bin, n);
    free(bin);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
