/*
 * jsadmin.c - idempotent provisioning of JetStream objects, stream and
 * consumer state, and acknowledged publishing.
 *
 * "Ensure" reads the current object first and sends an update only when a
 * field we manage differs, so running provision twice changes nothing and
 * says so. JetStream durations are nanoseconds; our specs use milliseconds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/jsadmin.h"
#include "core/nats_internal.h"

#define NS_PER_MS 1000000LL

const char *jf_prov_result_str(jf_prov_result_t r)
{
    switch (r) {
    case JF_PROV_CREATED: return "created";
    case JF_PROV_UPDATED: return "updated";
    default:              return "unchanged";
    }
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static jsRetentionPolicy retention(jf_retention_t r)
{
    switch (r) {
    case JF_RETENTION_WORKQUEUE: return js_WorkQueuePolicy;
    case JF_RETENTION_INTEREST:  return js_InterestPolicy;
    default:                     return js_LimitsPolicy;
    }
}

static bool subjects_eq(const jsStreamConfig *c, const jf_stream_spec_t *s)
{
    if (c->SubjectsLen != s->nsubjects)
        return false;
    for (int i = 0; i < s->nsubjects; i++) {
        bool found = false;
        for (int j = 0; j < c->SubjectsLen && !found; j++)
            found = strcmp(c->Subjects[j], s->subjects[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---- streams ---------------------------------------------------------------- */

jf_status_t jf_js_ensure_stream(jf_nats_t *nc, const jf_stream_spec_t *spec,
                                jf_prov_result_t *out, jf_err_t *err)
{
    jsStreamInfo  *si = NULL;
    jsStreamConfig sc;
    jsOptions      jo;
    jsErrCode      jerr = 0;
    natsStatus     s;
    bool           exists = false;
    char           what[128];

    jf_js_opts(nc, &jo);
    snprintf(what, sizeof(what), "stream %s", spec->name);

    s = js_GetStreamInfo(&si, nc->js, spec->name, &jo, &jerr);
    if (s != NATS_OK && !(s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr))
        return jf_js_status(s, jerr, err, what);

    if (si != NULL) {
        const jsStreamConfig *c = si->Config;
        bool same;

        if (c->Retention != retention(spec->retention) || c->Storage != js_FileStorage) {
            jsStreamInfo_Destroy(si);
            return jf_err_set(err, JF_ECONFIG, "stream %s exists with a different retention or "
                              "storage, which JetStream cannot change in place; back it up "
                              "and delete it, or choose another name", spec->name);
        }
        same = subjects_eq(c, spec) && c->MaxAge == spec->max_age_ms * NS_PER_MS &&
               c->MaxBytes == (spec->max_bytes ? spec->max_bytes : -1) &&
               c->MaxMsgSize == (spec->max_msg_size ? spec->max_msg_size : -1) &&
               (spec->duplicates_ms == 0 || c->Duplicates == spec->duplicates_ms * NS_PER_MS) &&
               c->Replicas == spec->replicas && str_eq(c->Description, spec->description);
        jsStreamInfo_Destroy(si);
        si = NULL;
        if (same) {
            *out = JF_PROV_UNCHANGED;
            return JF_OK;
        }
        exists = true;
    }

    jsStreamConfig_Init(&sc);
    sc.Name = spec->name;
    sc.Description = spec->description;
    sc.Subjects = (const char **)spec->subjects;
    sc.SubjectsLen = spec->nsubjects;
    sc.Retention = retention(spec->retention);
    sc.Storage = js_FileStorage;
    sc.MaxAge = spec->max_age_ms * NS_PER_MS;
    sc.MaxBytes = spec->max_bytes ? spec->max_bytes : -1;
    sc.MaxMsgSize = spec->max_msg_size ? spec->max_msg_size : -1;
    sc.Duplicates = spec->duplicates_ms * NS_PER_MS;
    sc.Replicas = spec->replicas;
    sc.Discard = js_DiscardOld;

    jerr = 0;
    if (exists)
        s = js_UpdateStream(&si, nc->js, &sc, &jo, &jerr);
    else
        s = js_AddStream(&si, nc->js, &sc, &jo, &jerr);
    if (s == NATS_OK)
        *out = exists ? JF_PROV_UPDATED : JF_PROV_CREATED;
    jsStreamInfo_Destroy(si);
    return jf_js_status(s, jerr, err, what);
}

