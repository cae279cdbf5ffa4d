/*
 * test_ledger.c - ledger keys: any valid job id becomes a valid KV key,
 * readable when the id is plain, and distinct ids never share a key.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/ledger.h"

Test(ledger_key, plain_ids_stay_readable)
{
    char key[JF_LEDGER_KEY_MAX];

    cr_assert_eq(jf_ledger_key(key, sizeof(key), "acme", "webhooks.deliver", "order-42_A", NULL),
                 JF_OK);
    cr_assert_str_eq(key, "acme.webhooks.deliver.order-42_A");
}

Test(ledger_key, other_bytes_are_escaped)
{
    char key[JF_LEDGER_KEY_MAX];

    cr_assert_eq(jf_ledger_key(key, sizeof(key), "t", "m.a", "a.b/c=d*e>f~", NULL), JF_OK);
    cr_assert_str_eq(key, "t.m.a.a=2Eb=2Fc=3Dd=2Ae=3Ef=7E");
    /* only the KV key alphabet, and no empty token */
    cr_assert_eq(strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=."),
                 strlen(key));
    cr_assert_null(strstr(key, ".."));
}

Test(ledger_key, distinct_ids_give_distinct_keys)
{
    char a[JF_LEDGER_KEY_MAX], b[JF_LEDGER_KEY_MAX];

    /* "=2E" as an id must not collide with "." */
    cr_assert_eq(jf_ledger_key(a, sizeof(a), "t", "m.a", "=2E", NULL), JF_OK);
    cr_assert_eq(jf_ledger_key(b, sizeof(b), "t", "m.a", ".", NULL), JF_OK);
    cr_assert_str_neq(a, b);
}

Test(ledger_key, the_longest_id_fits_and_overflow_is_refused)
{
    char id[129], key[JF_LEDGER_KEY_MAX], small[16];
    char tenant[65], module[65];

    memset(id, '.', 128);
    id[128] = '\0';
    memset(tenant, 't', 64);
    tenant[64] = '\0';
    memset(module, 'm', 64);
    module[64] = '\0';
    {
        char type[140];
        snprintf(type, sizeof(type), "%s.%s", module, module);
        cr_assert_eq(jf_ledger_key(key, sizeof(key), tenant, type, id, NULL), JF_OK);
    }
    cr_assert_eq(jf_ledger_key(small, sizeof(small), "acme", "diag.noop", "x", NULL), JF_ETOOBIG);
}

Test(ledger_state, names)
{
    cr_assert_str_eq(jf_job_state_name(JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED), "succeeded");
    cr_assert_str_eq(jf_job_state_name(JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED), "replayed");
    cr_assert_str_eq(jf_job_state_name((Jetfleet__V1__JobState)99), "unknown");
}
