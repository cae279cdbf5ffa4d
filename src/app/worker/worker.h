/*
 * worker.h - the worker runtime: consume loop, dispatch and lifecycle.
 *
 *   pull engine (core) --deliver--> fair queue --> N job threads --> dispatch
 *                                                                  |
 *        parse, validate, authorize, schedule, decode, ledger <----+
 *        run the handler (+WPI while it runs), record, ack / nak / dead-letter
 *
 * worker.c owns the process lifecycle (start-up, signals, progress ticker,
 * shutdown) and the queue; dispatch.c owns what happens to one message;
 * quarantine.c moves poison messages reported by advisories to the DLQ.
 */
#ifndef JF_APP_WORKER_H
#define JF_APP_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jetfleet/registry.h>

#include "core/config.h"
#include "core/jsmsg.h"
#include "core/httpd.h"
#include "core/ledger.h"
#include "core/metrics.h"
#include "core/nats.h"
#include "core/pull.h"
#include "core/telemetry.h"
#include "core/jobctx.h"
#include "security/authz.h"
#include "security/egress.h"
#include "security/policy.h"
#include "security/secrets.h"
#include "security/signature.h"
#include "shared/ids.h"

typedef struct jf_arena jf_arena_t;

/* A job that succeeded and whose ledger record is on its way to the
 * server: acknowledged when the server answers (dispatch.c). */
typedef struct jf_settling jf_settling_t;

/* Jobs waiting for their ledger write's answer, by token. */
typedef struct jf_pending_write {
    uint64_t       token;
    jf_settling_t *job;
    int64_t        since;   /* mono ms the write was sent */
} jf_pending_write_t;

/* One job thread and what it is running. */
typedef struct jf_slot {
    struct jf_worker *w;
    pthread_t         thread;
    jf_arena_t       *arena;
    pthread_mutex_t   mu;             /* guards current's acknowledgements */
    jf_jsmsg_t       *current;        /* the message being run, or NULL */
    int64_t           last_progress;  /* mono ms of the start or last +WPI */
    int64_t           deadline_mono;  /* when the run's deadline passes; 0 = not running */
    bool              overrun_logged;
    /* The current job's ledger record as read ahead at delivery: have_pre
     * when a read was asked for; pre_st JF_OK (pre_rec, dispatch's to
     * free), JF_ENOTFOUND, or an error (dispatch reads again itself). */
    bool              have_pre;
    jf_status_t       pre_st;
    jf_job_record_t  *pre_rec;
    /* A ledger write this thread waits for (jf_worker_ledger_put): the
     * answer is signalled on wcond, under mu. */
    int               index;
    pthread_cond_t    wcond;
    uint64_t          wtoken;         /* 0: not waiting */
    bool              wdone;
    jf_status_t       wst;
    char              wwhy[256];
} jf_slot_t;

/* A delivered message waiting for a job thread. */
typedef struct jf_queued {
    jf_jsmsg_t *msg;
    char        tenant[JF_TENANT_MAX + 1];   /* "" when the subject is unparsable */
    int64_t     since;                        /* mono ms of arrival or last +WPI */
    /* The ledger read-ahead (docs/performance.md): a job is handed to a
     * thread once ready, that is when its record arrived, the read failed
     * or timed out, or no read was asked for (token 0). */
    uint64_t         token;
    int64_t          asked;                   /* mono ms the read was asked for */
    bool             ready;
    jf_status_t      pre_st;
    jf_job_record_t *pre_rec;
} jf_queued_t;

/* Jobs running per tenant, for JF_TENANT_MAX_INFLIGHT. */
typedef struct jf_tenant_count {
    char tenant[JF_TENANT_MAX + 1];
    int  running;
} jf_tenant_count_t;

typedef struct jf_worker {
    const jf_config_t *cfg;
    jf_registry_t     *reg;
    jf_authz_t        *authz;
    pthread_rwlock_t   sec_mu;        /* guards policy and secrets against SIGHUP swaps */
    jf_policy_t       *policy;        /* NULL: JF_POLICY_FILE empty */
    jf_secrets_t      *secrets;       /* NULL: JF_SECRETS_DIR empty */
    jf_job_hooks_t     hooks;         /* secrets and egress guard lent to handlers */
    jf_nats_t         *nc;
    jf_pull_t         *pull;
    jf_ledger_t       *ledger;
    jf_nats_t         *ledger_nc;    /* the ledger's own connection (direct writes) */
    bool               ledger_off;  /* JF_LEDGER_MODE=off: dedupe-only, ledger NULL */
    jf_telemetry_t    *telemetry;
    jf_metrics_t      *metrics;
    jf_httpd_t        *httpd;
    atomic_bool        pulling;       /* bound and pulling: part of /readyz */
    const char        *pool;
    jf_nats_sub_t     *quarantine;      /* MAX_DELIVERIES advisories */
    jf_nats_sub_t     *quarantine_term; /* MSG_TERMINATED advisories */
    char               worker_id[128];
    int64_t            ack_wait_ms;

    /* the hand-off queue between the pull engine and the job threads */
    pthread_mutex_t    qmu;
    pthread_cond_t     qcond;
    jf_queued_t       *queue;         /* FIFO; taken out of order only for fairness */
    size_t             qcap, qlen;
    bool               qclosed;
    jf_tenant_count_t *tenants;       /* one per running job at most */
    int                tenant_limit;  /* JF_TENANT_MAX_INFLIGHT; 0: none */
    bool               policy_file;   /* a policy may set per-tenant limits */
    bool               limits_on;     /* count running jobs per tenant */
    uint64_t           next_token;    /* ledger read-ahead requests; under qmu */

    /* succeeded jobs waiting for their ledger write (docs/performance.md) */
    pthread_mutex_t     wmu;
    jf_pending_write_t *writes;       /* unordered; at most wcap */
    size_t              wlen, wcap;
    uint64_t            next_wtoken;
    bool                wclosed;      /* shutting down: no new ones */
    atomic_int          settling;     /* jobs handed off, not yet settled */

    jf_slot_t         *slots;
    int                nslots;
    atomic_int         running;       /* jobs inside dispatch */
    atomic_bool        stopping;      /* SIGTERM seen: no new jobs */
    atomic_bool        cancel;        /* grace over: handlers should stop */
    atomic_bool        fatal;         /* consumer gone: exit non-zero */
} jf_worker_t;

