/*
 * dispatch.c - what happens to one delivered message.
 *
 * Order matters and follows DESIGN.md 4-5: cheap structural checks first
 * (subject, size, job id), then the type, then authorization, then the
 * payload decode, and only then the handler. Every way out of this file
 * acknowledges the message exactly once (ack, nak or term) and logs why,
 * so no input can crash the worker or vanish silently.
 *
 * Seams for the reliability issue: finish_terminal() is where dead letters
 * will be published; the attempt number will come from the ledger.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "app/worker/worker.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/jobctx.h"
#include "core/log.h"
#include "core/pbjson.h"
#include "core/registry_impl.h"
#include "shared/arena_impl.h"
#include "shared/ids.h"
#include "shared/subject.h"

/* What the log line of a message carries; fields are filled as parsing
 * gets further. */
typedef struct msg_ctx {
    jf_worker_t       *w;
    jf_slot_t         *slot;
    jf_jsmsg_t        *msg;
    const jf_jsmeta_t *meta;
    const char        *job_id;
    jf_subject_t       subj;
    bool               have_subj;
    char               trace_id[33];
    int64_t            t0_us;
} msg_ctx_t;

static size_t log_fields(const msg_ctx_t *c, jf_log_field_t *f)
{
    size_t n = 0;

    f[n++] = JF_LS("job_id", c->job_id ? c->job_id : "");
    f[n++] = JF_LS("tenant", c->have_subj ? c->subj.tenant : "");
    f[n++] = JF_LS("type", c->have_subj ? c->subj.type : "");
    f[n++] = JF_LN("attempt", c->meta->delivered);
    f[n++] = JF_LN("stream_seq", c->meta->stream_seq);
    f[n++] = JF_LS("subject", jf_jsmsg_subject(c->msg));
    f[n++] = JF_LS("worker", c->w->worker_id);
    if (c->trace_id[0])
        f[n++] = JF_LS("trace_id", c->trace_id);
    return n;
}

static void log_msg(const msg_ctx_t *c, jf_log_level_t level, const jf_log_field_t *extra,
                    size_t nextra, const char *msg)
{
    jf_log_field_t f[16];
    size_t         n;

    if (!jf_log_enabled(level))
        return;
    n = log_fields(c, f);
    for (size_t i = 0; i < nextra && n < 16; i++)
        f[n++] = extra[i];
    jf_log_fields(level, f, n, "%s", msg);
}

/* Acknowledge under the slot lock: at shutdown the main thread may have
 * NAKed a job that overran the grace period. */
typedef enum { ACK, NAK, TERM } ack_kind_t;

static jf_status_t acknowledge(msg_ctx_t *c, ack_kind_t kind, uint32_t delay_ms)
{
    jf_err_t    err = { 0 };
    jf_status_t st = JF_OK;

    pthread_mutex_lock(&c->slot->mu);
    if (!jf_jsmsg_acked(c->msg)) {
        switch (kind) {
        case ACK:  st = jf_jsmsg_ack(c->msg, &err); break;
        case NAK:  st = jf_jsmsg_nak(c->msg, delay_ms, &err); break;
        case TERM: st = jf_jsmsg_term(c->msg, &err); break;
        }
    } else {
        st = JF_ESTATE;
        jf_err_set(&err, st, "already released at shutdown");
    }
    pthread_mutex_unlock(&c->slot->mu);
    if (st != JF_OK) {
        jf_log_field_t e = JF_LS("error", jf_err_msg(&err));
        /* The server redelivers after AckWait; the job is not lost. */
        log_msg(c, JF_LOG_WARN, &e, 1, "acknowledgement not sent");
    }
    return st;
}

/* The job cannot succeed: terminate it with its reason. The reliability
 * issue replaces this with a dead letter on dlq.<tenant>.<module>.<action>
 * followed by an ack (DESIGN.md 5.3). */
