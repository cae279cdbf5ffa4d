/*
 * telemetry.h - the lifecycle event publisher (docs/telemetry.md).
 *
 * Events are published to JetStream through a pipe (core/pipe.h): emit()
 * encodes the event, sends it with a reply subject and returns; the
 * stream's acknowledgement comes back on the pipe's thread. Nothing waits:
 * the events sent and not yet acknowledged are the buffer that absorbs a
 * slow AUDIT stream, bounded by max_pending. Past that bound an event is
 * dropped, at once, and counted; an event the stream refuses or does not
 * acknowledge is sent again, twice at most, then counted as lost. Either
 * way the caller's on_lost hears of it (never silently), and the job that
 * emitted it goes on.
 *
 * Each event carries a Nats-Msg-Id built by the caller from job id, stream
 * sequence, attempt and event, so a publish sent again after a lost
 * acknowledgement, or repeated by a worker restarted between two events,
 * is stored once.
 */
#ifndef JF_CORE_TELEMETRY_H
#define JF_CORE_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/v1/event.pb-c.h>

#include "core/pipe.h"
#include "shared/err.h"

typedef struct jf_telemetry jf_telemetry_t;
typedef Jetfleet__V1__JobEvent jf_job_event_t;

/* An event did not reach the stream: dropped (the buffer was full) or
 * lost (refused or unanswered, after the retries). Called on the emitting
 * thread or a pipe thread; subject and detail are borrowed. Must not
 * block: count, and log at a measured pace. */
typedef void (*jf_telemetry_lost_fn)(bool dropped, const char *subject, const char *detail,
                                     void *arg);

typedef struct jf_telemetry_opts {
    bool                 json;          /* proto3 JSON instead of binary protobuf */
    int                  max_pending;   /* events awaiting acknowledgement; more are dropped */
    jf_telemetry_lost_fn on_lost;
    void                *arg;
} jf_telemetry_opts_t;

/* Publish through pipe (borrowed; it must outlive the publisher). */
jf_status_t jf_telemetry_create(jf_telemetry_t **out, jf_pipe_t *pipe,
                                const jf_telemetry_opts_t *opts, jf_err_t *err);

/* Encode and publish ev on subject with msg_id as its Nats-Msg-Id. Never
 * blocks and never fails: a failure is counted and reported. */
void jf_telemetry_emit(jf_telemetry_t *t, const char *subject, const char *msg_id,
                       const jf_job_event_t *ev);

typedef struct jf_telemetry_stats {
    uint64_t emitted;     /* handed to emit() */
    uint64_t acked;       /* stored by the stream (duplicates included) */
    uint64_t lost;        /* refused or unanswered, after the retries */
    uint64_t dropped;     /* not sent: max_pending were waiting */
    uint64_t retried;
    int64_t  pending;     /* sent, not yet acknowledged or lost */
} jf_telemetry_stats_t;

void jf_telemetry_stats(const jf_telemetry_t *t, jf_telemetry_stats_t *out);

/* Wait until every event sent is acknowledged or lost, or timeout_ms.
 * JF_ETIMEOUT when some are still pending. */
jf_status_t jf_telemetry_flush(jf_telemetry_t *t, int64_t timeout_ms, jf_err_t *err);

/* Free. Destroy the pipe first: events still pending are then called back
 * and reported lost. Accepts NULL. */
void jf_telemetry_destroy(jf_telemetry_t *t);

/* "received", "started", ... for an EventKind. */
const char *jf_event_kind_name(Jetfleet__V1__EventKind kind);

#endif /* JF_CORE_TELEMETRY_H */
