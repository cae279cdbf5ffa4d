/*
 * jsconsume.h - reading a stream in order: the AUDIT reader behind
 * `jetfleet audit tail` and `jetfleet job show`.
 *
 * A reader delivers the messages of one stream that match a subject
 * filter, oldest first, starting from the first message, from a point in
 * time, or from the messages stored after it was opened. It comes in two
 * kinds:
 *
 *   ephemeral  (opts.durable == NULL) an ordered push consumer created by
 *              the library: AckNone, flow control and heartbeats, recreated
 *              transparently after a gap. Closing the reader unsubscribes,
 *              which deletes the consumer. Nothing is remembered.
 *
 *   durable    (opts.durable names it) a durable PULL consumer with explicit
 *              acks, created by the reader with js_AddConsumer on first use
 *              and bound to afterwards, so that a later reader of the same
 *              name resumes after the last acknowledged message. The pull
 *              protocol is driven here over a plain subscription, one
 *              message per request: nats.c 3.4.1's js_PullSubscribe deletes
 *              consumers it creates, and natsSubscription_Fetch with a batch
 *              of two or more has a heap overflow (ADR 0002).
 *              Closing the reader keeps the consumer; remove it with
 *              `nats consumer rm <stream> <name>`.
 *
 * Messages come out as jf_jsmsg_t (core/jsmsg.h): subject, payload,
 * headers, and the stream sequence, stored time and pending count from the
 * ack subject. A durable reader's messages must each be acknowledged with
 * jf_jsmsg_ack() once handled, or they come again after ack_wait_ms (and
 * hold back the ones after them until then). An ephemeral reader's need no
 * acknowledgement (AckNone); acking one anyway is harmless.
 *
 * A reader is used from one thread.
 */
#ifndef JF_CORE_JSCONSUME_H
#define JF_CORE_JSCONSUME_H

#include <stdbool.h>
#include <stdint.h>

#include "core/jsmsg.h"
#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_reader jf_reader_t;

typedef enum {
    JF_READ_ALL,     /* from the stream's first message */
    JF_READ_NEW,     /* only messages stored after the reader was opened */
    JF_READ_SINCE,   /* messages stored at or after since_ms */
} jf_read_start_t;

typedef struct jf_reader_opts {
    const char     *stream;       /* e.g. "AUDIT" */
    const char     *filter;       /* subject filter, required: e.g. "telemetry.jobs.>" */
    jf_read_start_t start;        /* where a new consumer starts */
    int64_t         since_ms;     /* Unix ms, for JF_READ_SINCE */
    const char     *durable;      /* NULL: ephemeral ordered consumer */
    int64_t         ack_wait_ms;  /* durable only; 0: 30 s */
} jf_reader_opts_t;

/* Open a reader; every string in o is borrowed for the call only.
 *
 * For a durable reader whose consumer already exists, start and since_ms
 * are ignored (the consumer goes on from where it stopped) and
 * jf_reader_resumed() says so; its filter must equal o->filter.
 *
 * Returns JF_ENOTFOUND when the stream does not exist, JF_ECONFIG when the
 * durable consumer exists but filters another subject or is not a pull
 * consumer with explicit acks, JF_EINVAL for bad options (no filter, or a
 * durable name other than 1 to 64 of [A-Za-z0-9_-]), or the NATS error. */
jf_status_t jf_reader_open(jf_reader_t **out, jf_nats_t *nc, const jf_reader_opts_t *o,
                           jf_err_t *err);

/* The next message, waiting up to timeout_ms (0: only what is already
 * there). *out is owned by the caller: acknowledge it (durable readers)
 * and free it with jf_jsmsg_destroy(). Returns JF_ETIMEOUT when nothing
 * came in time, JF_ENOTFOUND when the durable consumer was deleted meanwhile,
 * or the NATS error (JF_EUNAVAILABLE once the connection is closed). */
jf_status_t jf_reader_next(jf_reader_t *r, int64_t timeout_ms, jf_jsmsg_t **out, jf_err_t *err);

/* True when a durable reader bound to a consumer that existed before. */
bool jf_reader_resumed(const jf_reader_t *r);

/* Messages matching the filter that the consumer has not delivered yet,
 * as of the last message returned (from its ack subject); for a caught-up
 * reader, 0. Before the first message, the count the consumer reported
 * when the reader was opened. */
uint64_t jf_reader_pending(const jf_reader_t *r);

/* Stop reading and free. An ephemeral reader's consumer is deleted; a
 * durable one's stays, and a message delivered but not acknowledged is
 * delivered again after ack_wait_ms. Accepts NULL. */
void jf_reader_close(jf_reader_t *r);

/* A durable consumer name jetfleet accepts: 1-64 of [A-Za-z0-9_-]. */
bool jf_js_durable_name_ok(const char *name);

#endif /* JF_CORE_JSCONSUME_H */
