/*
 * job.h - one delivered job on its way through the worker, and the table
 * that holds every such job.
 *
 * A delivery becomes a jf_wjob_t the moment it arrives; it is parsed once,
 * and the descriptor carries it, phase by phase, until it leaves the worker
 * (pipeline.c). The table owns the descriptors (as many as the pull engine
 * may hold, plus a margin), their arenas, and the one thing several
 * threads do to a job at once: acknowledging it. Acks, NAKs and progress
 * acks all go through jf_jobs_ack() and jf_jobs_progress(), under the
 * table's lock, so the progress ticker never sends +WPI for a job that was
 * already acknowledged.
 *
 * Ownership: the thread that moved a job into its phase owns the job's
 * other fields until it moves it on; the phase itself, the lease and the
 * acknowledgement are read and changed under the table's lock.
 *
 * The lease: from its arrival, a delivery is this worker's for AckWait; each
 * +WPI sent while the lease held renews it. A lease that lapsed (the worker
 * was frozen, starved or cut off from the server) is lost for good: the
 * server may have handed the job to another worker, so the job must not
 * start here (docs/reliability.md).
 */
#ifndef JF_APP_WORKER_JOB_H
#define JF_APP_WORKER_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/arena.h>
#include <jetfleet/module.h>

#include "app/worker/decide.h"
#include "core/jsmsg.h"
#include "core/jsstore.h"
#include "core/ledger.h"
#include "core/nats.h"
#include "core/pipe.h"
#include "shared/subject.h"

typedef enum {
    JF_PHASE_IDLE,        /* a free descriptor */
    JF_PHASE_ARRIVED,     /* taken by a delivery, being parsed */
    JF_PHASE_READING,     /* its ledger record is on its way */
    JF_PHASE_WAITING,     /* it waits for the ledger or the DLQ to come back (retry_at) */
    JF_PHASE_QUEUED,      /* admitted; waiting for a handler thread */
    JF_PHASE_RUNNING,     /* its handler runs */
    JF_PHASE_FINISHING,   /* its way out is under way: dead letter, ledger write */
} jf_phase_t;

/* What a WAITING job does when its retry is due. */
typedef enum {
    JF_STEP_READ,         /* read the record (again) */
    JF_STEP_WRITE,        /* write the record of its way out (again) */
    JF_STEP_DEAD_LETTER,  /* publish the dead letter (again) */
} jf_step_t;

typedef struct jf_wjob {
    int         index;
    jf_phase_t  phase;
    void       *owner;         /* the pipeline carrying it */

    /* the delivery, parsed once */
    jf_jsmsg_t          *msg;
    const jf_jsmeta_t   *meta;
    bool                 have_subj;
    jf_subject_t         subj;
    const char          *msg_id;       /* Nats-Msg-Id, once valid (borrowed from msg) */
    const char          *job_id;       /* Jf-Job-Id of a replay, else msg_id */
    char                 trace_id[33];
    int64_t              not_before_ms;
    const jf_job_type_t *jt;
    void                *mstate;
    const jf_registry_t *view;         /* the module's view of the registry */
    char                 key[JF_LEDGER_KEY_MAX];

    /* the ledger */
    jf_ledger_op_t       lop;          /* the one read or write in flight */
    jf_job_record_t     *rec;          /* as read; NULL when there is none */
    uint64_t             rev;          /* what a write must expect */
    bool                 have_read;    /* rec and rev came from the ledger */
    jf_job_record_t      out;          /* what is written; strings borrowed */

    /* the way out */
    jf_way_t             way;
    uint32_t             attempt;
    uint32_t             delay_ms;     /* of a NAK with a delay */
    const char          *code;         /* error code name, or NULL */
    const char          *error;        /* error text (arena or static), or NULL */
    jf_copy_op_t         dlq;
    jf_step_t            step;         /* what a WAITING job retries */
    int64_t              retry_at;     /* mono ms */
    int                  retries;

    /* times: wall ms for events and the ledger, mono for intervals */
    int64_t              received_ms, started_ms, ended_ms;
    int64_t              received_mono, started_mono, deadline_mono;
    int64_t              run_us;

    /* under the table's lock */
    int64_t              lease_until;  /* mono ms: ours until then */
    int64_t              last_progress;
    bool                 lease_lost;
    bool                 ran;          /* its handler was started */
    bool                 wpi_out;      /* a progress ack awaits its confirmation */
    uint64_t             gen;          /* tells this delivery from the descriptor's next ones */
    bool                 overrun_logged;
    bool                 started_sent; /* the `started` event */
    bool                 received_sent;

    atomic_bool          held;         /* the fair queue passed it over (tenant limit) */
    bool                 counted;      /* counted against its tenant's limit */
    jf_arena_t          *arena;
    void                *payload;      /* the decoded ProtobufCMessage, or NULL */
} jf_wjob_t;

