/*
 * ticker.c - one thread, one condition variable (see ticker.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "app/worker/ticker.h"
#include "core/clock.h"

struct jf_ticker {
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cond;
    bool            stop;
    int64_t         every_ms;
    jf_tick_fn      fn;
    void           *arg;
};

static void *ticker_main(void *arg)
{
    jf_ticker_t *t = arg;
    int64_t      next = jf_clock_mono_ms() + t->every_ms;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (jf_cond_wait_until(&t->cond, &t->mu, next) == 0)
            continue;   /* woken: stopping, or spurious */
        pthread_mutex_unlock(&t->mu);
        t->fn(jf_clock_mono_ms(), t->arg);
        next = jf_clock_mono_ms() + t->every_ms;
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

jf_status_t jf_ticker_start(jf_ticker_t **out, int64_t every_ms, jf_tick_fn fn, void *arg,
                            jf_err_t *err)
{
    jf_ticker_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    t->every_ms = every_ms > 0 ? every_ms : 1;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_init(&t->mu, NULL);
    jf_cond_init(&t->cond);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return jf_err_set(err, JF_ENOMEM, "cannot start the ticker thread");
    }
    *out = t;
    return JF_OK;
}

void jf_ticker_stop(jf_ticker_t *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
