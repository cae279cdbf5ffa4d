/*
 * audit.h - reading lifecycle events back from AUDIT, shared by
 * `jetfleet audit tail` and `jetfleet job show` (implemented in cmd_audit.c).
 */
#ifndef JF_APP_AUDIT_H
#define JF_APP_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/nats.h"
#include "core/telemetry.h"
#include "shared/err.h"

/* One decoded event and where AUDIT stored it; everything is borrowed. */
typedef struct jf_audit_event {
    const jf_job_event_t *ev;
    const char           *subject;
    uint64_t              seq;         /* AUDIT stream sequence */
    int64_t               stored_ms;
} jf_audit_event_t;

/* Read the AUDIT stream and telemetry subjects of these names (the
 * configured region's); call once before the functions below. */
void jf_audit_use(const jf_names_t *n);

/* Return false to stop the scan. */
typedef bool (*jf_audit_visit_fn)(const jf_audit_event_t *e, void *arg);

/* Visit the events stored now on telemetry.jobs.<tenant>.<type>.* (NULL:
 * any), oldest first, skipping other jobs when job_id is not NULL. An
 * undecodable message is reported on stderr and skipped. JF_ENOTFOUND,
 * with a sentence naming `jetfleet provision`, when AUDIT does not exist. */
jf_status_t jf_audit_scan(jf_nats_t *nc, const char *tenant, const char *type,
                          const char *job_id, jf_audit_visit_fn fn, void *arg, jf_err_t *err);

/* The line `audit tail` prints for e, or its JSON object; malloc'ed,
 * without a newline, freed by the caller. */
jf_status_t jf_audit_event_line(const jf_audit_event_t *e, char **out, jf_err_t *err);
jf_status_t jf_audit_event_json(const jf_audit_event_t *e, char **out, jf_err_t *err);

#endif /* JF_APP_AUDIT_H */
