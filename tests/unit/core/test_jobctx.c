/*
 * test_jobctx.c - trace ids and the job accessors.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/clock.h"
#include "core/jobctx.h"
#include "shared/arena_impl.h"

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

/* ---- the enqueue service (include/jetfleet/enqueue.h) ------------------------------------- */

#include <openssl/sha.h>

#include <jetfleet/v1/ledger.pb-c.h>

struct enq_seen {
    int         calls;
    const char *type;
    const char *tenant;
    char        id[200];
};

static jf_status_t fake_enqueue(void *ctx, const jf_job_t *parent, const char *type,
                                const ProtobufCMessage *payload, const char *child_id)
{
    struct enq_seen *s = ctx;

    (void)payload;
    s->calls++;
    s->type = type;
    s->tenant = parent->tenant;
    strncpy(s->id, child_id, sizeof(s->id) - 1);
    return JF_OK;
}

static jf_arena_t *enq_arena;

static void enq_setup(void)
{
    cr_assert_eq(jf_arena_create(&enq_arena, 4096), JF_OK);
}

static void enq_teardown(void)
{
    jf_arena_destroy(enq_arena);
}

Test(enqueue, child_ids_are_the_parent_id_and_the_key, .init = enq_setup, .fini = enq_teardown)
{
    struct jf_job job = { .id = "evt-1", .tenant = "acme", .arena = enq_arena };

    cr_assert_str_eq(jf_job_child_id(&job, "ep-a"), "evt-1/ep-a");
    cr_assert_str_eq(jf_job_child_id(&job, "A.b:c_d-9"), "evt-1/A.b:c_d-9");
    /* deterministic: the same inputs, the same id */
    cr_assert_str_eq(jf_job_child_id(&job, "ep-a"), jf_job_child_id(&job, "ep-a"));
    cr_assert_null(jf_job_child_id(&job, ""));
    cr_assert_null(jf_job_child_id(&job, "has space"));
    cr_assert_null(jf_job_child_id(&job, "a/b"), "a '/' in a key would make ids ambiguous");
    cr_assert_null(jf_job_child_id(&job,
        "k234567890123456789012345678901234567890123456789012345678901234x"), "65 characters");
}

Test(enqueue, long_child_ids_fall_back_to_a_digest, .init = enq_setup, .fini = enq_teardown)
{
    char          parent[129], want[200], hex[65], both[200];
    unsigned char md[SHA256_DIGEST_LENGTH];
    const char   *a, *b;
    struct jf_job job = { .id = parent, .tenant = "acme", .arena = enq_arena };

    memset(parent, 'p', 128);
    parent[128] = '\0';
    /* exactly 128: still the readable form */
    parent[128 - 5] = '\0';
    snprintf(want, sizeof(want), "%s/ep-a", parent);
    cr_assert_str_eq(jf_job_child_id(&job, "ep-a"), want);
    cr_assert_eq(strlen(jf_job_child_id(&job, "ep-a")), 128);
    parent[128 - 5] = 'p';
    a = jf_job_child_id(&job, "ep-a");
    b = jf_job_child_id(&job, "ep-b");
    cr_assert_eq(strlen(a), 60 + 1 + 64);
    cr_assert_str_neq(a, b);
    memcpy(both, parent, 129);
    memcpy(both + 129, "ep-a", 4);
    SHA256((const unsigned char *)both, 133, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(want, sizeof(want), "%.60s/%s", parent, hex);
    cr_assert_str_eq(a, want);
}

Test(enqueue, the_runtime_publishes_under_the_parents_tenant, .init = enq_setup,
     .fini = enq_teardown)
{
    struct enq_seen    seen = { 0 };
    jf_job_hooks_t     hooks = { .enqueue = fake_enqueue, .enqueue_ctx = &seen };
    struct jf_job      job = { .id = "p1", .tenant = "acme", .arena = enq_arena, .hooks = &hooks };
    Jetfleet__V1__JobRecord noop = JETFLEET__V1__JOB_RECORD__INIT;   /* any message */
    const char        *id = NULL;

    cr_assert_eq(jf_job_enqueue(&job, "diag.noop", &noop.base, "k1", &id), JF_OK);
    cr_assert_eq(seen.calls, 1);
    cr_assert_str_eq(seen.tenant, "acme");
    cr_assert_str_eq(seen.type, "diag.noop");
    cr_assert_str_eq(seen.id, "p1/k1");
    cr_assert_str_eq(id, "p1/k1");

    cr_assert_eq(jf_job_enqueue(&job, "diag.noop", &noop.base, "bad key", NULL), JF_EINVAL);
    cr_assert_eq(jf_job_enqueue(&job, NULL, &noop.base, "k", NULL), JF_EINVAL);
    cr_assert_eq(jf_job_enqueue(&job, "diag.noop", NULL, "k", NULL), JF_EINVAL);
    cr_assert_eq(seen.calls, 1, "invalid calls never reach the runtime");

    job.hooks = NULL;
    cr_assert_eq(jf_job_enqueue(&job, "diag.noop", &noop.base, "k", NULL), JF_EUNSUPPORTED);
}
