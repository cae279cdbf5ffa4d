/*
 * pipe.c - requests with completion callbacks (see pipe.h).
 *
 * The table of pending requests is a chained hash on the token plus a
 * list in order of sending. Every request of a pipe has the same timeout,
 * so that list is also in deadline order: the timer thread only ever looks
 * at its head. Both are guarded by p->mu, which is never held while a
 * callback runs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/nats_internal.h"
#include "core/pipe.h"

#define FIRST_BUCKETS 256

struct jf_pipe_answer {
    natsMsg *msg;
};

struct jf_pipe {
    jf_nats_t        *nc;
    natsSubscription *sub;
    char              inbox[96];      /* answers arrive on <inbox>.<token> */
    size_t            inbox_len;
    int64_t           timeout_ms;

    pthread_mutex_t   mu;
    pthread_cond_t    cond;           /* the timer thread sleeps on it */
    jf_pipe_req_t   **buckets;
    size_t            nbuckets;       /* a power of two */
    int               count;
    jf_pipe_req_t    *head, *tail;    /* oldest first */
    uint64_t          next_token;
    bool              closing;
    pthread_t         timer;
    bool              timer_running;
};

/* ---- the table ----------------------------------------------------------------- */

static size_t bucket_of(const jf_pipe_t *p, uint64_t token)
{
    return (size_t)(token * UINT64_C(0x9E3779B97F4A7C15) >> 32) & (p->nbuckets - 1);
}

/* Grow the hash when it holds more than two requests a bucket. Holds mu. */
static void maybe_grow(jf_pipe_t *p)
{
    jf_pipe_req_t **nb;
    size_t          old = p->nbuckets;

    if ((size_t)p->count < old * 2)
        return;
    nb = calloc(old * 2, sizeof(*nb));
    if (nb == NULL)
        return;   /* longer chains, still correct */
    p->nbuckets = old * 2;
    for (size_t i = 0; i < old; i++) {
        jf_pipe_req_t *r = p->buckets[i];
        while (r != NULL) {
            jf_pipe_req_t *next = r->hnext;
            size_t         b = bucket_of(p, r->token);
            r->hnext = nb[b];
            nb[b] = r;
            r = next;
        }
    }
    free(p->buckets);
    p->buckets = nb;
}

/* Holds mu. */
static void insert(jf_pipe_t *p, jf_pipe_req_t *r)
{
    size_t b;

    maybe_grow(p);
    b = bucket_of(p, r->token);
    r->hnext = p->buckets[b];
    p->buckets[b] = r;
    r->next = NULL;
    r->prev = p->tail;
    if (p->tail != NULL)
        p->tail->next = r;
    else
        p->head = r;
    p->tail = r;
    p->count++;
}

/* Take the request of token out of the table; NULL when it is not there
 * (answered twice, or timed out already). Holds mu. */
static jf_pipe_req_t *take(jf_pipe_t *p, uint64_t token)
{
    jf_pipe_req_t **link = &p->buckets[bucket_of(p, token)];
    jf_pipe_req_t  *r;

    while ((r = *link) != NULL && r->token != token)
        link = &r->hnext;
    if (r == NULL)
        return NULL;
    *link = r->hnext;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        p->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        p->tail = r->prev;
    p->count--;
    return r;
}

/* ---- answers and timeouts --------------------------------------------------------- */

