/*
 * clock.c - thin wrappers over clock_gettime, and the one timed wait.
 */
#include <errno.h>
#include <time.h>

#include "core/clock.h"

int64_t jf_clock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jf_clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t jf_clock_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int jf_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int                rc;

    if ((rc = pthread_condattr_init(&attr)) != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

int jf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;

    if (deadline_ms <= jf_clock_mono_ms())
        return ETIMEDOUT;
    ts.tv_sec = deadline_ms / 1000;
    ts.tv_nsec = (deadline_ms % 1000) * 1000000L;
    return pthread_cond_timedwait(c, mu, &ts);
}
