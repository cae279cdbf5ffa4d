/*
 * quarantine.c - poison messages the worker path could not dead-letter.
 *
 * A job that kills every worker before its ledger record is written, or
 * whose deliveries keep timing out, reaches the consumer's MaxDeliver. The
 * server then stops delivering it but, in nats-server 2.9, leaves it in the
 * work-queue stream, where it would sit unseen for ever. The server says so
 * with an advisory; every worker listens, and the first one to act moves
 * the message, looked up by stream sequence, to the DLQ and deletes it
 * from JOBS (docs/reliability.md, "Poison pills").
 *
 * Every worker receives every advisory (a queue group would lose it if its
 * one receiver died mid-move). Concurrent moves are safe: the DLQ copy's
 * Nats-Msg-Id is derived from the stream sequence, so the DLQ keeps one,
 * and only one delete succeeds; that worker alone logs the quarantine.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app/deadletter.h"
#include "app/worker/events.h"
#include "app/worker/quarantine.h"
#include "app/worker/worker.h"
#include "core/clock.h"
#include "core/jsstore.h"
#include "core/ledger.h"
#include "core/log.h"
#include "core/pull.h"
#include "shared/ids.h"
#include "shared/subject.h"

typedef struct advisory {
    char     kind[32];        /* "max_deliveries" or "terminated" */
    char     stream[64];
    char     consumer[64];
    uint64_t stream_seq;
    int64_t  deliveries;
} advisory_t;

static bool parse_advisory(const char *subject, const char *data, size_t len, advisory_t *a)
{
    json_t     *o = json_loadb(data, len, 0, NULL);
    const char *stream, *consumer;
    json_int_t  seq = 0, deliveries = 0;
    bool        ok;

    if (o == NULL)
        return false;
    ok = json_unpack(o, "{s:s, s:s, s:I, s?:I}", "stream", &stream, "consumer", &consumer,
                     "stream_seq", &seq, "deliveries", &deliveries) == 0 && seq > 0;
    if (ok) {
        snprintf(a->stream, sizeof(a->stream), "%s", stream);
        snprintf(a->consumer, sizeof(a->consumer), "%s", consumer);
        a->stream_seq = (uint64_t)seq;
        a->deliveries = deliveries;
        snprintf(a->kind, sizeof(a->kind), "%s",
                 strstr(subject, ".MSG_TERMINATED.") ? "terminated" : "max_deliveries");
    }
    json_decref(o);
    return ok;
}

