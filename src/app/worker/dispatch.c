/*
 * dispatch.c - what happens to one delivered message.
 *
 * Order matters and follows DESIGN.md 4-5: cheap structural checks first
 * (subject, job id, size), then the type, authorization, schedule and
 * payload, then the ledger, and only then the handler. Every way out of
 * this file acknowledges the message exactly once and logs why, so no
 * input can crash the worker or vanish silently:
 *
 *   ack        the job succeeded (ledger written first), or it was a
 *              duplicate of a job that already succeeded or died
 *   nak(d)     retry after the policy's delay, a scheduled job that is not
 *              due, or a transient failure of the ledger or the DLQ
 *   dead letter, then ack
 *              bad input (rejected), terminal failure (failed), attempts
 *              used up (exhausted)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <bsd/stdlib.h>
#include <protobuf-c/protobuf-c.h>

#include "app/deadletter.h"
#include "app/worker/worker.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/jobctx.h"
#include "core/log.h"
#include "core/pbjson.h"
#include "core/registry_impl.h"
#include "core/timefmt.h"
#include "shared/arena_impl.h"
#include "shared/ids.h"
#include "shared/subject.h"

/* Delay before trying again when the ledger or the DLQ cannot be reached. */
#define TRANSIENT_DELAY_MS 2000

typedef enum { ACK, NAK } ack_kind_t;

/* What the log line of a message carries; fields are filled as parsing
 * gets further. */
typedef struct msg_ctx {
    jf_worker_t       *w;
    jf_slot_t         *slot;
    jf_jsmsg_t        *msg;
    const jf_jsmeta_t *meta;
    const char        *msg_id;     /* Nats-Msg-Id, once valid */
    const char        *job_id;     /* Jf-Job-Id of a replay, else msg_id */
    jf_subject_t       subj;
    bool               have_subj;
    uint32_t           attempt;    /* from the ledger; 0 before it is read */
    char               trace_id[33];
    char               key[JF_LEDGER_KEY_MAX];
    bool               have_key;
    jf_job_record_t   *rec;        /* the ledger record, once read or made */
    uint32_t           max_attempts;   /* the job type's policy, once known */
    int64_t            t0_us;
    int64_t            started_ms; /* wall clock when the handler started */
    int64_t            run_us;     /* the handler's run time */
} msg_ctx_t;

/* The event source of this message, as known so far. */
static void emit(const msg_ctx_t *c, Jetfleet__V1__EventKind kind, const jf_event_extra_t *x)
{
    jf_event_src_t src = {
        .job_id = c->job_id,
        .tenant = c->have_subj ? c->subj.tenant : NULL,
        .type = c->have_subj ? c->subj.type : NULL,
        .stream = c->meta->stream,
        .stream_seq = c->meta->stream_seq,
        .enqueued_ms = c->meta->timestamp_ns / 1000000,
        .attempt = c->attempt,
        .trace_id = c->trace_id,
        .started_ms = c->started_ms,
        .run_us = c->run_us,
    };

    jf_worker_emit(c->w, &src, kind, x);
}

/* Count the job's outcome; the handler's run time when it ran. */
static void count(const msg_ctx_t *c, const char *outcome, bool ran)
{
    jf_metrics_job(c->w->metrics, c->have_subj ? c->subj.type : "_invalid", outcome,
                   ran ? (double)c->run_us / 1e6 : -1.0);
}

/* ---- logging ------------------------------------------------------------------ */

static void log_msg(const msg_ctx_t *c, jf_log_level_t level, const jf_log_field_t *extra,
                    size_t nextra, const char *msg)
{
    jf_log_field_t f[20];
    size_t         n = 0;

    if (!jf_log_enabled(level))
        return;
    f[n++] = JF_LS("job_id", c->job_id ? c->job_id : "");
    f[n++] = JF_LS("tenant", c->have_subj ? c->subj.tenant : "");
    f[n++] = JF_LS("type", c->have_subj ? c->subj.type : "");
    f[n++] = JF_LN("attempt", c->attempt);
    f[n++] = JF_LN("delivery", c->meta->delivered);
    f[n++] = JF_LN("stream_seq", c->meta->stream_seq);
    f[n++] = JF_LS("subject", jf_jsmsg_subject(c->msg));
    f[n++] = JF_LS("worker", c->w->worker_id);
    if (c->trace_id[0])
        f[n++] = JF_LS("trace_id", c->trace_id);
    for (size_t i = 0; i < nextra && n < 20; i++)
        f[n++] = extra[i];
    jf_log_fields(level, f, n, "%s", msg);
}

/* ---- acknowledgements ---------------------------------------------------------- */

/* Acknowledge under the slot lock: the progress ticker and, at shutdown,
 * the main thread touch the same message. */
