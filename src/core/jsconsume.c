/*
 * jsconsume.c - the stream reader (see jsconsume.h).
 *
 * Ephemeral readers are nats.c ordered consumers on a synchronous
 * subscription: the library creates the consumer, handles flow control
 * and heartbeats, and recreates it from the next sequence after a gap.
 *
 * Durable readers speak the pull protocol themselves over a synchronous
 * subscription on a private inbox: at most one request is alive, for one
 * message, sent as "<inbox>.<n>" so that the 404/408/409 status that ends
 * request n can be told from the end of an older one. A request is
 * re-sent when its status says it ended, when its message came, or when
 * the time the server would have kept it is well past (a server restart
 * forgets requests silently). Data messages arrive with their own subject
 * and the $JS.ACK reply subject, and are acknowledged by the caller through
 * jf_jsmsg_ack().
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/clock.h"
#include "core/jsconsume.h"
#include "core/jsmsg_internal.h"
#include "core/nats_internal.h"

#define REQ_EXPIRES_MS   5000     /* lifetime of one pull request at the server */
#define REQ_GRACE_MS     2000     /* after that, a request without an answer is lost */
#define BUSY_BACKOFF_MS  100      /* after a 409 that is not the consumer's deletion */
#define ACK_WAIT_DEFAULT 30000

struct jf_reader {
    jf_nats_t        *nc;
    natsSubscription *sub;
    bool              durable;
    bool              resumed;
    uint64_t          pending;
    char              stream[64];
    char              consumer[65];

    /* durable: the pull protocol */
    char              inbox[128];         /* requests reply to <inbox>.<n> */
    char              next_subject[256];  /* $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> */
    uint64_t          req_n;              /* number of the last request sent */
    bool              req_alive;          /* request req_n may still bring a message */
    int64_t           req_lost_at;        /* mono ms after which it is taken as lost */
};

bool jf_js_durable_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

/* The consumer configuration shared by both kinds: filter and start. */
static void start_config(jsConsumerConfig *cc, const jf_reader_opts_t *o)
{
    cc->FilterSubject = o->filter;
    switch (o->start) {
    case JF_READ_ALL:
        cc->DeliverPolicy = js_DeliverAll;
        break;
    case JF_READ_NEW:
        cc->DeliverPolicy = js_DeliverNew;
        break;
    case JF_READ_SINCE:
        cc->DeliverPolicy = js_DeliverByStartTime;
        cc->OptStartTime = o->since_ms * 1000000;
        break;
    }
}

static jf_status_t check_stream(jf_nats_t *nc, const char *stream, jf_err_t *err)
{
    jsStreamInfo *si = NULL;
    jsOptions     jo;
    jsErrCode     jerr = 0;
    natsStatus    s;
    char          what[128];

    s = js_GetStreamInfo(&si, nc->js, stream, jf_js_opts(nc, &jo), &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK)
        return JF_OK;
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return jf_err_set(err, JF_ENOTFOUND, "stream %s does not exist", stream);
    snprintf(what, sizeof(what), "looking up stream %s", stream);
    return jf_js_status(s, jerr, err, what);
}

/* ---- ephemeral: an ordered consumer ---------------------------------------------- */

static jf_status_t open_ordered(jf_reader_t *r, const jf_reader_opts_t *o, jf_err_t *err)
{
    jsSubOptions    so;
    jsConsumerInfo *ci = NULL;
    jsOptions       jo;
    jsErrCode       jerr = 0;
    natsStatus      s;
    char            what[160];

    jsSubOptions_Init(&so);
    so.Stream = o->stream;
    so.Ordered = true;
    start_config(&so.Config, o);
    s = js_SubscribeSync(&r->sub, r->nc->js, o->filter, jf_js_opts(r->nc, &jo), &so, &jerr);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "reading stream %s", o->stream);
        return jf_js_status(s, jerr, err, what);
    }
    /* Flow control bounds what the server sends; never drop here. */
    natsSubscription_SetPendingLimits(r->sub, -1, -1);
    jerr = 0;
    if (natsSubscription_GetConsumerInfo(&ci, r->sub, jf_js_opts(r->nc, &jo), &jerr) == NATS_OK) {
        /* Whatever it already pushed to us is unread, too. */
        r->pending = ci->NumPending + ci->Delivered.Consumer;
        jsConsumerInfo_Destroy(ci);
    } else {
        r->pending = UINT64_MAX;   /* unknown: assume there is something */
    }
    return JF_OK;
}

