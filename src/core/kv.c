/*
 * kv.c - JetStream KV through nats.c's kvStore API.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/kv.h"
#include "core/nats_internal.h"
#include "core/registry_impl.h"

struct jf_kv {
    natsConnection *conn;
    jsCtx          *js;      /* its own context, so that KV calls use JF_API_TIMEOUT */
    kvStore        *kv;
    char            bucket[64];
};

jf_status_t jf_kv_open(jf_kv_t **out, jf_nats_t *nc, const char *bucket, jf_err_t *err)
{
    jf_kv_t   *kv;
    jsOptions  jo;
    natsStatus s;
    char       what[128];

    if (strlen(bucket) >= sizeof(kv->bucket))
        return jf_err_set(err, JF_EINVAL, "KV bucket name '%.64s...' is too long", bucket);
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    snprintf(kv->bucket, sizeof(kv->bucket), "%s", bucket);
    kv->conn = nc->conn;
    s = natsConnection_JetStream(&kv->js, nc->conn, jf_js_opts(nc, &jo));
    if (s == NATS_OK)
        s = js_KeyValue(&kv->kv, kv->js, bucket);
    if (s != NATS_OK) {
        jsCtx_Destroy(kv->js);
        free(kv);
        if (s == NATS_NOT_FOUND)
            return jf_err_set(err, JF_ENOTFOUND, "KV bucket %s does not exist; create it with "
                              "`jetfleet provision`", bucket);
        snprintf(what, sizeof(what), "opening KV bucket %s", bucket);
        return jf_nats_status(s, err, what);
    }
    *out = kv;
    return JF_OK;
}

jf_status_t jf_kv_open_module(jf_kv_t **out, const jf_module_ctx_t *mctx, const char *bucket,
                              jf_err_t *err)
{
    jf_nats_t *nc = jf_registry_nats_of(mctx);

    if (nc == NULL)
        return jf_err_set(err, JF_ESTATE, "no NATS connection to open KV bucket %s with", bucket);
    return jf_kv_open(out, nc, bucket, err);
}

void jf_kv_close(jf_kv_t *kv)
{
    if (kv == NULL)
        return;
    kvStore_Destroy(kv->kv);
    jsCtx_Destroy(kv->js);
    free(kv);
}

const char *jf_kv_bucket(const jf_kv_t *kv)
{
    return kv->bucket;
}

static jf_status_t kv_error(jf_kv_t *kv, natsStatus s, jf_err_t *err, const char *op,
                            const char *key)
{
    char what[192];

    snprintf(what, sizeof(what), "%s %s.%.80s", op, kv->bucket, key);
    return jf_nats_status(s, err, what);
}

