/*
 * registry_impl.h - the module table and service registry, as the runtime
 * drives them (the public half is include/jetfleet/registry.h).
 *
 * Start-up is two steps so that every problem is found before any module
 * runs code: jf_registry_add_modules() validates the whole table (ABI
 * version, names, duplicate job types and contracts, unmet requirements,
 * requirement cycles) and fixes the init order; jf_registry_init_modules()
 * then calls init in that order.
 */
#ifndef JF_CORE_REGISTRY_IMPL_H
#define JF_CORE_REGISTRY_IMPL_H

#include <stddef.h>

#include <jetfleet/module.h>
#include <jetfleet/registry.h>

#include "shared/err.h"

jf_status_t jf_registry_create(jf_registry_t **out);

/* Calls no module code. Accepts NULL. */
void jf_registry_destroy(jf_registry_t *reg);

/* Validate and adopt a table of n modules (borrowed; must outlive reg). */
jf_status_t jf_registry_add_modules(jf_registry_t *reg, const jf_module_t *const *table,
                                    size_t n, jf_err_t *err);

/* The configuration modules read through jf_module_setting(); borrowed,
 * must outlive the registry. Set before jf_registry_init_modules(). */
struct jf_config;
void jf_registry_set_config(jf_registry_t *reg, const struct jf_config *cfg);

/* The connection modules' KV adapters use (core/kv.h); borrowed, must
 * outlive the modules. NULL (the default) for commands that run no jobs. */
struct jf_nats;
void jf_registry_set_nats(jf_registry_t *reg, struct jf_nats *nc);
struct jf_nats *jf_registry_nats_of(const jf_module_ctx_t *mctx);

/* Call every init in dependency order. On failure, modules already
 * initialised are shut down again and err names the failing module. */
jf_status_t jf_registry_init_modules(jf_registry_t *reg, jf_err_t *err);

/* Call shutdown in reverse init order. Idempotent. */
void jf_registry_shutdown_modules(jf_registry_t *reg);

/* A registered job type by "<module>.<action>", with its module's state
 * and the module's view of the registry (what jf_job_registry() hands
 * its handlers: it reaches only the contracts the module declared). NULL
 * when unknown. Any ret_ may be NULL. */
const jf_job_type_t *jf_registry_find_type(const jf_registry_t *reg, const char *type,
                                           const jf_module_t **ret_module,
                                           void **ret_module_state,
                                           const jf_registry_t **ret_view);

/* Visit every job type, in table order. */
typedef void (*jf_registry_type_fn)(const jf_module_t *mod, const jf_job_type_t *type,
                                    void *arg);
void jf_registry_each_type(const jf_registry_t *reg, jf_registry_type_fn fn, void *arg);

/* Visit every requirement as (requiring module, contract, providing module). */
typedef void (*jf_registry_dep_fn)(const char *module, const char *contract,
                                   const char *provider, void *arg);
void jf_registry_each_dep(const jf_registry_t *reg, jf_registry_dep_fn fn, void *arg);

/* The modules in init order. */
size_t jf_registry_modules(const jf_registry_t *reg, const jf_module_t **out, size_t max);

#endif /* JF_CORE_REGISTRY_IMPL_H */
