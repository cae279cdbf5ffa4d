/*
 * sign.c - Standard Webhooks signatures (https://www.standardwebhooks.com).
 *
 * One signature per secret of the tenant, "v1,<base64 HMAC-SHA256>", so
 * that a receiver that knows either the old or the new secret accepts a
 * delivery while secrets are rotated. The secret text is borrowed; each
 * decoded key lives on the stack only as long as its HMAC and is wiped with
 * explicit_bzero on every path.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "modules/webhooks/sign.h"

/* " v1," + 44 base64 characters of a SHA-256 */
#define SIG_CHARS 48

/* The number of bytes that the base64 text s (n bytes) decodes to, or -1
 * when it is not canonical padded base64 (length a multiple of 4, the
 * standard alphabet, "=" only as the last one or two characters) or would
 * not fit in a key of WEBHOOKS_MAX_KEY + 1 bytes. EVP_DecodeBlock alone
 * would read "=" anywhere as zero bits and count padding as key bytes. */
static int b64_key_len(const char *s, size_t n)
{
    size_t pad = 0;

    if (n == 0 || n % 4 != 0 || n > 4 * ((WEBHOOKS_MAX_KEY + 1 + 2) / 3))
        return -1;
    if (s[n - 1] == '=')
        pad = s[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return -1;
    }
    return (int)(n / 4 * 3 - pad);
}

static const char *not_whsec(jf_arena_t *a, const char *tenant, int n)
{
    return jf_arena_sprintf(a, "webhook secret #%d for tenant %s is not whsec_<base64 key>", n,
                            tenant);
}

char *webhooks_sign(jf_arena_t *a, const char *tenant, const char *secrets, size_t secrets_len,
                    const char *msg, size_t msg_len, const char **ret_reason)
{
    const size_t  prefix = sizeof(WEBHOOKS_SECRET_PREFIX) - 1;
    size_t        cap = WEBHOOKS_MAX_SECRETS * SIG_CHARS + 1;
    char         *val = jf_arena_alloc(a, cap);
    size_t        used = 0, i = 0;
    int           count = 0;
    unsigned char key[WEBHOOKS_MAX_KEY + 4];

    if (val == NULL) {
        *ret_reason = "out of memory";
        return NULL;
    }
    while (i < secrets_len) {
        size_t        start, tok_len;
        int           key_len;
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int  mac_len = 0;
        char          b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

        while (i < secrets_len && isspace((unsigned char)secrets[i]))
            i++;
        if (i >= secrets_len)
            break;
        start = i;
        while (i < secrets_len && !isspace((unsigned char)secrets[i]))
            i++;
        tok_len = i - start;
        count++;
        if (count > WEBHOOKS_MAX_SECRETS) {
            *ret_reason = jf_arena_sprintf(a, "more than %d webhook secrets for tenant %s",
                                           WEBHOOKS_MAX_SECRETS, tenant);
            return NULL;
        }
        if (tok_len <= prefix || memcmp(secrets + start, WEBHOOKS_SECRET_PREFIX, prefix) != 0) {
            *ret_reason = not_whsec(a, tenant, count);
            return NULL;
        }
        key_len = b64_key_len(secrets + start + prefix, tok_len - prefix);
        if (key_len <= 0 || key_len > WEBHOOKS_MAX_KEY) {
            *ret_reason = not_whsec(a, tenant, count);
            return NULL;
        }
        /* checked above: the text is canonical and decodes into key */
        if (EVP_DecodeBlock(key, (const unsigned char *)secrets + start + prefix,
                            (int)(tok_len - prefix)) < key_len) {
            explicit_bzero(key, sizeof(key));
            *ret_reason = not_whsec(a, tenant, count);
            return NULL;
        }
        if (HMAC(EVP_sha256(), key, key_len, (const unsigned char *)msg, msg_len, mac,
                 &mac_len) == NULL) {
            explicit_bzero(key, sizeof(key));
            *ret_reason = "HMAC-SHA256 failed";
            return NULL;
        }
        explicit_bzero(key, sizeof(key));
        EVP_EncodeBlock((unsigned char *)b64, mac, (int)mac_len);
        used += (size_t)snprintf(val + used, cap - used, "%sv1,%s", count > 1 ? " " : "", b64);
    }
    if (count == 0) {
        *ret_reason = jf_arena_sprintf(a, "webhook secret file for tenant %s is empty", tenant);
        return NULL;
    }
    return val;
}
