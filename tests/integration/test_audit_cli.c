/*
 * test_audit_cli.c - `jetfleet audit tail` and `jetfleet job show` against
 * a real nats-server and a real worker.
 *
 * Each test runs jobs through `jetfleet worker` down the three paths that
 * matter to an operator - success, retry then success, terminal failure -
 * and then reads them back with the commands, asserting on their output
 * and exit status. Follow mode runs `audit tail` in the background and
 * stops it with SIGTERM, as an operator's Ctrl-C would.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

extern char **environ;

static jf_h_server_t   srv;
static natsConnection *nc;

static void setup(void)
{
    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
}

static void teardown(void)
{
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
}

/* Every run gets a `started` event (JF_STARTED_EVENT_AFTER=0), so that the
 * CLI has several kinds of event to show and filter. */
static const char *const worker_env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                          "JF_STARTED_EVENT_AFTER=0", NULL };
static const char *const worker_env_json[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                               "JF_STARTED_EVENT_AFTER=0",
                                               "JF_TELEMETRY_FORMAT=json", NULL };

/* Events the three jobs of run_jobs() leave in AUDIT. */
#define OK_EVENTS    2   /* started, succeeded */
#define RETRY_EVENTS 4   /* started, retry_scheduled, started, succeeded */
#define FAIL_EVENTS  3   /* started, failed, dead_lettered */
#define ALL_EVENTS   (OK_EVENTS + RETRY_EVENTS + FAIL_EVENTS)

/* ---- helpers --------------------------------------------------------------------------- */


/* Run `jetfleet <args>`; *out and *err (may be NULL) get stdout and stderr
 * (free them). Returns the exit status. */