static jf_status_t acknowledge(msg_ctx_t *c, ack_kind_t kind, uint32_t delay_ms)
{
    jf_err_t    err = { 0 };
    jf_status_t st = JF_OK;

    if (c->slot == NULL) {   /* settling: no thread, ticker or shutdown shares it */
        st = kind == ACK ? jf_jsmsg_ack(c->msg, &err) : jf_jsmsg_nak(c->msg, delay_ms, &err);
        goto out;
    }
    pthread_mutex_lock(&c->slot->mu);
    if (!jf_jsmsg_acked(c->msg)) {
        switch (kind) {
        case ACK:  st = jf_jsmsg_ack(c->msg, &err); break;
        case NAK:  st = jf_jsmsg_nak(c->msg, delay_ms, &err); break;
        }
    } else {
        st = JF_ESTATE;
        jf_err_set(&err, st, "already released at shutdown");
    }
    c->slot->deadline_mono = 0;   /* stop extending it */
    pthread_mutex_unlock(&c->slot->mu);
out:
    if (st != JF_OK) {
        jf_log_field_t e = JF_LS("error", jf_err_msg(&err));
        /* The server redelivers after AckWait; the job is not lost. */
        log_msg(c, JF_LOG_WARN, &e, 1, "acknowledgement not sent");
    }
    return st;
}

/* A transient failure of our own (ledger, DLQ): try the whole job again
 * later without counting it against the job. */
static void retry_later(msg_ctx_t *c, const char *what, const jf_err_t *err)
{
    /* Each NAK uses one of MaxDeliver's deliveries: back off exponentially
     * with the delivery count (2 s, 4 s, ... capped at a minute) so that an
     * outage of minutes, not seconds, is needed to use them up. */
    uint64_t       d = c->meta->delivered ? c->meta->delivered : 1;
    uint64_t       shift = d > 6 ? 5 : d - 1;
    uint32_t       base = (uint32_t)TRANSIENT_DELAY_MS << shift;
    uint32_t       delay = (base > 60000 ? 60000 : base) / 2 +
                           arc4random_uniform((base > 60000 ? 60000 : base) / 2 + 1);
    jf_log_field_t f[3] = { JF_LS("error", jf_err_msg(err)), JF_LN("next_delay_ms", delay),
                            JF_LS("outcome", "retry_scheduled") };

    acknowledge(c, NAK, delay);
    log_msg(c, JF_LOG_ERROR, f, 3, what);
}

/* ---- the ledger ------------------------------------------------------------------ */

static void fill_record(msg_ctx_t *c, Jetfleet__V1__JobState state, const char *code,
                        const char *error)
{
    jf_job_record_t *r = c->rec;
    int64_t          now = jf_clock_now_ms();

    r->state = state;
    r->worker = c->w->worker_id;
    r->stream_seq = c->meta->stream_seq;
    if (state == JETFLEET__V1__JOB_STATE__JOB_STATE_RUNNING) {
        r->last_started_ms = now;
        if (r->first_started_ms == 0)
            r->first_started_ms = now;
        r->finished_ms = 0;
    } else {
        r->finished_ms = now;
    }
    if (code != NULL) {
        r->last_error_code = (char *)code;
        r->last_error = (char *)(error ? error : "");
    }
}

/* Record the job's state and wait for the server's acknowledgement. */
static jf_status_t ledger_write(msg_ctx_t *c, Jetfleet__V1__JobState state, const char *code,
                                const char *error, jf_err_t *err)
{
    if (c->w->ledger_off)
        return JF_OK;   /* dedupe-only mode: nothing to record */
    fill_record(c, state, code, error);
    if (c->slot == NULL)   /* settling: no thread to wait on */
        return jf_ledger_put(c->w->ledger, c->key, c->rec, err);
    return jf_worker_ledger_put(c->w, c->slot, c->key, c->rec, err);
}

/* ---- dead letters ------------------------------------------------------------------- */

/* Move the job to the DLQ, record it, then ack. On a DLQ failure the job is
 * NAKed and dead-lettering is tried again on the next delivery. */
