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
#include "core/pipe.h"
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

/* ---- asynchronous reads and writes (the worker's hot path) ---------------------
 *
 * Requests over a pipe (core/pipe.h): the caller embeds a jf_kv_op_t in its
 * own struct, sends, and gets the answer through op->done on the pipe's
 * thread; nobody waits. Writes carry the revision the key must still have,
 * so that a writer never overwrites a value it has not read.
 *
 *     op->done = on_value;
 *     jf_kv_get_async(kv, pipe, op, "acme.diag.noop.j1", &err);
 *     ...
 *     static void on_value(jf_kv_op_t *op, jf_status_t st)
 *     {   st JF_OK: op->val, op->len, op->rev;  JF_ENOTFOUND: op->rev  }
 */
typedef struct jf_kv_op jf_kv_op_t;

/* Called once per request, on a pipe thread. st is:
 *   a read   JF_OK (op->val and op->len, borrowed for the call; op->rev);
 *            JF_ENOTFOUND: no value (op->rev is 0 when the key has no
 *            entry at all, or the revision of its delete marker);
 *   a write  JF_OK (op->rev is the new revision); JF_ESTATE when the key's
 *            revision was not the expected one (another writer came first);
 *   both     JF_EUNAVAILABLE (no responders: the bucket's stream does not
 *            exist, or JetStream is down), JF_ETIMEOUT, JF_EIO, JF_ESTATE
 *            (for a read: the pipe closed), with a sentence in op->why. */
typedef void (*jf_kv_done_fn)(jf_kv_op_t *op, jf_status_t st);

struct jf_kv_op {
    jf_kv_done_fn done;       /* set by the caller */
    const void   *val;
    size_t        len;
    uint64_t      rev;
    char          why[224];

    /* private */
    jf_pipe_req_t req;
    jf_kv_t      *kv;
    int           kind;       /* read, write or probe */
};

/* Write whatever the key holds (no revision check). */
#define JF_KV_ANY_REV UINT64_MAX

/* Ask for key's value (a direct get of the key's last entry). */
jf_status_t jf_kv_get_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, const char *key,
                            jf_err_t *err);

/* Store a value if the key's revision is still expect (0: the key has no
 * entry; JF_KV_ANY_REV: any). An error here means nothing was sent and
 * done will not be called. */
jf_status_t jf_kv_put_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, const char *key,
                            const void *val, size_t len, uint64_t expect, jf_err_t *err);

/* Ask whether the bucket exists: JF_OK, JF_ENOTFOUND, or as above. */
jf_status_t jf_kv_probe_async(jf_kv_t *kv, jf_pipe_t *p, jf_kv_op_t *op, jf_err_t *err);

#endif /* JF_CORE_KV_H */
