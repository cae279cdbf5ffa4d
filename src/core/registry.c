/*
 * registry.c - module table validation, init ordering and the service
 * registry (dependency injection by contract name).
 *
 * Like redis' command table, the registry refuses duplicates outright; like
 * nginx's module list, the table is static and walked in a fixed order.
 * Sizes are small (tens of modules), so plain arrays and linear scans keep
 * the code obvious; lookups on the job path go through find_type only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/registry_impl.h"
#include "shared/ids.h"

#define MAX_MODULES 64
#define MAX_SERVICES 256
#define MAX_TYPES 1024

/* What one module sees of the registry: the root, and who is asking, so
 * that a module reaches only the contracts it declared (docs/architecture/layer-map.md). The
 * runtime holds the root view, whose owner is NULL. */
struct jf_registry {
    struct reg_root   *r;
    const jf_module_t *owner;
};

struct jf_module_ctx {
    struct jf_registry view;    /* this module's view of the registry */
    const jf_module_t *mod;
    void              *state;
    bool               initialised;
    char               setting[512];   /* jf_module_setting()'s buffer */
};

struct service {
    const char        *name;
    const jf_module_t *provider;
    jf_service_t       svc;
};

struct type_entry {
    char                 name[JF_TYPE_MAX + 1];
    const jf_job_type_t *type;
    struct jf_module_ctx *mctx;
};

struct reg_root {
    struct jf_registry   self;                /* the runtime's view: owner NULL */
    struct jf_module_ctx mods[MAX_MODULES];   /* in init order */
    size_t               nmods;
    struct service       services[MAX_SERVICES];
    size_t               nservices;
    struct type_entry   *types;
    size_t               ntypes;
    const jf_module_t   *initialising;        /* may provide during its init */
    const jf_config_t   *cfg;
    struct jf_nats      *nc;                  /* lent to modules' KV adapters */
};

jf_status_t jf_registry_create(jf_registry_t **out)
{
    struct reg_root *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return JF_ENOMEM;
    r->self.r = r;
    r->self.owner = NULL;
    *out = &r->self;
    return JF_OK;
}

void jf_registry_destroy(jf_registry_t *reg)
{
    if (reg == NULL)
        return;
    free(reg->r->types);
    free(reg->r);
}

/* ---- validation --------------------------------------------------------------- */

static bool list_has(const char *const *list, const char *name)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* The module of the table providing contract, or NULL. */
static const jf_module_t *provider_of(const jf_module_t *const *table, size_t n,
                                      const char *contract)
{
    for (size_t i = 0; i < n; i++)
        if (list_has(table[i]->provides, contract))
            return table[i];
    return NULL;
}

static jf_status_t check_module(const jf_module_t *m, jf_err_t *err)
{
    jf_status_t st;

    if (m->abi_version != JF_ABI_VERSION)
        return jf_err_set(err, JF_EUNSUPPORTED, "module '%s' was built for module ABI %u, "
                          "this runtime has ABI %u", m->name ? m->name : "?", m->abi_version,
                          JF_ABI_VERSION);
    if (m->name == NULL)
        return jf_err_set(err, JF_EINVAL, "a module has no name");
    st = jf_token_check(m->name, strlen(m->name), JF_TOKEN_MAX, "module name", err);
    if (st != JF_OK)
        return jf_err_wrap(err, "module '%s'", m->name);
    for (const jf_job_type_t *t = m->job_types; t != NULL && t->action != NULL; t++) {
        st = jf_token_check(t->action, strlen(t->action), JF_TOKEN_MAX, "action", err);
        if (st != JF_OK)
            return jf_err_wrap(err, "module '%s'", m->name);
        if (t->handler == NULL || t->payload == NULL)
            return jf_err_set(err, JF_EINVAL, "job type %s.%s has no handler or no payload "
                              "descriptor", m->name, t->action);
        if (t->retry.max_attempts < 1 || t->retry.multiplier < 1 ||
            t->retry.base_delay_ms > t->retry.max_delay_ms)
            return jf_err_set(err, JF_EINVAL, "job type %s.%s has an invalid retry policy "
                              "(need max_attempts >= 1, multiplier >= 1, base <= max delay)",
                              m->name, t->action);
    }
    return JF_OK;
}

