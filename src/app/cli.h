/*
 * cli.h - what the subcommands of the jetfleet command share.
 *
 * Exit codes (documented in docs/operations.md):
 *   0  success
 *   1  the operation failed
 *   2  usage or configuration error
 *   3  NATS or JetStream unavailable
 *   4  a stream, consumer or other named object does not exist
 */
#ifndef JF_APP_CLI_H
#define JF_APP_CLI_H

#include <stdbool.h>

#include "core/config.h"
#include "core/nats.h"
#include "shared/err.h"

enum {
    JF_EXIT_OK = 0,
    JF_EXIT_FAIL = 1,
    JF_EXIT_USAGE = 2,
    JF_EXIT_UNAVAILABLE = 3,
    JF_EXIT_NOTFOUND = 4,
};

typedef struct jf_cmd {
    const char *name;      /* "config check" */
    const char *summary;
    int       (*run)(int argc, char **argv);
} jf_cmd_t;

int jf_cmd_worker(int argc, char **argv);
int jf_cmd_provision(int argc, char **argv);
int jf_cmd_enqueue(int argc, char **argv);
int jf_cmd_lag(int argc, char **argv);
int jf_cmd_dlq_list(int argc, char **argv);
int jf_cmd_dlq_replay(int argc, char **argv);
int jf_cmd_dlq_purge(int argc, char **argv);
int jf_cmd_audit_tail(int argc, char **argv);
int jf_cmd_job_show(int argc, char **argv);
int jf_cmd_config_check(int argc, char **argv);
int jf_cmd_config_schema(int argc, char **argv);
int jf_cmd_modules(int argc, char **argv);
int jf_cmd_version(int argc, char **argv);

/* "jetfleet: error: <message>" on stderr. */
void jf_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The exit code for a failed status. */
int jf_cli_exit_code(jf_status_t st);

/* Load the configuration from the environment; on error print every bad
 * variable and return JF_EXIT_USAGE. Also sets up logging from it. */
int jf_cli_load_config(jf_config_t *cfg);

/* Connect with cfg, printing the error on failure. Returns an exit code. */
int jf_cli_connect(const jf_config_t *cfg, const char *name, jf_nats_t **out);

/* True when argv holds -h or --help. */
bool jf_cli_wants_help(int argc, char **argv);

#endif /* JF_APP_CLI_H */
