/*
 * test_policy.c - the tenant policy file: validation, globs, limits, CIDRs.
 *
 * Validation errors are a table of fixture files (fixtures/policy_*.json),
 * each with the JSON path and problem its message must name.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "security/policy.h"

#ifndef FIXTURES
#error "FIXTURES must name tests/unit/security/fixtures"
#endif

static jf_policy_t *load(const char *name)
{
    jf_policy_t *p = NULL;
    jf_err_t     err = { 0 };
    char         path[512];

    snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
    cr_assert_eq(jf_policy_load(path, &p, &err), JF_OK, "%s", err.msg);
    cr_assert_not_null(p);
    return p;
}

/* ---- validation errors ------------------------------------------------------------------ */

/* Arrays, not pointers: Criterion runs each parameter in a fresh process
 * (with its own address layout) and copies the table across. */
typedef struct bad_case {
    char file[64];
    char want[96];   /* substring of the message */
} bad_case_t;

static bad_case_t bad_cases[] = {
    { "policy_bad_version.json", "version: expected 1" },
    { "policy_no_version.json", "version: required" },
    { "policy_unknown_top_key.json", "(top level): unknown key 'tennants'" },
    { "policy_bad_default.json", "default: expected \"deny\" or \"allow\"" },
    { "policy_no_tenants.json", "tenants: required" },
    { "policy_tenants_not_object.json", "tenants: expected an object" },
    { "policy_bad_tenant_token.json", "tenants.Acme Corp: not a valid tenant token" },
    { "policy_tenant_not_object.json", "tenants.acme: expected an object" },
    { "policy_unknown_tenant_key.json", "tenants.acme: unknown key 'max_payloads'" },
    { "policy_no_job_types.json", "tenants.acme.job_types: required" },
    { "policy_empty_job_types.json", "tenants.acme.job_types: must not be empty" },
    { "policy_job_types_not_array.json", "tenants.acme.job_types: expected an array" },
    { "policy_bad_glob_suffix.json", "tenants.acme.job_types[1]: expected \"*\"" },
    { "policy_bad_glob_prefix.json", "tenants.acme.job_types[0]: expected \"*\"" },
    { "policy_bad_glob_case.json", "tenants.acme.job_types[0]: expected \"*\"" },
    { "policy_bad_glob_type.json", "tenants.acme.job_types[0]: expected a string" },
    { "policy_bad_require_signature.json", "tenants.acme.require_signature: expected true" },
    { "policy_signature_without_keys.json", "tenants.acme.signing_keys: require_signature "
      "is true but no signing key" },
    { "policy_bad_key_id.json", "tenants.acme.signing_keys[0]: expected a key id" },
    { "policy_bad_max_payload_string.json", "tenants.acme.max_payload: expected a positive "
      "integer" },
    { "policy_bad_max_payload_negative.json", "tenants.acme.max_payload: expected a positive "
      "integer" },
    { "policy_bad_max_payload_float.json", "tenants.acme.max_payload: expected a positive "
      "integer" },
    { "policy_bad_max_payload_huge.json", "tenants.acme.max_payload: at most 67108864" },
    { "policy_bad_max_in_flight_zero.json", "tenants.acme.max_in_flight: expected a positive "
      "integer" },
    { "policy_bad_cidr_v4.json", "tenants.acme.egress_allow[0]: expected a CIDR" },
    { "policy_bad_cidr_no_prefix.json", "tenants.acme.egress_allow[0]: expected a CIDR" },
    { "policy_bad_cidr_v4_prefix.json", "tenants.acme.egress_allow[0]: expected a CIDR" },
    { "policy_bad_cidr_v6_prefix.json", "tenants.acme.egress_allow[0]: expected a CIDR" },
    { "policy_bad_cidr_host_bits.json", "tenants.acme.egress_allow[0]: address has bits set" },
    { "policy_bad_cidr_hostname.json", "tenants.acme.egress_allow[0]: expected a CIDR" },
    { "policy_not_json.json", "line " },
    { "policy_duplicate_key.json", "duplicate" },
    { "policy_does_not_exist.json", "cannot open policy file" },
};

