/*
 * timefmt.c - RFC 3339 and Unix-millisecond timestamps.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timefmt.h"

jf_status_t jf_time_parse_ms(const char *s, int64_t *out, jf_err_t *err)
{
    struct tm   tm;
    const char *p;
    int64_t     ms = 0;
    long        offset_s = 0;
    time_t      t;

    if (s == NULL || s[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "time is empty");
    if (strspn(s, "0123456789") == strlen(s)) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || strlen(s) > 15)
            return jf_err_set(err, JF_EINVAL, "'%.40s' is not a Unix time in milliseconds", s);
        *out = v;
        return JF_OK;
    }
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        goto bad;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            goto bad;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
            !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
            goto bad;
        offset_s = sign * (((p[1] - '0') * 10 + (p[2] - '0')) * 3600L +
                           ((p[4] - '0') * 10 + (p[5] - '0')) * 60L);
        p += 6;
    } else {
        goto bad;   /* RFC 3339 requires a zone */
    }
    if (*p != '\0')
        goto bad;
    t = timegm(&tm);
    if (t == (time_t)-1)
        goto bad;
    *out = ((int64_t)t - offset_s) * 1000 + ms;
    return JF_OK;
bad:
    return jf_err_set(err, JF_EINVAL, "'%.40s' is neither RFC 3339 (2026-11-29T08:00:00Z) nor "
                      "Unix milliseconds", s);
}

const char *jf_time_format_ms(int64_t ms, char *buf, size_t size)
{
    time_t    t = (time_t)(ms / 1000);
    struct tm tm;
    size_t    n;

    gmtime_r(&t, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
    return buf;
}
