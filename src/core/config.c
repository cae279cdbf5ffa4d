/*
 * config.c - validating JF_* variables against the schema.
 *
 * The schema table and the jf_config_t fields are both generated from
 * config_schema.def, so a variable cannot be read without being declared.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/config.h"
#include "shared/ids.h"

static const jf_cfg_var_t schema[] = {
#define X(NAME, field, TYPE, def, secret, min, max, choices, desc) \
    { #NAME, JF_CFG_##TYPE, def, secret, min, max, choices, desc,       \
      offsetof(jf_config_t, field) },
#include "core/config_schema.def"
#undef X
};

#define SCHEMA_LEN (sizeof(schema) / sizeof(schema[0]))

const jf_cfg_var_t *jf_config_schema(size_t *count)
{
    *count = SCHEMA_LEN;
    return schema;
}

const jf_cfg_var_t *jf_config_var(const char *name)
{
    for (size_t i = 0; i < SCHEMA_LEN; i++)
        if (strcmp(schema[i].name, name) == 0)
            return &schema[i];
    return NULL;
}

/* ---- value parsers ------------------------------------------------------- */

jf_status_t jf_parse_int(const char *s, int64_t *out, jf_err_t *err)
{
    char     *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || isspace((unsigned char)s[0]))
        return jf_err_set(err, JF_EINVAL, "'%.64s' is not an integer", s);
    *out = v;
    return JF_OK;
}

jf_status_t jf_parse_bool(const char *s, bool *out, jf_err_t *err)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return JF_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return JF_OK;
        }
    }
    return jf_err_set(err, JF_EINVAL, "'%.64s' is not a boolean (use true or false)", s);
}

/* "<number><unit>" with unit from table; returns the scaled value. */
static jf_status_t parse_scaled(const char *s, const char *const *units,
                                const int64_t *scale, size_t n, bool unit_required,
                                int64_t *out)
{
    char       *end;
    long double v;

    /* Plain decimal only: strtold would also take "inf", "nan" and hex. */
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '.' && isdigit((unsigned char)s[1])))
        return JF_EINVAL;
    errno = 0;
    v = strtold(s, &end);
    if (end != s + strspn(s, "0123456789.") || errno != 0)
        return JF_EINVAL;   /* exponents, "1..5" */
    if (*end == '\0') {
        if (unit_required && v != 0)
            return JF_EINVAL;
        *out = (int64_t)v;
        return JF_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(end, units[i]) == 0) {
            long double r = v * (long double)scale[i];
            if (r > (long double)INT64_MAX)
                return JF_EINVAL;
            *out = (int64_t)r;
            return JF_OK;
        }
    }
    return JF_EINVAL;
}

jf_status_t jf_parse_duration_ms(const char *s, int64_t *out, jf_err_t *err)
{
    static const char *const units[] = { "ms", "s", "m", "h", "d" };
    static const int64_t scale[] = { 1, 1000, 60000, 3600000, 86400000 };

    if (parse_scaled(s, units, scale, 5, true, out) != JF_OK)
        return jf_err_set(err, JF_EINVAL,
                          "'%.64s' is not a duration (examples: 250ms, 30s, 5m, 1h, 7d)", s);
    return JF_OK;
}

jf_status_t jf_parse_size(const char *s, int64_t *out, jf_err_t *err)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "KB", "MB", "GB" };
    static const int64_t scale[] = { 1, 1024, 1048576, 1073741824, 1000, 1000000,
                                     1000000000 };

    if (parse_scaled(s, units, scale, 7, false, out) != JF_OK)
        return jf_err_set(err, JF_EINVAL,
                          "'%.64s' is not a size (examples: 512, 64KiB, 1MiB)", s);
    return JF_OK;
}

