/*
 * pull.c - the pull engine (see pull.h for the protocol it speaks).
 *
 * Accounting, under p->mu:
 *   requested  messages asked for by requests still alive at the server
 *   held       messages delivered to the runtime and not yet done
 * A new request is sent when max_inflight - requested - held reaches the
 * refill threshold, so the runtime never holds more than max_inflight jobs
 * (a restart after lost heartbeats can briefly overshoot; the runtime's
 * thread pool still bounds what runs).
 *
 * Threads: the subscription's delivery thread runs on_msg; worker threads
 * call jf_pull_done; the monitor thread watches heartbeats. Requests are
 * published under the mutex so accounting and wire order agree.
 *
 * Stalls. The idle heartbeat is at most AckWait/4, so a server that sends
 * nothing for two of them while a request is open has stalled (frozen,
 * paused, cut off) for half an AckWait. What it handed out just before the
 * stall can reach us after it, when its AckWait has run out and the job
 * has been given to another consumer: such deliveries are marked stale
 * (jf_jsmsg_stale). To know where the stale ones end, the engine sends a
 * marker message to its own inbox through the server; it comes back after
 * everything the server wrote before it, and what comes after it is fresh.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/clock.h"
#include "core/jsmsg_internal.h"
#include "core/pull.h"

struct jf_pull {
    jf_nats_t          *nc;
    natsSubscription   *sub;
    char                inbox[128];
    char                next_subject[256];
    char                stream[64];
    char                consumer[64];
    int64_t             ack_wait_ms;    /* from the consumer's configuration */
    int64_t             max_deliver;
    jf_pull_opts_t      opts;
    jf_pull_deliver_fn  deliver;
    jf_pull_event_fn    on_event;
    void               *arg;

    pthread_mutex_t     mu;
    pthread_cond_t      cond;
    pthread_t           monitor;
    bool                monitor_running;
    bool                stopping;       /* no new requests; NAK late arrivals */
    bool                drained;        /* the inbox subscription was drained */
    bool                closing;        /* monitor must exit */
    bool                consumer_gone;
    bool                check_consumer;  /* a 503 came back: does the consumer still exist? */
    bool                stale;          /* a stall was seen: deliveries are stale until the marker */
    uint64_t            marker;         /* the marker that ends it */
    int64_t             stale_since;
    int                 requested;
    int                 held;
    int64_t             last_activity;  /* mono ms of the last message or status */
};

static void emit(jf_pull_t *p, jf_pull_event_t ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emit(jf_pull_t *p, jf_pull_event_t ev, const char *fmt, ...)
{
    char    buf[256];
    va_list ap;

    if (p->on_event == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    p->on_event(ev, buf, p->arg);
}

static int refill_threshold(const jf_pull_t *p)
{
    int t = p->opts.max_inflight / 4;
    return t < 1 ? 1 : t;
}

/* Send one request for every free slot, if enough are free. Holds p->mu. */
static void maybe_request_locked(jf_pull_t *p, bool force)
{
    char       body[128];
    int        free_slots;
    natsStatus s;

    if (p->stopping || p->consumer_gone)
        return;
    free_slots = p->opts.max_inflight - p->requested - p->held;
    if (free_slots <= 0 || (!force && free_slots < refill_threshold(p)))
        return;
    snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%" PRId64 ",\"idle_heartbeat\":%" PRId64 "}",
             free_slots, p->opts.expires_ms * 1000000, p->opts.heartbeat_ms * 1000000);
    s = natsConnection_PublishRequest(p->nc->conn, p->next_subject, p->inbox, body,
                                      (int)strlen(body));
    if (s != NATS_OK) {
        /* Disconnected: the reconnect handler restarts the pull. */
        return;
    }
    if (p->requested == 0)
        p->last_activity = jf_clock_mono_ms();
    p->requested += free_slots;
}

#define MARKER_HEADER "Jf-Pull-Marker"

/* The server stalled: until marker n comes back, deliveries are stale.
 * Holds p->mu. */
static void begin_stale_locked(jf_pull_t *p)
{
    char        id[24];
    natsMsg    *m = NULL;

    p->stale = true;
    p->stale_since = jf_clock_mono_ms();
    snprintf(id, sizeof(id), "%" PRIu64, ++p->marker);
    if (natsMsg_Create(&m, p->inbox, NULL, NULL, 0) == NATS_OK &&
        natsMsgHeader_Set(m, MARKER_HEADER, id) == NATS_OK)
        natsConnection_PublishMsg(p->nc->conn, m);
    natsMsg_Destroy(m);
}

static int header_int(natsMsg *msg, const char *name, int dflt)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(msg, name, &v) != NATS_OK || v == NULL)
        return dflt;
    return atoi(v);
}

