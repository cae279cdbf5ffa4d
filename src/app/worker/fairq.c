/*
 * fairq.c - the fair queue (see fairq.h).
 *
 * A FIFO array and one running count per tenant, under one mutex. The
 * arrays are small (the worker's concurrency, twice over), so a linear
 * scan is cheaper than anything cleverer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "app/worker/fairq.h"
#include "shared/ids.h"

typedef struct entry {
    void       *item;
    const char *tenant;
    bool        reported;   /* on_held was called for it */
} entry_t;

typedef struct tenant_count {
    char tenant[JF_TENANT_MAX + 1];
    int  running;
} tenant_count_t;

struct jf_fairq {
    jf_fairq_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t  cond;
    entry_t        *q;
    size_t          len;
    tenant_count_t *counts;
    bool            closed;
};

jf_status_t jf_fairq_create(jf_fairq_t **out, const jf_fairq_opts_t *opts, jf_err_t *err)
{
    jf_fairq_t *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    q->o = *opts;
    q->q = calloc(opts->capacity, sizeof(*q->q));
    q->counts = calloc((size_t)opts->tenants, sizeof(*q->counts));
    if (q->q == NULL || q->counts == NULL) {
        free(q->q);
        free(q->counts);
        free(q);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    *out = q;
    return JF_OK;
}

void jf_fairq_destroy(jf_fairq_t *q)
{
    if (q == NULL)
        return;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q->q);
    free(q->counts);
    free(q);
}

/* The count of tenant; with create, a free one is claimed for it. NULL
 * when there is none (or no free one). Holds mu. */
static tenant_count_t *count_of(jf_fairq_t *q, const char *tenant, bool create)
{
    tenant_count_t *free_one = NULL;

    for (int i = 0; i < q->o.tenants; i++) {
        tenant_count_t *t = &q->counts[i];
        if (t->running > 0 && strcmp(t->tenant, tenant) == 0)
            return t;
        if (t->running == 0 && free_one == NULL)
            free_one = t;
    }
    if (create && free_one != NULL)
        strlcpy(free_one->tenant, tenant, sizeof(free_one->tenant));
    return create ? free_one : NULL;
}

/* The oldest entry whose tenant is under its limit, or -1; reports those
 * passed over. Holds mu. */
static long eligible(jf_fairq_t *q)
{
    for (size_t i = 0; i < q->len; i++) {
        entry_t        *e = &q->q[i];
        tenant_count_t *t;
        int             limit;

        if (!q->o.limits || e->tenant[0] == '\0')
            return (long)i;
        limit = q->o.limit(e->tenant, q->o.arg);
        if (limit <= 0)
            return (long)i;
        t = count_of(q, e->tenant, false);
        if (t == NULL || t->running < limit)
            return (long)i;
        if (!e->reported && q->o.on_held != NULL) {
            e->reported = true;
            q->o.on_held(e->item, q->o.arg);
        }
    }
    return -1;
}

bool jf_fairq_push(jf_fairq_t *q, void *item, const char *tenant)
{
    bool ok;

    pthread_mutex_lock(&q->mu);
    ok = !q->closed && q->len < q->o.capacity;
    if (ok) {
        q->q[q->len++] = (entry_t){ item, tenant, false };
        pthread_cond_signal(&q->cond);
    }
    pthread_mutex_unlock(&q->mu);
    return ok;
}

void *jf_fairq_take(jf_fairq_t *q)
{
    void *item = NULL;
    long  i = -1;

    pthread_mutex_lock(&q->mu);
    while (!q->closed && (i = eligible(q)) < 0)
        pthread_cond_wait(&q->cond, &q->mu);
    if (!q->closed) {
        entry_t e = q->q[i];
        memmove(&q->q[i], &q->q[i + 1], (q->len - (size_t)i - 1) * sizeof(*q->q));
        q->len--;
        if (q->o.limits && e.tenant[0] != '\0') {
            tenant_count_t *t = count_of(q, e.tenant, true);
            if (t != NULL)
                t->running++;
        }
        item = e.item;
        /* Another item may be eligible as well. */
        if (q->len > 0)
            pthread_cond_signal(&q->cond);
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

void jf_fairq_done(jf_fairq_t *q, const char *tenant)
{
    if (!q->o.limits || tenant[0] == '\0')
        return;
    pthread_mutex_lock(&q->mu);
    {
        tenant_count_t *t = count_of(q, tenant, false);
        if (t != NULL)
            t->running--;
    }
    /* A job of this tenant may have become eligible. */
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

size_t jf_fairq_close(jf_fairq_t *q, void (*fn)(void *item, void *arg), void *arg)
{
    entry_t *left;
    size_t   n;

    pthread_mutex_lock(&q->mu);
    q->closed = true;
    n = q->len;
    left = n > 0 ? malloc(n * sizeof(*left)) : NULL;
    if (left != NULL)
        memcpy(left, q->q, n * sizeof(*left));
    else
        n = 0;   /* out of memory: they stay, and their leases run out */
    q->len -= n;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        fn(left[i].item, arg);
    free(left);
    return n;
}

size_t jf_fairq_waiting(jf_fairq_t *q)
{
    size_t n;

    pthread_mutex_lock(&q->mu);
    n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}
