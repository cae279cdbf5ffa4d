/*
 * guard.c - the worker's security guard (see guard.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "app/worker/guard.h"
#include "security/authz.h"
#include "security/egress.h"
#include "security/policy.h"
#include "security/secrets.h"
#include "security/signature.h"

struct jf_guard {
    const jf_config_t *cfg;
    jf_authz_t        *authz;
    pthread_rwlock_t   mu;        /* guards policy and secrets against a reload */
    jf_policy_t       *policy;    /* NULL: JF_POLICY_FILE empty */
    jf_secrets_t      *secrets;   /* NULL: JF_SECRETS_DIR empty */
};

/* The policy and the secrets of cfg, both valid, or neither. */
static jf_status_t load(const jf_config_t *cfg, jf_policy_t **ret_policy,
                        jf_secrets_t **ret_secrets, jf_err_t *err)
{
    jf_policy_t  *p = NULL;
    jf_secrets_t *s = NULL;
    jf_status_t   st = JF_OK;

    if (cfg->secrets_dir[0] != '\0')
        st = jf_secrets_load(cfg->secrets_dir, &s, err);
    if (st == JF_OK && cfg->policy_file[0] != '\0') {
        st = jf_policy_load(cfg->policy_file, &p, err);
        if (st == JF_OK)
            st = jf_policy_check_keys(p, s, err);
    }
    if (st != JF_OK) {
        jf_policy_destroy(p);
        jf_secrets_destroy(s);
        return st;
    }
    *ret_policy = p;
    *ret_secrets = s;
    return JF_OK;
}

jf_status_t jf_guard_create(jf_guard_t **out, const jf_config_t *cfg, jf_err_t *err)
{
    jf_authz_opts_t ao = { .tenants = cfg->tenants, .allow_unsafe = cfg->diag_unsafe };
    jf_guard_t     *g = calloc(1, sizeof(*g));
    jf_status_t     st;

    if (g == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    g->cfg = cfg;
    pthread_rwlock_init(&g->mu, NULL);
    st = jf_authz_create(&g->authz, &ao, err);
    if (st == JF_OK)
        st = load(cfg, &g->policy, &g->secrets, err);
    if (st != JF_OK) {
        jf_guard_destroy(g);
        return st;
    }
    *out = g;
    return JF_OK;
}

void jf_guard_destroy(jf_guard_t *g)
{
    if (g == NULL)
        return;
    jf_policy_destroy(g->policy);
    jf_secrets_destroy(g->secrets);
    jf_authz_destroy(g->authz);
    pthread_rwlock_destroy(&g->mu);
    free(g);
}

jf_status_t jf_guard_reload(jf_guard_t *g, jf_err_t *err)
{
    jf_policy_t  *np, *op;
    jf_secrets_t *ns, *os;
    jf_status_t   st = load(g->cfg, &np, &ns, err);

    if (st != JF_OK)
        return st;
    pthread_rwlock_wrlock(&g->mu);
    op = g->policy;
    os = g->secrets;
    g->policy = np;
    g->secrets = ns;
    pthread_rwlock_unlock(&g->mu);
    jf_policy_destroy(op);
    jf_secrets_destroy(os);   /* wipes the old values */
    return JF_OK;
}

jf_status_t jf_guard_authorize(jf_guard_t *g, const char *tenant, const char *type,
                               const jf_job_type_t *jt, size_t size, jf_err_t *err)
{
    jf_status_t st = jf_authz_check(g->authz, tenant, type, jt, err);

    if (st != JF_OK)
        return JF_EDENIED;
    pthread_rwlock_rdlock(&g->mu);
    if (g->policy != NULL)
        st = jf_policy_check(g->policy, tenant, type, size, err);
    pthread_rwlock_unlock(&g->mu);
    return st;
}

jf_status_t jf_guard_check_signature(jf_guard_t *g, const char *tenant, const char *header,
                                     const char *subject, const char *job_id, const void *data,
                                     size_t len, jf_err_t *err)
{
    const char *const *keys;
    size_t             nkeys;
    jf_status_t        st = JF_OK;

    pthread_rwlock_rdlock(&g->mu);
    if (g->policy != NULL && jf_policy_requires_signature(g->policy, tenant, &keys, &nkeys))
        st = jf_signature_verify(header, subject, job_id, data, len, keys, nkeys, g->secrets,
                                 err);
    pthread_rwlock_unlock(&g->mu);   /* keys were borrowed from the policy: used above only */
    return st;
}

jf_status_t jf_guard_check_isolation(const ProtobufCMessage *payload, const char *tenant,
                                     jf_err_t *err)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(payload->descriptor, "tenant");
    const char *named;

    if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return JF_OK;
    named = *(const char *const *)((const char *)payload + f->offset);
    if (named != NULL && named[0] != '\0' && strcmp(named, tenant) != 0)
        return jf_err_set(err, JF_EDENIED, "payload names tenant '%.64s' but the job was "
                          "published for tenant '%s'", named, tenant);
    return JF_OK;
}

