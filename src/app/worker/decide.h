/*
 * decide.h - what happens to a job: the worker's decisions, as pure
 * functions of the facts (docs/workers/job-flow.md, "Every way out").
 *
 * Every delivery leaves the worker by one of the ways below. A way fixes
 * everything that follows: the acknowledgement, whether the job becomes a
 * dead letter, what the ledger records, the log line and its level, the
 * `outcome` label of the metrics and the lifecycle events. The pipeline
 * (pipeline.c) gathers the facts, asks, and carries the way out; nothing
 * here does I/O, reads a clock or draws a random number, so the table and
 * the functions are tested row by row (tests/unit/app/test_decide.c).
 */
#ifndef JF_APP_WORKER_DECIDE_H
#define JF_APP_WORKER_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/job.h>
#include <jetfleet/v1/event.pb-c.h>
#include <jetfleet/v1/ledger.pb-c.h>

typedef enum {
    JF_WAY_REJECTED,        /* bad input, found before or after the ledger */
    JF_WAY_NOT_DUE,         /* Jf-Not-Before lies ahead */
    JF_WAY_DUPLICATE,       /* the ledger says succeeded (or dead) */
    JF_WAY_UNANSWERED,      /* no attempt left: the last runs ended without an answer */
    JF_WAY_EXPIRED,         /* its lease ran out before it started */
    JF_WAY_RETURNED,        /* shutdown came before it started */
    JF_WAY_SUCCEEDED,       /* jf_ok() */
    JF_WAY_RETRY,           /* jf_retry(), or an overrun, with attempts left */
    JF_WAY_EXHAUSTED,       /* jf_retry(), or an overrun, on the last attempt */
    JF_WAY_FAILED,          /* jf_fail() */
    JF_WAY_INTERRUPTED,     /* jf_retry() after the shutdown grace */
    JF_WAY_OVERTAKEN,       /* another run of the job recorded its end first */
    JF_WAY_MAX_
} jf_way_t;

typedef enum {
    JF_ACK_NONE,            /* nothing: the server redelivers after AckWait */
    JF_ACK_ACK,             /* +ACK */
    JF_ACK_NAK,             /* -NAK at once */
    JF_ACK_NAK_DELAY,       /* -NAK with the delay the pipeline computed */
} jf_ack_t;

typedef enum {
    JF_REC_NONE,            /* the ledger is not written */
    JF_REC_FREE,            /* one more delivery that was not an attempt */
    JF_REC_SUCCEEDED,
    JF_REC_FAILED,
    JF_REC_DEAD,            /* after the dead letter is stored */
} jf_rec_t;

/* One row of "Every way out". */
typedef struct jf_way_info {
    const char    *name;          /* as in job-flow.md: "succeeded", "not due", ... */
    jf_ack_t       ack;
    const char    *dead_letter;   /* Jf-Failure-Reason, or NULL: no dead letter */
    jf_rec_t       record;
    const char    *log_msg;       /* the job's log line */
    jf_log_level_t level;
    const char    *outcome;       /* `outcome` of the log line and jetfleet_jobs_total */
    bool           counted;       /* counted in jetfleet_jobs_total */
    Jetfleet__V1__EventKind events[2];   /* 0 = none */
} jf_way_info_t;

const jf_way_info_t *jf_way_info(jf_way_t way);

/* ---- admission: what a delivery does once its ledger record is in -------------- */

typedef struct jf_admit_facts {
    bool                   ledger_off;    /* JF_LEDGER_MODE=off: no record exists */
    bool                   have_record;
    Jetfleet__V1__JobState state;         /* the record's */
    uint32_t               attempts;      /* the record's */
    uint32_t               free;          /* the record's free deliveries */
    bool                   same_message;  /* the record was written for this stored message */
    bool                   replay;        /* the message carries Jf-Job-Id (dlq replay) */
    uint64_t               delivered;     /* JetStream's delivery count, 1 the first time */
    uint32_t               max_attempts;  /* the job type's */
    int64_t                not_before_ms; /* Jf-Not-Before, 0 when none */
    int64_t                now_ms;        /* the worker's wall clock */
} jf_admit_facts_t;

typedef struct jf_admission {
    jf_way_t way;            /* JF_WAY_MAX_ means: run it */
    uint32_t attempt;        /* of this delivery (for a duplicate: the record's) */
    uint32_t delay_ms;       /* NOT_DUE: the time left, at most a day */
} jf_admission_t;

/* The attempt of this delivery is JetStream's delivery count less the
 * deliveries recorded as free (not due, returned at shutdown) for this
 * stored message, and at least one more than the record's attempts. */
jf_admission_t jf_decide_admit(const jf_admit_facts_t *f);

/* ---- the end of a run ------------------------------------------------------------- */

typedef struct jf_finish_facts {
    jf_outcome_t outcome;        /* the handler's answer */
    uint32_t     attempt;
    uint32_t     max_attempts;
    bool         overrun;        /* it ended after its deadline */
    bool         cancelled;      /* the shutdown grace was over */
} jf_finish_facts_t;

/* SUCCEEDED, RETRY, EXHAUSTED, FAILED or INTERRUPTED. A non-success that
 * overran its deadline is a retry, whatever the handler said. */
jf_way_t jf_decide_finish(const jf_finish_facts_t *f);

/* The record changed under a write (another run wrote it): re-read, and
 * ask. OVERTAKEN when it now says succeeded or dead; else ours again, to
 * write over the new revision. */
jf_way_t jf_decide_conflict(jf_way_t ours, bool have_record, Jetfleet__V1__JobState state);

#endif /* JF_APP_WORKER_DECIDE_H */
