/*
 * enqueue.c - the enqueue service behind include/jetfleet/enqueue.h.
 *
 * A child job is an ordinary job: published to the job stream on
 * <prefix>.<parent's tenant>.<module>.<action> with its derived id as
 * Nats-Msg-Id, so that the stream's duplicate window and the ledger make a
 * re-run parent's children no-ops. The same rules as for a job published
 * from outside are checked here first, so a parent learns at once that a
 * child would be refused (and fails, instead of leaving a dead letter per
 * child); dispatch checks them again when the child runs. When the
 * tenant's policy demands signed jobs, the runtime signs the child with the
 * tenant's first signing key it holds: children are the runtime's own
 * publications, made on behalf of an already verified parent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <bsd/stdlib.h>

#include "app/deadletter.h"
#include "app/worker/enqueue.h"
#include "app/worker/guard.h"
#include "app/worker/worker.h"
#include "core/jsadmin.h"
#include "core/registry_impl.h"
#include "security/signature.h"

#define HDR_PARENT_ID "Jf-Parent-Id"

jf_status_t jf_worker_enqueue(void *ctx, const jf_job_t *parent, const char *type,
                              const ProtobufCMessage *payload, const char *child_id)
{
    jf_worker_t         *w = ctx;
    const jf_config_t   *cfg = w->cfg;
    const char          *tenant = parent->tenant;
    const jf_job_type_t *jt;
    jf_err_t             err = { 0 };
    jf_pub_ack_t         ack;
    char                 subject[512];
    char                 signature[JF_SIGNATURE_MAX];
    char                 traceparent[64], span[17];
    uint8_t              span_raw[8];
    jf_header_t          hdrs[4];
    size_t               nhdrs = 0, len;
    uint8_t             *buf;
    jf_status_t          st;

    jt = jf_registry_find_type(w->reg, type, NULL, NULL, NULL);
    if (jt == NULL) {
        st = jf_err_set(&err, JF_ENOTFOUND, "no job type %.80s in this runtime", type);
        goto out;
    }
    if (payload->descriptor != jt->payload) {
        st = jf_err_set(&err, JF_EINVAL, "payload is a %s, %s takes a %s",
                        payload->descriptor->name, type, jt->payload->name);
        goto out;
    }
    if (snprintf(subject, sizeof(subject), "%s.%s.%s", cfg->names.jobs_prefix, tenant, type) >=
        (int)sizeof(subject)) {
        st = jf_err_set(&err, JF_EINVAL, "subject for %s is too long", type);
        goto out;
    }
    len = protobuf_c_message_get_packed_size(payload);
    if (len > (size_t)cfg->max_payload) {
        st = jf_err_set(&err, JF_ETOOBIG, "child payload is %zu bytes, JF_MAX_PAYLOAD is %"
                        PRId64, len, cfg->max_payload);
        goto out;
    }
    st = jf_guard_authorize(w->guard, tenant, type, jt, len, &err);
    if (st != JF_OK)
        goto out;
    buf = jf_arena_alloc(parent->arena, len + 1);
    if (buf == NULL) {
        st = jf_err_set(&err, JF_ENOMEM, "out of memory");
        goto out;
    }
    protobuf_c_message_pack(payload, buf);
    st = jf_guard_sign(w->guard, tenant, subject, child_id, buf, len, signature,
                       sizeof(signature), &err);
    if (st != JF_OK)
        goto out;

    /* The child continues the parent's trace, as a new span. */
    arc4random_buf(span_raw, sizeof(span_raw));
    span_raw[0] |= 1;   /* never all zeros */
    for (size_t i = 0; i < sizeof(span_raw); i++)
        snprintf(span + 2 * i, 3, "%02x", span_raw[i]);
    snprintf(traceparent, sizeof(traceparent), "00-%s-%s-01", parent->trace_id, span);
    hdrs[nhdrs++] = (jf_header_t){ "Content-Type", "application/protobuf" };
    hdrs[nhdrs++] = (jf_header_t){ "traceparent", traceparent };
    hdrs[nhdrs++] = (jf_header_t){ HDR_PARENT_ID, parent->id };
    if (signature[0] != '\0')
        hdrs[nhdrs++] = (jf_header_t){ JF_HDR_SIGNATURE, signature };
    st = jf_js_publish(w->nc, subject, buf, len, hdrs, nhdrs, child_id, &ack, &err);
    if (st == JF_OK)
        jf_job_log(parent, JF_LOG_DEBUG, "child job %s (%s) %s %s-%" PRIu64, child_id, type,
                   ack.duplicate ? "was already stored as" : "stored as", ack.stream, ack.seq);
out:
    if (st != JF_OK)
        jf_job_log(parent, JF_LOG_WARN, "child job %s (%s) not enqueued: %s", child_id, type,
                   jf_err_msg(&err));
    return st;
}