ParameterizedTestParameters(policy, rejects_bad_files)
{
    return cr_make_param_array(bad_case_t, bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(bad_case_t *c, policy, rejects_bad_files)
{
    jf_policy_t *p = (jf_policy_t *)0x1;   /* must stay untouched */
    jf_err_t     err = { 0 };
    char         path[512];

    snprintf(path, sizeof(path), "%s/%s", FIXTURES, c->file);
    cr_assert_eq(jf_policy_load(path, &p, &err), JF_ECONFIG, "%s: %s", c->file, err.msg);
    cr_assert_eq(p, (jf_policy_t *)0x1, "%s: out-param clobbered", c->file);
    cr_assert(strstr(err.msg, c->want) != NULL, "%s: want '%s' in '%s'", c->file, c->want,
              err.msg);
    cr_assert(strstr(err.msg, c->file) != NULL, "message names the file: %s", err.msg);
}

Test(policy, empty_path_is_invalid)
{
    jf_policy_t *p = NULL;
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_policy_load("", &p, &err), JF_EINVAL);
    cr_assert_null(p);
    jf_policy_destroy(NULL);
}

/* ---- checks ----------------------------------------------------------------------------- */

Test(policy, globs_select_job_types)
{
    jf_policy_t *p = load("policy_good.json");
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_policy_check(p, "acme", "diag.noop", 10, &err), JF_OK);
    cr_assert_eq(jf_policy_check(p, "acme", "diag.crash", 10, &err), JF_OK);
    cr_assert_eq(jf_policy_check(p, "acme", "webhooks.deliver", 10, &err), JF_OK);
    cr_assert_eq(jf_policy_check(p, "acme", "webhooks.replay", 10, &err), JF_EDENIED);
    cr_assert(strstr(err.msg, "job type webhooks.replay is not allowed for tenant 'acme'"),
              "%s", err.msg);
    /* "diag.*" is the module diag, not every module starting with "diag" */
    cr_assert_eq(jf_policy_check(p, "acme", "diagx.noop", 10, &err), JF_EDENIED);
    cr_assert_eq(jf_policy_check(p, "acme", "diag", 10, &err), JF_EDENIED);
    cr_assert_eq(jf_policy_check(p, "globex", "anything.at_all", 10, &err), JF_OK);
    jf_policy_destroy(p);
}

Test(policy, max_payload_is_per_tenant)
{
    jf_policy_t *p = load("policy_good.json");
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_policy_check(p, "acme", "diag.noop", 65536, &err), JF_OK);
    cr_assert_eq(jf_policy_check(p, "acme", "diag.noop", 65537, &err), JF_ETOOBIG);
    cr_assert(strstr(err.msg, "65537") && strstr(err.msg, "65536"), "%s", err.msg);
    cr_assert_eq(jf_policy_check(p, "globex", "diag.noop", 1u << 30, &err), JF_OK);
    jf_policy_destroy(p);
}

Test(policy, unlisted_tenant_is_denied_by_default)
{
    jf_policy_t *p = load("policy_good.json");
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_policy_check(p, "initech", "diag.noop", 1, &err), JF_EDENIED);
    cr_assert(strstr(err.msg, "'initech' is not in the policy file"), "%s", err.msg);
    jf_policy_destroy(p);
}

Test(policy, allow_default_admits_unlisted_tenants_only)
{
    jf_policy_t *p = load("policy_allow.json");
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_policy_check(p, "initech", "anything.goes", 1u << 30, &err), JF_OK);
    /* a listed tenant keeps its own rules */
    cr_assert_eq(jf_policy_check(p, "acme", "diag.noop", 1, &err), JF_OK);
    cr_assert_eq(jf_policy_check(p, "acme", "diag.crash", 1, &err), JF_EDENIED);
    cr_assert_eq(jf_policy_max_in_flight(p, "initech"), 0);
    jf_policy_destroy(p);
}

Test(policy, accessors)
{
    jf_policy_t       *p = load("policy_good.json");
    const char *const *ids = NULL;
    size_t             n = 0;

    cr_assert(jf_policy_requires_signature(p, "acme", &ids, &n));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids[0], "k1");
    cr_assert_str_eq(ids[1], "k2");
    ids = NULL;
    cr_assert_not(jf_policy_requires_signature(p, "globex", &ids, &n));
    cr_assert_not(jf_policy_requires_signature(p, "initech", &ids, &n));
    cr_assert_null(ids);
    cr_assert_eq(jf_policy_max_in_flight(p, "acme"), 8);
    cr_assert_eq(jf_policy_max_in_flight(p, "globex"), 0);
    jf_policy_destroy(p);
}

