/*
 * timefmt.c - RFC 3339 and Unix-millisecond timestamps.
 */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/timefmt.h"

static int two_digits(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* RFC 3339: 2026-11-29T08:00:00[.fraction](Z|+hh:mm|-hh:mm), 't' or a space
 * also separating date and time. The shape is checked by hand because
 * strptime alone accepts short fields and spaces; timegm then refuses dates
 * that do not exist by normalising them (February 30 becomes March 2). */
static bool parse_rfc3339(const char *s, int64_t *out_ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    struct tm   tm = { 0 }, want;
    char        buf[sizeof(shape)];
    const char *p;
    int64_t     frac_ms = 0, offset_ms = 0;
    time_t      t;

    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = s[i];
        bool ok = shape[i] == 'd' ? isdigit((unsigned char)c) != 0
                : shape[i] == 'T' ? (c == 'T' || c == 't' || c == ' ')
                : c == shape[i];
        if (!ok)
            return false;
    }
    memcpy(buf, s, sizeof(shape) - 1);
    buf[sizeof(shape) - 1] = '\0';
    buf[10] = 'T';
    p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL || *p != '\0')
        return false;

    p = s + sizeof(shape) - 1;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        int hh = two_digits(p + 1), mm = two_digits(p + 4);
        if (hh > 23 || mm > 59)
            return false;
        offset_ms = ((int64_t)hh * 60 + mm) * 60000;
        if (*p == '-')
            offset_ms = -offset_ms;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    if (tm.tm_sec == 60)      /* a leap second: count it as the one before */
        tm.tm_sec = 59;
    want = tm;
    t = timegm(&tm);
    if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday ||
        tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
        return false;
    *out_ms = (int64_t)t * 1000 + frac_ms - offset_ms;
    return true;
}

jf_status_t jf_time_parse_ms(const char *s, int64_t *out, jf_err_t *err)
{
    if (s == NULL || s[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "time is empty");
    if (strspn(s, "0123456789") == strlen(s)) {
        char     *end;
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || strlen(s) > 15)
            return jf_err_set(err, JF_EINVAL, "'%.40s' is too large for Unix milliseconds", s);
        *out = v;
        return JF_OK;
    }
    if (parse_rfc3339(s, out))
        return JF_OK;
    return jf_err_set(err, JF_EINVAL, "'%.40s' is neither RFC 3339 (2026-11-29T08:00:00Z) nor "
                      "Unix milliseconds", s);
}

jf_status_t jf_time_parse_since(const char *s, int64_t now_ms, int64_t *out, jf_err_t *err)
{
    int64_t v;

    if (jf_time_parse_ms(s, &v, NULL) == JF_OK) {
        *out = v;
        return JF_OK;
    }
    if (jf_parse_duration_ms(s, &v, NULL) == JF_OK) {
        *out = now_ms - v;
        return JF_OK;
    }
    if (isdigit((unsigned char)s[0]) && strchr(s, '-') != NULL && strchr(s, ':') != NULL)
        return jf_err_set(err, JF_EINVAL, "'%.64s' is not a valid RFC 3339 time (examples: "
                          "2026-11-29T08:00:00Z, 2026-11-29T09:00:00.250+01:00)", s);
    return jf_err_set(err, JF_EINVAL,
                      "'%.64s' is neither a duration (30m, 1h, 7d), an RFC 3339 time "
                      "(2026-11-29T08:00:00Z) nor Unix milliseconds", s);
}

const char *jf_time_format_ms(int64_t ms, char *buf, size_t size)
{
    int64_t   secs = ms / 1000, frac = ms % 1000;
    time_t    t;
    struct tm tm;

    if (frac < 0) {     /* before 1970: C division truncates toward zero */
        frac += 1000;
        secs--;
    }
    t = (time_t)secs;
    gmtime_r(&t, &tm);
    /* %04d rather than strftime's %Y, which does not pad years below 1000 */
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return buf;
}
