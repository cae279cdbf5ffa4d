/*
 * jobctx.c - the accessors of include/jetfleet/job.h, and trace ids.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bsd/stdlib.h>
#include <openssl/sha.h>

#include "core/clock.h"
#include "core/jobctx.h"
#include "core/log.h"

const char *jf_job_id(const jf_job_t *job)          { return job->id; }
const char *jf_job_tenant(const jf_job_t *job)      { return job->tenant; }
const char *jf_job_type(const jf_job_t *job)        { return job->type; }
uint32_t jf_job_attempt(const jf_job_t *job)        { return job->attempt; }
int64_t jf_job_deadline_ms(const jf_job_t *job)     { return job->deadline_ms; }
const char *jf_job_trace_id(const jf_job_t *job)    { return job->trace_id; }
jf_arena_t *jf_job_arena(jf_job_t *job)             { return job->arena; }
const jf_registry_t *jf_job_registry(const jf_job_t *job) { return job->registry; }
void *jf_job_module_state(const jf_job_t *job)      { return job->module_state; }

bool jf_job_cancelled(const jf_job_t *job)
{
    if (job->shutting_down != NULL && atomic_load(job->shutting_down))
        return true;
    return jf_clock_mono_ms() >= job->deadline_mono_ms;
}

const char *jf_job_header(const jf_job_t *job, const char *name)
{
    if (job->header == NULL || name == NULL)
        return NULL;
    return job->header(job->header_src, name);
}

jf_status_t jf_job_tenant_secret(jf_job_t *job, const char *kind, const void **ret_ptr,
                                 size_t *ret_len)
{
    if (kind == NULL || strchr(kind, '/') != NULL || kind[0] == '\0')
        return JF_EINVAL;
    if (job->hooks == NULL || job->hooks->secret == NULL)
        return JF_ENOTFOUND;
    return job->hooks->secret(job->hooks->ctx, job->tenant, kind, job->arena, ret_ptr, ret_len);
}

bool jf_job_egress_allowed(const jf_job_t *job, const struct sockaddr *addr, char *why,
                           size_t why_size)
{
    if (job->hooks == NULL || job->hooks->egress == NULL) {
        if (why != NULL && why_size > 0)
            snprintf(why, why_size, "egress refused: the runtime has no egress guard");
        return false;   /* fail closed */
    }
    return job->hooks->egress(job->hooks->ctx, job->tenant, addr, why, why_size);
}

static bool child_key_ok(const char *key)
{
    size_t n = 0;

    if (key == NULL)
        return false;
    for (const char *p = key; *p; p++, n++) {
        char c = *p;
        if (n >= JF_CHILD_KEY_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return n > 0;
}

const char *jf_job_child_id(jf_job_t *parent, const char *key)
{
    static const char hex[] = "0123456789abcdef";
    size_t            plen, klen;
    unsigned char     md[SHA256_DIGEST_LENGTH];
    char             *both, *id;

    if (!child_key_ok(key))
        return NULL;
    plen = strlen(parent->id);
    klen = strlen(key);
    if (plen + 1 + klen <= JF_JOB_ID_MAX)
        return jf_arena_sprintf(parent->arena, "%s/%s", parent->id, key);
    /* Too long: keep a readable prefix and make the rest a digest of both,
     * with a NUL between them so that no two (parent, key) pairs collide. */
    both = jf_arena_alloc(parent->arena, plen + 1 + klen);
    id = jf_arena_alloc(parent->arena, 60 + 1 + 2 * sizeof(md) + 1);
    if (both == NULL || id == NULL)
        return NULL;
    memcpy(both, parent->id, plen + 1);
    memcpy(both + plen + 1, key, klen);
    SHA256((const unsigned char *)both, plen + 1 + klen, md);
    memcpy(id, parent->id, 60);
    id[60] = '/';
    for (size_t i = 0; i < sizeof(md); i++) {
        id[61 + 2 * i] = hex[md[i] >> 4];
        id[62 + 2 * i] = hex[md[i] & 0xf];
    }
    id[61 + 2 * sizeof(md)] = '\0';
    return id;
}

jf_status_t jf_job_enqueue(jf_job_t *parent, const char *type, const ProtobufCMessage *payload,
                           const char *key, const char **ret_id)
{
    const char *id;
    jf_status_t st;

    if (type == NULL || payload == NULL || !child_key_ok(key))
        return JF_EINVAL;
    if (parent->hooks == NULL || parent->hooks->enqueue == NULL)
        return JF_EUNSUPPORTED;
    id = jf_job_child_id(parent, key);
    if (id == NULL)
        return JF_ENOMEM;
    st = parent->hooks->enqueue(parent->hooks->enqueue_ctx, parent, type, payload, id);
    if (st == JF_OK && ret_id != NULL)
        *ret_id = id;
    return st;
}

void jf_job_log(const jf_job_t *job, jf_log_level_t level, const char *fmt, ...)
{
    va_list        ap;
    jf_log_field_t f[5] = {
        JF_LS("job_id", job->id),
        JF_LS("tenant", job->tenant),
        JF_LS("type", job->type),
        JF_LN("attempt", job->attempt),
        JF_LS("trace_id", job->trace_id),
    };

    if (!jf_log_enabled(level))
        return;
    va_start(ap, fmt);
    jf_log_vfields(level, f, 5, fmt, ap);
    va_end(ap);
}

/* ---- trace ids --------------------------------------------------------------- */

void jf_trace_id_new(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t           raw[16];

    arc4random_buf(raw, sizeof(raw));
    raw[15] |= 1;   /* W3C forbids the all-zero id; this costs one bit */
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 0xf];
    }
    out[32] = '\0';
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

jf_status_t jf_trace_id_parse(const char *tp, char out[33])
{
    /* version(2) - trace id(32) - parent id(16) - flags(2) = 55 characters */
    if (tp == NULL || strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
        !lower_hex(tp, 2) || strncmp(tp, "ff", 2) == 0 || !lower_hex(tp + 3, 32) ||
        !lower_hex(tp + 36, 16) || !lower_hex(tp + 53, 2))
        return JF_EINVAL;
    if (strspn(tp + 3, "0") >= 32)
        return JF_EINVAL;
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
    return JF_OK;
}
