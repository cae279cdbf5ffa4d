/*
 * timefmt.h - the time formats of the job contract: RFC 3339 and Unix
 * milliseconds (Jf-Not-Before, --since), and RFC 3339 output.
 */
#ifndef JF_CORE_TIMEFMT_H
#define JF_CORE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"

/* Parse "2026-11-29T08:00:00Z", "2026-11-29T08:00:00.250+01:00" or a plain
 * count of Unix milliseconds ("1795939200000") into Unix milliseconds. */
jf_status_t jf_time_parse_ms(const char *s, int64_t *out, jf_err_t *err);

/* A "since" of the command line: a duration back from now_ms ("30m", "1h",
 * "7d"), an RFC 3339 time or Unix milliseconds, into Unix milliseconds. */
jf_status_t jf_time_parse_since(const char *s, int64_t now_ms, int64_t *out, jf_err_t *err);

/* Format Unix milliseconds as RFC 3339 UTC with milliseconds. */
const char *jf_time_format_ms(int64_t ms, char *buf, size_t size);

#endif /* JF_CORE_TIMEFMT_H */
