/*
 * contract.h - the subscriptions module's only public face.
 *
 * subscriptions owns which endpoints each tenant wants its events sent to,
 * kept in its own KV bucket (JF_SUBSCRIPTIONS_BUCKET, key = tenant).
 *
 *   subscriptions.upsert  payload jetfleet.subscriptions.v1.Upsert
 *   subscriptions.remove  payload jetfleet.subscriptions.v1.Remove
 *
 * and the service "subscriptions.v1" below, which other modules reach
 * through the registry after declaring it in their requires list. Every
 * call takes the job it is made for: the tenant is the job's, so a module
 * can only ever see or change its own tenant's endpoints.
 * See docs/modules/subscriptions.md.
 */
#ifndef JF_MODULES_SUBSCRIPTIONS_CONTRACT_H
#define JF_MODULES_SUBSCRIPTIONS_CONTRACT_H

#include <stddef.h>

#include <jetfleet/job.h>
#include <jetfleet/module.h>
#include <jetfleet/subscriptions/v1/subscriptions.pb-c.h>

#define JF_SUBSCRIPTIONS_V1 "subscriptions.v1"

/* An endpoint as the service hands it out; strings in the job's arena. */
typedef struct jf_subscriptions_endpoint {
    const char *id;
    const char *url;
} jf_subscriptions_endpoint_t;

typedef struct jf_subscriptions_v1 {
    /* The job's tenant's enabled endpoints subscribed to event_type, in id
     * order, in the job's arena (*ret_n may be 0). Retryable statuses when
     * the bucket cannot be read; *ret_reason says why (arena). */
    jf_status_t (*list)(void *instance, jf_job_t *job, const char *event_type,
                        jf_subscriptions_endpoint_t **ret, size_t *ret_n,
                        const char **ret_reason);
    /* Disable one of the job's tenant's endpoints, recording reason.
     * Disabling an endpoint that is already disabled or that does not exist
     * is JF_OK (the goal is reached). Retryable statuses on a bucket error. */
    jf_status_t (*disable)(void *instance, jf_job_t *job, const char *endpoint_id,
                           const char *reason, const char **ret_reason);
} jf_subscriptions_v1_t;

/* The module descriptor, listed in the composition root (src/app/modules.c). */
extern const jf_module_t jf_module_subscriptions;

#endif /* JF_MODULES_SUBSCRIPTIONS_CONTRACT_H */
