/*
 * cli.c - helpers shared by the subcommands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "app/cli.h"
#include "core/log.h"

void jf_cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("jetfleet: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int jf_cli_exit_code(jf_status_t st)
{
    switch (st) {
    case JF_OK:           return JF_EXIT_OK;
    case JF_EINVAL:
    case JF_ECONFIG:      return JF_EXIT_USAGE;
    case JF_ENOTFOUND:    return JF_EXIT_NOTFOUND;
    case JF_EUNAVAILABLE:
    case JF_ETIMEOUT:     return JF_EXIT_UNAVAILABLE;
    default:              return JF_EXIT_FAIL;
    }
}

static void report_bad_var(const char *name, const char *msg, void *arg)
{
    (void)name;
    (void)arg;
    jf_cli_error("%s", msg);
}

int jf_cli_load_config(jf_config_t *cfg)
{
    jf_err_t err = { 0 };

    if (jf_config_load(cfg, NULL, NULL, report_bad_var, NULL, &err) != JF_OK ||
        jf_config_validate(cfg, report_bad_var, NULL, &err) != JF_OK) {
        jf_cli_error("invalid configuration; see `jetfleet config check`");
        jf_config_free(cfg);
        return JF_EXIT_USAGE;
    }
    jf_log_setup(jf_log_level_parse(cfg->log_level), strcmp(cfg->log_format, "json") == 0, 2);
    return JF_EXIT_OK;
}

int jf_cli_connect(const jf_config_t *cfg, const char *name, jf_nats_t **out)
{
    jf_err_t    err = { 0 };
    jf_status_t st = jf_nats_connect(out, cfg, name, NULL, NULL, &err);

    if (st != JF_OK) {
        jf_cli_error("%s", jf_err_msg(&err));
        return jf_cli_exit_code(st);
    }
    return JF_EXIT_OK;
}

bool jf_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}