static void dead_letter(msg_ctx_t *c, const char *reason, jf_status_t code, const char *error)
{
    jf_err_t        err = { 0 };
    jf_deadletter_t dl = {
        .reason = reason,
        .job_id = c->job_id,
        .tenant = c->have_subj ? c->subj.tenant : NULL,
        .type = c->have_subj ? c->subj.type : NULL,
        .attempts = c->attempt,
        .error_code = jf_status_name(code),
        .last_error = error,
        .worker = c->w->worker_id,
        .original_subject = jf_jsmsg_subject(c->msg),
        .original_stream = c->meta->stream,
        .original_seq = c->meta->stream_seq,
        .dlq_prefix = c->w->cfg->names.dlq_prefix,
    };
    jf_log_field_t f[4] = {
        JF_LS("outcome", reason),
        JF_LS("error_code", jf_status_name(code)),
        JF_LS("error", error ? error : ""),
        JF_LS("dead_letter", c->w->cfg->names.dlq_stream),
    };

    if (jf_deadletter_delivered(c->w->nc, c->msg, &dl, &err) != JF_OK) {
        /* The job's fate is decided; only storing it failed. Record that no
         * run is left, so the next delivery dead-letters without running
         * the handler again. */
        if (c->rec != NULL && c->max_attempts > 0) {
            jf_err_t e2 = { 0 };
            c->rec->attempts = c->max_attempts > c->rec->attempts ? c->max_attempts
                                                                   : c->rec->attempts;
            ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_FAILED, jf_status_name(code),
                         error, &e2);
        }
        retry_later(c, "dead-lettering failed; will retry", &err);
        return;
    }
    if (c->rec != NULL &&
        ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD, jf_status_name(code), error,
                     &err) != JF_OK) {
        /* The dead letter is stored; the next delivery dead-letters again
         * (deduplicated by the DLQ) and retries this write. */
        retry_later(c, "dead letter stored but the ledger write failed; will retry", &err);
        return;
    }
    if (acknowledge(c, ACK, 0) == JF_OK)
        log_msg(c, JF_LOG_ERROR, f, 4,
                strcmp(reason, "rejected") == 0 ? "job rejected" : "job failed");
    {
        jf_event_extra_t x = { .error_code = jf_status_name(code), .error_text = error };
        if (strcmp(reason, "rejected") == 0) {
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_REJECTED, &x);
        } else {
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_FAILED, &x);
        }
        count(c, reason, c->started_ms != 0);
        emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_DEAD_LETTERED, &x);
    }
}

static void reject(msg_ctx_t *c, jf_status_t code, const char *reason)
{
    dead_letter(c, "rejected", code, reason);
}

/* ---- parsing helpers ----------------------------------------------------------------- */

static const char *header_of(const void *src, const char *name)
{
    return jf_jsmsg_header(src, name);
}

typedef enum { CT_JSON, CT_PROTOBUF, CT_UNKNOWN } content_type_t;

static content_type_t content_type(const char *ct)
{
    size_t len;

    if (ct == NULL || ct[0] == '\0')
        return CT_JSON;   /* `nats pub` sets none: JSON is the CLI's form */
    len = strcspn(ct, ";");   /* ignore parameters such as charset */
    while (len > 0 && ct[len - 1] == ' ')
        len--;
    if (len == 16 && strncasecmp(ct, "application/json", len) == 0)
        return CT_JSON;
    if ((len == 20 && strncasecmp(ct, "application/protobuf", len) == 0) ||
        (len == 22 && strncasecmp(ct, "application/x-protobuf", len) == 0))
        return CT_PROTOBUF;
    return CT_UNKNOWN;
}

/* ---- the pipeline --------------------------------------------------------------------- */

/* The job id: Jf-Job-Id on a replay, else Nats-Msg-Id (*ret_msg_id). NULL
 * with the reason in err when either is not a valid id. */
static const char *job_id_of(jf_jsmsg_t *msg, const char **ret_msg_id, jf_err_t *err)
{
    const char *msg_id = jf_jsmsg_header(msg, "Nats-Msg-Id");
    const char *job_id;

    if (jf_job_id_check(msg_id, err) != JF_OK)
        return NULL;
    *ret_msg_id = msg_id;
    job_id = jf_jsmsg_header(msg, JF_HDR_JOB_ID);
    if (job_id == NULL)
        return msg_id;
    if (jf_job_id_check(job_id, err) != JF_OK) {
        jf_err_t inner = *err;
        jf_err_set(err, JF_EINVAL, "%s: %s", JF_HDR_JOB_ID, jf_err_msg(&inner));
        return NULL;
    }
    return job_id;
}

bool jf_dispatch_ledger_key(const jf_worker_t *w, jf_jsmsg_t *msg, char *key, size_t size)
{
    jf_subject_t subj;
    jf_err_t     err = { 0 };
    const char  *msg_id, *job_id;

    return jf_subject_parse(jf_jsmsg_subject(msg), w->cfg->names.jobs_prefix, &subj,
                            &err) == JF_OK &&
           (job_id = job_id_of(msg, &msg_id, &err)) != NULL &&
           jf_ledger_key(key, size, subj.tenant, subj.type, job_id, &err) == JF_OK;
}

/* Steps 1-7: everything that needs no ledger. Returns the job type and the
 * decoded payload, or NULL when the message was already finished. */
