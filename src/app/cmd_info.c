/*
 * cmd_info.c - commands that describe the binary: version, config check,
 * config schema and modules.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "app/cli.h"
#include "app/modules.h"
#include "core/config.h"
#include "core/registry_impl.h"
#include "jf_build_config.h"
#include "security/redact.h"

/* ---- version ------------------------------------------------------------- */

int jf_cmd_version(int argc, char **argv)
{
    if (jf_cli_wants_help(argc, argv)) {
        printf("usage: jetfleet version\n\nPrint the version of jetfleet and of the module ABI.\n");
        return JF_EXIT_OK;
    }
    printf("jetfleet %s (module ABI %u)\n", JF_VERSION, JF_ABI_VERSION);
    return JF_EXIT_OK;
}

/* ---- config ---------------------------------------------------------------- */

static const char *type_name(jf_cfg_type_t t)
{
    switch (t) {
    case JF_CFG_STRING:   return "string";
    case JF_CFG_INT:      return "integer";
    case JF_CFG_BOOL:     return "boolean";
    case JF_CFG_DURATION: return "duration";
    case JF_CFG_SIZE:     return "size";
    case JF_CFG_ENUM:     return "enum";
    }
    return "?";
}

struct check_ctx {
    int bad;
};

static void report(const char *name, const char *msg, void *arg)
{
    struct check_ctx *c = arg;
    (void)name;
    jf_cli_error("%s", msg);
    c->bad++;
}

int jf_cmd_config_check(int argc, char **argv)
{
    extern char      **environ;
    jf_config_t        cfg;
    jf_err_t           err = { 0 };
    struct check_ctx   ctx = { 0 };
    const jf_cfg_var_t *schema;
    size_t             n;
    int                unknown = 0;
    bool               quiet = argc > 1 && (strcmp(argv[1], "-q") == 0 ||
                                            strcmp(argv[1], "--quiet") == 0);

    if (jf_cli_wants_help(argc, argv)) {
        printf("usage: jetfleet config check [-q|--quiet]\n\n"
               "Validate every JF_* environment variable against the schema and print the\n"
               "effective configuration, secrets redacted. Unknown JF_* variables (likely\n"
               "typos) are warned about. Exits 2 when any value is invalid.\n");
        return JF_EXIT_OK;
    }
    if (jf_config_load(&cfg, NULL, NULL, report, &ctx, &err) == JF_OK)
        jf_config_validate(&cfg, report, &ctx, &err);
    for (char **e = environ; *e != NULL; e++) {
        char name[128];
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (strncmp(*e, "JF_", 3) != 0 || len >= sizeof(name))
            continue;
        memcpy(name, *e, len);
        name[len] = '\0';
        if (jf_config_var(name) == NULL) {
            fprintf(stderr, "jetfleet: warning: %s is not a jetfleet variable (typo?)\n", name);
            unknown++;
        }
    }
    if (!quiet && ctx.bad == 0) {
        schema = jf_config_schema(&n);
        for (size_t i = 0; i < n; i++) {
            char buf[1024];
            const char *v = jf_config_format(&cfg, &schema[i], buf, sizeof(buf));
            char red[1024];
            if (strcmp(schema[i].name, "JF_NATS_URL") == 0)
                v = jf_redact_url_list(v, red, sizeof(red));
            printf("%s=%s\n", schema[i].name, v);
        }
    }
    jf_config_free(&cfg);
    if (ctx.bad > 0) {
        fprintf(stderr, "jetfleet: configuration invalid: %d bad variable%s\n", ctx.bad,
                ctx.bad == 1 ? "" : "s");
        return JF_EXIT_USAGE;
    }
    if (quiet)
        printf("configuration ok\n");
    return JF_EXIT_OK;
}

/* Print text safely inside a GitHub markdown table cell: escape the cell
 * separator and characters a renderer would take for HTML, except inside
 * `code` spans, which render literally. */
static void md_escape(const char *s)
{
    bool code = false;

    for (; *s; s++) {
        if (*s == '`')
            code = !code;
        if (*s == '|')
            fputs("\\|", stdout);
        else if (!code && *s == '<')
            fputs("&lt;", stdout);
        else if (!code && *s == '>')
            fputs("&gt;", stdout);
        else
            putchar(*s);
    }
}

