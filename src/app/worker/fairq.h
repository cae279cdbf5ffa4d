/*
 * fairq.h - the fair queue between admission and the handler threads
 * (JF_TENANT_MAX_INFLIGHT, the policy's max_in_flight; ADR 0007).
 *
 * Admitted jobs wait here in arrival order. A handler thread takes the
 * oldest one whose tenant is under its limit; without limits that is plain
 * FIFO. The queue counts each tenant's jobs from the moment one is taken
 * until jf_fairq_done() says it left the worker, so a job still recording
 * its outcome counts against its tenant too. A job passed over because of
 * its tenant's limit is reported once through on_held, which must be quick
 * (it runs under the queue's lock).
 */
#ifndef JF_APP_WORKER_FAIRQ_H
#define JF_APP_WORKER_FAIRQ_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/err.h"

typedef struct jf_fairq jf_fairq_t;

/* How many jobs of tenant may run at once; 0 means no limit. */
typedef int (*jf_fairq_limit_fn)(const char *tenant, void *arg);
typedef void (*jf_fairq_held_fn)(void *item, void *arg);

typedef struct jf_fairq_opts {
    size_t            capacity;      /* items that can wait at once */
    int               takers;        /* threads that call take(), for their wait slots */
    int               tenants;       /* distinct tenants counted at once, at most */
    bool              limits;        /* false: no tenant is ever limited (plain FIFO) */
    jf_fairq_limit_fn limit;
    jf_fairq_held_fn  on_held;       /* may be NULL */
    void             *arg;
} jf_fairq_opts_t;

jf_status_t jf_fairq_create(jf_fairq_t **out, const jf_fairq_opts_t *opts, jf_err_t *err);

/* Accepts NULL. The queue must be empty (jf_fairq_close). */
void jf_fairq_destroy(jf_fairq_t *q);

/* Add item of tenant (borrowed until the item is taken or drained; "" for
 * none: never limited). false when the queue is closed or full. */
bool jf_fairq_push(jf_fairq_t *q, void *item, const char *tenant);

/* The oldest item whose tenant is under its limit, counted as running for
 * its tenant; waits for one. NULL once the queue is closed. */
void *jf_fairq_take(jf_fairq_t *q);

/* An item of tenant taken earlier left the worker. */
void jf_fairq_done(jf_fairq_t *q, const char *tenant);

/* Close the queue: every waiting take() returns NULL, push() refuses. The
 * items still waiting are handed to fn, oldest first, outside the lock;
 * returns how many. */
size_t jf_fairq_close(jf_fairq_t *q, void (*fn)(void *item, void *arg), void *arg);

/* Items waiting. */
size_t jf_fairq_waiting(jf_fairq_t *q);

#endif /* JF_APP_WORKER_FAIRQ_H */
