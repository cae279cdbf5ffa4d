/*
 * fuzz_policy.c - the tenant policy parser (src/security/policy.c) on
 * arbitrary JSON text: it must never crash or leak, leave *out untouched
 * on failure, and a policy it accepts must answer every query without
 * crashing, deny what it does not list under "default": "deny", and be
 * consistent between its answers (a type allowed for a tenant is allowed
 * whatever the payload size below the tenant's limit).
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "security/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jf_policy_t       *p = (jf_policy_t *)(uintptr_t)0x1;   /* must stay untouched on failure */
    const char *const *keys = NULL;
    size_t             nkeys = 0;
    jf_err_t           err = { 0 };
    static const char *const tenants[] = { "acme", "open", "t", "x-y_z", "" };
    static const char *const types[] = { "diag.noop", "diag.sleep", "webhooks.deliver", "a.b" };
    struct sockaddr_in  v4 = { .sin_family = AF_INET };
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };

    if (jf_policy_parse((const char *)data, size, "fuzz", &p, &err) != JF_OK) {
        FUZZ_CHECK(p == (jf_policy_t *)(uintptr_t)0x1, "out-param written on failure");
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal without a reason");
        return 0;
    }
    inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    for (size_t t = 0; t < sizeof(tenants) / sizeof(tenants[0]); t++) {
        int limit = jf_policy_max_in_flight(p, tenants[t]);
        FUZZ_CHECK(limit >= 0 && limit <= 4096, "max_in_flight %d out of range", limit);
        if (jf_policy_requires_signature(p, tenants[t], &keys, &nkeys))
            for (size_t k = 0; k < nkeys; k++)
                FUZZ_CHECK(keys[k] != NULL && keys[k][0] != '\0', "empty signing key id");
        (void)jf_policy_egress_allowed(p, tenants[t], (const struct sockaddr *)&v4);
        (void)jf_policy_egress_allowed(p, tenants[t], (const struct sockaddr *)&v6);
        for (size_t y = 0; y < sizeof(types) / sizeof(types[0]); y++) {
            jf_status_t small = jf_policy_check(p, tenants[t], types[y], 0, &err);
            jf_status_t big = jf_policy_check(p, tenants[t], types[y], (size_t)1 << 40, &err);
            FUZZ_CHECK(small == JF_OK || small == JF_EDENIED, "unexpected status %d", small);
            FUZZ_CHECK(!(small == JF_EDENIED && big == JF_OK),
                       "denied when empty, allowed when huge");
        }
    }
    jf_policy_destroy(p);
    return 0;
}
