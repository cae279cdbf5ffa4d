/*
 * clock.h - wall-clock and monotonic time in milliseconds.
 */
#ifndef JF_CORE_CLOCK_H
#define JF_CORE_CLOCK_H

#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t jf_clock_now_ms(void);

/* Monotonic milliseconds, for intervals and deadlines inside one process. */
int64_t jf_clock_mono_ms(void);

/* Monotonic microseconds, for durations. */
int64_t jf_clock_mono_us(void);

#endif /* JF_CORE_CLOCK_H */
