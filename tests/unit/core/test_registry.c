/*
 * test_registry.c - the module table and service registry: duplicates,
 * unmet requirements, cycles, init order and rollback.
 */
#include <string.h>

#include <criterion/criterion.h>

#include <jetfleet/jetfleet.h>
#include <jetfleet/v1/ledger.pb-c.h>

#include "core/registry_impl.h"

static jf_result_t handler(jf_job_t *job, const ProtobufCMessage *p)
{
    (void)job;
    (void)p;
    return jf_ok();
}

static const jf_job_type_t types_a[] = {
    { .action = "run", .payload = &jetfleet__v1__job_record__descriptor,
      .retry = JF_RETRY_DEFAULT, .handler = handler },
    { 0 },
};

/* ---- a service contract, as a module's contract.h would declare it ---- */
typedef struct greeter_v1 {
    int (*answer)(void *self);
} greeter_v1_t;

static int answer42(void *self)
{
    (void)self;
    return 42;
}

static const greeter_v1_t greeter_impl = { .answer = answer42 };
static char               init_log[64];

static jf_status_t provider_init(jf_module_ctx_t *m)
{
    jf_service_t svc = { .vtable = &greeter_impl, .instance = NULL };
    strcat(init_log, "p");
    return jf_registry_provide(jf_module_registry(m), "greeter.v1", &svc);
}

static jf_status_t consumer_init(jf_module_ctx_t *m)
{
    jf_service_t svc;
    strcat(init_log, "c");
    /* A module may not provide what it did not declare. */
    cr_assert_eq(jf_registry_provide(jf_module_registry(m), "other.v1",
                                     &(jf_service_t){ .vtable = &greeter_impl }), JF_EDENIED);
    cr_assert_eq(jf_registry_get(jf_module_registry(m), "greeter.v1", &svc), JF_OK);
    cr_assert_eq(((const greeter_v1_t *)svc.vtable)->answer(svc.instance), 42);
    jf_module_set_state(m, (void *)"state");
    return JF_OK;
}

static void consumer_shutdown(jf_module_ctx_t *m)
{
    (void)m;
    strcat(init_log, "C");
}

static void provider_shutdown(jf_module_ctx_t *m)
{
    (void)m;
    strcat(init_log, "P");
}

static const char *const greeter_list[] = { "greeter.v1", NULL };

static const jf_module_t provider = {
    .abi_version = JF_ABI_VERSION, .name = "provider", .provides = greeter_list,
    .init = provider_init, .shutdown = provider_shutdown,
};
static const jf_module_t consumer = {
    .abi_version = JF_ABI_VERSION, .name = "consumer", .job_types = types_a,
    .requires = greeter_list, .init = consumer_init, .shutdown = consumer_shutdown,
};

static jf_status_t add(const jf_module_t *const *table, size_t n, jf_err_t *err,
                       jf_registry_t **out)
{
    jf_registry_t *reg;
    jf_status_t    st;

    cr_assert_eq(jf_registry_create(&reg), JF_OK);
    st = jf_registry_add_modules(reg, table, n, err);
    if (out != NULL && st == JF_OK)
        *out = reg;
    else
        jf_registry_destroy(reg);
    return st;
}

Test(registry, inits_providers_first_and_shuts_down_in_reverse)
{
    /* consumer listed first, yet provider must be initialised first */
    const jf_module_t *table[] = { &consumer, &provider };
    jf_registry_t     *reg = NULL;
    jf_err_t           err = { 0 };
    void              *state = NULL;

    init_log[0] = '\0';
    cr_assert_eq(add(table, 2, &err, &reg), JF_OK, "%s", err.msg);
    cr_assert_eq(jf_registry_init_modules(reg, &err), JF_OK, "%s", err.msg);
    cr_assert_str_eq(init_log, "pc");
    cr_assert_not_null(jf_registry_find_type(reg, "consumer.run", NULL, &state, NULL));
    cr_assert_str_eq((const char *)state, "state");
    cr_assert_null(jf_registry_find_type(reg, "consumer.nope", NULL, NULL, NULL));
    jf_registry_shutdown_modules(reg);
    cr_assert_str_eq(init_log, "pcCP");
    jf_registry_destroy(reg);
}

Test(registry, refuses_an_unmet_requirement)
{
    const jf_module_t *table[] = { &consumer };
    jf_err_t           err = { 0 };

    cr_assert_eq(add(table, 1, &err, NULL), JF_ENOTFOUND);
    cr_assert(strstr(err.msg, "requires service contract 'greeter.v1'") != NULL, "%s", err.msg);
}

Test(registry, refuses_a_duplicate_module_name)
{
    const jf_module_t *table[] = { &provider, &provider };
    jf_err_t           err = { 0 };

    cr_assert_eq(add(table, 2, &err, NULL), JF_EEXIST);
    cr_assert(strstr(err.msg, "listed twice") != NULL, "%s", err.msg);
}

Test(registry, refuses_a_contract_provided_twice)
{
    jf_module_t twin = provider;
    const jf_module_t *table[2] = { &provider, &twin };
    jf_err_t    err = { 0 };

    twin.name = "twin";
    cr_assert_eq(add(table, 2, &err, NULL), JF_EEXIST);
    cr_assert(strstr(err.msg, "'greeter.v1' is provided by both") != NULL, "%s", err.msg);
}

