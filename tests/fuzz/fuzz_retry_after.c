/*
 * fuzz_retry_after.c - libFuzzer target for the Retry-After parser
 * (jf_http_retry_after_parse, src/core/httphdr.h).
 *
 * Any webhook endpoint a tenant names can answer with any Retry-After it
 * likes, and the worker turns it into the delay of a retry. The raw input
 * bytes are the header value (not NUL-terminated, so ASan sees any read past
 * len). It is parsed against several clocks and caps; each verdict and
 * value is compared with an oracle written here from RFC 9110 §10.2.3 and
 * §5.6.7 that matches the three date forms against templates and computes
 * the instant with libc's timegm and gmtime_r instead of the parser's days
 * from civil. Against clocks millions of years away (INT64_MIN, INT64_MAX)
 * only what must still hold is checked: no overflow, seconds unchanged, a
 * four-digit-year date wholly in the future or past, and an rfc850 date
 * refused because no year 0000-9999 has those two digits near such a
 * clock. A failure must be JF_EINVAL and leave *ret_ms untouched.
 */
#include <stdbool.h>
#include <time.h>

#include "core/httphdr.h"
#include "fuzz.h"

#define POISON      0x5A5A5A5Au
#define NOW_2026    1767225600000LL       /* 2026-01-01T00:00:00Z */
#define YEAR0_MS    (-62167219200000LL)   /* 0000-01-01T00:00:00Z */
#define YEAR9999_MS 253402300799999LL     /* 9999-12-31T23:59:59.999Z */

static const char *const days3[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const days_l[7] = { "Monday", "Tuesday", "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday" };
static const char *const months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

typedef enum { NOT_VALID, SECONDS, DATE4, DATE2 } kind_t;

typedef struct {
    kind_t   kind;
    uint64_t ms;            /* SECONDS: the delay, saturated at UINT64_MAX / 2 */
    int      year, mon, mday, hour, min, sec;   /* DATE4 (year) or DATE2 (year % 100) */
} oracle_t;

static bool num(const char *s, size_t n, size_t at, int width, int *out)
{
    int v = 0;

    if (at + (size_t)width > n)
        return false;
    for (int i = 0; i < width; i++) {
        if (s[at + i] < '0' || s[at + i] > '9')
            return false;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return true;
}

/* The word of table (cnt entries) that starts s at *at; advances *at. */
static bool word(const char *s, size_t n, size_t *at, const char *const *table, int cnt, int *out)
{
    for (int i = 0; i < cnt; i++) {
        size_t l = strlen(table[i]);
        if (*at + l <= n && memcmp(s + *at, table[i], l) == 0) {
            *at += l;
            *out = i;
            return true;
        }
    }
    return false;
}

/* Match s against a template: 'a' short day name, 'A' long day name, 'b'
 * month, 'D' two-digit day, 'E' asctime day (two digits or space and
 * digit), 'Y' four-digit year, 'y' two-digit year, 'h' 'm' 's' two digits
 * each; any other character stands for itself. */
static bool match(const char *s, size_t n, const char *tpl, oracle_t *o)
{
    size_t at = 0;
    int    ignored;

    for (const char *t = tpl; *t != '\0'; t++) {
        switch (*t) {
        case 'a':
            if (!word(s, n, &at, days3, 7, &ignored))
                return false;
            break;
        case 'A':
            if (!word(s, n, &at, days_l, 7, &ignored))
                return false;
            break;
        case 'b':
            if (!word(s, n, &at, months, 12, &o->mon))
                return false;
            o->mon++;
            break;
        case 'E':
            if (at < n && s[at] == ' ') {
                if (!num(s, n, at + 1, 1, &o->mday))
                    return false;
                at += 2;
                break;
            }
            /* fall through: two digits */
        case 'D':
            if (!num(s, n, at, 2, &o->mday))
                return false;
            at += 2;
            break;
        case 'Y':
            if (!num(s, n, at, 4, &o->year))
                return false;
            at += 4;
            break;
        case 'y':
            if (!num(s, n, at, 2, &o->year))
                return false;
            at += 2;
            break;
        case 'h':
        case 'm':
        case 's':
            if (!num(s, n, at, 2, *t == 'h' ? &o->hour : *t == 'm' ? &o->min : &o->sec))
                return false;
            at += 2;
            break;
        default:
            if (at >= n || s[at] != *t)
                return false;
            at++;
        }
    }
    return at == n && o->hour <= 23 && o->min <= 59 && o->sec <= 60;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What the header says, clock aside. */
static oracle_t oracle(const char *s, size_t n)
{
    oracle_t o = { .kind = NOT_VALID };

    while (n > 0 && ows(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && ows(s[n - 1]))
        n--;
    if (n == 0)
        return o;
    if (s[0] >= '0' && s[0] <= '9') {
        size_t i = 0, sig;

        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i != n)
            return o;
        for (i = 0; i + 1 < n && s[i] == '0'; i++)
            ;
        sig = n - i;                        /* significant digits */
        o.kind = SECONDS;
        if (sig > 15) {
            o.ms = UINT64_MAX / 2;          /* more than any cap */
        } else {
            int64_t v = 0;
            for (; i < n; i++)
                v = v * 10 + (s[i] - '0');
            o.ms = (uint64_t)v * 1000;
        }
        return o;
    }
    if (match(s, n, "a, D b Y h:m:s GMT", &o) || match(s, n, "a b E h:m:s Y", &o))
        o.kind = DATE4;
    else if (match(s, n, "A, D-b-y h:m:s GMT", &o))
        o.kind = DATE2;
    return o;
}

/* The Unix ms of a date, by timegm; false when the day does not exist. */
static bool instant(const oracle_t *o, int year, int64_t *out)
{
    struct tm tm = { 0 }, want;
    time_t    t;

    tm.tm_year = year - 1900;
    tm.tm_mon = o->mon - 1;
    tm.tm_mday = o->mday;
    tm.tm_hour = o->hour;
    tm.tm_min = o->min;
    tm.tm_sec = o->sec == 60 ? 59 : o->sec;
    want = tm;
    t = timegm(&tm);
    if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon || tm.tm_mday != want.tm_mday)
        return false;
    *out = ((int64_t)t + (o->sec == 60 ? 1 : 0)) * 1000;
    return true;
}

/* The year ending in yy that lies in (year - 50, year + 50]. */
static int window_year(int year, int yy)
{
    for (int y = year - 49; y <= year + 50; y++)
        if (((y % 100) + 100) % 100 == yy)
            return y;
    abort();
}

static int year_of(int64_t now_ms)
{
    time_t    t = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0));
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        abort();
    return tm.tm_year + 1900;
}