/* ---- consumers -------------------------------------------------------------- */

jf_status_t jf_js_ensure_consumer(jf_nats_t *nc, const jf_consumer_spec_t *spec,
                                  jf_prov_result_t *out, jf_err_t *err)
{
    jsConsumerInfo  *ci = NULL;
    jsConsumerConfig cc;
    jsOptions        jo;
    jsErrCode        jerr = 0;
    natsStatus       s;
    bool             exists = false;
    char             what[160];

    jf_js_opts(nc, &jo);
    snprintf(what, sizeof(what), "consumer %s on stream %s", spec->durable, spec->stream);

    s = js_GetConsumerInfo(&ci, nc->js, spec->stream, spec->durable, &jo, &jerr);
    if (s == NATS_OK) {
        const jsConsumerConfig *c = ci->Config;
        bool same;

        if (c->DeliverSubject != NULL && c->DeliverSubject[0] != '\0') {
            jsConsumerInfo_Destroy(ci);
            return jf_err_set(err, JF_ECONFIG, "%s exists as a push consumer; jetfleet needs a "
                              "pull consumer: delete it or choose another pool name", what);
        }
        same = str_eq(c->FilterSubject, spec->filter_subject) &&
               c->AckWait == spec->ack_wait_ms * NS_PER_MS &&
               c->MaxDeliver == spec->max_deliver && c->MaxAckPending == spec->max_ack_pending &&
               c->BackOffLen == 0 && str_eq(c->Description, spec->description);
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        if (same) {
            *out = JF_PROV_UNCHANGED;
            return JF_OK;
        }
        exists = true;
    } else if (!(s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)) {
        return jf_js_status(s, jerr, err, what);
    }

    jsConsumerConfig_Init(&cc);
    cc.Durable = spec->durable;
    cc.Description = spec->description;
    cc.FilterSubject = spec->filter_subject;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = spec->ack_wait_ms * NS_PER_MS;
    cc.MaxDeliver = spec->max_deliver;
    cc.MaxAckPending = spec->max_ack_pending;
    /* No BackOff: in nats-server 2.9 it also shifts NAK delays, and the
     * worker computes every retry delay itself (DESIGN.md 2). */

    jerr = 0;
    if (exists)
        s = js_UpdateConsumer(&ci, nc->js, spec->stream, &cc, &jo, &jerr);
    else
        s = js_AddConsumer(&ci, nc->js, spec->stream, &cc, &jo, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return jf_js_status(s, jerr, err, what);
    *out = exists ? JF_PROV_UPDATED : JF_PROV_CREATED;
    return JF_OK;
}

/* ---- KV buckets --------------------------------------------------------------- */

jf_status_t jf_js_ensure_kv(jf_nats_t *nc, const jf_kv_spec_t *spec,
                            jf_prov_result_t *out, jf_err_t *err)
{
    jsStreamInfo *si = NULL;
    jsOptions     jo;
    jsErrCode     jerr = 0;
    natsStatus    s;
    char          stream[96];
    char          what[128];

    jf_js_opts(nc, &jo);
    snprintf(stream, sizeof(stream), "KV_%s", spec->bucket);
    snprintf(what, sizeof(what), "KV bucket %s", spec->bucket);

    s = js_GetStreamInfo(&si, nc->js, stream, &jo, &jerr);
    if (s == NATS_OK) {
        jsStreamConfig sc = *si->Config;   /* shallow: fields stay owned by si */
        bool same = sc.MaxAge == spec->ttl_ms * NS_PER_MS &&
                    sc.MaxMsgSize == (spec->max_value_size ? spec->max_value_size : -1) &&
                    sc.Replicas == spec->replicas && str_eq(sc.Description, spec->description) &&
                    sc.MaxMsgsPerSubject == (spec->history > 0 ? spec->history : 1);
        jsStreamInfo *upd = NULL;

        if (same) {
            jsStreamInfo_Destroy(si);
            *out = JF_PROV_UNCHANGED;
            return JF_OK;
        }
        sc.MaxAge = spec->ttl_ms * NS_PER_MS;
        sc.MaxMsgSize = spec->max_value_size ? spec->max_value_size : -1;
        sc.Replicas = spec->replicas;
        sc.Description = spec->description;
        sc.MaxMsgsPerSubject = spec->history > 0 ? spec->history : 1;
        jerr = 0;
        s = js_UpdateStream(&upd, nc->js, &sc, &jo, &jerr);
        jsStreamInfo_Destroy(upd);
        jsStreamInfo_Destroy(si);
        if (s != NATS_OK)
            return jf_js_status(s, jerr, err, what);
        *out = JF_PROV_UPDATED;
        return JF_OK;
    }
    if (!(s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr))
        return jf_js_status(s, jerr, err, what);

    {
        kvConfig kc;
        kvStore *kv = NULL;

        kvConfig_Init(&kc);
        kc.Bucket = spec->bucket;
        kc.Description = spec->description;
        kc.History = spec->history > 0 ? spec->history : 1;
        kc.TTL = spec->ttl_ms * NS_PER_MS;
        kc.MaxValueSize = spec->max_value_size ? spec->max_value_size : -1;
        kc.StorageType = js_FileStorage;
        kc.Replicas = spec->replicas;
        s = js_CreateKeyValue(&kv, nc->js, &kc);
        kvStore_Destroy(kv);
        if (s != NATS_OK)
            return jf_nats_status(s, err, what);
    }
    *out = JF_PROV_CREATED;
    return JF_OK;
}

/* ---- state ------------------------------------------------------------------- */

jf_status_t jf_js_consumer_state(jf_nats_t *nc, const char *stream, const char *consumer,
                                 jf_consumer_state_t *out, jf_err_t *err)
{
    jsConsumerInfo *ci = NULL;
    jsOptions       jo;
    jsErrCode       jerr = 0;
    natsStatus      s;
    char            what[160];

    jf_js_opts(nc, &jo);
    s = js_GetConsumerInfo(&ci, nc->js, stream, consumer, &jo, &jerr);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "consumer %s on stream %s", consumer, stream);
        return jf_js_status(s, jerr, err, what);
    }
    out->num_pending = ci->NumPending;
    out->num_ack_pending = ci->NumAckPending;
    out->num_redelivered = ci->NumRedelivered;
    out->num_waiting = ci->NumWaiting;
    out->delivered_stream_seq = ci->Delivered.Stream;
    out->ack_floor_stream_seq = ci->AckFloor.Stream;
    out->created_ns = ci->Created;
    jsConsumerInfo_Destroy(ci);
    return JF_OK;
}

