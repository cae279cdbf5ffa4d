/*
 * tsan_criterion.c - lets Criterion run under ThreadSanitizer (-Dtsan=true
 * only; tests/meson.build links it into every Criterion executable then).
 *
 * Criterion keeps the state it hands to each test's child process in
 * "arenas" (BoxFort, built into libcriterion): shared mappings placed at a
 * random address in [0x2000'0000'0000, 0x6000'0000'0000), the base being
 * 0x2000'0000'0000 + (rand_r() & 0x3fffff) * 16 MiB, tried 10 times. Under
 * TSan nearly all of that range is TSan's shadow, meta-shadow or a gap it
 * keeps PROT_NONE; the only part an application may map is
 * [0x5500'0000'0000, 0x5680'0000'0000), about 2.3% of it. So 8 times in 10
 * an arena fails: at start-up ("Could not initialize inheritable arena:
 * Resource temporarily unavailable") or, per test, as a SIGSEGV in
 * bxf_arena_alloc. This is Criterion issue #274, open since 2018.
 *
 * libcriterion is the only library in a test process that calls rand_r, so
 * this definition, which the executable exports and the dynamic linker then
 * binds libcriterion's call to, steers every arena into that part instead:
 * r in [0x350000, 0x368000) gives a base in [0x5500'0000'0000,
 * 0x5680'0000'0000). BoxFort still checks each page is free before it maps
 * (the executable itself lives there too) and tries again if not. Nothing
 * else changes: no TSan report is hidden, no check is skipped.
 */
#include <stdlib.h>

int rand_r(unsigned int *seedp)
{
    *seedp = *seedp * 1103515245u + 12345u;   /* the LCG of POSIX's example rand() */
    return (int)(0x350000u + (*seedp >> 8) % 0x18000u);
}
