/*
 * jsstore.c - stored messages: get, copy with headers, delete.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "core/jsmsg_internal.h"
#include "core/jsstore.h"
#include "core/nats_internal.h"

struct jf_stored_msg {
    natsMsg *msg;
};

jf_status_t jf_js_get_msg(jf_nats_t *nc, const char *stream, uint64_t seq,
                          jf_stored_msg_t **out, jf_err_t *err)
{
    jf_stored_msg_t *m;
    natsMsg         *msg = NULL;
    jsOptions        jo;
    jsErrCode        jerr = 0;
    natsStatus       s;
    char             what[128];

    jf_js_opts(nc, &jo);
    s = js_GetMsg(&msg, nc->js, stream, seq, &jo, &jerr);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "getting message %llu of stream %s",
                 (unsigned long long)seq, stream);
        /* 10037: no message found */
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            return jf_err_set(err, JF_ENOTFOUND, "%s: no such message", what);
        return jf_js_status(s, jerr, err, what);
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        natsMsg_Destroy(msg);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    m->msg = msg;
    *out = m;
    return JF_OK;
}

const char *jf_stored_msg_subject(const jf_stored_msg_t *m) { return natsMsg_GetSubject(m->msg); }
const char *jf_stored_msg_data(const jf_stored_msg_t *m)    { return natsMsg_GetData(m->msg); }
uint64_t jf_stored_msg_seq(const jf_stored_msg_t *m)        { return natsMsg_GetSequence(m->msg); }
int64_t jf_stored_msg_time_ns(const jf_stored_msg_t *m)     { return natsMsg_GetTime(m->msg); }

size_t jf_stored_msg_len(const jf_stored_msg_t *m)
{
    int n = natsMsg_GetDataLength(m->msg);
    return n > 0 ? (size_t)n : 0;
}

const char *jf_stored_msg_header(const jf_stored_msg_t *m, const char *name)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(m->msg, name, &v) != NATS_OK)
        return NULL;
    return v;
}

static void each_header(natsMsg *msg, jf_header_fn fn, void *arg)
{
    const char **keys = NULL;
    int          nkeys = 0;

    if (natsMsgHeader_Keys(msg, &keys, &nkeys) != NATS_OK)
        return;
    for (int i = 0; i < nkeys; i++) {
        const char **vals = NULL;
        int          nvals = 0;
        if (natsMsgHeader_Values(msg, keys[i], &vals, &nvals) != NATS_OK)
            continue;
        for (int j = 0; j < nvals; j++)
            fn(keys[i], vals[j], arg);
        free((void *)vals);
    }
    free((void *)keys);
}

jf_status_t jf_stored_msg_headers(const jf_stored_msg_t *m, jf_header_fn fn, void *arg)
{
    each_header(m->msg, fn, arg);
    return JF_OK;
}

void jf_stored_msg_destroy(jf_stored_msg_t *m)
{
    if (m == NULL)
        return;
    natsMsg_Destroy(m->msg);
    free(m);
}

jf_status_t jf_js_delete_msg(jf_nats_t *nc, const char *stream, uint64_t seq, jf_err_t *err)
{
    jsOptions  jo;
    jsErrCode  jerr = 0;
    natsStatus s;
    char       what[128];

    jf_js_opts(nc, &jo);
    s = js_DeleteMsg(nc->js, stream, seq, &jo, &jerr);
    if (s == NATS_OK)
        return JF_OK;
    snprintf(what, sizeof(what), "deleting message %llu of stream %s",
             (unsigned long long)seq, stream);
    if (s == NATS_NOT_FOUND || jerr == JSSequenceNotFoundErr || jerr == JSNoMessageFoundErr)
        return jf_err_set(err, JF_ENOTFOUND, "%s: already gone", what);
    return jf_js_status(s, jerr, err, what);
}

/* ---- copies ---------------------------------------------------------------------- */

struct copy_ctx {
    natsMsg              *out;
    const jf_copy_opts_t *o;
    natsStatus            s;
};

static bool dropped(const struct copy_ctx *c, const char *name)
{
    if (strcasecmp(name, "Nats-Msg-Id") == 0 || strncasecmp(name, "Nats-Expected-", 14) == 0)
        return true;
    for (size_t i = 0; i < c->o->nadd; i++)
        if (strcasecmp(name, c->o->add[i].name) == 0)
            return true;
    for (const char *const *d = c->o->drop; d != NULL && *d != NULL; d++)
        if (strcasecmp(name, *d) == 0)
            return true;
    return false;
}

static void copy_header(const char *name, const char *value, void *arg)
{
    struct copy_ctx *c = arg;

    if (c->s == NATS_OK && !dropped(c, name))
        c->s = natsMsgHeader_Add(c->out, name, value);
}