static const jf_job_type_t *prepare(msg_ctx_t *c, ProtobufCMessage **ret_payload,
                                    void **ret_mstate, const jf_registry_t **ret_view)
{
    const jf_worker_t   *w = c->w;
    const jf_config_t   *cfg = w->cfg;
    jf_err_t             err = { 0 };
    const jf_job_type_t *jt;
    const char          *v;
    char                 reason[400];
    size_t               size;

    /* 1. subject */
    if (jf_subject_parse(jf_jsmsg_subject(c->msg), cfg->names.jobs_prefix, &c->subj, &err) != JF_OK) {
        snprintf(reason, sizeof(reason), "bad subject: %s", jf_err_msg(&err));
        reject(c, JF_EINVAL, reason);
        return NULL;
    }
    c->have_subj = true;

    /* 2. job id: Nats-Msg-Id, and Jf-Job-Id on a replay */
    if ((c->job_id = job_id_of(c->msg, &c->msg_id, &err)) == NULL) {
        reject(c, JF_EINVAL, jf_err_msg(&err));
        return NULL;
    }
    if (jf_trace_id_parse(jf_jsmsg_header(c->msg, "traceparent"), c->trace_id) != JF_OK)
        jf_trace_id_new(c->trace_id);

    /* 3. size (the stream's max_msg_size also guards this at publish) */
    size = jf_jsmsg_size(c->msg);
    if (size > (size_t)cfg->max_payload) {
        snprintf(reason, sizeof(reason), "message is %zu bytes, JF_MAX_PAYLOAD is %" PRId64,
                 size, cfg->max_payload);
        reject(c, JF_ETOOBIG, reason);
        return NULL;
    }

    /* 4. type */
    jt = jf_registry_find_type(w->reg, c->subj.type, NULL, ret_mstate, ret_view);
    if (jt == NULL) {
        snprintf(reason, sizeof(reason), "unknown job type '%s' (no module '%s' with action '%s')",
                 c->subj.type, c->subj.module, c->subj.action);
        reject(c, JF_ENOTFOUND, reason);
        return NULL;
    }

    /* 5. authorization: allow-list, tenant policy, signature */
    {
        pthread_rwlock_t  *mu = (pthread_rwlock_t *)&w->sec_mu;
        const char *const *keys;
        size_t             nkeys;
        jf_status_t        st;

        st = jf_worker_authorize(w, c->subj.tenant, c->subj.type, jt, jf_jsmsg_len(c->msg),
                                 &err);
        if (st == JF_OK) {
            pthread_rwlock_rdlock(mu);
            if (w->policy != NULL &&
                jf_policy_requires_signature(w->policy, c->subj.tenant, &keys, &nkeys))
                st = jf_signature_verify(jf_jsmsg_header(c->msg, JF_HDR_SIGNATURE),
                                         jf_jsmsg_subject(c->msg), c->job_id,
                                         jf_jsmsg_data(c->msg), jf_jsmsg_len(c->msg),
                                         keys, nkeys, w->secrets, &err);
            pthread_rwlock_unlock(mu);   /* keys were borrowed from the policy: used above only */
        }
        if (st != JF_OK) {
            if (jf_status_retryable(st))   /* a libcrypto failure, not the job's fault */
                retry_later(c, "signature check failed in libcrypto; will retry", &err);
            else
                reject(c, st, jf_err_msg(&err));   /* JF_EDENIED or JF_ETOOBIG */
            return NULL;
        }
    }

    /* 6. schedule: not due yet means a NAK that no attempt is charged for */
    v = jf_jsmsg_header(c->msg, JF_HDR_NOT_BEFORE);
    if (v != NULL) {
        int64_t not_before, now = jf_clock_now_ms();
        if (jf_time_parse_ms(v, &not_before, &err) != JF_OK) {
            snprintf(reason, sizeof(reason), "%s: %s", JF_HDR_NOT_BEFORE, jf_err_msg(&err));
            reject(c, JF_EINVAL, reason);
            return NULL;
        }
        if (not_before > now) {
            /* NAK delays are capped by nothing in the server, but keep a
             * day so a typo in the year does not park a job for ever
             * unnoticed: it comes back daily and is NAKed again. */
            int64_t        wait = not_before - now;
            uint32_t       delay = wait > 86400000 ? 86400000u : (uint32_t)wait;
            jf_log_field_t f[2] = { JF_LS("outcome", "scheduled"), JF_LN("next_delay_ms", delay) };
            if (acknowledge(c, NAK, delay) == JF_OK)
                log_msg(c, JF_LOG_DEBUG, f, 2, "job not due yet");
            return NULL;
        }
    }

    /* 7. payload */
    v = jf_jsmsg_header(c->msg, "Content-Type");
    switch (content_type(v)) {
    case CT_JSON: {
        jf_pbjson_limits_t lim = { (size_t)cfg->max_payload, (int)cfg->json_max_depth };
        if (jf_pbjson_decode(jt->payload, jf_jsmsg_data(c->msg), jf_jsmsg_len(c->msg), &lim,
                             ret_payload, &err) != JF_OK) {
            snprintf(reason, sizeof(reason), "payload is not a valid %s in JSON: %s",
                     jt->payload->name, jf_err_msg(&err));
            reject(c, JF_EDECODE, reason);
            return NULL;
        }
        break;
    }
    case CT_PROTOBUF:
        *ret_payload = protobuf_c_message_unpack(jt->payload, NULL, jf_jsmsg_len(c->msg),
                                                 (const uint8_t *)jf_jsmsg_data(c->msg));
        if (*ret_payload == NULL) {
            snprintf(reason, sizeof(reason), "payload is not a valid binary %s",
                     jt->payload->name);
            reject(c, JF_EDECODE, reason);
            return NULL;
        }
        break;
    case CT_UNKNOWN:
        snprintf(reason, sizeof(reason), "unsupported Content-Type '%.100s'; use "
                 "application/json or application/protobuf", v);
        reject(c, JF_EDECODE, reason);
        return NULL;
    }

    /* 8. tenant isolation: a payload may not speak for another tenant */
    {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(jt->payload, "tenant");
        if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
            f->label != PROTOBUF_C_LABEL_REPEATED) {
            const char *named = *(const char *const *)((const char *)*ret_payload + f->offset);
            if (named != NULL && named[0] != '\0' && strcmp(named, c->subj.tenant) != 0) {
                snprintf(reason, sizeof(reason), "payload names tenant '%.64s' but the job was "
                         "published for tenant '%s'", named, c->subj.tenant);
                protobuf_c_message_free_unpacked(*ret_payload, NULL);
                *ret_payload = NULL;
                reject(c, JF_EDENIED, reason);
                return NULL;
            }
        }
    }
    return jt;
}

