/*
 * test_jobctx.c - trace ids and the job accessors.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "core/clock.h"
#include "core/jobctx.h"

Test(trace, parses_a_valid_traceparent)
{
    char id[33];

    cr_assert_eq(jf_trace_id_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id),
                 JF_OK);
    cr_assert_str_eq(id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

Test(trace, rejects_malformed_traceparents)
{
    char id[33] = "untouched";

    cr_assert_eq(jf_trace_id_parse(NULL, id), JF_EINVAL);
    cr_assert_eq(jf_trace_id_parse("", id), JF_EINVAL);
    cr_assert_eq(jf_trace_id_parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", id),
                 JF_EINVAL);
    cr_assert_eq(jf_trace_id_parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", id),
                 JF_EINVAL);
    cr_assert_eq(jf_trace_id_parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id),
                 JF_EINVAL);
    cr_assert_eq(jf_trace_id_parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id),
                 JF_EINVAL);
    cr_assert_str_eq(id, "untouched");
}

Test(trace, new_ids_are_hex_and_distinct)
{
    char a[33], b[33];

    jf_trace_id_new(a);
    jf_trace_id_new(b);
    cr_assert_eq(strlen(a), 32);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 32);
    cr_assert_str_neq(a, b);
}

static const char *hdr(const void *src, const char *name)
{
    (void)src;
    return strcmp(name, "X-Test") == 0 ? "yes" : NULL;
}

Test(job, accessors_and_cancellation)
{
    atomic_bool   stop = false;
    struct jf_job job = {
        .id = "j1", .tenant = "acme", .type = "diag.noop", .attempt = 2,
        .deadline_ms = 123, .deadline_mono_ms = jf_clock_mono_ms() + 60000,
        .shutting_down = &stop, .header = hdr,
    };

    cr_assert_str_eq(jf_job_id(&job), "j1");
    cr_assert_str_eq(jf_job_tenant(&job), "acme");
    cr_assert_str_eq(jf_job_type(&job), "diag.noop");
    cr_assert_eq(jf_job_attempt(&job), 2);
    cr_assert_str_eq(jf_job_header(&job, "X-Test"), "yes");
    cr_assert_null(jf_job_header(&job, "Other"));
    cr_assert_not(jf_job_cancelled(&job));
    atomic_store(&stop, true);
    cr_assert(jf_job_cancelled(&job));
    atomic_store(&stop, false);
    job.deadline_mono_ms = jf_clock_mono_ms() - 1;
    cr_assert(jf_job_cancelled(&job));
}
