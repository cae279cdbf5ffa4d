/*
 * quarantine.h - poison messages the worker path could not dead-letter
 * (docs/reliability.md, "Poison pills").
 */
#ifndef JF_APP_WORKER_QUARANTINE_H
#define JF_APP_WORKER_QUARANTINE_H

#include "shared/err.h"

struct jf_worker;

/* Listen to the consumer's MAX_DELIVERIES and MSG_TERMINATED advisories. */
jf_status_t jf_quarantine_start(struct jf_worker *w, jf_err_t *err);
void jf_quarantine_stop(struct jf_worker *w);

#endif /* JF_APP_WORKER_QUARANTINE_H */