static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    jf_pipe_t        *p = closure;
    const char       *subject = natsMsg_GetSubject(msg);
    jf_pipe_req_t    *r = NULL;
    jf_pipe_answer_t  a = { msg };
    char             *end = NULL;
    uint64_t          token;

    (void)nc;
    (void)sub;
    if (strncmp(subject, p->inbox, p->inbox_len) == 0 && subject[p->inbox_len] == '.') {
        token = strtoull(subject + p->inbox_len + 1, &end, 10);
        if (end != subject + p->inbox_len + 1 && *end == '\0') {
            pthread_mutex_lock(&p->mu);
            r = take(p, token);
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (r != NULL)
        r->done(r, JF_OK, &a);
    natsMsg_Destroy(msg);
}

/* Call back, with st, every request whose deadline passed (every one when
 * all is set), oldest first. */
static void expire(jf_pipe_t *p, bool all, jf_status_t st)
{
    for (;;) {
        jf_pipe_req_t *r = NULL;

        pthread_mutex_lock(&p->mu);
        if (p->head != NULL && (all || p->head->deadline <= jf_clock_mono_ms()))
            r = take(p, p->head->token);
        pthread_mutex_unlock(&p->mu);
        if (r == NULL)
            return;
        r->done(r, st, NULL);
    }
}

static void *timer_main(void *arg)
{
    jf_pipe_t *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->closing) {
        /* Sleep until the oldest request's deadline, or a second when
         * nothing is pending (a send wakes the thread only when the table
         * was empty). */
        int64_t until = p->head != NULL ? p->head->deadline : jf_clock_mono_ms() + 1000;

        jf_cond_wait_until(&p->cond, &p->mu, until);
        if (p->closing)
            break;
        if (p->head != NULL && p->head->deadline <= jf_clock_mono_ms()) {
            pthread_mutex_unlock(&p->mu);
            expire(p, false, JF_ETIMEOUT);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------- */

jf_status_t jf_pipe_create(jf_pipe_t **out, jf_nats_t *nc, int64_t timeout_ms, jf_err_t *err)
{
    jf_pipe_t  *p = calloc(1, sizeof(*p));
    natsInbox  *inbox = NULL;
    natsStatus  s;
    char        subject[112];
    jf_status_t st;

    if (p == NULL || (p->buckets = calloc(FIRST_BUCKETS, sizeof(*p->buckets))) == NULL) {
        free(p);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    p->nbuckets = FIRST_BUCKETS;
    p->nc = nc;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    pthread_mutex_init(&p->mu, NULL);
    jf_cond_init(&p->cond);
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(p->inbox, sizeof(p->inbox), "%s", (const char *)inbox);
        p->inbox_len = strlen(p->inbox);
        natsInbox_Destroy(inbox);
        snprintf(subject, sizeof(subject), "%s.*", p->inbox);
        s = natsConnection_Subscribe(&p->sub, nc->conn, subject, on_answer, p);
    }
    /* The number of requests in flight bounds what can arrive; never drop
     * an answer on the client side. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (s != NATS_OK) {
        st = jf_nats_status(s, err, "subscribing for answers");
        goto fail;
    }
    if (pthread_create(&p->timer, NULL, timer_main, p) != 0) {
        st = jf_err_set(err, JF_ENOMEM, "cannot start the request timer thread");
        goto fail;
    }
    p->timer_running = true;
    *out = p;
    return JF_OK;
fail:
    if (p->sub != NULL) {
        natsSubscription_Unsubscribe(p->sub);
        natsSubscription_Destroy(p->sub);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p->buckets);
    free(p);
    return st;
}

void jf_pipe_destroy(jf_pipe_t *p)
{
    if (p == NULL)
        return;
    /* Drain: once it completes, no answer callback runs or will run. */
    if (natsSubscription_Drain(p->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(p->sub, 5000);
    natsSubscription_Destroy(p->sub);
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->timer_running)
        pthread_join(p->timer, NULL);
    expire(p, true, JF_ESTATE);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p->buckets);
    free(p);
}

jf_status_t jf_pipe_send(jf_pipe_t *p, jf_pipe_req_t *req, const char *subject,
                         const jf_header_t *hdrs, size_t nhdrs, const void *data, size_t len,
                         jf_err_t *err)
{
    char        reply[128];
    natsMsg    *msg = NULL;
    natsStatus  s;
    uint64_t    token;
    bool        wake;

    pthread_mutex_lock(&p->mu);
    if (p->closing) {
        pthread_mutex_unlock(&p->mu);
        return jf_err_set(err, JF_ESTATE, "the pipe is closing");
    }
    req->token = token = ++p->next_token;
    req->deadline = jf_clock_mono_ms() + p->timeout_ms;
    wake = p->head == NULL;
    /* In the table before it is on the wire: the answer may come at once. */
    insert(p, req);
    if (wake)
        pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);

    /* From here req may be answered, timed out and freed: use token only. */
    snprintf(reply, sizeof(reply), "%s.%" PRIu64, p->inbox, token);
    if (nhdrs == 0) {
        s = natsConnection_PublishRequest(p->nc->conn, subject, reply, data, (int)len);
    } else {
        s = natsMsg_Create(&msg, subject, reply, data, (int)len);
        for (size_t i = 0; s == NATS_OK && i < nhdrs; i++)
            s = natsMsgHeader_Add(msg, hdrs[i].name, hdrs[i].value);
        if (s == NATS_OK)
            s = natsConnection_PublishMsg(p->nc->conn, msg);
        natsMsg_Destroy(msg);
    }
    if (s != NATS_OK) {
        char        what[300];
        jf_pipe_req_t *r;

        pthread_mutex_lock(&p->mu);
        r = take(p, token);
        pthread_mutex_unlock(&p->mu);
        if (r == NULL)
            /* Nothing went out, so no answer came: the timer took it, and
             * done was called. It is no longer ours to fail. */
            return JF_OK;
        snprintf(what, sizeof(what), "publishing to %.200s", subject);
        return jf_nats_status(s, err, what);
    }
    return JF_OK;
}

int jf_pipe_pending(jf_pipe_t *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->count;
    pthread_mutex_unlock(&p->mu);
    return n;
}

jf_nats_t *jf_pipe_nats(jf_pipe_t *p)
{
    return p->nc;
}

/* ---- answers -------------------------------------------------------------------- */

const char *jf_pipe_answer_status(const jf_pipe_answer_t *a)
{
    const char *status = NULL;

    if (natsMsg_GetDataLength(a->msg) != 0 ||
        natsMsgHeader_Get(a->msg, "Status", &status) != NATS_OK)
        return NULL;
    return status;
}

const char *jf_pipe_answer_header(const jf_pipe_answer_t *a, const char *name)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(a->msg, name, &v) != NATS_OK)
        return NULL;
    return v;
}