/* Step 8 in dedupe-only mode (JF_LEDGER_MODE=off): no ledger is read or
 * written. Duplicates are only those the stream's duplicate window drops
 * at publish, and the attempt is JetStream's delivery count, so every
 * redelivery counts: a crash, a NAK at shutdown, a transient failure of
 * the DLQ and an early delivery of a scheduled job each use one attempt.
 * This weakens DESIGN.md 5.1 (docs/reliability.md). */
static bool admit_without_ledger(msg_ctx_t *c, const jf_job_type_t *jt)
{
    uint64_t d = c->meta->delivered ? c->meta->delivered : 1;

    c->max_attempts = jt->retry.max_attempts;
    c->attempt = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    if (c->attempt > jt->retry.max_attempts) {
        char reason[300];
        /* Deliveries past the policy's maximum come from runs that ended
         * without an answer (the worker died or timed out): DESIGN.md 5.4. */
        c->attempt = jt->retry.max_attempts;
        emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
        snprintf(reason, sizeof(reason), "retries exhausted after %u attempts; delivery %" PRIu64
                 " of a job without a ledger (JF_LEDGER_MODE=off): the last ended without an "
                 "answer (worker died or timed out)", c->attempt, d);
        dead_letter(c, "exhausted", JF_ETIMEOUT, reason);
        return false;
    }
    emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
    return true;
}

/* Step 8: the ledger decides whether this delivery runs. Returns false
 * when the message was finished here. */
