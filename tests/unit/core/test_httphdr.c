/*
 * test_httphdr.c - Retry-After: delay-seconds and the three HTTP-date forms.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/httphdr.h"

#define NOW_MS  1767225600000LL     /* Thu, 01 Jan 2026 00:00:00 GMT */
#define HOUR_MS 3600000u
#define POISON  0xdeadbeefu

/* Parse the C string s at NOW_MS with a cap of one hour. */
static jf_status_t parse(const char *s, uint32_t *ms)
{
    return jf_http_retry_after_parse(s, strlen(s), NOW_MS, HOUR_MS, ms);
}

static void expect(const char *s, uint32_t want)
{
    uint32_t ms = POISON;

    cr_assert_eq(parse(s, &ms), JF_OK, "'%s' was refused", s);
    cr_assert_eq(ms, want, "'%s' gave %u ms, not %u", s, ms, want);
}

Test(httphdr, delay_seconds)
{
    expect("120", 120000);
    expect("1", 1000);
    expect("0", 0);
    expect("000", 0);
    expect("007", 7000);
    expect("3600", HOUR_MS);
}

Test(httphdr, leading_and_trailing_whitespace)
{
    expect("   5", 5000);
    expect("5   ", 5000);
    expect("\t 5 \t", 5000);
    expect("5\r\n", 5000);
    expect("  Thu, 01 Jan 2026 00:00:30 GMT  ", 30000);
}

Test(httphdr, imf_fixdate)
{
    expect("Thu, 01 Jan 2026 00:00:30 GMT", 30000);
    expect("Thu, 01 Jan 2026 00:10:00 GMT", 600000);
    expect("Thu, 01 Jan 2026 00:00:60 GMT", 60000);   /* a leap second */
    expect("Thu, 01 Jan 2026 00:00:00 GMT", 0);       /* now */
    expect("Wed, 31 Dec 2025 23:59:59 GMT", 0);       /* a second ago */
    expect("Sun, 06 Nov 1994 08:49:37 GMT", 0);       /* RFC 9110's example, long past */
    expect("Sat, 01 Jan 0000 00:00:00 GMT", 0);
    expect("Fri, 31 Dec 9999 23:59:59 GMT", HOUR_MS);
}

Test(httphdr, imf_fixdate_knows_the_calendar)
{
    uint32_t ms = POISON;

    /* 2024-02-29T12:00:00Z is 1709208000 s; 2000 is a leap year, 2100 is not */
    cr_assert_eq(jf_http_retry_after_parse("Thu, 29 Feb 2024 12:00:00 GMT", 29,
                                           1709208000000LL - 1500, HOUR_MS, &ms), JF_OK);
    cr_assert_eq(ms, 1500);
    expect("Tue, 29 Feb 2000 00:00:00 GMT", 0);
    cr_assert_eq(parse("Mon, 29 Feb 2100 00:00:00 GMT", &ms), JF_EINVAL);
    cr_assert_eq(parse("Sat, 29 Feb 2025 00:00:00 GMT", &ms), JF_EINVAL);
    cr_assert_eq(parse("Sat, 31 Apr 2026 00:00:00 GMT", &ms), JF_EINVAL);
    cr_assert_eq(parse("Sat, 00 Jan 2026 00:00:00 GMT", &ms), JF_EINVAL);
}

Test(httphdr, rfc850_date)
{
    expect("Thursday, 01-Jan-26 00:00:30 GMT", 30000);
    expect("Sunday, 06-Nov-94 08:49:37 GMT", 0);      /* 1994, not 2094 */
    expect("Wednesday, 31-Dec-25 23:59:59 GMT", 0);
}

Test(httphdr, rfc850_two_digit_years_are_at_most_50_years_ahead)
{
    /* now is 2026: "76" is 2076 (50 years ahead), "77" is 1977 */
    expect("Wednesday, 01-Jan-76 00:00:00 GMT", HOUR_MS);
    expect("Friday, 01-Jan-77 00:00:00 GMT", 0);
    expect("Sunday, 01-Jan-00 00:00:00 GMT", 0);
}