/* A status message on the inbox: heartbeat, end of a request, or trouble. */
static void on_status(jf_pull_t *p, natsMsg *msg, const char *status)
{
    const char *desc = NULL;
    int         unfilled;

    natsMsgHeader_Get(msg, "Description", &desc);
    if (desc == NULL)
        desc = "";

    pthread_mutex_lock(&p->mu);
    p->last_activity = jf_clock_mono_ms();
    if (strcmp(status, "100") == 0) {
        /* idle heartbeat: the request is alive */
    } else if (strcmp(status, "404") == 0 || strcmp(status, "408") == 0 ||
               strcmp(status, "409") == 0) {
        /* The request ended. The server tells how much of it went unfilled;
         * without that header, assume all of what we were still waiting for. */
        unfilled = header_int(msg, "Nats-Pending-Messages", -1);
        if (unfilled < 0 || unfilled > p->requested)
            unfilled = p->requested;
        p->requested -= unfilled;
        if (strcmp(status, "409") == 0 && strstr(desc, "Consumer Deleted") != NULL) {
            p->consumer_gone = true;
            p->requested = 0;
            pthread_mutex_unlock(&p->mu);
            emit(p, JF_PULL_EV_CONSUMER_GONE, "consumer %s on stream %s was deleted",
                 p->opts.consumer, p->opts.stream);
            return;
        }
        if (strcmp(status, "409") == 0 && strstr(desc, "Exceeded MaxAckPending") == NULL)
            emit(p, JF_PULL_EV_WARNING, "pull request ended: %s %s", status, desc);
        maybe_request_locked(p, true);
    } else if (strcmp(status, "503") == 0) {
        /* No responders: nobody serves this consumer's requests (deleted,
         * or JetStream unavailable). The monitor checks and pulls again. */
        p->requested = 0;
        p->check_consumer = true;
        pthread_cond_broadcast(&p->cond);
    } else {
        pthread_mutex_unlock(&p->mu);
        emit(p, JF_PULL_EV_WARNING, "unexpected status %s %s on the pull inbox", status, desc);
        return;
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_msg(natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
    jf_pull_t  *p = closure;
    const char *status = NULL;
    const char *reply = natsMsg_GetReply(msg);
    jf_jsmsg_t *jm = NULL;
    jf_err_t    err = { 0 };
    bool        stopping;

    (void)conn;
    (void)sub;
    if (natsMsgHeader_Get(msg, MARKER_HEADER, &status) == NATS_OK && status != NULL) {
        pthread_mutex_lock(&p->mu);
        if (p->stale && strtoull(status, NULL, 10) == p->marker)
            p->stale = false;   /* everything from before the stall has come */
        pthread_mutex_unlock(&p->mu);
        natsMsg_Destroy(msg);
        return;
    }
    if (natsMsg_GetDataLength(msg) == 0 && natsMsgHeader_Get(msg, "Status", &status) == NATS_OK &&
        status != NULL) {
        on_status(p, msg, status);
        natsMsg_Destroy(msg);
        return;
    }
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0) {
        emit(p, JF_PULL_EV_WARNING, "dropped a message on the pull inbox without an ack subject "
             "(subject %.100s)", natsMsg_GetSubject(msg));
        natsMsg_Destroy(msg);
        return;
    }
    if (jf_jsmsg_wrap(&jm, p->nc, msg, &err) != JF_OK) {
        /* Cannot parse its metadata: let the server redeliver it elsewhere. */
        emit(p, JF_PULL_EV_WARNING, "%s", jf_err_msg(&err));
        natsConnection_PublishString(p->nc->conn, reply, "-NAK");
        natsMsg_Destroy(msg);
        pthread_mutex_lock(&p->mu);
        if (p->requested > 0)
            p->requested--;
        maybe_request_locked(p, false);
        pthread_mutex_unlock(&p->mu);
        return;
    }

    pthread_mutex_lock(&p->mu);
    p->last_activity = jf_clock_mono_ms();
    if (p->requested > 0)
        p->requested--;
    stopping = p->stopping;
    if (!stopping)
        p->held++;
    if (p->stale)
        jf_jsmsg_mark_stale(jm);
    pthread_mutex_unlock(&p->mu);

    if (stopping) {
        jf_jsmsg_nak(jm, 0, NULL);
        jf_jsmsg_destroy(jm);
        return;
    }
    p->deliver(jm, p->arg);
}

/* JF_OK, JF_ENOTFOUND, or another status when the question could not be
 * answered (then assume it exists and let the next silence ask again). */
static jf_status_t consumer_exists(jf_pull_t *p)
{
    jsConsumerInfo *ci = NULL;
    jsOptions       jo;
    jsErrCode       jerr = 0;
    natsStatus      s;

    s = js_GetConsumerInfo(&ci, p->nc->js, p->opts.stream, p->opts.consumer,
                           jf_js_opts(p->nc, &jo), &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK)
        return JF_OK;
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr)
        return JF_ENOTFOUND;
    return JF_EIO;
}

