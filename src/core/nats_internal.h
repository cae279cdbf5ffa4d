/*
 * nats_internal.h - what the JetStream adapters of src/core share about a
 * connection. Never included outside src/core.
 */
#ifndef JF_CORE_NATS_INTERNAL_H
#define JF_CORE_NATS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <nats/nats.h>

#include "core/nats.h"

struct jf_nats {
    natsConnection  *conn;
    jsCtx           *js;
    int64_t          api_timeout_ms;
    jf_nats_event_fn on_event;
    void            *arg;

    /* The library calls back from its own thread, even while we close.
     * jf_nats_close() waits for the closed callback (the last one) before
     * freeing this struct, and silences on_event first. */
    pthread_mutex_t  mu;
    pthread_cond_t   cond;
    bool             closing;
    bool             closed;
};

/* JetStream call options with JF_API_TIMEOUT as the wait; returns jo so
 * that it can be passed inline. */
static inline jsOptions *jf_js_opts(const jf_nats_t *nc, jsOptions *jo)
{
    jsOptions_Init(jo);
    jo->Wait = nc->api_timeout_ms;
    return jo;
}

/* Translate a natsStatus, with the library's last error text, into err.
 * what names the operation ("publish to jobs.acme.diag.noop"). */
jf_status_t jf_nats_status(natsStatus s, jf_err_t *err, const char *what);

/* Same, for JetStream API calls that also return a jsErrCode. */
jf_status_t jf_js_status(natsStatus s, jsErrCode jerr, jf_err_t *err, const char *what);

#endif /* JF_CORE_NATS_INTERNAL_H */