static int cli(const char *tag, const char *const *args, char **out, char **err)
{
    jf_h_proc_t p;
    int         rc = jf_h_run(&srv, tag, NULL, args, &p);

    if (out != NULL)
        *out = jf_h_slurp(p.out_path);
    if (err != NULL)
        *err = jf_h_slurp(p.err_path);
    return rc;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

/* The lines of text, split in place; returns how many (at most max). */
static int split_lines(char *text, char **lines, int max)
{
    int   n = 0;
    char *save = NULL;

    for (char *l = strtok_r(text, "\n", &save); l != NULL && n < max;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

/* Field i (0-based, space separated) of line into buf. */
static const char *field(const char *line, int i, char *buf, size_t size)
{
    const char *p = line;

    for (int k = 0; k < i; k++) {
        p = strchr(p, ' ');
        cr_assert_not_null(p, "line has no field %d: %s", i, line);
        while (*p == ' ')
            p++;
    }
    snprintf(buf, size, "%.*s", (int)strcspn(p, " "), p);
    return buf;
}

/* "received,started,..." from the event column of human lines. */
static void event_seq(const char *text, char *seq, size_t size)
{
    char *copy = strdup(text), *lines[128], ev[32];
    int   n = split_lines(copy, lines, 128);

    seq[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(seq);
        snprintf(seq + used, size - used, "%s%s", used > 0 ? "," : "",
                 field(lines[i], 1, ev, sizeof(ev)));
    }
    free(copy);
}

/* Publish the three jobs and wait until their events are in AUDIT. */
static void run_jobs(const char *const *wenv, const char *prefix, uint64_t audit_before)
{
    jf_h_proc_t w;
    char        id[64];

    jf_h_worker_start(&srv, "worker", wenv, &w);
    snprintf(id, sizeof(id), "%s-ok", prefix);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":20}", 9, id, NULL);
    snprintf(id, sizeof(id), "%s-retry", prefix);
    {
        const char *p = "{\"retryable\":true,\"message\":\"x\",\"succeedOnAttempt\":2}";
        jf_h_publish(nc, "jobs.acme.diag.fail", p, (int)strlen(p), id, NULL);
    }
    snprintf(id, sizeof(id), "%s-fail", prefix);
    {
        const char *p = "{\"retryable\":false,\"message\":\"no such account\"}";
        jf_h_publish(nc, "jobs.beta.diag.fail", p, (int)strlen(p), id, NULL);
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "AUDIT", audit_before + ALL_EVENTS, 15000),
                 audit_before + ALL_EVENTS, "the worker's events did not all reach AUDIT");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* Start `jetfleet <args>` in the background with stdout and stderr in files
 * of the server's directory. */
static void spawn_bg(const char *tag, const char *const *args, jf_h_proc_t *p)
{
    posix_spawn_file_actions_t fa;
    char       *argv[32], *envp[256], url[96];
    const char *bin = getenv("JF_BIN");
    int         n = 0, ne = 0, rc;

    cr_assert_not_null(bin);
    snprintf(p->out_path, sizeof(p->out_path), "%s/%s.out", srv.dir, tag);
    snprintf(p->err_path, sizeof(p->err_path), "%s/%s.log", srv.dir, tag);
    argv[n++] = (char *)bin;
    for (const char *const *a = args; *a != NULL && n < 31; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    for (char **e = environ; *e != NULL && ne < 250; e++)
        if (strncmp(*e, "JF_", 3) != 0)
            envp[ne++] = *e;
    snprintf(url, sizeof(url), "JF_NATS_URL=%s", srv.url);
    envp[ne++] = url;
    envp[ne] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawn(&p->pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot start %s: %s", bin, strerror(rc));
}

/* ---- audit tail -------------------------------------------------------------------------- */

Test(audit_cli, no_follow_prints_each_job_in_order_with_its_details, .init = setup,
     .fini = teardown)
{
    const char *const all[] = { "audit", "tail", "--no-follow", "--since", "1h", NULL };
    const char *const retry[] = { "audit", "tail", "--no-follow", "--since", "1h", "--job",
                                  "t-retry", NULL };
    const char *const fail[] = { "audit", "tail", "--no-follow", "--job", "t-fail", NULL };
    const char *const ok[] = { "audit", "tail", "--no-follow", "--job", "t-ok", NULL };
    char *out, *err, *lines[16], seq[512], buf[160];
    int   n;

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "t", 0);

    cr_assert_eq(cli("all", all, &out, &err), 0, "%s", err);
    cr_assert_eq(count_lines(out), ALL_EVENTS, "%s", out);
    cr_assert_str_empty(err, "%s", err);
    free(out);
    free(err);

    cr_assert_eq(cli("retry", retry, &out, &err), 0, "%s", err);
    event_seq(out, seq, sizeof(seq));
    cr_assert_str_eq(seq, "started,retry_scheduled,started,succeeded", "%s", out);
    n = split_lines(out, lines, 16);
    cr_assert_eq(n, RETRY_EVENTS);
    /* <time> <event> <tenant> <type> <job> attempt=N worker=W ... */
    cr_assert_str_eq(field(lines[0], 2, buf, sizeof(buf)), "acme");
    cr_assert_str_eq(field(lines[0], 3, buf, sizeof(buf)), "diag.fail");
    cr_assert_str_eq(field(lines[0], 4, buf, sizeof(buf)), "t-retry");
    cr_assert_str_eq(field(lines[0], 5, buf, sizeof(buf)), "attempt=1");
    cr_assert(strncmp(field(lines[0], 6, buf, sizeof(buf)), "worker=", 7) == 0 &&
              strlen(buf) > 7, "%s", lines[0]);
    cr_assert(strncmp(lines[0], "20", 2) == 0 && lines[0][10] == 'T' && lines[0][23] == 'Z',
              "RFC 3339 time first: %s", lines[0]);
    cr_assert(strstr(lines[1], " delay=") != NULL, "%s", lines[1]);
    cr_assert(strstr(lines[1], " error=JF_EAGAIN: x") != NULL, "%s", lines[1]);
    cr_assert(strstr(lines[1], " wait=") != NULL, "how long it waited: %s", lines[1]);
    cr_assert_str_eq(field(lines[2], 5, buf, sizeof(buf)), "attempt=2");
    cr_assert_str_eq(field(lines[3], 5, buf, sizeof(buf)), "attempt=2");
    cr_assert(strstr(lines[3], "error=") == NULL, "%s", lines[3]);
    free(out);
    free(err);

    cr_assert_eq(cli("fail", fail, &out, &err), 0, "%s", err);
    event_seq(out, seq, sizeof(seq));
    cr_assert_str_eq(seq, "started,failed,dead_lettered", "%s", out);
    cr_assert(strstr(out, "failed          beta diag.fail t-fail attempt=1") != NULL, "%s", out);
    cr_assert(strstr(out, ": no such account") != NULL, "%s", out);
    free(out);
    free(err);

    cr_assert_eq(cli("ok", ok, &out, &err), 0, "%s", err);
    event_seq(out, seq, sizeof(seq));
    cr_assert_str_eq(seq, "started,succeeded", "%s", out);
    n = split_lines(out, lines, 16);
    {
        const char *d = strstr(lines[1], " duration=");
        cr_assert_not_null(d, "%s", lines[1]);
        cr_assert_geq(atof(d + 10), 20.0, "the job slept 20 ms: %s", lines[1]);
    }
    free(out);
    free(err);
}

Test(audit_cli, filters_narrow_by_tenant_type_event_and_limit, .init = setup, .fini = teardown)
{
    struct {
        const char *args[12];
        int         want;
        const char *every;   /* each line contains this */
    } cases[] = {
        { { "audit", "tail", "--no-follow", "--tenant", "beta", NULL }, FAIL_EVENTS, " beta " },
        { { "audit", "tail", "--no-follow", "--tenant", "acme", NULL }, OK_EVENTS + RETRY_EVENTS,
          " acme " },
        { { "audit", "tail", "--no-follow", "--type", "diag.sleep", NULL }, OK_EVENTS,
          " diag.sleep t-ok " },
        { { "audit", "tail", "--no-follow", "--event", "retry_scheduled", NULL }, 1,
          " retry_scheduled acme diag.fail t-retry " },
        { { "audit", "tail", "--no-follow", "--tenant", "acme", "--event", "started", NULL }, 3,
          " started " },
        { { "audit", "tail", "--no-follow", "--type", "diag.fail", "--event", "succeeded", NULL },
          1, " t-retry attempt=2 " },
        { { "audit", "tail", "--no-follow", "--tenant", "nobody", NULL }, 0, "" },
        { { "audit", "tail", "--no-follow", "--limit", "2", NULL }, 2, "" },
        { { "audit", "tail", "--no-follow", "--since", "2000-01-01T00:00:00Z", "--event",
            "dead_lettered", NULL }, 1, " t-fail " },
    };

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "t", 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err, *lines[32];
        int   n;

        cr_assert_eq(cli("filter", cases[i].args, &out, &err), 0, "case %zu: %s", i, err);
        n = split_lines(out, lines, 32);
        cr_assert_eq(n, cases[i].want, "case %zu: %d lines, want %d", i, n, cases[i].want);
        for (int k = 0; k < n; k++)
            cr_assert(strstr(lines[k], cases[i].every) != NULL, "case %zu: %s", i, lines[k]);
        free(out);
        free(err);
    }
    /* A --since after everything: nothing. */
    {
        const char *const args[] = { "audit", "tail", "--no-follow", "--since", "0s", NULL };
        char *out;
        jf_h_sleep_ms(50);
        cr_assert_eq(cli("since-now", args, &out, NULL), 0);
        cr_assert_eq(count_lines(out), 0, "%s", out);
        free(out);
    }
}

Test(audit_cli, json_lines_parse_and_carry_the_fields, .init = setup, .fini = teardown)
{
    const char *const args[] = { "audit", "tail", "--no-follow", "--json", "--job", "t-fail",
                                 NULL };
    const char *const names[] = { "EVENT_KIND_STARTED", "EVENT_KIND_FAILED",
                                  "EVENT_KIND_DEAD_LETTERED" };
    char      *out, *err, *lines[16];
    int        n;
    json_int_t last_seq = 0;

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "t", 0);
    cr_assert_eq(cli("json", args, &out, &err), 0, "%s", err);
    n = split_lines(out, lines, 16);
    cr_assert_eq(n, FAIL_EVENTS, "%s", out);
    for (int i = 0; i < n; i++) {
        json_error_t je;
        json_t      *o = json_loads(lines[i], 0, &je);
        char         subject[128];

        cr_assert_not_null(o, "line %d is not JSON (%s): %s", i, je.text, lines[i]);
        cr_assert_str_eq(json_string_value(json_object_get(o, "event")), names[i]);
        cr_assert_str_eq(json_string_value(json_object_get(o, "job_id")), "t-fail");
        cr_assert_str_eq(json_string_value(json_object_get(o, "tenant")), "beta");
        cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "diag.fail");
        cr_assert_eq(json_integer_value(json_object_get(o, "attempt")), 1);
        cr_assert_gt(strlen(json_string_value(json_object_get(o, "worker_id"))), 0);
        snprintf(subject, sizeof(subject), "telemetry.jobs.beta.diag.fail.%s",
                 i == 0 ? "started" : i == 1 ? "failed" : "dead_lettered");
        cr_assert_str_eq(json_string_value(json_object_get(o, "subject")), subject);
        cr_assert(json_is_integer(json_object_get(o, "audit_seq")));
        cr_assert_gt(json_integer_value(json_object_get(o, "audit_seq")), last_seq,
                     "oldest first");
        last_seq = json_integer_value(json_object_get(o, "audit_seq"));
        if (i >= 1) {
            cr_assert_str_eq(json_string_value(json_object_get(o, "error_text")),
                             "no such account");
            cr_assert_not_null(json_object_get(o, "ended_ms"));
        }
        json_decref(o);
    }
    free(out);
    free(err);
}

