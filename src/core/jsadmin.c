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

static bool has_source(const jsStreamConfig *c, const char *name)
{
    for (int i = 0; c != NULL && i < c->SourcesLen; i++)
        if (c->Sources[i] != NULL && str_eq(c->Sources[i]->Name, name))
            return true;
    return false;
}

jf_status_t jf_js_ensure_stream(jf_nats_t *nc, const jf_stream_spec_t *spec,
                                jf_prov_result_t *out, jf_err_t *err)
{
    jsStreamInfo   *si = NULL, *res = NULL;
    jsStreamConfig  sc;
    jsOptions       jo;
    jsErrCode       jerr = 0;
    natsStatus      s;
    const jsStreamConfig *c = NULL;
    jsPlacement     placement;
    jsStreamSource  added[16];
    jsStreamSource *srcs[64];
    int             nsrcs = 0;
    char            what[128];

    jf_js_opts(nc, &jo);
    snprintf(what, sizeof(what), "stream %s", spec->name);
    if (spec->nsources > (int)(sizeof(added) / sizeof(added[0])))
        return jf_err_set(err, JF_EINVAL, "%s: too many sources", what);

    s = js_GetStreamInfo(&si, nc->js, spec->name, &jo, &jerr);
    if (s != NATS_OK && !(s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr))
        return jf_js_status(s, jerr, err, what);

    /* Sources: the ones the stream has, plus the spec's it lacks. */
    if (si != NULL)
        c = si->Config;
    for (int i = 0; c != NULL && i < c->SourcesLen && nsrcs < 48; i++)
        srcs[nsrcs++] = c->Sources[i];
    for (int i = 0; i < spec->nsources; i++) {
        if (has_source(c, spec->sources[i]))
            continue;
        memset(&added[i], 0, sizeof(added[i]));
        added[i].Name = spec->sources[i];
        srcs[nsrcs++] = &added[i];
    }

    if (c != NULL) {
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
               c->Replicas == spec->replicas && str_eq(c->Description, spec->description) &&
               nsrcs == c->SourcesLen;
        if (same) {
            jsStreamInfo_Destroy(si);
            *out = JF_PROV_UNCHANGED;
            return JF_OK;
        }
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
    sc.Sources = nsrcs > 0 ? srcs : NULL;
    sc.SourcesLen = nsrcs;
    if (c != NULL) {
        sc.Placement = c->Placement;   /* placement is chosen once, at creation */
    } else if (spec->placement_cluster != NULL) {
        jsPlacement_Init(&placement);
        placement.Cluster = spec->placement_cluster;
        sc.Placement = &placement;
    }

    jerr = 0;
    if (c != NULL)
        s = js_UpdateStream(&res, nc->js, &sc, &jo, &jerr);
    else
        s = js_AddStream(&res, nc->js, &sc, &jo, &jerr);
    if (s == NATS_OK)
        *out = c != NULL ? JF_PROV_UPDATED : JF_PROV_CREATED;
    jsStreamInfo_Destroy(res);
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
     * worker computes every retry delay itself (docs/workers/architecture.md). */

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

    if (spec->placement_cluster != NULL) {
        /* nats.c's kvConfig has no placement: create the bucket's stream
         * the way js_CreateKeyValue does, placed in the cluster. */
        jsStreamConfig sc;
        jsPlacement    pl;
        jsStreamInfo  *res = NULL;
        char           subject[96];
        const char    *subjects[1] = { subject };
        int64_t        two_min = 2 * 60 * (int64_t)1000 * NS_PER_MS;

        snprintf(subject, sizeof(subject), "$KV.%s.>", spec->bucket);
        jsStreamConfig_Init(&sc);
        jsPlacement_Init(&pl);
        pl.Cluster = spec->placement_cluster;
        sc.Name = stream;
        sc.Description = spec->description;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.MaxMsgsPerSubject = spec->history > 0 ? spec->history : 1;
        sc.MaxAge = spec->ttl_ms * NS_PER_MS;
        sc.MaxMsgSize = spec->max_value_size ? spec->max_value_size : -1;
        sc.Storage = js_FileStorage;
        sc.Replicas = spec->replicas;
        sc.AllowRollup = true;
        sc.DenyDelete = true;
        sc.AllowDirect = true;
        sc.Discard = js_DiscardNew;
        sc.Duplicates = sc.MaxAge > 0 && sc.MaxAge < two_min ? sc.MaxAge : two_min;
        sc.Placement = &pl;
        jerr = 0;
        s = js_AddStream(&res, nc->js, &sc, &jo, &jerr);
        jsStreamInfo_Destroy(res);
        if (s != NATS_OK)
            return jf_js_status(s, jerr, err, what);
        *out = JF_PROV_CREATED;
        return JF_OK;
    }
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
    if (s == NATS_TIMEOUT) {
        /* A publish the account may not make is dropped by the server,
         * which says so asynchronously ("Permissions Violation for Publish
         * to ..."); the caller only sees the ack time out. Say why. */
        const char *last = NULL;
        if (natsConnection_GetLastError(nc->conn, &last) == NATS_NOT_PERMITTED && last != NULL &&
            strstr(last, subject) != NULL)
            return jf_err_set(err, JF_EDENIED, "%s: not permitted for this NATS user (%s)",
                              what, last);
    }
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
