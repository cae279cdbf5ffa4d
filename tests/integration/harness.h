/*
 * harness.h - what integration tests need: a real nats-server started on a
 * free loopback port in its own temporary directory, the jetfleet binary
 * run as a child process, and a NATS client to publish and inspect.
 */
#ifndef JF_TESTS_HARNESS_H
#define JF_TESTS_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

typedef struct jf_h_server {
    pid_t pid;
    int   port;
    char  dir[256];     /* temporary directory, removed at stop */
    char  url[64];      /* nats://127.0.0.1:<port> */
} jf_h_server_t;

/* Start nats-server -js; fails the test when it does not come up. */
void jf_h_server_start(jf_h_server_t *s);
/* Stop the server and remove its directory; first checks that no child
 * wrote a ThreadSanitizer report and that every line of every worker log
 * of the test is a JSON object with ts, level, msg. */
void jf_h_server_stop(jf_h_server_t *s);

/* Stop the server, wait down_ms, start it again on the same port and store. */
void jf_h_server_restart(jf_h_server_t *s, int down_ms);

/* Environment for a child: JF_NATS_URL of the server plus extra
 * "NAME=VALUE" strings (NULL-terminated list, may be NULL). */
typedef struct jf_h_proc {
    pid_t pid;
    char  out_path[300];   /* stdout */
    char  err_path[300];   /* stderr: the JSON log */
} jf_h_proc_t;

/* Run `jetfleet <args...>` to completion; returns its exit code. Output
 * goes to files in the server's directory, named after tag. */
int jf_h_run(const jf_h_server_t *s, const char *tag, const char *const *env,
             const char *const *args, jf_h_proc_t *out);

/* Start `jetfleet worker` in the background. */
void jf_h_worker_start(const jf_h_server_t *s, const char *tag, const char *const *env,
                       jf_h_proc_t *out);

/* Send sig and wait up to timeout_ms; returns the exit code, or -1 when it
 * did not exit (it is then killed). */
int jf_h_proc_stop(jf_h_proc_t *p, int sig, int timeout_ms);

/* Run `jetfleet provision` with extra env (may be NULL); fails the test
 * on a non-zero exit, showing its stderr. */
void jf_h_provision(const jf_h_server_t *s, const char *const *env);

/* Wait until a worker logged "worker started" (10 s), else fail. */
void jf_h_wait_started(const jf_h_proc_t *w);

/* Count lines of path containing every one of the NULL-terminated needles. */
int jf_h_count_lines(const char *path, const char *const *needles);

/* Wait until jf_h_count_lines() reaches want; returns the final count. */
int jf_h_wait_lines(const char *path, const char *const *needles, int want, int timeout_ms);

/* Log lines of a worker (its stderr log, path) about job job_id with
 * "msg":"<msg>": how many there are now, or, with timeout_ms > 0, after
 * waiting for want of them (jf_h_wait_lines). */
int jf_h_job_lines(const char *path, const char *job_id, const char *msg, int want,
                   int timeout_ms);

/* Read a whole file into a malloc'ed string ("" when missing). */
char *jf_h_slurp(const char *path);

/* Connect a test client. */
natsConnection *jf_h_connect(const jf_h_server_t *s);

/* Publish to JetStream. id may be NULL (no Nats-Msg-Id); headers are
 * "Name", "Value" pairs ending with NULL. Returns true when stored (false
 * for a duplicate). */
bool jf_h_publish(natsConnection *nc, const char *subject, const char *data, int len,
                  const char *id, const char *const *headers);

/* JetStream state. */
uint64_t jf_h_stream_msgs(natsConnection *nc, const char *stream);
/* Poll until the stream holds want messages; returns the last count. */
uint64_t jf_h_wait_stream_msgs(natsConnection *nc, const char *stream, uint64_t want,
                               int timeout_ms);
void jf_h_consumer_state(natsConnection *nc, const char *stream, const char *consumer,
                         uint64_t *num_pending, int64_t *num_ack_pending,
                         int64_t *num_redelivered);

/* The JF_LEDGER record under key: returns false when there is none;
 * state is the JobState number, attempts the runs counted. */
bool jf_h_ledger(natsConnection *nc, const char *key, int *state, unsigned *attempts);

/* Find the dead letter whose Jf-Job-Id (or, failing that, whose
 * Jf-Original-Seq) matches; returns the message (destroy it) or NULL. */
natsMsg *jf_h_dlq_find(natsConnection *nc, const char *job_id, uint64_t original_seq);

/* The "ts" of a JSON log line, in Unix ms; -1 when absent. */
int64_t jf_h_line_ts(const char *line);

/* Every line of path containing all needles, in order, as a malloc'ed
 * array of malloc'ed strings; *count receives the number. */
char **jf_h_grep(const char *path, const char *const *needles, int *count);
void jf_h_grep_free(char **lines, int count);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int jf_h_free_port(void);

/* Sleep milliseconds. */
void jf_h_sleep_ms(int ms);

/* GET url (libcurl, 3 s): the HTTP status, 0 when unreachable; *body the
 * body, malloc'd ("" when none). */
long jf_h_http_get(const char *url, char **body);

/* The value of the sample line "<series> <value>" in Prometheus text, or -1. */
double jf_h_metric(const char *text, const char *series);

#endif /* JF_TESTS_HARNESS_H */
