/*
 * contract.h - the webhooks module's only public face.
 *
 * webhooks delivers signed HTTP callbacks; it offers no service contract.
 *
 *   webhooks.deliver  payload jetfleet.webhooks.v1.Deliver
 *                     POSTs body to url (http/https only), signed with the
 *                     tenant's secret(s) by the Standard Webhooks scheme;
 *                     webhook-id is the job id, so receivers deduplicate.
 *                     Every address connected to passes the runtime's
 *                     egress guard first. See docs/modules/webhooks.md.
 */
#ifndef JF_MODULES_WEBHOOKS_CONTRACT_H
#define JF_MODULES_WEBHOOKS_CONTRACT_H

#include <jetfleet/module.h>
#include <jetfleet/webhooks/v1/webhooks.pb-c.h>

/* The job type other modules enqueue (include/jetfleet/enqueue.h) with a
 * Jetfleet__Webhooks__V1__Deliver payload. */
#define JF_WEBHOOKS_DELIVER "webhooks.deliver"

/* The module descriptor, listed in the composition root (src/app/modules.c). */
extern const jf_module_t jf_module_webhooks;

#endif /* JF_MODULES_WEBHOOKS_CONTRACT_H */