jf_status_t jf_guard_sign(jf_guard_t *g, const char *tenant, const char *subject,
                          const char *id, const void *data, size_t len, char *out, size_t size,
                          jf_err_t *err)
{
    const char *const *keys;
    size_t             nkeys;
    jf_status_t        st = JF_OK;

    out[0] = '\0';
    pthread_rwlock_rdlock(&g->mu);
    if (g->policy != NULL && jf_policy_requires_signature(g->policy, tenant, &keys, &nkeys)) {
        st = jf_err_set(err, JF_EDENIED, "tenant %s requires signed jobs and this worker "
                        "holds none of its signing keys", tenant);
        for (size_t i = 0; i < nkeys; i++) {
            const void *key;
            size_t      key_len;
            char        name[8 + JF_KEY_ID_MAX + 1];

            snprintf(name, sizeof(name), "signing/%s", keys[i]);
            if (g->secrets == NULL || jf_secrets_get(g->secrets, name, &key, &key_len) != JF_OK)
                continue;
            st = jf_signature_make(keys[i], key, key_len, subject, id, data, len, out, size, err);
            break;
        }
    }
    pthread_rwlock_unlock(&g->mu);
    return st;
}

int jf_guard_tenant_limit(jf_guard_t *g, const char *tenant)
{
    int limit = 0;

    pthread_rwlock_rdlock(&g->mu);
    if (g->policy != NULL)
        limit = jf_policy_max_in_flight(g->policy, tenant);
    pthread_rwlock_unlock(&g->mu);
    if (limit > 0)
        return limit;
    return g->cfg->tenant_max_inflight > 0 ? (int)g->cfg->tenant_max_inflight : 0;
}

bool jf_guard_limits(const jf_guard_t *g, int concurrency)
{
    return g->cfg->policy_file[0] != '\0' ||
           (g->cfg->tenant_max_inflight > 0 && g->cfg->tenant_max_inflight < concurrency);
}

/* "<kind>/<tenant>", copied into the job's arena under the policy lock,
 * so that a reload (which wipes the old values) cannot pull it away. */
static jf_status_t hook_secret(void *ctx, const char *tenant, const char *kind,
                               jf_arena_t *arena, const void **ret_ptr, size_t *ret_len)
{
    jf_guard_t *g = ctx;
    const void *p = NULL;
    size_t      n = 0;
    char        name[160];
    void       *copy = NULL;
    jf_status_t st;

    snprintf(name, sizeof(name), "%s/%s", kind, tenant);
    pthread_rwlock_rdlock(&g->mu);
    st = g->secrets ? jf_secrets_get(g->secrets, name, &p, &n) : JF_ENOTFOUND;
    if (st == JF_OK) {
        copy = jf_arena_alloc(arena, n + 1);   /* zero-filled: NUL-terminated too */
        if (copy == NULL)
            st = JF_ENOMEM;
        else
            memcpy(copy, p, n);
    }
    pthread_rwlock_unlock(&g->mu);
    if (st != JF_OK)
        return st == JF_ENOMEM ? JF_ENOMEM : JF_ENOTFOUND;
    *ret_ptr = copy;
    *ret_len = n;
    return JF_OK;
}

static bool hook_egress(void *ctx, const char *tenant, const struct sockaddr *addr, char *why,
                        size_t why_size)
{
    jf_guard_t *g = ctx;
    bool        ok;

    pthread_rwlock_rdlock(&g->mu);
    ok = jf_egress_allowed(g->policy, tenant, addr, why, why_size);
    pthread_rwlock_unlock(&g->mu);
    return ok;
}

void jf_guard_hooks(jf_guard_t *g, jf_job_hooks_t *hooks)
{
    hooks->secret = hook_secret;
    hooks->egress = hook_egress;
    hooks->ctx = g;
}

size_t jf_guard_secrets(jf_guard_t *g)
{
    size_t n;

    pthread_rwlock_rdlock(&g->mu);
    n = g->secrets != NULL ? jf_secrets_count(g->secrets) : 0;
    pthread_rwlock_unlock(&g->mu);
    return n;
}
