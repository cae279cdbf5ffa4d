/*
 * sign.h - the Standard Webhooks signer of the webhooks module (private).
 *
 * Kept apart from webhooks.c so that it needs no job, no libcurl and no
 * runtime: the unit tests call it with the published test vector.
 */
#ifndef JF_MODULES_WEBHOOKS_SIGN_H
#define JF_MODULES_WEBHOOKS_SIGN_H

#include <stddef.h>

#include <jetfleet/arena.h>

#define WEBHOOKS_MAX_SECRETS   8
#define WEBHOOKS_MAX_KEY       128      /* decoded key bytes */
#define WEBHOOKS_SECRET_PREFIX "whsec_"

/* The value of the webhook-signature header for msg ("<id>.<ts>.<body>",
 * msg_len bytes): "v1,<base64 HMAC-SHA256> v1,<...>", one signature per
 * secret, in the order of the secrets.
 *
 * secrets (borrowed, secrets_len bytes, need not be NUL-terminated) is the
 * text of a tenant's secret file: whsec_<base64 key> tokens separated by
 * whitespace, at most WEBHOOKS_MAX_SECRETS, each key 1 to
 * WEBHOOKS_MAX_KEY bytes in padded standard base64 ("=" only at the end).
 * The caller wipes the text; every decoded key is wiped
 * here before returning. tenant (borrowed) only names the tenant in a
 * reason.
 *
 * Returns the value, allocated from a (the arena owns it), or NULL with
 * *ret_reason set to a static or arena-allocated sentence (a malformed,
 * missing or surplus secret, out of memory) that never contains a secret. */
char *webhooks_sign(jf_arena_t *a, const char *tenant, const char *secrets, size_t secrets_len,
                    const char *msg, size_t msg_len, const char **ret_reason);

#endif /* JF_MODULES_WEBHOOKS_SIGN_H */
