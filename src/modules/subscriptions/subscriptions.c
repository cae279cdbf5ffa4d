/*
 * subscriptions.c - endpoints per tenant: the upsert and remove jobs and
 * the subscriptions.v1 service.
 *
 * Storage: one key per tenant in the module's KV bucket, holding an
 * EndpointSet sorted by endpoint id. Listing is one read; every change is
 * a read-modify-write guarded by the key's revision (compare-and-set), so
 * concurrent upserts, removes and disables of one tenant never lose each
 * other's change: the loser reads again and reapplies. A change that would
 * leave the set as it is writes nothing, which makes every job idempotent.
 * See docs/adr/0008 for why one key per tenant rather than per endpoint.
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bsd/stdlib.h>

#include <jetfleet/jetfleet.h>

#include "core/clock.h"
#include "core/kv.h"
#include "modules/subscriptions/contract.h"

typedef Jetfleet__Subscriptions__V1__Endpoint    endpoint_t;
typedef Jetfleet__Subscriptions__V1__EndpointSet endpoint_set_t;

#define MAX_ENDPOINTS     256   /* per tenant */
#define MAX_EVENT_TYPES   32    /* per endpoint */
#define MAX_EVENT_TYPE    128
#define MAX_URL           2048
#define MAX_DESCRIPTION   256
#define MAX_REASON        512
#define CAS_TRIES         8
#define MAX_SET_BYTES     (1024 * 1024)   /* the bucket's max_value_size */

typedef struct subs {
    jf_kv_t *kv;
} subs_t;


/* ---- validation ------------------------------------------------------------------------ */