jf_status_t jf_kv_get(jf_kv_t *kv, const char *key, jf_arena_t *arena, void **ret_val,
                      size_t *ret_len, uint64_t *ret_rev, jf_err_t *err)
{
    kvEntry    *e = NULL;
    natsStatus  s;
    size_t      len;
    void       *copy;

    s = kvStore_Get(&e, kv->kv, key);
    if (s == NATS_NOT_FOUND)
        return jf_err_set(err, JF_ENOTFOUND, "no value for %.200s in %s", key, kv->bucket);
    if (s != NATS_OK)
        return kv_error(kv, s, err, "reading", key);
    len = (size_t)kvEntry_ValueLen(e);
    copy = arena != NULL ? jf_arena_alloc(arena, len + 1) : calloc(1, len + 1);
    if (copy == NULL) {
        kvEntry_Destroy(e);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    if (len > 0)
        memcpy(copy, kvEntry_Value(e), len);
    ((char *)copy)[len] = '\0';
    if (ret_rev != NULL)
        *ret_rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    *ret_val = copy;
    *ret_len = len;
    return JF_OK;
}

jf_status_t jf_kv_put(jf_kv_t *kv, const char *key, const void *val, size_t len,
                      uint64_t *ret_rev, jf_err_t *err)
{
    natsStatus s = kvStore_Put(ret_rev, kv->kv, key, val, (int)len);

    return s == NATS_OK ? JF_OK : kv_error(kv, s, err, "writing", key);
}

/* JetStream refused the write because of its expected-last-sequence
 * header: someone else wrote the key. The server says "wrong last
 * sequence: <n>" (JSStreamWrongLastSequenceErr, 10071). */
static bool wrong_last_sequence(void)
{
    natsStatus  last = NATS_OK;
    const char *text = nats_GetLastError(&last);

    return text != NULL && strstr(text, "wrong last sequence") != NULL;
}

jf_status_t jf_kv_create(jf_kv_t *kv, const char *key, const void *val, size_t len,
                         uint64_t *ret_rev, jf_err_t *err)
{
    natsStatus s = kvStore_Create(ret_rev, kv->kv, key, val, (int)len);

    if (s == NATS_OK)
        return JF_OK;
    if (wrong_last_sequence())
        return jf_err_set(err, JF_EEXIST, "%s.%.80s already has a value", kv->bucket, key);
    return kv_error(kv, s, err, "creating", key);
}

jf_status_t jf_kv_update(jf_kv_t *kv, const char *key, const void *val, size_t len,
                         uint64_t last_rev, uint64_t *ret_rev, jf_err_t *err)
{
    natsStatus s = kvStore_Update(ret_rev, kv->kv, key, val, (int)len, last_rev);

    if (s == NATS_OK)
        return JF_OK;
    if (wrong_last_sequence())
        return jf_err_set(err, JF_ESTATE, "%s.%.80s changed since revision %llu", kv->bucket,
                          key, (unsigned long long)last_rev);
    return kv_error(kv, s, err, "updating", key);
}

jf_status_t jf_kv_delete(jf_kv_t *kv, const char *key, jf_err_t *err)
{
    natsStatus s = kvStore_Delete(kv->kv, key);

    return s == NATS_OK ? JF_OK : kv_error(kv, s, err, "deleting", key);
}

/* ---- asynchronous reads and writes ------------------------------------------------ */

enum { OP_READ, OP_WRITE, OP_PROBE };

/* A direct get's answer: the last entry on the key's subject, with its
 * revision in Nats-Sequence and, for a delete or purge marker, a
 * KV-Operation header; or a status: "404" (no entry), "503" (no
 * responders: the stream is not there). */
static jf_status_t read_answer(jf_kv_op_t *op, const jf_pipe_answer_t *a)
{
    const char *status = jf_pipe_answer_status(a);
    const char *seq, *kvop;

    if (status != NULL) {
        if (strcmp(status, "404") == 0) {
            op->rev = 0;
            snprintf(op->why, sizeof(op->why), "no value");
            return JF_ENOTFOUND;
        }
        if (strcmp(status, "503") == 0) {
            snprintf(op->why, sizeof(op->why), "reading from %s: no responders (the bucket's "
                     "stream KV_%s does not exist, or JetStream is not available)",
                     op->kv->bucket, op->kv->bucket);
            return JF_EUNAVAILABLE;
        }
        {
            const char *desc = jf_pipe_answer_header(a, "Description");
            snprintf(op->why, sizeof(op->why), "reading from %s: status %s %.120s",
                     op->kv->bucket, status, desc ? desc : "");
        }
        return JF_EIO;
    }
    seq = jf_pipe_answer_header(a, "Nats-Sequence");
    op->rev = seq != NULL ? strtoull(seq, NULL, 10) : 0;
    kvop = jf_pipe_answer_header(a, "KV-Operation");
    if (kvop != NULL && (strcmp(kvop, "DEL") == 0 || strcmp(kvop, "PURGE") == 0)) {
        snprintf(op->why, sizeof(op->why), "deleted");
        return JF_ENOTFOUND;
    }
    if (seq == NULL) {
        snprintf(op->why, sizeof(op->why), "reading from %s: an answer without Nats-Sequence",
                 op->kv->bucket);
        return JF_EIO;
    }
    op->val = jf_pipe_answer_data(a, &op->len);
    return JF_OK;
}

/* A stream info answer: the stream's configuration, or an error whose
 * err_code 10059 says the stream does not exist. */
static jf_status_t probe_answer(jf_kv_op_t *op, const jf_pipe_answer_t *a)
{
    const char *status = jf_pipe_answer_status(a);
    const char *data;
    size_t      len;
    json_t     *doc, *e;
    jf_status_t st = JF_OK;

    if (status != NULL) {
        snprintf(op->why, sizeof(op->why), "asking for stream KV_%s: status %s",
                 op->kv->bucket, status);
        return strcmp(status, "503") == 0 ? JF_EUNAVAILABLE : JF_EIO;
    }
    data = jf_pipe_answer_data(a, &len);
    doc = json_loadb(data, len, 0, NULL);
    if (doc == NULL) {
        snprintf(op->why, sizeof(op->why), "asking for stream KV_%s: unreadable answer",
                 op->kv->bucket);
        st = JF_EIO;
    } else if ((e = json_object_get(doc, "error")) != NULL) {
        json_int_t code = json_integer_value(json_object_get(e, "err_code"));
        const char *desc = json_string_value(json_object_get(e, "description"));
        snprintf(op->why, sizeof(op->why), "KV bucket %s: %.120s (JetStream error %lld)",
                 op->kv->bucket, desc ? desc : "error", (long long)code);
        st = code == 10059 ? JF_ENOTFOUND : JF_EIO;
    }
    json_decref(doc);
    return st;
}

static void on_answer(jf_pipe_req_t *req, jf_status_t st, const jf_pipe_answer_t *a)
{
    jf_kv_op_t *op = (jf_kv_op_t *)((char *)req - offsetof(jf_kv_op_t, req));
    jf_pub_ack_t ack;

    op->val = NULL;
    op->len = 0;
    if (st == JF_ETIMEOUT) {
        snprintf(op->why, sizeof(op->why), "no answer from KV bucket %s within the timeout",
                 op->kv->bucket);
    } else if (st != JF_OK) {
        snprintf(op->why, sizeof(op->why), "KV bucket %s: shutting down", op->kv->bucket);
    } else if (op->kind == OP_WRITE) {
        st = jf_pipe_puback(a, &ack, op->why, sizeof(op->why));
        if (st == JF_OK)
            op->rev = ack.seq;
    } else if (op->kind == OP_PROBE) {
        st = probe_answer(op, a);
    } else {
        st = read_answer(op, a);
    }
    op->done(op, st);
}

jf_status_t jf_kv_get_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, const char *key,
                            jf_err_t *err)
{
    /* The last entry of the key's subject, named in the API subject itself
     * ($JS.API.DIRECT.GET.<stream>.<subject>, as nats.c's kvStore_Get
     * asks): a permission on $JS.API.DIRECT.GET.KV_<bucket>.> covers it. */
    char subject[512];
    int  n = snprintf(subject, sizeof(subject), "$JS.API.DIRECT.GET.KV_%s.$KV.%s.%s",
                      kv->bucket, kv->bucket, key);

    if (n < 0 || (size_t)n >= sizeof(subject))
        return jf_err_set(err, JF_ETOOBIG, "KV key %.80s... is too long", key);
    op->kv = kv;
    op->kind = OP_READ;
    op->rev = 0;
    op->req.done = on_answer;
    return jf_pipe_send(p, &op->req, subject, NULL, 0, "", 0, err);
}