int jf_cmd_config_schema(int argc, char **argv)
{
    static const struct option opts[] = {
        { "names", no_argument, NULL, 'n' },
        { "markdown", no_argument, NULL, 'm' },
        { "env", no_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const jf_cfg_var_t *schema;
    size_t n;
    int    c, mode = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "nmeh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': mode = 'n'; break;
        case 'm': mode = 'm'; break;
        case 'e': mode = 'e'; break;
        case 'h':
            printf("usage: jetfleet config schema [--names | --markdown | --env]\n\n"
                   "Print every JF_* variable of the schema: name, type, default, whether\n"
                   "it is secret, and its meaning. --names prints names only, --markdown a\n"
                   "table for docs/configuration.md, --env a .env.example.\n");
            return JF_EXIT_OK;
        default:
            return JF_EXIT_USAGE;
        }
    }
    schema = jf_config_schema(&n);
    if (mode == 'm')
        printf("| variable | type | default | secret | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const jf_cfg_var_t *v = &schema[i];
        switch (mode) {
        case 'n':
            printf("%s\n", v->name);
            break;
        case 'm':
            printf("| `%s` | %s", v->name, type_name(v->type));
            if (v->choices != NULL) {
                fputs(": ", stdout);
                md_escape(v->choices);
            }
            if (v->def[0] != '\0')
                printf(" | `%s` | %s | ", v->def, v->secret ? "yes" : "no");
            else
                printf(" | (empty) | %s | ", v->secret ? "yes" : "no");
            md_escape(v->description);
            fputs(" |\n", stdout);
            break;
        case 'e':
            printf("# %s\n# %s=%s\n", v->description, v->name, v->def);
            break;
        default:
            printf("%-26s %-9s default=%-24s%s\n    %s\n", v->name, type_name(v->type),
                   v->def[0] ? v->def : "\"\"", v->secret ? " (secret)" : "", v->description);
        }
    }
    return JF_EXIT_OK;
}

/* ---- modules ------------------------------------------------------------------ */

static void print_type(const jf_module_t *mod, const jf_job_type_t *t, void *arg)
{
    (void)arg;
    printf("  %s.%-16s payload %-28s attempts %-3u %s%s\n", mod->name, t->action,
           t->payload->name, t->retry.max_attempts, t->summary ? t->summary : "",
           (t->flags & JF_JOB_TYPE_UNSAFE) ? " [unsafe]" : "");
}

static void print_dep(const char *module, const char *contract, const char *provider, void *arg)
{
    bool verbose = *(bool *)arg;
    if (verbose)
        printf("  %s requires %s, provided by %s\n", module, contract, provider);
    else
        printf("%s -> %s\n", module, provider);
}

int jf_cmd_modules(int argc, char **argv)
{
    jf_registry_t     *reg = NULL;
    jf_err_t           err = { 0 };
    const jf_module_t *mods[64];
    size_t             n;
    bool               deps_only = argc > 1 && strcmp(argv[1], "--deps") == 0;
    bool               verbose = !deps_only;

    if (jf_cli_wants_help(argc, argv)) {
        printf("usage: jetfleet modules [--deps]\n\n"
               "List the compiled-in modules in init order, their job types and their\n"
               "service dependencies. --deps prints only '<module> -> <provider>' lines,\n"
               "one per required service contract (used by scripts/gates).\n");
        return JF_EXIT_OK;
    }
    if (jf_app_registry(&reg, &err) != JF_OK) {
        jf_cli_error("%s", jf_err_msg(&err));
        return JF_EXIT_FAIL;
    }
    if (deps_only) {
        jf_registry_each_dep(reg, print_dep, &verbose);
        jf_registry_destroy(reg);
        return JF_EXIT_OK;
    }
    n = jf_registry_modules(reg, mods, 64);
    printf("modules (init order):");
    for (size_t i = 0; i < n && i < 64; i++)
        printf(" %s", mods[i]->name);
    printf("\njob types:\n");
    jf_registry_each_type(reg, print_type, NULL);
    printf("service dependencies:\n");
    jf_registry_each_dep(reg, print_dep, &verbose);
    jf_registry_destroy(reg);
    return JF_EXIT_OK;
}
