/*
 * signature.h - signed jobs: the Jf-Signature header.
 *
 *   Jf-Signature: v1,<key id>,<base64 HMAC-SHA256>[ v1,<key id>,<base64>...]
 *
 * The MAC covers "<subject>\n<job id>\n" followed by the payload bytes, so
 * a signature cannot be moved to another subject (tenant or job type) or
 * another job id. Several signatures separated by spaces allow key
 * rotation: a publisher signs with the old and the new key while workers
 * move from one to the other. The key for <key id> is the secret named
 * "signing/<key id>" (secrets.h). Which key ids a tenant may use is the
 * tenant policy's business (policy.h).
 */
#ifndef JF_SECURITY_SIGNATURE_H
#define JF_SECURITY_SIGNATURE_H

#include <stddef.h>

#include "security/secrets.h"
#include "shared/err.h"

#define JF_HDR_SIGNATURE   "Jf-Signature"
#define JF_KEY_ID_MAX      64
/* "v1," + key id + "," + 44 base64 characters + NUL */
#define JF_SIGNATURE_MAX   (3 + JF_KEY_ID_MAX + 1 + 44 + 1)

/* Verify header (the Jf-Signature value; NULL when absent) over subject,
 * job_id and the payload. JF_OK when at least one signature in the header
 * is made with a key in allowed_key_ids (n entries) whose secret is in
 * secrets, and matches. Otherwise JF_EDENIED with one of these reasons:
 * "missing Jf-Signature", "malformed Jf-Signature" (any entry malformed
 * rejects the whole header), "unknown key id <id>" (no entry uses an
 * allowed key with a known secret), "signature mismatch". MACs are
 * compared in constant time (CRYPTO_memcmp; see signature.c). All arguments are borrowed. */
jf_status_t jf_signature_verify(const char *header, const char *subject, const char *job_id,
                                const void *payload, size_t len,
                                const char *const *allowed_key_ids, size_t n,
                                const jf_secrets_t *secrets, jf_err_t *err);

/* Write one header entry "v1,<key_id>,<base64 MAC>" for the given key into
 * out (size bytes; JF_SIGNATURE_MAX always suffices). JF_EINVAL for a bad
 * key id, JF_ETOOBIG when out is too small. Entries for several keys are
 * joined with one space. */
jf_status_t jf_signature_make(const char *key_id, const void *key, size_t key_len,
                              const char *subject, const char *job_id, const void *payload,
                              size_t len, char *out, size_t size, jf_err_t *err);

#endif /* JF_SECURITY_SIGNATURE_H */
