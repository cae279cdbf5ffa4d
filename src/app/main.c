/*
 * main.c - the jetfleet command: one binary, one subcommand per operation
 * (README.md, "Commands"). Each subcommand parses its own options and has --help.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <bsd/unistd.h>

#include "app/cli.h"
#include "jf_build_config.h"

static const jf_cmd_t commands[] = {
    { "worker",        "run one worker process",                              jf_cmd_worker },
    { "provision",     "create or update streams, consumers and KV buckets",  jf_cmd_provision },
    { "enqueue",       "publish a job (next to `nats pub`)",                  jf_cmd_enqueue },
    { "lag",           "a pool's lag: num_pending + num_ack_pending, as KEDA reads it", jf_cmd_lag },
    { "dlq list",      "list dead letters, with filters",                     jf_cmd_dlq_list },
    { "dlq replay",    "publish dead letters again as new jobs",              jf_cmd_dlq_replay },
    { "dlq purge",     "delete dead letters",                                 jf_cmd_dlq_purge },
    { "audit tail",    "print job lifecycle events from AUDIT, with filters", jf_cmd_audit_tail },
    { "job show",      "one job: its ledger record and its events",           jf_cmd_job_show },
    { "config check",  "validate the JF_* environment, print the effective config",
      jf_cmd_config_check },
    { "config schema", "print every JF_* variable with type, default and meaning",
      jf_cmd_config_schema },
    { "modules",       "list modules, job types and service dependencies",   jf_cmd_modules },
    { "version",       "print the version",                                   jf_cmd_version },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: jetfleet <command> [options]\n"
            "\n"
            "jetfleet %s - background jobs on NATS JetStream.\n"
            "\n"
            "commands:\n", JF_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Every command takes --help. Configuration comes from JF_* environment\n"
            "variables: `jetfleet config schema` lists them.\n"
            "Exit codes: 0 ok, 1 failed, 2 usage or configuration error,\n"
            "3 NATS unavailable, 4 named object not found.\n");
}

int main(int argc, char **argv, char **envp)
{
    /* Lets the worker show its pool and in-flight count in `ps`. */
    setproctitle_init(argc, argv, envp);

    if (argc < 2) {
        usage(stderr);
        return JF_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return JF_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return jf_cmd_version(1, argv + 1);

    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *name = commands[i].name;
        const char *space = strchr(name, ' ');

        if (space == NULL) {
            if (strcmp(argv[1], name) == 0)
                return commands[i].run(argc - 1, argv + 1);
            continue;
        }
        /* two-word command: "config check" */
        if (strncmp(argv[1], name, (size_t)(space - name)) == 0 &&
            argv[1][space - name] == '\0' && argc >= 3 && strcmp(argv[2], space + 1) == 0)
            return commands[i].run(argc - 2, argv + 2);
    }
    /* A known group without a valid sub-command: list the group. */
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *space = strchr(commands[i].name, ' ');
        if (space != NULL && strncmp(argv[1], commands[i].name, (size_t)(space - commands[i].name)) == 0 &&
            argv[1][space - commands[i].name] == '\0') {
            bool help = argc >= 3 && (strcmp(argv[2], "-h") == 0 ||
                                      strcmp(argv[2], "--help") == 0);
            FILE *out = help ? stdout : stderr;
            if (help)
                fprintf(out, "usage: jetfleet %s <sub-command> [options]\n\nsub-commands "
                        "(each takes --help):\n", argv[1]);
            else
                jf_cli_error("'%s' needs a sub-command:", argv[1]);
            for (size_t j = 0; j < NCOMMANDS; j++)
                if (strncmp(commands[j].name, argv[1], strlen(argv[1])) == 0 &&
                    commands[j].name[strlen(argv[1])] == ' ')
                    fprintf(out, "  jetfleet %-15s %s\n", commands[j].name, commands[j].summary);
            return help ? JF_EXIT_OK : JF_EXIT_USAGE;
        }
    }
    jf_cli_error("unknown command '%s'; run `jetfleet --help`", argv[1]);
    return JF_EXIT_USAGE;
}
