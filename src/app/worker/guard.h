/*
 * guard.h - the worker's security guard: the tenant allow-list, the tenant
 * policy and its secrets, applied to every job before it reaches a module
 * (docs/architecture/layer-map.md: security is applied by app, before any
 * handler).
 *
 * The guard owns the policy and the secrets and swaps both on SIGHUP
 * (jf_guard_reload) under a reader-writer lock, so a check never sees half
 * of a reload. It also backs what handlers may ask of the runtime about
 * security: their tenant's secrets and the egress guard (jf_job_hooks_t),
 * and it signs the child jobs the enqueue service publishes.
 */
#ifndef JF_APP_WORKER_GUARD_H
#define JF_APP_WORKER_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include <jetfleet/module.h>
#include <protobuf-c/protobuf-c.h>

#include "core/config.h"
#include "core/jobctx.h"
#include "shared/err.h"

typedef struct jf_guard jf_guard_t;

/* From JF_TENANTS, JF_DIAG_UNSAFE, JF_POLICY_FILE and JF_SECRETS_DIR.
 * JF_ECONFIG (or the loader's status) with the reason for a bad setting,
 * policy or secret. cfg is borrowed for the guard's life. */
jf_status_t jf_guard_create(jf_guard_t **out, const jf_config_t *cfg, jf_err_t *err);

/* Accepts NULL. Wipes the secrets. */
void jf_guard_destroy(jf_guard_t *g);

/* Load the policy and the secrets anew and swap them in when both are
 * valid; otherwise keep the running ones and say why in err. */
jf_status_t jf_guard_reload(jf_guard_t *g, jf_err_t *err);

/* May tenant run a job of type (jt) whose message is size bytes? The
 * allow-list and the tenant policy: JF_OK, JF_EDENIED or JF_ETOOBIG. */
jf_status_t jf_guard_authorize(jf_guard_t *g, const char *tenant, const char *type,
                               const jf_job_type_t *jt, size_t size, jf_err_t *err);

/* When tenant's policy demands signed jobs, check header (Jf-Signature,
 * may be NULL) over subject, job id and payload. JF_OK when none is
 * demanded or it verifies; JF_EDENIED when it does not; a retryable status
 * when libcrypto failed. */
jf_status_t jf_guard_check_signature(jf_guard_t *g, const char *tenant, const char *header,
                                     const char *subject, const char *job_id, const void *data,
                                     size_t len, jf_err_t *err);

/* Tenant isolation: a payload whose top-level string field `tenant` names
 * another tenant than the subject's may not speak for it. JF_EDENIED. */
jf_status_t jf_guard_check_isolation(const ProtobufCMessage *payload, const char *tenant,
                                     jf_err_t *err);

/* Sign a child job with the first of tenant's signing keys this worker
 * holds. JF_OK with out[0] == '\0' when the tenant needs no signature;
 * JF_EDENIED when it needs one and no key is here. */
jf_status_t jf_guard_sign(jf_guard_t *g, const char *tenant, const char *subject,
                          const char *id, const void *data, size_t len, char *out, size_t size,
                          jf_err_t *err);

/* How many jobs of tenant may run at once in this worker: the policy's
 * max_in_flight for it, else JF_TENANT_MAX_INFLIGHT; 0 means no limit. */
int jf_guard_tenant_limit(jf_guard_t *g, const char *tenant);

/* Whether any tenant can be limited at all (a policy file, or
 * JF_TENANT_MAX_INFLIGHT below concurrency). */
bool jf_guard_limits(const jf_guard_t *g, int concurrency);

/* Fill hooks->secret and hooks->egress (ctx is the guard). */
void jf_guard_hooks(jf_guard_t *g, jf_job_hooks_t *hooks);

/* For the worker's start-up line: secrets loaded. */
size_t jf_guard_secrets(jf_guard_t *g);

#endif /* JF_APP_WORKER_GUARD_H */
