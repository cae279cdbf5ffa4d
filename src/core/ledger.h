/*
 * ledger.h - the job ledger: one record per job in the JF_LEDGER KV bucket
 * (docs/reliability.md, "The ledger").
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

#include "core/kv.h"
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

/* ---- asynchronous access (the worker's job path) ------------------------------
 *
 * Reads and writes go through the ledger's own pipe (core/pipe.h): the
 * caller embeds a jf_ledger_op_t in its job, sends, and gets the answer
 * through op->done on the pipe's thread. Writes are compare-and-set on the
 * revision read, so a run never overwrites a record it did not see: a
 * `succeeded` written by another run is never replaced by an older one.
 */
typedef struct jf_ledger_op jf_ledger_op_t;

/* Called once per request, on the pipe's thread. st is:
 *   a read   JF_OK (op->rec, which the callee owns: free it with
 *            jf_job_record_free(); op->rev); JF_ENOTFOUND (no record;
 *            op->rev is what a write must expect); JF_EDECODE for a value
 *            that is not a JobRecord (op->rev set: it may be overwritten);
 *   a write  JF_OK (op->rev the new revision); JF_ESTATE when the record
 *            changed since it was read;
 *   a probe  JF_OK when the bucket exists, JF_ENOTFOUND when it does not;
 *   any      JF_EUNAVAILABLE (no responders: the bucket is missing, or
 *            JetStream is down: probe to tell), JF_ETIMEOUT, JF_EIO,
 *            JF_ESTATE (for a read or probe: the ledger is closing), with
 *            op->why. */
typedef void (*jf_ledger_done_fn)(jf_ledger_op_t *op, jf_status_t st);

struct jf_ledger_op {
    jf_ledger_done_fn done;     /* set by the caller */
    jf_job_record_t  *rec;
    uint64_t          rev;
    const char       *why;      /* valid during done */

    jf_kv_op_t        kv;       /* private */
};

/* Start the pipe the asynchronous calls use, over the ledger's connection;
 * requests time out after timeout_ms. */
jf_status_t jf_ledger_start(jf_ledger_t *l, int64_t timeout_ms, jf_err_t *err);

/* Ask for the record under key. */
jf_status_t jf_ledger_read(jf_ledger_t *l, jf_ledger_op_t *op, const char *key,
                           jf_err_t *err);

/* Store rec under key if the key's revision is still expect (0: it has no
 * entry). An error here means nothing was sent and done will not run. */
jf_status_t jf_ledger_write(jf_ledger_t *l, jf_ledger_op_t *op, const char *key,
                            const jf_job_record_t *rec, uint64_t expect, jf_err_t *err);

/* Ask whether the bucket exists. */
jf_status_t jf_ledger_probe(jf_ledger_t *l, jf_ledger_op_t *op, jf_err_t *err);

/* The bucket's name. */
const char *jf_ledger_bucket(const jf_ledger_t *l);

/* "running", "succeeded", ... */
const char *jf_job_state_name(Jetfleet__V1__JobState st);

#endif /* JF_CORE_LEDGER_H */