Test(audit_cli, json_telemetry_is_decoded_and_garbage_is_skipped_with_a_warning, .init = setup,
     .fini = teardown)
{
    const char *const args[] = { "audit", "tail", "--no-follow", "--tenant", "acme", NULL };
    const char *const json_ct[] = { "Content-Type", "application/json", NULL };
    char     *out, *err, seq[512];
    jsCtx    *js = NULL;
    natsMsg  *m = NULL;
    const char *ct = NULL;

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env_json, "j", 0);
    /* The events really are JSON on the wire. */
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetLastMsg(&m, js, "AUDIT", "telemetry.jobs.acme.diag.sleep.succeeded", NULL,
                               NULL), NATS_OK);
    cr_assert_eq(natsMsgHeader_Get(m, "Content-Type", &ct), NATS_OK);
    cr_assert_str_eq(ct, "application/json");
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);

    /* Neither a protobuf nor a JSON JobEvent. */
    jf_h_publish(nc, "telemetry.jobs.acme.diag.noop.started", "\xff\xff\xff", 3, "junk-1", NULL);
    jf_h_publish(nc, "telemetry.jobs.acme.diag.noop.started", "{not json", 9, "junk-2", json_ct);

    cr_assert_eq(cli("tail", args, &out, &err), 0, "%s", err);
    cr_assert_eq(count_lines(out), OK_EVENTS + RETRY_EVENTS, "%s\n%s", out, err);
    cr_assert(strstr(out, " succeeded       acme diag.sleep j-ok attempt=1") != NULL, "%s", out);
    cr_assert(strstr(out, " error=JF_EAGAIN: x") != NULL, "%s", out);
    cr_assert_eq(count_lines(err), 2, "one warning per bad message: %s", err);
    cr_assert(strstr(err, "warning") != NULL && strstr(err, "not a protobuf JobEvent") != NULL,
              "%s", err);
    cr_assert(strstr(err, "not a JSON JobEvent") != NULL, "%s", err);
    free(out);
    free(err);

    {
        const char *const retry[] = { "audit", "tail", "--no-follow", "--job", "j-retry", NULL };
        cr_assert_eq(cli("retry", retry, &out, NULL), 0);
        event_seq(out, seq, sizeof(seq));
        cr_assert_str_eq(seq, "started,retry_scheduled,started,succeeded");
        free(out);
    }
}

