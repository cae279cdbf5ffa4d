/*
 * fuzz_jsmeta.c - libFuzzer target for the JetStream ack metadata parser
 * (jf_jsmeta_parse, src/core/jsmsg.h).
 *
 * Every delivered job carries its stream, consumer, sequences and delivery
 * count in its "$JS.ACK...." reply subject, and the worker trusts those
 * numbers for retries and the ledger. The input, as a C string, is
 * appended to "$JS.ACK." and parsed. A failure must leave the out-param
 * untouched and explain itself; a success must agree field by field with
 * an oracle written here from the two documented forms:
 *
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
 *   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.
 *           <cseq>.<ts>.<pending>[.<more>...]     ("_" is no domain)
 *
 * with each number an unsigned decimal that fits 64 bits and each name
 * kept up to the 63 characters its field holds. The parser splits with
 * strtok_r, so it skips empty tokens ("a..b" reads as "a.b"); the oracle
 * does the same, because NATS never makes such a subject and the header
 * does not promise to refuse one (docs/fuzzing.md, what the targets
 * tolerate).
 */
#include <stdbool.h>

#include "core/jsmsg.h"
#include "fuzz.h"

#define PREFIX  "$JS.ACK."
#define POISON  0xA5
#define MAX_TOK 16

static bool oracle_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The name field as the parser keeps it: at most size - 1 characters. */
static bool name_eq(const char *field, size_t size, const char *tok, size_t len)
{
    size_t keep = len < size - 1 ? len : size - 1;

    return strlen(field) == keep && memcmp(field, tok, keep) == 0;
}

/* Non-empty tokens of s, split on '.'; returns their number (capped at
 * MAX_TOK). */
static int tokens(const char *s, const char **tok, size_t *len)
{
    int n = 0;

    while (*s != '\0' && n < MAX_TOK) {
        size_t l = strcspn(s, ".");

        if (l > 0) {
            tok[n] = s;
            len[n++] = l;
        }
        s += l;
        if (*s == '.')
            s++;
    }
    return n;
}

static void check_against_oracle(const char *reply, const jf_jsmeta_t *m)
{
    const char *tok[MAX_TOK];
    size_t      len[MAX_TOK];
    int         n = tokens(reply, tok, len), base;
    uint64_t    num[5];

    FUZZ_CHECK(strlen(reply) < 512, "accepted a reply subject of %zu bytes", strlen(reply));
    FUZZ_CHECK(n == 9 || n >= 12, "accepted '%s' with %d tokens", reply, n);
    FUZZ_CHECK(len[0] == 3 && memcmp(tok[0], "$JS", 3) == 0 && len[1] == 3 &&
               memcmp(tok[1], "ACK", 3) == 0, "accepted '%s'", reply);
    base = n == 9 ? 2 : 4;
    for (int i = 0; i < 5; i++)
        FUZZ_CHECK(oracle_u64(tok[base + 2 + i], len[base + 2 + i], &num[i]),
                   "accepted '%s': token %d is not a 64-bit number", reply, base + 2 + i);
    if (n == 9)
        FUZZ_CHECK(m->domain[0] == '\0', "9-token '%s' has domain '%s'", reply, m->domain);
    else if (len[2] == 1 && tok[2][0] == '_')
        FUZZ_CHECK(m->domain[0] == '\0', "domain '_' of '%s' read as '%s'", reply, m->domain);
    else
        FUZZ_CHECK(name_eq(m->domain, sizeof(m->domain), tok[2], len[2]),
                   "domain of '%s' read as '%s'", reply, m->domain);
    FUZZ_CHECK(name_eq(m->stream, sizeof(m->stream), tok[base], len[base]),
               "stream of '%s' read as '%s'", reply, m->stream);
    FUZZ_CHECK(name_eq(m->consumer, sizeof(m->consumer), tok[base + 1], len[base + 1]),
               "consumer of '%s' read as '%s'", reply, m->consumer);
    FUZZ_CHECK(m->delivered == num[0] && m->stream_seq == num[1] && m->consumer_seq == num[2] &&
               (uint64_t)m->timestamp_ns == num[3] && m->pending == num[4],
               "numbers of '%s' read wrong", reply);
}

/* Whether the oracle accepts reply: the converse check, so that a valid
 * subject the parser refuses is caught too. */
static bool oracle_accepts(const char *reply)
{
    const char *tok[MAX_TOK];
    size_t      len[MAX_TOK];
    int         n = tokens(reply, tok, len), base;
    uint64_t    v;

    if (strlen(reply) >= 512 || strncmp(reply, PREFIX, strlen(PREFIX)) != 0 ||
        !(n == 9 || n >= 12))
        return false;
    base = n == 9 ? 2 : 4;
    for (int i = 0; i < 5; i++)
        if (!oracle_u64(tok[base + 2 + i], len[base + 2 + i], &v))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char       *reply = malloc(sizeof(PREFIX) + size);
    jf_jsmeta_t m;
    jf_err_t    err = { 0 };
    jf_status_t st;

    if (reply == NULL)
        abort();
    memcpy(reply, PREFIX, sizeof(PREFIX) - 1);
    if (size > 0)
        memcpy(reply + sizeof(PREFIX) - 1, data, size);
    reply[sizeof(PREFIX) - 1 + size] = '\0';

    memset(&m, POISON, sizeof(m));
    st = jf_jsmeta_parse(reply, &m, &err);
    if (st == JF_OK) {
        FUZZ_CHECK(fuzz_terminated(m.stream, sizeof(m.stream)) &&
                   fuzz_terminated(m.consumer, sizeof(m.consumer)) &&
                   fuzz_terminated(m.domain, sizeof(m.domain)), "an unterminated name");
        check_against_oracle(reply, &m);
    } else {
        const unsigned char *b = (const unsigned char *)&m;

        for (size_t i = 0; i < sizeof(m); i++)
            FUZZ_CHECK(b[i] == POISON, "jf_jsmeta_parse wrote out on failure");
        FUZZ_CHECK(st == JF_EINVAL && err.code == st && err.msg[0] != '\0',
                   "failure %s without its message", jf_status_name(st));
        FUZZ_CHECK(!oracle_accepts(reply), "jf_jsmeta_parse refused valid '%s': %s", reply,
                   err.msg);
    }
    free(reply);
    return 0;
}