jf_status_t jf_registry_add_modules(jf_registry_t *reg, const jf_module_t *const *table,
                                    size_t n, jf_err_t *err)
{
    bool        placed[MAX_MODULES] = { false };
    size_t      ntypes = 0;
    jf_status_t st;

    if (reg->r->nmods != 0)
        return jf_err_set(err, JF_ESTATE, "modules were already added");
    if (n > MAX_MODULES)
        return jf_err_set(err, JF_EINVAL, "too many modules (%zu, limit %d)", n, MAX_MODULES);

    for (size_t i = 0; i < n; i++) {
        const jf_module_t *m = table[i];

        st = check_module(m, err);
        if (st != JF_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(table[j]->name, m->name) == 0)
                return jf_err_set(err, JF_EEXIST, "module '%s' is listed twice", m->name);
        for (const char *const *p = m->provides; p != NULL && *p != NULL; p++) {
            for (size_t j = 0; j < i; j++)
                if (list_has(table[j]->provides, *p))
                    return jf_err_set(err, JF_EEXIST, "service contract '%s' is provided by "
                                      "both '%s' and '%s'", *p, table[j]->name, m->name);
            for (const char *const *q = m->provides; q != p; q++)
                if (strcmp(*q, *p) == 0)
                    return jf_err_set(err, JF_EEXIST, "module '%s' lists contract '%s' twice",
                                      m->name, *p);
        }
        for (const jf_job_type_t *t = m->job_types; t != NULL && t->action != NULL; t++)
            ntypes++;
    }
    for (size_t i = 0; i < n; i++)
        for (const char *const *r = table[i]->requires; r != NULL && *r != NULL; r++) {
            const jf_module_t *p = provider_of(table, n, *r);
            if (p == NULL)
                return jf_err_set(err, JF_ENOTFOUND, "module '%s' requires service contract "
                                  "'%s', which no module provides", table[i]->name, *r);
            if (p == table[i])
                return jf_err_set(err, JF_EINVAL, "module '%s' requires its own contract '%s'",
                                  table[i]->name, *r);
        }

    /* Init order: repeatedly place a module whose providers are all placed
     * (Kahn's algorithm). If none can be placed, the rest form a cycle. */
    while (reg->r->nmods < n) {
        bool progress = false;
        for (size_t i = 0; i < n; i++) {
            bool ready = !placed[i];
            for (const char *const *r = table[i]->requires; ready && r && *r; r++) {
                const jf_module_t *p = provider_of(table, n, *r);
                for (size_t j = 0; j < n; j++)
                    if (table[j] == p && !placed[j])
                        ready = false;
            }
            if (!ready)
                continue;
            placed[i] = true;
            reg->r->mods[reg->r->nmods].view.r = reg->r;
            reg->r->mods[reg->r->nmods].view.owner = table[i];
            reg->r->mods[reg->r->nmods].mod = table[i];
            reg->r->nmods++;
            progress = true;
        }
        if (!progress) {
            for (size_t i = 0; i < n; i++)
                if (!placed[i]) {
                    reg->r->nmods = 0;
                    return jf_err_set(err, JF_EINVAL, "service requirements form a cycle "
                                      "through module '%s'", table[i]->name);
                }
        }
    }

    if (ntypes > MAX_TYPES) {
        reg->r->nmods = 0;
        return jf_err_set(err, JF_EINVAL, "too many job types (%zu)", ntypes);
    }
    reg->r->types = calloc(ntypes ? ntypes : 1, sizeof(*reg->r->types));
    if (reg->r->types == NULL) {
        reg->r->nmods = 0;
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < reg->r->nmods; i++) {
        const jf_module_t *m = reg->r->mods[i].mod;
        for (const jf_job_type_t *t = m->job_types; t != NULL && t->action != NULL; t++) {
            struct type_entry *e = &reg->r->types[reg->r->ntypes];
            snprintf(e->name, sizeof(e->name), "%s.%s", m->name, t->action);
            for (size_t k = 0; k < reg->r->ntypes; k++)
                if (strcmp(reg->r->types[k].name, e->name) == 0) {
                    reg->r->nmods = 0;
                    reg->r->ntypes = 0;
                    return jf_err_set(err, JF_EEXIST, "job type '%s' is declared twice",
                                      e->name);
                }
            e->type = t;
            e->mctx = &reg->r->mods[i];
            reg->r->ntypes++;
        }
    }
    return JF_OK;
}

