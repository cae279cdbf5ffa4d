/*
 * pipeline.c - the path of one job through the worker, top to bottom
 * (see pipeline.h and docs/workers/job-flow.md, which names these
 * functions step by step).
 *
 *   1 deliver       parse and check what needs no ledger: subject, ids,
 *                   size, type, authorization, signature, schedule header
 *   2 read_record   ask the ledger for the job's record
 *   3 on_record     ... and admit: run it, or leave at once (duplicate, not
 *                   due, no attempt left)
 *   4 run           a handler thread: lease, decode, isolation, handler,
 *                   and the way out of the run
 *   5 leave         dead letter (when the way has one), ledger write (when
 *                   it has one), then settle: ack or NAK, log, events, metrics
 *
 * Steps 2, 3 and 5 wait for nothing: each request carries a callback and
 * the job stays in the table until it comes. A job whose ledger or DLQ
 * fails waits (WAITING) and jf_pipeline_tick() tries again.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>
#include <protobuf-c/protobuf-c.h>

#include "app/deadletter.h"
#include "app/worker/decide.h"
#include "app/worker/events.h"
#include "app/worker/fairq.h"
#include "app/worker/guard.h"
#include "app/worker/job.h"
#include "app/worker/pipeline.h"
#include "app/worker/worker.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/jobctx.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/pbjson.h"
#include "core/pull.h"
#include "core/registry_impl.h"
#include "core/timefmt.h"
#include "shared/ids.h"

#define ST(s) JETFLEET__V1__JOB_STATE__JOB_STATE_##s

/* Waiting for the ledger or the DLQ: 1 s, 2 s, 4 s ... at most 30 s
 * between tries, half of it random. */
#define WAIT_FIRST_MS 1000
#define WAIT_MAX_MS   30000
/* A missing ledger bucket is asked after this often. */
#define PROBE_EVERY_MS 2000

struct jf_pipeline {
    jf_worker_t       *w;
    const jf_config_t *cfg;
    jf_jobs_t         *jobs;
    jf_fairq_t        *q;
    pthread_t         *handlers;
    int                nhandlers;
    atomic_bool        closed;        /* shutdown: nothing starts any more */
    atomic_int         running;       /* handlers inside a job */

    /* the ledger's state, under lmu */
    pthread_mutex_t    lmu;
    jf_ledger_state_t  lstate;
    char               lwhy[256];
    bool               probing;
    int64_t            next_probe;
    jf_ledger_op_t     probe;
    atomic_bool        lmissing;      /* read without the lock on the job path */
    jf_nats_sub_t     *advisories;    /* the ledger stream deleted or created */
};

static void read_record(jf_pipeline_t *p, jf_wjob_t *job);
static void leave(jf_pipeline_t *p, jf_wjob_t *job);
static void dead_letter(jf_pipeline_t *p, jf_wjob_t *job);
static void record(jf_pipeline_t *p, jf_wjob_t *job);
static void settle(jf_pipeline_t *p, jf_wjob_t *job);
static void wait_for(jf_pipeline_t *p, jf_wjob_t *job, jf_step_t step);
static void ledger_answered(jf_pipeline_t *p);
static void ledger_trouble(jf_pipeline_t *p, jf_status_t st, const char *why);

/* ---- the job's log line, events and metrics -------------------------------------- */

static void log_job(const jf_pipeline_t *p, const jf_wjob_t *job, jf_log_level_t level,
                    const jf_log_field_t *extra, size_t nextra, const char *msg)
{
    jf_log_field_t f[20];
    size_t         n = 0;

    if (!jf_log_enabled(level))
        return;
    f[n++] = JF_LS("job_id", job->job_id ? job->job_id : "");
    f[n++] = JF_LS("tenant", job->have_subj ? job->subj.tenant : "");
    f[n++] = JF_LS("type", job->have_subj ? job->subj.type : "");
    f[n++] = JF_LN("attempt", job->attempt);
    f[n++] = JF_LN("delivery", job->meta->delivered);
    f[n++] = JF_LN("stream_seq", job->meta->stream_seq);
    f[n++] = JF_LS("subject", jf_jsmsg_subject(job->msg));
    f[n++] = JF_LS("worker", p->w->worker_id);
    if (job->trace_id[0])
        f[n++] = JF_LS("trace_id", job->trace_id);
    for (size_t i = 0; i < nextra && n < 20; i++)
        f[n++] = extra[i];
    jf_log_fields(level, f, n, "%s", msg);
}

/* An event of job; with during, one about a job still in the worker
 * (`received`, `started`) from a thread that does not own it: then only
 * what is fixed by the job's phase is read, never its run's end. */
static void emit_at(const jf_pipeline_t *p, const jf_wjob_t *job, Jetfleet__V1__EventKind kind,
                    const jf_event_extra_t *x, bool during)
{
    jf_event_src_t src = {
        .job_id = job->job_id,
        .tenant = job->have_subj ? job->subj.tenant : NULL,
        .type = job->have_subj ? job->subj.type : NULL,
        .stream = job->meta->stream,
        .stream_seq = job->meta->stream_seq,
        .enqueued_ms = job->meta->timestamp_ns / 1000000,
        .attempt = job->attempt,
        .trace_id = job->trace_id,
        .received_ms = job->received_ms,
    };

    if (!during || kind == JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED)
        src.started_ms = job->started_ms;   /* written before the phase RUNNING began */
    if (!during) {
        src.ended_ms = job->ended_ms;
        src.run_us = job->run_us;
    }
    jf_events_emit(&p->w->events, &src, kind, x);
}

static void emit(const jf_pipeline_t *p, const jf_wjob_t *job, Jetfleet__V1__EventKind kind,
                 const jf_event_extra_t *x)
{
    emit_at(p, job, kind, x, false);
}

/* ---- 1. a delivery arrives -------------------------------------------------------- */

typedef enum { CT_JSON, CT_PROTOBUF, CT_UNKNOWN } content_type_t;