static jf_status_t next_ordered(jf_reader_t *r, int64_t timeout_ms, jf_jsmsg_t **out,
                                jf_err_t *err)
{
    int64_t     deadline = jf_clock_mono_ms() + timeout_ms;
    natsMsg    *msg = NULL;
    jf_jsmsg_t *m = NULL;
    natsStatus  s;
    jf_status_t st;

    for (;;) {
        int64_t left = deadline - jf_clock_mono_ms();

        s = natsSubscription_NextMsg(&msg, r->sub, left > 0 ? left : 0);
        if (s == NATS_TIMEOUT)
            return jf_err_set(err, JF_ETIMEOUT, "no message within %" PRId64 " ms", timeout_ms);
        if (s == NATS_SLOW_CONSUMER)
            continue;   /* reported once; the ordered consumer resets after a gap */
        if (s != NATS_OK)
            return jf_nats_status(s, err, "reading the next message");
        st = jf_jsmsg_wrap(&m, r->nc, msg, NULL);
        if (st != JF_OK) {
            natsMsg_Destroy(msg);   /* not a stream message: nothing to hand out */
            continue;
        }
        r->pending = jf_jsmsg_meta(m)->pending;
        *out = m;
        return JF_OK;
    }
}

/* ---- durable: a pull consumer driven by hand ----------------------------------------- */

/* Bind to the durable consumer, creating it when it does not exist. */
static jf_status_t ensure_durable(jf_reader_t *r, const jf_reader_opts_t *o, jf_err_t *err)
{
    jsConsumerConfig cc;
    jsConsumerInfo  *ci = NULL;
    jsOptions        jo;
    jsErrCode        jerr = 0;
    natsStatus       s;
    jf_status_t      st = JF_OK;
    const char      *want = o->filter;
    const char      *have;
    char             what[160];

    snprintf(what, sizeof(what), "looking up consumer %s on stream %s", o->durable, o->stream);
    s = js_GetConsumerInfo(&ci, r->nc->js, o->stream, o->durable, jf_js_opts(r->nc, &jo), &jerr);
    if (s == NATS_OK) {
        r->resumed = true;
    } else if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
        jsConsumerConfig_Init(&cc);
        cc.Durable = o->durable;
        cc.Description = "jetfleet reader (audit tail --durable)";
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = (o->ack_wait_ms > 0 ? o->ack_wait_ms : ACK_WAIT_DEFAULT) * 1000000;
        cc.MaxAckPending = 64;
        start_config(&cc, o);
        jerr = 0;
        snprintf(what, sizeof(what), "creating consumer %s on stream %s", o->durable, o->stream);
        s = js_AddConsumer(&ci, r->nc->js, o->stream, &cc, jf_js_opts(r->nc, &jo), &jerr);
        if (s != NATS_OK) {
            /* Another reader of the same name may have won the race. */
            jerr = 0;
            s = js_GetConsumerInfo(&ci, r->nc->js, o->stream, o->durable, jf_js_opts(r->nc, &jo),
                                   &jerr);
            if (s == NATS_OK)
                r->resumed = true;
        }
    }
    if (s != NATS_OK)
        return jf_js_status(s, jerr, err, what);

    have = ci->Config != NULL && ci->Config->FilterSubject != NULL ? ci->Config->FilterSubject : "";
    if (ci->Config != NULL && ci->Config->DeliverSubject != NULL &&
        ci->Config->DeliverSubject[0] != '\0')
        st = jf_err_set(err, JF_ECONFIG, "consumer %s on stream %s is a push consumer; a "
                        "durable reader needs a pull consumer: pick another name", o->durable,
                        o->stream);
    else if (ci->Config != NULL && ci->Config->AckPolicy != js_AckExplicit)
        st = jf_err_set(err, JF_ECONFIG, "consumer %s on stream %s does not use explicit acks: "
                        "pick another name", o->durable, o->stream);
    else if (strcmp(have, want) != 0)
        st = jf_err_set(err, JF_ECONFIG, "consumer %s on stream %s reads '%.100s', not "
                        "'%.100s': use the same filters as when it was created, or another name",
                        o->durable, o->stream, have[0] ? have : "(all)", want);
    else
        r->pending = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    return st;
}