static bool admit(msg_ctx_t *c, const jf_job_type_t *jt)
{
    jf_job_record_t *stored = NULL;
    jf_err_t         err = { 0 };
    jf_status_t      st;

    if (c->w->ledger_off)
        return admit_without_ledger(c, jt);
    if (jf_ledger_key(c->key, sizeof(c->key), c->subj.tenant, c->subj.type, c->job_id,
                      &err) != JF_OK) {
        reject(c, JF_ETOOBIG, jf_err_msg(&err));
        return false;
    }
    c->have_key = true;
    if (c->slot->have_pre && (c->slot->pre_st == JF_OK || c->slot->pre_st == JF_ENOTFOUND)) {
        st = c->slot->pre_st;   /* read ahead while the job waited for a thread */
        stored = c->slot->pre_rec;
        c->slot->pre_rec = NULL;
    } else {
        if (c->slot->have_pre)
            log_msg(c, JF_LOG_DEBUG, NULL, 0, "ledger read-ahead failed; reading again");
        st = jf_ledger_get(c->w->ledger, c->key, &stored, &err);
    }
    if (st != JF_OK && st != JF_ENOTFOUND) {
        retry_later(c, "ledger unavailable; the job waits", &err);
        return false;
    }
    /* Work on a copy in the job's arena, so that fields can point at
     * borrowed strings without confusing protobuf-c's free. */
    c->rec = jf_arena_alloc(c->slot->arena, sizeof(*c->rec));
    if (c->rec == NULL) {
        jf_job_record_free(stored);
        jf_err_set(&err, JF_ENOMEM, "out of memory");
        retry_later(c, "cannot create the ledger record", &err);
        return false;
    }
    jetfleet__v1__job_record__init(c->rec);
    c->rec->job_id = (char *)c->job_id;
    c->rec->tenant = c->subj.tenant;
    c->rec->type = c->subj.type;
    if (stored != NULL) {
        jf_arena_t *a = c->slot->arena;
        c->rec->state = stored->state;
        c->rec->attempts = stored->attempts;
        c->rec->first_started_ms = stored->first_started_ms;
        c->rec->last_started_ms = stored->last_started_ms;
        c->rec->finished_ms = stored->finished_ms;
        c->rec->replays = stored->replays;
        c->rec->worker = jf_arena_strdup(a, stored->worker);
        c->rec->last_error = jf_arena_strdup(a, stored->last_error);
        c->rec->last_error_code = jf_arena_strdup(a, stored->last_error_code);
        jf_job_record_free(stored);
        if (c->rec->worker == NULL || c->rec->last_error == NULL ||
            c->rec->last_error_code == NULL) {
            c->rec = NULL;
            jf_err_set(&err, JF_ENOMEM, "out of memory");
            retry_later(c, "cannot copy the ledger record", &err);
            return false;
        }
    }
    if (st == JF_OK && c->rec->state == JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD &&
        strcmp(c->job_id, c->msg_id) != 0 && c->rec->stream_seq != c->meta->stream_seq) {
        /* A replay (it carries Jf-Job-Id, and it is another stored message
         * than the one that died) that overtook `dlq replay`'s ledger
         * reset, or raced the DEAD write: it runs, with fresh attempts. */
        c->rec->state = JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED;
        c->rec->attempts = 0;
    }
    if (st == JF_OK) {
        switch (c->rec->state) {
        case JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED:
        case JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD: {
            jf_log_field_t f[2] = { JF_LS("outcome", "duplicate"),
                                    JF_LS("ledger_state", jf_job_state_name(c->rec->state)) };
            c->attempt = c->rec->attempts;
            if (acknowledge(c, ACK, 0) == JF_OK)
                log_msg(c, JF_LOG_INFO, f, 2, "job duplicate");
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_DUPLICATE, NULL);
            count(c, "duplicate", false);
            return false;
        }
        default:
            break;
        }
    }

    c->max_attempts = jt->retry.max_attempts;
    /* Runs that died with their worker count too: a job that crashes every
     * worker stops here instead of looping (DESIGN.md 5.4). */
    if (c->rec->attempts >= jt->retry.max_attempts) {
        char reason[300];
        c->attempt = c->rec->attempts;
        emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
        if (c->rec->state == JETFLEET__V1__JOB_STATE__JOB_STATE_FAILED)
            snprintf(reason, sizeof(reason), "retries exhausted after %u attempts: %s",
                     c->rec->attempts, c->rec->last_error && c->rec->last_error[0]
                                           ? c->rec->last_error : "no error recorded");
        else
            snprintf(reason, sizeof(reason), "retries exhausted after %u attempts; the last "
                     "ended without an answer (worker died or timed out): %s",
                     c->rec->attempts, c->rec->last_error && c->rec->last_error[0]
                                           ? c->rec->last_error : "no error recorded");
        dead_letter(c, "exhausted", JF_ETIMEOUT, reason);
        return false;
    }

    c->rec->attempts++;
    c->attempt = c->rec->attempts;
    /* Acknowledged before the handler runs: a run that kills its worker
     * is then counted, and the job stops at max_attempts (DESIGN.md 5.4). */
    if (ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_RUNNING, NULL, NULL, &err) != JF_OK) {
        c->rec->attempts--;
        retry_later(c, "ledger unavailable; the job waits", &err);
        return false;
    }
    emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED, NULL);
    return true;
}

/* ---- settling: a success acknowledged when the ledger answers ------------------------ */

struct jf_settling {
    msg_ctx_t c;         /* slot and rec cleared: the thread has moved on */
    bool      overrun;
};

/* The `succeeded` record of a job goes to the server and the job thread
 * moves on; jf_dispatch_settle() acknowledges the job when the server has
 * stored the record, so DESIGN.md 5.1's order (ledger, then ack) holds
 * without a thread waiting a round trip. true when the job was handed
 * off; false to take the synchronous path instead. */
static bool settle_later(msg_ctx_t *c, bool overrun)
{
    jf_settling_t *s;
    jf_slot_t     *slot = c->slot;
    jf_err_t       err = { 0 };
    uint64_t       token;

    if (c->w->ledger_off || (s = malloc(sizeof(*s))) == NULL)
        return false;
    fill_record(c, JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "", "");
    s->c = *c;
    s->c.slot = NULL;
    s->c.rec = NULL;
    s->overrun = overrun;
    /* From here the message is the settler's: neither the progress ticker
     * nor shutdown may touch it through the slot. */
    pthread_mutex_lock(&slot->mu);
    slot->current = NULL;
    slot->deadline_mono = 0;
    pthread_mutex_unlock(&slot->mu);
    if (!jf_worker_settle_later(c->w, s, &token))
        goto back;
    if (jf_ledger_put_async(c->w->ledger, c->key, c->rec, token, &err) == JF_OK)
        return true;
    if (!jf_worker_settle_cancel(c->w, token))
        return true;   /* timed out and settled meanwhile: no longer ours */
back:
    free(s);
    pthread_mutex_lock(&slot->mu);
    slot->current = c->msg;
    pthread_mutex_unlock(&slot->mu);
    return false;
}