static bool enum_has(const char *choices, const char *v)
{
    size_t      vlen = strlen(v);
    const char *p = choices;

    while (p != NULL && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t      len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncmp(p, v, len) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* ---- loading -------------------------------------------------------------- */

static const char *store(jf_config_t *cfg, const char *s)
{
    size_t len = strlen(s) + 1;
    char  *p;

    /* storage_ never moves once handed out: size it for the worst case up
     * front (every value is bounded by the environment's size). */
    if (cfg->storage_used_ + len > cfg->storage_size_)
        return NULL;
    p = cfg->storage_ + cfg->storage_used_;
    memcpy(p, s, len);
    cfg->storage_used_ += len;
    return p;
}

static const char *env_getter(const char *name, void *arg)
{
    (void)arg;
    return getenv(name);
}

static jf_status_t set_var(jf_config_t *cfg, const jf_cfg_var_t *v, const char *val,
                           jf_err_t *err)
{
    char       *field = (char *)cfg + v->offset;
    int64_t     n = 0;
    bool        b;
    const char *s;
    jf_status_t st = JF_OK;

    switch (v->type) {
    case JF_CFG_STRING:
    case JF_CFG_ENUM:
        if (v->type == JF_CFG_ENUM && !enum_has(v->choices, val))
            return jf_err_set(err, JF_EINVAL, "'%.64s' is not one of %s", val, v->choices);
        s = store(cfg, val);
        if (s == NULL)
            return jf_err_set(err, JF_ENOMEM, "out of configuration storage");
        memcpy(field, &s, sizeof(s));
        return JF_OK;
    case JF_CFG_BOOL:
        st = jf_parse_bool(val, &b, err);
        if (st == JF_OK)
            memcpy(field, &b, sizeof(b));
        return st;
    case JF_CFG_INT:
        st = jf_parse_int(val, &n, err);
        break;
    case JF_CFG_DURATION:
        st = jf_parse_duration_ms(val, &n, err);
        break;
    case JF_CFG_SIZE:
        st = jf_parse_size(val, &n, err);
        break;
    }
    if (st != JF_OK)
        return st;
    if (n < v->min || n > v->max)
        return jf_err_set(err, JF_EINVAL, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]%s",
                          n, v->min, v->max,
                          v->type == JF_CFG_DURATION ? " milliseconds" :
                          v->type == JF_CFG_SIZE ? " bytes" : "");
    memcpy(field, &n, sizeof(n));
    return JF_OK;
}

static bool region_ok(const char *r)
{
    size_t n = 0;

    for (const char *p = r; *p; p++, n++)
        if (n >= 32 || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                         *p == '-'))
            return false;
    return n > 0;
}

/* Derive cfg->names (truncating; jf_config_validate() refuses what does
 * not fit or is not a valid name). */
static void derive_names(jf_config_t *cfg, const char *region)
{
    jf_names_t *n = &cfg->names;
    bool        reg = region != NULL && strcmp(region, "local") != 0;

    memset(n, 0, sizeof(*n));
    n->regional = reg;
    strlcpy(n->region, region ? region : "local", sizeof(n->region));
    if (!reg) {
        strlcpy(n->jobs_stream, cfg->stream, sizeof(n->jobs_stream));
        strlcpy(n->jobs_prefix, cfg->subject_prefix, sizeof(n->jobs_prefix));
        strlcpy(n->dlq_stream, "DLQ", sizeof(n->dlq_stream));
        strlcpy(n->dlq_prefix, "dlq", sizeof(n->dlq_prefix));
        strlcpy(n->audit_stream, JF_AUDIT_GLOBAL, sizeof(n->audit_stream));
        strlcpy(n->telemetry_prefix, "telemetry.jobs", sizeof(n->telemetry_prefix));
        strlcpy(n->ledger_bucket, "JF_LEDGER", sizeof(n->ledger_bucket));
        return;
    }
    snprintf(n->jobs_stream, sizeof(n->jobs_stream), "%s_%s", cfg->stream, region);
    snprintf(n->jobs_prefix, sizeof(n->jobs_prefix), "%s.%s", cfg->subject_prefix, region);
    snprintf(n->dlq_stream, sizeof(n->dlq_stream), "DLQ_%s", region);
    snprintf(n->dlq_prefix, sizeof(n->dlq_prefix), "dlq.%s", region);
    snprintf(n->audit_stream, sizeof(n->audit_stream), "AUDIT_%s", region);
    snprintf(n->telemetry_prefix, sizeof(n->telemetry_prefix), "telemetry.jobs.%s", region);
    snprintf(n->ledger_bucket, sizeof(n->ledger_bucket), "JF_LEDGER_%s", region);
}

