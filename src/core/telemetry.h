/*
 * telemetry.h - the lifecycle event publisher (DESIGN.md 6).
 *
 * Events are published to JetStream asynchronously: the job path only
 * encodes the event and hands it to the library, and acknowledgements come
 * back on a library thread. Each event carries a Nats-Msg-Id built by the
 * caller from job id, stream sequence, attempt and event, so a publish
 * retried after a lost acknowledgement, or repeated by a worker restarted
 * between two events, is stored once. When too many events wait for
 * their acknowledgement, emit() blocks for a while (back-pressure) rather
 * than drop; an event that still cannot be sent, or that fails three
 * times, is counted as lost and reported through the callback: never
 * dropped silently.
 */
#ifndef JF_CORE_TELEMETRY_H
#define JF_CORE_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/v1/event.pb-c.h>

#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_telemetry jf_telemetry_t;
typedef Jetfleet__V1__JobEvent jf_job_event_t;

/* Called from a library thread when an event is lost for good; detail is
 * borrowed. Must not block. */
typedef void (*jf_telemetry_lost_fn)(const char *subject, const char *detail, void *arg);

typedef struct jf_telemetry_opts {
    bool                 json;          /* proto3 JSON instead of binary protobuf */
    int                  max_pending;   /* events awaiting acknowledgement */
    int64_t              stall_ms;      /* how long emit() may block when full */
    int64_t              ack_wait_ms;   /* how long to wait for one acknowledgement */
    jf_telemetry_lost_fn on_lost;
    void                *arg;
} jf_telemetry_opts_t;

jf_status_t jf_telemetry_create(jf_telemetry_t **out, jf_nats_t *nc,
                                const jf_telemetry_opts_t *opts, jf_err_t *err);

/* Encode and publish ev on subject with msg_id as its Nats-Msg-Id. Never
 * fails: a failure is counted as lost and reported. */
void jf_telemetry_emit(jf_telemetry_t *t, const char *subject, const char *msg_id,
                       const jf_job_event_t *ev);

typedef struct jf_telemetry_stats {
    uint64_t emitted;     /* handed to the library */
    uint64_t acked;       /* stored by the stream (duplicates included) */
    uint64_t lost;
    uint64_t retried;
    int64_t  pending;     /* emitted, not yet acknowledged or lost */
} jf_telemetry_stats_t;

void jf_telemetry_stats(const jf_telemetry_t *t, jf_telemetry_stats_t *out);

/* Wait until every emitted event is acknowledged or lost, or timeout_ms. */
jf_status_t jf_telemetry_flush(jf_telemetry_t *t, int64_t timeout_ms, jf_err_t *err);

/* Flush for up to timeout_ms and free. Accepts NULL. */
void jf_telemetry_destroy(jf_telemetry_t *t, int64_t timeout_ms);

/* "received", "started", ... for an EventKind. */
const char *jf_event_kind_name(Jetfleet__V1__EventKind kind);

#endif /* JF_CORE_TELEMETRY_H */
