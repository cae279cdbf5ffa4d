/*
 * telemetry.c - asynchronous, acknowledged, deduplicated event publishing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nats_internal.h"
#include "core/pbjson.h"
#include "core/telemetry.h"

#define MAX_TRIES 3
#define TRY_HEADER "Jf-Try"

struct jf_telemetry {
    jf_nats_t          *nc;
    jsCtx              *js;
    jf_telemetry_opts_t o;
    atomic_uint_fast64_t emitted, acked, lost, retried;
};

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

static void report_lost(jf_telemetry_t *t, natsMsg *msg, const char *detail)
{
    atomic_fetch_add(&t->lost, 1);
    if (t->o.on_lost != NULL)
        t->o.on_lost(msg ? natsMsg_GetSubject(msg) : "", detail, t->o.arg);
}

/* Library thread: one acknowledgement or failure per event. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    jf_telemetry_t *t = closure;
    const char     *tries = NULL;
    int             n;
    char            buf[8];

    if (pa != NULL) {
        atomic_fetch_add(&t->acked, 1);
        natsMsg_Destroy(msg);
        return;
    }
    n = natsMsgHeader_Get(msg, TRY_HEADER, &tries) == NATS_OK && tries ? atoi(tries) : 1;
    if (n < MAX_TRIES) {
        /* The same Nats-Msg-Id: if the first try was stored after all, the
         * stream drops this one. */
        snprintf(buf, sizeof(buf), "%d", n + 1);
        natsMsgHeader_Set(msg, TRY_HEADER, buf);
        atomic_fetch_add(&t->retried, 1);
        if (js_PublishMsgAsync(js, &msg, NULL) == NATS_OK) {
            natsMsg_Destroy(msg);   /* NULL now: the library owns it */
            return;
        }
    }
    report_lost(t, msg, pae && pae->ErrText ? pae->ErrText
                                           : natsStatus_GetText(pae ? pae->Err : NATS_ERR));
    natsMsg_Destroy(msg);
}

jf_status_t jf_telemetry_create(jf_telemetry_t **out, jf_nats_t *nc,
                                const jf_telemetry_opts_t *opts, jf_err_t *err)
{
    jf_telemetry_t *t = calloc(1, sizeof(*t));
    jsOptions       jo;
    natsStatus      s;

    if (t == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    t->nc = nc;
    t->o = *opts;
    jf_js_opts(nc, &jo);
    jo.PublishAsync.MaxPending = opts->max_pending > 0 ? opts->max_pending : 4096;
    jo.PublishAsync.StallWait = opts->stall_ms > 0 ? opts->stall_ms : 2000;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = t;
    s = natsConnection_JetStream(&t->js, nc->conn, &jo);
    if (s != NATS_OK) {
        free(t);
        return jf_nats_status(s, err, "creating the telemetry publisher");
    }
    *out = t;
    return JF_OK;
}

void jf_telemetry_emit(jf_telemetry_t *t, const char *subject, const char *msg_id,
                       const jf_job_event_t *ev)
{
    uint8_t      stackbuf[512];
    uint8_t     *buf = stackbuf;
    char        *json = NULL;
    size_t       len;
    natsMsg     *msg = NULL;
    jsPubOptions po;
    natsStatus   s;

    if (t->o.json) {
        if (jf_pbjson_encode(&ev->base, JF_PBJSON_ORIG_NAMES, &json, &len, NULL) != JF_OK) {
            report_lost(t, NULL, "cannot encode the event as JSON");
            return;
        }
        buf = (uint8_t *)json;
    } else {
        len = jetfleet__v1__job_event__get_packed_size(ev);
        if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
            report_lost(t, NULL, "out of memory");
            return;
        }
        jetfleet__v1__job_event__pack(ev, buf);
    }
    s = natsMsg_Create(&msg, subject, NULL, (const char *)buf, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(msg, "Content-Type",
                              t->o.json ? "application/json" : "application/protobuf");
    if (buf != stackbuf)
        free(buf);
    if (s == NATS_OK) {
        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        po.MaxWait = t->o.ack_wait_ms > 0 ? t->o.ack_wait_ms : 5000;
        atomic_fetch_add(&t->emitted, 1);
        s = js_PublishMsgAsync(t->js, &msg, &po);
        if (s != NATS_OK) {
            /* Still ours: the library did not take it. */
            report_lost(t, msg, natsStatus_GetText(s));
            natsMsg_Destroy(msg);
        }
        return;
    }
    report_lost(t, msg, natsStatus_GetText(s));
    natsMsg_Destroy(msg);
}

void jf_telemetry_stats(const jf_telemetry_t *t, jf_telemetry_stats_t *out)
{
    jf_telemetry_t *m = (jf_telemetry_t *)t;

    out->emitted = atomic_load(&m->emitted);
    out->acked = atomic_load(&m->acked);
    out->lost = atomic_load(&m->lost);
    out->retried = atomic_load(&m->retried);
    out->pending = (int64_t)(out->emitted - out->acked - out->lost);
    if (out->pending < 0)
        out->pending = 0;
}

jf_status_t jf_telemetry_flush(jf_telemetry_t *t, int64_t timeout_ms, jf_err_t *err)
{
    jsPubOptions po;
    natsStatus   s;

    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    s = js_PublishAsyncComplete(t->js, &po);
    return jf_nats_status(s, err, "flushing telemetry");
}

void jf_telemetry_destroy(jf_telemetry_t *t, int64_t timeout_ms)
{
    if (t == NULL)
        return;
    if (timeout_ms > 0)
        jf_telemetry_flush(t, timeout_ms, NULL);
    jsCtx_Destroy(t->js);
    free(t);
}
