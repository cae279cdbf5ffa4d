/*
 * modules.c - the composition root.
 *
 * Adding a module means adding its contract.h include and one line to
 * jf_app_modules[]; see docs/architecture/11 for the whole procedure.
 */
#include "app/modules.h"
#include "core/registry_impl.h"
#include "modules/diag/contract.h"
#include "modules/notifications/contract.h"
#include "modules/subscriptions/contract.h"
#include "modules/webhooks/contract.h"

const jf_module_t *const jf_app_modules[] = {
    &jf_module_diag,
    &jf_module_subscriptions,
    &jf_module_webhooks,
    &jf_module_notifications,
    NULL,
};

jf_status_t jf_app_registry(jf_registry_t **out, jf_err_t *err)
{
    jf_registry_t *reg = NULL;
    size_t         n = 0;
    jf_status_t    st;

    while (jf_app_modules[n] != NULL)
        n++;
    st = jf_registry_create(&reg);
    if (st != JF_OK)
        return jf_err_set(err, st, "creating the registry: %s", jf_status_str(st));
    st = jf_registry_add_modules(reg, jf_app_modules, n, err);
    if (st != JF_OK) {
        jf_registry_destroy(reg);
        return st;
    }
    *out = reg;
    return JF_OK;
}

static void max_attempts_cb(const jf_module_t *mod, const jf_job_type_t *type, void *arg)
{
    uint32_t *max = arg;
    (void)mod;
    if (type->retry.max_attempts > *max)
        *max = type->retry.max_attempts;
}

uint32_t jf_app_max_attempts(const jf_registry_t *reg)
{
    uint32_t max = 1;

    jf_registry_each_type(reg, max_attempts_cb, &max);
    return max;
}