static jf_status_t open_durable(jf_reader_t *r, const jf_reader_opts_t *o, jf_err_t *err)
{
    natsInbox  *inbox = NULL;
    char        wildcard[160];
    natsStatus  s;
    jf_status_t st;

    st = ensure_durable(r, o, err);
    if (st != JF_OK)
        return st;
    snprintf(r->next_subject, sizeof(r->next_subject), "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             o->stream, o->durable);
    s = natsInbox_Create(&inbox);
    if (s != NATS_OK)
        return jf_nats_status(s, err, "creating a reply inbox");
    strlcpy(r->inbox, inbox, sizeof(r->inbox));
    natsInbox_Destroy(inbox);
    snprintf(wildcard, sizeof(wildcard), "%s.*", r->inbox);
    s = natsConnection_SubscribeSync(&r->sub, r->nc->conn, wildcard);
    if (s != NATS_OK)
        return jf_nats_status(s, err, "subscribing to the reply inbox");
    natsSubscription_SetPendingLimits(r->sub, -1, -1);
    return JF_OK;
}

static jf_status_t send_request(jf_reader_t *r, jf_err_t *err)
{
    char       reply[160], body[96];
    natsStatus s;

    r->req_n++;
    snprintf(reply, sizeof(reply), "%s.%" PRIu64, r->inbox, r->req_n);
    snprintf(body, sizeof(body), "{\"batch\":1,\"expires\":%" PRId64 "}",
             (int64_t)REQ_EXPIRES_MS * 1000000);
    s = natsConnection_PublishRequest(r->nc->conn, r->next_subject, reply, body,
                                      (int)strlen(body));
    if (s != NATS_OK)
        return jf_nats_status(s, err, "requesting the next message");
    r->req_alive = true;
    r->req_lost_at = jf_clock_mono_ms() + REQ_EXPIRES_MS + REQ_GRACE_MS;
    return JF_OK;
}

/* The request number at the end of a status message's subject, or 0. */
static uint64_t request_of(const jf_reader_t *r, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg);
    size_t      n = strlen(r->inbox);

    if (strncmp(subj, r->inbox, n) != 0 || subj[n] != '.')
        return 0;
    return strtoull(subj + n + 1, NULL, 10);
}

