/*
 * ids.c - validation of subject tokens, tenants and job ids.
 *
 * These checks guard every subject the runtime builds from untrusted input,
 * so they are strict: a token that passes can be placed in any subject or
 * KV key without escaping.
 */
#include <string.h>

#include <bsd/string.h>

#include "shared/ids.h"

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

jf_status_t jf_token_check(const char *s, size_t len, size_t max,
                           const char *what, jf_err_t *err)
{
    if (s == NULL || len == 0)
        return jf_err_set(err, JF_EINVAL, "%s is empty", what);
    if (len > max)
        return jf_err_set(err, JF_EINVAL, "%s is %zu characters long, the limit is %zu",
                          what, len, max);
    for (size_t i = 0; i < len; i++) {
        if (!token_char((unsigned char)s[i]))
            return jf_err_set(err, JF_EINVAL,
                              "%s '%.*s' has character 0x%02x at offset %zu; "
                              "allowed are [a-z0-9_-]",
                              what, (int)(len > 64 ? 64 : len), s,
                              (unsigned char)s[i], i);
    }
    return JF_OK;
}

jf_status_t jf_job_id_check(const char *id, jf_err_t *err)
{
    size_t len;

    if (id == NULL || id[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "job id (Nats-Msg-Id) is missing or empty");
    len = strnlen(id, JF_JOB_ID_MAX + 1);
    if (len > JF_JOB_ID_MAX)
        return jf_err_set(err, JF_EINVAL,
                          "job id (Nats-Msg-Id) is longer than %d characters",
                          JF_JOB_ID_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c > 0x7e)
            return jf_err_set(err, JF_EINVAL,
                              "job id (Nats-Msg-Id) has non-printable or space "
                              "character 0x%02x at offset %zu", c, i);
    }
    return JF_OK;
}

jf_status_t jf_type_split(const char *type, char module[JF_TOKEN_MAX + 1],
                          char action[JF_TOKEN_MAX + 1], jf_err_t *err)
{
    const char *dot;
    jf_status_t st;

    if (type == NULL)
        return jf_err_set(err, JF_EINVAL, "job type is missing");
    dot = strchr(type, '.');
    if (dot == NULL)
        return jf_err_set(err, JF_EINVAL,
                          "job type '%.64s' is not of the form <module>.<action>", type);
    st = jf_token_check(type, (size_t)(dot - type), JF_TOKEN_MAX, "module", err);
    if (st != JF_OK)
        return st;
    st = jf_token_check(dot + 1, strlen(dot + 1), JF_TOKEN_MAX, "action", err);
    if (st != JF_OK)
        return st;
    memcpy(module, type, (size_t)(dot - type));
    module[dot - type] = '\0';
    strlcpy(action, dot + 1, JF_TOKEN_MAX + 1);
    return JF_OK;
}

bool jf_js_name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || strchr(".*>/\\", *s))
            return false;
    return true;
}
