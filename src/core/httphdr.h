/*
 * httphdr.h - parsing HTTP header values that carry no domain meaning:
 * Retry-After (RFC 9110 §10.2.3) and the HTTP-date it may hold (§5.6.7).
 *
 * Pure C, no libcurl and no locale: any HTTP client wrapper can hand the
 * raw header value over, and the parser can be fuzzed on its own.
 */
#ifndef JF_CORE_HTTPHDR_H
#define JF_CORE_HTTPHDR_H

#include <stddef.h>
#include <stdint.h>

#include <jetfleet/status.h>

/* Parse a Retry-After value into the delay it asks for, in milliseconds.
 *
 * value (borrowed, len bytes, need not be NUL-terminated; a NUL inside it
 * is malformed) is either delay-seconds (1*DIGIT, any number of digits:
 * large values saturate, never overflow) or an HTTP-date in one of the
 * three forms of RFC 9110 §5.6.7:
 *
 *   IMF-fixdate   Sun, 06 Nov 1994 08:49:37 GMT
 *   rfc850-date   Sunday, 06-Nov-94 08:49:37 GMT   (obsolete)
 *   asctime-date  Sun Nov  6 08:49:37 1994         (obsolete)
 *
 * Names are case-sensitive, as the grammar says; the date must exist
 * (no February 30), hours run 00-23, minutes 00-59, seconds 00-60. The
 * day name must be a valid one but is not checked against the date. A
 * two-digit rfc850 year is read as the year with those last two digits
 * that is less than 50 years before and at most 50 years after the year
 * of now_ms (RFC 9110 §5.6.7), and must fall in 0000-9999 like the four
 * digits of the other forms. Leading and trailing spaces, tabs, CRs and
 * LFs are ignored; anything else is JF_EINVAL.
 *
 * A date is turned into a delay against now_ms (Unix milliseconds); a date
 * at or before now_ms gives 0. Every result is capped at cap_ms.
 *
 * Returns JF_OK and sets *ret_ms, or JF_EINVAL and leaves *ret_ms alone. */
jf_status_t jf_http_retry_after_parse(const char *value, size_t len, int64_t now_ms,
                                      uint32_t cap_ms, uint32_t *ret_ms);

#endif /* JF_CORE_HTTPHDR_H */
