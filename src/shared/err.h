/*
 * err.h - a status plus the detail that explains it.
 *
 * Library layers (shared, core, security, modules) never log: they return a
 * jf_status_t and, when the caller passed a jf_err_t, a sentence saying
 * what went wrong. The runtime logs it once, at the boundary.
 */
#ifndef JF_SHARED_ERR_H
#define JF_SHARED_ERR_H

#include <jetfleet/status.h>

typedef struct jf_err {
    jf_status_t code;
    char        msg[256];
} jf_err_t;

/* Record code and a printf-style message in err (which may be NULL), and
 * return code, so that callers can write `return jf_err_set(err, ...)`. */
jf_status_t jf_err_set(jf_err_t *err, jf_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix err's message with more context: "context: <old message>". */
jf_status_t jf_err_wrap(jf_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* err's message, or the status text when no message was recorded. */
const char *jf_err_msg(const jf_err_t *err);

#endif /* JF_SHARED_ERR_H */
