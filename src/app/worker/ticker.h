/*
 * ticker.h - the worker's one thread for periodic work.
 *
 * Every tick it calls fn with the monotonic time: the worker sends progress
 * acks and gives up lapsed leases (jobs.c), retries waiting jobs and emits
 * the events of held and long jobs (pipeline.c), and refreshes what health
 * reports (health.c). A tick is every AckWait/12, at most 250 ms apart, so
 * a progress ack due every AckWait/3 is never late by more than a quarter
 * of its interval.
 */
#ifndef JF_APP_WORKER_TICKER_H
#define JF_APP_WORKER_TICKER_H

#include <stdint.h>

#include "shared/err.h"

typedef struct jf_ticker jf_ticker_t;
typedef void (*jf_tick_fn)(int64_t now_mono_ms, void *arg);

jf_status_t jf_ticker_start(jf_ticker_t **out, int64_t every_ms, jf_tick_fn fn, void *arg,
                            jf_err_t *err);

/* Stop and join the thread (a tick under way finishes first). Accepts NULL. */
void jf_ticker_stop(jf_ticker_t *t);

#endif /* JF_APP_WORKER_TICKER_H */