jf_status_t jf_config_set_region(jf_config_t *cfg, const char *region, jf_err_t *err)
{
    if (!region_ok(region))
        return jf_err_set(err, JF_EINVAL, "region '%.64s' is not a [a-z0-9_-] token of 1 to "
                          "32 characters", region);
    derive_names(cfg, region);
    return JF_OK;
}

jf_status_t jf_config_load(jf_config_t *cfg, jf_cfg_getter_fn get, void *get_arg,
                           jf_cfg_report_fn report, void *report_arg, jf_err_t *err)
{
    size_t      need = 0;
    jf_status_t result = JF_OK;

    memset(cfg, 0, sizeof(*cfg));
    if (get == NULL)
        get = env_getter;
    for (size_t i = 0; i < SCHEMA_LEN; i++) {
        const char *val = get(schema[i].name, get_arg);
        need += strlen(schema[i].def) + 1;
        if (val != NULL)
            need += strlen(val) + 1;
    }
    cfg->storage_ = malloc(need);
    if (cfg->storage_ == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory loading configuration");
    cfg->storage_size_ = need;

    for (size_t i = 0; i < SCHEMA_LEN; i++) {
        const jf_cfg_var_t *v = &schema[i];
        const char         *val = get(v->name, get_arg);
        jf_err_t            e = { 0 };

        /* Defaults are part of the schema and always valid. */
        if (set_var(cfg, v, v->def, &e) != JF_OK)
            abort();
        if (val == NULL)
            continue;
        if (set_var(cfg, v, val, &e) != JF_OK) {
            char line[sizeof(e.msg) + 64];
            snprintf(line, sizeof(line), "%s: %s", v->name,
                     v->secret ? "invalid value (not shown: secret)" : e.msg);
            if (report != NULL)
                report(v->name, line, report_arg);
            if (result == JF_OK)
                jf_err_set(err, JF_ECONFIG, "%s", line);
            result = JF_ECONFIG;
        }
    }
    derive_names(cfg, cfg->region);
    return result;
}

/* One or more [a-z0-9_-]+ tokens separated by dots. */
static bool prefix_ok(const char *s)
{
    size_t len = 0;

    for (; *s; s++) {
        if (*s == '.') {
            if (len == 0)
                return false;
            len = 0;
            continue;
        }
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
        len++;
    }
    return len > 0;
}

jf_status_t jf_config_validate(const jf_config_t *cfg, jf_cfg_report_fn report, void *arg,
                               jf_err_t *err)
{
    jf_status_t result = JF_OK;
    char        msg[256];

#define FAIL_VAR(NAME, ...)                                         \
    do {                                                            \
        snprintf(msg, sizeof(msg), NAME ": " __VA_ARGS__);          \
        if (report != NULL)                                         \
            report(NAME, msg, arg);                                 \
        if (result == JF_OK)                                        \
            jf_err_set(err, JF_ECONFIG, "%s", msg);                 \
        result = JF_ECONFIG;                                        \
    } while (0)

    if (cfg->pull_heartbeat * 2 >= cfg->pull_expires)
        FAIL_VAR("JF_PULL_HEARTBEAT", "must be less than half of JF_PULL_EXPIRES "
                 "(%" PRId64 " ms), so that a missed heartbeat is noticed before the pull "
                 "expires", cfg->pull_expires);
    if (cfg->ledger_ttl < cfg->duplicate_window)
        FAIL_VAR("JF_LEDGER_TTL", "must be at least JF_DUPLICATE_WINDOW (%" PRId64 " ms)",
                 cfg->duplicate_window);
    if (!prefix_ok(cfg->subject_prefix))
        FAIL_VAR("JF_SUBJECT_PREFIX", "'%.64s' is not one or more [a-z0-9_-] tokens "
                 "separated by dots", cfg->subject_prefix);
    if (!jf_js_name_ok(cfg->stream, 64))
        FAIL_VAR("JF_STREAM", "'%.64s' is not a valid stream name (1-64 printable "
                 "characters, none of . * > / \\ or space)", cfg->stream);
    if (!region_ok(cfg->region))
        FAIL_VAR("JF_REGION", "'%.64s' is not a [a-z0-9_-] token of 1 to 32 characters",
                 cfg->region);
    else if (cfg->names.regional && strlen(cfg->stream) + 1 + strlen(cfg->region) > 64)
        FAIL_VAR("JF_STREAM", "'%s_%s' (the stream of region %s) is longer than 64 characters",
                 cfg->stream, cfg->region, cfg->region);
    if (!prefix_ok(cfg->pool) || strchr(cfg->pool, '.') != NULL || strlen(cfg->pool) > 64)
        FAIL_VAR("JF_POOL", "'%.64s' is not a [a-z0-9_-] token of at most 64 characters",
                 cfg->pool);
    {
        int methods = (cfg->nats_creds[0] != '\0') + (cfg->nats_nkey[0] != '\0') +
                      (cfg->nats_user[0] != '\0') + (cfg->nats_token[0] != '\0');
        if (methods > 1)
            FAIL_VAR("JF_NATS_CREDS", "set at most one of JF_NATS_CREDS, JF_NATS_NKEY, "
                     "JF_NATS_USER and JF_NATS_TOKEN (%d are set)", methods);
    }
    if ((cfg->nats_nkey[0] == '\0') != (cfg->nats_nkey_seed_file[0] == '\0'))
        FAIL_VAR("JF_NATS_NKEY", "JF_NATS_NKEY and JF_NATS_NKEY_SEED_FILE must be set together");
    if ((cfg->nats_tls_cert[0] == '\0') != (cfg->nats_tls_key[0] == '\0'))
        FAIL_VAR("JF_NATS_TLS_CERT", "JF_NATS_TLS_CERT and JF_NATS_TLS_KEY must be set together");
    if (cfg->nats_password[0] != '\0' && cfg->nats_user[0] == '\0')
        FAIL_VAR("JF_NATS_PASSWORD", "is set but JF_NATS_USER is not");
#undef FAIL_VAR
    return result;
}

void jf_config_free(jf_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->storage_);
    cfg->storage_ = NULL;
}

