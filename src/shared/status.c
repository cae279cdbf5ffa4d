/*
 * status.c - texts for jf_status_t, and the error-detail helpers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bsd/string.h>

#include <jetfleet/status.h>

#include "shared/err.h"

static const struct {
    const char *name;
    const char *text;
    bool        retryable;
} status_table[JF_STATUS_MAX_] = {
    [JF_OK]           = { "JF_OK",           "success",                          false },
    [JF_EINVAL]       = { "JF_EINVAL",       "invalid argument or input",        false },
    [JF_ENOMEM]       = { "JF_ENOMEM",       "out of memory",                    false },
    [JF_ENOTFOUND]    = { "JF_ENOTFOUND",    "not found",                        false },
    [JF_EEXIST]       = { "JF_EEXIST",       "already exists",                   false },
    [JF_ETOOBIG]      = { "JF_ETOOBIG",      "larger than the configured limit", false },
    [JF_EDECODE]      = { "JF_EDECODE",      "payload could not be decoded",     false },
    [JF_EDENIED]      = { "JF_EDENIED",      "not authorized",                   false },
    [JF_EUNSUPPORTED] = { "JF_EUNSUPPORTED", "not supported",                    false },
    [JF_ECONFIG]      = { "JF_ECONFIG",      "bad configuration",                false },
    [JF_ESTATE]       = { "JF_ESTATE",       "invalid in the current state",     false },
    [JF_ETIMEOUT]     = { "JF_ETIMEOUT",     "timed out",                        true  },
    [JF_EIO]          = { "JF_EIO",          "transport or server error",        true  },
    [JF_EUNAVAILABLE] = { "JF_EUNAVAILABLE", "service unavailable",              true  },
    [JF_EAGAIN]       = { "JF_EAGAIN",       "try again later",                  true  },
};

const char *jf_status_str(jf_status_t st)
{
    if ((unsigned)st >= JF_STATUS_MAX_)
        return "unknown status";
    return status_table[st].text;
}

const char *jf_status_name(jf_status_t st)
{
    if ((unsigned)st >= JF_STATUS_MAX_)
        return "JF_EUNKNOWN";
    return status_table[st].name;
}

bool jf_status_retryable(jf_status_t st)
{
    if ((unsigned)st >= JF_STATUS_MAX_)
        return false;
    return status_table[st].retryable;
}

jf_status_t jf_err_set(jf_err_t *err, jf_status_t code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

jf_status_t jf_err_wrap(jf_err_t *err, const char *fmt, ...)
{
    char    prefix[128];
    char    old[sizeof(err->msg)];
    va_list ap;

    if (err == NULL)
        return JF_OK;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    strlcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    return err->code;
}

const char *jf_err_msg(const jf_err_t *err)
{
    if (err == NULL)
        return "";
    if (err->msg[0] == '\0')
        return jf_status_str(err->code);
    return err->msg;
}
