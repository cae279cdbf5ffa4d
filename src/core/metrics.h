/*
 * metrics.h - the worker's metrics, rendered as Prometheus text.
 *
 *   jetfleet_jobs_total{type,outcome}            counter
 *   jetfleet_job_duration_seconds{type}          histogram of handler run time
 *   jetfleet_jobs_in_flight                      gauge: handlers running
 *   jetfleet_jobs_held / _waiting                gauges: jobs delivered here / waiting
 *   jetfleet_ledger_up                           gauge
 *   jetfleet_telemetry_pending                   gauge
 *   jetfleet_telemetry_lost_total / _dropped_total  counters
 *   jetfleet_nats_reconnects_total               counter
 *   jetfleet_consumer_pending / _ack_pending     gauges (consumer lag, read at scrape)
 *   jetfleet_build_info{version}                 gauge, always 1
 *
 * Updates are cheap (a mutex and a linear scan over a handful of series);
 * rendering happens only on scrape.
 */
#ifndef JF_CORE_METRICS_H
#define JF_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"

typedef struct jf_metrics jf_metrics_t;

typedef enum {
    JF_GAUGE_IN_FLIGHT,
    JF_GAUGE_TELEMETRY_PENDING,
    JF_GAUGE_CONSUMER_PENDING,
    JF_GAUGE_CONSUMER_ACK_PENDING,
    JF_GAUGE_JOBS_HELD,
    JF_GAUGE_JOBS_WAITING,
    JF_GAUGE_LEDGER_UP,
    JF_GAUGE_MAX_,
} jf_gauge_t;

typedef enum {
    JF_COUNTER_TELEMETRY_LOST,
    JF_COUNTER_NATS_RECONNECTS,
    JF_COUNTER_TELEMETRY_DROPPED,
    JF_COUNTER_MAX_,
} jf_counter_t;

jf_status_t jf_metrics_create(jf_metrics_t **out, const char *version);
void jf_metrics_destroy(jf_metrics_t *m);

/* A job finished with outcome (succeeded, retry_scheduled, failed, rejected,
 * duplicate, ...); seconds < 0 when the handler did not run. */
void jf_metrics_job(jf_metrics_t *m, const char *type, const char *outcome, double seconds);

void jf_metrics_set(jf_metrics_t *m, jf_gauge_t g, int64_t v);
void jf_metrics_add(jf_metrics_t *m, jf_counter_t c, uint64_t n);

/* The exposition text, malloc'ed. */
jf_status_t jf_metrics_render(jf_metrics_t *m, char **out, size_t *out_len, jf_err_t *err);

#endif /* JF_CORE_METRICS_H */