/* What the parser must answer at now_ms (within years 0000-9999). */
static bool expected(const oracle_t *o, int64_t now_ms, uint32_t cap, uint32_t *out)
{
    int64_t  when, delta;
    uint64_t ms;
    int      year = o->year;

    switch (o->kind) {
    case NOT_VALID:
        return false;
    case SECONDS:
        ms = o->ms;
        break;
    case DATE2:
        year = window_year(year_of(now_ms), o->year);
        if (year < 0 || year > 9999)
            return false;
        /* fall through */
    case DATE4:
        if (!instant(o, year, &when))
            return false;
        delta = when - now_ms;
        ms = delta > 0 ? (uint64_t)delta : 0;
        break;
    default:
        abort();
    }
    *out = ms > cap ? cap : (uint32_t)ms;
    return true;
}

static uint64_t fnv1a(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 0x100000001b3ULL;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    oracle_t    o = oracle(s, size);
    uint64_t    h = fnv1a(data, size);
    int64_t     clocks[6] = {
        NOW_2026, 0, -1, YEAR0_MS, YEAR9999_MS,
        /* one more, anywhere in years 0000-9999, picked by the input */
        YEAR0_MS + (int64_t)(h % (uint64_t)(YEAR9999_MS - YEAR0_MS)),
    };
    uint32_t    caps[3] = { UINT32_MAX, 3600000, (uint32_t)(h >> 32) };

    for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
        for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
            uint32_t    ms = POISON, want = 0;
            bool        valid = expected(&o, clocks[c], caps[k], &want);
            jf_status_t st = jf_http_retry_after_parse(s, size, clocks[c], caps[k], &ms);

            if (st != JF_OK) {
                FUZZ_CHECK(st == JF_EINVAL, "status %s", jf_status_name(st));
                FUZZ_CHECK(ms == POISON, "*ret_ms written on failure");
                FUZZ_CHECK(!valid, "refused a valid value at clock %lld (kind %d, want %u)",
                           (long long)clocks[c], (int)o.kind, want);
                continue;
            }
            FUZZ_CHECK(valid, "accepted an invalid value as %u ms at clock %lld", ms,
                       (long long)clocks[c]);
            FUZZ_CHECK(ms == want, "%u ms, not %u, at clock %lld cap %u (kind %d)", ms, want,
                       (long long)clocks[c], caps[k], (int)o.kind);
        }
    }

    /* clocks millions of years away: nothing overflows, the verdicts follow */
    for (int e = 0; e < 2; e++) {
        int64_t     now = e == 0 ? INT64_MIN : INT64_MAX;
        uint32_t    ms = POISON, want = 0;
        int64_t     when;
        jf_status_t st = jf_http_retry_after_parse(s, size, now, 3600000, &ms);
        bool        valid = o.kind == SECONDS || (o.kind == DATE4 && instant(&o, o.year, &when));

        if (o.kind == SECONDS)
            want = o.ms > 3600000 ? 3600000 : (uint32_t)o.ms;
        else if (o.kind == DATE4)
            want = e == 0 ? 3600000 : 0;
        if (st != JF_OK) {
            FUZZ_CHECK(st == JF_EINVAL && ms == POISON, "failure %s, *ret_ms %u",
                       jf_status_name(st), ms);
            FUZZ_CHECK(!valid, "refused a valid value at clock %lld", (long long)now);
            continue;
        }
        FUZZ_CHECK(valid, "accepted %s value at clock %lld",
                   o.kind == DATE2 ? "an rfc850" : "an invalid", (long long)now);
        FUZZ_CHECK(ms == want, "%u ms, not %u, at clock %lld", ms, want, (long long)now);
    }
    return 0;
}
