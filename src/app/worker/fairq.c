/*
 * fairq.c - the fair queue (see fairq.h).
 *
 * A FIFO array and one running count per tenant, under one mutex. The
 * arrays are small (the worker's concurrency, twice over), so a linear
 * scan is cheaper than anything cleverer. A thread with nothing to take
 * waits on its own condition variable, and an item that arrives is handed
 * to the thread that went idle last (its cache is warmest): one item wakes
 * one thread, which finds the item already its own.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bsd/string.h>

#include "app/worker/fairq.h"
#include "core/clock.h"
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

/* A thread waiting in take(). It sleeps on its own condition variable, and
 * push() hands it its item directly: the thread woken is the one that gets
 * the item, never a crowd that races for it. Waiters are owned by the queue
 * and reused, so a signal may be sent after the unlock (a late signal only
 * makes a later waiter check its condition once more). */
typedef struct waiter {
    pthread_cond_t cond;
    void          *item;     /* handed over, already counted for its tenant */
    bool           rescan;   /* woken to look at the queue again */
    struct waiter *next;     /* in idle (most recent first) or in spare */
} waiter_t;

struct jf_fairq {
    jf_fairq_opts_t o;
    pthread_mutex_t mu;
    entry_t        *q;
    size_t          len;
    tenant_count_t *counts;
    waiter_t       *idle;     /* threads in take() with nothing to run */
    waiter_t       *spare;
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
    for (int i = 0; i < opts->takers; i++) {
        waiter_t *w = calloc(1, sizeof(*w));
        if (w == NULL) {
            jf_fairq_destroy(q);
            return jf_err_set(err, JF_ENOMEM, "out of memory");
        }
        jf_cond_init(&w->cond);
        w->next = q->spare;
        q->spare = w;
    }
    *out = q;
    return JF_OK;
}