void jf_dispatch_settle(jf_worker_t *w, jf_settling_t *s, jf_status_t st, const char *why)
{
    msg_ctx_t *c = &s->c;

    if (st == JF_OK) {
        jf_log_field_t f[2] = { JF_LS("outcome", "succeeded"), JF_LN("duration_us", c->run_us) };
        if (s->overrun)
            log_msg(c, JF_LOG_WARN, NULL, 0, "job finished after its deadline");
        if (acknowledge(c, ACK, 0) == JF_OK)
            log_msg(c, JF_LOG_DEBUG, f, 2, "job succeeded");
        emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_SUCCEEDED, NULL);
        count(c, "succeeded", true);
    } else if (st == JF_ESTATE) {
        /* Shutdown before the answer: the record may be stored, so the
         * next delivery is probably a duplicate; give it back at once. */
        jf_log_field_t f[2] = { JF_LS("outcome", "returned"),
                                JF_LS("error", "worker shut down before the ledger answered") };
        if (acknowledge(c, NAK, 0) == JF_OK)
            log_msg(c, JF_LOG_WARN, f, 2, "job returned at shutdown");
    } else {
        jf_err_t err = { 0 };
        jf_err_set(&err, st, "%s", why ? why : jf_status_str(st));
        /* Not acked: it runs again, and the handler's idempotency key (the
         * job id) keeps the second effect harmless. */
        retry_later(c, "job succeeded but the ledger write failed; it will run again", &err);
    }
    jf_jsmsg_destroy(c->msg);
    jf_pull_done(w->pull, 1);
    jf_worker_job_done(w, c->subj.tenant);
    free(s);
    atomic_fetch_sub(&w->settling, 1);
}

/* Step 10: record the handler's answer and acknowledge. true when the job
 * was handed off to settle later (the message is no longer the caller's). */
static bool finish(msg_ctx_t *c, const jf_job_type_t *jt, jf_result_t res, bool overrun,
                   int64_t deadline_ms)
{
    jf_err_t    err = { 0 };
    const char *why = res.reason ? res.reason : jf_status_str(res.code);
    char        reason[400];
    int64_t     dur_us = c->run_us;

    if (res.outcome != JF_JOB_OK && overrun && !atomic_load(&c->w->cancel)) {
        /* A deadline overrun is retryable, whatever the handler said. */
        snprintf(reason, sizeof(reason), "deadline of %" PRId64 " ms exceeded: %s",
                 deadline_ms, why);
        res = jf_retry(JF_ETIMEOUT, 0, NULL);
        why = reason;
    }

    switch (res.outcome) {
    case JF_JOB_OK: {
        jf_log_field_t f[2] = { JF_LS("outcome", "succeeded"), JF_LN("duration_us", dur_us) };
        if (settle_later(c, overrun))
            return true;
        if (ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "", "", &err) != JF_OK) {
            /* Not acked: it runs again, and the handler's idempotency key
             * (the job id) keeps the second effect harmless. */
            retry_later(c, "job succeeded but the ledger write failed; it will run again", &err);
            return false;
        }
        if (overrun)
            log_msg(c, JF_LOG_WARN, NULL, 0, "job finished after its deadline");
        if (acknowledge(c, ACK, 0) == JF_OK)
            log_msg(c, JF_LOG_DEBUG, f, 2, "job succeeded");
        emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_SUCCEEDED, NULL);
        count(c, "succeeded", true);
        return false;
    }
    case JF_JOB_RETRY:
        if (atomic_load(&c->w->cancel)) {
            /* Stopped by shutdown, not by its own failure: give it back at
             * once and do not charge the attempt (DESIGN.md 5.6). */
            jf_log_field_t   f[2] = { JF_LS("outcome", "returned"), JF_LS("error", why) };
            jf_event_extra_t x = { .error_code = "JF_EUNAVAILABLE",
                                   .error_text = "interrupted by worker shutdown" };
            ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_FAILED, x.error_code,
                         x.error_text, &err);
            if (acknowledge(c, NAK, 0) == JF_OK)
                log_msg(c, JF_LOG_WARN, f, 2, "job returned at shutdown");
            emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RETRY_SCHEDULED, &x);
            count(c, "returned", true);
            return false;
        }
        if (c->attempt >= jt->retry.max_attempts) {
            snprintf(reason, sizeof(reason), "retries exhausted after %u attempts: %s",
                     c->attempt, why);
            dead_letter(c, "exhausted", res.code, reason);
            return false;
        }
        {
            uint32_t       delay = jf_backoff_delay_ms(&jt->retry, c->attempt, res.retry_after_ms);
            jf_log_field_t f[5] = {
                JF_LS("outcome", "retry_scheduled"), JF_LN("next_delay_ms", delay),
                JF_LS("error_code", jf_status_name(res.code)), JF_LS("error", why),
                JF_LN("duration_us", dur_us),
            };
            if (ledger_write(c, JETFLEET__V1__JOB_STATE__JOB_STATE_FAILED, jf_status_name(res.code),
                             why, &err) != JF_OK) {
                retry_later(c, "ledger write failed after a retryable failure", &err);
                return false;
            }
            if (acknowledge(c, NAK, delay) == JF_OK)
                log_msg(c, JF_LOG_WARN, f, 5, "job will be retried");
            {
                jf_event_extra_t x = { .error_code = jf_status_name(res.code), .error_text = why,
                                       .next_delay_ms = delay };
                emit(c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_RETRY_SCHEDULED, &x);
                count(c, "retry_scheduled", true);
            }
        }
        return false;
    case JF_JOB_FAIL:
    default:
        dead_letter(c, "failed", res.code, why);
        return false;
    }
}

