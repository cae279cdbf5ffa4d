/*
 * fuzz_time.c - libFuzzer target for the job contract's time formats
 * (jf_time_parse_ms and jf_time_format_ms, src/core/timefmt.h).
 *
 * The Jf-Not-Before header of every job, and the --since options, are
 * parsed by jf_time_parse_ms. The input, as a C string, is parsed; the
 * verdict and the value are compared with an oracle written here from RFC
 * 3339 (section 5.6, with 't', 'z' and a space allowed as the code
 * documents, a leap second counted as :59) and plain Unix milliseconds (at
 * most 15 digits), which computes the date with Howard Hinnant's
 * days_from_civil instead of strptime and timegm. When an RFC 3339 input
 * is accepted, jf_time_format_ms of the value must parse back to the same
 * milliseconds (within the years 0000 to 9999 that RFC 3339 can write). A failure must leave *out untouched and explain itself.
 */
#include <stdbool.h>

#include "core/timefmt.h"
#include "fuzz.h"

#define POISON ((int64_t)0x5A5A5A5A5A5A5A5A)

/* The instants RFC 3339 can write in UTC: 0000-01-01T00:00:00.000Z to
 * 9999-12-31T23:59:59.999Z. An offset may carry a valid input outside
 * ("9999-12-31T23:59:59-01:00"), where no output could read back. */
#define RFC3339_MIN_MS (-62167219200000LL)
#define RFC3339_MAX_MS 253402300799999LL

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int64_t m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool             leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

static bool digits(const char *s, int n, int64_t *out)
{
    int64_t v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time into Unix milliseconds; false when s is not one. */
static bool oracle_rfc3339(const char *s, int64_t *out)
{
    int64_t y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
    size_t  i = 19, nfrac = 0;

    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || !(s[10] == 'T' || s[10] == 't' || s[10] == ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return false;
    if (s[i] == '.') {
        for (i++; s[i] >= '0' && s[i] <= '9'; i++, nfrac++)
            if (nfrac < 3)
                frac = frac * 10 + (s[i] - '0');
        if (nfrac == 0)
            return false;
        for (; nfrac < 3; nfrac++)
            frac *= 10;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '+' ? 1 : -1;
        if (!digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om))
            return false;
        i += 6;
    } else {
        return false;
    }
    if (s[i] != '\0')
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60 || oh > 23 || om > 59)
        return false;
    if (sec == 60)
        sec = 59;
    *out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + frac -
           sign * (oh * 60 + om) * 60000;
    return true;
}

/* "[0-9]+" of at most 15 digits. */
static bool oracle_millis(const char *s, int64_t *out)
{
    size_t n = strlen(s);

    return n > 0 && n <= 15 && strspn(s, "0123456789") == n && digits(s, (int)n, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char       *s = fuzz_cstr(data, size);
    int64_t     ms = POISON, want = 0, again = POISON;
    bool        is_millis = oracle_millis(s, &want);
    bool        valid = is_millis || oracle_rfc3339(s, &want);
    jf_err_t    err = { 0 };
    jf_status_t st = jf_time_parse_ms(s, &ms, &err);
    char        buf[64];

    if (st != JF_OK) {
        FUZZ_CHECK(!valid, "jf_time_parse_ms refused valid '%s' (%lld ms): %s", s,
                   (long long)want, err.msg);
        FUZZ_CHECK(ms == POISON, "jf_time_parse_ms wrote *out on failure");
        FUZZ_CHECK(st == JF_EINVAL && err.code == st && err.msg[0] != '\0',
                   "failure %s without its message", jf_status_name(st));
        goto out;
    }
    FUZZ_CHECK(valid, "jf_time_parse_ms accepted '%s' as %lld ms", s, (long long)ms);
    FUZZ_CHECK(ms == want, "jf_time_parse_ms read '%s' as %lld ms, not %lld", s, (long long)ms,
               (long long)want);
    if (is_millis || ms < RFC3339_MIN_MS || ms > RFC3339_MAX_MS)
        goto out;

    /* RFC 3339: what jf_time_format_ms writes reads back as the same ms */
    jf_time_format_ms(ms, buf, sizeof(buf));
    FUZZ_CHECK(fuzz_terminated(buf, sizeof(buf)), "jf_time_format_ms: unterminated");
    st = jf_time_parse_ms(buf, &again, &err);
    FUZZ_CHECK(st == JF_OK, "jf_time_format_ms(%lld) of '%s' wrote '%s', which does not parse: %s",
               (long long)ms, s, buf, err.msg);
    FUZZ_CHECK(again == ms, "'%s' is %lld ms, formatted '%s', which reads back as %lld ms", s,
               (long long)ms, buf, (long long)again);
out:
    free(s);
    return 0;
}