void jf_fairq_destroy(jf_fairq_t *q)
{
    waiter_t *w;

    if (q == NULL)
        return;
    while ((w = q->spare) != NULL) {
        q->spare = w->next;
        pthread_cond_destroy(&w->cond);
        free(w);
    }
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

/* Whether e's tenant is under its limit; if not, e is reported as held
 * (once). Holds mu. */
static bool may_run(jf_fairq_t *q, entry_t *e)
{
    tenant_count_t *t;
    int             limit;

    if (!q->o.limits || e->tenant[0] == '\0')
        return true;
    limit = q->o.limit(e->tenant, q->o.arg);
    if (limit <= 0)
        return true;
    t = count_of(q, e->tenant, false);
    if (t == NULL || t->running < limit)
        return true;
    if (!e->reported && q->o.on_held != NULL) {
        e->reported = true;
        q->o.on_held(e->item, q->o.arg);
    }
    return false;
}

/* The oldest entry whose tenant is under its limit, or -1; reports those
 * passed over. Holds mu. */
static long eligible(jf_fairq_t *q)
{
    for (size_t i = 0; i < q->len; i++)
        if (may_run(q, &q->q[i]))
            return (long)i;
    return -1;
}

/* e leaves the queue's hands: it counts as running for its tenant. */
static void *started(jf_fairq_t *q, const entry_t *e)
{
    if (q->o.limits && e->tenant[0] != '\0') {
        tenant_count_t *t = count_of(q, e->tenant, true);
        if (t != NULL)
            t->running++;
    }
    return e->item;
}

/* Take entry i out of the array. Holds mu. */
static entry_t remove_at(jf_fairq_t *q, size_t i)
{
    entry_t e = q->q[i];

    memmove(&q->q[i], &q->q[i + 1], (q->len - i - 1) * sizeof(*q->q));
    q->len--;
    return e;
}

/* The most recently idle thread, taken off the idle list; NULL if none.
 * Holds mu. */
static waiter_t *pop_idle(jf_fairq_t *q)
{
    waiter_t *w = q->idle;

    if (w != NULL)
        q->idle = w->next;
    return w;
}

/* Threads handed an item, to signal once mu is released (the thread then
 * finds mu free). Only the pointers are copied out: once mu is released a
 * woken thread may reuse its waiter's links at once. */
#define WAKE_MAX 4

typedef struct wake_list {
    waiter_t *w[WAKE_MAX];
    int       n;
} wake_list_t;

/* Hand eligible entries to idle threads while there are both. Beyond
 * WAKE_MAX (not reached in practice: one push or one done frees one) the
 * thread is signalled at once. Holds mu. */
static void hand_out(jf_fairq_t *q, wake_list_t *wake)
{
    waiter_t *w;
    long      i;

    while (q->idle != NULL && (i = eligible(q)) >= 0) {
        entry_t e = remove_at(q, (size_t)i);
        w = pop_idle(q);
        w->item = started(q, &e);
        if (wake->n < WAKE_MAX)
            wake->w[wake->n++] = w;
        else
            pthread_cond_signal(&w->cond);
    }
}

/* Called without mu. The waiters stay the queue's, so a late signal is
 * safe: at worst a later wait checks its condition once more. */
static void signal_all(const wake_list_t *wake)
{
    for (int i = 0; i < wake->n; i++)
        pthread_cond_signal(&wake->w[i]->cond);
}

bool jf_fairq_push(jf_fairq_t *q, void *item, const char *tenant)
{
    wake_list_t wake = { .n = 0 };
    bool        ok;

    pthread_mutex_lock(&q->mu);
    ok = !q->closed && q->len < q->o.capacity;
    if (ok) {
        q->q[q->len++] = (entry_t){ item, tenant, false };
        if (q->idle != NULL)
            hand_out(q, &wake);
        else
            (void)may_run(q, &q->q[q->len - 1]);   /* says so if held */
    }
    pthread_mutex_unlock(&q->mu);
    signal_all(&wake);
    return ok;
}

void *jf_fairq_take(jf_fairq_t *q)
{
    void     *item = NULL;
    waiter_t *w = NULL;
    long      i;

    pthread_mutex_lock(&q->mu);
    while (!q->closed) {
        if ((i = eligible(q)) >= 0) {
            entry_t e = remove_at(q, (size_t)i);
            item = started(q, &e);
            break;
        }
        if (w == NULL) {
            if ((w = q->spare) != NULL) {
                q->spare = w->next;
            } else if ((w = calloc(1, sizeof(*w))) != NULL) {
                jf_cond_init(&w->cond);
            } else {
                /* Out of memory: look again in a while. */
                struct timespec ts = { 0, 10 * 1000 * 1000 };
                pthread_mutex_unlock(&q->mu);
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&q->mu);
                continue;
            }
        }
        w->item = NULL;
        w->rescan = false;
        w->next = q->idle;
        q->idle = w;
        while (w->item == NULL && !w->rescan)
            pthread_cond_wait(&w->cond, &q->mu);
        if (w->item != NULL) {
            item = w->item;
            break;
        }
    }
    if (w != NULL) {
        w->next = q->spare;
        q->spare = w;
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

void jf_fairq_done(jf_fairq_t *q, const char *tenant)
{
    wake_list_t wake = { .n = 0 };

    if (!q->o.limits || tenant[0] == '\0')
        return;
    pthread_mutex_lock(&q->mu);
    {
        tenant_count_t *t = count_of(q, tenant, false);
        if (t != NULL)
            t->running--;
    }
    /* A job of this tenant may have become eligible. */
    hand_out(q, &wake);
    pthread_mutex_unlock(&q->mu);
    signal_all(&wake);
}

size_t jf_fairq_close(jf_fairq_t *q, void (*fn)(void *item, void *arg), void *arg)
{
    entry_t  *left;
    waiter_t *w;
    size_t    n;

    pthread_mutex_lock(&q->mu);
    q->closed = true;
    n = q->len;
    left = n > 0 ? malloc(n * sizeof(*left)) : NULL;
    if (left != NULL)
        memcpy(left, q->q, n * sizeof(*left));
    else
        n = 0;   /* out of memory: they stay, and their leases run out */
    q->len -= n;
    while ((w = pop_idle(q)) != NULL) {
        w->rescan = true;
        pthread_cond_signal(&w->cond);
    }
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
