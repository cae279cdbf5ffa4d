/*
 * ledger.h - the job ledger: one record per job in the JF_LEDGER KV bucket
 * (DESIGN.md 4, 5.1).
 *
 * The runtime reads a job's record before running it and writes it before
 * acknowledging, so that a job whose effect already succeeded is never run
 * again, and attempts are counted across crashes and workers.
 */
#ifndef JF_CORE_LEDGER_H
#define JF_CORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <jetfleet/v1/ledger.pb-c.h>

#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_ledger jf_ledger_t;
typedef Jetfleet__V1__JobRecord jf_job_record_t;

/* Longest key: tenant, module, action, three dots and an id of 128 bytes
 * each written as =XX. */
#define JF_LEDGER_KEY_MAX (64 * 3 + 3 + 128 * 3 + 1)

/* Bind to an existing bucket (created by `jetfleet provision`).
 * JF_ENOTFOUND when it does not exist. */
jf_status_t jf_ledger_open(jf_ledger_t **out, jf_nats_t *nc, const char *bucket, jf_err_t *err);

/* Accepts NULL. */
void jf_ledger_close(jf_ledger_t *l);

/* "<tenant>.<type>.<encoded id>" into buf. JF_ETOOBIG when it does not fit. */
jf_status_t jf_ledger_key(char *buf, size_t size, const char *tenant, const char *type,
                          const char *job_id, jf_err_t *err);

/* The record under key. JF_ENOTFOUND when there is none (never run, or
 * expired). *out is freed with jf_job_record_free(). */
jf_status_t jf_ledger_get(jf_ledger_t *l, const char *key, jf_job_record_t **out,
                          jf_err_t *err);

/* Store rec under key (last writer wins). */
jf_status_t jf_ledger_put(jf_ledger_t *l, const char *key, const jf_job_record_t *rec,
                          jf_err_t *err);

void jf_job_record_free(jf_job_record_t *rec);

/* "running", "succeeded", ... */
const char *jf_job_state_name(Jetfleet__V1__JobState st);

#endif /* JF_CORE_LEDGER_H */