/* ---- init and shutdown ------------------------------------------------------------ */

jf_status_t jf_registry_init_modules(jf_registry_t *reg, jf_err_t *err)
{
    for (size_t i = 0; i < reg->r->nmods; i++) {
        struct jf_module_ctx *mc = &reg->r->mods[i];
        const jf_module_t    *m = mc->mod;
        jf_status_t           st = JF_OK;

        if (m->init != NULL) {
            reg->r->initialising = m;
            st = m->init(mc);
            reg->r->initialising = NULL;
        }
        if (st != JF_OK) {
            jf_registry_shutdown_modules(reg);
            return jf_err_set(err, st, "module '%s' failed to initialise: %s", m->name,
                              jf_status_str(st));
        }
        mc->initialised = true;
        for (const char *const *p = m->provides; p != NULL && *p != NULL; p++) {
            jf_service_t svc;
            if (jf_registry_get(reg, *p, &svc) != JF_OK) {
                jf_registry_shutdown_modules(reg);
                return jf_err_set(err, JF_ENOTFOUND, "module '%s' declares contract '%s' "
                                  "but did not provide it during init", m->name, *p);
            }
        }
    }
    return JF_OK;
}

void jf_registry_shutdown_modules(jf_registry_t *reg)
{
    for (size_t i = reg->r->nmods; i-- > 0;) {
        struct jf_module_ctx *mc = &reg->r->mods[i];
        if (!mc->initialised)
            continue;
        if (mc->mod->shutdown != NULL)
            mc->mod->shutdown(mc);
        mc->initialised = false;
    }
    reg->r->nservices = 0;
}

/* ---- services ------------------------------------------------------------------------ */

jf_status_t jf_registry_provide(jf_registry_t *reg, const char *name, const jf_service_t *svc)
{
    if (reg == NULL || name == NULL || svc == NULL || svc->vtable == NULL)
        return JF_EINVAL;
    /* Only the module being initialised, through its own view (or the
     * runtime's), and only a contract it declared. */
    if (reg->r->initialising == NULL || !list_has(reg->r->initialising->provides, name) ||
        (reg->owner != NULL && reg->owner != reg->r->initialising))
        return JF_EDENIED;
    for (size_t i = 0; i < reg->r->nservices; i++)
        if (strcmp(reg->r->services[i].name, name) == 0)
            return JF_EEXIST;
    if (reg->r->nservices == MAX_SERVICES)
        return JF_ENOMEM;
    reg->r->services[reg->r->nservices].name = name;
    reg->r->services[reg->r->nservices].provider = reg->r->initialising;
    reg->r->services[reg->r->nservices].svc = *svc;
    reg->r->nservices++;
    return JF_OK;
}

