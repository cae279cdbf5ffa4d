/*
 * ids.h - validation of the identifiers of the job contract (docs/workers/job-flow.md).
 *
 *   subject token   [a-z0-9_-]+, at most JF_TOKEN_MAX characters
 *   tenant          a subject token of at most JF_TENANT_MAX characters
 *   job id          1 to JF_JOB_ID_MAX printable ASCII characters, no spaces
 */
#ifndef JF_SHARED_IDS_H
#define JF_SHARED_IDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jetfleet/status.h>

#include "shared/err.h"

#define JF_TOKEN_MAX   64
#define JF_TENANT_MAX  64
#define JF_JOB_ID_MAX  128
#define JF_TYPE_MAX    (2 * JF_TOKEN_MAX + 1)   /* "<module>.<action>" */

/* what names the value in error messages, e.g. "tenant". */
jf_status_t jf_token_check(const char *s, size_t len, size_t max,
                           const char *what, jf_err_t *err);

jf_status_t jf_job_id_check(const char *id, jf_err_t *err);

/* A JetStream stream, consumer or account name: 1 to max printable
 * characters, none of them space, '.', '*', '>', '/' or '\\'. */
bool jf_js_name_ok(const char *s, size_t max);

/* Split "module.action" into its two tokens, both checked. */
jf_status_t jf_type_split(const char *type, char module[JF_TOKEN_MAX + 1],
                          char action[JF_TOKEN_MAX + 1], jf_err_t *err);

#endif /* JF_SHARED_IDS_H */
