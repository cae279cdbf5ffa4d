/*
 * subject.c - parsing and building job subjects (docs/workers/job-flow.md).
 */
#include <stdio.h>
#include <string.h>

#include <bsd/string.h>

#include "shared/subject.h"

jf_status_t jf_subject_parse(const char *subj, const char *prefix,
                             jf_subject_t *out, jf_err_t *err)
{
    static const char *const names[3] = { "tenant", "module", "action" };
    static const size_t limits[3] = { JF_TENANT_MAX, JF_TOKEN_MAX, JF_TOKEN_MAX };
    jf_subject_t s;
    char *dst[3] = { s.tenant, s.module, s.action };
    const char *p;
    size_t plen;

    if (subj == NULL || prefix == NULL)
        return jf_err_set(err, JF_EINVAL, "subject is missing");
    plen = strlen(prefix);
    if (strncmp(subj, prefix, plen) != 0 || subj[plen] != '.')
        return jf_err_set(err, JF_EINVAL,
                          "subject '%.200s' does not start with '%s.'", subj, prefix);
    p = subj + plen + 1;
    for (int i = 0; i < 3; i++) {
        const char *end = strchr(p, '.');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        jf_status_t st;

        if (i < 2 && end == NULL)
            return jf_err_set(err, JF_EINVAL,
                              "subject '%.200s' has no %s token; expected "
                              "%s.<tenant>.<module>.<action>", subj, names[i + 1], prefix);
        if (i == 2 && end != NULL)
            return jf_err_set(err, JF_EINVAL,
                              "subject '%.200s' has extra tokens after the action; "
                              "expected %s.<tenant>.<module>.<action>", subj, prefix);
        st = jf_token_check(p, len, limits[i], names[i], err);
        if (st != JF_OK)
            return st;
        memcpy(dst[i], p, len);
        dst[i][len] = '\0';
        p = end ? end + 1 : p + len;
    }
    snprintf(s.type, sizeof(s.type), "%s.%s", s.module, s.action);
    *out = s;
    return JF_OK;
}

jf_status_t jf_subject_format(char *buf, size_t size, const char *prefix,
                              const char *tenant, const char *type, jf_err_t *err)
{
    int n = snprintf(buf, size, "%s.%s.%s", prefix, tenant, type);

    if (n < 0 || (size_t)n >= size)
        return jf_err_set(err, JF_ETOOBIG, "subject for tenant '%.64s' and type '%.129s' "
                          "is too long", tenant, type);
    return JF_OK;
}
