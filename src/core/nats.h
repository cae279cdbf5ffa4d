/*
 * nats.h - the NATS connection adapter.
 *
 * The only place that configures a natsConnection. It applies every option
 * an operator needs (server list, creds, nkey, user/password, token, TLS,
 * unlimited jittered reconnect) and reports connection events through one
 * callback. natsStatus never leaves src/core: callers see jf_status_t.
 */
#ifndef JF_CORE_NATS_H
#define JF_CORE_NATS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "shared/err.h"

typedef struct jf_nats jf_nats_t;

typedef enum {
    JF_NATS_EV_DISCONNECTED,
    JF_NATS_EV_RECONNECTED,
    JF_NATS_EV_CLOSED,
    JF_NATS_EV_ERROR,         /* asynchronous error, e.g. slow consumer */
    JF_NATS_EV_LAME_DUCK,     /* the server asked clients to move away */
} jf_nats_event_t;

/* Called from a NATS library thread; must not block. detail is borrowed;
 * for JF_NATS_EV_RECONNECTED it is the server URL (redact before showing). */
typedef void (*jf_nats_event_fn)(jf_nats_event_t ev, const char *detail, void *arg);

/* Connect with the connection settings of cfg. name is the connection name
 * shown by the server (borrowed). on_event may be NULL. The connection
 * keeps reconnecting forever once established; the first connect fails
 * with JF_EUNAVAILABLE when no server answers. */
jf_status_t jf_nats_connect(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                            jf_nats_event_fn on_event, void *arg, jf_err_t *err);

/* The same, for a connection that carries latency-bound request/reply
 * traffic only (the worker's ledger): every publish is written to the
 * socket at once. jf_nats_connect()'s connections leave writes to the
 * library's flusher thread, which batches them but waits about a
 * millisecond first (docs/performance.md). */
jf_status_t jf_nats_connect_direct(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                                   jf_nats_event_fn on_event, void *arg, jf_err_t *err);

/* Flush pending publishes, drain subscriptions within timeout_ms, close
 * and free. Accepts NULL. */
void jf_nats_close(jf_nats_t *nc, int64_t timeout_ms);

bool jf_nats_connected(const jf_nats_t *nc);

/* Flush buffered publishes to the server and wait for its PONG. */
jf_status_t jf_nats_flush(jf_nats_t *nc, int64_t timeout_ms, jf_err_t *err);

/* The URL currently connected to, as configured: it may carry credentials,
 * so pass it through the security layer's redaction before showing it. */
const char *jf_nats_server_url(jf_nats_t *nc, char *buf, size_t size);

/* A plain subscription whose callback gets each message's subject, reply
 * subject (NULL when none) and payload; runs on the subscription's own
 * thread. queue may be NULL (every subscriber gets every message). */
typedef struct jf_nats_sub jf_nats_sub_t;
typedef void (*jf_nats_msg_fn)(const char *subject, const char *reply, const char *data,
                               size_t len, void *arg);

jf_status_t jf_nats_subscribe(jf_nats_t *nc, const char *subject, const char *queue,
                              jf_nats_msg_fn fn, void *arg, jf_nats_sub_t **out, jf_err_t *err);

/* Unsubscribe and wait until no callback runs any more. Accepts NULL. */
void jf_nats_unsubscribe(jf_nats_sub_t *sub);

/* A plain, fire-and-forget publish (a reply to a request, for one). */
jf_status_t jf_nats_publish(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                            jf_err_t *err);

/* Publish a request with data and hand every answer that arrives within
 * wait_ms to fn (data borrowed for the call; return false to stop early).
 * For questions several responders may answer, or none. */
typedef bool (*jf_nats_answer_fn)(const char *data, size_t len, void *arg);
jf_status_t jf_nats_gather(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                           int64_t wait_ms, jf_nats_answer_fn fn, void *arg, jf_err_t *err);

/* API timeout used by JetStream calls made through this connection. */
int64_t jf_nats_api_timeout(const jf_nats_t *nc);

#endif /* JF_CORE_NATS_H */