Test(audit_cli, a_durable_resumes_after_what_it_printed, .init = setup, .fini = teardown)
{
    const char *const args[] = { "audit", "tail", "--no-follow", "--durable", "ops", NULL };
    const char *const other[] = { "audit", "tail", "--no-follow", "--durable", "ops",
                                  "--tenant", "acme", NULL };
    char    *out, *err;
    uint64_t pending = 99;
    int64_t  ack_pending = 99;

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "a", 0);
    cr_assert_eq(cli("d1", args, &out, &err), 0, "%s", err);
    cr_assert_eq(count_lines(out), ALL_EVENTS, "%s", out);
    cr_assert(strstr(out, " a-ok ") != NULL);
    free(out);
    free(err);

    run_jobs(worker_env, "b", ALL_EVENTS);
    cr_assert_eq(cli("d2", args, &out, &err), 0, "%s", err);
    cr_assert_eq(count_lines(out), ALL_EVENTS, "only the new events: %s", out);
    cr_assert(strstr(out, " a-") == NULL, "first run's events again: %s", out);
    cr_assert(strstr(out, " b-retry ") != NULL, "%s", out);
    free(out);
    free(err);

    cr_assert_eq(cli("d3", args, &out, &err), 0, "%s", err);
    cr_assert_eq(count_lines(out), 0, "nothing new: %s", out);
    free(out);
    free(err);

    /* Every event was acknowledged, and the consumer stays for next time. */
    jf_h_consumer_state(nc, "AUDIT", "ops", &pending, &ack_pending, NULL);
    cr_assert_eq(pending, 0);
    cr_assert_eq(ack_pending, 0);

    /* The same name with other filters is refused, naming both. */
    cr_assert_eq(cli("d4", other, &out, &err), 2, "%s", err);
    cr_assert(strstr(err, "ops") != NULL && strstr(err, "telemetry.jobs.acme") != NULL, "%s",
              err);
    free(out);
    free(err);
}

