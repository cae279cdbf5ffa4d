/*
 * log.c - the line writer behind log.h.
 *
 * JSON lines are built with jansson, so every string is escaped correctly
 * whatever a job or server puts in it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"

static struct {
    jf_log_level_t level;
    bool           json;
    int            fd;
} logger = { JF_LOG_INFO, true, 2 };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void jf_log_setup(jf_log_level_t level, bool json, int fd)
{
    logger.level = level;
    logger.json = json;
    logger.fd = fd;
}

jf_log_level_t jf_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s != NULL && strcmp(s, level_names[i]) == 0)
            return (jf_log_level_t)i;
    return JF_LOG_INFO;
}

bool jf_log_enabled(jf_log_level_t level)
{
    return level >= logger.level;
}

static void timestamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm       tm;
    size_t          n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void write_all(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(logger.fd, s, len);
        if (n <= 0)
            return;   /* nowhere left to report a failing stderr */
        s += n;
        len -= (size_t)n;
    }
}

void jf_log_vfields(jf_log_level_t level, const jf_log_field_t *fields, size_t nfields,
                    const char *fmt, va_list ap)
{
    char ts[40];
    char msg[1024];

    if (!jf_log_enabled(level))
        return;
    timestamp(ts, sizeof(ts));
    vsnprintf(msg, sizeof(msg), fmt, ap);  /* NOLINT: fmt is checked by callers' attributes */

    if (logger.json) {
        json_t *o = json_object();
        char   *line;

        if (o == NULL)
            return;
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "msg", json_string(msg));
        for (size_t i = 0; i < nfields; i++) {
            const jf_log_field_t *f = &fields[i];
            json_t *v = f->str ? json_string(f->str) : json_integer(f->num);
            /* json_string refuses invalid UTF-8: keep the line, mark the field. */
            json_object_set_new(o, f->key, v ? v : json_string("<invalid utf-8>"));
        }
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(o);
        if (line != NULL) {
            size_t len = strlen(line);
            char  *nl = realloc(line, len + 2);
            if (nl != NULL) {
                nl[len] = '\n';
                nl[len + 1] = '\0';
                write_all(nl, len + 1);
                free(nl);
            } else {
                free(line);
            }
        }
        return;
    }

    {
        char   buf[4096];
        size_t n = (size_t)snprintf(buf, sizeof(buf), "%s %-5s %s", ts,
                                    level_names[level], msg);
        for (size_t i = 0; i < nfields && n < sizeof(buf); i++) {
            const jf_log_field_t *f = &fields[i];
            if (f->str && strpbrk(f->str, " \"=") != NULL)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=\"%s\"", f->key, f->str);
            else if (f->str)
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%s", f->key, f->str);
            else
                n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%lld", f->key,
                                      (long long)f->num);
        }
        if (n >= sizeof(buf) - 1)
            n = sizeof(buf) - 2;
        buf[n++] = '\n';
        write_all(buf, n);
    }
}

void jf_log_fields(jf_log_level_t level, const jf_log_field_t *fields, size_t nfields,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    jf_log_vfields(level, fields, nfields, fmt, ap);
    va_end(ap);
}