static void finish_terminal(msg_ctx_t *c, const char *outcome, jf_status_t code,
                            const char *reason)
{
    jf_log_field_t f[3] = {
        JF_LS("outcome", outcome),
        JF_LS("error_code", jf_status_name(code)),
        JF_LS("error", reason ? reason : ""),
    };

    acknowledge(c, TERM, 0);
    log_msg(c, JF_LOG_ERROR, f, 3, strcmp(outcome, "rejected") == 0 ? "job rejected"
                                                                      : "job failed");
}

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

void jf_dispatch(jf_worker_t *w, jf_slot_t *slot, jf_jsmsg_t *msg)
{
    const jf_config_t   *cfg = w->cfg;
    msg_ctx_t            c = { .w = w, .slot = slot, .msg = msg };
    jf_err_t             err = { 0 };
    const jf_job_type_t *jt;
    void                *mstate = NULL;
    ProtobufCMessage    *payload = NULL;
    const char          *ct;
    char                 reason[320];
    size_t               size;

    c.meta = jf_jsmsg_meta(msg);
    c.t0_us = jf_clock_mono_us();

    /* 1. subject */
    if (jf_subject_parse(jf_jsmsg_subject(msg), cfg->subject_prefix, &c.subj, &err) != JF_OK) {
        snprintf(reason, sizeof(reason), "bad subject: %s", jf_err_msg(&err));
        finish_terminal(&c, "rejected", JF_EINVAL, reason);
        goto done;
    }
    c.have_subj = true;

    /* 2. job id */
    c.job_id = jf_jsmsg_header(msg, "Nats-Msg-Id");
    if (jf_job_id_check(c.job_id, &err) != JF_OK) {
        c.job_id = NULL;
        finish_terminal(&c, "rejected", JF_EINVAL, jf_err_msg(&err));
        goto done;
    }

    /* 3. size (the stream's max_msg_size also guards this at publish) */
    size = jf_jsmsg_size(msg);
    if (size > (size_t)cfg->max_payload) {
        snprintf(reason, sizeof(reason), "message is %zu bytes, JF_MAX_PAYLOAD is %" PRId64,
                 size, cfg->max_payload);
        finish_terminal(&c, "rejected", JF_ETOOBIG, reason);
        goto done;
    }

    if (jf_trace_id_parse(jf_jsmsg_header(msg, "traceparent"), c.trace_id) != JF_OK)
        jf_trace_id_new(c.trace_id);

    /* 4. type */
    jt = jf_registry_find_type(w->reg, c.subj.type, NULL, &mstate);
    if (jt == NULL) {
        snprintf(reason, sizeof(reason), "unknown job type '%s' (no module '%s' with action '%s')",
                 c.subj.type, c.subj.module, c.subj.action);
        finish_terminal(&c, "rejected", JF_ENOTFOUND, reason);
        goto done;
    }

    /* 5. authorization */
    if (jf_authz_check(w->authz, c.subj.tenant, c.subj.type, jt, &err) != JF_OK) {
        finish_terminal(&c, "rejected", JF_EDENIED, jf_err_msg(&err));
        goto done;
    }

    /* 6. payload */
    ct = jf_jsmsg_header(msg, "Content-Type");
    switch (content_type(ct)) {
    case CT_JSON: {
        jf_pbjson_limits_t lim = { (size_t)cfg->max_payload, (int)cfg->json_max_depth };
        if (jf_pbjson_decode(jt->payload, jf_jsmsg_data(msg), jf_jsmsg_len(msg), &lim,
                             &payload, &err) != JF_OK) {
            snprintf(reason, sizeof(reason), "payload is not a valid %s in JSON: %s",
                     jt->payload->name, jf_err_msg(&err));
            finish_terminal(&c, "rejected", JF_EDECODE, reason);
            goto done;
        }
        break;
    }
    case CT_PROTOBUF:
        payload = protobuf_c_message_unpack(jt->payload, NULL, jf_jsmsg_len(msg),
                                            (const uint8_t *)jf_jsmsg_data(msg));
        if (payload == NULL) {
            snprintf(reason, sizeof(reason), "payload is not a valid binary %s",
                     jt->payload->name);
            finish_terminal(&c, "rejected", JF_EDECODE, reason);
            goto done;
        }
        break;
    case CT_UNKNOWN:
        snprintf(reason, sizeof(reason), "unsupported Content-Type '%.100s'; use "
                 "application/json or application/protobuf", ct);
        finish_terminal(&c, "rejected", JF_EDECODE, reason);
        goto done;
    }

    /* 7. run */
    {
        int64_t  deadline = jt->deadline_ms ? jt->deadline_ms : cfg->job_deadline;
        uint32_t attempt = (uint32_t)c.meta->delivered;
        struct jf_job job = {
            .id = c.job_id,
            .tenant = c.subj.tenant,
            .type = c.subj.type,
            .attempt = attempt,
            .deadline_ms = jf_clock_now_ms() + deadline,
            .deadline_mono_ms = jf_clock_mono_ms() + deadline,
            .arena = slot->arena,
            .registry = w->reg,
            .module_state = mstate,
            .shutting_down = &w->cancel,
            .header = header_of,
            .header_src = msg,
        };
        jf_result_t res;
        int64_t     dur_us;

        memcpy(job.trace_id, c.trace_id, sizeof(job.trace_id));
        log_msg(&c, JF_LOG_DEBUG, NULL, 0, "job started");
        res = jt->handler(&job, payload);
        dur_us = jf_clock_mono_us() - c.t0_us;

        switch (res.outcome) {
        case JF_JOB_OK: {
            jf_log_field_t f[2] = { JF_LS("outcome", "succeeded"), JF_LN("duration_us", dur_us) };
            if (acknowledge(&c, ACK, 0) == JF_OK)
                log_msg(&c, JF_LOG_DEBUG, f, 2, "job succeeded");
            break;
        }
        case JF_JOB_RETRY:
            if (atomic_load(&w->cancel)) {
                /* Stopped by shutdown, not by its own failure: give it
                 * back at once, for another worker (DESIGN.md 5.6). */
                jf_log_field_t f[2] = { JF_LS("outcome", "returned"),
                                        JF_LS("error", res.reason ? res.reason : "") };
                if (acknowledge(&c, NAK, 0) == JF_OK)
                    log_msg(&c, JF_LOG_WARN, f, 2, "job returned at shutdown");
            } else if (attempt >= jt->retry.max_attempts) {
                snprintf(reason, sizeof(reason), "retries exhausted after %u attempts: %s",
                         attempt, res.reason ? res.reason : jf_status_str(res.code));
                finish_terminal(&c, "failed", res.code, reason);
            } else {
                uint32_t delay = jf_backoff_delay_ms(&jt->retry, attempt, res.retry_after_ms);
                jf_log_field_t f[4] = {
                    JF_LS("outcome", "retry_scheduled"), JF_LN("next_delay_ms", delay),
                    JF_LS("error_code", jf_status_name(res.code)),
                    JF_LS("error", res.reason ? res.reason : jf_status_str(res.code)),
                };
                if (acknowledge(&c, NAK, delay) == JF_OK)
                    log_msg(&c, JF_LOG_WARN, f, 4, "job will be retried");
            }
            break;
        case JF_JOB_FAIL:
        default:
            finish_terminal(&c, "failed", res.code,
                            res.reason ? res.reason : jf_status_str(res.code));
            break;
        }
    }

done:
    if (payload != NULL)
        protobuf_c_message_free_unpacked(payload, NULL);
    jf_arena_reset(slot->arena);
    pthread_mutex_lock(&slot->mu);
    slot->current = NULL;
    pthread_mutex_unlock(&slot->mu);
    jf_jsmsg_destroy(msg);
    jf_pull_done(w->pull, 1);
}