Test(registry, refuses_a_duplicate_job_type)
{
    static const jf_job_type_t dup[] = {
        { .action = "run", .payload = &jetfleet__v1__job_record__descriptor,
          .retry = JF_RETRY_DEFAULT, .handler = handler },
        { .action = "run", .payload = &jetfleet__v1__job_record__descriptor,
          .retry = JF_RETRY_DEFAULT, .handler = handler },
        { 0 },
    };
    jf_module_t m = { .abi_version = JF_ABI_VERSION, .name = "dup", .job_types = dup };
    const jf_module_t *table[] = { &m };
    jf_err_t err = { 0 };

    cr_assert_eq(add(table, 1, &err, NULL), JF_EEXIST);
    cr_assert(strstr(err.msg, "'dup.run' is declared twice") != NULL, "%s", err.msg);
}

Test(registry, refuses_a_requirement_cycle)
{
    static const char *const a_list[] = { "a.v1", NULL };
    static const char *const b_list[] = { "b.v1", NULL };
    jf_module_t a = { .abi_version = JF_ABI_VERSION, .name = "a", .provides = a_list,
                      .requires = b_list };
    jf_module_t b = { .abi_version = JF_ABI_VERSION, .name = "b", .provides = b_list,
                      .requires = a_list };
    const jf_module_t *table[] = { &a, &b };
    jf_err_t err = { 0 };

    cr_assert_eq(add(table, 2, &err, NULL), JF_EINVAL);
    cr_assert(strstr(err.msg, "cycle") != NULL, "%s", err.msg);
}

Test(registry, refuses_a_wrong_abi_and_bad_names)
{
    jf_module_t old = { .abi_version = 0, .name = "old" };
    jf_module_t bad = { .abi_version = JF_ABI_VERSION, .name = "Bad Name" };
    const jf_module_t *t1[] = { &old };
    const jf_module_t *t2[] = { &bad };
    jf_err_t err = { 0 };

    cr_assert_eq(add(t1, 1, &err, NULL), JF_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "ABI") != NULL);
    cr_assert_eq(add(t2, 1, &err, NULL), JF_EINVAL);
}

Test(registry, refuses_an_invalid_retry_policy)
{
    static const jf_job_type_t bad[] = {
        { .action = "run", .payload = &jetfleet__v1__job_record__descriptor,
          .retry = { .max_attempts = 0 }, .handler = handler },
        { 0 },
    };
    jf_module_t m = { .abi_version = JF_ABI_VERSION, .name = "m", .job_types = bad };
    const jf_module_t *table[] = { &m };
    jf_err_t err = { 0 };

    cr_assert_eq(add(table, 1, &err, NULL), JF_EINVAL);
    cr_assert(strstr(err.msg, "retry policy") != NULL, "%s", err.msg);
}

static jf_status_t failing_init(jf_module_ctx_t *m)
{
    (void)m;
    strcat(init_log, "f");
    return JF_EUNAVAILABLE;
}

Test(registry, a_failing_init_rolls_back_what_started)
{
    jf_module_t f = { .abi_version = JF_ABI_VERSION, .name = "failing", .requires = greeter_list,
                      .init = failing_init };
    const jf_module_t *table[] = { &provider, &f };
    jf_registry_t *reg = NULL;
    jf_err_t err = { 0 };

    init_log[0] = '\0';
    cr_assert_eq(add(table, 2, &err, &reg), JF_OK);
    cr_assert_eq(jf_registry_init_modules(reg, &err), JF_EUNAVAILABLE);
    cr_assert(strstr(err.msg, "'failing' failed to initialise") != NULL, "%s", err.msg);
    cr_assert_str_eq(init_log, "pfP");
    jf_registry_destroy(reg);
}

static jf_status_t lazy_init(jf_module_ctx_t *m)
{
    (void)m;
    return JF_OK;
}

Test(registry, a_declared_contract_must_be_provided)
{
    jf_module_t lazy = { .abi_version = JF_ABI_VERSION, .name = "lazy", .provides = greeter_list,
                         .init = lazy_init };
    const jf_module_t *table[] = { &lazy };
    jf_registry_t *reg = NULL;
    jf_err_t err = { 0 };

    cr_assert_eq(add(table, 1, &err, &reg), JF_OK);
    cr_assert_eq(jf_registry_init_modules(reg, &err), JF_ENOTFOUND);
    cr_assert(strstr(err.msg, "did not provide it") != NULL, "%s", err.msg);
    jf_registry_destroy(reg);
}

static jf_status_t sneaky_init(jf_module_ctx_t *m)
{
    jf_service_t svc = { 0 };
    /* greeter.v1 exists, but this module never declared it. */
    return jf_registry_get(jf_module_registry(m), "greeter.v1", &svc) == JF_EDENIED ? JF_OK
                                                                                    : JF_EINVAL;
}

Test(registry, a_module_reaches_only_the_contracts_it_declared)
{
    jf_module_t sneaky = { .abi_version = JF_ABI_VERSION, .name = "sneaky", .job_types = types_a,
                           .init = sneaky_init };
    const jf_module_t   *table[] = { &provider, &sneaky };
    jf_registry_t       *reg = NULL;
    const jf_registry_t *view = NULL;
    jf_service_t         svc;
    jf_err_t             err = { 0 };

    cr_assert_eq(add(table, 2, &err, &reg), JF_OK, "%s", err.msg);
    cr_assert_eq(jf_registry_init_modules(reg, &err), JF_OK, "%s", err.msg);
    /* the handlers' view is the module's too */
    cr_assert_not_null(jf_registry_find_type(reg, "sneaky.run", NULL, NULL, &view));
    cr_assert_eq(jf_registry_get(view, "greeter.v1", &svc), JF_EDENIED);
    /* the runtime's own view sees everything */
    cr_assert_eq(jf_registry_get(reg, "greeter.v1", &svc), JF_OK);
    jf_registry_shutdown_modules(reg);
    jf_registry_destroy(reg);
}
