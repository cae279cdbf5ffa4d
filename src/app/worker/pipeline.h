/*
 * pipeline.h - the path of a job through the worker, from its delivery to
 * its acknowledgement (docs/workers/job-flow.md).
 *
 *   deliver     the pull engine's thread: parse once, check, ask the ledger
 *   on_record   the ledger pipe's thread: admit (decide.c), or leave at once
 *   run         a handler thread (JF_CONCURRENCY of them): decode, run,
 *               decide the way out
 *   leave       dead letter, ledger write, then settle: ack or NAK, log line,
 *               lifecycle events, metrics
 *
 * No thread waits for the ledger, the DLQ or the AUDIT stream: each request
 * goes out with a completion callback, and the job waits in the table
 * (job.h) until the answer moves it on. A job whose ledger or DLQ does not
 * answer waits there (WAITING) and is tried again by the ticker, keeping
 * its lease with progress acks, without being charged an attempt.
 */
#ifndef JF_APP_WORKER_PIPELINE_H
#define JF_APP_WORKER_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "app/worker/job.h"
#include "core/jsmsg.h"
#include "shared/err.h"

struct jf_worker;
typedef struct jf_pipeline jf_pipeline_t;

/* The ledger's state as the pipeline sees it. */
typedef enum {
    JF_LEDGER_UP,         /* answering */
    JF_LEDGER_DOWN,       /* not answering, or answering with errors */
    JF_LEDGER_MISSING,    /* the bucket does not exist */
} jf_ledger_state_t;

/* Build the pipeline of w (which must have its connections, ledger,
 * telemetry and jobs table) and start JF_CONCURRENCY handler threads. */
jf_status_t jf_pipeline_create(jf_pipeline_t **out, struct jf_worker *w, jf_err_t *err);

/* The pull engine's deliver callback (arg is the pipeline). */
void jf_pipeline_deliver(jf_jsmsg_t *msg, void *arg);

/* Periodic work, from the ticker: retry waiting jobs whose time came, ask
 * whether a missing ledger is back, emit `received` for jobs held before
 * they start and `started` for runs longer than JF_STARTED_EVENT_AFTER. */
void jf_pipeline_tick(jf_pipeline_t *p, int64_t now);

/* The ledger's state, with a sentence for /readyz (borrowed until the
 * next call; NULL when it is up). */
jf_ledger_state_t jf_pipeline_ledger_state(jf_pipeline_t *p, char *why, size_t size);

/* ---- shutdown (docs/operations.md), in this order ---------------------------------- */

/* No job starts any more: jobs waiting for a handler thread, and those
 * whose record arrives from now on, are given back (free deliveries). */
void jf_pipeline_close(jf_pipeline_t *p);

/* Wait up to budget_ms for every job to leave the worker; true when none
 * is left. */
bool jf_pipeline_wait(jf_pipeline_t *p, int64_t budget_ms);

/* NAK at once every job still here (handlers that overran the grace,
 * writes never answered); returns how many. Their own acks are refused
 * later. */
int jf_pipeline_give_back(jf_pipeline_t *p);

/* Close the queue for good; true when no handler is inside a job any
 * more (one that ignores cancellation may never return). */
bool jf_pipeline_handlers_done(jf_pipeline_t *p);

/* Join the handler threads and free. Only once jf_pipeline_handlers_done()
 * said so, and after the pipes whose callbacks use the pipeline are
 * destroyed. Accepts NULL. */
void jf_pipeline_destroy(jf_pipeline_t *p);

#endif /* JF_APP_WORKER_PIPELINE_H */
