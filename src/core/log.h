/*
 * log.h - structured logs on stderr: one JSON object per line, or readable
 * text lines for terminals (JF_LOG_FORMAT).
 *
 * Only the runtime (src/app) logs. Each line is written with one write(2),
 * so lines from different threads never interleave.
 */
#ifndef JF_CORE_LOG_H
#define JF_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jetfleet/job.h>

typedef struct jf_log_field {
    const char *key;
    const char *str;    /* used when non-NULL */
    int64_t     num;
} jf_log_field_t;

static inline jf_log_field_t jf_log_str(const char *key, const char *value)
{
    jf_log_field_t f = { .key = key, .str = value ? value : "", .num = 0 };
    return f;
}

#define JF_LS(k, v) jf_log_str((k), (v))
#define JF_LN(k, v) ((jf_log_field_t){ .key = (k), .str = NULL, .num = (int64_t)(v) })

/* Set level, format and output fd (2 for stderr). Not thread-safe: call
 * before starting threads. */
void jf_log_setup(jf_log_level_t level, bool json, int fd);

/* Parse "debug|info|warn|error". */
jf_log_level_t jf_log_level_parse(const char *s);

bool jf_log_enabled(jf_log_level_t level);

/* Write one line with the message and the fields. */
void jf_log_fields(jf_log_level_t level, const jf_log_field_t *fields, size_t nfields,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

void jf_log_vfields(jf_log_level_t level, const jf_log_field_t *fields, size_t nfields,
                    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

#define jf_log(level, ...) jf_log_fields((level), NULL, 0, __VA_ARGS__)
#define jf_log_kv(level, msg, ...)                                              \
    jf_log_fields((level), (jf_log_field_t[]){ __VA_ARGS__ },                   \
                  sizeof((jf_log_field_t[]){ __VA_ARGS__ }) / sizeof(jf_log_field_t), \
                  "%s", (msg))

#endif /* JF_CORE_LOG_H */
