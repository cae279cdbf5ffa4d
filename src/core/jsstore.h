/*
 * jsstore.h - reading, copying and deleting stored JetStream messages.
 *
 * What dead letters, replay and quarantine need: fetch a message by stream
 * sequence, republish a message (a delivered job or a stored one) with its
 * payload and headers plus extra headers, and delete by sequence.
 * Every function is safe to repeat: a copy carries a Nats-Msg-Id so that
 * the target stream drops a second copy, and deleting a message that is
 * already gone reports JF_ENOTFOUND.
 */
#ifndef JF_CORE_JSSTORE_H
#define JF_CORE_JSSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/jsadmin.h"
#include "core/jsmsg.h"
#include "core/nats.h"
#include "core/pipe.h"
#include "shared/err.h"

typedef struct jf_stored_msg jf_stored_msg_t;

/* Fetch the message at seq. JF_ENOTFOUND when there is none (deleted, or
 * past the end). */
jf_status_t jf_js_get_msg(jf_nats_t *nc, const char *stream, uint64_t seq,
                          jf_stored_msg_t **out, jf_err_t *err);

const char *jf_stored_msg_subject(const jf_stored_msg_t *m);
const char *jf_stored_msg_data(const jf_stored_msg_t *m);
size_t      jf_stored_msg_len(const jf_stored_msg_t *m);
uint64_t    jf_stored_msg_seq(const jf_stored_msg_t *m);
int64_t     jf_stored_msg_time_ns(const jf_stored_msg_t *m);
/* First value of a header, or NULL. */
const char *jf_stored_msg_header(const jf_stored_msg_t *m, const char *name);

/* Visit every header value in order: name, value. Returns JF_OK. */
typedef void (*jf_header_fn)(const char *name, const char *value, void *arg);
jf_status_t jf_stored_msg_headers(const jf_stored_msg_t *m, jf_header_fn fn, void *arg);

/* Accepts NULL. */
void jf_stored_msg_destroy(jf_stored_msg_t *m);

/* Delete a message by sequence. JF_ENOTFOUND when it is already gone. */
jf_status_t jf_js_delete_msg(jf_nats_t *nc, const char *stream, uint64_t seq, jf_err_t *err);

/* How a copy is made. */
typedef struct jf_copy_opts {
    const char        *subject;     /* where to publish */
    const char        *msg_id;      /* Nats-Msg-Id of the copy (dedupe key); may be NULL */
    const jf_header_t *add;         /* headers to add (after removing their names) */
    size_t             nadd;
    const char *const *drop;        /* header names not to copy; NULL-terminated, may be NULL */
} jf_copy_opts_t;

/* Publish a copy of a delivered job message (payload and headers) through
 * pipe, without waiting. Nats-Msg-Id, Nats-Expected-* and the names in add
 * are never copied from the original. op->done gets the stream's answer
 * on the pipe's thread (JF_OK with op->ack; JF_EUNAVAILABLE when no stream
 * takes the subject; JF_ETIMEOUT, JF_EIO, with op->why). An error here
 * means nothing was sent and done will not be called. m is only read
 * during the call. */
typedef struct jf_copy_op jf_copy_op_t;
typedef void (*jf_copy_done_fn)(jf_copy_op_t *op, jf_status_t st);

struct jf_copy_op {
    jf_copy_done_fn done;       /* set by the caller */
    jf_pub_ack_t    ack;
    char            why[200];

    jf_pipe_req_t   req;        /* private */
};

jf_status_t jf_jsmsg_copy_async(jf_pipe_t *p, jf_copy_op_t *op, const jf_jsmsg_t *m,
                                const jf_copy_opts_t *o, jf_err_t *err);

/* Publish a copy of a stored message and wait for the stream's
 * acknowledgement; the rules of jf_jsmsg_copy_async() apply. */
jf_status_t jf_stored_msg_copy(jf_nats_t *nc, const jf_stored_msg_t *m, const jf_copy_opts_t *o,
                               jf_pub_ack_t *ack, jf_err_t *err);

#endif /* JF_CORE_JSSTORE_H */
