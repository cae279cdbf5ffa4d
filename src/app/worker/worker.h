/*
 * worker.h - one `jetfleet worker` process: the parts it is made of.
 *
 *   pull engine --deliver--> pipeline (pipeline.c) --> handler threads
 *        |                      |   ledger pipe (core/ledger.c)
 *        |                      |   fair queue (fairq.c), guard (guard.c)
 *        |                      +-> events (events.c) -> jobs pipe -> AUDIT
 *   jobs table (jobs.c): every delivered job, its acks and its lease
 *   ticker (ticker.c): progress acks, retries, slow-job events, health
 *   health (health.c): /metrics, /healthz, /readyz, the process title
 *   inflight (inflight.c): answers `jetfleet job show` about held jobs
 *   quarantine (quarantine.c): poison messages at MaxDeliver
 *
 * worker.c builds these in order at start-up and takes them down on
 * SIGTERM; each file owns its own data and says so at its top.
 */
#ifndef JF_APP_WORKER_WORKER_H
#define JF_APP_WORKER_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/registry.h>

#include "app/worker/events.h"
#include "core/config.h"
#include "core/jobctx.h"

typedef struct jf_guard     jf_guard_t;
typedef struct jf_jobs      jf_jobs_t;
typedef struct jf_pipeline  jf_pipeline_t;
typedef struct jf_health    jf_health_t;
typedef struct jf_ticker    jf_ticker_t;
typedef struct jf_nats      jf_nats_t;
typedef struct jf_nats_sub  jf_nats_sub_t;
typedef struct jf_pipe      jf_pipe_t;
typedef struct jf_pull      jf_pull_t;
typedef struct jf_ledger    jf_ledger_t;
typedef struct jf_metrics   jf_metrics_t;

typedef struct jf_worker {
    const jf_config_t *cfg;
    jf_registry_t     *reg;
    jf_guard_t        *guard;
    jf_job_hooks_t     hooks;         /* what handlers may ask of the runtime */
    jf_metrics_t      *metrics;
    jf_health_t       *health;
    jf_nats_t         *nc;            /* pulls, acks, events, dead letters, queries */
    jf_pipe_t         *pipe;          /* requests on nc: events and dead letters */
    jf_nats_t         *ledger_nc;     /* the ledger's own connection */
    jf_ledger_t       *ledger;        /* NULL in dedupe-only mode (JF_LEDGER_MODE=off) */
    jf_telemetry_t    *telemetry;
    jf_events_t        events;
    jf_pull_t         *pull;
    jf_jobs_t         *jobs;
    jf_pipeline_t     *pipeline;
    jf_ticker_t       *ticker;
    jf_nats_sub_t     *quarantine;      /* MAX_DELIVERIES advisories */
    jf_nats_sub_t     *quarantine_term; /* MSG_TERMINATED advisories */
    jf_nats_sub_t     *inflight;        /* job queries */
    const char        *pool;
    char               worker_id[128];
    int                concurrency;     /* handler threads */
    int                prefetch;        /* jobs held besides those running (JF_PREFETCH) */
    int64_t            ack_wait_ms;     /* the consumer's */
    atomic_bool        pulling;         /* bound and pulling: part of /readyz */
    atomic_bool        stopping;        /* SIGTERM seen: no new jobs */
    atomic_bool        cancel;          /* grace over: handlers should stop */
    atomic_bool        fatal;           /* consumer gone: exit non-zero */
} jf_worker_t;

#endif /* JF_APP_WORKER_WORKER_H */
