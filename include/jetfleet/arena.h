/*
 * arena.h - per-job memory.
 *
 * Each job gets an arena that the runtime frees after the job is acked (the
 * nginx pool idea), so handlers allocate with jf_arena_* and never free.
 * An arena is not thread-safe; it belongs to one job at a time.
 */
#ifndef JETFLEET_ARENA_H
#define JETFLEET_ARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jf_arena jf_arena_t;

/* Allocate size bytes aligned for any type, zero-filled. NULL when out of
 * memory. The memory lives until the arena is reset or destroyed. */
void *jf_arena_alloc(jf_arena_t *a, size_t size);

/* Copy a NUL-terminated string into the arena. NULL on NULL input or when
 * out of memory. */
char *jf_arena_strdup(jf_arena_t *a, const char *s);

/* Copy len bytes and append a NUL. */
char *jf_arena_strndup(jf_arena_t *a, const char *s, size_t len);

/* printf into the arena. NULL when out of memory. */
char *jf_arena_sprintf(jf_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_ARENA_H */
