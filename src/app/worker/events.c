/*
 * events.c - building lifecycle events (DESIGN.md 6; docs/telemetry.md).
 *
 * Each step of a job becomes one jetfleet.v1.JobEvent. Its Nats-Msg-Id
 * names the job, the stored message, the attempt and the event, so the
 * AUDIT stream stores each (job, attempt, event) once even when a publish
 * is retried or a worker dies between two events and the job runs again.
 */
#include <inttypes.h>
#include <stdio.h>

#include "app/worker/worker.h"
#include "core/clock.h"

void jf_worker_emit(jf_worker_t *w, const jf_event_src_t *src, Jetfleet__V1__EventKind kind,
                    const jf_event_extra_t *x)
{
    jf_job_event_t ev = JETFLEET__V1__JOB_EVENT__INIT;
    const char    *name = jf_event_kind_name(kind);
    char           subject[320], msg_id[256];

    if (w->telemetry == NULL)
        return;
    if (src->tenant != NULL && src->type != NULL)
        snprintf(subject, sizeof(subject), "%s.%s.%s.%s", w->cfg->names.telemetry_prefix,
                 src->tenant, src->type, name);
    else
        snprintf(subject, sizeof(subject), "%s._invalid.subject.rejected.%s",
                 w->cfg->names.telemetry_prefix, name);
    snprintf(msg_id, sizeof(msg_id), "%s:%s-%" PRIu64 ":%u:%s",
             src->job_id ? src->job_id : "-", src->stream, src->stream_seq, src->attempt, name);

    ev.event = kind;
    ev.job_id = (char *)(src->job_id ? src->job_id : "");
    ev.tenant = (char *)(src->tenant ? src->tenant : "");
    ev.type = (char *)(src->type ? src->type : "");
    ev.attempt = src->attempt;
    ev.worker_id = w->worker_id;
    ev.region = (char *)w->cfg->region;
    ev.pool = (char *)w->pool;
    ev.stream_seq = src->stream_seq;
    ev.enqueued_ms = src->enqueued_ms;
    ev.started_ms = src->started_ms;
    if (kind != JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED &&
        kind != JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED) {
        ev.ended_ms = jf_clock_now_ms();
        ev.duration_us = src->run_us;
    }
    ev.trace_id = (char *)(src->trace_id ? src->trace_id : "");
    if (x != NULL) {
        ev.error_code = (char *)(x->error_code ? x->error_code : "");
        ev.error_text = (char *)(x->error_text ? x->error_text : "");
        ev.next_delay_ms = x->next_delay_ms;
    }
    jf_telemetry_emit(w->telemetry, subject, msg_id, &ev);
}