const char *jf_config_format(const jf_config_t *cfg, const jf_cfg_var_t *v,
                             char *buf, size_t size)
{
    const char *field = (const char *)cfg + v->offset;
    const char *s;
    int64_t     n;
    bool        b;

    switch (v->type) {
    case JF_CFG_STRING:
    case JF_CFG_ENUM:
        memcpy(&s, field, sizeof(s));
        if (v->secret)
            strlcpy(buf, s && s[0] ? "<redacted>" : "", size);
        else
            strlcpy(buf, s ? s : "", size);
        break;
    case JF_CFG_BOOL:
        memcpy(&b, field, sizeof(b));
        strlcpy(buf, b ? "true" : "false", size);
        break;
    case JF_CFG_DURATION:
        memcpy(&n, field, sizeof(n));
        if (n != 0 && n % 86400000 == 0)
            snprintf(buf, size, "%" PRId64 "d", n / 86400000);
        else if (n != 0 && n % 3600000 == 0)
            snprintf(buf, size, "%" PRId64 "h", n / 3600000);
        else if (n != 0 && n % 60000 == 0)
            snprintf(buf, size, "%" PRId64 "m", n / 60000);
        else if (n != 0 && n % 1000 == 0)
            snprintf(buf, size, "%" PRId64 "s", n / 1000);
        else
            snprintf(buf, size, "%" PRId64 "ms", n);
        break;
    case JF_CFG_INT:
    case JF_CFG_SIZE:
        memcpy(&n, field, sizeof(n));
        snprintf(buf, size, "%" PRId64, n);
        break;
    }
    return buf;
}
