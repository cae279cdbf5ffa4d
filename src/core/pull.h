/*
 * pull.h - the pull engine: continuous, flow-controlled fetching from a
 * durable JetStream pull consumer.
 *
 * nats.c 3.4.1's natsSubscription_Fetch has a heap overflow with batches of
 * two or more (fixed upstream in 3.9.0), and its js_PullSubscribe deletes
 * consumers it created. So the engine drives the pull protocol itself over
 * a plain subscription, as newer clients do (see docs/adr/0002):
 *
 *   - requests on $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> carrying
 *     batch, expires and idle_heartbeat, with replies to a private inbox;
 *   - at most max_inflight messages requested or held at any time: a new
 *     request asks only for the slots freed by jf_pull_done();
 *   - 100 (heartbeat), 404, 408 and 409 status messages are handled, and
 *     two missed heartbeats, or a reconnect, restart the pull;
 *   - acks go straight to each message's reply subject (see jsmsg.h).
 */
#ifndef JF_CORE_PULL_H
#define JF_CORE_PULL_H

#include <stdint.h>

#include "core/jsmsg.h"
#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_pull jf_pull_t;

typedef struct jf_pull_opts {
    const char *stream;
    const char *consumer;
    int         max_inflight;   /* >= 1 */
    int64_t     expires_ms;     /* lifetime of one pull request */
    int64_t     heartbeat_ms;   /* idle heartbeat; < expires_ms / 2 */
} jf_pull_opts_t;

typedef enum {
    JF_PULL_EV_RESTARTED,        /* heartbeats missed or reconnect: pulls re-issued */
    JF_PULL_EV_CONSUMER_GONE,    /* the consumer was deleted: nothing more will come */
    JF_PULL_EV_WARNING,          /* an unexpected status or message, with detail */
} jf_pull_event_t;

/* Receives each job message; takes ownership. Runs on the subscription's
 * delivery thread: hand the message over and return quickly. */
typedef void (*jf_pull_deliver_fn)(jf_jsmsg_t *msg, void *arg);
typedef void (*jf_pull_event_fn)(jf_pull_event_t ev, const char *detail, void *arg);

/* Bind to an existing durable pull consumer. Fails with JF_ENOTFOUND when
 * the stream or consumer does not exist, JF_EINVAL when it is a push
 * consumer. Never creates a consumer. Nothing is fetched before start. */
jf_status_t jf_pull_create(jf_pull_t **out, jf_nats_t *nc, const jf_pull_opts_t *opts,
                           jf_pull_deliver_fn deliver, jf_pull_event_fn on_event,
                           void *arg, jf_err_t *err);

/* Subscribe and issue the first requests. */
jf_status_t jf_pull_start(jf_pull_t *p, jf_err_t *err);

/* n delivered messages were acknowledged: their slots may be refilled. */
void jf_pull_done(jf_pull_t *p, int n);

/* After a reconnect: forget requests in flight and pull again. */
void jf_pull_restart(jf_pull_t *p);

/* Stop requesting and drain the inbox subscription (waits up to 5 s).
 * Messages still arriving from earlier requests are NAKed at once, and
 * afterwards the server can deliver nothing more to this engine, so jobs
 * NAKed later go to other workers without waiting for AckWait.
 * Idempotent. Jobs already delivered are unaffected: finish and ack them. */
void jf_pull_stop(jf_pull_t *p);

/* The consumer's name. */
const char *jf_pull_consumer(const jf_pull_t *p);

/* The consumer's AckWait and MaxDeliver, read when binding (-1: unlimited). */
int64_t jf_pull_ack_wait_ms(const jf_pull_t *p);
int64_t jf_pull_max_deliver(const jf_pull_t *p);

/* Messages requested but not yet received, and held (delivered, not done). */
void jf_pull_counts(jf_pull_t *p, int *requested, int *held);

/* Unsubscribe and free. Accepts NULL. */
void jf_pull_destroy(jf_pull_t *p);

#endif /* JF_CORE_PULL_H */
