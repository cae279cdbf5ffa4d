/*
 * notifications.c - notifications.publish: one event, one webhook delivery
 * per subscribed endpoint.
 *
 * The fan-out is idempotent by construction: the children's ids derive
 * from this job's id and the endpoint id (jf_job_enqueue), so running the
 * publish again after a crash, a retry or a redelivery re-enqueues the same
 * children, which JetStream (duplicate window) or the ledger (after it)
 * drop. The endpoint list is read at every run, so an endpoint added
 * between two runs of one publish receives the event too, and one removed
 * in between may still receive it if its child was enqueued before.
 */
#include <stdio.h>
#include <string.h>

#include <jetfleet/jetfleet.h>

#include "modules/notifications/contract.h"
#include "modules/subscriptions/contract.h"
#include "modules/webhooks/contract.h"

static bool event_type_ok(const char *t)
{
    size_t n = 0;

    for (const char *p = t; *p; p++, n++) {
        char c = *p;
        if (n >= 128 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                          c == '.' || c == '-'))
            return false;
    }
    return n > 0;
}

static jf_result_t notifications_publish(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Notifications__V1__Publish *p = (const void *)payload;
    jf_arena_t                  *a = jf_job_arena(job);
    const jf_subscriptions_v1_t *subs;
    jf_service_t                 svc;
    jf_subscriptions_endpoint_t *eps = NULL;
    size_t                       n = 0, fresh = 0;
    const char                  *reason = NULL;
    jf_status_t                  st;

    if (!event_type_ok(p->event_type))
        return jf_fail(JF_EINVAL, "event_type must be 1 to 128 characters of [a-z0-9_.-]");
    st = jf_registry_get(jf_job_registry(job), JF_SUBSCRIPTIONS_V1, &svc);
    if (st != JF_OK)
        return jf_fail(st, "the subscriptions.v1 service is not available");
    subs = svc.vtable;
    st = subs->list(svc.instance, job, p->event_type, &eps, &n, &reason);
    if (st != JF_OK)
        return jf_status_retryable(st) ? jf_retry(st, 0, reason) : jf_fail(st, reason);

    for (size_t i = 0; i < n; i++) {
        Jetfleet__Webhooks__V1__Deliver d = JETFLEET__WEBHOOKS__V1__DELIVER__INIT;
        const char                     *child = NULL;

        if (jf_job_cancelled(job))
            return jf_retry(JF_ETIMEOUT, 0, jf_arena_sprintf(a, "fan-out interrupted after "
                                                             "%zu of %zu endpoints", i, n));
        d.url = (char *)eps[i].url;
        d.body = p->data;
        d.content_type = p->content_type;
        d.event_type = p->event_type;
        d.endpoint_id = (char *)eps[i].id;
        st = jf_job_enqueue(job, JF_WEBHOOKS_DELIVER, &d.base, eps[i].id, &child);
        if (st != JF_OK) {
            reason = jf_arena_sprintf(a, "enqueueing the delivery to endpoint %s (%zu of %zu) "
                                      "failed: %s", eps[i].id, i + 1, n, jf_status_str(st));
            return jf_status_retryable(st) ? jf_retry(st, 0, reason) : jf_fail(st, reason);
        }
        fresh++;
    }
    jf_job_log(job, JF_LOG_INFO, "event %s fanned out to %zu endpoint(s)", p->event_type, fresh);
    return jf_ok();
}

static const jf_job_type_t notifications_types[] = {
    { .action = "publish", .summary = "deliver an event to every subscribed endpoint",
      .payload = &jetfleet__notifications__v1__publish__descriptor,
      .retry = JF_RETRY_DEFAULT, .deadline_ms = 60000, .handler = notifications_publish },
    { 0 },
};

static const char *const notifications_requires[] = { JF_SUBSCRIPTIONS_V1, NULL };

const jf_module_t jf_module_notifications = {
    .abi_version = JF_ABI_VERSION,
    .name = "notifications",
    .summary = "fan an event out to its subscribers as signed webhook deliveries",
    .job_types = notifications_types,
    .requires = notifications_requires,
};