/* Restart pulls whose heartbeats stopped: the server lost the request, or
 * the connection silently died. */
static void *monitor_main(void *arg)
{
    jf_pull_t *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->closing) {
        int64_t now;

        jf_cond_wait_until(&p->cond, &p->mu, jf_clock_mono_ms() + p->opts.heartbeat_ms);
        if (p->closing)
            break;
        now = jf_clock_mono_ms();
        if (!p->stopping && !p->consumer_gone && (p->check_consumer ||
            (p->requested > 0 && now - p->last_activity > 2 * p->opts.heartbeat_ms))) {
            int64_t silence = now - p->last_activity;
            int     lost = p->requested;
            bool    asked = p->check_consumer;

            /* Silence (or a 503 on the inbox) may mean the consumer is
             * gone: nats-server does not always answer waiting requests
             * with 409 Consumer Deleted. Ask before pulling again. */
            p->check_consumer = false;
            pthread_mutex_unlock(&p->mu);
            if (consumer_exists(p) == JF_ENOTFOUND) {
                pthread_mutex_lock(&p->mu);
                p->consumer_gone = true;
                p->requested = 0;
                pthread_mutex_unlock(&p->mu);
                emit(p, JF_PULL_EV_CONSUMER_GONE, "consumer %s on stream %s was deleted",
                     p->opts.consumer, p->opts.stream);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->requested = 0;
            p->last_activity = jf_clock_mono_ms();
            if (!asked)
                begin_stale_locked(p);
            maybe_request_locked(p, true);
            pthread_mutex_unlock(&p->mu);
            if (!asked)
                emit(p, JF_PULL_EV_RESTARTED, "no heartbeat for %" PRId64 " ms; re-issued the "
                     "pull (%d messages were outstanding)", silence, lost);
            pthread_mutex_lock(&p->mu);
        } else if (p->stale && now - p->stale_since > 2 * p->ack_wait_ms) {
            /* The marker was lost (a reconnect in between): by now the
             * server has given out again whatever it held. */
            p->stale = false;
        } else if (!p->stopping && p->requested == 0) {
            /* e.g. a request failed to publish while disconnected */
            maybe_request_locked(p, true);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

jf_status_t jf_pull_create(jf_pull_t **out, jf_nats_t *nc, const jf_pull_opts_t *opts,
                           jf_pull_deliver_fn deliver, jf_pull_event_fn on_event,
                           void *arg, jf_err_t *err)
{
    jsConsumerInfo *ci = NULL;
    jsOptions       jo;
    jsErrCode       jerr = 0;
    jf_pull_t      *p;
    natsStatus      s;
    jf_status_t     st;
    char            what[256];

    if (opts->max_inflight < 1 || opts->expires_ms < 1000 ||
        opts->heartbeat_ms * 2 >= opts->expires_ms)
        return jf_err_set(err, JF_EINVAL, "pull options: need max_inflight >= 1, expires >= 1s "
                          "and heartbeat < expires/2");

    s = js_GetConsumerInfo(&ci, nc->js, opts->stream, opts->consumer, jf_js_opts(nc, &jo), &jerr);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "looking up consumer '%s' on stream '%s'",
                 opts->consumer, opts->stream);
        st = jf_js_status(s, jerr, err, what);
        if (st == JF_ENOTFOUND)
            jf_err_set(err, JF_ENOTFOUND, "consumer '%s' on stream '%s' does not exist; "
                       "create it with `jetfleet provision`", opts->consumer, opts->stream);
        return st;
    }
    if (ci->Config != NULL && ci->Config->DeliverSubject != NULL &&
        ci->Config->DeliverSubject[0] != '\0') {
        jsConsumerInfo_Destroy(ci);
        return jf_err_set(err, JF_EINVAL, "consumer '%s' on stream '%s' is a push consumer; "
                          "jetfleet needs a pull consumer", opts->consumer, opts->stream);
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        jsConsumerInfo_Destroy(ci);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    p->ack_wait_ms = ci->Config ? ci->Config->AckWait / 1000000 : 30000;
    p->max_deliver = ci->Config ? ci->Config->MaxDeliver : -1;
    jsConsumerInfo_Destroy(ci);
    p->nc = nc;
    p->opts = *opts;
    /* Heartbeats at least four times per AckWait, so that a stall long
     * enough to make the server give jobs out again is always seen. */
    if (p->opts.heartbeat_ms > p->ack_wait_ms / 4)
        p->opts.heartbeat_ms = p->ack_wait_ms / 4 > 100 ? p->ack_wait_ms / 4 : 100;
    strlcpy(p->stream, opts->stream, sizeof(p->stream));
    strlcpy(p->consumer, opts->consumer, sizeof(p->consumer));
    p->opts.stream = p->stream;      /* the caller's strings are borrowed */
    p->opts.consumer = p->consumer;
    p->deliver = deliver;
    p->on_event = on_event;
    p->arg = arg;
    snprintf(p->next_subject, sizeof(p->next_subject), "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             opts->stream, opts->consumer);
    pthread_mutex_init(&p->mu, NULL);
    jf_cond_init(&p->cond);
    *out = p;
    return JF_OK;
}

jf_status_t jf_pull_start(jf_pull_t *p, jf_err_t *err)
{
    natsInbox *inbox = NULL;
    natsStatus s;

    s = natsInbox_Create(&inbox);
    if (s != NATS_OK)
        return jf_nats_status(s, err, "creating the pull inbox");
    strlcpy(p->inbox, inbox, sizeof(p->inbox));
    natsInbox_Destroy(inbox);

    s = natsConnection_Subscribe(&p->sub, p->nc->conn, p->inbox, on_msg, p);
    if (s == NATS_OK)
        /* The engine bounds what it asks for; never drop on the client side. */
        s = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (s != NATS_OK)
        return jf_nats_status(s, err, "subscribing to the pull inbox");

    pthread_mutex_lock(&p->mu);
    p->last_activity = jf_clock_mono_ms();
    maybe_request_locked(p, true);
    pthread_mutex_unlock(&p->mu);

    if (pthread_create(&p->monitor, NULL, monitor_main, p) != 0)
        return jf_err_set(err, JF_ENOMEM, "cannot start the pull monitor thread");
    /* Under the lock: the flags beside it are read under it by the
     * delivery and pipe threads, and a compiler may read them together. */
    pthread_mutex_lock(&p->mu);
    p->monitor_running = true;
    pthread_mutex_unlock(&p->mu);
    return JF_OK;
}

void jf_pull_done(jf_pull_t *p, int n)
{
    pthread_mutex_lock(&p->mu);
    p->held -= n;
    if (p->held < 0)
        p->held = 0;
    maybe_request_locked(p, false);
    pthread_mutex_unlock(&p->mu);
}

void jf_pull_restart(jf_pull_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->requested = 0;
    p->last_activity = jf_clock_mono_ms();
    maybe_request_locked(p, true);
    pthread_mutex_unlock(&p->mu);
}

void jf_pull_stop(jf_pull_t *p)
{
    bool first;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    first = !p->drained;
    p->stopping = true;
    p->drained = true;
    pthread_mutex_unlock(&p->mu);
    if (!first || p->sub == NULL)
        return;
    /* Drain removes our interest at the server, so requests still waiting
     * there can no longer deliver to us: from now on a NAKed job goes to
     * another worker. Messages already on their way arrive first (drain
     * flushes) and on_msg NAKs them, since stopping is set. */
    if (natsSubscription_Drain(p->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(p->sub, 5000);
    else
        natsSubscription_Unsubscribe(p->sub);
}

const char *jf_pull_consumer(const jf_pull_t *p)
{
    return p->consumer;
}

int64_t jf_pull_ack_wait_ms(const jf_pull_t *p)
{
    return p->ack_wait_ms;
}

int64_t jf_pull_max_deliver(const jf_pull_t *p)
{
    return p->max_deliver;
}

void jf_pull_counts(jf_pull_t *p, int *requested, int *held)
{
    pthread_mutex_lock(&p->mu);
    *requested = p->requested;
    *held = p->held;
    pthread_mutex_unlock(&p->mu);
}

void jf_pull_destroy(jf_pull_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->monitor_running)
        pthread_join(p->monitor, NULL);
    /* Drains the subscription, so no callback still runs when p is freed. */
    jf_pull_stop(p);
    if (p->sub != NULL)
        natsSubscription_Destroy(p->sub);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