jf_status_t jf_kv_put_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, const char *key,
                            const void *val, size_t len, uint64_t expect, jf_err_t *err)
{
    char        subject[400], rev[24];
    jf_header_t h = { "Nats-Expected-Last-Subject-Sequence", rev };
    int         n = snprintf(subject, sizeof(subject), "$KV.%s.%s", kv->bucket, key);

    if (n < 0 || (size_t)n >= sizeof(subject))
        return jf_err_set(err, JF_ETOOBIG, "KV key %.80s... is too long", key);
    snprintf(rev, sizeof(rev), "%" PRIu64, expect);
    op->kv = kv;
    op->kind = OP_WRITE;
    op->rev = 0;
    op->req.done = on_answer;
    return jf_pipe_send(p, &op->req, subject, &h, expect == JF_KV_ANY_REV ? 0 : 1, val, len,
                        err);
}

jf_status_t jf_kv_probe_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, jf_err_t *err)
{
    char subject[160];

    snprintf(subject, sizeof(subject), "$JS.API.STREAM.INFO.KV_%s", kv->bucket);
    op->kv = kv;
    op->kind = OP_PROBE;
    op->rev = 0;
    op->req.done = on_answer;
    return jf_pipe_send(p, &op->req, subject, NULL, 0, "", 0, err);
}