const char *jf_pipe_answer_data(const jf_pipe_answer_t *a, size_t *len)
{
    const char *data = natsMsg_GetData(a->msg);
    int         n = natsMsg_GetDataLength(a->msg);

    *len = n > 0 ? (size_t)n : 0;
    return data != NULL ? data : "";
}

/* The usual acknowledgement, {"stream":"X","seq":N} with perhaps
 * "duplicate":true, read by hand: a JSON parse was a tenth of a worker's
 * instructions per job. false for anything else (then parse it). */
static bool quick_puback(const char *data, size_t len, jf_pub_ack_t *out)
{
    const char *seq, *stream, *q;
    char       *end;
    uint64_t    n;

    if (data == NULL || len < 2 || data[0] != '{' || data[len - 1] != '}' ||
        memmem(data, len, "\"error\"", 7) != NULL ||
        (seq = memmem(data, len, "\"seq\":", 6)) == NULL)
        return false;
    n = strtoull(seq + 6, &end, 10);
    if (end == seq + 6 || (size_t)(end - data) >= len)
        return false;
    if (out != NULL) {
        out->seq = n;
        out->duplicate = memmem(data, len, "\"duplicate\":true", 16) != NULL;
        out->stream[0] = '\0';
        if ((stream = memmem(data, len, "\"stream\":\"", 10)) != NULL) {
            stream += 10;
            q = memchr(stream, '"', len - (size_t)(stream - data));
            if (q != NULL && (size_t)(q - stream) < sizeof(out->stream)) {
                memcpy(out->stream, stream, (size_t)(q - stream));
                out->stream[q - stream] = '\0';
            }
        }
    }
    return true;
}

jf_status_t jf_pipe_puback(const jf_pipe_answer_t *a, jf_pub_ack_t *out, char *why,
                           size_t why_size)
{
    const char  *status = jf_pipe_answer_status(a);
    const char  *data;
    size_t       len;
    json_t      *doc, *e;
    json_error_t jerr;
    jf_status_t  st = JF_OK;

    if (status != NULL) {
        const char *desc = jf_pipe_answer_header(a, "Description");
        snprintf(why, why_size, "status %s%s%s", status, desc ? " " : "", desc ? desc : "");
        if (strcmp(status, "503") == 0) {
            snprintf(why, why_size, "no responders: no stream takes the subject, or "
                     "JetStream is not available");
            return JF_EUNAVAILABLE;
        }
        return JF_EIO;
    }
    data = jf_pipe_answer_data(a, &len);
    if (quick_puback(data, len, out))
        return JF_OK;
    doc = json_loadb(data, len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        snprintf(why, why_size, "unreadable acknowledgement");
        st = JF_EIO;
    } else if ((e = json_object_get(doc, "error")) != NULL) {
        const char *desc = json_string_value(json_object_get(e, "description"));
        json_int_t  code = json_integer_value(json_object_get(e, "err_code"));
        snprintf(why, why_size, "%.160s (JetStream error %lld)", desc != NULL ? desc : "error",
                 (long long)code);
        st = code == 10071 || (desc != NULL && strstr(desc, "wrong last sequence") != NULL)
                 ? JF_ESTATE : JF_EIO;
    } else if (json_object_get(doc, "seq") == NULL) {
        snprintf(why, why_size, "acknowledgement without a sequence");
        st = JF_EIO;
    } else if (out != NULL) {
        const char *stream = json_string_value(json_object_get(doc, "stream"));
        snprintf(out->stream, sizeof(out->stream), "%s", stream ? stream : "");
        out->seq = (uint64_t)json_integer_value(json_object_get(doc, "seq"));
        out->duplicate = json_is_true(json_object_get(doc, "duplicate"));
    }
    json_decref(doc);
    return st;
}