Test(audit_cli, follow_prints_new_events_until_sigterm, .init = setup, .fini = teardown)
{
    const char *const args[] = { "audit", "tail", "--tenant", "acme", NULL };
    const char *const following[] = { "following", NULL };
    const char *const done[] = { " f-late ", NULL };
    jf_h_proc_t tail, w;
    char       *out, seq[512];

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "f", 0);          /* before the tail: not shown */
    spawn_bg("follow", args, &tail);
    cr_assert_eq(jf_h_wait_lines(tail.err_path, following, 1, 10000), 1, "%s",
                 jf_h_slurp(tail.err_path));
    jf_h_worker_start(&srv, "worker2", worker_env, &w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "f-late", NULL);
    jf_h_publish(nc, "jobs.beta.diag.noop", "{}", 2, "f-other-tenant", NULL);
    cr_assert_eq(jf_h_wait_lines(tail.out_path, done, 2, 10000), 2, "%s",
                 jf_h_slurp(tail.out_path));
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&tail, SIGTERM, 5000), 0, "exit status 0 on SIGTERM");
    out = jf_h_slurp(tail.out_path);
    event_seq(out, seq, sizeof(seq));
    cr_assert_str_eq(seq, "started,succeeded", "only the new acme job: %s", out);
    free(out);
}

