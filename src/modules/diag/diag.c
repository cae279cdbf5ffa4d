/*
 * diag.c - the diag module: job types for tests, benchmarks and canaries.
 *
 * The handlers are deliberately trivial, but they exercise every answer a
 * handler can give (OK, RETRY with a hint, FAIL) and the cancellation
 * contract (jf_job_cancelled), so the runtime's paths can be driven from
 * outside with plain `nats pub`.
 */
#include <stdlib.h>
#include <time.h>

#include <jetfleet/jetfleet.h>
#include <jetfleet/diag/v1/diag.pb-c.h>

#include "modules/diag/contract.h"

static jf_result_t diag_noop(jf_job_t *job, const ProtobufCMessage *payload)
{
    (void)job;
    (void)payload;
    return jf_ok();
}

static jf_result_t diag_sleep(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Diag__V1__Sleep *p = (const Jetfleet__Diag__V1__Sleep *)payload;
    uint32_t left = p->ms;

    /* Sleep in slices so that shutdown and the deadline are noticed. */
    while (left > 0) {
        uint32_t        slice = left < 50 ? left : 50;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)slice * 1000000L };

        if (jf_job_cancelled(job))
            return jf_retry(JF_ETIMEOUT, 0, "sleep interrupted by deadline or shutdown");
        nanosleep(&ts, NULL);
        left -= slice;
    }
    return jf_ok();
}

static jf_result_t diag_fail(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Diag__V1__Fail *p = (const Jetfleet__Diag__V1__Fail *)payload;
    const char *msg = p->message && p->message[0] ? p->message : "diag.fail asked to fail";

    if (p->succeed_on_attempt > 0 && jf_job_attempt(job) >= p->succeed_on_attempt)
        return jf_ok();
    msg = jf_arena_strdup(jf_job_arena(job), msg);
    if (p->retryable)
        return jf_retry(JF_EAGAIN, p->retry_after_ms, msg);
    return jf_fail(JF_EINVAL, msg);
}

static jf_result_t diag_crash(jf_job_t *job, const ProtobufCMessage *payload)
{
    (void)payload;
    jf_job_log(job, JF_LOG_ERROR, "diag.crash: aborting the worker process on purpose");
    abort();
}

static const jf_job_type_t diag_types[] = {
    {
        .action = "noop",
        .summary = "does nothing and succeeds",
        .payload = &jetfleet__diag__v1__noop__descriptor,
        .retry = JF_RETRY_DEFAULT,
        .deadline_ms = 10000,
        .handler = diag_noop,
    },
    {
        .action = "sleep",
        .summary = "sleeps for ms milliseconds",
        .payload = &jetfleet__diag__v1__sleep__descriptor,
        .retry = JF_RETRY_DEFAULT,
        .deadline_ms = 0,   /* the runtime default, JF_JOB_DEADLINE */
        .handler = diag_sleep,
    },
    {
        .action = "fail",
        .summary = "fails, retryable or terminally, with a message",
        .payload = &jetfleet__diag__v1__fail__descriptor,
        .retry = { .max_attempts = 5, .base_delay_ms = 100, .max_delay_ms = 5000,
                   .multiplier = 2 },
        .deadline_ms = 10000,
        .handler = diag_fail,
    },
    {
        .action = "crash",
        .summary = "aborts the worker process (JF_DIAG_UNSAFE=1 only)",
        .payload = &jetfleet__diag__v1__crash__descriptor,
        .retry = { .max_attempts = 1, .base_delay_ms = 0, .max_delay_ms = 0,
                   .multiplier = 1 },
        .deadline_ms = 10000,
        .flags = JF_JOB_TYPE_UNSAFE,
        .handler = diag_crash,
    },
    { 0 },
};

const jf_module_t jf_module_diag = {
    .abi_version = JF_ABI_VERSION,
    .name = "diag",
    .summary = "canary and test job types",
    .job_types = diag_types,
};
