/*
 * deadletter.c - building and publishing dead letters (see deadletter.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "app/deadletter.h"
#include "core/clock.h"

const char *const jf_deadletter_headers[] = {
    JF_HDR_FAILURE_REASON, JF_HDR_ATTEMPTS, JF_HDR_LAST_ERROR, JF_HDR_ERROR_CODE,
    JF_HDR_ORIGINAL_SUBJECT, JF_HDR_ORIGINAL_STREAM, JF_HDR_ORIGINAL_SEQ, JF_HDR_DEAD_AT,
    JF_HDR_WORKER, NULL,
};

/* Header values are one line of printable text. */
static void one_line(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    for (; src != NULL && *src != '\0' && n + 1 < size; src++)
        dst[n++] = (*src == '\r' || *src == '\n' || *src == '\t') ? ' '
                 : ((unsigned char)*src < 0x20 || *src == 0x7f) ? '?' : *src;
    dst[n] = '\0';
}

typedef struct built {
    char        subject[256];
    char        msg_id[160];
    char        attempts[16], seq[24], dead_at[24];
    char        last_error[1001];
    jf_header_t h[10];
    size_t      n;
} built_t;

static void build(built_t *b, const jf_deadletter_t *dl)
{
    if (dl->tenant != NULL && dl->type != NULL)
        snprintf(b->subject, sizeof(b->subject), "%s.%s.%s", dl->dlq_prefix, dl->tenant,
                 dl->type);
    else
        snprintf(b->subject, sizeof(b->subject), "%s.%s", dl->dlq_prefix, JF_DLQ_INVALID_SUFFIX);
    snprintf(b->msg_id, sizeof(b->msg_id), "jf-dlq-%s-%" PRIu64, dl->original_stream,
             dl->original_seq);
    snprintf(b->attempts, sizeof(b->attempts), "%u", dl->attempts);
    snprintf(b->seq, sizeof(b->seq), "%" PRIu64, dl->original_seq);
    snprintf(b->dead_at, sizeof(b->dead_at), "%" PRId64, jf_clock_now_ms());
    one_line(b->last_error, sizeof(b->last_error), dl->last_error ? dl->last_error : "");

    b->n = 0;
    b->h[b->n++] = (jf_header_t){ JF_HDR_FAILURE_REASON, dl->reason };
    b->h[b->n++] = (jf_header_t){ JF_HDR_ATTEMPTS, b->attempts };
    b->h[b->n++] = (jf_header_t){ JF_HDR_LAST_ERROR, b->last_error };
    b->h[b->n++] = (jf_header_t){ JF_HDR_ERROR_CODE, dl->error_code ? dl->error_code : "" };
    b->h[b->n++] = (jf_header_t){ JF_HDR_ORIGINAL_SUBJECT, dl->original_subject };
    b->h[b->n++] = (jf_header_t){ JF_HDR_ORIGINAL_STREAM, dl->original_stream };
    b->h[b->n++] = (jf_header_t){ JF_HDR_ORIGINAL_SEQ, b->seq };
    b->h[b->n++] = (jf_header_t){ JF_HDR_DEAD_AT, b->dead_at };
    b->h[b->n++] = (jf_header_t){ JF_HDR_WORKER, dl->worker ? dl->worker : "" };
    if (dl->job_id != NULL)
        b->h[b->n++] = (jf_header_t){ JF_HDR_JOB_ID, dl->job_id };
}

jf_status_t jf_deadletter_delivered_async(jf_pipe_t *pipe, jf_copy_op_t *op,
                                          const jf_jsmsg_t *msg, const jf_deadletter_t *dl,
                                          jf_err_t *err)
{
    built_t        b;
    jf_copy_opts_t o;

    build(&b, dl);
    o = (jf_copy_opts_t){ .subject = b.subject, .msg_id = b.msg_id, .add = b.h, .nadd = b.n };
    return jf_jsmsg_copy_async(pipe, op, msg, &o, err);
}

jf_status_t jf_deadletter_stored(jf_nats_t *nc, const jf_stored_msg_t *msg,
                                 const jf_deadletter_t *dl, jf_err_t *err)
{
    built_t        b;
    jf_copy_opts_t o;

    build(&b, dl);
    o = (jf_copy_opts_t){ .subject = b.subject, .msg_id = b.msg_id, .add = b.h, .nadd = b.n };
    return jf_stored_msg_copy(nc, msg, &o, NULL, err);
}
