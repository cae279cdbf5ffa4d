/*
 * modules.h - the composition root: the one static table of modules, and
 * the registry built from it.
 */
#ifndef JF_APP_MODULES_H
#define JF_APP_MODULES_H

#include <stddef.h>

#include <jetfleet/module.h>

#include "shared/err.h"

/* The module table, NULL-terminated. */
extern const jf_module_t *const jf_app_modules[];

/* Create a registry holding every module of the table, validated (no
 * module code runs). The caller destroys it with jf_registry_destroy(). */
jf_status_t jf_app_registry(jf_registry_t **out, jf_err_t *err);

/* The largest max_attempts over every job type: consumer MaxDeliver is
 * this plus a margin (docs/reliability.md, "Poison pills"). */
uint32_t jf_app_max_attempts(const jf_registry_t *reg);

#endif /* JF_APP_MODULES_H */
