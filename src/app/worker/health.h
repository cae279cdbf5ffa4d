/*
 * health.h - what the worker says about itself: /metrics, /healthz and
 * /readyz on JF_METRICS_ADDR, the process title `ps` shows, and the
 * lifecycle events it could not publish, told at a measured pace.
 */
#ifndef JF_APP_WORKER_HEALTH_H
#define JF_APP_WORKER_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/err.h"

struct jf_worker;
typedef struct jf_health jf_health_t;

/* Serve on w->cfg->metrics_addr when it is set. w is borrowed. */
jf_status_t jf_health_create(jf_health_t **out, struct jf_worker *w, jf_err_t *err);

/* Stop serving and free. Accepts NULL. */
void jf_health_destroy(jf_health_t *h);

/* From the ticker: refresh the process title, and log the events lost in
 * the last interval. */
void jf_health_tick(jf_health_t *h, int64_t now);

/* The telemetry's on_lost (arg is the health): counted at once, and logged
 * once per interval with the count and the last error, never per event. */
void jf_health_event_lost(bool dropped, const char *subject, const char *detail, void *arg);

#endif /* JF_APP_WORKER_HEALTH_H */
