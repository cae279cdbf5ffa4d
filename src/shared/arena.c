/*
 * arena.c - a bump allocator made of a list of blocks.
 *
 * Allocation is a pointer bump inside the current block; a request that
 * does not fit gets a new block of at least twice the previous size (or
 * its own block when it is large). Reset frees every block but the first.
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/arena_impl.h"

#define ARENA_ALIGN  16u
#define ARENA_FIRST  4096u

struct block {
    struct block *next;
    size_t        size;  /* usable bytes in data */
    size_t        used;
    alignas(ARENA_ALIGN) unsigned char data[];
};

struct jf_arena {
    struct block *head;   /* current block; older blocks follow */
    struct block *first;  /* the block kept across resets */
    size_t        total;  /* bytes handed out since reset */
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);

    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

jf_status_t jf_arena_create(jf_arena_t **out, size_t first_chunk)
{
    jf_arena_t *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return JF_ENOMEM;
    a->first = block_new(first_chunk ? first_chunk : ARENA_FIRST);
    if (a->first == NULL) {
        free(a);
        return JF_ENOMEM;
    }
    a->head = a->first;
    *out = a;
    return JF_OK;
}

void jf_arena_reset(jf_arena_t *a)
{
    struct block *b, *next;

    if (a == NULL)
        return;
    for (b = a->head; b != NULL && b != a->first; b = next) {
        next = b->next;
        free(b);
    }
    a->first->used = 0;
    a->first->next = NULL;
    a->head = a->first;
    a->total = 0;
}

void jf_arena_destroy(jf_arena_t *a)
{
    if (a == NULL)
        return;
    jf_arena_reset(a);
    free(a->first);
    free(a);
}

size_t jf_arena_used(const jf_arena_t *a)
{
    return a ? a->total : 0;
}

void *jf_arena_alloc(jf_arena_t *a, size_t size)
{
    struct block *b;
    size_t        off, need;
    void         *p;

    if (a == NULL || size > SIZE_MAX / 2)
        return NULL;
    if (size == 0)
        size = 1;
    b = a->head;
    off = (b->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (off > b->size || b->size - off < size) {
        need = b->size * 2;
        if (need < size)
            need = size;
        b = block_new(need);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
        off = 0;
    }
    p = b->data + off;
    b->used = off + size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

char *jf_arena_strndup(jf_arena_t *a, const char *s, size_t len)
{
    char *p;

    if (s == NULL)
        return NULL;
    p = jf_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *jf_arena_strdup(jf_arena_t *a, const char *s)
{
    return s ? jf_arena_strndup(a, s, strlen(s)) : NULL;
}

char *jf_arena_sprintf(jf_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    int     n;
    char   *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    p = jf_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
