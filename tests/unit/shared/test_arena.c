/*
 * test_arena.c - the per-job arena: alignment, growth, reset.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "shared/arena_impl.h"

Test(arena, allocations_are_aligned_and_zeroed)
{
    jf_arena_t *a;

    cr_assert_eq(jf_arena_create(&a, 64), JF_OK);
    for (size_t i = 1; i < 100; i++) {
        unsigned char *p = jf_arena_alloc(a, i);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0);
        for (size_t j = 0; j < i; j++)
            cr_assert_eq(p[j], 0);
        memset(p, 0xff, i);
    }
    jf_arena_destroy(a);
}

Test(arena, grows_past_the_first_block_and_resets)
{
    jf_arena_t *a;
    char       *big;

    cr_assert_eq(jf_arena_create(&a, 128), JF_OK);
    big = jf_arena_alloc(a, 100000);
    cr_assert_not_null(big);
    memset(big, 1, 100000);
    cr_assert_geq(jf_arena_used(a), 100000);
    jf_arena_reset(a);
    cr_assert_eq(jf_arena_used(a), 0);
    cr_assert_not_null(jf_arena_alloc(a, 16));
    jf_arena_destroy(a);
}

Test(arena, string_helpers)
{
    jf_arena_t *a;

    cr_assert_eq(jf_arena_create(&a, 0), JF_OK);
    cr_assert_str_eq(jf_arena_strdup(a, "hello"), "hello");
    cr_assert_str_eq(jf_arena_strndup(a, "hello", 3), "hel");
    cr_assert_str_eq(jf_arena_sprintf(a, "%s-%d", "job", 42), "job-42");
    cr_assert_null(jf_arena_strdup(a, NULL));
    jf_arena_destroy(a);
    jf_arena_destroy(NULL);
}