jf_status_t jf_worker_authorize(const jf_worker_t *w, const char *tenant, const char *type,
                                const jf_job_type_t *jt, size_t size, jf_err_t *err)
{
    jf_status_t st = jf_authz_check(w->authz, tenant, type, jt, err);

    if (st != JF_OK)
        return JF_EDENIED;
    pthread_rwlock_t *mu = (pthread_rwlock_t *)&w->sec_mu;   /* a reader lock: no change */

    pthread_rwlock_rdlock(mu);
    if (w->policy != NULL)
        st = jf_policy_check(w->policy, tenant, type, size, err);
    pthread_rwlock_unlock(mu);
    return st;
}

bool jf_dispatch(jf_worker_t *w, jf_slot_t *slot, jf_jsmsg_t *msg)
{
    msg_ctx_t            c = { .w = w, .slot = slot, .msg = msg };
    const jf_job_type_t *jt;
    ProtobufCMessage    *payload = NULL;
    void                *mstate = NULL;
    const jf_registry_t *view = NULL;
    bool                 handed_off = false;

    c.meta = jf_jsmsg_meta(msg);
    c.t0_us = jf_clock_mono_us();

    jt = prepare(&c, &payload, &mstate, &view);
    if (jt == NULL || !admit(&c, jt))
        goto done;

    /* 9. run, with +WPI from the ticker until the deadline */
    {
        const jf_config_t *cfg = w->cfg;
        int64_t  deadline = jt->deadline_ms ? jt->deadline_ms : cfg->job_deadline;
        int64_t  start_mono = jf_clock_mono_ms();
        struct jf_job job = {
            .id = c.job_id,
            .tenant = c.subj.tenant,
            .type = c.subj.type,
            .attempt = c.attempt,
            .deadline_ms = jf_clock_now_ms() + deadline,
            .deadline_mono_ms = start_mono + deadline,
            .arena = slot->arena,
            .registry = view,   /* the module's view: its declared contracts only */
            .module_state = mstate,
            .shutting_down = &w->cancel,
            .header = header_of,
            .header_src = msg,
            .hooks = &w->hooks,
        };
        jf_result_t res;
        bool        overrun;

        memcpy(job.trace_id, c.trace_id, sizeof(job.trace_id));
        pthread_mutex_lock(&slot->mu);
        slot->last_progress = start_mono;
        slot->deadline_mono = start_mono + deadline;
        slot->overrun_logged = false;
        pthread_mutex_unlock(&slot->mu);

        c.started_ms = jf_clock_now_ms();
        log_msg(&c, JF_LOG_DEBUG, NULL, 0, "job started");
        emit(&c, JETFLEET__V1__EVENT_KIND__EVENT_KIND_STARTED, NULL);
        c.run_us = jf_clock_mono_us();
        res = jt->handler(&job, payload);
        c.run_us = jf_clock_mono_us() - c.run_us;
        overrun = jf_clock_mono_ms() > start_mono + deadline;
        handed_off = finish(&c, jt, res, overrun, deadline);
    }

done:
    jf_job_record_free(slot->pre_rec);   /* a read-ahead the job never got to use */
    slot->pre_rec = NULL;
    slot->have_pre = false;
    if (payload != NULL)
        protobuf_c_message_free_unpacked(payload, NULL);
    jf_arena_reset(slot->arena);
    pthread_mutex_lock(&slot->mu);
    slot->current = NULL;
    slot->deadline_mono = 0;
    pthread_mutex_unlock(&slot->mu);
    if (!handed_off) {
        jf_jsmsg_destroy(msg);
        jf_pull_done(w->pull, 1);
    }
    return handed_off;
}