jf_status_t jf_registry_get(const jf_registry_t *reg, const char *name, jf_service_t *out)
{
    if (reg == NULL || name == NULL)
        return JF_EINVAL;
    /* A module reaches only what it requires (or provides itself): an
     * undeclared dependency would escape the start-up checks and the
     * madge gate's module graph. */
    if (reg->owner != NULL && !list_has(reg->owner->requires, name) &&
        !list_has(reg->owner->provides, name))
        return JF_EDENIED;
    for (size_t i = 0; i < reg->r->nservices; i++)
        if (strcmp(reg->r->services[i].name, name) == 0) {
            *out = reg->r->services[i].svc;
            return JF_OK;
        }
    return JF_ENOTFOUND;
}

/* ---- lookups ---------------------------------------------------------------------------- */

const jf_job_type_t *jf_registry_find_type(const jf_registry_t *reg, const char *type,
                                           const jf_module_t **ret_module,
                                           void **ret_module_state,
                                           const jf_registry_t **ret_view)
{
    for (size_t i = 0; i < reg->r->ntypes; i++)
        if (strcmp(reg->r->types[i].name, type) == 0) {
            if (ret_module != NULL)
                *ret_module = reg->r->types[i].mctx->mod;
            if (ret_module_state != NULL)
                *ret_module_state = reg->r->types[i].mctx->state;
            if (ret_view != NULL)
                *ret_view = &reg->r->types[i].mctx->view;
            return reg->r->types[i].type;
        }
    return NULL;
}

void jf_registry_each_type(const jf_registry_t *reg, jf_registry_type_fn fn, void *arg)
{
    for (size_t i = 0; i < reg->r->ntypes; i++)
        fn(reg->r->types[i].mctx->mod, reg->r->types[i].type, arg);
}

void jf_registry_each_dep(const jf_registry_t *reg, jf_registry_dep_fn fn, void *arg)
{
    for (size_t i = 0; i < reg->r->nmods; i++) {
        const jf_module_t *m = reg->r->mods[i].mod;
        for (const char *const *r = m->requires; r != NULL && *r != NULL; r++)
            for (size_t j = 0; j < reg->r->nmods; j++)
                if (list_has(reg->r->mods[j].mod->provides, *r))
                    fn(m->name, *r, reg->r->mods[j].mod->name, arg);
    }
}

size_t jf_registry_modules(const jf_registry_t *reg, const jf_module_t **out, size_t max)
{
    size_t i;

    for (i = 0; i < reg->r->nmods && i < max; i++)
        out[i] = reg->r->mods[i].mod;
    return reg->r->nmods;
}

/* ---- the module context (include/jetfleet/module.h) --------------------------------------- */

jf_registry_t *jf_module_registry(jf_module_ctx_t *mctx)
{
    return &mctx->view;
}

void jf_registry_set_config(jf_registry_t *reg, const struct jf_config *cfg)
{
    reg->r->cfg = cfg;
}

void jf_registry_set_nats(jf_registry_t *reg, struct jf_nats *nc)
{
    reg->r->nc = nc;
}

struct jf_nats *jf_registry_nats_of(const jf_module_ctx_t *mctx)
{
    return mctx->view.r->nc;
}

const char *jf_module_setting(const jf_module_ctx_t *mctx, const char *name)
{
    const jf_cfg_var_t *v = jf_config_var(name);
    struct jf_module_ctx *m = (struct jf_module_ctx *)mctx;   /* the buffer is ours */

    if (v == NULL || mctx->view.r->cfg == NULL)
        return NULL;
    return jf_config_format(mctx->view.r->cfg, v, m->setting, sizeof(m->setting));
}

void jf_module_set_state(jf_module_ctx_t *mctx, void *state)
{
    mctx->state = state;
}

void *jf_module_state(const jf_module_ctx_t *mctx)
{
    return mctx->state;
}

void jf_module_log(const jf_module_ctx_t *mctx, jf_log_level_t level, const char *fmt, ...)
{
    va_list        ap;
    jf_log_field_t f = JF_LS("module", mctx->mod->name);

    va_start(ap, fmt);
    jf_log_vfields(level, &f, 1, fmt, ap);
    va_end(ap);
}