static bool id_ok(const char *id)
{
    size_t n = 0;

    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* An event type, or a glob of them: [a-z0-9_.-] plus the glob characters. */
static bool event_type_ok(const char *t, bool glob)
{
    size_t n = 0;

    for (const char *p = t; *p; p++, n++) {
        char c = *p;
        if (n >= MAX_EVENT_TYPE)
            return false;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
            continue;
        if (glob && (c == '*' || c == '?' || c == '[' || c == ']' || c == '!'))
            continue;
        return false;
    }
    return n > 0;
}

/* http(s)://host..., printable, no spaces. Where it points is checked at
 * delivery time, against the address actually connected to. */
static bool url_ok(const char *url)
{
    size_t      n = strlen(url);
    const char *host;

    if (n > MAX_URL)
        return false;
    if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else
        return false;
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* ---- storage ------------------------------------------------------------------------- */

/* The tenant's set and its revision (0: no key yet, empty set). *ret_set
 * is freed with ..._free_unpacked; NULL for an empty set. */
static jf_status_t load(subs_t *s, jf_job_t *job, endpoint_set_t **ret_set, uint64_t *ret_rev,
                        const char **ret_reason)
{
    void       *val = NULL;
    size_t      len = 0;
    jf_err_t    err = { 0 };
    jf_status_t st;

    *ret_set = NULL;
    *ret_rev = 0;
    st = jf_kv_get(s->kv, jf_job_tenant(job), jf_job_arena(job), &val, &len, ret_rev, &err);
    if (st == JF_ENOTFOUND)
        return JF_OK;
    if (st != JF_OK) {
        *ret_reason = jf_arena_sprintf(jf_job_arena(job), "%s", jf_err_msg(&err));
        return st;
    }
    *ret_set = jetfleet__subscriptions__v1__endpoint_set__unpack(NULL, len, val);
    if (*ret_set == NULL) {
        *ret_reason = jf_arena_sprintf(jf_job_arena(job), "%s.%s is not an EndpointSet",
                                       jf_kv_bucket(s->kv), jf_job_tenant(job));
        return JF_EDECODE;
    }
    return JF_OK;
}

/* Write set if the key is still at rev. JF_ESTATE when another writer
 * came first. */
static jf_status_t store(subs_t *s, jf_job_t *job, const endpoint_set_t *set, uint64_t rev,
                         const char **ret_reason)
{
    size_t      len = jetfleet__subscriptions__v1__endpoint_set__get_packed_size(set);
    uint8_t    *buf = jf_arena_alloc(jf_job_arena(job), len + 1);
    jf_err_t    err = { 0 };
    jf_status_t st;

    if (len > MAX_SET_BYTES) {
        *ret_reason = jf_arena_sprintf(jf_job_arena(job), "the endpoints of tenant %s would take "
                                       "%zu bytes, more than the %d the bucket holds per tenant",
                                       jf_job_tenant(job), len, MAX_SET_BYTES);
        return JF_ETOOBIG;
    }
    if (buf == NULL)
        return JF_ENOMEM;
    jetfleet__subscriptions__v1__endpoint_set__pack(set, buf);
    if (rev == 0)
        st = jf_kv_create(s->kv, jf_job_tenant(job), buf, len, NULL, &err);
    else
        st = jf_kv_update(s->kv, jf_job_tenant(job), buf, len, rev, NULL, &err);
    if (st == JF_EEXIST)
        st = JF_ESTATE;
    if (st != JF_OK)
        *ret_reason = jf_arena_sprintf(jf_job_arena(job), "%s", jf_err_msg(&err));
    return st;
}

/* A change to one tenant's set: fill out (its endpoints array has room for
 * old->n + 1) from old, or set *changed false to leave it as it is. */
typedef jf_status_t (*mutate_fn)(jf_job_t *job, const endpoint_set_t *old, endpoint_set_t *out,
                                 bool *changed, void *arg, const char **ret_reason);

static jf_status_t modify(subs_t *s, jf_job_t *job, mutate_fn fn, void *arg,
                          const char **ret_reason)
{
    jf_arena_t *a = jf_job_arena(job);

    for (int attempt = 0; attempt < CAS_TRIES; attempt++) {
        endpoint_set_t *old = NULL;
        endpoint_set_t  out = JETFLEET__SUBSCRIPTIONS__V1__ENDPOINT_SET__INIT;
        endpoint_set_t  empty = JETFLEET__SUBSCRIPTIONS__V1__ENDPOINT_SET__INIT;
        uint64_t        rev = 0;
        bool            changed = true;
        jf_status_t     st;

        st = load(s, job, &old, &rev, ret_reason);
        if (st != JF_OK)
            return st;
        out.endpoints = jf_arena_alloc(a, ((old ? old->n_endpoints : 0) + 1) * sizeof(endpoint_t *));
        if (out.endpoints == NULL)
            st = JF_ENOMEM;
        else
            st = fn(job, old ? old : &empty, &out, &changed, arg, ret_reason);
        if (st == JF_OK && changed)
            st = store(s, job, &out, rev, ret_reason);   /* packs before old is freed */
        if (old != NULL)
            jetfleet__subscriptions__v1__endpoint_set__free_unpacked(old, NULL);
        if (st != JF_ESTATE)
            return st;
        /* lost the race: let the other writers through before reading again */
        usleep(1000 + arc4random_uniform(4000u << attempt));
    }
    *ret_reason = jf_arena_sprintf(a, "endpoints of tenant %s kept changing under us (%d tries)",
                                   jf_job_tenant(job), CAS_TRIES);
    return JF_EAGAIN;
}

static size_t find(const endpoint_set_t *set, const char *id, bool *found)
{
    size_t lo = 0, hi = set->n_endpoints;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int    c = strcmp(set->endpoints[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Replace (found) or insert e at position i. */
static void put_at(const endpoint_set_t *old, endpoint_set_t *out, size_t i, bool found,
                   endpoint_t *e)
{
    size_t n = 0;

    for (size_t j = 0; j < i; j++)
        out->endpoints[n++] = old->endpoints[j];
    out->endpoints[n++] = e;
    for (size_t j = found ? i + 1 : i; j < old->n_endpoints; j++)
        out->endpoints[n++] = old->endpoints[j];
    out->n_endpoints = n;
}

static bool same_strings(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* ---- jobs ------------------------------------------------------------------------------ */

static jf_status_t do_upsert(jf_job_t *job, const endpoint_set_t *old, endpoint_set_t *out,
                             bool *changed, void *arg, const char **ret_reason)
{
    const Jetfleet__Subscriptions__V1__Upsert *u = arg;
    jf_arena_t *a = jf_job_arena(job);
    bool        found;
    size_t      i = find(old, u->endpoint_id, &found);
    endpoint_t *prev = found ? old->endpoints[i] : NULL;
    endpoint_t *e;

    if (prev != NULL && strcmp(prev->url, u->url) == 0 && prev->enabled == !u->disabled &&
        strcmp(prev->description, u->description) == 0 &&
        same_strings(prev->event_types, prev->n_event_types, u->event_types, u->n_event_types)) {
        *changed = false;
        return JF_OK;
    }
    if (prev == NULL && old->n_endpoints >= MAX_ENDPOINTS) {
        *ret_reason = jf_arena_sprintf(a, "tenant %s already has %d endpoints, the limit",
                                       jf_job_tenant(job), MAX_ENDPOINTS);
        return JF_ETOOBIG;
    }
    e = jf_arena_alloc(a, sizeof(*e));
    if (e == NULL)
        return JF_ENOMEM;
    jetfleet__subscriptions__v1__endpoint__init(e);
    e->id = u->endpoint_id;
    e->url = u->url;
    e->n_event_types = u->n_event_types;
    e->event_types = u->event_types;
    e->enabled = !u->disabled;
    e->description = u->description;
    e->disabled_reason = u->disabled ? "disabled by subscriptions.upsert" : "";
    e->updated_unix_ms = jf_clock_now_ms();
    e->created_unix_ms = prev != NULL ? prev->created_unix_ms : e->updated_unix_ms;
    e->updated_by = (char *)jf_job_id(job);
    put_at(old, out, i, found, e);
    return JF_OK;
}

static jf_result_t subscriptions_upsert(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Subscriptions__V1__Upsert *u = (const void *)payload;
    jf_arena_t *a = jf_job_arena(job);
    const char *reason = NULL;
    jf_status_t st;

    if (!id_ok(u->endpoint_id))
        return jf_fail(JF_EINVAL, "endpoint_id must be 1 to 64 characters of [A-Za-z0-9_-]");
    if (!url_ok(u->url))
        return jf_fail(JF_EINVAL, "url must be http:// or https:// with a host, printable, "
                                  "at most 2048 characters");
    if (u->n_event_types > MAX_EVENT_TYPES)
        return jf_fail(JF_EINVAL, jf_arena_sprintf(a, "at most %d event_types per endpoint",
                                                   MAX_EVENT_TYPES));
    for (size_t i = 0; i < u->n_event_types; i++)
        if (!event_type_ok(u->event_types[i], true))
            return jf_fail(JF_EINVAL, jf_arena_sprintf(a, "event_types[%zu] is not an event "
                                                       "type or glob of [a-z0-9_.-*?[]!]", i));
    if (strlen(u->description) > MAX_DESCRIPTION)
        return jf_fail(JF_EINVAL, "description is longer than 256 characters");

    st = modify(jf_job_module_state(job), job, do_upsert, (void *)u, &reason);
    if (st == JF_OK) {
        jf_job_log(job, JF_LOG_INFO, "endpoint %s upserted (%s)", u->endpoint_id,
                   u->disabled ? "disabled" : "enabled");
        return jf_ok();
    }
    return jf_status_retryable(st) ? jf_retry(st, 0, reason) : jf_fail(st, reason);
}

static jf_status_t do_remove(jf_job_t *job, const endpoint_set_t *old, endpoint_set_t *out,
                             bool *changed, void *arg, const char **ret_reason)
{
    const char *id = arg;
    bool        found;
    size_t      i = find(old, id, &found), n = 0;

    (void)job;
    (void)ret_reason;
    if (!found) {
        *changed = false;
        return JF_OK;
    }
    for (size_t j = 0; j < old->n_endpoints; j++)
        if (j != i)
            out->endpoints[n++] = old->endpoints[j];
    out->n_endpoints = n;
    return JF_OK;
}

static jf_result_t subscriptions_remove(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Subscriptions__V1__Remove *r = (const void *)payload;
    const char *reason = NULL;
    jf_status_t st;

    if (!id_ok(r->endpoint_id))
        return jf_fail(JF_EINVAL, "endpoint_id must be 1 to 64 characters of [A-Za-z0-9_-]");
    st = modify(jf_job_module_state(job), job, do_remove, r->endpoint_id, &reason);
    if (st == JF_OK) {
        jf_job_log(job, JF_LOG_INFO, "endpoint %s removed", r->endpoint_id);
        return jf_ok();
    }
    return jf_status_retryable(st) ? jf_retry(st, 0, reason) : jf_fail(st, reason);
}

/* ---- the subscriptions.v1 service ------------------------------------------------------ */

static jf_status_t svc_list(void *instance, jf_job_t *job, const char *event_type,
                            jf_subscriptions_endpoint_t **ret, size_t *ret_n,
                            const char **ret_reason)
{
    subs_t                      *s = instance;
    jf_arena_t                  *a = jf_job_arena(job);
    endpoint_set_t              *set = NULL;
    uint64_t                     rev;
    jf_subscriptions_endpoint_t *eps = NULL;
    size_t                       n = 0;
    jf_status_t                  st;

    *ret = NULL;
    *ret_n = 0;
    if (event_type == NULL || !event_type_ok(event_type, false)) {
        *ret_reason = "event type must be 1 to 128 characters of [a-z0-9_.-]";
        return JF_EINVAL;
    }
    st = load(s, job, &set, &rev, ret_reason);
    if (st != JF_OK || set == NULL)
        return st;
    eps = jf_arena_alloc(a, (set->n_endpoints + 1) * sizeof(*eps));
    if (eps == NULL)
        st = JF_ENOMEM;
    for (size_t i = 0; st == JF_OK && i < set->n_endpoints; i++) {
        const endpoint_t *e = set->endpoints[i];
        bool              match = e->n_event_types == 0;

        for (size_t j = 0; !match && j < e->n_event_types; j++)
            match = fnmatch(e->event_types[j], event_type, 0) == 0;
        if (!e->enabled || !match)
            continue;
        eps[n].id = jf_arena_sprintf(a, "%s", e->id);
        eps[n].url = jf_arena_sprintf(a, "%s", e->url);
        if (eps[n].id == NULL || eps[n].url == NULL)
            st = JF_ENOMEM;
        n++;
    }
    jetfleet__subscriptions__v1__endpoint_set__free_unpacked(set, NULL);
    if (st != JF_OK) {
        *ret_reason = "out of memory";
        return st;
    }
    *ret = eps;
    *ret_n = n;
    return JF_OK;
}

struct disable_arg {
    const char *id;
    const char *reason;
};

static jf_status_t do_disable(jf_job_t *job, const endpoint_set_t *old, endpoint_set_t *out,
                              bool *changed, void *arg, const char **ret_reason)
{
    const struct disable_arg *d = arg;
    bool                      found;
    size_t                    i = find(old, d->id, &found);
    endpoint_t               *e;

    (void)ret_reason;
    if (!found || !old->endpoints[i]->enabled) {
        *changed = false;
        return JF_OK;
    }
    e = jf_arena_alloc(jf_job_arena(job), sizeof(*e));
    if (e == NULL)
        return JF_ENOMEM;
    *e = *old->endpoints[i];   /* shallow: strings stay old's until stored */
    e->enabled = false;
    e->disabled_reason = (char *)d->reason;
    e->updated_unix_ms = jf_clock_now_ms();
    e->updated_by = (char *)jf_job_id(job);
    put_at(old, out, i, true, e);
    return JF_OK;
}

static jf_status_t svc_disable(void *instance, jf_job_t *job, const char *endpoint_id,
                               const char *reason, const char **ret_reason)
{
    struct disable_arg d = { .id = endpoint_id, .reason = reason ? reason : "disabled" };
    char               cut[MAX_REASON + 1];

    if (endpoint_id == NULL || !id_ok(endpoint_id)) {
        *ret_reason = "endpoint_id must be 1 to 64 characters of [A-Za-z0-9_-]";
        return JF_EINVAL;
    }
    snprintf(cut, sizeof(cut), "%s", d.reason);
    d.reason = cut;
    return modify(instance, job, do_disable, &d, ret_reason);
}

static const jf_subscriptions_v1_t subscriptions_v1 = {
    .list = svc_list,
    .disable = svc_disable,
};

/* ---- module ------------------------------------------------------------------------------ */

static jf_status_t subscriptions_init(jf_module_ctx_t *mctx)
{
    subs_t      *s = calloc(1, sizeof(*s));
    const char  *bucket = jf_module_setting(mctx, "JF_SUBSCRIPTIONS_BUCKET");
    jf_err_t     err = { 0 };
    jf_status_t  st;
    jf_service_t svc;

    if (s == NULL)
        return JF_ENOMEM;
    st = jf_kv_open_module(&s->kv, mctx, bucket ? bucket : "JF_SUBSCRIPTIONS", &err);
    if (st != JF_OK) {
        jf_module_log(mctx, JF_LOG_ERROR, "cannot open the subscriptions bucket: %s",
                      jf_err_msg(&err));
        free(s);
        return st;
    }
    svc.vtable = &subscriptions_v1;
    svc.instance = s;
    st = jf_registry_provide(jf_module_registry(mctx), JF_SUBSCRIPTIONS_V1, &svc);
    if (st != JF_OK) {
        jf_kv_close(s->kv);
        free(s);
        return st;
    }
    jf_module_set_state(mctx, s);
    return JF_OK;
}

static void subscriptions_shutdown(jf_module_ctx_t *mctx)
{
    subs_t *s = jf_module_state(mctx);

    if (s == NULL)
        return;
    jf_kv_close(s->kv);
    free(s);
    jf_module_set_state(mctx, NULL);
}

static const jf_job_type_t subs_types[] = {
    { .action = "upsert", .summary = "create or replace an endpoint of the tenant",
      .payload = &jetfleet__subscriptions__v1__upsert__descriptor,
      .retry = JF_RETRY_DEFAULT, .deadline_ms = 30000, .handler = subscriptions_upsert },
    { .action = "remove", .summary = "delete an endpoint of the tenant",
      .payload = &jetfleet__subscriptions__v1__remove__descriptor,
      .retry = JF_RETRY_DEFAULT, .deadline_ms = 30000, .handler = subscriptions_remove },
    { 0 },
};

static const char *const subs_provides[] = { JF_SUBSCRIPTIONS_V1, NULL };

static const jf_module_bucket_t subs_buckets[] = {
    { .setting = "JF_SUBSCRIPTIONS_BUCKET", .description = "jetfleet webhook endpoints per tenant",
      .max_value_size = MAX_SET_BYTES, .history = 5 },
    { 0 },
};

const jf_module_t jf_module_subscriptions = {
    .abi_version = JF_ABI_VERSION,
    .name = "subscriptions",
    .summary = "which endpoints each tenant's events go to (KV-backed)",
    .job_types = subs_types,
    .provides = subs_provides,
    .buckets = subs_buckets,
    .init = subscriptions_init,
    .shutdown = subscriptions_shutdown,
};
