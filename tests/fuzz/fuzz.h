/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares.
 *
 * A target must never crash and never leak, whatever the input; where a
 * parser's result contradicts its contract (a round trip that changes the
 * value, an out-param written on failure, an independent check that
 * disagrees) FUZZ_CHECK prints why and aborts, which libFuzzer records as a
 * crash, together with the input that caused it. docs/fuzzing.md says how
 * to run the targets and how to replay a crash.
 */
#ifndef JF_FUZZ_H
#define JF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry point libFuzzer calls once per input; data is borrowed. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with the failed condition and a printf-style explanation. */
#define FUZZ_CHECK(cond, ...)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "\n*** fuzz invariant broken at %s:%d: %s\n*** ",      \
                    __FILE__, __LINE__, #cond);                                    \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* A malloc'ed, NUL-terminated copy of the input, as the C-string parsers
 * see it (an embedded NUL ends the string early). The caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True when the NUL-terminated string s fits in an array of n chars. */
static inline int fuzz_terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

#endif /* JF_FUZZ_H */