/* Where an event comes from. Strings are borrowed; NULL tenant/type means
 * the subject did not parse. */
typedef struct jf_event_src {
    const char *job_id;
    const char *tenant;
    const char *type;
    const char *stream;
    uint64_t    stream_seq;
    int64_t     enqueued_ms;
    uint32_t    attempt;
    const char *trace_id;
    int64_t     started_ms;   /* 0 before the handler started */
    int64_t     run_us;
} jf_event_src_t;

typedef struct jf_event_extra {
    const char *error_code;
    const char *error_text;
    uint32_t    next_delay_ms;
} jf_event_extra_t;

/* Publish a lifecycle event on telemetry.jobs.<tenant>.<module>.<action>.<event>
 * (telemetry.jobs._invalid.subject.rejected.<event> for an unparsable
 * subject), with Nats-Msg-Id <job id>:<stream>-<seq>:<attempt>:<event>. x
 * may be NULL. Never blocks for long, never fails (see telemetry.h). */
void jf_worker_emit(jf_worker_t *w, const jf_event_src_t *src, Jetfleet__V1__EventKind kind,
                    const jf_event_extra_t *x);

/* Run one message to its end: acknowledged one way or another, destroyed,
 * and its slot in the pull engine returned; or, for a success whose ledger
 * record is still on its way, handed off to settle later (returns true).
 * Never fails. Uses and frees the slot's ledger read-ahead (have_pre,
 * pre_st, pre_rec). */
bool jf_dispatch(jf_worker_t *w, jf_slot_t *slot, jf_jsmsg_t *msg);

/* A job of tenant is no longer in flight (JF_TENANT_MAX_INFLIGHT): called
 * when dispatch returns false, or when a handed-off job settles. */
void jf_worker_job_done(jf_worker_t *w, const char *tenant);

/* Finish a job handed off by dispatch once its ledger write is answered:
 * st JF_OK acknowledges it; JF_ESTATE (shutdown) gives it back at once;
 * any other status gives it back after a delay to run again. */
void jf_dispatch_settle(jf_worker_t *w, jf_settling_t *job, jf_status_t st, const char *why);

/* Register job for the answer to a ledger write; *token names the write.
 * false when shutting down or full: dispatch then writes synchronously. */
bool jf_worker_settle_later(jf_worker_t *w, jf_settling_t *job, uint64_t *token);

/* Take back a registration whose write could not be sent. false when the
 * job was settled meanwhile (it is no longer the caller's). */
bool jf_worker_settle_cancel(jf_worker_t *w, uint64_t token);

/* Write rec under key and wait for the server's answer (JF_API_TIMEOUT
 * at most), through the ledger's pipe: the thread sleeps on its slot, and
 * the answer wakes it. */
jf_status_t jf_worker_ledger_put(jf_worker_t *w, jf_slot_t *slot, const char *key,
                                 const jf_job_record_t *rec, jf_err_t *err);

/* The ledger key dispatch will use for msg, for reading ahead. false when
 * the message is bad in a way dispatch rejects it for (it is then not
 * read ahead; dispatch says why). */
bool jf_dispatch_ledger_key(const jf_worker_t *w, jf_jsmsg_t *msg, char *key, size_t size);

/* May tenant run a job of type (jt) whose message is size bytes? The
 * allow-list and the tenant policy; JF_OK, JF_EDENIED or JF_ETOOBIG with
 * the reason in err. Signatures are checked by dispatch on top. */
jf_status_t jf_worker_authorize(const jf_worker_t *w, const char *tenant, const char *type,
                                const jf_job_type_t *jt, size_t size, jf_err_t *err);

/* The enqueue service lent to handlers (jf_job_hooks_t.enqueue; ctx is
 * the worker): publishes a child job of the parent's tenant. */
jf_status_t jf_worker_enqueue(void *ctx, const jf_job_t *parent, const char *type,
                              const ProtobufCMessage *payload, const char *child_id);

/* Start and stop the quarantine listener (DESIGN.md 5.4). */
jf_status_t jf_quarantine_start(jf_worker_t *w, jf_err_t *err);
void jf_quarantine_stop(jf_worker_t *w);

#endif /* JF_APP_WORKER_H */
