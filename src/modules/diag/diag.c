/*
 * diag.c - the diag module: job types for tests, benchmarks and canaries.
 *
 * The handlers are deliberately trivial, but they exercise every answer a
 * handler can give (OK, RETRY with a hint, FAIL) and the cancellation
 * contract (jf_job_cancelled), so the runtime's paths can be driven from
 * outside with plain `nats pub`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jetfleet/jetfleet.h>
#include <jetfleet/diag/v1/diag.pb-c.h>

#include "modules/diag/contract.h"

static jf_result_t diag_noop(jf_job_t *job, const ProtobufCMessage *payload)
{
    (void)job;
    (void)payload;
    return jf_ok();
}

/* Sleep in slices so that shutdown and the deadline are noticed. */
static jf_result_t diag_sleep_ms(jf_job_t *job, uint32_t ms)
{
    uint32_t left = ms;

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

static jf_result_t diag_sleep(jf_job_t *job, const ProtobufCMessage *payload)
{
    return diag_sleep_ms(job, ((const Jetfleet__Diag__V1__Sleep *)payload)->ms);
}

static jf_result_t diag_fail(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Diag__V1__Fail *p = (const Jetfleet__Diag__V1__Fail *)payload;
    const char *msg = p->message && p->message[0] ? p->message : "diag.fail asked to fail";

    if (p->succeed_on_attempt > 0 && jf_job_attempt(job) >= p->succeed_on_attempt)
        return jf_ok();
    if (p->fail_until_ms > 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        if ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 >= p->fail_until_ms)
            return jf_ok();
    }
    msg = jf_arena_strdup(jf_job_arena(job), msg);
    if (p->retryable)
        return jf_retry(JF_EAGAIN, p->retry_after_ms, msg);
    return jf_fail(JF_EINVAL, msg);
}

/* The module's state: the effects file, opened once in init. */
typedef struct diag_state {
    int effects_fd;   /* -1: no file configured */
} diag_state_t;

static jf_result_t diag_effect(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Diag__V1__Effect *p = (const Jetfleet__Diag__V1__Effect *)payload;
    const diag_state_t *st = jf_job_module_state(job);
    char            line[200];
    int             n;
    ssize_t         w;
    struct timespec now;

    if (p->sleep_ms > 0) {
        jf_result_t r = diag_sleep_ms(job, p->sleep_ms);
        if (r.outcome != JF_JOB_OK)
            return r;
    }
    if (st == NULL || st->effects_fd < 0)
        return jf_ok();
    /* One write(2) of a short line to an O_APPEND file is atomic, so lines
     * from several workers never interleave, and the line survives the
     * worker dying right after it. The last field, the wall clock in Unix
     * ms, lets a chaos run place the effect among the run's log lines and
     * the faults it injected. At most 128 + 3 * 20 + 4 bytes: it fits. */
    clock_gettime(CLOCK_REALTIME, &now);
    n = snprintf(line, sizeof(line), "%s %u %d %lld\n", jf_job_id(job), jf_job_attempt(job),
                 (int)getpid(),
                 (long long)now.tv_sec * 1000 + (long long)(now.tv_nsec / 1000000));
    w = write(st->effects_fd, line, (size_t)n);
    if (w != n)
        return jf_retry(JF_EIO, 0, jf_arena_sprintf(jf_job_arena(job), "effects file: %s",
                                                    strerror(errno)));
    return jf_ok();
}

static jf_status_t diag_init(jf_module_ctx_t *mctx)
{
    const char   *dir = jf_module_setting(mctx, "JF_DIAG_EFFECTS_DIR");
    diag_state_t *st = calloc(1, sizeof(*st));
    char          path[4096];

    if (st == NULL)
        return JF_ENOMEM;
    st->effects_fd = -1;
    if (dir != NULL && dir[0] != '\0') {
        snprintf(path, sizeof(path), "%s/effects.log", dir);
        st->effects_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (st->effects_fd < 0) {
            jf_module_log(mctx, JF_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
            free(st);
            return JF_ECONFIG;
        }
    }
    jf_module_set_state(mctx, st);
    return JF_OK;
}

static void diag_shutdown(jf_module_ctx_t *mctx)
{
    diag_state_t *st = jf_module_state(mctx);

    if (st != NULL && st->effects_fd >= 0)
        close(st->effects_fd);
    free(st);
    jf_module_set_state(mctx, NULL);
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
        .action = "effect",
        .summary = "appends one line per run to $JF_DIAG_EFFECTS_DIR/effects.log",
        .payload = &jetfleet__diag__v1__effect__descriptor,
        .retry = JF_RETRY_DEFAULT,
        .deadline_ms = 60000,
        .handler = diag_effect,
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
    .init = diag_init,
    .shutdown = diag_shutdown,
};
