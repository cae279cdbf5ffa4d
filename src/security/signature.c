/*
 * signature.c - HMAC-SHA256 job signatures (Jf-Signature, version 1).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <bsd/string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "security/signature.h"
#include "shared/ids.h"

/* MACs are compared in constant time. libbsd 0.11.7 (the one we build
 * against) does not export timingsafe_bcmp, so this is OpenSSL's
 * CRYPTO_memcmp, which has the same contract: time independent of the
 * contents, 0 if and only if equal. Never memcmp here. */
static int timingsafe_compare(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len);
}

#define MAC_LEN  32
#define B64_LEN  44   /* 32 bytes in base64, one '=' of padding */

/* HMAC-SHA256 of "<subject>\n<job id>\n" + payload, streamed (the payload
 * may be large; it is not copied). */
static jf_status_t job_mac(const void *key, size_t key_len, const char *subject,
                           const char *job_id, const void *payload, size_t len,
                           unsigned char mac[MAC_LEN], jf_err_t *err)
{
    EVP_MAC     *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM   params[2];
    size_t       out_len = 0;
    jf_status_t  rc = JF_OK;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (m == NULL || (ctx = EVP_MAC_CTX_new(m)) == NULL ||
        !EVP_MAC_init(ctx, key, key_len, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)subject, strlen(subject)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)job_id, strlen(job_id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) ||
        (len > 0 && !EVP_MAC_update(ctx, payload, len)) ||
        !EVP_MAC_final(ctx, mac, &out_len, MAC_LEN) || out_len != MAC_LEN)
        rc = jf_err_set(err, JF_EIO, "HMAC-SHA256 failed in libcrypto");
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

static jf_status_t check_key_id(const char *id, size_t len, jf_err_t *err)
{
    return jf_token_check(id, len, JF_KEY_ID_MAX, "key id", err);
}

jf_status_t jf_signature_make(const char *key_id, const void *key, size_t key_len,
                              const char *subject, const char *job_id, const void *payload,
                              size_t len, char *out, size_t size, jf_err_t *err)
{
    unsigned char mac[MAC_LEN];
    char          b64[B64_LEN + 1];
    jf_status_t   rc;
    int           n;

    if (key_id == NULL || check_key_id(key_id, strlen(key_id), err) != JF_OK)
        return jf_err_set(err, JF_EINVAL, "bad signing key id '%s'", key_id ? key_id : "");
    rc = job_mac(key, key_len, subject, job_id, payload, len, mac, err);
    if (rc != JF_OK)
        return rc;
    EVP_EncodeBlock((unsigned char *)b64, mac, MAC_LEN);
    explicit_bzero(mac, sizeof(mac));
    n = snprintf(out, size, "v1,%s,%s", key_id, b64);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return jf_err_set(err, JF_ETOOBIG, "signature buffer of %zu bytes is too small", size);
    }
    return JF_OK;
}

/* ---- verification ----------------------------------------------------------------------- */

/* One parsed header entry. */
typedef struct entry {
    char          key_id[JF_KEY_ID_MAX + 1];
    unsigned char mac[MAC_LEN];
} entry_t;

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Parse "v1,<kid>,<b64>" of length len. */
static bool parse_entry(const char *s, size_t len, entry_t *e)
{
    const char   *kid, *comma, *b64;
    size_t        kid_len, b64_len;
    unsigned char raw[MAC_LEN + 3];

    if (len < 3 || memcmp(s, "v1,", 3) != 0)
        return false;
    kid = s + 3;
    comma = memchr(kid, ',', len - 3);
    if (comma == NULL)
        return false;
    kid_len = (size_t)(comma - kid);
    if (check_key_id(kid, kid_len, NULL) != JF_OK)
        return false;
    b64 = comma + 1;
    b64_len = len - (size_t)(b64 - s);
    if (b64_len != B64_LEN || b64[B64_LEN - 1] != '=')
        return false;
    for (size_t i = 0; i < B64_LEN - 1; i++)
        if (!is_b64(b64[i]))
            return false;
    if (EVP_DecodeBlock(raw, (const unsigned char *)b64, B64_LEN) != MAC_LEN + 1)
        return false;
    memcpy(e->key_id, kid, kid_len);
    e->key_id[kid_len] = '\0';
    memcpy(e->mac, raw, MAC_LEN);
    return true;
}

static bool allowed(const char *kid, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] != NULL && strcmp(ids[i], kid) == 0)
            return true;
    return false;
}

#define MAX_ENTRIES 8

jf_status_t jf_signature_verify(const char *header, const char *subject, const char *job_id,
                                const void *payload, size_t len,
                                const char *const *allowed_key_ids, size_t n,
                                const jf_secrets_t *secrets, jf_err_t *err)
{
    entry_t     e[MAX_ENTRIES];
    size_t      ne = 0, tried = 0;
    const char *p, *unknown = NULL;
    jf_status_t rc = JF_OK;
    bool        ok = false;

    if (header == NULL || header[0] == '\0')
        return jf_err_set(err, JF_EDENIED, "missing " JF_HDR_SIGNATURE);
    for (p = header; *p != '\0';) {
        size_t l;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        l = strcspn(p, " ");
        if (ne == MAX_ENTRIES || !parse_entry(p, l, &e[ne]))
            return jf_err_set(err, JF_EDENIED, "malformed " JF_HDR_SIGNATURE);
        ne++;
        p += l;
    }
    if (ne == 0)
        return jf_err_set(err, JF_EDENIED, "malformed " JF_HDR_SIGNATURE);

    for (size_t i = 0; i < ne && !ok; i++) {
        unsigned char mac[MAC_LEN];
        char          name[sizeof("signing/") + JF_KEY_ID_MAX];
        const void   *key;
        size_t        key_len;

        snprintf(name, sizeof(name), "signing/%s", e[i].key_id);
        if (!allowed(e[i].key_id, allowed_key_ids, n) ||
            jf_secrets_get(secrets, name, &key, &key_len) != JF_OK) {
            if (unknown == NULL)
                unknown = e[i].key_id;
            continue;
        }
        tried++;
        rc = job_mac(key, key_len, subject, job_id, payload, len, mac, err);
        if (rc != JF_OK)
            break;
        ok = timingsafe_compare(mac, e[i].mac, MAC_LEN) == 0;
        explicit_bzero(mac, sizeof(mac));
    }
    if (rc != JF_OK)
        return rc;
    if (ok)
        return JF_OK;
    if (tried == 0)
        return jf_err_set(err, JF_EDENIED, "unknown key id %s", unknown);
    return jf_err_set(err, JF_EDENIED, "signature mismatch");
}
