/*
 * jobctx.h - the layout of jf_job_t, which the runtime fills for every
 * delivery and handlers read through include/jetfleet/job.h.
 */
#ifndef JF_CORE_JOBCTX_H
#define JF_CORE_JOBCTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jetfleet/enqueue.h>
#include <jetfleet/job.h>

#include "shared/ids.h"

typedef const char *(*jf_job_header_fn)(const void *src, const char *name);

/* What the runtime lends handlers beyond the message: secrets, the
 * egress guard and the enqueue service, backed by the security layer in src/app (core does not
 * know policies). Any function may be NULL: no secrets, no egress,
 * no enqueueing. */
typedef struct jf_job_hooks {
    jf_status_t (*secret)(void *ctx, const char *tenant, const char *kind, jf_arena_t *arena,
                          const void **ret_ptr, size_t *ret_len);
    bool (*egress)(void *ctx, const char *tenant, const struct sockaddr *addr, char *why,
                   size_t why_size);
    void *ctx;            /* for secret and egress */
    /* Publish a child job of parent's tenant under child_id (already
     * derived and checked); see include/jetfleet/enqueue.h for statuses. */
    jf_status_t (*enqueue)(void *ctx, const jf_job_t *parent, const char *type,
                           const ProtobufCMessage *payload, const char *child_id);
    void *enqueue_ctx;
} jf_job_hooks_t;

struct jf_job {
    const char          *id;
    const char          *tenant;
    const char          *type;
    uint32_t             attempt;
    int64_t              deadline_ms;       /* Unix ms */
    int64_t              deadline_mono_ms;  /* same, monotonic */
    char                 trace_id[33];
    jf_arena_t          *arena;
    const jf_registry_t *registry;
    void                *module_state;
    const atomic_bool   *shutting_down;     /* may be NULL */
    jf_job_header_fn     header;            /* may be NULL */
    const void          *header_src;
    const jf_job_hooks_t *hooks;            /* may be NULL */
};

/* Make a fresh W3C trace id (32 lowercase hex digits, not all zero). */
void jf_trace_id_new(char out[33]);

/* Take the trace id from a traceparent header
 * ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"). JF_EINVAL when
 * it is malformed or the id is all zeros. */
jf_status_t jf_trace_id_parse(const char *traceparent, char out[33]);

#endif /* JF_CORE_JOBCTX_H */
