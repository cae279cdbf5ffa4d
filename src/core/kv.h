/*
 * kv.h - the JetStream key-value adapter: one bucket, values as bytes,
 * optimistic concurrency by revision.
 *
 * The job ledger keeps its records here, and modules keep their own data
 * here (a module opens its bucket from init with jf_kv_open_module(); the
 * runtime lends the connection, the module never sees it). Buckets are
 * created by `jetfleet provision`, never by a worker.
 *
 *     jf_kv_t *kv;
 *     if (jf_kv_open_module(&kv, mctx, "JF_SUBSCRIPTIONS", &err) != JF_OK) ...
 *     st = jf_kv_get(kv, "acme", arena, &val, &len, &rev, &err);
 *     ... modify ...
 *     st = rev ? jf_kv_update(kv, "acme", buf, n, rev, NULL, &err)
 *              : jf_kv_create(kv, "acme", buf, n, NULL, &err);
 *     if (st == JF_ESTATE) ... someone else wrote first: read again
 */
#ifndef JF_CORE_KV_H
#define JF_CORE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jetfleet/arena.h>
#include <jetfleet/module.h>

#include "core/nats.h"
#include "shared/err.h"

typedef struct jf_kv jf_kv_t;

/* Bind to an existing bucket over nc (borrowed; must outlive the handle).
 * JF_ENOTFOUND, with a sentence naming `jetfleet provision`, when the
 * bucket does not exist. */
jf_status_t jf_kv_open(jf_kv_t **out, jf_nats_t *nc, const char *bucket, jf_err_t *err);

/* The same, over the runtime's connection, for a module's init. JF_ESTATE
 * when the runtime has no connection (a command that does not run jobs). */
jf_status_t jf_kv_open_module(jf_kv_t **out, const jf_module_ctx_t *mctx, const char *bucket,
                              jf_err_t *err);

/* Accepts NULL. */
void jf_kv_close(jf_kv_t *kv);

const char *jf_kv_bucket(const jf_kv_t *kv);

/* The value under key: copied into arena (NUL-terminated, so text values
 * can be used as strings), or malloc'ed when arena is NULL (free() it).
 * *ret_rev, when not NULL, gets the entry's revision. JF_ENOTFOUND when
 * the key has no value (never written, deleted or expired). */
jf_status_t jf_kv_get(jf_kv_t *kv, const char *key, jf_arena_t *arena, void **ret_val,
                      size_t *ret_len, uint64_t *ret_rev, jf_err_t *err);

/* Store a value, last writer wins. ret_rev may be NULL. */
jf_status_t jf_kv_put(jf_kv_t *kv, const char *key, const void *val, size_t len,
                      uint64_t *ret_rev, jf_err_t *err);

/* Store a value only if the key has none. JF_EEXIST when it has. */
jf_status_t jf_kv_create(jf_kv_t *kv, const char *key, const void *val, size_t len,
                         uint64_t *ret_rev, jf_err_t *err);

/* Store a value only if the key's revision is still last_rev. JF_ESTATE
 * when another writer got there first: read again and retry. */
jf_status_t jf_kv_update(jf_kv_t *kv, const char *key, const void *val, size_t len,
                         uint64_t last_rev, uint64_t *ret_rev, jf_err_t *err);

/* Delete the key's value (a delete marker; history is kept). Deleting a
 * key that has no value is not an error. */
jf_status_t jf_kv_delete(jf_kv_t *kv, const char *key, jf_err_t *err);

/* ---- pipelined reads and writes (the worker's hot path) ----------------------
 *
 * Many reads and writes may be in flight over one reply subscription: the
 * caller keeps working while the server answers, and each answer comes
 * back with the caller's token. Writes from one connection reach the
 * server in call order.
 *
 *     jf_kv_pipe_t *p;
 *     jf_kv_pipe_create(&p, kv, on_answer, arg, &err);
 *     jf_kv_get_async(p, "acme.diag.noop.j1", 42, &err);   // on_answer(42, ...) later
 */
typedef struct jf_kv_pipe jf_kv_pipe_t;

/* One answer, on the library's delivery thread; write says to which kind
 * of request. For a read: JF_OK with
 * the value (borrowed for the call), JF_ENOTFOUND, or another status with
 * why. For a write: JF_OK (val NULL) once the server stored it, or another
 * status with why. A request the server never answers gets no call: the
 * caller times it out. Tokens are the caller's. */
typedef void (*jf_kv_answer_fn)(uint64_t token, bool write, jf_status_t st, const void *val,
                                size_t len, const char *why, void *arg);

jf_status_t jf_kv_pipe_create(jf_kv_pipe_t **out, jf_kv_t *kv, jf_kv_answer_fn fn, void *arg,
                              jf_err_t *err);

/* Ask for key's value. */
jf_status_t jf_kv_get_async(jf_kv_pipe_t *p, const char *key, uint64_t token, jf_err_t *err);

/* Store a value (last writer wins) without waiting; the answer says
 * whether it was stored. An error here means it was not sent. */
jf_status_t jf_kv_put_async(jf_kv_pipe_t *p, const char *key, const void *val, size_t len,
                            uint64_t token, jf_err_t *err);

/* No call of fn runs or starts once this returns. Accepts NULL. */
void jf_kv_pipe_destroy(jf_kv_pipe_t *p);

#endif /* JF_CORE_KV_H */