Test(httphdr, asctime_date)
{
    expect("Thu Jan  1 00:00:30 2026", 30000);
    expect("Thu Jan 01 00:00:30 2026", 30000);
    expect("Sun Nov  6 08:49:37 1994", 0);
    expect("Sat Jan 31 00:00:00 2026", HOUR_MS);
}

Test(httphdr, rejects_garbage)
{
    static const char *const bad[] = {
        "", " ", "\t\r\n", "soon", "12a", "a12", "1.5", "1 2", "1,2", "0x10", "1e3", "+5",
        "-5", "-0", "- 5", "five", "\xff", "120 seconds",
        /* IMF-fixdate, each with one thing wrong */
        "Thu, 01 Jan 2026 00:00:30 UTC", "Thu, 01 Jan 2026 00:00:30 gmt",
        "thu, 01 Jan 2026 00:00:30 GMT", "Thu, 01 jan 2026 00:00:30 GMT",
        "Thu, 01 JAN 2026 00:00:30 GMT", "Thx, 01 Jan 2026 00:00:30 GMT",
        "Thursday, 01 Jan 2026 00:00:30 GMT", "Thu 01 Jan 2026 00:00:30 GMT",
        "Thu, 1 Jan 2026 00:00:30 GMT", "Thu,  1 Jan 2026 00:00:30 GMT",
        "Thu, 01 Jan 26 00:00:30 GMT", "Thu, 01 Jan 02026 00:00:30 GMT",
        "Thu, 01 Jan 2026 24:00:00 GMT", "Thu, 01 Jan 2026 00:60:00 GMT",
        "Thu, 01 Jan 2026 00:00:61 GMT", "Thu, 01 Jan 2026 0:00:30 GMT",
        "Thu, 01 Jan 2026 00:00 GMT", "Thu, 01 Jan 2026 00:00:30", "Thu, 01 Jan 2026 00:00:30 GMT x",
        "Thu, 01 Jan 2026 00:00:30  GMT", "Thu, 01 Jan 2026T00:00:30 GMT",
        "Thu, 01 Jan 2026 00:00:30 +0000", "Thu, 01 Jan 2026 00:00:3a GMT",
        /* rfc850-date */
        "Thu, 01-Jan-26 00:00:30 GMT", "thursday, 01-Jan-26 00:00:30 GMT",
        "Thursday, 01-Jan-2026 00:00:30 GMT", "Thursday, 1-Jan-26 00:00:30 GMT",
        "Thursday, 01 Jan 26 00:00:30 GMT", "Thursday, 01-Jan-26 00:00:30",
        "Thursday, 30-Feb-26 00:00:00 GMT", "Thursdayy, 01-Jan-26 00:00:30 GMT",
        /* asctime-date */
        "Thu Jan 1 00:00:30 2026", "Thu Jan  1 00:00:30 26", "Thu Jan  1 00:00:30 2026 GMT",
        "Thu Jan   1 00:00:30 2026", "Thursday Jan  1 00:00:30 2026", "Thu Jan 32 00:00:30 2026",
        "Thu Jan 1  00:00:30 2026", "Thu, Jan  1 00:00:30 2026",
        /* other date formats */
        "2026-01-01T00:00:30Z", "Thu Jan  1 00:00:30 UTC 2026", "@1767225630",
    };
    uint32_t ms = POISON;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse(bad[i], &ms), JF_EINVAL, "'%s' was accepted", bad[i]);
    cr_assert_eq(ms, POISON, "*ret_ms is untouched on error");
}

Test(httphdr, rejects_an_embedded_nul_and_null)
{
    uint32_t ms = POISON;

    cr_assert_eq(jf_http_retry_after_parse("12\0003", 4, NOW_MS, HOUR_MS, &ms), JF_EINVAL);
    cr_assert_eq(jf_http_retry_after_parse("12\0", 3, NOW_MS, HOUR_MS, &ms), JF_EINVAL);
    cr_assert_eq(jf_http_retry_after_parse(NULL, 0, NOW_MS, HOUR_MS, &ms), JF_EINVAL);
    cr_assert_eq(ms, POISON);
}

