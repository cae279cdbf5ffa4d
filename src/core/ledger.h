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

/* ---- pipelined access (docs/performance.md) ------------------------------------
 *
 * The worker asks for a job's record when the message arrives, so that it
 * is there when a job thread takes the job, and hands the `succeeded`
 * record to the server without a thread waiting for it: the job is
 * acknowledged when the answer comes. Built on core/kv.h's pipe.
 */

/* The answer to jf_ledger_get_async(), on the library's thread: rec (the
 * callee's to free with jf_job_record_free()) with JF_OK; JF_ENOTFOUND;
 * or another status (JF_EDECODE for a value that is not a JobRecord) with
 * why. */
typedef void (*jf_ledger_got_fn)(uint64_t token, jf_status_t st, jf_job_record_t *rec,
                                 const char *why, void *arg);

/* The answer to jf_ledger_put_async(): JF_OK once stored, or why not. */
typedef void (*jf_ledger_put_fn)(uint64_t token, jf_status_t st, const char *why, void *arg);

/* Start answering asynchronous calls through got and put. */
jf_status_t jf_ledger_pipe_start(jf_ledger_t *l, jf_ledger_got_fn got, jf_ledger_put_fn put,
                                 void *arg, jf_err_t *err);

/* Ask for the record under key; got gets token back, or nothing at all
 * when the server never answers (the caller times out). */
jf_status_t jf_ledger_get_async(jf_ledger_t *l, const char *key, uint64_t token,
                                jf_err_t *err);

/* Store rec under key; put gets token back (or nothing: time it out). A
 * later write of the same key from the same connection lands after it. */
jf_status_t jf_ledger_put_async(jf_ledger_t *l, const char *key, const jf_job_record_t *rec,
                                uint64_t token, jf_err_t *err);

/* "running", "succeeded", ... */
const char *jf_job_state_name(Jetfleet__V1__JobState st);

#endif /* JF_CORE_LEDGER_H */
