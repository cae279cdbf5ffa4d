/*
 * test_fairq.c - the fair queue between admission and the handler threads.
 *
 * Order, tenant limits and the report of a held job on one thread; then
 * handler threads and producers at once: every item is taken exactly once,
 * an item pushed while threads wait is handed to one of them, a limit is
 * never exceeded, and close() wakes every waiting thread and returns what
 * is left.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "app/worker/fairq.h"

typedef struct limits {
    int        acme;           /* JF_TENANT_MAX_INFLIGHT-like limit of "acme" */
    atomic_int held;           /* on_held calls */
    void      *last_held;
} limits_t;

static int limit_of(const char *tenant, void *arg)
{
    limits_t *l = arg;

    return strcmp(tenant, "acme") == 0 ? l->acme : 0;
}

static void on_held(void *item, void *arg)
{
    limits_t *l = arg;

    atomic_fetch_add(&l->held, 1);
    l->last_held = item;
}

static jf_fairq_t *make(size_t capacity, int takers, bool limits, limits_t *l)
{
    jf_fairq_opts_t o = {
        .capacity = capacity, .takers = takers, .tenants = 8, .limits = limits,
        .limit = limit_of, .on_held = on_held, .arg = l,
    };
    jf_fairq_t *q = NULL;
    jf_err_t    err = { 0 };

    cr_assert_eq(jf_fairq_create(&q, &o, &err), JF_OK);
    return q;
}