Test(httphdr, reads_only_len_bytes)
{
    uint32_t ms = POISON;

    cr_assert_eq(jf_http_retry_after_parse("120XYZ", 3, NOW_MS, HOUR_MS, &ms), JF_OK);
    cr_assert_eq(ms, 120000);
    cr_assert_eq(jf_http_retry_after_parse("Thu, 01 Jan 2026 00:00:30 GMTXYZ", 29, NOW_MS,
                                           HOUR_MS, &ms), JF_OK);
    cr_assert_eq(ms, 30000);
}

Test(httphdr, huge_digit_strings_saturate)
{
    static const char huge[] = "99999999999999999999999999999999999999999999999999999999999999";
    uint32_t          ms = POISON;

    expect(huge, HOUR_MS);
    expect("18446744073709551616", HOUR_MS);        /* 2^64 */
    expect("18446744073709552", HOUR_MS);           /* 2^64 / 1000, rounded up */
    cr_assert_eq(jf_http_retry_after_parse(huge, strlen(huge), NOW_MS, UINT32_MAX, &ms), JF_OK);
    cr_assert_eq(ms, UINT32_MAX);
    cr_assert_eq(jf_http_retry_after_parse("4294968", 7, NOW_MS, UINT32_MAX, &ms), JF_OK);
    cr_assert_eq(ms, UINT32_MAX, "4294968000 ms does not fit 32 bits: capped");
    cr_assert_eq(jf_http_retry_after_parse("4294967", 7, NOW_MS, UINT32_MAX, &ms), JF_OK);
    cr_assert_eq(ms, 4294967000u);
}

Test(httphdr, results_are_capped)
{
    uint32_t ms = POISON;

    expect("3601", HOUR_MS);
    expect("Fri, 02 Jan 2026 00:00:00 GMT", HOUR_MS);
    cr_assert_eq(jf_http_retry_after_parse("7200", 4, NOW_MS, 5000, &ms), JF_OK);
    cr_assert_eq(ms, 5000);
    cr_assert_eq(jf_http_retry_after_parse("4", 1, NOW_MS, 5000, &ms), JF_OK);
    cr_assert_eq(ms, 4000);
    cr_assert_eq(jf_http_retry_after_parse("1", 1, NOW_MS, 0, &ms), JF_OK);
    cr_assert_eq(ms, 0, "a cap of 0 allows no delay");
}

Test(httphdr, extreme_clocks_do_not_overflow)
{
    static const char imf[] = "Thu, 01 Jan 2026 00:00:30 GMT";
    static const char old[] = "Thursday, 01-Jan-26 00:00:30 GMT";
    uint32_t          ms = POISON;

    cr_assert_eq(jf_http_retry_after_parse(imf, strlen(imf), INT64_MIN, HOUR_MS, &ms), JF_OK);
    cr_assert_eq(ms, HOUR_MS);
    cr_assert_eq(jf_http_retry_after_parse(imf, strlen(imf), INT64_MAX, HOUR_MS, &ms), JF_OK);
    cr_assert_eq(ms, 0);
    /* a two-digit year against a clock millions of years away: no year in 0000-9999 */
    ms = POISON;
    cr_assert_eq(jf_http_retry_after_parse(old, strlen(old), INT64_MIN, HOUR_MS, &ms), JF_EINVAL);
    cr_assert_eq(jf_http_retry_after_parse(old, strlen(old), INT64_MAX, HOUR_MS, &ms), JF_EINVAL);
    cr_assert_eq(ms, POISON);
    /* before 1970, "26" is 1926 */
    cr_assert_eq(jf_http_retry_after_parse(old, strlen(old), -1000, UINT32_MAX, &ms), JF_OK);
    cr_assert_eq(ms, 0);
}
