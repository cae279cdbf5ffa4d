/*
 * backoff.c - "full jitter" exponential backoff.
 *
 * Full jitter spreads the retries of a burst of failing jobs over the whole
 * window instead of synchronising them into waves.
 */
#include <bsd/stdlib.h>

#include "core/backoff.h"

uint32_t jf_backoff_ceiling_ms(const jf_retry_policy_t *p, uint32_t attempt)
{
    uint64_t d = p->base_delay_ms;
    uint32_t mult = p->multiplier ? p->multiplier : 1;

    for (uint32_t i = 1; i < attempt && d < p->max_delay_ms; i++)
        d *= mult;
    if (d > p->max_delay_ms)
        d = p->max_delay_ms;
    return (uint32_t)d;
}

uint32_t jf_backoff_delay_ms(const jf_retry_policy_t *p, uint32_t attempt, uint32_t hint_ms)
{
    uint32_t ceil = jf_backoff_ceiling_ms(p, attempt);
    uint32_t d = ceil == UINT32_MAX ? arc4random() : arc4random_uniform(ceil + 1);

    return hint_ms > d ? hint_ms : d;
}