Test(audit_cli, a_durable_follower_stopped_and_restarted_misses_nothing, .init = setup,
     .fini = teardown)
{
    const char *const args[] = { "audit", "tail", "--durable", "watch", NULL };
    const char *const following[] = { "following", NULL };
    const char *const first[] = { " d-1 ", NULL };
    const char *const second[] = { " d-2 ", NULL };
    jf_h_proc_t tail, w;
    char       *out;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", worker_env, &w);
    spawn_bg("follow1", args, &tail);
    cr_assert_eq(jf_h_wait_lines(tail.err_path, following, 1, 10000), 1);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "d-1", NULL);
    cr_assert_eq(jf_h_wait_lines(tail.out_path, first, 2, 10000), 2);
    /* Stopped while its pull request waits at the server. */
    cr_assert_eq(jf_h_proc_stop(&tail, SIGTERM, 5000), 0);

    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "d-2", NULL);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "AUDIT", 4, 10000), 4);
    spawn_bg("follow2", args, &tail);
    cr_assert_eq(jf_h_wait_lines(tail.out_path, second, 2, 3000), 2,
                 "events that came while it was away come at once: %s",
                 jf_h_slurp(tail.out_path));
    cr_assert_eq(jf_h_proc_stop(&tail, SIGINT, 5000), 0, "exit status 0 on SIGINT");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    out = jf_h_slurp(tail.out_path);
    cr_assert(strstr(out, " d-1 ") == NULL, "%s", out);
    free(out);
}

Test(audit_cli, bad_options_exit_2_naming_the_option, .init = setup, .fini = teardown)
{
    struct {
        const char *args[10];
        const char *names;
    } cases[] = {
        { { "audit", "tail", "--event", "finished", NULL }, "--event" },
        { { "audit", "tail", "--tenant", "Acme", NULL }, "--tenant" },
        { { "audit", "tail", "--type", "diag", NULL }, "--type" },
        { { "audit", "tail", "--type", "diag.a.b", NULL }, "--type" },
        { { "audit", "tail", "--since", "yesterday", NULL }, "--since" },
        { { "audit", "tail", "--limit", "0", NULL }, "--limit" },
        { { "audit", "tail", "--durable", "a.b", NULL }, "--durable" },
        { { "audit", "tail", "--job", "has space", NULL }, "--job" },
        { { "audit", "tail", "--bogus", NULL }, "audit tail --help" },
        { { "audit", "tail", "extra", NULL }, "extra" },
        { { "job", "show", "x", NULL }, "--tenant" },
        { { "job", "show", "--tenant", "acme", NULL }, "job id" },
        { { "job", "show", "x", "--tenant", "acme", "--type", "nodot", NULL }, "--type" },
        { { "job", "show", "x", "y", "--tenant", "acme", NULL }, "'y'" },
    };

    jf_h_provision(&srv, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        cr_assert_eq(cli("bad", cases[i].args, &out, &err), 2, "case %zu: %s", i, err);
        cr_assert(strstr(err, cases[i].names) != NULL, "case %zu names %s: %s", i,
                  cases[i].names, err);
        cr_assert_str_empty(out, "case %zu: %s", i, out);
        free(out);
        free(err);
    }
}

Test(audit_cli, help_and_missing_stream, .init = setup, .fini = teardown)
{
    const char *const h1[] = { "audit", "tail", "--help", NULL };
    const char *const h2[] = { "job", "show", "--help", NULL };
    const char *const tail[] = { "audit", "tail", "--no-follow", NULL };
    const char *const show[] = { "job", "show", "x", "--tenant", "acme", NULL };
    char *out, *err;

    cr_assert_eq(cli("h1", h1, &out, NULL), 0);
    cr_assert(strncmp(out, "usage: jetfleet audit tail", 26) == 0, "%s", out);
    free(out);
    cr_assert_eq(cli("h2", h2, &out, NULL), 0);
    cr_assert(strncmp(out, "usage: jetfleet job show", 24) == 0, "%s", out);
    free(out);

    /* not provisioned */
    cr_assert_eq(cli("tail", tail, &out, &err), 4, "%s", err);
    cr_assert(strstr(err, "AUDIT") != NULL && strstr(err, "jetfleet provision") != NULL, "%s",
              err);
    free(out);
    free(err);
    cr_assert_eq(cli("show", show, &out, &err), 4, "%s", err);
    cr_assert(strstr(err, "jetfleet provision") != NULL, "%s", err);
    free(out);
    free(err);
}

