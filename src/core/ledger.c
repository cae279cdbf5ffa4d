/*
 * ledger.c - JF_LEDGER through the KV adapter (kv.h), records as protobuf.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ledger.h"
#include "core/kv.h"

struct jf_ledger {
    jf_nats_t *nc;
    jf_kv_t   *kv;
    jf_pipe_t *pipe;   /* NULL until jf_ledger_start() */
};

jf_status_t jf_ledger_open(jf_ledger_t **out, jf_nats_t *nc, const char *bucket, jf_err_t *err)
{
    jf_ledger_t *l = calloc(1, sizeof(*l));
    jf_status_t  st;

    if (l == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    st = jf_kv_open(&l->kv, nc, bucket, err);
    if (st != JF_OK) {
        free(l);
        return st;
    }
    l->nc = nc;
    *out = l;
    return JF_OK;
}

void jf_ledger_close(jf_ledger_t *l)
{
    if (l == NULL)
        return;
    jf_pipe_destroy(l->pipe);
    jf_kv_close(l->kv);
    free(l);
}

jf_status_t jf_ledger_key(char *buf, size_t size, const char *tenant, const char *type,
                          const char *job_id, jf_err_t *err)
{
    static const char hex[] = "0123456789ABCDEF";
    int    n = snprintf(buf, size, "%s.%s.", tenant, type);
    size_t w;

    if (n < 0 || (size_t)n >= size)
        goto toobig;
    w = (size_t)n;
    for (const unsigned char *p = (const unsigned char *)job_id; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (w + (keep ? 1 : 3) >= size)
            goto toobig;
        if (keep) {
            buf[w++] = (char)*p;
        } else {
            buf[w++] = '=';
            buf[w++] = hex[*p >> 4];
            buf[w++] = hex[*p & 0xf];
        }
    }
    buf[w] = '\0';
    return JF_OK;
toobig:
    return jf_err_set(err, JF_ETOOBIG, "ledger key for job '%.64s' is too long", job_id);
}

jf_status_t jf_ledger_get(jf_ledger_t *l, const char *key, jf_job_record_t **out,
                          jf_err_t *err)
{
    void            *val = NULL;
    size_t           len = 0;
    jf_job_record_t *rec;
    jf_status_t      st;

    st = jf_kv_get(l->kv, key, NULL, &val, &len, NULL, err);
    if (st == JF_ENOTFOUND)
        return jf_err_set(err, JF_ENOTFOUND, "no ledger record");
    if (st != JF_OK)
        return st;
    rec = jetfleet__v1__job_record__unpack(NULL, len, val);
    free(val);
    if (rec == NULL)
        return jf_err_set(err, JF_EDECODE, "ledger record %.200s is not a JobRecord", key);
    *out = rec;
    return JF_OK;
}

/* rec packed on the stack, or in buf (malloc'ed) when it is large. */
#define PACK_STACK 1024

static uint8_t *pack(const jf_job_record_t *rec, uint8_t stackbuf[PACK_STACK], size_t *ret_len)
{
    size_t   len = jetfleet__v1__job_record__get_packed_size(rec);
    uint8_t *buf = len > PACK_STACK ? malloc(len) : stackbuf;

    if (buf != NULL)
        jetfleet__v1__job_record__pack(rec, buf);
    *ret_len = len;
    return buf;
}

jf_status_t jf_ledger_put(jf_ledger_t *l, const char *key, const jf_job_record_t *rec,
                          jf_err_t *err)
{
    uint8_t     stackbuf[PACK_STACK];
    size_t      len;
    uint8_t    *buf = pack(rec, stackbuf, &len);
    jf_status_t st;

    if (buf == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    st = jf_kv_put(l->kv, key, buf, len, NULL, err);
    if (buf != stackbuf)
        free(buf);
    return st;
}

/* The pipe's thread: decode a read's value, pass every other answer on. */
static void on_answer(jf_kv_op_t *kv, jf_status_t st)
{
    jf_ledger_op_t *op = (jf_ledger_op_t *)((char *)kv - offsetof(jf_ledger_op_t, kv));

    op->rec = NULL;
    op->rev = kv->rev;
    op->why = kv->why;
    if (st == JF_OK && kv->val != NULL) {
        op->rec = jetfleet__v1__job_record__unpack(NULL, kv->len, kv->val);
        if (op->rec == NULL) {
            st = JF_EDECODE;
            snprintf(kv->why, sizeof(kv->why), "the ledger record is not a JobRecord");
        }
    } else if (st == JF_ENOTFOUND) {
        snprintf(kv->why, sizeof(kv->why), kv->rev ? "no ledger record (deleted)"
                                                   : "no ledger record");
    }
    op->done(op, st);
}

jf_status_t jf_ledger_start(jf_ledger_t *l, int64_t timeout_ms, jf_err_t *err)
{
    if (l->pipe != NULL)
        return JF_OK;
    return jf_pipe_create(&l->pipe, l->nc, timeout_ms, err);
}

static jf_status_t started(const jf_ledger_t *l, jf_err_t *err)
{
    return l->pipe != NULL ? JF_OK
                           : jf_err_set(err, JF_ESTATE, "the ledger's pipe is not started");
}

jf_status_t jf_ledger_read(jf_ledger_t *l, jf_ledger_op_t *op, const char *key, jf_err_t *err)
{
    jf_status_t st = started(l, err);

    if (st != JF_OK)
        return st;
    op->kv.done = on_answer;
    return jf_kv_get_async(l->kv, l->pipe, &op->kv, key, err);
}

jf_status_t jf_ledger_write(jf_ledger_t *l, jf_ledger_op_t *op, const char *key,
                            const jf_job_record_t *rec, uint64_t expect, jf_err_t *err)
{
    uint8_t     stackbuf[PACK_STACK];
    size_t      len;
    uint8_t    *buf;
    jf_status_t st = started(l, err);

    if (st != JF_OK)
        return st;
    if ((buf = pack(rec, stackbuf, &len)) == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    op->kv.done = on_answer;
    st = jf_kv_put_async(l->kv, l->pipe, &op->kv, key, buf, len, expect, err);
    if (buf != stackbuf)
        free(buf);
    return st;
}

jf_status_t jf_ledger_probe(jf_ledger_t *l, jf_ledger_op_t *op, jf_err_t *err)
{
    jf_status_t st = started(l, err);

    if (st != JF_OK)
        return st;
    op->kv.done = on_answer;
    return jf_kv_probe_async(l->kv, l->pipe, &op->kv, err);
}

const char *jf_ledger_bucket(const jf_ledger_t *l)
{
    return jf_kv_bucket(l->kv);
}

void jf_job_record_free(jf_job_record_t *rec)
{
    if (rec != NULL)
        jetfleet__v1__job_record__free_unpacked(rec, NULL);
}

const char *jf_job_state_name(Jetfleet__V1__JobState st)
{
    switch (st) {
    case JETFLEET__V1__JOB_STATE__JOB_STATE_RUNNING:   return "running";
    case JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED: return "succeeded";
    case JETFLEET__V1__JOB_STATE__JOB_STATE_FAILED:    return "failed";
    case JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD:      return "dead";
    case JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED:  return "replayed";
    default:                                           return "unknown";
    }
}