jf_status_t jf_js_stream_state(jf_nats_t *nc, const char *stream, jf_stream_state_t *out,
                               jf_err_t *err)
{
    jsStreamInfo *si = NULL;
    jsOptions     jo;
    jsErrCode     jerr = 0;
    natsStatus    s;
    char          what[128];

    jf_js_opts(nc, &jo);
    s = js_GetStreamInfo(&si, nc->js, stream, &jo, &jerr);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "stream %s", stream);
        return jf_js_status(s, jerr, err, what);
    }
    out->msgs = si->State.Msgs;
    out->bytes = si->State.Bytes;
    out->first_seq = si->State.FirstSeq;
    out->last_seq = si->State.LastSeq;
    out->created_ns = si->Created;
    jsStreamInfo_Destroy(si);
    return JF_OK;
}

/* ---- publishing ----------------------------------------------------------------- */

jf_status_t jf_js_publish(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                          const jf_header_t *headers, size_t nheaders, const char *msg_id,
                          jf_pub_ack_t *out, jf_err_t *err)
{
    natsMsg     *msg = NULL;
    jsPubAck    *pa = NULL;
    jsPubOptions po;
    jsErrCode    jerr = 0;
    natsStatus   s;
    char         what[300];

    snprintf(what, sizeof(what), "publishing to %s", subject);
    if (len > (size_t)INT32_MAX)
        return jf_err_set(err, JF_ETOOBIG, "%s: payload too large", what);
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    for (size_t i = 0; s == NATS_OK && i < nheaders; i++)
        s = natsMsgHeader_Add(msg, headers[i].name, headers[i].value);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        return jf_nats_status(s, err, what);
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = nc->api_timeout_ms;
    s = js_PublishMsg(&pa, nc->js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
    if (s != NATS_OK)
        return jf_js_status(s, jerr, err, what);
    if (out != NULL) {
        strlcpy(out->stream, pa->Stream ? pa->Stream : "", sizeof(out->stream));
        out->seq = pa->Sequence;
        out->duplicate = pa->Duplicate;
    }
    jsPubAck_Destroy(pa);
    return JF_OK;
}
