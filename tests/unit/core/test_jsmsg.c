/*
 * test_jsmsg.c - parsing the metadata of $JS.ACK reply subjects.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "core/jsmsg.h"

Test(jsmeta, parses_the_v1_form)
{
    jf_jsmeta_t m;

    cr_assert_eq(jf_jsmeta_parse("$JS.ACK.JOBS.default.3.1042.977.1700000000123456789.12", &m,
                                 NULL), JF_OK);
    cr_assert_str_eq(m.stream, "JOBS");
    cr_assert_str_eq(m.consumer, "default");
    cr_assert_eq(m.delivered, 3);
    cr_assert_eq(m.stream_seq, 1042);
    cr_assert_eq(m.consumer_seq, 977);
    cr_assert_eq(m.timestamp_ns, 1700000000123456789LL);
    cr_assert_eq(m.pending, 12);
    cr_assert_str_eq(m.domain, "");
}

Test(jsmeta, parses_the_v2_form_with_domain)
{
    jf_jsmeta_t m;

    cr_assert_eq(jf_jsmeta_parse("$JS.ACK.hub.ACCHASH.JOBS.pool.1.5.6.1700000000000000000.0.xyz",
                                 &m, NULL), JF_OK);
    cr_assert_str_eq(m.domain, "hub");
    cr_assert_str_eq(m.stream, "JOBS");
    cr_assert_str_eq(m.consumer, "pool");
    cr_assert_eq(m.stream_seq, 5);
    cr_assert_eq(jf_jsmeta_parse("$JS.ACK._.ACCHASH.JOBS.pool.1.5.6.17.0.xyz", &m, NULL), JF_OK);
    cr_assert_str_eq(m.domain, "");
}

Test(jsmeta, rejects_malformed_subjects)
{
    jf_jsmeta_t m;
    jf_err_t    err = { 0 };

    cr_assert_eq(jf_jsmeta_parse(NULL, &m, &err), JF_EINVAL);
    cr_assert_eq(jf_jsmeta_parse("_INBOX.abc", &m, &err), JF_EINVAL);
    cr_assert_eq(jf_jsmeta_parse("$JS.ACK.JOBS.default.3.1042", &m, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "tokens") != NULL);
    cr_assert_eq(jf_jsmeta_parse("$JS.ACK.JOBS.default.x.1042.977.17.12", &m, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "non-numeric") != NULL);
}