typedef struct jf_jobs jf_jobs_t;

/* capacity descriptors; ack_wait_ms is the consumer's AckWait; progress
 * acks go out through pipe (on the jobs connection) and ask for the
 * server's confirmation. */
jf_status_t jf_jobs_create(jf_jobs_t **out, int capacity, int64_t ack_wait_ms, jf_pipe_t *pipe,
                           jf_err_t *err);

/* Accepts NULL; every job must be released first. */
void jf_jobs_destroy(jf_jobs_t *t);

/* A descriptor for a new delivery, in phase ARRIVED with its lease
 * started, or NULL when all are taken. Fields the delivery thread fills
 * while the job is ARRIVED (its identity) are published to other threads
 * by the next jf_jobs_set_phase(); the same holds for every later phase:
 * others read, under the lock, only what was written before the phase
 * they see began. */
jf_wjob_t *jf_jobs_take(jf_jobs_t *t, jf_jsmsg_t *msg);

/* Free job: destroy its message (it must have been acknowledged, or be
 * left to the server), its record and payload, reset its arena. */
void jf_jobs_release(jf_jobs_t *t, jf_wjob_t *job);

void jf_jobs_set_phase(jf_jobs_t *t, jf_wjob_t *job, jf_phase_t phase);

/* Acknowledge job (JF_ACK_ACK, JF_ACK_NAK, JF_ACK_NAK_DELAY with delay_ms;
 * JF_ACK_NONE does nothing). JF_ESTATE when it was already acknowledged
 * (given back at shutdown); other errors when it could not be sent. */
jf_status_t jf_jobs_ack(jf_jobs_t *t, jf_wjob_t *job, jf_ack_t kind, uint32_t delay_ms,
                        jf_err_t *err);

/* Is job's lease still ours now? Marks it lost for good when it lapsed. */
bool jf_jobs_lease_held(jf_jobs_t *t, jf_wjob_t *job);

/* Every job that is not IDLE, under the table's lock: fn must be quick and
 * must not call back into the table. */
typedef void (*jf_jobs_fn)(jf_wjob_t *job, void *arg);
void jf_jobs_each(jf_jobs_t *t, jf_jobs_fn fn, void *arg);

/* The progress tick: send +WPI for every job held for AckWait/3 without
 * one (running jobs only within their deadline), and lose the lease of
 * every job whose lease lapsed. A +WPI renews the lease only when the
 * server confirms it: one the server has not seen (it was frozen, or the
 * connection is down) does not. overran gets each running job past its
 * deadline once (may be NULL), outside the lock. */
typedef void (*jf_jobs_overrun_fn)(jf_wjob_t *job, void *arg);
void jf_jobs_progress(jf_jobs_t *t, int64_t now, jf_jobs_overrun_fn overran, void *arg);

/* After the jobs connection came back: the lease of every job that has not
 * started is lost, since the server may have restarted and forgotten our
 * progress acks. Running jobs keep theirs (their run is under way). */
void jf_jobs_lose_leases(jf_jobs_t *t);

/* Wait until every descriptor is IDLE, or the monotonic time deadline_ms;
 * true when all are. */
bool jf_jobs_wait_empty(jf_jobs_t *t, int64_t deadline_ms);

/* How many descriptors there are. */
int jf_jobs_capacity(const jf_jobs_t *t);

/* Jobs per phase. */
void jf_jobs_count(jf_jobs_t *t, int out[JF_PHASE_FINISHING + 1]);

/* The job with this tenant and id (job_id) that is not IDLE, copied into
 * *out under the lock (the pointers in it are not usable), or false. */
typedef struct jf_job_view {
    jf_phase_t phase;
    char       type[JF_TYPE_MAX + 1];
    uint32_t   attempt;
    uint64_t   delivered, stream_seq;
    int64_t    received_ms, started_ms;
} jf_job_view_t;
bool jf_jobs_find(jf_jobs_t *t, const char *tenant, const char *job_id, jf_job_view_t *out);

const char *jf_phase_name(jf_phase_t phase);

#endif /* JF_APP_WORKER_JOB_H */
