/*
 * pipe.h - requests with completion callbacks over one NATS connection.
 *
 * A pipe sends requests (publishes with a reply subject) and owns the table
 * of those still waiting for their answer, as nats.c's pending map does for
 * asynchronous JetStream publishes. A request is an object the caller
 * embeds in its own struct (as libuv's uv_write_t is), and its reply
 * subject <inbox>.<token> names it. When the answer arrives, on the pipe's
 * delivery thread, the pipe takes the request out of its table, unlocks,
 * and calls the request's done callback, once. A request that gets no
 * answer within the pipe's timeout is called back with JF_ETIMEOUT from the
 * pipe's timer thread; an answer arriving after that is dropped.
 *
 * Many requests are in flight at once and nobody waits for one: this is
 * how the worker reads and writes the ledger, publishes lifecycle events
 * and dead letters without a thread parked per answer.
 *
 *     struct my_op { jf_pipe_req_t req; ... };
 *     op->req.done = on_answer;          // container_of(req, struct my_op, req)
 *     jf_pipe_send(p, &op->req, subject, hdrs, nhdrs, data, len, &err);
 *
 * Ownership: from a successful send until done is called, the request
 * belongs to the pipe; the caller must not touch or free it. done runs on
 * one of the pipe's threads, must not block, and may send new requests.
 */
#ifndef JF_CORE_PIPE_H
#define JF_CORE_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jsadmin.h"
#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_pipe        jf_pipe_t;
typedef struct jf_pipe_req    jf_pipe_req_t;
typedef struct jf_pipe_answer jf_pipe_answer_t;

/* st is JF_OK when an answer came (a is the answer, borrowed for the call;
 * it may be a status message such as "404" or "503": see the accessors),
 * JF_ETIMEOUT when none came in time, or JF_ESTATE when the pipe is being
 * destroyed (a is NULL for both). */
typedef void (*jf_pipe_done_fn)(jf_pipe_req_t *req, jf_status_t st, const jf_pipe_answer_t *a);

struct jf_pipe_req {
    jf_pipe_done_fn done;      /* set by the caller before sending */

    /* private to pipe.c */
    uint64_t       token;
    int64_t        deadline;   /* monotonic ms */
    jf_pipe_req_t *hnext;      /* hash chain */
    jf_pipe_req_t *prev, *next;   /* in order of sending, which is deadline order */
};

/* Subscribe a reply inbox on nc (borrowed; it must outlive the pipe) and
 * start the timer thread. Requests time out after timeout_ms. */
jf_status_t jf_pipe_create(jf_pipe_t **out, jf_nats_t *nc, int64_t timeout_ms, jf_err_t *err);

/* Stop answering (the subscription is drained, so no answer callback runs
 * after this returns), then call every request still pending back with
 * JF_ESTATE, and free. Accepts NULL. */
void jf_pipe_destroy(jf_pipe_t *p);

/* Publish data (len bytes, may be 0) with headers to subject, with a reply
 * subject naming req. On JF_OK, done will be called exactly once, possibly
 * before this function returns. On an error nothing was sent and done will
 * not be called. */
jf_status_t jf_pipe_send(jf_pipe_t *p, jf_pipe_req_t *req, const char *subject,
                         const jf_header_t *hdrs, size_t nhdrs, const void *data, size_t len,
                         jf_err_t *err);

/* Requests waiting for their answer. */
int jf_pipe_pending(jf_pipe_t *p);

/* The connection the pipe sends on. */
jf_nats_t *jf_pipe_nats(jf_pipe_t *p);

/* ---- reading an answer ---------------------------------------------------- */

/* The Status header of a status message without data ("404", "503", ...),
 * or NULL for an ordinary message. */
const char *jf_pipe_answer_status(const jf_pipe_answer_t *a);

/* The first value of a header, or NULL. */
const char *jf_pipe_answer_header(const jf_pipe_answer_t *a, const char *name);

/* The payload (never NULL) and its length. */
const char *jf_pipe_answer_data(const jf_pipe_answer_t *a, size_t *len);

/* Read a JetStream publish acknowledgement: {"stream":..,"seq":..} is JF_OK
 * (out, which may be NULL, gets it); {"error":{..., "err_code":10071}}
 * (wrong last sequence: an expected-revision check failed) is JF_ESTATE;
 * a "503" status (no responders: no stream takes the subject, or
 * JetStream is not there) is JF_EUNAVAILABLE; any other error JF_EIO. why
 * gets a sentence for every status but JF_OK. The usual answer is read
 * without a JSON parser. */
jf_status_t jf_pipe_puback(const jf_pipe_answer_t *a, jf_pub_ack_t *out, char *why,
                           size_t why_size);

#endif /* JF_CORE_PIPE_H */
