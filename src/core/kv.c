/*
 * kv.c - JetStream KV through nats.c's kvStore API.
 */
#include <inttypes.h>
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

struct jf_kv_pipe {
    jf_kv_t          *kv;
    natsSubscription *sub;
    char              inbox[96];       /* answers arrive on <inbox>.g|p.<token> */
    char              api[160];        /* $JS.API.DIRECT.GET.KV_<bucket> */
    jf_kv_answer_fn   fn;
    void             *arg;
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

/* ---- pipelined reads and writes ------------------------------------------------- */

/* The answer to a write: a PubAck, {"stream":..,"seq":..}, or
 * {"error":{"code":..,"description":..}}. */
static jf_status_t write_answer(jf_kv_pipe_t *p, natsMsg *msg, char *why, size_t size)
{
    const char   *data = natsMsg_GetData(msg);
    int           len = natsMsg_GetDataLength(msg);
    json_t       *doc, *e;
    json_error_t  jerr;
    jf_status_t   st = JF_OK;

    /* The common answer, {"stream":"KV_..","seq":N}, without a parser: a
     * JSON parse was a tenth of a worker's instructions per job. An
     * answer naming an error, or anything else, is parsed. */
    if (data != NULL && len > 0 && data[0] == '{' && data[len - 1] == '}' &&
        memmem(data, (size_t)len, "\"seq\":", 6) != NULL &&
        memmem(data, (size_t)len, "\"error\"", 7) == NULL)
        return JF_OK;
    doc = json_loadb(data ? data : "", (size_t)len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        snprintf(why, size, "writing to %s: unreadable acknowledgement", p->kv->bucket);
        st = JF_EIO;
    } else if ((e = json_object_get(doc, "error")) != NULL) {
        const char *desc = json_string_value(json_object_get(e, "description"));
        snprintf(why, size, "writing to %s: %.160s (code %lld)", p->kv->bucket,
                 desc != NULL ? desc : "error",
                 (long long)json_integer_value(json_object_get(e, "code")));
        st = JF_EIO;
    } else if (json_object_get(doc, "seq") == NULL) {
        snprintf(why, size, "writing to %s: acknowledgement without a sequence", p->kv->bucket);
        st = JF_EIO;
    }
    json_decref(doc);
    return st;
}

/* Library thread: one answer, to a read (<inbox>.g.<token>) or a write
 * (<inbox>.p.<token>). A status message without data is "404 Message Not
 * Found" (no value), "503" (no responders: JetStream is not there) or
 * another error; a value whose KV-Operation is DEL or PURGE is a delete
 * marker. */
static void on_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    jf_kv_pipe_t *p = closure;
    const char   *subject = natsMsg_GetSubject(msg);
    size_t        ilen = strlen(p->inbox);
    const char   *status = NULL, *desc = NULL, *op = NULL;
    char         *end = NULL;
    char          kind, why[256];
    uint64_t      token;
    jf_status_t   st;

    (void)nc;
    (void)sub;
    if (strncmp(subject, p->inbox, ilen) != 0 || subject[ilen] != '.' ||
        (subject[ilen + 1] != 'g' && subject[ilen + 1] != 'p') || subject[ilen + 2] != '.')
        goto out;   /* not one of ours */
    kind = subject[ilen + 1];
    token = strtoull(subject + ilen + 3, &end, 10);
    if (end == subject + ilen + 3 || *end != '\0')
        goto out;
    if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status != NULL &&
        natsMsg_GetDataLength(msg) == 0) {
        if (kind == 'g' && strcmp(status, "404") == 0) {
            p->fn(token, kind == 'p', JF_ENOTFOUND, NULL, 0, "no value", p->arg);
        } else {
            natsMsgHeader_Get(msg, "Description", &desc);
            snprintf(why, sizeof(why), "%s %s: status %s %.120s",
                     kind == 'g' ? "reading from" : "writing to", p->kv->bucket, status,
                     desc ? desc : "");
            p->fn(token, kind == 'p', strcmp(status, "503") == 0 ? JF_EUNAVAILABLE : JF_EIO,
                  NULL, 0, why, p->arg);
        }
        goto out;
    }
    if (kind == 'p') {
        st = write_answer(p, msg, why, sizeof(why));
        p->fn(token, kind == 'p', st, NULL, 0, st == JF_OK ? NULL : why, p->arg);
        goto out;
    }
    if (natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op != NULL &&
        (strcmp(op, "DEL") == 0 || strcmp(op, "PURGE") == 0)) {
        p->fn(token, kind == 'p', JF_ENOTFOUND, NULL, 0, "deleted", p->arg);
        goto out;
    }
    p->fn(token, false, JF_OK, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), NULL,
          p->arg);
