/*
 * inflight.h - asking the workers about the jobs they hold right now.
 *
 * A job that runs leaves no trace in the ledger or AUDIT until it ends (the
 * lean path writes once, at the end; `started` comes only for long runs),
 * so `jetfleet job show` asks the workers: a request on
 *
 *     jetfleet.inflight.<jobs stream>.<tenant>     body: the job id
 *
 * is answered by every worker of that stream holding the job, with one
 * JSON object: {"worker", "pool", "job_id", "tenant", "type", "phase",
 * "attempt", "delivery", "stream_seq", "received_ms", "started_ms"}.
 * A worker that does not hold it stays silent.
 */
#ifndef JF_APP_WORKER_INFLIGHT_H
#define JF_APP_WORKER_INFLIGHT_H

#include <stddef.h>

#include "shared/err.h"

struct jf_worker;

#define JF_INFLIGHT_PREFIX "jetfleet.inflight"

/* "jetfleet.inflight.<stream>.<tenant>" into buf. */
void jf_inflight_subject(char *buf, size_t size, const char *stream, const char *tenant);

/* Answer queries for w's stream, on w->nc. */
jf_status_t jf_inflight_start(struct jf_worker *w, jf_err_t *err);
void jf_inflight_stop(struct jf_worker *w);

#endif /* JF_APP_WORKER_INFLIGHT_H */
