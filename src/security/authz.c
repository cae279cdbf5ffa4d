/*
 * authz.c - tenant allow-list and unsafe job types.
 */
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "security/authz.h"
#include "shared/ids.h"

struct jf_authz {
    bool   all_tenants;
    bool   allow_unsafe;
    char **tenants;
    size_t ntenants;
};

void jf_authz_destroy(jf_authz_t *az)
{
    if (az == NULL)
        return;
    for (size_t i = 0; i < az->ntenants; i++)
        free(az->tenants[i]);
    free(az->tenants);
    free(az);
}

jf_status_t jf_authz_create(jf_authz_t **out, const jf_authz_opts_t *opts, jf_err_t *err)
{
    jf_authz_t *az = calloc(1, sizeof(*az));
    char       *copy = NULL, *save = NULL;
    jf_status_t st = JF_OK;

    if (az == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    az->allow_unsafe = opts->allow_unsafe;
    if (opts->tenants == NULL || strcmp(opts->tenants, "*") == 0) {
        az->all_tenants = true;
        goto out;
    }
    copy = strdup(opts->tenants);
    if (copy == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        char **grown;

        while (*t == ' ')
            t++;
        for (char *e = t + strlen(t); e > t && e[-1] == ' '; e--)
            e[-1] = '\0';
        st = jf_token_check(t, strlen(t), JF_TENANT_MAX, "tenant", err);
        if (st != JF_OK) {
            st = JF_ECONFIG;
            if (err != NULL)
                err->code = JF_ECONFIG;
            jf_err_wrap(err, "JF_TENANTS");
            goto out;
        }
        grown = reallocarray(az->tenants, az->ntenants + 1, sizeof(*grown));
        if (grown == NULL || (grown[az->ntenants] = strdup(t)) == NULL) {
            if (grown != NULL)
                az->tenants = grown;
            st = jf_err_set(err, JF_ENOMEM, "out of memory");
            goto out;
        }
        az->tenants = grown;
        az->ntenants++;
    }
    if (az->ntenants == 0)
        st = jf_err_set(err, JF_ECONFIG, "JF_TENANTS lists no tenant; use '*' to serve all");
out:
    free(copy);
    if (st != JF_OK) {
        jf_authz_destroy(az);
        return st;
    }
    *out = az;
    return JF_OK;
}

jf_status_t jf_authz_check(const jf_authz_t *az, const char *tenant, const char *type,
                           const jf_job_type_t *jt, jf_err_t *err)
{
    if (!az->all_tenants) {
        bool found = false;
        for (size_t i = 0; i < az->ntenants && !found; i++)
            found = strcmp(az->tenants[i], tenant) == 0;
        if (!found)
            return jf_err_set(err, JF_EDENIED, "tenant '%s' is not served by this worker "
                              "(JF_TENANTS)", tenant);
    }
    if ((jt->flags & JF_JOB_TYPE_UNSAFE) && !az->allow_unsafe)
        return jf_err_set(err, JF_EDENIED, "job type %s is unsafe and disabled; set "
                          "JF_DIAG_UNSAFE=1 to enable it", type);
    return JF_OK;
}
