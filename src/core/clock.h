/*
 * clock.h - wall-clock and monotonic time in milliseconds, and timed waits.
 *
 * Every timed wait of the program goes through jf_cond_wait_until() on a
 * condition variable made by jf_cond_init(): both run on CLOCK_MONOTONIC,
 * so a wall-clock step (NTP, an operator's `date -s`) never shortens or
 * stretches a timeout.
 */
#ifndef JF_CORE_CLOCK_H
#define JF_CORE_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t jf_clock_now_ms(void);

/* Monotonic milliseconds, for intervals and deadlines inside one process. */
int64_t jf_clock_mono_ms(void);

/* Monotonic microseconds, for durations. */
int64_t jf_clock_mono_us(void);

/* Initialise c so that its timed waits are measured on CLOCK_MONOTONIC.
 * Returns 0 or an errno value, as pthread_cond_init() does. */
int jf_cond_init(pthread_cond_t *c);

/* Wait on c (made by jf_cond_init) with mu held until signalled or until
 * the monotonic time deadline_ms (a jf_clock_mono_ms() value) has passed.
 * Returns 0 when woken (perhaps spuriously: check the condition) or
 * ETIMEDOUT. A deadline in the past returns ETIMEDOUT at once. */
int jf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ms);

#endif /* JF_CORE_CLOCK_H */
