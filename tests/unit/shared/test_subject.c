/*
 * test_subject.c - the job subject and identifier rules of DESIGN.md 4,
 * table-driven over every bad form we know of.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "shared/ids.h"
#include "shared/subject.h"

Test(subject, parses_a_good_subject)
{
    jf_subject_t s;
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_subject_parse("jobs.acme.webhooks.deliver", "jobs", &s, &err), JF_OK);
    cr_assert_str_eq(s.tenant, "acme");
    cr_assert_str_eq(s.module, "webhooks");
    cr_assert_str_eq(s.action, "deliver");
    cr_assert_str_eq(s.type, "webhooks.deliver");
}

Test(subject, supports_a_multi_token_prefix)
{
    jf_subject_t s;

    cr_assert_eq(jf_subject_parse("jobs.eu.t-1.diag.no_op", "jobs.eu", &s, NULL), JF_OK);
    cr_assert_str_eq(s.tenant, "t-1");
    cr_assert_str_eq(s.type, "diag.no_op");
}

Test(subject, leaves_out_untouched_on_error)
{
    jf_subject_t s;

    memset(&s, 0x5a, sizeof(s));
    cr_assert_neq(jf_subject_parse("jobs.acme.diag", "jobs", &s, NULL), JF_OK);
    cr_assert_eq((unsigned char)s.tenant[0], 0x5a);
}

struct bad_subject {
    char subject[160];
    char fragment[48];   /* must appear in the error message */
};

ParameterizedTestParameters(subject, rejects_bad_forms)
{
    static struct bad_subject cases[] = {
        { "other.acme.diag.noop", "does not start with" },
        { "jobsx.acme.diag.noop", "does not start with" },
        { "jobs", "does not start with" },
        { "jobs.acme", "no module token" },
        { "jobs.acme.diag", "no action token" },
        { "jobs.acme.diag.noop.extra", "extra tokens" },
        { "jobs.ACME.diag.noop", "tenant" },
        { "jobs.acme.Diag.noop", "module" },
        { "jobs.acme.diag.no op", "action" },
        { "jobs..diag.noop", "tenant is empty" },
        { "jobs.acme..noop", "module is empty" },
        { "jobs.acme.diag.", "action is empty" },
        { "jobs.ac*me.diag.noop", "0x2a" },
        { "jobs.acme.diag.n\xc3\xa9", "action" },
        { "jobs.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.diag.noop",
          "65 characters long" },
    };
    return cr_make_param_array(struct bad_subject, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_subject *c, subject, rejects_bad_forms)
{
    jf_subject_t s;
    jf_err_t     err = { 0 };

    cr_assert_eq(jf_subject_parse(c->subject, "jobs", &s, &err), JF_EINVAL, "%s", c->subject);
    cr_assert(strstr(err.msg, c->fragment) != NULL, "'%s': message '%s' lacks '%s'",
              c->subject, err.msg, c->fragment);
}

Test(job_id, accepts_printable_ascii_up_to_128)
{
    char id[129];

    memset(id, 'x', 128);
    id[128] = '\0';
    cr_assert_eq(jf_job_id_check("order-42", NULL), JF_OK);
    cr_assert_eq(jf_job_id_check("a:b/c@d!~", NULL), JF_OK);
    cr_assert_eq(jf_job_id_check(id, NULL), JF_OK);
}

Test(job_id, rejects_missing_long_and_unprintable)
{
    char     id[130];
    jf_err_t err = { 0 };

    memset(id, 'x', 129);
    id[129] = '\0';
    cr_assert_eq(jf_job_id_check(NULL, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "missing") != NULL);
    cr_assert_eq(jf_job_id_check("", &err), JF_EINVAL);
    cr_assert_eq(jf_job_id_check(id, &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "longer than 128") != NULL);
    cr_assert_eq(jf_job_id_check("has space", &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "0x20") != NULL);
    cr_assert_eq(jf_job_id_check("tab\there", &err), JF_EINVAL);
    cr_assert_eq(jf_job_id_check("caf\xc3\xa9", &err), JF_EINVAL);
}

Test(type, splits_module_and_action)
{
    char m[JF_TOKEN_MAX + 1], a[JF_TOKEN_MAX + 1];

    cr_assert_eq(jf_type_split("diag.noop", m, a, NULL), JF_OK);
    cr_assert_str_eq(m, "diag");
    cr_assert_str_eq(a, "noop");
    cr_assert_eq(jf_type_split("diag", m, a, NULL), JF_EINVAL);
    cr_assert_eq(jf_type_split("diag.", m, a, NULL), JF_EINVAL);
    cr_assert_eq(jf_type_split(".noop", m, a, NULL), JF_EINVAL);
    cr_assert_eq(jf_type_split("diag.no.op", m, a, NULL), JF_EINVAL);
}

Test(subject, formats_and_refuses_overflow)
{
    char buf[32];

    cr_assert_eq(jf_subject_format(buf, sizeof(buf), "jobs", "acme", "diag.noop", NULL), JF_OK);
    cr_assert_str_eq(buf, "jobs.acme.diag.noop");
    cr_assert_eq(jf_subject_format(buf, 10, "jobs", "acme", "diag.noop", NULL), JF_ETOOBIG);
}

Test(js_name, accepts_stream_names_and_refuses_subject_syntax)
{
    cr_assert(jf_js_name_ok("JOBS", 64));
    cr_assert(jf_js_name_ok("KV_JF_LEDGER", 64));
    cr_assert(jf_js_name_ok("$G", 64));
    cr_assert_not(jf_js_name_ok("", 64));
    cr_assert_not(jf_js_name_ok(NULL, 64));
    cr_assert_not(jf_js_name_ok("JOBS.EU", 64));
    cr_assert_not(jf_js_name_ok("JO*S", 64));
    cr_assert_not(jf_js_name_ok("a>b", 64));
    cr_assert_not(jf_js_name_ok("a/b", 64));
    cr_assert_not(jf_js_name_ok("a b", 64));
    cr_assert_not(jf_js_name_ok("abcdef", 5));
}
