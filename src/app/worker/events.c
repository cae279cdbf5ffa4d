/*
 * events.c - building lifecycle events (see events.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "app/worker/events.h"

void jf_events_emit(const jf_events_t *e, const jf_event_src_t *src, Jetfleet__V1__EventKind kind,
                    const jf_event_extra_t *x)
{
    jf_job_event_t ev = JETFLEET__V1__JOB_EVENT__INIT;
    const char    *name = jf_event_kind_name(kind);
    char           subject[320], msg_id[256];

    if (e->telemetry == NULL)
        return;
    if (src->tenant != NULL && src->type != NULL)
        snprintf(subject, sizeof(subject), "%s.%s.%s.%s", e->prefix, src->tenant, src->type, name);
    else
        snprintf(subject, sizeof(subject), "%s._invalid.subject.rejected.%s", e->prefix, name);
    snprintf(msg_id, sizeof(msg_id), "%s:%s-%" PRIu64 ":%u:%s",
             src->job_id ? src->job_id : "-", src->stream, src->stream_seq, src->attempt, name);

    ev.event = kind;
    ev.job_id = (char *)(src->job_id ? src->job_id : "");
    ev.tenant = (char *)(src->tenant ? src->tenant : "");
    ev.type = (char *)(src->type ? src->type : "");
    ev.attempt = src->attempt;
    ev.worker_id = (char *)e->worker_id;
    ev.region = (char *)e->region;
    ev.pool = (char *)e->pool;
    ev.stream_seq = src->stream_seq;
    ev.enqueued_ms = src->enqueued_ms;
    ev.received_ms = src->received_ms;
    ev.started_ms = src->started_ms;
    ev.ended_ms = src->ended_ms;
    ev.duration_us = src->run_us;
    ev.trace_id = (char *)(src->trace_id ? src->trace_id : "");
    if (x != NULL) {
        ev.error_code = (char *)(x->error_code ? x->error_code : "");
        ev.error_text = (char *)(x->error_text ? x->error_text : "");
        ev.next_delay_ms = x->next_delay_ms;
    }
    jf_telemetry_emit(e->telemetry, subject, msg_id, &ev);
}