static jf_status_t next_durable(jf_reader_t *r, int64_t timeout_ms, jf_jsmsg_t **out,
                                jf_err_t *err)
{
    int64_t     deadline = jf_clock_mono_ms() + timeout_ms;
    const char *status, *desc;
    natsMsg    *msg = NULL;
    jf_jsmsg_t *m = NULL;
    natsStatus  s;
    jf_status_t st;

    for (;;) {
        int64_t now = jf_clock_mono_ms(), wait;

        if (!r->req_alive || now >= r->req_lost_at) {
            st = send_request(r, err);
            if (st != JF_OK)
                return st;
        }
        wait = deadline - now;
        if (r->req_lost_at - now < wait)
            wait = r->req_lost_at - now;
        s = natsSubscription_NextMsg(&msg, r->sub, wait > 0 ? wait : 0);
        if (s == NATS_TIMEOUT) {
            if (jf_clock_mono_ms() >= deadline)
                return jf_err_set(err, JF_ETIMEOUT, "no message within %" PRId64 " ms",
                                  timeout_ms);
            continue;   /* the request is lost: send another */
        }
        if (s == NATS_NO_RESPONDERS)
            return jf_err_set(err, JF_ENOTFOUND, "consumer %s on stream %s no longer exists",
                              r->consumer, r->stream);
        if (s != NATS_OK)
            return jf_nats_status(s, err, "reading the next message");

        status = NULL;
        if (natsMsg_GetDataLength(msg) == 0 &&
            natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status != NULL) {
            bool current = request_of(r, msg) == r->req_n;

            desc = NULL;
            natsMsgHeader_Get(msg, "Description", &desc);
            if (strcmp(status, "409") == 0 && desc != NULL &&
                strstr(desc, "Consumer Deleted") != NULL) {
                natsMsg_Destroy(msg);
                return jf_err_set(err, JF_ENOTFOUND, "consumer %s on stream %s was deleted",
                                  r->consumer, r->stream);
            }
            if (current && strcmp(status, "100") != 0) {
                /* 404, 408: nothing came in time; 409: the server refused
                 * the request (e.g. too many waiting) - pause before the
                 * next so as not to spin. */
                r->req_alive = false;
                if (strcmp(status, "409") == 0)
                    nats_Sleep(BUSY_BACKOFF_MS);
            }
            natsMsg_Destroy(msg);
            continue;
        }
        st = jf_jsmsg_wrap(&m, r->nc, msg, NULL);
        if (st != JF_OK) {
            natsMsg_Destroy(msg);
            continue;
        }
        /* One message per request: this one ended the request alive. An
         * older request cannot deliver any more (it expired before this
         * one was sent). */
        r->req_alive = false;
        r->pending = jf_jsmsg_meta(m)->pending;
        *out = m;
        return JF_OK;
    }
}

/* ---- the reader --------------------------------------------------------------------- */

jf_status_t jf_reader_open(jf_reader_t **out, jf_nats_t *nc, const jf_reader_opts_t *o,
                           jf_err_t *err)
{
    jf_reader_t *r = NULL;
    jf_status_t  st;

    if (o == NULL || o->stream == NULL || o->stream[0] == '\0' ||
        strlen(o->stream) >= sizeof(r->stream))
        return jf_err_set(err, JF_EINVAL, "reader: a stream name is needed");
    if (o->filter == NULL || o->filter[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "reader: a subject filter is needed");
    if (o->durable != NULL && !jf_js_durable_name_ok(o->durable))
        return jf_err_set(err, JF_EINVAL, "'%.80s' is not a valid durable name: 1 to 64 "
                          "letters, digits, '_' or '-'", o->durable);
    st = check_stream(nc, o->stream, err);
    if (st != JF_OK)
        return st;

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    r->nc = nc;
    r->durable = o->durable != NULL;
    strlcpy(r->stream, o->stream, sizeof(r->stream));
    if (r->durable)
        strlcpy(r->consumer, o->durable, sizeof(r->consumer));
    st = r->durable ? open_durable(r, o, err) : open_ordered(r, o, err);
    if (st != JF_OK)
        goto out;
    *out = r;
    r = NULL;
out:
    jf_reader_close(r);
    return st;
}

jf_status_t jf_reader_next(jf_reader_t *r, int64_t timeout_ms, jf_jsmsg_t **out, jf_err_t *err)
{
    if (timeout_ms < 0)
        timeout_ms = 0;
    return r->durable ? next_durable(r, timeout_ms, out, err)
                      : next_ordered(r, timeout_ms, out, err);
}

bool jf_reader_resumed(const jf_reader_t *r)
{
    return r->resumed;
}

uint64_t jf_reader_pending(const jf_reader_t *r)
{
    return r->pending;
}

void jf_reader_close(jf_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->sub != NULL) {
        /* Ordered: the library deletes the consumer it created. Durable:
         * only our inbox goes; a request still alive at the server finds
         * no interest and delivers nothing. */
        natsSubscription_Unsubscribe(r->sub);
        natsSubscription_Destroy(r->sub);
    }
    free(r);
}
