/*
 * module.h - the module contract.
 *
 * A module is one `const jf_module_t`, filled in with designated
 * initializers, and listed once in the composition root's module table
 * (src/app/modules.c). The runtime walks that table: it checks the ABI
 * version, refuses duplicate module names, job types and service contracts,
 * resolves every required contract, then calls init in dependency order and
 * shutdown in reverse.
 *
 *     static const jf_job_type_t diag_types[] = {
 *         { .action = "noop", .payload = &jetfleet__diag__v1__noop__descriptor,
 *           .retry = JF_RETRY_DEFAULT, .deadline_ms = 30000,
 *           .handler = diag_noop },
 *         { 0 }
 *     };
 *     const jf_module_t jf_module_diag = {
 *         .abi_version = JF_ABI_VERSION, .name = "diag",
 *         .job_types = diag_types,
 *     };
 */
#ifndef JETFLEET_MODULE_H
#define JETFLEET_MODULE_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <jetfleet/job.h>
#include <jetfleet/registry.h>
#include <jetfleet/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever jf_module_t, jf_job_type_t or a callback changes shape. */
#define JF_ABI_VERSION 2u

/* A handler runs one job. job is borrowed for the call; payload is the
 * decoded message of the job type's descriptor, owned by the runtime and
 * freed after the call. Handlers must be thread-safe: several jobs of the
 * same type run at once. */
typedef jf_result_t (*jf_handler_fn)(jf_job_t *job, const ProtobufCMessage *payload);

/* Retry policy: exponential with full jitter and a cap. The delay before
 * attempt n+1 is uniform in [0, min(max_delay_ms, base_delay_ms * multiplier^(n-1))],
 * raised to the handler's retry-after hint when that is larger. */
typedef struct jf_retry_policy {
    uint32_t max_attempts;   /* total runs, including the first; >= 1 */
    uint32_t base_delay_ms;
    uint32_t max_delay_ms;
    uint32_t multiplier;     /* growth per attempt, >= 1 */
} jf_retry_policy_t;

/* A sensible policy for most job types, usable in static initializers:
 * 5 attempts, delays up to 1 s, 2 s, 4 s, 8 s (full jitter), capped at 5 min. */
#define JF_RETRY_DEFAULT \
    { .max_attempts = 5, .base_delay_ms = 1000, .max_delay_ms = 300000, .multiplier = 2 }

/* Flags of a job type. */
#define JF_JOB_TYPE_UNSAFE  0x1u  /* runs only when JF_DIAG_UNSAFE=1 */

typedef struct jf_job_type {
    const char *action;     /* [a-z0-9_-]+; the type is "<module>.<action>" */
    const char *summary;    /* one line, for --help and docs */
    const ProtobufCMessageDescriptor *payload;  /* the payload message */
    jf_retry_policy_t retry;
    uint32_t    deadline_ms;   /* per-run deadline; 0 means the runtime default */
    unsigned    flags;         /* JF_JOB_TYPE_* */
    jf_handler_fn handler;
} jf_job_type_t;

/* A KV bucket a module keeps its own data in. `jetfleet provision`
 * creates it (file storage, JF_REPLICAS, no TTL); the module opens it from
 * init. The bucket's name is the value of a setting, so operators can
 * rename it per deployment. */
typedef struct jf_module_bucket {
    const char *setting;         /* the JF_* setting holding the bucket name */
    const char *description;
    uint32_t    max_value_size;  /* bytes; 0 for the server's limit */
    uint32_t    history;         /* revisions kept per key, 1..64; 0 means 1 */
} jf_module_bucket_t;

typedef struct jf_module_ctx jf_module_ctx_t;

/* The registry, to provide services from init or look them up. */
jf_registry_t *jf_module_registry(jf_module_ctx_t *mctx);

/* Store the module's state; it is handed to every job of the module via
 * jf_job_module_state(). Owned by the module, freed in shutdown. */
void jf_module_set_state(jf_module_ctx_t *mctx, void *state);
void *jf_module_state(const jf_module_ctx_t *mctx);

/* The value of a JF_* setting from the configuration schema, formatted as
 * text (durations in ms units like "30s", booleans "true"/"false"), or NULL
 * when name is not in the schema. Modules read configuration only this
 * way, so every setting stays declared once (docs/configuration.md). */
const char *jf_module_setting(const jf_module_ctx_t *mctx, const char *name);

/* Log on behalf of the module during init and shutdown. */
void jf_module_log(const jf_module_ctx_t *mctx, jf_log_level_t level,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct jf_module {
    unsigned            abi_version;  /* JF_ABI_VERSION */
    const char         *name;         /* [a-z0-9_-]+, unique */
    const char         *summary;
    const jf_job_type_t *job_types;   /* array ended by an entry whose action is NULL */
    const char *const  *provides;     /* contract names, NULL-terminated; may be NULL */
    const char *const  *requires;     /* contract names, NULL-terminated; may be NULL */
    const jf_module_bucket_t *buckets;  /* ended by an entry whose setting is NULL; may be NULL */
    /* Called once, after every required contract was provided. Provide the
     * module's services here. A non-OK status stops start-up. May be NULL. */
    jf_status_t (*init)(jf_module_ctx_t *mctx);
    /* Called once, in reverse init order, after the last job ended. May be NULL. */
    void (*shutdown)(jf_module_ctx_t *mctx);
} jf_module_t;

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_MODULE_H */
