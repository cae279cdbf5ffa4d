/*
 * test_timefmt.c - Jf-Not-Before and --since times.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "core/timefmt.h"

Test(timefmt, parses_unix_ms_and_rfc3339)
{
    int64_t ms;

    cr_assert_eq(jf_time_parse_ms("1795939200000", &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200000LL);
    cr_assert_eq(jf_time_parse_ms("2026-11-29T08:00:00Z", &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200000LL);
    cr_assert_eq(jf_time_parse_ms("2026-11-29T09:00:00.250+01:00", &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200250LL);
    cr_assert_eq(jf_time_parse_ms("2026-11-29T07:30:00-00:30", &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200000LL);
}

Test(timefmt, rejects_what_is_not_a_time)
{
    static const char *const bad[] = {
        "", "tomorrow", "2026-11-29", "2026-11-29T08:00:00", "2026-11-29T08:00:00+0100",
        "2026-02-30T08:00:00Z", "2026-11-29T25:00:00Z", "2026-11-29T08:00:00Zjunk",
        "2026-11-29T08:00:00.Z", "12345678901234567890", "-5",
    };
    int64_t ms = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(jf_time_parse_ms(bad[i], &ms, NULL), JF_EINVAL, "'%s' was accepted", bad[i]);
    cr_assert_eq(ms, 7, "out is untouched on error");
}

Test(timefmt, formats_and_round_trips)
{
    char    buf[40];
    int64_t back;

    cr_assert_str_eq(jf_time_format_ms(1795939200250LL, buf, sizeof(buf)),
                     "2026-11-29T08:00:00.250Z");
    cr_assert_eq(jf_time_parse_ms(buf, &back, NULL), JF_OK);
    cr_assert_eq(back, 1795939200250LL);
}

Test(timefmt, formats_times_before_1970_and_early_years)
{
    char    buf[40];
    int64_t ms;

    cr_assert_str_eq(jf_time_format_ms(-500, buf, sizeof(buf)), "1969-12-31T23:59:59.500Z");
    cr_assert_eq(jf_time_parse_ms("1012-02-29T00:00:00.123Z", &ms, NULL), JF_OK);
    cr_assert_str_eq(jf_time_format_ms(ms, buf, sizeof(buf)), "1012-02-29T00:00:00.123Z");
}

Test(timefmt, since_takes_durations_times_and_unix_ms)
{
    int64_t  ms;
    jf_err_t err = { 0 };

    cr_assert_eq(jf_time_parse_since("30m", 10000000, &ms, NULL), JF_OK);
    cr_assert_eq(ms, 10000000 - 1800000);
    cr_assert_eq(jf_time_parse_since("2026-11-29T08:00:00Z", 0, &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200000LL);
    cr_assert_eq(jf_time_parse_since("1795939200000", 0, &ms, NULL), JF_OK);
    cr_assert_eq(ms, 1795939200000LL);
    cr_assert_eq(jf_time_parse_since("2026-13-01T00:00:00Z", 0, &ms, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "not a valid RFC 3339 time") != NULL, "%s", err.msg);
    cr_assert_eq(jf_time_parse_since("soon", 0, &ms, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "neither a duration") != NULL, "%s", err.msg);
}