static content_type_t content_type(const char *ct)
{
    size_t len;

    if (ct == NULL || ct[0] == '\0')
        return CT_JSON;   /* `nats pub` sets none: JSON is the CLI's form */
    len = strcspn(ct, ";");   /* ignore parameters such as charset */
    while (len > 0 && ct[len - 1] == ' ')
        len--;
    if (len == 16 && strncasecmp(ct, "application/json", len) == 0)
        return CT_JSON;
    if ((len == 20 && strncasecmp(ct, "application/protobuf", len) == 0) ||
        (len == 22 && strncasecmp(ct, "application/x-protobuf", len) == 0))
        return CT_PROTOBUF;
    return CT_UNKNOWN;
}

/* Bad input: the job leaves as REJECTED with this reason. */
static bool reject(jf_wjob_t *job, jf_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool reject(jf_wjob_t *job, jf_status_t code, const char *fmt, ...)
{
    char    reason[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    job->way = JF_WAY_REJECTED;
    job->code = jf_status_name(code);
    job->error = jf_arena_strdup(job->arena, reason);
    if (job->error == NULL)
        job->error = "out of memory";
    return false;
}

/* Steps 1-6 of job-flow.md: what is checked before the ledger, cheapest
 * first, so that bad input costs no ledger read and a forbidden tenant's
 * payload is never parsed. false when the job leaves: rejected (way set),
 * or given back for a transient failure (way JF_WAY_MAX_, already done). */
static bool parse(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_config_t *cfg = p->cfg;
    jf_err_t           err = { 0 };
    const char        *v;
    size_t             size;
    jf_status_t        st;

    /* 1. subject */
    if (jf_subject_parse(jf_jsmsg_subject(job->msg), cfg->names.jobs_prefix, &job->subj,
                         &err) != JF_OK)
        return reject(job, JF_EINVAL, "bad subject: %s", jf_err_msg(&err));
    job->have_subj = true;

    /* 2. job id: Nats-Msg-Id, and Jf-Job-Id on a replay */
    v = jf_jsmsg_header(job->msg, "Nats-Msg-Id");
    if (jf_job_id_check(v, &err) != JF_OK)
        return reject(job, JF_EINVAL, "%s", jf_err_msg(&err));
    job->msg_id = job->job_id = v;
    v = jf_jsmsg_header(job->msg, JF_HDR_JOB_ID);
    if (v != NULL) {
        if (jf_job_id_check(v, &err) != JF_OK)
            return reject(job, JF_EINVAL, "%s: %s", JF_HDR_JOB_ID, jf_err_msg(&err));
        job->job_id = v;
    }
    if (jf_trace_id_parse(jf_jsmsg_header(job->msg, "traceparent"), job->trace_id) != JF_OK)
        jf_trace_id_new(job->trace_id);

    /* 3. size (the stream's max_msg_size also guards this at publish) */
    size = jf_jsmsg_size(job->msg);
    if (size > (size_t)cfg->max_payload)
        return reject(job, JF_ETOOBIG, "message is %zu bytes, JF_MAX_PAYLOAD is %" PRId64,
                      size, cfg->max_payload);

    /* 4. type */
    job->jt = jf_registry_find_type(p->w->reg, job->subj.type, NULL, &job->mstate, &job->view);
    if (job->jt == NULL)
        return reject(job, JF_ENOTFOUND, "unknown job type '%s' (no module '%s' with action "
                      "'%s')", job->subj.type, job->subj.module, job->subj.action);

    /* 5. authorization: the allow-list, the tenant policy, the signature */
    st = jf_guard_authorize(p->w->guard, job->subj.tenant, job->subj.type, job->jt,
                            jf_jsmsg_len(job->msg), &err);
    if (st == JF_OK)
        st = jf_guard_check_signature(p->w->guard, job->subj.tenant,
                                      jf_jsmsg_header(job->msg, JF_HDR_SIGNATURE),
                                      jf_jsmsg_subject(job->msg), job->job_id,
                                      jf_jsmsg_data(job->msg), jf_jsmsg_len(job->msg), &err);
    if (st != JF_OK && !jf_status_retryable(st))
        return reject(job, st, "%s", jf_err_msg(&err));
    if (st != JF_OK) {
        /* libcrypto failed: not the job's fault; try it again later. */
        jf_log_field_t f[2] = { JF_LS("error", jf_err_msg(&err)), JF_LN("next_delay_ms", 2000) };
        jf_jobs_ack(p->jobs, job, JF_ACK_NAK_DELAY, 2000, NULL);
        log_job(p, job, JF_LOG_ERROR, f, 2, "signature check failed in libcrypto; will retry");
        return false;
    }

    /* 6. schedule header */
    v = jf_jsmsg_header(job->msg, JF_HDR_NOT_BEFORE);
    if (v != NULL && jf_time_parse_ms(v, &job->not_before_ms, &err) != JF_OK)
        return reject(job, JF_EINVAL, "%s: %s", JF_HDR_NOT_BEFORE, jf_err_msg(&err));

    if (p->w->ledger != NULL && jf_ledger_key(job->key, sizeof(job->key), job->subj.tenant,
                                              job->subj.type, job->job_id, &err) != JF_OK)
        return reject(job, JF_ETOOBIG, "%s", jf_err_msg(&err));
    return true;
}

static void admit(jf_pipeline_t *p, jf_wjob_t *job);

void jf_pipeline_deliver(jf_jsmsg_t *msg, void *arg)
{
    jf_pipeline_t *p = arg;
    jf_wjob_t     *job = jf_jobs_take(p->jobs, msg);

    if (job == NULL) {
        /* Only when the server overshoots a pull after a restart: give the
         * job back at once, to this worker or another. */
        jf_jsmsg_nak(msg, 0, NULL);
        jf_jsmsg_destroy(msg);
        jf_pull_done(p->w->pull, 1);
        return;
    }
    job->owner = p;
    job->received_ms = jf_clock_now_ms();
    if (jf_jsmsg_stale(msg)) {
        /* It came right after a stall of the server (or of this worker):
         * it may be another worker's by now. Nothing is sent for it. */
        job->job_id = jf_jsmsg_header(msg, "Nats-Msg-Id");
        job->way = JF_WAY_EXPIRED;
        leave(p, job);
        return;
    }
    if (!parse(p, job)) {
        if (job->way == JF_WAY_REJECTED) {
            leave(p, job);
        } else {
            jf_jobs_release(p->jobs, job);
            jf_pull_done(p->w->pull, 1);
        }
        return;
    }
    jf_jobs_set_phase(p->jobs, job, JF_PHASE_READING);
    if (p->w->ledger == NULL)
        admit(p, job);   /* dedupe-only mode: no record to read */
    else
        read_record(p, job);
}

/* ---- 2. the ledger record --------------------------------------------------------- */

static void on_record(jf_ledger_op_t *op, jf_status_t st);

static void read_record(jf_pipeline_t *p, jf_wjob_t *job)
{
    jf_err_t err = { 0 };

    if (atomic_load(&p->lmissing)) {
        wait_for(p, job, JF_STEP_READ);   /* no use asking: the tick probes */
        return;
    }
    jf_jobs_set_phase(p->jobs, job, JF_PHASE_READING);
    job->lop.done = on_record;
    if (jf_ledger_read(p->w->ledger, &job->lop, job->key, &err) != JF_OK) {
        ledger_trouble(p, err.code, jf_err_msg(&err));
        wait_for(p, job, JF_STEP_READ);
    }
}

/* The ledger pipe's thread. */
static void on_record(jf_ledger_op_t *op, jf_status_t st)
{
    jf_wjob_t     *job = (jf_wjob_t *)((char *)op - offsetof(jf_wjob_t, lop));
    jf_pipeline_t *p = job->owner;

    switch (st) {
    case JF_OK:
    case JF_ENOTFOUND:
    case JF_EDECODE:   /* not a JobRecord: treated as none, and overwritten */
        if (st == JF_EDECODE)
            log_job(p, job, JF_LOG_WARN, (jf_log_field_t[]){ JF_LS("error", op->why) }, 1,
                    "ledger record unreadable; the job runs as if it had none");
        jf_job_record_free(job->rec);
        job->rec = op->rec;
        job->rev = op->rev;
        job->have_read = true;
        ledger_answered(p);
        admit(p, job);
        return;
    case JF_ESTATE:    /* the ledger is closing: shutdown */
        wait_for(p, job, JF_STEP_READ);
        return;
    default:
        ledger_trouble(p, st, op->why);
        wait_for(p, job, JF_STEP_READ);
        return;
    }
}

/* ---- 3. admission ------------------------------------------------------------------ */

static void admit(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_job_record_t *r = job->rec;
    jf_admit_facts_t       f = {
        .ledger_off = p->w->ledger == NULL,
        .have_record = r != NULL,
        .state = r ? r->state : ST(UNSPECIFIED),
        .attempts = r ? r->attempts : 0,
        .free = r ? r->free_deliveries : 0,
        .same_message = r != NULL && r->stream_seq == job->meta->stream_seq,
        .replay = job->job_id != job->msg_id,
        .delivered = job->meta->delivered,
        .max_attempts = job->jt->retry.max_attempts,
        .not_before_ms = job->not_before_ms,
        .now_ms = jf_clock_now_ms(),
    };
    jf_admission_t a = jf_decide_admit(&f);

    job->attempt = a.attempt;
    job->delay_ms = a.delay_ms;
    if (a.way == JF_WAY_MAX_ && atomic_load(&p->closed))
        a.way = JF_WAY_RETURNED;   /* shutting down: it does not start here */
    if (a.way != JF_WAY_MAX_) {
        job->way = a.way;
        if (a.way == JF_WAY_UNANSWERED) {
            job->code = jf_status_name(JF_ETIMEOUT);
            job->error = r != NULL && r->state == ST(FAILED) && r->attempts >= f.max_attempts
                ? jf_arena_sprintf(job->arena, "retries exhausted after %u attempts: %s",
                                   r->attempts, r->last_error && r->last_error[0]
                                                    ? r->last_error : "no error recorded")
                : jf_arena_sprintf(job->arena, "retries exhausted after %u attempts; the last "
                                   "ended without an answer (worker died or timed out): %s",
                                   f.max_attempts, r && r->last_error && r->last_error[0]
                                                       ? r->last_error : "no error recorded");
            job->attempt = f.max_attempts;
        }
        leave(p, job);
        return;
    }
    jf_jobs_set_phase(p->jobs, job, JF_PHASE_QUEUED);
    if (!jf_fairq_push(p->q, job, job->subj.tenant)) {
        job->way = JF_WAY_RETURNED;   /* closed meanwhile */
        leave(p, job);
    }
}

/* ---- 4. run: a handler thread ------------------------------------------------------ */

static const char *header_of(const void *src, const char *name)
{
    return jf_jsmsg_header(src, name);
}

/* Decode the payload and check that it speaks for its own tenant. */
static bool decode(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_config_t *cfg = p->cfg;
    const char        *ct = jf_jsmsg_header(job->msg, "Content-Type");
    ProtobufCMessage  *payload = NULL;
    jf_err_t           err = { 0 };

    switch (content_type(ct)) {
    case CT_JSON: {
        jf_pbjson_limits_t lim = { (size_t)cfg->max_payload, (int)cfg->json_max_depth };
        if (jf_pbjson_decode(job->jt->payload, jf_jsmsg_data(job->msg), jf_jsmsg_len(job->msg),
                             &lim, &payload, &err) != JF_OK)
            return reject(job, JF_EDECODE, "payload is not a valid %s in JSON: %s",
                          job->jt->payload->name, jf_err_msg(&err));
        break;
    }
    case CT_PROTOBUF:
        payload = protobuf_c_message_unpack(job->jt->payload, NULL, jf_jsmsg_len(job->msg),
                                            (const uint8_t *)jf_jsmsg_data(job->msg));
        if (payload == NULL)
            return reject(job, JF_EDECODE, "payload is not a valid binary %s",
                          job->jt->payload->name);
        break;
    case CT_UNKNOWN:
        return reject(job, JF_EDECODE, "unsupported Content-Type '%.100s'; use "
                      "application/json or application/protobuf", ct);
    }
    job->payload = payload;
    if (jf_guard_check_isolation(payload, job->subj.tenant, &err) != JF_OK)
        return reject(job, JF_EDENIED, "%s", jf_err_msg(&err));
    return true;
}

static void run(jf_pipeline_t *p, jf_wjob_t *job)
{
    jf_worker_t *w = p->w;
    int64_t      deadline = job->jt->deadline_ms ? job->jt->deadline_ms : p->cfg->job_deadline;
    jf_result_t  res;
    bool         overrun;

    job->counted = true;   /* jf_fairq_done() when it leaves */
    if (!jf_jobs_lease_held(p->jobs, job)) {
        /* Frozen or cut off for longer than its lease: the server may have
         * given the job to another worker, and its ledger answer may be
         * stale. It does not start; an ack would reach that other
         * worker's delivery, so none is sent. */
        job->way = JF_WAY_EXPIRED;
        leave(p, job);
        return;
    }
    if (!decode(p, job)) {
        leave(p, job);
        return;
    }
    job->started_mono = jf_clock_mono_ms();
    job->deadline_mono = job->started_mono + deadline;
    job->started_ms = jf_clock_now_ms();
    {
        struct jf_job ctx = {
            .id = job->job_id,
            .tenant = job->subj.tenant,
            .type = job->subj.type,
            .attempt = job->attempt,
            .deadline_ms = job->started_ms + deadline,
            .deadline_mono_ms = job->deadline_mono,
            .arena = job->arena,
            .registry = job->view,   /* the module's view: its declared contracts only */
            .module_state = job->mstate,
            .shutting_down = &w->cancel,
            .header = header_of,
            .header_src = job->msg,
            .hooks = &w->hooks,
        };
        int64_t t0;

        memcpy(ctx.trace_id, job->trace_id, sizeof(ctx.trace_id));
        jf_jobs_set_phase(p->jobs, job, JF_PHASE_RUNNING);
        log_job(p, job, JF_LOG_DEBUG, NULL, 0, "job started");
        if (p->cfg->started_event_after == 0)   /* every run: said here, not by the tick */
            emit(p, job, JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED, NULL);
        t0 = jf_clock_mono_us();
        res = job->jt->handler(&ctx, job->payload);
        job->run_us = jf_clock_mono_us() - t0;
    }
    job->ended_ms = jf_clock_now_ms();
    overrun = jf_clock_mono_ms() >= job->deadline_mono;   /* as jf_job_cancelled() */
    {
        jf_finish_facts_t f = {
            .outcome = res.outcome,
            .attempt = job->attempt,
            .max_attempts = job->jt->retry.max_attempts,
            .overrun = overrun,
            .cancelled = atomic_load(&w->cancel),
        };
        const char *why = res.reason ? res.reason : jf_status_str(res.code);

        job->way = jf_decide_finish(&f);
        if (job->way != JF_WAY_SUCCEEDED) {
            jf_status_t code = res.outcome == JF_JOB_OK ? JF_ETIMEOUT : res.code;
            if (overrun && res.outcome != JF_JOB_OK && !f.cancelled) {
                code = JF_ETIMEOUT;
                why = jf_arena_sprintf(job->arena, "deadline of %" PRId64 " ms exceeded: %s",
                                       deadline, why);
            }
            if (job->way == JF_WAY_EXHAUSTED)
                why = jf_arena_sprintf(job->arena, "retries exhausted after %u attempts: %s",
                                       job->attempt, why);
            if (job->way == JF_WAY_INTERRUPTED) {
                code = JF_EUNAVAILABLE;
                why = "interrupted by worker shutdown";
            }
            job->code = jf_status_name(code);
            job->error = why ? why : "out of memory";
        }
        if (job->way == JF_WAY_RETRY)
            job->delay_ms = jf_backoff_delay_ms(&job->jt->retry, job->attempt,
                                                res.retry_after_ms);
        if (overrun)
            log_job(p, job, JF_LOG_WARN, NULL, 0, "job finished after its deadline");
    }
    leave(p, job);
}

static void *handler_main(void *arg)
{
    jf_pipeline_t *p = arg;
    jf_wjob_t     *job;

    while ((job = jf_fairq_take(p->q)) != NULL) {
        atomic_fetch_add(&p->running, 1);
        run(p, job);
        atomic_fetch_sub(&p->running, 1);
    }
    return NULL;
}

/* ---- 5. the way out ---------------------------------------------------------------- */

/* Carry out job->way: dead letter, ledger write, settle, each when the way
 * has it, each step started by the answer of the one before. */
static void leave(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_way_info_t *info = jf_way_info(job->way);

    jf_jobs_set_phase(p->jobs, job, JF_PHASE_FINISHING);
    if (info->dead_letter != NULL)
        dead_letter(p, job);
    else
        record(p, job);
}

static void on_dead_lettered(jf_copy_op_t *op, jf_status_t st);

static void dead_letter(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_way_info_t *info = jf_way_info(job->way);
    jf_deadletter_t      dl = {
        .reason = info->dead_letter,
        .job_id = job->job_id,
        .tenant = job->have_subj ? job->subj.tenant : NULL,
        .type = job->have_subj ? job->subj.type : NULL,
        .attempts = job->way == JF_WAY_REJECTED ? 0 : job->attempt,
        .error_code = job->code,
        .last_error = job->error,
        .worker = p->w->worker_id,
        .original_subject = jf_jsmsg_subject(job->msg),
        .original_stream = job->meta->stream,
        .original_seq = job->meta->stream_seq,
        .dlq_prefix = p->cfg->names.dlq_prefix,
    };
    jf_err_t err = { 0 };

    job->dlq.done = on_dead_lettered;
    if (jf_deadletter_delivered_async(p->w->pipe, &job->dlq, job->msg, &dl, &err) != JF_OK) {
        snprintf(job->dlq.why, sizeof(job->dlq.why), "%s", jf_err_msg(&err));
        on_dead_lettered(&job->dlq, err.code);
    }
}

/* The jobs pipe's thread (or the caller's, when sending failed). */
static void on_dead_lettered(jf_copy_op_t *op, jf_status_t st)
{
    jf_wjob_t     *job = (jf_wjob_t *)((char *)op - offsetof(jf_wjob_t, dlq));
    jf_pipeline_t *p = job->owner;

    if (st == JF_OK) {
        record(p, job);
        return;
    }
    if (job->retries == 0) {
        jf_log_field_t f[2] = { JF_LS("error", op->why),
                                JF_LS("dead_letter", p->cfg->names.dlq_stream) };
        log_job(p, job, JF_LOG_ERROR, f, 2, "dead-lettering failed; the job waits and it is "
                "tried again");
    }
    wait_for(p, job, JF_STEP_DEAD_LETTER);
}

static void on_written(jf_ledger_op_t *op, jf_status_t st);

/* The record a way writes, built on what was read (strings borrowed). */
static void build_record(jf_pipeline_t *p, jf_wjob_t *job, jf_rec_t kind)
{
    const jf_job_record_t *r = job->rec;
    jf_job_record_t       *o = &job->out;
    bool                   same = r != NULL && r->stream_seq == job->meta->stream_seq;

    jetfleet__v1__job_record__init(o);
    o->job_id = (char *)job->job_id;
    o->tenant = job->subj.tenant;
    o->type = job->subj.type;
    o->worker = p->w->worker_id;
    o->stream_seq = job->meta->stream_seq;
    o->replays = r ? r->replays : 0;
    o->free_deliveries = same ? r->free_deliveries : 0;
    o->first_started_ms = r && r->first_started_ms ? r->first_started_ms : job->started_ms;
    o->last_started_ms = job->started_ms ? job->started_ms : (r ? r->last_started_ms : 0);
    o->attempts = job->attempt;
    o->last_error = (char *)"";
    o->last_error_code = (char *)"";
    switch (kind) {
    case JF_REC_FREE:
        /* Nothing ran: the record keeps what it said, one delivery more free. */
        o->state = r ? r->state : ST(WAITING);
        o->attempts = same ? r->attempts : 0;
        o->free_deliveries++;
        o->finished_ms = r ? r->finished_ms : 0;
        o->first_started_ms = r ? r->first_started_ms : 0;
        o->last_started_ms = r ? r->last_started_ms : 0;
        o->last_error = r && r->last_error ? r->last_error : o->last_error;
        o->last_error_code = r && r->last_error_code ? r->last_error_code : o->last_error_code;
        break;
    case JF_REC_SUCCEEDED:
        o->state = ST(SUCCEEDED);
        o->finished_ms = job->ended_ms;
        break;
    case JF_REC_FAILED:
        o->state = ST(FAILED);
        o->finished_ms = job->ended_ms;
        o->last_error = (char *)(job->error ? job->error : "");
        o->last_error_code = (char *)(job->code ? job->code : "");
        break;
    case JF_REC_DEAD:
        o->state = ST(DEAD);
        o->finished_ms = job->ended_ms ? job->ended_ms : jf_clock_now_ms();
        o->last_error = (char *)(job->error ? job->error : "");
        o->last_error_code = (char *)(job->code ? job->code : "");
        break;
    case JF_REC_NONE:
        break;
    }
}

static void record(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_way_info_t *info = jf_way_info(job->way);
    jf_err_t             err = { 0 };

    /* Bad input has no record; dedupe-only mode has no ledger. */
    if (info->record == JF_REC_NONE || p->w->ledger == NULL || job->key[0] == '\0' ||
        job->jt == NULL) {
        settle(p, job);
        return;
    }
    /* A delivery given back before its record arrived cannot be counted
     * as free: there is no revision to write over. */
    if (info->record == JF_REC_FREE && !job->have_read) {
        settle(p, job);
        return;
    }
    build_record(p, job, info->record);
    job->lop.done = on_written;
    if (jf_ledger_write(p->w->ledger, &job->lop, job->key, &job->out, job->rev, &err) != JF_OK) {
        snprintf(job->lop.kv.why, sizeof(job->lop.kv.why), "%s", jf_err_msg(&err));
        job->lop.why = job->lop.kv.why;
        on_written(&job->lop, err.code == JF_OK ? JF_EIO : err.code);
    }
}

static void on_reread(jf_ledger_op_t *op, jf_status_t st);

/* The ledger pipe's thread (or the caller's, when sending failed). */
static void on_written(jf_ledger_op_t *op, jf_status_t st)
{
    jf_wjob_t           *job = (jf_wjob_t *)((char *)op - offsetof(jf_wjob_t, lop));
    jf_pipeline_t       *p = job->owner;
    const jf_way_info_t *info = jf_way_info(job->way);
    jf_err_t             err = { 0 };

    if (st == JF_OK) {
        job->rev = op->rev;
        ledger_answered(p);
        settle(p, job);
        return;
    }
    if (st == JF_ESTATE) {
        /* Another run wrote the record since it was read: read it again
         * and let the decision see what it says now. */
        ledger_answered(p);
        job->lop.done = on_reread;
        if (jf_ledger_read(p->w->ledger, &job->lop, job->key, &err) != JF_OK)
            wait_for(p, job, JF_STEP_WRITE);
        return;
    }
    ledger_trouble(p, st, op->why);
    if (info->record == JF_REC_SUCCEEDED || info->record == JF_REC_DEAD) {
        /* The ack waits for the record (docs/reliability.md), and the job waits
         * with it, keeping its lease, rather than running again. */
        if (job->retries == 0) {
            jf_log_field_t f[2] = { JF_LS("error", op->why),
                                    JF_LS("outcome", info->outcome) };
            log_job(p, job, JF_LOG_ERROR, f, 2, "the job's ledger record could not be "
                    "written; the job waits and the write is tried again");
        }
        wait_for(p, job, JF_STEP_WRITE);
        return;
    }
    /* A record that only helps (a retry's error, a free delivery): the job
     * goes its way without it. */
    {
        jf_log_field_t f[1] = { JF_LS("error", op->why) };
        log_job(p, job, JF_LOG_WARN, f, 1, info->record == JF_REC_FREE
                ? "ledger write failed; this delivery counts as an attempt"
                : "ledger write failed; the retry goes ahead without its error recorded");
    }
    settle(p, job);
}

/* Is the record just read the one this job tried to write? */
static bool own_write(const jf_pipeline_t *p, const jf_wjob_t *job)
{
    const jf_job_record_t *r = job->rec;

    return r != NULL && r->state == job->out.state && r->attempts == job->out.attempts &&
           r->stream_seq == job->out.stream_seq &&
           r->free_deliveries == job->out.free_deliveries &&
           strcmp(r->worker, p->w->worker_id) == 0;
}

static void on_reread(jf_ledger_op_t *op, jf_status_t st)
{
    jf_wjob_t     *job = (jf_wjob_t *)((char *)op - offsetof(jf_wjob_t, lop));
    jf_pipeline_t *p = job->owner;

    if (st != JF_OK && st != JF_ENOTFOUND && st != JF_EDECODE) {
        ledger_trouble(p, st, op->why);
        wait_for(p, job, JF_STEP_WRITE);
        return;
    }
    jf_job_record_free(job->rec);
    job->rec = op->rec;
    job->rev = op->rev;
    if (own_write(p, job)) {
        /* The earlier try was stored after all (its answer was lost, or
         * came after the timeout): the record is ours. */
        settle(p, job);
        return;
    }
    job->way = jf_decide_conflict(job->way, job->rec != NULL,
                                  job->rec ? job->rec->state : ST(UNSPECIFIED));
    if (job->way == JF_WAY_OVERTAKEN)
        settle(p, job);
    else
        record(p, job);   /* over the new revision */
}

/* The end: acknowledge as the way says, log, emit, count, free. */
static void settle(jf_pipeline_t *p, jf_wjob_t *job)
{
    const jf_way_info_t *info = jf_way_info(job->way);
    jf_err_t             err = { 0 };
    jf_log_field_t       f[8];
    size_t               n = 0;
    jf_event_extra_t     x = { .error_code = job->code, .error_text = job->error };
    bool                 ran = job->started_ms != 0;

    if (jf_jobs_ack(p->jobs, job, info->ack, job->delay_ms, &err) != JF_OK) {
        jf_log_field_t e = JF_LS("error", jf_err_msg(&err));
        /* The server redelivers after AckWait; the job is not lost. */
        log_job(p, job, JF_LOG_WARN, &e, 1, "acknowledgement not sent");
    }
    f[n++] = JF_LS("outcome", info->outcome);
    if (job->code != NULL) {
        f[n++] = JF_LS("error_code", job->code);
        f[n++] = JF_LS("error", job->error ? job->error : "");
    }
    if (info->ack == JF_ACK_NAK_DELAY) {
        f[n++] = JF_LN("next_delay_ms", job->delay_ms);
        x.next_delay_ms = job->delay_ms;
    }
    if (ran)
        f[n++] = JF_LN("duration_us", job->run_us);
    if (info->dead_letter != NULL)
        f[n++] = JF_LS("dead_letter", p->cfg->names.dlq_stream);
    if ((job->way == JF_WAY_DUPLICATE || job->way == JF_WAY_OVERTAKEN) && job->rec != NULL)
        f[n++] = JF_LS("ledger_state", jf_job_state_name(job->rec->state));
    log_job(p, job, info->level, f, n, info->log_msg);
    for (size_t i = 0; i < 2; i++)
        if (info->events[i] != 0)
            emit(p, job, info->events[i], job->code != NULL || x.next_delay_ms ? &x : NULL);
    if (info->counted)
        jf_metrics_job(p->w->metrics, job->have_subj ? job->subj.type : "_invalid",
                       info->outcome, ran ? (double)job->run_us / 1e6 : -1.0);
    if (job->counted)
        jf_fairq_done(p->q, job->subj.tenant);
    jf_jobs_release(p->jobs, job);
    jf_pull_done(p->w->pull, 1);
}

/* ---- waiting for the ledger or the DLQ --------------------------------------------- */

/* NAK job at once and let it go (shutdown, or a job that cannot wait). */
static void give_back_one(jf_pipeline_t *p, jf_wjob_t *job, const char *why)
{
    jf_log_field_t f[2] = { JF_LS("outcome", "returned"), JF_LS("error", why) };

    if (jf_jobs_ack(p->jobs, job, JF_ACK_NAK, 0, NULL) == JF_OK)
        log_job(p, job, JF_LOG_WARN, f, 2, "job returned at shutdown");
    if (job->counted)
        jf_fairq_done(p->q, job->subj.tenant);
    jf_jobs_release(p->jobs, job);
    jf_pull_done(p->w->pull, 1);
}

/* The job waits for step to be tried again: 1 s, 2 s, 4 s ... 30 s, half
 * of it random. Its lease is kept by progress acks meanwhile. */
static void wait_for(jf_pipeline_t *p, jf_wjob_t *job, jf_step_t step)
{
    int      shift = job->retries < 5 ? job->retries : 5;
    uint32_t base = (uint32_t)WAIT_FIRST_MS << shift;

    if (base > WAIT_MAX_MS)
        base = WAIT_MAX_MS;
    if (atomic_load(&p->closed) && step == JF_STEP_READ) {
        /* Shutting down, and it has not started: another worker can have it. */
        give_back_one(p, job, "the ledger did not answer before shutdown");
        return;
    }
    job->step = step;
    job->retries++;
    job->retry_at = jf_clock_mono_ms() + base / 2 + arc4random_uniform(base / 2 + 1);
    jf_jobs_set_phase(p->jobs, job, JF_PHASE_WAITING);
}

/* ---- the ledger's health ------------------------------------------------------------ */

static void set_ledger(jf_pipeline_t *p, jf_ledger_state_t to, const char *why)
{
    jf_ledger_state_t from;
    const char       *bucket = p->cfg->names.ledger_bucket;

    pthread_mutex_lock(&p->lmu);
    from = p->lstate;
    p->lstate = to;
    snprintf(p->lwhy, sizeof(p->lwhy), "%s", why ? why : "");
    atomic_store(&p->lmissing, to == JF_LEDGER_MISSING);
    pthread_mutex_unlock(&p->lmu);
    if (from == to)
        return;
    /* Said once per change, not once per job. */
    if (to == JF_LEDGER_MISSING)
        jf_log_kv(JF_LOG_ERROR, "the ledger's KV bucket does not exist: jobs wait, without "
                  "being charged an attempt, until it does; create it with `jetfleet provision`",
                  JF_LS("bucket", bucket), JF_LS("error", why));
    else if (to == JF_LEDGER_DOWN)
        jf_log_kv(JF_LOG_ERROR, "the ledger is failing: jobs wait for it, without being "
                  "charged an attempt", JF_LS("bucket", bucket), JF_LS("error", why));
    else
        jf_log_kv(JF_LOG_INFO, "the ledger answers again; waiting jobs go on",
                  JF_LS("bucket", bucket));
}

static void ledger_answered(jf_pipeline_t *p)
{
    if (atomic_load(&p->lmissing))
        set_ledger(p, JF_LEDGER_UP, NULL);
    else {
        pthread_mutex_lock(&p->lmu);
        bool down = p->lstate != JF_LEDGER_UP;
        pthread_mutex_unlock(&p->lmu);
        if (down)
            set_ledger(p, JF_LEDGER_UP, NULL);
    }
}

static void on_probe(jf_ledger_op_t *op, jf_status_t st);

/* Ask whether the bucket exists, unless a probe is out. Holds no lock. */
static void probe(jf_pipeline_t *p)
{
    jf_err_t err = { 0 };
    bool     go;

    pthread_mutex_lock(&p->lmu);
    go = !p->probing;
    p->probing = true;
    p->next_probe = jf_clock_mono_ms() + PROBE_EVERY_MS;
    pthread_mutex_unlock(&p->lmu);
    if (!go)
        return;
    p->probe.done = on_probe;
    if (jf_ledger_probe(p->w->ledger, &p->probe, &err) != JF_OK) {
        pthread_mutex_lock(&p->lmu);
        p->probing = false;
        pthread_mutex_unlock(&p->lmu);
    }
}

static void on_probe(jf_ledger_op_t *op, jf_status_t st)
{
    jf_pipeline_t *p = (jf_pipeline_t *)((char *)op - offsetof(jf_pipeline_t, probe));
    char           why[256];

    snprintf(why, sizeof(why), "%s", op->why ? op->why : "");
    pthread_mutex_lock(&p->lmu);
    p->probing = false;
    pthread_mutex_unlock(&p->lmu);
    if (st == JF_ENOTFOUND)
        set_ledger(p, JF_LEDGER_MISSING, why);
    else if (st == JF_OK && atomic_load(&p->lmissing))
        set_ledger(p, JF_LEDGER_UP, NULL);   /* it is back: the reads will tell */
}

static void ledger_trouble(jf_pipeline_t *p, jf_status_t st, const char *why)
{
    bool up;

    (void)st;
    pthread_mutex_lock(&p->lmu);
    up = p->lstate == JF_LEDGER_UP;
    pthread_mutex_unlock(&p->lmu);
    if (up)
        set_ledger(p, JF_LEDGER_DOWN, why);
    /* A read of a deleted bucket gets no answer at all, and a write gets
     * "no responders": only the stream's own API tells them apart from a
     * server that is away. */
    probe(p);
}

/* The server says the ledger's stream was deleted or created. */
static void on_stream_advisory(const char *subject, const char *reply, const char *data,
                               size_t len, void *arg)
{
    jf_pipeline_t *p = arg;

    (void)reply;
    (void)data;
    (void)len;
    if (strstr(subject, ".STREAM.DELETED.") != NULL)
        set_ledger(p, JF_LEDGER_MISSING, "the stream was deleted");
    else
        probe(p);
}

jf_ledger_state_t jf_pipeline_ledger_state(jf_pipeline_t *p, char *why, size_t size)
{
    jf_ledger_state_t st;

    pthread_mutex_lock(&p->lmu);
    st = p->lstate;
    if (why != NULL && size > 0)
        snprintf(why, size, "%s", p->lwhy);
    pthread_mutex_unlock(&p->lmu);
    return st;
}

/* ---- the tick ------------------------------------------------------------------------ */

#define RESUME_MAX 256

typedef struct tick_ctx {
    jf_pipeline_t *p;
    int64_t        now;
    bool           missing;
    jf_wjob_t     *resume[RESUME_MAX];
    int            n;
} tick_ctx_t;

/* Under the table's lock: claim the jobs whose retry is due, and emit the
 * events of jobs held before they start and of long runs. */
static void tick_job(jf_wjob_t *job, void *arg)
{
    tick_ctx_t    *c = arg;
    jf_pipeline_t *p = c->p;

    switch (job->phase) {
    case JF_PHASE_WAITING:
        if (!job->ran && !job->received_sent) {
            job->received_sent = true;   /* held before it starts: the ledger */
            emit_at(p, job, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL, true);
        }
        if (job->retry_at <= c->now && c->n < RESUME_MAX &&
            !(job->step == JF_STEP_READ && c->missing)) {
            job->phase = job->step == JF_STEP_READ ? JF_PHASE_READING : JF_PHASE_FINISHING;
            c->resume[c->n++] = job;
        }
        break;
    case JF_PHASE_QUEUED:
        if (atomic_load(&job->held) && !job->received_sent) {
            job->received_sent = true;   /* held before it starts: its tenant's limit */
            emit_at(p, job, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL, true);
        }
        break;
    case JF_PHASE_RUNNING:
        if (!job->started_sent && p->cfg->started_event_after > 0 &&
            c->now - job->started_mono >= p->cfg->started_event_after) {
            job->started_sent = true;
            emit_at(p, job, JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED, NULL, true);
        }
        break;
    default:
        break;
    }
}

void jf_pipeline_tick(jf_pipeline_t *p, int64_t now)
{
    tick_ctx_t        c = { .p = p, .now = now };
    jf_ledger_state_t ls;
    int64_t           next;

    if (p->w->ledger != NULL) {
        pthread_mutex_lock(&p->lmu);
        ls = p->lstate;
        next = p->next_probe;
        pthread_mutex_unlock(&p->lmu);
        if (ls != JF_LEDGER_UP && now >= next)
            probe(p);
        c.missing = ls == JF_LEDGER_MISSING;
    }
    jf_jobs_each(p->jobs, tick_job, &c);
    for (int i = 0; i < c.n; i++) {
        jf_wjob_t *job = c.resume[i];
        switch (job->step) {
        case JF_STEP_READ:        read_record(p, job); break;
        case JF_STEP_WRITE:       record(p, job); break;
        case JF_STEP_DEAD_LETTER: dead_letter(p, job); break;
        }
    }
}

/* ---- shutdown -------------------------------------------------------------------------- */

static void return_queued(void *item, void *arg)
{
    jf_wjob_t *job = item;

    job->way = JF_WAY_RETURNED;
    leave(arg, job);
}

typedef struct give_ctx {
    jf_pipeline_t *p;
    jf_wjob_t     *mine[RESUME_MAX];
    int            n;
    int            naked;
} give_ctx_t;

/* Under the table's lock: claim the jobs that wait to read the ledger. */
static void claim_unstarted_waiting(jf_wjob_t *job, void *arg)
{
    give_ctx_t *c = arg;

    if (job->phase == JF_PHASE_WAITING && !job->ran && c->n < RESUME_MAX) {
        job->phase = JF_PHASE_FINISHING;
        c->mine[c->n++] = job;
    }
}

void jf_pipeline_close(jf_pipeline_t *p)
{
    give_ctx_t c = { .p = p };
    size_t     n;

    atomic_store(&p->closed, true);
    /* Those waiting for the ledger before they started: another worker,
     * with a ledger that answers, can have them now. */
    jf_jobs_each(p->jobs, claim_unstarted_waiting, &c);
    for (int i = 0; i < c.n; i++)
        give_back_one(p, c.mine[i], "the ledger did not answer before shutdown");
    n = jf_fairq_close(p->q, return_queued, p);
    if (n > 0)
        jf_log_kv(JF_LOG_INFO, "returned queued jobs to the stream", JF_LN("jobs", n));
}

bool jf_pipeline_wait(jf_pipeline_t *p, int64_t budget_ms)
{
    return jf_jobs_wait_empty(p->jobs, jf_clock_mono_ms() + budget_ms);
}


static void give_job(jf_wjob_t *job, void *arg)
{
    give_ctx_t *c = arg;

    if (!jf_jsmsg_acked(job->msg) && jf_jsmsg_nak(job->msg, 0, NULL) == JF_OK)
        c->naked++;
    /* A waiting job has no request out: take it. The others' requests
     * will come back, and their owners finish them (their acks refused). */
    if (job->phase == JF_PHASE_WAITING && c->n < RESUME_MAX) {
        job->phase = JF_PHASE_FINISHING;
        c->mine[c->n++] = job;
    }
}

int jf_pipeline_give_back(jf_pipeline_t *p)
{
    give_ctx_t c = { .p = p };

    jf_jobs_each(p->jobs, give_job, &c);
    for (int i = 0; i < c.n; i++) {
        if (c.mine[i]->counted)
            jf_fairq_done(p->q, c.mine[i]->subj.tenant);
        jf_jobs_release(p->jobs, c.mine[i]);
        jf_pull_done(p->w->pull, 1);
    }
    return c.naked;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int tenant_limit(const char *tenant, void *arg)
{
    return jf_guard_tenant_limit(arg, tenant);
}

static void on_held(void *item, void *arg)
{
    jf_wjob_t *job = item;

    (void)arg;
    atomic_store(&job->held, true);
}

jf_status_t jf_pipeline_create(jf_pipeline_t **out, jf_worker_t *w, jf_err_t *err)
{
    jf_pipeline_t  *p = calloc(1, sizeof(*p));
    jf_fairq_opts_t qo;
    jf_status_t     st;
    char            subject[256];

    if (p == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    p->w = w;
    p->cfg = w->cfg;
    p->jobs = w->jobs;
    pthread_mutex_init(&p->lmu, NULL);
    qo = (jf_fairq_opts_t){
        .capacity = (size_t)jf_jobs_capacity(w->jobs),
        .takers = w->concurrency,
        .tenants = jf_jobs_capacity(w->jobs),
        .limits = jf_guard_limits(w->guard, w->concurrency),
        .limit = tenant_limit,
        .on_held = on_held,
        .arg = w->guard,
    };
    st = jf_fairq_create(&p->q, &qo, err);
    if (st != JF_OK)
        goto fail;
    if (w->ledger != NULL) {
        snprintf(subject, sizeof(subject), "$JS.EVENT.ADVISORY.STREAM.*.KV_%s",
                 w->cfg->names.ledger_bucket);
        st = jf_nats_subscribe(w->nc, subject, NULL, on_stream_advisory, p, &p->advisories,
                               err);
        if (st != JF_OK)
            goto fail;
    }
    p->handlers = calloc((size_t)w->concurrency, sizeof(*p->handlers));
    if (p->handlers == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < w->concurrency; i++) {
        pthread_attr_t attr;
        int            rc;

        /* Handlers get 256 KiB of stack: plenty for C handlers, and it
         * keeps a worker at concurrency 256 small. */
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        rc = pthread_create(&p->handlers[i], &attr, handler_main, p);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            st = jf_err_set(err, JF_ENOMEM, "cannot create handler threads (%d of %d started)",
                            i, w->concurrency);
            goto fail;
        }
        p->nhandlers++;
    }
    *out = p;
    return JF_OK;
fail:
    jf_pipeline_destroy(p);
    return st;
}

bool jf_pipeline_handlers_done(jf_pipeline_t *p)
{
    atomic_store(&p->closed, true);
    jf_fairq_close(p->q, return_queued, p);
    return atomic_load(&p->running) == 0;
}

static void forget(void *item, void *arg)
{
    (void)item;
    (void)arg;
}

void jf_pipeline_destroy(jf_pipeline_t *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->closed, true);
    if (p->q != NULL)
        jf_fairq_close(p->q, forget, NULL);   /* empty: jf_pipeline_close() came first */
    for (int i = 0; i < p->nhandlers; i++)
        pthread_join(p->handlers[i], NULL);
    jf_nats_unsubscribe(p->advisories);
    jf_fairq_destroy(p->q);
    free(p->handlers);
    pthread_mutex_destroy(&p->lmu);
    free(p);
}