out:
    natsMsg_Destroy(msg);
}

jf_status_t jf_kv_pipe_create(jf_kv_pipe_t **out, jf_kv_t *kv, jf_kv_answer_fn fn, void *arg,
                              jf_err_t *err)
{
    jf_kv_pipe_t *p = calloc(1, sizeof(*p));
    natsInbox    *inbox = NULL;
    natsStatus    s;
    char          subject[112];

    if (p == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    p->kv = kv;
    p->fn = fn;
    p->arg = arg;
    snprintf(p->api, sizeof(p->api), "$JS.API.DIRECT.GET.KV_%s", kv->bucket);
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(p->inbox, sizeof(p->inbox), "%s", (const char *)inbox);
        natsInbox_Destroy(inbox);
        snprintf(subject, sizeof(subject), "%s.*.*", p->inbox);
        s = natsConnection_Subscribe(&p->sub, kv->conn, subject, on_answer, p);
    }
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (s != NATS_OK) {
        jf_status_t st = jf_nats_status(s, err, "subscribing for KV answers");
        natsSubscription_Destroy(p->sub);
        free(p);
        return st;
    }
    *out = p;
    return JF_OK;
}

/* Publish data to subject with the reply subject <inbox>.<kind>.<token>. */
static jf_status_t send_request(jf_kv_pipe_t *p, char kind, const char *subject, const void *data,
                                size_t len, uint64_t token, const char *what, const char *key,
                                jf_err_t *err)
{
    char       reply[128];
    natsStatus s;

    snprintf(reply, sizeof(reply), "%s.%c.%" PRIu64, p->inbox, kind, token);
    s = natsConnection_PublishRequest(p->kv->conn, subject, reply, data, (int)len);
    return s == NATS_OK ? JF_OK : kv_error(p->kv, s, err, what, key);
}

jf_status_t jf_kv_get_async(jf_kv_pipe_t *p, const char *key, uint64_t token, jf_err_t *err)
{
    char body[400];
    int  n = snprintf(body, sizeof(body), "{\"last_by_subj\":\"$KV.%s.%s\"}", p->kv->bucket,
                      key);

    if (n < 0 || (size_t)n >= sizeof(body))
        return jf_err_set(err, JF_ETOOBIG, "KV key %.80s... is too long", key);
    return send_request(p, 'g', p->api, body, (size_t)n, token, "asking for", key, err);
}

jf_status_t jf_kv_put_async(jf_kv_pipe_t *p, const char *key, const void *val, size_t len,
                            uint64_t token, jf_err_t *err)
{
    char subject[400];
    int  n = snprintf(subject, sizeof(subject), "$KV.%s.%s", p->kv->bucket, key);

    if (n < 0 || (size_t)n >= sizeof(subject))
        return jf_err_set(err, JF_ETOOBIG, "KV key %.80s... is too long", key);
    return send_request(p, 'p', subject, val, len, token, "writing", key, err);
}

void jf_kv_pipe_destroy(jf_kv_pipe_t *p)
{
    if (p == NULL)
        return;
    /* Drain: no callback still runs when p is freed. */
    if (natsSubscription_Drain(p->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(p->sub, 5000);
    natsSubscription_Destroy(p->sub);
    free(p);
}
