/*
 * decide.c - the worker's decisions and the table of every way out (see
 * decide.h). The rows are docs/workers/job-flow.md's table, in its order.
 */
#include "app/worker/decide.h"

#define EV(k) JETFLEET__V1__EVENT_KIND__EVENT_KIND_##k
#define ST(s) JETFLEET__V1__JOB_STATE__JOB_STATE_##s

/* Longest NAK delay for a job that is not due: a mistyped year brings the
 * job back once a day rather than never. */
#define NOT_DUE_MAX_MS 86400000

static const jf_way_info_t ways[JF_WAY_MAX_] = {
    [JF_WAY_REJECTED] = {
        "rejected", JF_ACK_ACK, "rejected", JF_REC_NONE,
        "job rejected", JF_LOG_ERROR, "rejected", true, { EV(REJECTED), EV(DEAD_LETTERED) } },
    [JF_WAY_NOT_DUE] = {
        "not due", JF_ACK_NAK_DELAY, NULL, JF_REC_FREE,
        "job not due yet", JF_LOG_DEBUG, "scheduled", false, { EV(RECEIVED), 0 } },
    [JF_WAY_DUPLICATE] = {
        "duplicate", JF_ACK_ACK, NULL, JF_REC_NONE,
        "job duplicate", JF_LOG_INFO, "duplicate", true, { EV(DUPLICATE), 0 } },
    [JF_WAY_UNANSWERED] = {
        "no attempt left", JF_ACK_ACK, "exhausted", JF_REC_DEAD,
        "job failed", JF_LOG_ERROR, "exhausted", true, { EV(FAILED), EV(DEAD_LETTERED) } },
    [JF_WAY_EXPIRED] = {
        "lease expired", JF_ACK_NONE, NULL, JF_REC_NONE,
        "job's lease ran out before it started; left to its redelivery", JF_LOG_WARN,
        "expired", true, { 0, 0 } },
    [JF_WAY_RETURNED] = {
        "returned", JF_ACK_NAK, NULL, JF_REC_FREE,
        "job returned before it started", JF_LOG_DEBUG, "returned", false, { 0, 0 } },
    [JF_WAY_SUCCEEDED] = {
        "succeeded", JF_ACK_ACK, NULL, JF_REC_SUCCEEDED,
        "job succeeded", JF_LOG_DEBUG, "succeeded", true, { EV(SUCCEEDED), 0 } },
    [JF_WAY_RETRY] = {
        "retry", JF_ACK_NAK_DELAY, NULL, JF_REC_FAILED,
        "job will be retried", JF_LOG_WARN, "retry_scheduled", true,
        { EV(RETRY_SCHEDULED), 0 } },
    [JF_WAY_EXHAUSTED] = {
        "exhausted", JF_ACK_ACK, "exhausted", JF_REC_DEAD,
        "job failed", JF_LOG_ERROR, "exhausted", true, { EV(FAILED), EV(DEAD_LETTERED) } },
    [JF_WAY_FAILED] = {
        "failed", JF_ACK_ACK, "failed", JF_REC_DEAD,
        "job failed", JF_LOG_ERROR, "failed", true, { EV(FAILED), EV(DEAD_LETTERED) } },
    [JF_WAY_INTERRUPTED] = {
        "interrupted", JF_ACK_NAK, NULL, JF_REC_FAILED,
        "job returned at shutdown", JF_LOG_WARN, "returned", true, { EV(RETRY_SCHEDULED), 0 } },
    [JF_WAY_OVERTAKEN] = {
        "overtaken", JF_ACK_ACK, NULL, JF_REC_NONE,
        "another run of this job recorded its end first; this run's result is dropped",
        JF_LOG_WARN, "duplicate", true, { EV(DUPLICATE), 0 } },
};

const jf_way_info_t *jf_way_info(jf_way_t way)
{
    return (unsigned)way < JF_WAY_MAX_ ? &ways[way] : NULL;
}

jf_admission_t jf_decide_admit(const jf_admit_facts_t *f)
{
    jf_admission_t a = { .way = JF_WAY_MAX_, .attempt = 1, .delay_ms = 0 };
    bool           record = f->have_record && !f->ledger_off;
    uint64_t       free = record && f->same_message ? f->free : 0;
    uint64_t       attempt = f->delivered > free ? f->delivered - free : 1;

    if (record && (f->state == ST(SUCCEEDED) ||
                   /* A dead job is a duplicate, but for a copy `dlq replay`
                    * published (another stored message carrying Jf-Job-Id)
                    * that overtook the replay's reset of the record. */
                   (f->state == ST(DEAD) && !(f->replay && !f->same_message)))) {
        a.way = JF_WAY_DUPLICATE;
        a.attempt = f->attempts;
        return a;
    }
    if (record && f->same_message && attempt <= f->attempts)
        attempt = (uint64_t)f->attempts + 1;
    a.attempt = attempt > UINT32_MAX ? UINT32_MAX : (uint32_t)attempt;
    if (f->not_before_ms > f->now_ms) {
        int64_t wait = f->not_before_ms - f->now_ms;
        a.way = JF_WAY_NOT_DUE;
        a.delay_ms = wait > NOT_DUE_MAX_MS ? NOT_DUE_MAX_MS : (uint32_t)wait;
        /* Not an attempt: the delivery is recorded as free. */
        a.attempt = a.attempt > 1 ? a.attempt - 1 : 0;
        return a;
    }
    if (a.attempt > f->max_attempts)
        a.way = JF_WAY_UNANSWERED;
    return a;
}

jf_way_t jf_decide_finish(const jf_finish_facts_t *f)
{
    jf_outcome_t outcome = f->outcome;

    if (outcome == JF_JOB_OK)
        return JF_WAY_SUCCEEDED;
    if (f->overrun && !f->cancelled)
        outcome = JF_JOB_RETRY;   /* a deadline overrun is retryable */
    if (outcome != JF_JOB_RETRY)
        return JF_WAY_FAILED;
    if (f->cancelled)
        return JF_WAY_INTERRUPTED;
    return f->attempt >= f->max_attempts ? JF_WAY_EXHAUSTED : JF_WAY_RETRY;
}

jf_way_t jf_decide_conflict(jf_way_t ours, bool have_record, Jetfleet__V1__JobState state)
{
    if (have_record && (state == ST(SUCCEEDED) || state == ST(DEAD)))
        return JF_WAY_OVERTAKEN;
    return ours;
}
