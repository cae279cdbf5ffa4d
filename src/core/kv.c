/*
 * kv.c - JetStream KV through nats.c's kvStore API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kv.h"
#include "core/nats_internal.h"
#include "core/registry_impl.h"

struct jf_kv {
    jsCtx   *js;      /* its own context, so that KV calls use JF_API_TIMEOUT */
    kvStore *kv;
    char     bucket[64];
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
