/*
 * events.h - building and publishing lifecycle events (docs/telemetry.md).
 *
 * Each step of a job that is worth an auditor's time becomes one
 * jetfleet.v1.JobEvent on telemetry.jobs.<tenant>.<module>.<action>.<event>.
 * Its Nats-Msg-Id names the job, the stored message, the attempt and the
 * event, so AUDIT stores each (job, attempt, event) once even when a
 * publish is sent again or a worker dies between two events.
 */
#ifndef JF_APP_WORKER_EVENTS_H
#define JF_APP_WORKER_EVENTS_H

#include <stdint.h>

#include <jetfleet/v1/event.pb-c.h>

#include "core/telemetry.h"

/* What every event says about the worker that emits it (borrowed). */
typedef struct jf_events {
    jf_telemetry_t *telemetry;   /* NULL: emit nothing */
    const char     *prefix;      /* telemetry.jobs, or telemetry.jobs.<region> */
    const char     *worker_id;
    const char     *region;
    const char     *pool;
} jf_events_t;

/* Where an event comes from. Strings are borrowed; NULL tenant or type
 * means the subject did not parse (telemetry.jobs._invalid.subject...). */
typedef struct jf_event_src {
    const char *job_id;
    const char *tenant;
    const char *type;
    const char *stream;
    uint64_t    stream_seq;
    int64_t     enqueued_ms;
    uint32_t    attempt;
    const char *trace_id;
    int64_t     received_ms;   /* when this worker received the delivery */
    int64_t     started_ms;    /* 0 before the handler started */
    int64_t     ended_ms;      /* 0 before the run or the delivery ended */
    int64_t     run_us;
} jf_event_src_t;

typedef struct jf_event_extra {
    const char *error_code;
    const char *error_text;
    uint32_t    next_delay_ms;
} jf_event_extra_t;

/* Publish one event; x may be NULL. Never blocks, never fails (see
 * core/telemetry.h). */
void jf_events_emit(const jf_events_t *e, const jf_event_src_t *src, Jetfleet__V1__EventKind kind,
                    const jf_event_extra_t *x);

#endif /* JF_APP_WORKER_EVENTS_H */
