/*
 * secrets.h - named secret values read from JF_SECRETS_DIR.
 *
 * Secrets never travel through the environment (where `jetfleet config`
 * could print them and /proc/<pid>/environ exposes them): each one is a
 * file under one directory, readable by the worker's user only. A secret's
 * name is its path relative to the directory, so the layout is the
 * namespace:
 *
 *   signing/<key id>    HMAC keys for signed jobs (signature.h)
 *   webhooks/<tenant>   reserved for the webhooks module's signing secrets
 *
 * A loaded set is immutable; reloading means loading a new set, swapping
 * it in and destroying the old one. Destroy wipes every value.
 */
#ifndef JF_SECURITY_SECRETS_H
#define JF_SECURITY_SECRETS_H

#include <stddef.h>

#include "shared/err.h"

/* Largest secret file accepted. */
#define JF_SECRET_MAX 4096

typedef struct jf_secrets jf_secrets_t;

/* Read every regular file under dir (descending into subdirectories, at
 * most JF_SECRETS_DEPTH levels, skipping names that start with '.') into a
 * new set. One trailing newline is trimmed from each value. JF_ECONFIG,
 * naming the file, for a file larger than JF_SECRET_MAX, a file whose mode
 * grants any permission to group or others, or something that is neither
 * a file nor a directory; JF_EIO when the directory cannot be read. On
 * success *out is owned by the caller (jf_secrets_destroy); on failure it
 * is left untouched and nothing is kept. */
#define JF_SECRETS_DEPTH 4
jf_status_t jf_secrets_load(const char *dir, jf_secrets_t **out, jf_err_t *err);

/* Look a secret up by name ("signing/k1"). JF_OK with *ret_ptr and
 * *ret_len pointing into the set (borrowed: valid until the set is
 * destroyed; not NUL-terminated), or JF_ENOTFOUND. s may be NULL (no
 * secrets configured): JF_ENOTFOUND. */
jf_status_t jf_secrets_get(const jf_secrets_t *s, const char *name, const void **ret_ptr,
                           size_t *ret_len);

/* Number of secrets in the set (0 for NULL). */
size_t jf_secrets_count(const jf_secrets_t *s);

/* Overwrite every value with zeros (explicit_bzero) and forget it; names
 * stay, lookups then fail. Destroy calls this first; it is public so that
 * tests can observe the wipe while the memory is still owned. */
void jf_secrets_wipe(jf_secrets_t *s);

/* Wipe, then free the set. Accepts NULL. */
void jf_secrets_destroy(jf_secrets_t *s);

#endif /* JF_SECURITY_SECRETS_H */
