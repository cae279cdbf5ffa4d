/*
 * contract.h - the notifications module's only public face.
 *
 * notifications turns one event into one signed webhook delivery per
 * subscribed endpoint; it offers no service contract.
 *
 *   notifications.publish  payload jetfleet.notifications.v1.Publish
 *                          asks subscriptions.v1 for the tenant's enabled
 *                          endpoints of the event type, then enqueues one
 *                          webhooks.deliver child job per endpoint through
 *                          the runtime's enqueue service
 *                          (include/jetfleet/enqueue.h), with the child id
 *                          "<publish job id>/<endpoint id>": a retried or
 *                          redelivered publish never delivers twice.
 * See docs/modules/notifications.md.
 */
#ifndef JF_MODULES_NOTIFICATIONS_CONTRACT_H
#define JF_MODULES_NOTIFICATIONS_CONTRACT_H

#include <jetfleet/module.h>
#include <jetfleet/notifications/v1/notifications.pb-c.h>

/* The module descriptor, listed in the composition root (src/app/modules.c). */
extern const jf_module_t jf_module_notifications;

#endif /* JF_MODULES_NOTIFICATIONS_CONTRACT_H */
