/*
 * config.h - the configuration schema and the effective configuration.
 *
 * Every JF_* variable is declared once, in config_schema.def, with its type,
 * default, secrecy and description. jf_config_load() validates the
 * environment against it and fills a jf_config_t; nothing else in the
 * program reads JF_* variables.
 */
#ifndef JF_CORE_CONFIG_H
#define JF_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/err.h"

typedef enum {
    JF_CFG_STRING,
    JF_CFG_INT,
    JF_CFG_BOOL,
    JF_CFG_DURATION,
    JF_CFG_SIZE,
    JF_CFG_ENUM,
} jf_cfg_type_t;

typedef struct jf_cfg_var {
    const char   *name;
    jf_cfg_type_t type;
    const char   *def;
    bool          secret;
    int64_t       min, max;
    const char   *choices;      /* ENUM only: "a|b|c" */
    const char   *description;
    size_t        offset;       /* of the field in jf_config_t */
} jf_cfg_var_t;

/* One field per schema row. STRING and ENUM fields point into storage
 * owned by the config; INT, DURATION (ms) and SIZE (bytes) are int64_t. */
#define JF_CFG_FIELD_STRING   const char *
#define JF_CFG_FIELD_ENUM     const char *
#define JF_CFG_FIELD_INT      int64_t
#define JF_CFG_FIELD_DURATION int64_t
#define JF_CFG_FIELD_SIZE     int64_t
#define JF_CFG_FIELD_BOOL     bool

/* The JetStream objects and subjects a deployment uses, derived from
 * JF_STREAM, JF_SUBJECT_PREFIX and JF_REGION (docs/deployment.md,
 * ADR 0010). With JF_REGION=local (the default) a deployment is one
 * region and the names are the plain ones; any other region R gets its own
 * objects, so that several regions share one JetStream domain:
 *
 *                     local             region R
 *   jobs_stream       JOBS              JOBS_R
 *   jobs_prefix       jobs              jobs.R
 *   dlq_stream        DLQ               DLQ_R
 *   dlq_prefix        dlq               dlq.R
 *   audit_stream      AUDIT             AUDIT_R   (sourced by the global AUDIT)
 *   telemetry_prefix  telemetry.jobs    telemetry.jobs.R
 *   ledger_bucket     JF_LEDGER         JF_LEDGER_R
 */
#define JF_AUDIT_GLOBAL "AUDIT"

typedef struct jf_names {
    bool regional;              /* JF_REGION is not "local" */
    char region[33];
    char jobs_stream[65];
    char jobs_prefix[192];
    char dlq_stream[65];
    char dlq_prefix[48];
    char audit_stream[65];
    char telemetry_prefix[64];
    char ledger_bucket[65];
} jf_names_t;

typedef struct jf_config {
#define X(NAME, field, TYPE, def, secret, min, max, choices, desc) \
    JF_CFG_FIELD_##TYPE field;
#include "core/config_schema.def"
#undef X
    jf_names_t names;   /* derived by jf_config_load(); see jf_config_set_region() */
    char *storage_;   /* private: copies of string values */
    size_t storage_used_, storage_size_;
} jf_config_t;

/* Where values come from: getenv in production, a table in tests. */
typedef const char *(*jf_cfg_getter_fn)(const char *name, void *arg);

/* Called once per invalid variable, with a sentence naming it. */
typedef void (*jf_cfg_report_fn)(const char *name, const char *msg, void *arg);

/* The schema rows and their count. */
const jf_cfg_var_t *jf_config_schema(size_t *count);

/* Look a variable up by name; NULL when it is not in the schema. */
const jf_cfg_var_t *jf_config_var(const char *name);

/* Fill cfg from the getter (NULL means getenv). Every invalid variable is
 * reported through report (may be NULL); the first one is also recorded in
 * err. Returns JF_ECONFIG when any was invalid; cfg then must still be
 * released with jf_config_free(). */
jf_status_t jf_config_load(jf_config_t *cfg, jf_cfg_getter_fn get, void *get_arg,
                           jf_cfg_report_fn report, void *report_arg, jf_err_t *err);

/* Rules that involve several variables, or a variable's syntax beyond its
 * type (names, tokens). Call after a successful jf_config_load(); every
 * violation is reported and the first recorded in err. JF_ECONFIG when
 * any rule is broken. */
jf_status_t jf_config_validate(const jf_config_t *cfg, jf_cfg_report_fn report, void *arg,
                               jf_err_t *err);

void jf_config_free(jf_config_t *cfg);

/* Switch cfg to region (as --region does) and derive cfg->names again.
 * JF_EINVAL when region is not a [a-z0-9_-] token of 1 to 32 characters. */
jf_status_t jf_config_set_region(jf_config_t *cfg, const char *region, jf_err_t *err);

/* The value of var in cfg, formatted for display into buf. Secrets show as
 * "<redacted>" when set and "" when unset. */
const char *jf_config_format(const jf_config_t *cfg, const jf_cfg_var_t *var,
                             char *buf, size_t size);

/* Parsers, exposed for tests and for command-line flags. */
jf_status_t jf_parse_duration_ms(const char *s, int64_t *out, jf_err_t *err);
jf_status_t jf_parse_size(const char *s, int64_t *out, jf_err_t *err);
jf_status_t jf_parse_bool(const char *s, bool *out, jf_err_t *err);
jf_status_t jf_parse_int(const char *s, int64_t *out, jf_err_t *err);

#endif /* JF_CORE_CONFIG_H */
