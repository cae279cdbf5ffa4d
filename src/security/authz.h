/*
 * authz.h - authorization of a job before dispatch.
 *
 * Applied by the runtime (src/app) after a job is parsed and before its
 * handler runs; modules only ever see jobs that passed. The tenant token of
 * the subject is authenticated by NATS publish permissions (the job contract);
 * this layer decides whether this worker may run that tenant's job of that
 * type. These are the rules every deployment needs from day one; the
 * per-tenant policy file (policy.h) and signatures (signature.h) add to them.
 */
#ifndef JF_SECURITY_AUTHZ_H
#define JF_SECURITY_AUTHZ_H

#include <stdbool.h>

#include <jetfleet/module.h>

#include "shared/err.h"

typedef struct jf_authz jf_authz_t;

typedef struct jf_authz_opts {
    const char *tenants;       /* "*" or a comma-separated list of tenant tokens */
    bool        allow_unsafe;  /* JF_DIAG_UNSAFE: allow JF_JOB_TYPE_UNSAFE types */
} jf_authz_opts_t;

/* Build a policy. JF_ECONFIG, naming the bad entry, when the tenant list
 * holds something that is not a valid tenant token. */
jf_status_t jf_authz_create(jf_authz_t **out, const jf_authz_opts_t *opts, jf_err_t *err);

void jf_authz_destroy(jf_authz_t *az);

/* JF_OK, or JF_EDENIED with the reason in err. */
jf_status_t jf_authz_check(const jf_authz_t *az, const char *tenant, const char *type,
                           const jf_job_type_t *jt, jf_err_t *err);

#endif /* JF_SECURITY_AUTHZ_H */
