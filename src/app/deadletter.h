/*
 * deadletter.h - the dead-letter contract (docs/reliability.md, "Dead letters").
 *
 * A dead letter is the original job message (payload and headers)
 * republished on dlq.<tenant>.<module>.<action> in the DLQ stream, with
 * these headers added:
 *
 *   Jf-Failure-Reason    failed | exhausted | rejected | quarantined
 *   Jf-Attempts          runs started (from the ledger), 0 when never run
 *   Jf-Last-Error        the last error, one line, at most 1000 characters
 *   Jf-Error-Code        the status name, e.g. JF_EDECODE
 *   Jf-Job-Id            the job id (ledger identity); absent for a job
 *                        rejected for having no valid id
 *   Jf-Original-Subject  where the job was published
 *   Jf-Original-Stream   and stored
 *   Jf-Original-Seq
 *   Jf-Dead-At           Unix milliseconds
 *   Jf-Worker            the worker id that dead-lettered it
 *
 * Its Nats-Msg-Id is jf-dlq-<original stream>-<original seq>: one stored
 * message dead-lettered twice (a worker died between the DLQ publish and
 * the ack, or two quarantine listeners raced) is stored once, while a
 * replayed job that fails again is a new message and a new dead letter.
 * A subject that cannot be parsed goes to dlq._invalid.subject.rejected.
 * The original is acknowledged only after the DLQ stream acknowledged.
 */
#ifndef JF_APP_DEADLETTER_H
#define JF_APP_DEADLETTER_H

#include <stdint.h>

#include "core/jsmsg.h"
#include "core/jsstore.h"
#include "core/nats.h"
#include "shared/err.h"

/* A dead letter whose subject did not parse goes to <dlq prefix>.<this>. */
#define JF_DLQ_INVALID_SUFFIX "_invalid.subject.rejected"

#define JF_HDR_FAILURE_REASON   "Jf-Failure-Reason"
#define JF_HDR_ATTEMPTS         "Jf-Attempts"
#define JF_HDR_LAST_ERROR       "Jf-Last-Error"
#define JF_HDR_ERROR_CODE       "Jf-Error-Code"
#define JF_HDR_JOB_ID           "Jf-Job-Id"
#define JF_HDR_ORIGINAL_SUBJECT "Jf-Original-Subject"
#define JF_HDR_ORIGINAL_STREAM  "Jf-Original-Stream"
#define JF_HDR_ORIGINAL_SEQ     "Jf-Original-Seq"
#define JF_HDR_DEAD_AT          "Jf-Dead-At"
#define JF_HDR_WORKER           "Jf-Worker"
#define JF_HDR_NOT_BEFORE       "Jf-Not-Before"
#define JF_HDR_SIGNATURE        "Jf-Signature"

/* The headers a replay removes again (NULL-terminated). */
extern const char *const jf_deadletter_headers[];

typedef struct jf_deadletter {
    const char *reason;        /* failed, exhausted, rejected, quarantined */
    const char *job_id;        /* may be NULL */
    const char *tenant;        /* NULL when the subject did not parse */
    const char *type;          /* "<module>.<action>", NULL likewise */
    uint32_t    attempts;
    const char *error_code;
    const char *last_error;
    const char *worker;
    const char *original_subject;
    const char *original_stream;
    uint64_t    original_seq;
    const char *dlq_prefix;    /* cfg->names.dlq_prefix: "dlq" or "dlq.<region>" */
} jf_deadletter_t;

/* Publish a delivered job to the DLQ through pipe, without waiting: op->done
 * gets the DLQ stream's answer (see jf_jsmsg_copy_async). Does not
 * acknowledge the original. dl and msg are only read during the call. */
jf_status_t jf_deadletter_delivered_async(jf_pipe_t *pipe, jf_copy_op_t *op,
                                          const jf_jsmsg_t *msg, const jf_deadletter_t *dl,
                                          jf_err_t *err);

/* Publish a stored job (quarantine) to the DLQ. */
jf_status_t jf_deadletter_stored(jf_nats_t *nc, const jf_stored_msg_t *msg,
                                 const jf_deadletter_t *dl, jf_err_t *err);

#endif /* JF_APP_DEADLETTER_H */
