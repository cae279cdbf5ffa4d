/*
 * test_backoff.c - exponential, capped, full-jitter delays.
 */
#include <criterion/criterion.h>

#include "core/backoff.h"

static const jf_retry_policy_t policy = {
    .max_attempts = 10, .base_delay_ms = 100, .max_delay_ms = 1000, .multiplier = 2,
};

Test(backoff, ceiling_grows_then_caps)
{
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 1), 100);
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 2), 200);
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 3), 400);
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 4), 800);
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 5), 1000);
    cr_assert_eq(jf_backoff_ceiling_ms(&policy, 1000), 1000);
}

Test(backoff, delay_stays_within_the_ceiling_and_spreads)
{
    uint32_t lo = UINT32_MAX, hi = 0;

    for (int i = 0; i < 2000; i++) {
        uint32_t d = jf_backoff_delay_ms(&policy, 3, 0);
        cr_assert_leq(d, 400);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    /* full jitter: the whole window is used */
    cr_assert_lt(lo, 40);
    cr_assert_gt(hi, 360);
}

Test(backoff, a_larger_hint_wins)
{
    for (int i = 0; i < 100; i++)
        cr_assert_geq(jf_backoff_delay_ms(&policy, 1, 5000), 5000);
}