/* ---- egress ----------------------------------------------------------------------------- */

static bool v4(const jf_policy_t *p, const char *tenant, const char *ip)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return jf_policy_egress_allowed(p, tenant, (struct sockaddr *)&a);
}

static bool v6(const jf_policy_t *p, const char *tenant, const char *ip)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
    cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return jf_policy_egress_allowed(p, tenant, (struct sockaddr *)&a);
}

Test(policy, egress_cidr_v4)
{
    jf_policy_t *p = load("policy_good.json");

    cr_assert(v4(p, "acme", "127.0.0.1"));
    cr_assert_not(v4(p, "acme", "127.0.0.2"));          /* /32 is one host */
    cr_assert(v4(p, "acme", "10.0.0.0"));
    cr_assert(v4(p, "acme", "10.255.255.255"));
    cr_assert_not(v4(p, "acme", "11.0.0.0"));
    cr_assert_not(v4(p, "acme", "169.254.169.254"));    /* cloud metadata */
    cr_assert_not(v4(p, "globex", "127.0.0.1"));        /* no egress_allow: nothing */
    cr_assert_not(v4(p, "initech", "127.0.0.1"));       /* not in the policy */
    jf_policy_destroy(p);
}

Test(policy, egress_cidr_v6)
{
    jf_policy_t *p = load("policy_good.json");

    cr_assert(v6(p, "acme", "::1"));
    cr_assert_not(v6(p, "acme", "::2"));
    cr_assert(v6(p, "acme", "fd12:3456::1"));
    cr_assert(v6(p, "acme", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_assert_not(v6(p, "acme", "fe00::1"));
    cr_assert_not(v6(p, "acme", "2001:db8::1"));
    /* an IPv4-mapped address is judged as the IPv4 address it carries */
    cr_assert(v6(p, "acme", "::ffff:127.0.0.1"));
    cr_assert(v6(p, "acme", "::ffff:10.1.2.3"));
    cr_assert_not(v6(p, "acme", "::ffff:169.254.169.254"));
    jf_policy_destroy(p);
}

Test(policy, egress_odd_prefixes_and_families)
{
    static const char json[] =
        "{\"version\":1,\"tenants\":{\"acme\":{\"job_types\":[\"*\"],"
        "\"egress_allow\":[\"192.168.0.0/23\",\"2001:db8::/33\",\"0.0.0.0/0\"]}}}";
    static const char json2[] =
        "{\"version\":1,\"tenants\":{\"acme\":{\"job_types\":[\"*\"],"
        "\"egress_allow\":[\"192.168.0.0/23\",\"2001:db8::/33\"]}}}";
    jf_policy_t    *p = NULL;
    jf_err_t        err = { 0 };
    struct sockaddr un = { .sa_family = AF_UNIX };

    cr_assert_eq(jf_policy_parse(json, strlen(json), "inline", &p, &err), JF_OK, "%s", err.msg);
    cr_assert(v4(p, "acme", "8.8.8.8"));   /* 0.0.0.0/0 */
    cr_assert_not(v6(p, "acme", "2001:db9::1"));
    cr_assert_not(jf_policy_egress_allowed(p, "acme", &un));
    jf_policy_destroy(p);
    cr_assert_eq(jf_policy_parse(json2, strlen(json2), "inline", &p, &err), JF_OK, "%s", err.msg);
    cr_assert(v4(p, "acme", "192.168.1.255"));
    cr_assert_not(v4(p, "acme", "192.168.2.0"));
    cr_assert(v6(p, "acme", "2001:db8:7fff::1"));
    cr_assert_not(v6(p, "acme", "2001:db8:8000::1"));
    cr_assert_not(v4(p, "acme", "8.8.8.8"));
    jf_policy_destroy(p);
}

/* Reload is load-new, swap, destroy-old: two policies live side by side
 * without sharing state. */
Test(policy, two_loads_are_independent)
{
    jf_policy_t *a = load("policy_good.json");
    jf_policy_t *b = load("policy_allow.json");
    jf_err_t     err = { 0 };

    jf_policy_destroy(a);
    cr_assert_eq(jf_policy_check(b, "initech", "diag.noop", 1, &err), JF_OK);
    jf_policy_destroy(b);
}
