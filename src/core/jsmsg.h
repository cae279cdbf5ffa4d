/*
 * jsmsg.h - one message delivered by a JetStream pull consumer, and its
 * acknowledgements.
 *
 * A jf_jsmsg_t is owned by whoever received it from the pull engine; it
 * must be acknowledged once (ack, nak or term) and destroyed. Progress
 * (wpi) may be sent any number of times before that. Every accessor's
 * result lives as long as the message.
 */
#ifndef JF_CORE_JSMSG_H
#define JF_CORE_JSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"

typedef struct jf_jsmsg jf_jsmsg_t;

/* The metadata the server encodes in the $JS.ACK reply subject. */
typedef struct jf_jsmeta {
    char     stream[64];
    char     consumer[64];
    char     domain[64];      /* empty unless the server uses a domain */
    uint64_t delivered;       /* 1 on the first delivery */
    uint64_t stream_seq;
    uint64_t consumer_seq;
    int64_t  timestamp_ns;    /* when the stream stored the message */
    uint64_t pending;         /* messages left for the consumer */
} jf_jsmeta_t;

/* Parse "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>"
 * and the 12-token form with domain and account hash. */
jf_status_t jf_jsmeta_parse(const char *reply, jf_jsmeta_t *out, jf_err_t *err);

const char *jf_jsmsg_subject(const jf_jsmsg_t *m);
/* The $JS.ACK reply subject acknowledgements go to. */
const char *jf_jsmsg_reply(const jf_jsmsg_t *m);
const char *jf_jsmsg_data(const jf_jsmsg_t *m);
size_t      jf_jsmsg_len(const jf_jsmsg_t *m);
/* Size on the wire: payload plus header names and values. */
size_t      jf_jsmsg_size(const jf_jsmsg_t *m);
const jf_jsmeta_t *jf_jsmsg_meta(const jf_jsmsg_t *m);

/* The first value of header name, or NULL. */
const char *jf_jsmsg_header(const jf_jsmsg_t *m, const char *name);

/* Acknowledge: done, the server forgets the message. */
jf_status_t jf_jsmsg_ack(jf_jsmsg_t *m, jf_err_t *err);

/* Negative-acknowledge: redeliver after delay_ms (0 = at once). */
jf_status_t jf_jsmsg_nak(jf_jsmsg_t *m, uint32_t delay_ms, jf_err_t *err);

/* Work in progress: restart the AckWait timer. */
jf_status_t jf_jsmsg_progress(jf_jsmsg_t *m, jf_err_t *err);

/* Terminate: never redeliver. */
jf_status_t jf_jsmsg_term(jf_jsmsg_t *m, jf_err_t *err);

/* True when the message came right after the server stalled for half an
 * AckWait or more (pull.h): it may have been given to another consumer
 * since, so it must not be run, nor acknowledged. */
bool jf_jsmsg_stale(const jf_jsmsg_t *m);

/* True once ack, nak or term was sent. */
bool jf_jsmsg_acked(const jf_jsmsg_t *m);

/* Accepts NULL. Does not acknowledge. */
void jf_jsmsg_destroy(jf_jsmsg_t *m);

#endif /* JF_CORE_JSMSG_H */