/* ---- job show ------------------------------------------------------------------------------ */

Test(audit_cli, job_show_prints_the_record_and_the_history, .init = setup, .fini = teardown)
{
    const char *const typed[] = { "job", "show", "t-retry", "--tenant", "acme", "--type",
                                  "diag.fail", NULL };
    const char *const untyped[] = { "job", "show", "t-retry", "--tenant", "acme", NULL };
    const char *const dead[] = { "job", "show", "t-fail", "--tenant", "beta", NULL };
    char *out, *err, *events, seq[512];

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "t", 0);

    for (int round = 0; round < 2; round++) {
        cr_assert_eq(cli("show", round == 0 ? typed : untyped, &out, &err), 0, "%s", err);
        cr_assert(strstr(out, "type:           diag.fail\n") != NULL, "%s", out);
        cr_assert(strstr(out, "state:          succeeded\n") != NULL, "%s", out);
        cr_assert(strstr(out, "attempts:       2\n") != NULL, "%s", out);
        cr_assert(strstr(out, "worker:         -\n") == NULL, "%s", out);
        cr_assert(strstr(out, "finished:       20") != NULL, "%s", out);
        events = strstr(out, "events (4):\n");
        cr_assert_not_null(events, "%s", out);
        event_seq(events + strlen("events (4):\n"), seq, sizeof(seq));
        cr_assert_str_eq(seq, "started,retry_scheduled,started,succeeded", "%s", out);
        cr_assert(strstr(out, "now:            no worker holds it\n") != NULL, "%s", out);
        free(out);
        free(err);
    }

    cr_assert_eq(cli("dead", dead, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "state:          dead\n") != NULL, "%s", out);
    cr_assert(strstr(out, "no such account") != NULL, "%s", out);
    cr_assert(strstr(out, "events (3):\n") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(audit_cli, job_show_json_and_unknown_jobs, .init = setup, .fini = teardown)
{
    const char *const js[] = { "job", "show", "t-ok", "--tenant", "acme", "--json", NULL };
    const char *const unknown[] = { "job", "show", "nope", "--tenant", "acme", NULL };
    const char *const unknown_typed[] = { "job", "show", "nope", "--tenant", "acme", "--type",
                                          "diag.noop", NULL };
    const char *const wrong_tenant[] = { "job", "show", "t-ok", "--tenant", "beta", NULL };
    char        *out, *err;
    json_t      *o, *events;
    json_error_t je;

    jf_h_provision(&srv, NULL);
    run_jobs(worker_env, "t", 0);

    cr_assert_eq(cli("json", js, &out, &err), 0, "%s", err);
    o = json_loads(out, 0, &je);
    cr_assert_not_null(o, "%s: %s", je.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "diag.sleep");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "record"), "state")),
                     "JOB_STATE_SUCCEEDED");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "record"), "attempts")), 1);
    events = json_object_get(o, "events");
    cr_assert_eq(json_array_size(events), OK_EVENTS);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 1), "event")),
                     "EVENT_KIND_SUCCEEDED");
    cr_assert_eq(json_array_size(json_object_get(o, "now")), 0, "no worker holds it");
    json_decref(o);
    free(out);
    free(err);

    cr_assert_eq(cli("unknown", unknown, &out, &err), 4, "%s", err);
    cr_assert(strstr(err, "no job nope for tenant acme") != NULL, "%s", err);
    cr_assert_str_empty(out);
    free(out);
    free(err);
    cr_assert_eq(cli("unknown2", unknown_typed, &out, &err), 4, "%s", err);
    cr_assert(strstr(err, "no job nope for tenant acme") != NULL, "%s", err);
    free(out);
    free(err);
    cr_assert_eq(cli("tenant", wrong_tenant, &out, &err), 4, "%s", err);
    free(out);
    free(err);
}