static jf_status_t copy_raw(jf_nats_t *nc, natsMsg *src, const jf_copy_opts_t *o,
                            jf_pub_ack_t *ack, jf_err_t *err)
{
    struct copy_ctx c = { .o = o, .s = NATS_OK };
    jsPubAck       *pa = NULL;
    jsPubOptions    po;
    jsErrCode       jerr = 0;
    natsStatus      s;
    char            what[300];

    snprintf(what, sizeof(what), "publishing a copy to %s", o->subject);
    s = natsMsg_Create(&c.out, o->subject, NULL, natsMsg_GetData(src),
                       natsMsg_GetDataLength(src));
    if (s != NATS_OK)
        return jf_nats_status(s, err, what);
    each_header(src, copy_header, &c);
    for (size_t i = 0; c.s == NATS_OK && i < o->nadd; i++)
        c.s = natsMsgHeader_Add(c.out, o->add[i].name, o->add[i].value);
    if (c.s != NATS_OK) {
        natsMsg_Destroy(c.out);
        return jf_nats_status(c.s, err, what);
    }
    jsPubOptions_Init(&po);
    po.MsgId = o->msg_id;
    po.MaxWait = nc->api_timeout_ms;
    s = js_PublishMsg(&pa, nc->js, c.out, &po, &jerr);
    natsMsg_Destroy(c.out);
    if (s != NATS_OK)
        return jf_js_status(s, jerr, err, what);
    if (ack != NULL) {
        strlcpy(ack->stream, pa->Stream ? pa->Stream : "", sizeof(ack->stream));
        ack->seq = pa->Sequence;
        ack->duplicate = pa->Duplicate;
    }
    jsPubAck_Destroy(pa);
    return JF_OK;
}

jf_status_t jf_stored_msg_copy(jf_nats_t *nc, const jf_stored_msg_t *m, const jf_copy_opts_t *o,
                               jf_pub_ack_t *ack, jf_err_t *err)
{
    return copy_raw(nc, m->msg, o, ack, err);
}

/* ---- copies without waiting ------------------------------------------------------ */

struct collect_ctx {
    const jf_copy_opts_t *o;
    jf_header_t          *h;
    size_t                n, cap;
    bool                  nomem;
};

static void push(struct collect_ctx *c, const char *name, const char *value)
{
    if (c->nomem)
        return;
    if (c->n == c->cap) {
        size_t       cap = c->cap ? c->cap * 2 : 16;
        jf_header_t *h = reallocarray(c->h, cap, sizeof(*h));
        if (h == NULL) {
            c->nomem = true;
            return;
        }
        c->h = h;
        c->cap = cap;
    }
    c->h[c->n++] = (jf_header_t){ name, value };
}

/* An original header, unless the copy drops or replaces it. */
static void collect_header(const char *name, const char *value, void *arg)
{
    struct collect_ctx *c = arg;
    struct copy_ctx     probe = { .o = c->o };

    if (!dropped(&probe, name))
        push(c, name, value);
}

static void on_copied(jf_pipe_req_t *req, jf_status_t st, const jf_pipe_answer_t *a)
{
    jf_copy_op_t *op = (jf_copy_op_t *)((char *)req - offsetof(jf_copy_op_t, req));

    memset(&op->ack, 0, sizeof(op->ack));
    if (st == JF_OK)
        st = jf_pipe_puback(a, &op->ack, op->why, sizeof(op->why));
    else
        snprintf(op->why, sizeof(op->why), "%s", st == JF_ETIMEOUT
                 ? "no acknowledgement from the stream in time" : "shutting down");
    op->done(op, st);
}

jf_status_t jf_jsmsg_copy_async(jf_pipe_t *p, jf_copy_op_t *op, const jf_jsmsg_t *m,
                                const jf_copy_opts_t *o, jf_err_t *err)
{
    struct collect_ctx c = { .o = o };
    natsMsg           *src = jf_jsmsg_raw(m);
    jf_status_t        st;

    each_header(src, collect_header, &c);
    for (size_t i = 0; i < o->nadd; i++)
        push(&c, o->add[i].name, o->add[i].value);
    if (o->msg_id != NULL)
        push(&c, "Nats-Msg-Id", o->msg_id);
    if (c.nomem) {
        free(c.h);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    op->req.done = on_copied;
    st = jf_pipe_send(p, &op->req, o->subject, c.h, c.n, natsMsg_GetData(src),
                      (size_t)(natsMsg_GetDataLength(src) > 0 ? natsMsg_GetDataLength(src) : 0),
                      err);
    free(c.h);
    return st;
}
