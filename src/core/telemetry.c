/*
 * telemetry.c - acknowledged, deduplicated event publishing that never
 * blocks its caller (see telemetry.h).
 *
 * An event in flight is one allocation: the pipe request, its subject, its
 * Nats-Msg-Id and its encoded bytes, kept until the stream acknowledges it
 * so that it can be sent again unchanged.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/pbjson.h"
#include "core/telemetry.h"

#define MAX_TRIES 3

struct jf_telemetry {
    jf_pipe_t          *pipe;
    jf_telemetry_opts_t o;
    atomic_uint_fast64_t emitted, acked, lost, dropped, retried;
    atomic_int          pending;
    pthread_mutex_t     mu;       /* flush() waits on cond for pending to reach 0 */
    pthread_cond_t      cond;
};

typedef struct event_req {
    jf_pipe_req_t   req;
    jf_telemetry_t *t;
    int             tries;
    const char     *content_type;
    char            subject[320];
    char            msg_id[256];
    size_t          len;
    uint8_t         data[];
} event_req_t;

const char *jf_event_kind_name(Jetfleet__V1__EventKind kind)
{
    switch (kind) {
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED:        return "received";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED:         return "started";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_SUCCEEDED:       return "succeeded";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_RETRY_SCHEDULED: return "retry_scheduled";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_FAILED:          return "failed";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_DEAD_LETTERED:   return "dead_lettered";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_DUPLICATE:       return "duplicate";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_REJECTED:        return "rejected";
    case JETFLEET__V1__EVENT_KIND__EVENT_KIND_QUARANTINED:     return "quarantined";
    default:                                                   return "unknown";
    }
}

static void report(jf_telemetry_t *t, bool dropped, const char *subject, const char *detail)
{
    atomic_fetch_add(dropped ? &t->dropped : &t->lost, 1);
    if (t->o.on_lost != NULL)
        t->o.on_lost(dropped, subject, detail, t->o.arg);
}

/* One event fewer in flight; wake a flush when none is left. */
static void settled(jf_telemetry_t *t)
{
    if (atomic_fetch_sub(&t->pending, 1) == 1) {
        pthread_mutex_lock(&t->mu);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
}

static jf_status_t send_event(event_req_t *e, jf_err_t *err)
{
    jf_header_t h[2] = { { "Nats-Msg-Id", e->msg_id }, { "Content-Type", e->content_type } };

    return jf_pipe_send(e->t->pipe, &e->req, e->subject, h, 2, e->data, e->len, err);
}

/* A pipe thread: the stream's answer, or its absence. */
static void on_ack(jf_pipe_req_t *req, jf_status_t st, const jf_pipe_answer_t *a)
{
    event_req_t    *e = (event_req_t *)((char *)req - offsetof(event_req_t, req));
    jf_telemetry_t *t = e->t;
    char            why[200];
    jf_err_t        err = { 0 };

    if (st == JF_OK)
        st = jf_pipe_puback(a, NULL, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s", st == JF_ETIMEOUT ? "no acknowledgement in time"
                                                           : "the worker is shutting down");
    if (st == JF_OK) {
        atomic_fetch_add(&t->acked, 1);
        goto done;
    }
    /* The same Nats-Msg-Id: if an earlier try was stored after all, the
     * stream drops this one. Not when nobody listens (503): that will not
     * change within a retry. */
    if (st != JF_EUNAVAILABLE && st != JF_ESTATE && ++e->tries < MAX_TRIES) {
        atomic_fetch_add(&t->retried, 1);
        if (send_event(e, &err) == JF_OK)
            return;
        snprintf(why, sizeof(why), "%s", jf_err_msg(&err));
    }
    report(t, false, e->subject, why);
done:
    free(e);
    settled(t);
}

jf_status_t jf_telemetry_create(jf_telemetry_t **out, jf_pipe_t *pipe,
                                const jf_telemetry_opts_t *opts, jf_err_t *err)
{
    jf_telemetry_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    t->pipe = pipe;
    t->o = *opts;
    if (t->o.max_pending <= 0)
        t->o.max_pending = 4096;
    pthread_mutex_init(&t->mu, NULL);
    jf_cond_init(&t->cond);
    *out = t;
    return JF_OK;
}

void jf_telemetry_emit(jf_telemetry_t *t, const char *subject, const char *msg_id,
                       const jf_job_event_t *ev)
{
    event_req_t *e;
    char        *json = NULL;
    size_t       len;
    jf_err_t     err = { 0 };

    atomic_fetch_add(&t->emitted, 1);
    if (atomic_fetch_add(&t->pending, 1) >= t->o.max_pending) {
        atomic_fetch_sub(&t->pending, 1);
        report(t, true, subject, "the stream has not acknowledged JF_TELEMETRY_MAX_PENDING "
               "events: dropped");
        return;
    }
    if (t->o.json) {
        if (jf_pbjson_encode(&ev->base, JF_PBJSON_ORIG_NAMES, &json, &len, NULL) != JF_OK) {
            report(t, false, subject, "cannot encode the event as JSON");
            settled(t);
            return;
        }
    } else {
        len = jetfleet__v1__job_event__get_packed_size(ev);
    }
    e = malloc(sizeof(*e) + len);
    if (e == NULL) {
        free(json);
        report(t, false, subject, "out of memory");
        settled(t);
        return;
    }
    e->req.done = on_ack;
    e->t = t;
    e->tries = 0;
    e->content_type = t->o.json ? "application/json" : "application/protobuf";
    snprintf(e->subject, sizeof(e->subject), "%s", subject);
    snprintf(e->msg_id, sizeof(e->msg_id), "%s", msg_id);
    e->len = len;
    if (json != NULL) {
        memcpy(e->data, json, len);
        free(json);
    } else {
        jetfleet__v1__job_event__pack(ev, e->data);
    }
    if (send_event(e, &err) != JF_OK) {
        report(t, false, subject, jf_err_msg(&err));
        free(e);
        settled(t);
    }
}

void jf_telemetry_stats(const jf_telemetry_t *t, jf_telemetry_stats_t *out)
{
    jf_telemetry_t *m = (jf_telemetry_t *)t;

    out->emitted = atomic_load(&m->emitted);
    out->acked = atomic_load(&m->acked);
    out->lost = atomic_load(&m->lost);
    out->dropped = atomic_load(&m->dropped);
    out->retried = atomic_load(&m->retried);
    out->pending = atomic_load(&m->pending);
}

jf_status_t jf_telemetry_flush(jf_telemetry_t *t, int64_t timeout_ms, jf_err_t *err)
{
    int64_t deadline = jf_clock_mono_ms() + timeout_ms;
    int     left;

    pthread_mutex_lock(&t->mu);
    while ((left = atomic_load(&t->pending)) > 0)
        if (jf_cond_wait_until(&t->cond, &t->mu, deadline) != 0)
            break;
    left = atomic_load(&t->pending);
    pthread_mutex_unlock(&t->mu);
    if (left > 0)
        return jf_err_set(err, JF_ETIMEOUT, "%d lifecycle events still unacknowledged", left);
    return JF_OK;
}

void jf_telemetry_destroy(jf_telemetry_t *t)
{
    if (t == NULL)
        return;
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
