/*
 * test_authz.c - tenant allow-list and unsafe job types.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "security/authz.h"

static const jf_job_type_t safe = { .action = "noop" };
static const jf_job_type_t unsafe = { .action = "crash", .flags = JF_JOB_TYPE_UNSAFE };

Test(authz, star_serves_every_tenant_but_not_unsafe_types)
{
    jf_authz_t     *az;
    jf_authz_opts_t o = { .tenants = "*" };
    jf_err_t        err = { 0 };

    cr_assert_eq(jf_authz_create(&az, &o, &err), JF_OK);
    cr_assert_eq(jf_authz_check(az, "acme", "diag.noop", &safe, &err), JF_OK);
    cr_assert_eq(jf_authz_check(az, "acme", "diag.crash", &unsafe, &err), JF_EDENIED);
    cr_assert(strstr(err.msg, "JF_DIAG_UNSAFE") != NULL);
    jf_authz_destroy(az);
}

Test(authz, a_list_serves_only_its_tenants)
{
    jf_authz_t     *az;
    jf_authz_opts_t o = { .tenants = "acme, globex", .allow_unsafe = true };
    jf_err_t        err = { 0 };

    cr_assert_eq(jf_authz_create(&az, &o, &err), JF_OK);
    cr_assert_eq(jf_authz_check(az, "globex", "diag.crash", &unsafe, &err), JF_OK);
    cr_assert_eq(jf_authz_check(az, "initech", "diag.noop", &safe, &err), JF_EDENIED);
    cr_assert(strstr(err.msg, "'initech' is not served") != NULL, "%s", err.msg);
    jf_authz_destroy(az);
}

Test(authz, a_bad_list_is_a_config_error)
{
    jf_authz_t     *az = NULL;
    jf_authz_opts_t o = { .tenants = "acme,Bad Tenant" };
    jf_err_t        err = { 0 };

    cr_assert_eq(jf_authz_create(&az, &o, &err), JF_ECONFIG);
    cr_assert(strstr(err.msg, "JF_TENANTS") != NULL, "%s", err.msg);
    cr_assert_null(az);
    o.tenants = " , ";
    cr_assert_eq(jf_authz_create(&az, &o, &err), JF_ECONFIG);
}
