/*
 * httphdr.c - Retry-After and HTTP-date parsing (RFC 9110 §10.2.3, §5.6.7).
 *
 * Written by hand rather than with strptime or curl_getdate: strptime
 * reads day and month names in the current locale and accepts short or
 * missing fields, curl_getdate accepts almost any text that looks like a
 * date, and core must not need libcurl. Every field here is checked for
 * its exact shape and range, and the date is turned into Unix time by
 * arithmetic (days from civil), so no time zone or locale is involved.
 */
#include <stdbool.h>
#include <string.h>

#include "core/httphdr.h"

#define MS_PER_DAY 86400000LL

/* delay-seconds beyond this stop growing; seconds * 1000 still fits */
#define SECONDS_SATURATE 1000000000000000ULL   /* 1e15 */

static const char *const day_short[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const day_long[7] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday" };
static const char *const month_name[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* ---- fields ---------------------------------------------------------------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* n ASCII digits at s into *out. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The month whose three-letter name starts s (case-sensitive): 1-12, or 0. */
static int month_at(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_name[i], 3) == 0)
            return i + 1;
    return 0;
}

static bool short_day_at(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, day_short[i], 3) == 0)
            return true;
    return false;
}

/* "HH:MM:SS" at s, 00-23, 00-59, 00-60 (a leap second), into seconds. */
static bool time_of_day(const char *s, int64_t *out)
{
    int h, m, sec;

    if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &m) || s[5] != ':' ||
        !digits(s + 6, 2, &sec) || h > 23 || m > 59 || sec > 60)
        return false;
    *out = ((int64_t)h * 60 + m) * 60 + sec;
    return true;
}

/* ---- calendar -------------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year of the day z days after 1970-01-01 (the inverse of the above). */
static int64_t year_from_days(int64_t z)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10 ? 1 : 0);
}

static bool valid_day(int64_t y, int m, int d)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool             leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= (m == 2 && leap ? 29 : days[m - 1]);
}

/* Unix milliseconds of a checked date and time of day. */
static int64_t to_ms(int64_t y, int m, int d, int64_t secs)
{
    return days_from_civil(y, m, d) * MS_PER_DAY + secs * 1000;
}

/* ---- the three HTTP-date forms --------------------------------------------------------- */

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", exactly 29 bytes. */
static bool imf_fixdate(const char *s, size_t n, int64_t *out)
{
    int     d, m, y;
    int64_t secs;

    if (n != 29 || !short_day_at(s) || s[3] != ',' || s[4] != ' ' || !digits(s + 5, 2, &d) ||
        s[7] != ' ' || (m = month_at(s + 8)) == 0 || s[11] != ' ' || !digits(s + 12, 4, &y) ||
        s[16] != ' ' || !time_of_day(s + 17, &secs) || s[25] != ' ' ||
        memcmp(s + 26, "GMT", 3) != 0 || !valid_day(y, m, d))
        return false;
    *out = to_ms(y, m, d, secs);
    return true;
}

/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". The two-digit year is
 * placed in the hundred years that end 50 years after now_ms's year, and
 * must then fall in 0000-9999. */
static bool rfc850_date(const char *s, size_t n, int64_t now_ms, int64_t *out)
{
    size_t  name = 0;
    int     d, m, yy;
    int64_t secs, now_year, y;

    for (int i = 0; i < 7; i++) {
        size_t l = strlen(day_long[i]);
        if (n == l + 24 && memcmp(s, day_long[i], l) == 0) {
            name = l;
            break;
        }
    }
    if (name == 0)
        return false;
    s += name;
    if (s[0] != ',' || s[1] != ' ' || !digits(s + 2, 2, &d) || s[4] != '-' ||
        (m = month_at(s + 5)) == 0 || s[8] != '-' || !digits(s + 9, 2, &yy) || s[11] != ' ' ||
        !time_of_day(s + 12, &secs) || s[20] != ' ' || memcmp(s + 21, "GMT", 3) != 0)
        return false;

    /* floor division: now_ms may be before 1970 */
    now_year = year_from_days(now_ms / MS_PER_DAY - (now_ms % MS_PER_DAY < 0 ? 1 : 0));
    y = now_year - ((now_year % 100) + 100) % 100 + yy;
    if (y > now_year + 50)
        y -= 100;
    else if (y <= now_year - 50)
        y += 100;
    /* the years the other forms can write; also keeps to_ms far from
     * overflowing when now_ms is absurd */
    if (y < 0 || y > 9999 || !valid_day(y, m, d))
        return false;
    *out = to_ms(y, m, d, secs);
    return true;
}

/* asctime-date: "Sun Nov  6 08:49:37 1994", the day as 2DIGIT or SP DIGIT. */
static bool asctime_date(const char *s, size_t n, int64_t *out)
{
    int     d, m, y;
    int64_t secs;

    if (n != 24 || !short_day_at(s) || s[3] != ' ' || (m = month_at(s + 4)) == 0 ||
        s[7] != ' ')
        return false;
    if (s[8] == ' ') {
        if (!digits(s + 9, 1, &d))
            return false;
    } else if (!digits(s + 8, 2, &d)) {
        return false;
    }
    if (s[10] != ' ' || !time_of_day(s + 11, &secs) || s[19] != ' ' || !digits(s + 20, 4, &y) ||
        !valid_day(y, m, d))
        return false;
    *out = to_ms(y, m, d, secs);
    return true;
}

/* ---- Retry-After ----------------------------------------------------------------------- */

jf_status_t jf_http_retry_after_parse(const char *value, size_t len, int64_t now_ms,
                                      uint32_t cap_ms, uint32_t *ret_ms)
{
    const char *s = value;
    size_t      n = len;
    uint64_t    ms;

    if (value == NULL)
        return JF_EINVAL;
    while (n > 0 && is_ows(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_ows(s[n - 1]))
        n--;
    if (n == 0)
        return JF_EINVAL;

    if (is_digit(s[0])) {
        /* delay-seconds = 1*DIGIT; saturating, so any length is safe */
        uint64_t secs = 0;

        for (size_t i = 0; i < n; i++) {
            if (!is_digit(s[i]))
                return JF_EINVAL;
            if (secs < SECONDS_SATURATE)
                secs = secs * 10 + (uint64_t)(s[i] - '0');
        }
        ms = secs * 1000;
    } else {
        int64_t when, delta;

        if (!imf_fixdate(s, n, &when) && !rfc850_date(s, n, now_ms, &when) &&
            !asctime_date(s, n, &when))
            return JF_EINVAL;
        if (__builtin_sub_overflow(when, now_ms, &delta))
            delta = now_ms < 0 ? INT64_MAX : INT64_MIN;
        ms = delta > 0 ? (uint64_t)delta : 0;
    }
    *ret_ms = ms > cap_ms ? cap_ms : (uint32_t)ms;
    return JF_OK;
}