static void on_advisory(const char *subject, const char *reply, const char *data, size_t len,
                        void *arg)
{
    jf_worker_t     *w = arg;
    advisory_t       a;
    jf_stored_msg_t *m = NULL;
    jf_err_t         err = { 0 };
    jf_subject_t     subj;
    bool             have_subj;
    const char      *job_id;
    jf_job_record_t *rec = NULL;
    char             key[JF_LEDGER_KEY_MAX];
    bool             have_key = false;
    char             reason[600];
    jf_status_t      st;

    (void)reply;
    if (!parse_advisory(subject, data, len, &a)) {
        jf_log_kv(JF_LOG_WARN, "ignored an advisory that does not parse",
                  JF_LS("subject", subject));
        return;
    }
    st = jf_js_get_msg(w->nc, a.stream, a.stream_seq, &m, &err);
    if (st == JF_ENOTFOUND) {
        /* Acked meanwhile, moved by another worker, or a phantom: an entry
         * nats-server 2.9 kept after a crash for a message that is gone
         * (docs/operations.md). Nothing to move either way. */
        jf_log_kv(JF_LOG_DEBUG, "advisory for a message already gone",
                  JF_LN("stream_seq", a.stream_seq), JF_LS("advisory", a.kind));
        return;
    }
    if (st != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "quarantine failed: cannot read the message; it stays in the "
                  "stream until moved (see docs/reliability.md)",
                  JF_LN("stream_seq", a.stream_seq), JF_LS("error", jf_err_msg(&err)));
        return;
    }

    have_subj = jf_subject_parse(jf_stored_msg_subject(m), w->cfg->names.jobs_prefix, &subj,
                                 NULL) == JF_OK;
    job_id = jf_stored_msg_header(m, JF_HDR_JOB_ID);
    if (job_id == NULL || jf_job_id_check(job_id, NULL) != JF_OK)
        job_id = jf_stored_msg_header(m, "Nats-Msg-Id");
    if (job_id != NULL && jf_job_id_check(job_id, NULL) != JF_OK)
        job_id = NULL;
    if (have_subj && job_id != NULL && w->ledger != NULL &&
        jf_ledger_key(key, sizeof(key), subj.tenant, subj.type, job_id, NULL) == JF_OK) {
        have_key = true;
        if (jf_ledger_get(w->ledger, key, &rec, NULL) != JF_OK)
            rec = NULL;
    }
    if (rec != NULL && rec->state == JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED) {
        /* The job succeeded and only its acknowledgement was lost: not a
         * poison pill. Remove the leftover message; no dead letter. */
        if (jf_js_delete_msg(w->nc, a.stream, a.stream_seq, &err) == JF_OK)
            jf_log_kv(JF_LOG_WARN, "message at MaxDeliver whose job already succeeded: removed "
                      "from the stream, not dead-lettered", JF_LS("job_id", job_id),
                      JF_LN("stream_seq", a.stream_seq), JF_LN("deliveries", a.deliveries));
        goto out;
    }
    if (strcmp(a.kind, "terminated") == 0)
        snprintf(reason, sizeof(reason), "terminated by a client (+TERM) after %" PRId64
                 " deliveries", a.deliveries);
    else
        snprintf(reason, sizeof(reason), "no acknowledgement after %" PRId64 " deliveries "
                 "(consumer MaxDeliver): the job probably crashes or stalls every worker; "
                 "last error: %s", a.deliveries,
                 rec && rec->last_error && rec->last_error[0] ? rec->last_error : "none recorded");
    {
        jf_deadletter_t dl = {
            .reason = "quarantined",
            .job_id = job_id,
            .tenant = have_subj ? subj.tenant : NULL,
            .type = have_subj ? subj.type : NULL,
            .attempts = rec ? rec->attempts : (uint32_t)a.deliveries,
            .error_code = "JF_ETIMEOUT",
            .last_error = reason,
            .worker = w->worker_id,
            .original_subject = jf_stored_msg_subject(m),
            .original_stream = a.stream,
            .original_seq = a.stream_seq,
            .dlq_prefix = w->cfg->names.dlq_prefix,
        };
        if (jf_deadletter_stored(w->nc, m, &dl, &err) != JF_OK) {
            jf_log_kv(JF_LOG_ERROR, "quarantine failed: the DLQ did not take the message; it "
                      "stays in the stream until moved (see docs/reliability.md)",
                      JF_LN("stream_seq", a.stream_seq), JF_LS("error", jf_err_msg(&err)));
            goto out;
        }
    }
    if (rec != NULL) {
        rec->state = JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD;
        rec->finished_ms = jf_clock_now_ms();
        /* Only a pointer swap: rec's own strings stay owned by rec. */
        jf_ledger_put(w->ledger, key, rec, NULL);
    }
    st = jf_js_delete_msg(w->nc, a.stream, a.stream_seq, &err);
    if (st == JF_OK) {
        jf_event_src_t   src = {
            .job_id = job_id,
            .tenant = have_subj ? subj.tenant : NULL,
            .type = have_subj ? subj.type : NULL,
            .stream = a.stream,
            .stream_seq = a.stream_seq,
            .enqueued_ms = jf_stored_msg_time_ns(m) / 1000000,
            .attempt = rec ? rec->attempts : (uint32_t)a.deliveries,
            .ended_ms = jf_clock_now_ms(),
        };
        jf_event_extra_t x = { .error_code = "JF_ETIMEOUT", .error_text = reason };
        jf_events_emit(&w->events, &src, JETFLEET__V1__EVENT_KIND__EVENT_KIND_QUARANTINED, &x);
        jf_events_emit(&w->events, &src, JETFLEET__V1__EVENT_KIND__EVENT_KIND_DEAD_LETTERED, &x);
    }
    if (st == JF_OK)
        jf_log_kv(JF_LOG_ERROR, "job quarantined", JF_LS("job_id", job_id ? job_id : ""),
                  JF_LS("tenant", have_subj ? subj.tenant : ""),
                  JF_LS("type", have_subj ? subj.type : ""), JF_LN("stream_seq", a.stream_seq),
                  JF_LN("deliveries", a.deliveries), JF_LS("outcome", "quarantined"),
                  JF_LS("error", reason), JF_LS("worker", w->worker_id));
    else if (st != JF_ENOTFOUND)
        jf_log_kv(JF_LOG_ERROR, "quarantine: copied to the DLQ but not deleted from the stream",
                  JF_LN("stream_seq", a.stream_seq), JF_LS("error", jf_err_msg(&err)));
out:
    (void)have_key;
    jf_job_record_free(rec);
    jf_stored_msg_destroy(m);
}

jf_status_t jf_quarantine_start(jf_worker_t *w, jf_err_t *err)
{
    char        subject[256];
    const char *pool = jf_pull_consumer(w->pull);
    jf_status_t st;

    snprintf(subject, sizeof(subject), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s",
             w->cfg->names.jobs_stream, pool);
    st = jf_nats_subscribe(w->nc, subject, NULL, on_advisory, w, &w->quarantine, err);
    if (st != JF_OK)
        return st;
    snprintf(subject, sizeof(subject), "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.%s.%s",
             w->cfg->names.jobs_stream, pool);
    st = jf_nats_subscribe(w->nc, subject, NULL, on_advisory, w, &w->quarantine_term, err);
    if (st != JF_OK) {
        jf_nats_unsubscribe(w->quarantine);
        w->quarantine = NULL;
    }
    return st;
}

void jf_quarantine_stop(jf_worker_t *w)
{
    jf_nats_unsubscribe(w->quarantine);
    jf_nats_unsubscribe(w->quarantine_term);
    w->quarantine = NULL;
    w->quarantine_term = NULL;
}
