/*
 * test_config.c - the JF_* schema: defaults, good and bad values, and the
 * promise that every bad variable is named.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "core/config.h"

struct kv {
    const char *name;
    const char *value;
};

static const char *table_get(const char *name, void *arg)
{
    for (const struct kv *p = arg; p->name != NULL; p++)
        if (strcmp(p->name, name) == 0)
            return p->value;
    return NULL;
}

struct reports {
    int  count;
    char last[512];
};

static void collect(const char *name, const char *msg, void *arg)
{
    struct reports *r = arg;
    (void)name;
    r->count++;
    strncpy(r->last, msg, sizeof(r->last) - 1);
}

Test(config, defaults_when_nothing_is_set)
{
    struct kv   env[] = { { NULL, NULL } };
    jf_config_t cfg;

    cr_assert_eq(jf_config_load(&cfg, table_get, env, NULL, NULL, NULL), JF_OK);
    cr_assert_str_eq(cfg.nats_url, "nats://127.0.0.1:4222");
    cr_assert_str_eq(cfg.pool, "default");
    cr_assert_str_eq(cfg.stream, "JOBS");
    cr_assert_eq(cfg.concurrency, 16);
    cr_assert_eq(cfg.shutdown_grace, 25000);
    cr_assert_eq(cfg.duplicate_window, 120000);
    cr_assert_eq(cfg.max_payload, 1048576);
    cr_assert_eq(cfg.diag_unsafe, false);
    cr_assert_str_eq(cfg.log_format, "json");
    jf_config_free(&cfg);
}

Test(config, parses_typed_values)
{
    struct kv env[] = {
        { "JF_CONCURRENCY", "64" }, { "JF_SHUTDOWN_GRACE", "1500ms" },
        { "JF_DUPLICATE_WINDOW", "10m" }, { "JF_MAX_PAYLOAD", "64KiB" },
        { "JF_DIAG_UNSAFE", "true" }, { "JF_LOG_LEVEL", "debug" },
        { "JF_POOL", "emails" }, { "JF_LEDGER_TTL", "2d" }, { NULL, NULL },
    };
    jf_config_t cfg;

    cr_assert_eq(jf_config_load(&cfg, table_get, env, NULL, NULL, NULL), JF_OK);
    cr_assert_eq(cfg.concurrency, 64);
    cr_assert_eq(cfg.shutdown_grace, 1500);
    cr_assert_eq(cfg.duplicate_window, 600000);
    cr_assert_eq(cfg.max_payload, 65536);
    cr_assert_eq(cfg.diag_unsafe, true);
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_str_eq(cfg.pool, "emails");
    cr_assert_eq(cfg.ledger_ttl, 2 * 86400000LL);
    jf_config_free(&cfg);
}

struct bad_var {
    char name[40];
    char value[40];
    char fragment[48];
};

ParameterizedTestParameters(config, rejects_bad_values)
{
    static struct bad_var cases[] = {
        { "JF_CONCURRENCY", "0", "out of range" },
        { "JF_CONCURRENCY", "5000", "out of range" },
        { "JF_CONCURRENCY", "ten", "not an integer" },
        { "JF_CONCURRENCY", "12abc", "not an integer" },
        { "JF_CONCURRENCY", "", "not an integer" },
        { "JF_SHUTDOWN_GRACE", "30", "not a duration" },
        { "JF_SHUTDOWN_GRACE", "-1s", "not a duration" },
        { "JF_SHUTDOWN_GRACE", "5 s", "not a duration" },
        { "JF_SHUTDOWN_GRACE", "2w", "not a duration" },
        { "JF_MAX_PAYLOAD", "1TB", "not a size" },
        { "JF_MAX_PAYLOAD", "inf", "not a size" },
        { "JF_MAX_PAYLOAD", "nan", "not a size" },
        { "JF_MAX_PAYLOAD", "0x100", "not a size" },
        { "JF_SHUTDOWN_GRACE", "1e3s", "not a duration" },
        { "JF_SHUTDOWN_GRACE", "1..5s", "not a duration" },
        { "JF_SHUTDOWN_GRACE", "infs", "not a duration" },
        { "JF_MAX_PAYLOAD", "1GiB", "out of range" },
        { "JF_DIAG_UNSAFE", "maybe", "not a boolean" },
        { "JF_LOG_LEVEL", "verbose", "not one of debug|info|warn|error" },
        { "JF_LOG_FORMAT", "xml", "not one of json|text" },
    };
    return cr_make_param_array(struct bad_var, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_var *c, config, rejects_bad_values)
{
    struct kv      env[] = { { c->name, c->value }, { NULL, NULL } };
    struct reports r = { 0 };
    jf_config_t    cfg;
    jf_err_t       err = { 0 };

    cr_assert_eq(jf_config_load(&cfg, table_get, env, collect, &r, &err), JF_ECONFIG,
                 "%s=%s", c->name, c->value);
    cr_assert_eq(r.count, 1);
    cr_assert(strncmp(r.last, c->name, strlen(c->name)) == 0, "report '%s' names no var", r.last);
    cr_assert(strstr(r.last, c->fragment) != NULL, "report '%s' lacks '%s'", r.last, c->fragment);
    cr_assert_str_eq(err.msg, r.last);
    jf_config_free(&cfg);
}

Test(config, reports_every_bad_variable)
{
    struct kv env[] = {
        { "JF_CONCURRENCY", "x" }, { "JF_SHUTDOWN_GRACE", "x" }, { "JF_LOG_LEVEL", "x" },
        { NULL, NULL },
    };
    struct reports r = { 0 };
    jf_config_t    cfg;

    cr_assert_eq(jf_config_load(&cfg, table_get, env, collect, &r, NULL), JF_ECONFIG);
    cr_assert_eq(r.count, 3);
    jf_config_free(&cfg);
}

Test(config, never_prints_a_secret)
{
    struct kv env[] = { { "JF_NATS_PASSWORD", "hunter2" }, { NULL, NULL } };
    jf_config_t cfg;
    char        buf[64];

    cr_assert_eq(jf_config_load(&cfg, table_get, env, NULL, NULL, NULL), JF_OK);
    cr_assert_str_eq(cfg.nats_password, "hunter2");
    cr_assert_str_eq(jf_config_format(&cfg, jf_config_var("JF_NATS_PASSWORD"), buf, sizeof(buf)),
                     "<redacted>");
    cr_assert_str_eq(jf_config_format(&cfg, jf_config_var("JF_NATS_TOKEN"), buf, sizeof(buf)), "");
    jf_config_free(&cfg);
}

Test(config, schema_rows_are_unique_and_described)
{
    size_t              n;
    const jf_cfg_var_t *s = jf_config_schema(&n);

    cr_assert_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        cr_assert(strncmp(s[i].name, "JF_", 3) == 0);
        cr_assert_gt(strlen(s[i].description), 10, "%s has no description", s[i].name);
        for (size_t j = i + 1; j < n; j++)
            cr_assert_str_neq(s[i].name, s[j].name);
    }
    cr_assert_null(jf_config_var("JF_NOPE"));
}

static jf_status_t load_and_validate(struct kv *env, struct reports *r)
{
    jf_config_t cfg;
    jf_status_t st;

    cr_assert_eq(jf_config_load(&cfg, table_get, env, collect, r, NULL), JF_OK);
    st = jf_config_validate(&cfg, collect, r, NULL);
    jf_config_free(&cfg);
    return st;
}

Test(config, validates_rules_across_variables)
{
    struct kv ok[] = { { NULL, NULL } };
    struct kv hb[] = { { "JF_PULL_HEARTBEAT", "10s" }, { "JF_PULL_EXPIRES", "15s" }, { NULL, NULL } };
    struct kv ttl[] = { { "JF_LEDGER_TTL", "1m" }, { "JF_DUPLICATE_WINDOW", "2m" }, { NULL, NULL } };
    struct kv names[] = { { "JF_STREAM", "JOBS.EU" }, { "JF_SUBJECT_PREFIX", "jobs..eu" },
                          { "JF_POOL", "Emails" }, { NULL, NULL } };
    struct kv auth[] = { { "JF_NATS_TOKEN", "t" }, { "JF_NATS_USER", "u" }, { NULL, NULL } };
    struct kv pw[] = { { "JF_NATS_PASSWORD", "p" }, { NULL, NULL } };
    struct reports r = { 0 };

    cr_assert_eq(load_and_validate(ok, &r), JF_OK);
    cr_assert_eq(load_and_validate(hb, &r), JF_ECONFIG);
    cr_assert(strstr(r.last, "JF_PULL_HEARTBEAT: must be less than half") != NULL, "%s", r.last);
    cr_assert_eq(load_and_validate(ttl, &r), JF_ECONFIG);
    cr_assert(strstr(r.last, "JF_LEDGER_TTL") != NULL, "%s", r.last);
    r.count = 0;
    cr_assert_eq(load_and_validate(names, &r), JF_ECONFIG);
    cr_assert_eq(r.count, 3);
    cr_assert_eq(load_and_validate(auth, &r), JF_ECONFIG);
    cr_assert(strstr(r.last, "at most one") != NULL, "%s", r.last);
    cr_assert_eq(load_and_validate(pw, &r), JF_ECONFIG);
    cr_assert(strstr(r.last, "JF_NATS_USER is not") != NULL, "%s", r.last);
}

Test(config, duration_and_size_parsers)
{
    int64_t v;

    cr_assert_eq(jf_parse_duration_ms("0", &v, NULL), JF_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(jf_parse_duration_ms("1.5s", &v, NULL), JF_OK);
    cr_assert_eq(v, 1500);
    cr_assert_eq(jf_parse_duration_ms("1h", &v, NULL), JF_OK);
    cr_assert_eq(v, 3600000);
    cr_assert_eq(jf_parse_size("1MiB", &v, NULL), JF_OK);
    cr_assert_eq(v, 1048576);
    cr_assert_eq(jf_parse_size("512", &v, NULL), JF_OK);
    cr_assert_eq(v, 512);
}

Test(config, one_region_keeps_the_plain_names)
{
    struct kv   env[] = { { NULL, NULL } };
    jf_config_t cfg;

    cr_assert_eq(jf_config_load(&cfg, table_get, env, NULL, NULL, NULL), JF_OK);
    cr_assert_not(cfg.names.regional);
    cr_assert_str_eq(cfg.names.jobs_stream, "JOBS");
    cr_assert_str_eq(cfg.names.jobs_prefix, "jobs");
    cr_assert_str_eq(cfg.names.dlq_stream, "DLQ");
    cr_assert_str_eq(cfg.names.dlq_prefix, "dlq");
    cr_assert_str_eq(cfg.names.audit_stream, "AUDIT");
    cr_assert_str_eq(cfg.names.telemetry_prefix, "telemetry.jobs");
    cr_assert_str_eq(cfg.names.ledger_bucket, "JF_LEDGER");
    jf_config_free(&cfg);
}

Test(config, a_region_gets_its_own_objects)
{
    struct kv   env[] = { { "JF_REGION", "eu-west" }, { "JF_STREAM", "WORK" },
                          { "JF_SUBJECT_PREFIX", "acme.jobs" }, { NULL, NULL } };
    jf_config_t cfg;
    jf_err_t    err = { 0 };

    cr_assert_eq(jf_config_load(&cfg, table_get, env, NULL, NULL, NULL), JF_OK);
    cr_assert_eq(jf_config_validate(&cfg, NULL, NULL, NULL), JF_OK);
    cr_assert(cfg.names.regional);
    cr_assert_str_eq(cfg.names.region, "eu-west");
    cr_assert_str_eq(cfg.names.jobs_stream, "WORK_eu-west");
    cr_assert_str_eq(cfg.names.jobs_prefix, "acme.jobs.eu-west");
    cr_assert_str_eq(cfg.names.dlq_stream, "DLQ_eu-west");
    cr_assert_str_eq(cfg.names.dlq_prefix, "dlq.eu-west");
    cr_assert_str_eq(cfg.names.audit_stream, "AUDIT_eu-west");
    cr_assert_str_eq(cfg.names.telemetry_prefix, "telemetry.jobs.eu-west");
    cr_assert_str_eq(cfg.names.ledger_bucket, "JF_LEDGER_eu-west");

    /* --region switches, and "local" switches back */
    cr_assert_eq(jf_config_set_region(&cfg, "us-east", &err), JF_OK);
    cr_assert_str_eq(cfg.names.jobs_stream, "WORK_us-east");
    cr_assert_eq(jf_config_set_region(&cfg, "local", &err), JF_OK);
    cr_assert_str_eq(cfg.names.jobs_stream, "WORK");
    cr_assert_str_eq(cfg.names.jobs_prefix, "acme.jobs");
    cr_assert_eq(jf_config_set_region(&cfg, "EU", &err), JF_EINVAL);
    cr_assert(strstr(err.msg, "[a-z0-9_-]") != NULL, "%s", err.msg);
    cr_assert_eq(jf_config_set_region(&cfg, "eu.west", &err), JF_EINVAL);
    cr_assert_eq(jf_config_set_region(&cfg, "", &err), JF_EINVAL);
    jf_config_free(&cfg);
}

Test(config, a_bad_region_is_refused)
{
    struct kv      dotted[] = { { "JF_REGION", "eu.west" }, { NULL, NULL } };
    struct kv      toolong[] = { { "JF_REGION", "abcdefghijklmnopqrstuvwxyz0123456" }, { NULL, NULL } };
    struct reports r = { 0 };

    cr_assert_eq(load_and_validate(dotted, &r), JF_ECONFIG);
    cr_assert(strstr(r.last, "JF_REGION") != NULL, "%s", r.last);
    cr_assert_eq(load_and_validate(toolong, &r), JF_ECONFIG);
}