static void collect(void *item, void *arg)
{
    intptr_t *sum = arg;

    *sum += (intptr_t)item;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

Test(fairq, without_limits_it_is_first_in_first_out)
{
    jf_fairq_t *q = make(4, 1, false, NULL);

    cr_assert(jf_fairq_push(q, (void *)1, "acme"));
    cr_assert(jf_fairq_push(q, (void *)2, ""));
    cr_assert(jf_fairq_push(q, (void *)3, "acme"));
    cr_assert(jf_fairq_push(q, (void *)4, "globex"));
    cr_assert_not(jf_fairq_push(q, (void *)5, "acme"), "a full queue refuses");
    cr_assert_eq(jf_fairq_waiting(q), 4);
    for (intptr_t i = 1; i <= 4; i++)
        cr_assert_eq((intptr_t)jf_fairq_take(q), i);
    cr_assert_eq(jf_fairq_waiting(q), 0);
    cr_assert_eq(jf_fairq_close(q, collect, NULL), 0);
    jf_fairq_destroy(q);
}

Test(fairq, a_tenant_at_its_limit_is_passed_over_and_reported_once)
{
    limits_t    l = { .acme = 1 };
    jf_fairq_t *q = make(8, 1, true, &l);
    intptr_t    left = 0;

    cr_assert(jf_fairq_push(q, (void *)1, "acme"));
    cr_assert(jf_fairq_push(q, (void *)2, "acme"));
    cr_assert(jf_fairq_push(q, (void *)3, "globex"));
    cr_assert_eq((intptr_t)jf_fairq_take(q), 1);
    /* acme runs 1 of 1: its second job waits, globex's goes first. */
    cr_assert_eq((intptr_t)jf_fairq_take(q), 3);
    cr_assert_eq(atomic_load(&l.held), 1);
    cr_assert_eq((intptr_t)l.last_held, 2);
    cr_assert(jf_fairq_push(q, (void *)4, "globex"));
    cr_assert_eq((intptr_t)jf_fairq_take(q), 4);
    cr_assert_eq(atomic_load(&l.held), 1, "a held job is reported once, not once per scan");
    /* The first acme job leaves the worker: the second may run. */
    jf_fairq_done(q, "acme");
    cr_assert_eq((intptr_t)jf_fairq_take(q), 2);
    cr_assert(jf_fairq_push(q, (void *)5, "acme"));
    cr_assert_eq(atomic_load(&l.held), 2, "a job held on arrival is reported at once");
    cr_assert_eq(jf_fairq_close(q, collect, &left), 1);
    cr_assert_eq(left, 5, "close hands back what waits");
    cr_assert_null(jf_fairq_take(q));
    cr_assert_not(jf_fairq_push(q, (void *)6, ""), "a closed queue refuses");
    jf_fairq_destroy(q);
}

/* ---- threads ------------------------------------------------------------------------- */

#define TAKERS    8
#define PRODUCERS 3
#define ITEMS     3000   /* per producer */

typedef struct shared {
    jf_fairq_t *q;
    limits_t    l;
    atomic_int  taken[PRODUCERS * ITEMS + 1];
    atomic_int  acme_running, acme_peak, total;
    atomic_int  next;
} shared_t;

static void *taker(void *arg)
{
    shared_t *s = arg;
    void     *item;

    while ((item = jf_fairq_take(s->q)) != NULL) {
        intptr_t n = (intptr_t)item;
        bool     acme = n % 2 == 0;

        atomic_fetch_add(&s->taken[n], 1);
        if (acme) {
            int now = atomic_fetch_add(&s->acme_running, 1) + 1, peak;
            while (now > (peak = atomic_load(&s->acme_peak)) &&
                   !atomic_compare_exchange_weak(&s->acme_peak, &peak, now))
                ;
            sched_yield();
            atomic_fetch_sub(&s->acme_running, 1);
            jf_fairq_done(s->q, "acme");
        } else {
            jf_fairq_done(s->q, "globex");
        }
        atomic_fetch_add(&s->total, 1);
    }
    return NULL;
}

static void *producer(void *arg)
{
    shared_t *s = arg;

    for (int i = 0; i < ITEMS; i++) {
        intptr_t n = atomic_fetch_add(&s->next, 1) + 1;
        while (!jf_fairq_push(s->q, (void *)n, n % 2 == 0 ? "acme" : "globex"))
            sched_yield();   /* full: the takers make room */
    }
    return NULL;
}

static void run_threads(bool limits)
{
    static shared_t s;
    pthread_t       t[TAKERS], p[PRODUCERS];
    intptr_t        left = 0;

    memset(&s, 0, sizeof(s));
    s.l.acme = 2;
    s.q = make(64, TAKERS, limits, &s.l);
    for (int i = 0; i < TAKERS; i++)
        pthread_create(&t[i], NULL, taker, &s);
    sleep_ms(20);   /* every taker waits: the first items are handed over */
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, &s);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < 5000 && atomic_load(&s.total) < PRODUCERS * ITEMS; i++)
        sleep_ms(2);
    cr_assert_eq(jf_fairq_close(s.q, collect, &left), 0);
    for (int i = 0; i < TAKERS; i++)
        pthread_join(t[i], NULL);   /* close woke every waiting taker */
    cr_assert_eq(atomic_load(&s.total), PRODUCERS * ITEMS);
    for (int n = 1; n <= PRODUCERS * ITEMS; n++)
        cr_assert_eq(atomic_load(&s.taken[n]), 1, "item %d taken %d times", n,
                     atomic_load(&s.taken[n]));
    if (limits)
        cr_assert_leq(atomic_load(&s.acme_peak), 2, "acme ran %d at once, limit 2",
                      atomic_load(&s.acme_peak));
    jf_fairq_destroy(s.q);
}

Test(fairq, many_threads_take_every_item_exactly_once)
{
    run_threads(false);
}

Test(fairq, many_threads_never_run_a_tenant_past_its_limit)
{
    run_threads(true);
}

static void *take_one(void *q)
{
    return jf_fairq_take(q);
}

Test(fairq, close_wakes_a_thread_waiting_for_an_item)
{
    jf_fairq_t *q = make(4, 2, false, NULL);
    pthread_t   t1, t2;
    void       *r1 = (void *)1, *r2 = (void *)1;

    pthread_create(&t1, NULL, take_one, q);
    pthread_create(&t2, NULL, take_one, q);
    sleep_ms(20);
    jf_fairq_close(q, collect, NULL);
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    cr_assert_null(r1);
    cr_assert_null(r2);
    jf_fairq_destroy(q);
}
