/*
 * subject.h - the job subject, <prefix>.<tenant>.<module>.<action>.
 */
#ifndef JF_SHARED_SUBJECT_H
#define JF_SHARED_SUBJECT_H

#include "shared/err.h"
#include "shared/ids.h"

typedef struct jf_subject {
    char tenant[JF_TENANT_MAX + 1];
    char module[JF_TOKEN_MAX + 1];
    char action[JF_TOKEN_MAX + 1];
    char type[JF_TYPE_MAX + 1];   /* "<module>.<action>" */
} jf_subject_t;

/* Parse subj, which must start with prefix (one or more tokens) followed by
 * exactly three valid tokens. out is written only on success. */
jf_status_t jf_subject_parse(const char *subj, const char *prefix,
                             jf_subject_t *out, jf_err_t *err);

/* Build "<prefix>.<tenant>.<module>.<action>" into buf. JF_ETOOBIG when it
 * does not fit. The parts are not validated here. */
jf_status_t jf_subject_format(char *buf, size_t size, const char *prefix,
                              const char *tenant, const char *type, jf_err_t *err);

#endif /* JF_SHARED_SUBJECT_H */
