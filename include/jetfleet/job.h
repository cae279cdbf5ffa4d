/*
 * job.h - what a handler sees of one job, and what it answers.
 *
 * The runtime builds a jf_job_t for every delivery, after the job passed
 * parsing, decoding and authorization. It is borrowed by the handler for
 * the duration of the call and must not be kept afterwards. Every string
 * returned by an accessor lives as long as the job.
 */
#ifndef JETFLEET_JOB_H
#define JETFLEET_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jetfleet/arena.h>
#include <jetfleet/registry.h>
#include <jetfleet/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jf_job jf_job_t;

typedef enum {
    JF_LOG_DEBUG = 0,
    JF_LOG_INFO,
    JF_LOG_WARN,
    JF_LOG_ERROR,
} jf_log_level_t;

/* The three answers a handler can give. */
typedef enum {
    JF_JOB_OK = 0,   /* done: the runtime records success and acks */
    JF_JOB_RETRY,    /* transient failure: NAK with the policy's delay */
    JF_JOB_FAIL,     /* terminal failure: never retried */
} jf_outcome_t;

typedef struct jf_result {
    jf_outcome_t outcome;
    jf_status_t  code;            /* why, for RETRY and FAIL */
    uint32_t     retry_after_ms;  /* RETRY only: a hint, 0 for none; the
                                     runtime waits at least this long */
    const char  *reason;          /* static or arena-allocated; may be NULL */
} jf_result_t;

/* The job id (Nats-Msg-Id). It is also the idempotency key: pass it to
 * every downstream system that can deduplicate. */
const char *jf_job_id(const jf_job_t *job);

/* The tenant token of the subject, already authorized. */
const char *jf_job_tenant(const jf_job_t *job);

/* "<module>.<action>". */
const char *jf_job_type(const jf_job_t *job);

/* 1 on the first run, 2 on the first retry, and so on. */
uint32_t jf_job_attempt(const jf_job_t *job);

/* Wall-clock deadline of this run, in Unix milliseconds. */
int64_t jf_job_deadline_ms(const jf_job_t *job);

/* True when the handler should stop early: the deadline passed or the
 * worker is shutting down. Long handlers poll it between steps. */
bool jf_job_cancelled(const jf_job_t *job);

/* W3C trace id (32 lowercase hex digits), taken from the job's traceparent
 * header or freshly generated. */
const char *jf_job_trace_id(const jf_job_t *job);

/* The value of a job header, or NULL. */
const char *jf_job_header(const jf_job_t *job, const char *name);

/* Memory freed by the runtime after the job is acknowledged. */
jf_arena_t *jf_job_arena(jf_job_t *job);

/* The service registry, for jf_registry_get(). */
const jf_registry_t *jf_job_registry(const jf_job_t *job);

/* The pointer the job type's module stored with jf_module_set_state(). */
void *jf_job_module_state(const jf_job_t *job);

/* A secret of this job's tenant: "<kind>/<tenant>" from JF_SECRETS_DIR,
 * e.g. kind "webhooks" gives the tenant's webhook signing secret(s). A job
 * can only read its own tenant's secrets. On success *ret_ptr is a copy in
 * the job's arena (valid for the job, wipe it with explicit_bzero when
 * done) and *ret_len its length; JF_ENOTFOUND when there is none. */
jf_status_t jf_job_tenant_secret(jf_job_t *job, const char *kind, const void **ret_ptr,
                                 size_t *ret_len);

/* The runtime's egress guard: may this job connect to addr? Loopback,
 * private, link-local (cloud metadata), CGNAT, multicast and unspecified
 * addresses are refused unless the tenant policy's egress_allow covers
 * them. Check the address actually being connected to (after DNS), e.g.
 * from curl's CURLOPT_OPENSOCKETFUNCTION. When false, why says why. */
bool jf_job_egress_allowed(const jf_job_t *job, const struct sockaddr *addr, char *why,
                           size_t why_size);

/* Log through the runtime's logger; job id, tenant, type, attempt and
 * trace id are attached to the line. */
void jf_job_log(const jf_job_t *job, jf_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- building results ---------------------------------------------------- */

static inline jf_result_t jf_ok(void)
{
    jf_result_t r = { JF_JOB_OK, JF_OK, 0, NULL };
    return r;
}

static inline jf_result_t jf_retry(jf_status_t code, uint32_t retry_after_ms,
                                   const char *reason)
{
    jf_result_t r = { JF_JOB_RETRY, code, retry_after_ms, reason };
    return r;
}

static inline jf_result_t jf_fail(jf_status_t code, const char *reason)
{
    jf_result_t r = { JF_JOB_FAIL, code, 0, reason };
    return r;
}

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_JOB_H */
