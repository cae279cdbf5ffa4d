/*
 * backoff.h - retry delays: exponential, full jitter, capped (docs/reliability.md).
 */
#ifndef JF_CORE_BACKOFF_H
#define JF_CORE_BACKOFF_H

#include <stdint.h>

#include <jetfleet/module.h>

/* The ceiling of the delay after the given failed attempt (1-based):
 * min(max_delay, base * multiplier^(attempt-1)). */
uint32_t jf_backoff_ceiling_ms(const jf_retry_policy_t *p, uint32_t attempt);

/* The delay after the given failed attempt: uniform in [0, ceiling] from
 * arc4random_uniform, raised to hint_ms when the hint is larger. */
uint32_t jf_backoff_delay_ms(const jf_retry_policy_t *p, uint32_t attempt, uint32_t hint_ms);

#endif /* JF_CORE_BACKOFF_H */
