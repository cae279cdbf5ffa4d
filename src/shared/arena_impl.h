/*
 * arena_impl.h - creating, resetting and destroying a jf_arena_t.
 *
 * The public half (allocation) is in include/jetfleet/arena.h. The runtime
 * keeps one arena per job slot and resets it after every ack, so a warm
 * worker allocates nothing for the common job.
 */
#ifndef JF_SHARED_ARENA_IMPL_H
#define JF_SHARED_ARENA_IMPL_H

#include <stddef.h>

#include <jetfleet/arena.h>
#include <jetfleet/status.h>

/* first_chunk is the size of the first block; 0 picks 4 KiB. */
jf_status_t jf_arena_create(jf_arena_t **out, size_t first_chunk);

/* Free everything but the first block, which is kept for reuse. */
void jf_arena_reset(jf_arena_t *a);

/* Accepts NULL. */
void jf_arena_destroy(jf_arena_t *a);

/* Bytes handed out since the last reset. */
size_t jf_arena_used(const jf_arena_t *a);

#endif /* JF_SHARED_ARENA_IMPL_H */
