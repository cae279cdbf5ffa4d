/*
 * test_worker.c - the worker end to end against a real nats-server:
 * provision, run, duplicates, retries, failures, bad input, shutdown.
 *
 * Outcomes are read from three places a user would look: the stream and
 * consumer state (JetStream API), and the worker's JSON log lines.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

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


static const char *const json_ct[] = { "Content-Type", "application/json", NULL };

/* Wait until the worker logged that it started pulling. */

static int count_outcome(jf_h_proc_t *w, const char *id, const char *msg)
{
    return jf_h_job_lines(w->err_path, id, msg, 0, 0);
}

static int wait_outcome(jf_h_proc_t *w, const char *id, const char *msg, int want)
{
    return jf_h_job_lines(w->err_path, id, msg, want, 15000);
}

static const char *const debug_env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4", NULL };

/* ---- provisioning ---------------------------------------------------------- */

Test(provision, twice_is_a_no_op, .init = setup, .fini = teardown)
{
    jf_h_proc_t p;
    const char *const args[] = { "provision", NULL };
    char *out;

    cr_assert_eq(jf_h_run(&srv, "prov1", NULL, args, &p), 0, "%s", jf_h_slurp(p.err_path));
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "stream   JOBS         created") != NULL, "%s", out);
    cr_assert(strstr(out, "consumer default      created") != NULL, "%s", out);
    free(out);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "keep-me", json_ct);

    cr_assert_eq(jf_h_run(&srv, "prov2", NULL, args, &p), 0, "%s", jf_h_slurp(p.err_path));
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "created") == NULL && strstr(out, "updated") == NULL, "%s", out);
    cr_assert(strstr(out, "stream   JOBS         unchanged") != NULL, "%s", out);
    cr_assert(strstr(out, "bucket   JF_LEDGER    unchanged") != NULL, "%s", out);
    cr_assert(strstr(out, "consumer default      unchanged") != NULL, "%s", out);
    free(out);
    /* nothing was lost by the second run */
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 1);
}

Test(provision, a_changed_setting_updates_in_place, .init = setup, .fini = teardown)
{
    jf_h_proc_t p;
    const char *const args[] = { "provision", NULL };
    const char *const env[] = { "JF_ACK_WAIT=45s", "JF_DUPLICATE_WINDOW=5m", NULL };
    char *out;

    jf_h_provision(&srv, NULL);
    cr_assert_eq(jf_h_run(&srv, "prov2", env, args, &p), 0, "%s", jf_h_slurp(p.err_path));
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "stream   JOBS         updated") != NULL, "%s", out);
    cr_assert(strstr(out, "consumer default      updated") != NULL, "%s", out);
    free(out);
}

/* ---- the success path -------------------------------------------------------- */

Test(worker, runs_a_job_once_and_acks_it, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    uint64_t    pending;
    int64_t     ack_pending, redelivered;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    jf_h_wait_started(&w);
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{\"note\":\"hi\"}", 13, "order-42", NULL));
    cr_assert_eq(wait_outcome(&w, "order-42", "job succeeded", 1), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(300);
    cr_assert_eq(count_outcome(&w, "order-42", "job succeeded"), 1);
    cr_assert_eq(count_outcome(&w, "order-42", "job started"), 1);
    jf_h_consumer_state(nc, "JOBS", "default", &pending, &ack_pending, &redelivered);
    cr_assert_eq(pending, 0);
    cr_assert_eq(ack_pending, 0);
    cr_assert_eq(redelivered, 0);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0, "acked work-queue message must be removed");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(worker, same_id_twice_within_the_window_runs_once, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "dup-1", NULL));
    cr_assert_not(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "dup-1", NULL),
                  "the stream must report the second publish as a duplicate");
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    cr_assert_eq(wait_outcome(&w, "dup-1", "job succeeded", 1), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(500);
    cr_assert_eq(count_outcome(&w, "dup-1", "job succeeded"), 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(worker, enqueue_command_runs_through_the_worker, .init = setup, .fini = teardown)
{
    jf_h_proc_t w, p;
    const char *const args[] = { "enqueue", "diag.sleep", "--tenant", "acme", "--id", "cli-1",
                                 "--json", "{\"ms\": 20}", NULL };
    const char *const bad[] = { "enqueue", "diag.sleep", "--tenant", "acme", "--id", "cli-2",
                                "--json", "{\"msec\": 20}", NULL };
    const char *const unknown[] = { "enqueue", "diag.nope", "--tenant", "acme", "--id", "cli-3",
                                    "--json", "{}", NULL };
    char *out;

    jf_h_provision(&srv, NULL);
    cr_assert_eq(jf_h_run(&srv, "enq", NULL, args, &p), 0, "%s", jf_h_slurp(p.err_path));
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "enqueued diag.sleep id=cli-1") != NULL, "%s", out);
    free(out);
    cr_assert_eq(jf_h_run(&srv, "enq-dup", NULL, args, &p), 0);
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "duplicate") != NULL, "%s", out);
    free(out);
    cr_assert_eq(jf_h_run(&srv, "enq-bad", NULL, bad, &p), 2);
    out = jf_h_slurp(p.err_path);
    cr_assert(strstr(out, "msec") != NULL, "%s", out);
    free(out);
    cr_assert_eq(jf_h_run(&srv, "enq-unknown", NULL, unknown, &p), 2);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 1, "rejected enqueues must publish nothing");

    jf_h_worker_start(&srv, "worker", debug_env, &w);
    cr_assert_eq(wait_outcome(&w, "cli-1", "job succeeded", 1), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- retry and failure paths -------------------------------------------------- */

Test(worker, retryable_failure_is_retried_then_succeeds, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    const char *payload = "{\"retryable\":true,\"message\":\"flaky\",\"succeedOnAttempt\":3}";

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "flaky-1", NULL);
    cr_assert_eq(wait_outcome(&w, "flaky-1", "job succeeded", 1), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(count_outcome(&w, "flaky-1", "job will be retried"), 2);
    {
        const char *const third[] = { "\"job_id\":\"flaky-1\"", "\"msg\":\"job succeeded\"",
                                      "\"attempt\":3", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, third), 1);
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(worker, retries_stop_at_max_attempts, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    const char *payload = "{\"retryable\":true,\"message\":\"always down\"}";

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "down-1", NULL);
    cr_assert_eq(wait_outcome(&w, "down-1", "job failed", 1), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(count_outcome(&w, "down-1", "job will be retried"), 4);
    {
        const char *const why[] = { "\"job_id\":\"down-1\"", "retries exhausted after 5 attempts",
                                    "always down", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, why), 1);
    }
    jf_h_sleep_ms(500);
    cr_assert_eq(count_outcome(&w, "down-1", "job started"), 5);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(worker, terminal_failure_is_not_retried, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    int64_t     ack_pending;
    const char *payload = "{\"retryable\":false,\"message\":\"card declined\"}";

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "declined-1", NULL);
    cr_assert_eq(wait_outcome(&w, "declined-1", "job failed", 1), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(700);
    cr_assert_eq(count_outcome(&w, "declined-1", "job started"), 1);
    {
        const char *const why[] = { "\"job_id\":\"declined-1\"", "card declined",
                                    "\"outcome\":\"failed\"", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, why), 1);
    }
    jf_h_consumer_state(nc, "JOBS", "default", NULL, &ack_pending, NULL);
    cr_assert_eq(ack_pending, 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- bad input ------------------------------------------------------------------- */

struct bad_input {
    const char *subject;
    const char *data;
    const char *id;
    const char *ctype;
    const char *reason;   /* must appear in the rejection line */
};

Test(worker, bad_input_is_rejected_with_its_reason_and_the_worker_keeps_serving,
     .init = setup, .fini = teardown)
{
    static char big[2048];
    const struct bad_input cases[] = {
        { "jobs.acme.diag.noop", "{}", NULL, NULL, "Nats-Msg-Id) is missing" },
        { "jobs.acme.diag.nope", "{}", "bad-2", NULL, "unknown job type 'diag.nope'" },
        { "jobs.acme.nomod.run", "{}", "bad-3", NULL, "unknown job type 'nomod.run'" },
        { "jobs.acme.diag.sleep", "{\"ms\":", "bad-4", NULL, "Sleep in JSON: invalid JSON at line 1" },
        { "jobs.acme.diag.sleep", "{\"ms\":\"soon\"}", "bad-5", NULL, "field 'ms': expected an integer" },
        { "jobs.acme.diag.sleep", "{\"seconds\":1}", "bad-6", NULL, "unknown field 'seconds'" },
        { "jobs.acme.diag.noop", "{}", "bad-7", "text/plain", "unsupported Content-Type" },
        { "jobs.acme.diag.sleep", "\x08\x80", "bad-8", "application/protobuf",
          "not a valid binary jetfleet.diag.v1.Sleep" },
        { "jobs.ACME.diag.noop", "{}", "bad-9", NULL, "bad subject: tenant" },
        { "jobs.acme.diag.noop.extra", "{}", "bad-10", NULL, "extra tokens" },
        { "jobs.acme.diag.crash", "{}", "bad-11", NULL, "JF_DIAG_UNSAFE" },
        { "jobs.acme.diag.noop", big, "bad-12", NULL, "JF_MAX_PAYLOAD is 1024" },
        { "jobs.acme.diag.noop", "{}", "has space", NULL, "0x20" },
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_MAX_PAYLOAD=1KiB", NULL };
    jf_h_proc_t w;

    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", env, &w);
    jf_h_wait_started(&w);
    for (size_t i = 0; i < n; i++) {
        const char *hdr[] = { "Content-Type", cases[i].ctype, NULL };
        jf_h_publish(nc, cases[i].subject, cases[i].data, (int)strlen(cases[i].data),
                     cases[i].id, cases[i].ctype ? hdr : NULL);
    }
    {
        const char *const rejected[] = { "\"msg\":\"job rejected\"", NULL };
        cr_assert_eq(jf_h_wait_lines(w.err_path, rejected, (int)n, 15000), (int)n, "%s",
                     jf_h_slurp(w.err_path));
    }
    for (size_t i = 0; i < n; i++) {
        const char *const why[] = { "\"msg\":\"job rejected\"", cases[i].reason, NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, why), 1, "case %zu: no rejection naming '%s'",
                     i, cases[i].reason);
    }
    /* The worker is alive and still runs good jobs. */
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "good-after-bad", NULL);
    cr_assert_eq(wait_outcome(&w, "good-after-bad", "job succeeded", 1), 1);
    {
        const char *const crash[] = { "\"msg\":\"job started\"", "diag.crash", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, crash), 0, "an unsafe job ran");
    }
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- shutdown --------------------------------------------------------------------- */

Test(worker, sigterm_with_jobs_in_flight_loses_none, .init = setup, .fini = teardown)
{
    const char *const env1[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                 "JF_SHUTDOWN_GRACE=10s", NULL };
    const char *const started[] = { "\"msg\":\"job started\"", NULL };
    const char *const succeeded[] = { "\"msg\":\"job succeeded\"", NULL };
    jf_h_proc_t w1, w2;
    char        id[32];
    int         done1, done2;

    jf_h_provision(&srv, NULL);
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "slow-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":400}", 10, id, NULL);
    }
    jf_h_worker_start(&srv, "w1", env1, &w1);
    cr_assert_geq(jf_h_wait_lines(w1.err_path, started, 4, 10000), 4);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 15000), 0, "worker must exit 0 on SIGTERM: %s",
                 jf_h_slurp(w1.err_path));
    done1 = jf_h_count_lines(w1.err_path, succeeded);
    /* every job it started, it finished */
    cr_assert_eq(done1, jf_h_count_lines(w1.err_path, started), "%s", jf_h_slurp(w1.err_path));

    jf_h_worker_start(&srv, "w2", env1, &w2);
    done2 = jf_h_wait_lines(w2.err_path, succeeded, 12 - done1, 20000);
    cr_assert_eq(done1 + done2, 12, "w1 %d + w2 %d", done1, done2);
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "slow-%d", i);
        cr_assert_eq(count_outcome(&w1, id, "job succeeded") + count_outcome(&w2, id, "job succeeded"),
                     1, "%s ran %d times", id,
                     count_outcome(&w1, id, "job succeeded") + count_outcome(&w2, id, "job succeeded"));
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGINT, 15000), 0);
}

Test(worker, a_job_overrunning_the_grace_is_given_back, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_SHUTDOWN_GRACE=300ms", NULL };
    const char *const started[] = { "\"msg\":\"job started\"", "long-1", NULL };
    const char *const returned[] = { "\"msg\":\"job returned at shutdown\"", "long-1", NULL };
    jf_h_proc_t w, w2;

    jf_h_provision(&srv, NULL);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":60000}", 12, "long-1", NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    cr_assert_eq(jf_h_wait_lines(w.err_path, started, 1, 10000), 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 5000), 0, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_count_lines(w.err_path, returned), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 1);
    /* Given back without delay: another worker starts it long before the
     * 30 s AckWait would have expired. */
    jf_h_worker_start(&srv, "w2", env, &w2);
    cr_assert_eq(jf_h_wait_lines(w2.err_path, started, 1, 5000), 1, "%s",
                 jf_h_slurp(w2.err_path));
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 5000), 0);
}

/* ---- connection loss ----------------------------------------------------------------- */

Test(worker, survives_a_server_restart_and_pulls_again, .init = setup, .fini = teardown)
{
    /* Each of the worker's two connections says so once. */
    const char *const reconnected[] = { "\"msg\":\"reconnected to NATS\"",
                                        "\"connection\":\"jobs\"", NULL };
    const char *const ledger_back[] = { "\"msg\":\"reconnected to NATS\"",
                                        "\"connection\":\"ledger\"", NULL };
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "before-restart", NULL);
    cr_assert_eq(wait_outcome(&w, "before-restart", "job succeeded", 1), 1);

    natsConnection_Destroy(nc);
    jf_h_server_restart(&srv, 500);
    cr_assert_eq(jf_h_wait_lines(w.err_path, reconnected, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_wait_lines(w.err_path, ledger_back, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    nc = jf_h_connect(&srv);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "after-restart", NULL);
    cr_assert_eq(wait_outcome(&w, "after-restart", "job succeeded", 1), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(worker, exits_when_its_consumer_is_deleted, .init = setup, .fini = teardown)
{
    jsCtx      *js = NULL;
    jf_h_proc_t w;
    int         rc;

    jf_h_provision(&srv, NULL);
    /* Short heartbeats: whether the server answers the waiting pull with
     * 409 Consumer Deleted or just falls silent, the worker must notice. */
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_PULL_HEARTBEAT=1s",
                                "JF_PULL_EXPIRES=10s", NULL };
    jf_h_worker_start(&srv, "worker", env, &w);
    jf_h_wait_started(&w);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_DeleteConsumer(js, "JOBS", "default", NULL, NULL), NATS_OK);
    jsCtx_Destroy(js);
    /* Nothing can be pulled any more: the worker must say so and stop
     * with a failure, not spin or hang. */
    rc = jf_h_proc_stop(&w, 0, 20000);
    cr_assert_eq(rc, 1, "rc %d: %s", rc, jf_h_slurp(w.err_path));
    {
        const char *const gone[] = { "consumer", "deleted", NULL };
        cr_assert_geq(jf_h_count_lines(w.err_path, gone), 1, "%s", jf_h_slurp(w.err_path));
    }
}

/* ---- start-up errors ---------------------------------------------------------------- */

Test(worker, refuses_to_start_without_its_consumer, .init = setup, .fini = teardown)
{
    jf_h_proc_t p;
    const char *const args[] = { "worker", NULL };
    char *log;

    cr_assert_eq(jf_h_run(&srv, "noconsumer", NULL, args, &p), 4);
    log = jf_h_slurp(p.err_path);
    cr_assert(strstr(log, "jetfleet provision") != NULL, "%s", log);
    free(log);
}

Test(worker, reports_a_dead_server, .init = setup, .fini = teardown)
{
    jf_h_proc_t p;
    const char *const args[] = { "worker", NULL };
    const char *const env[] = { "JF_NATS_URL=nats://127.0.0.1:1", "JF_NATS_CONNECT_TIMEOUT=500ms",
                                NULL };
    char *log;

    cr_assert_eq(jf_h_run(&srv, "dead", env, args, &p), 3);
    log = jf_h_slurp(p.err_path);
    cr_assert(strstr(log, "cannot connect to NATS") != NULL, "%s", log);
    free(log);
}

Test(cli, bad_configuration_exits_2_naming_the_variable, .init = setup, .fini = teardown)
{
    jf_h_proc_t p;
    const char *const args[] = { "config", "check", NULL };
    const char *const env[] = { "JF_CONCURRENCY=lots", "JF_SHUTDOWN_GRACE=5", NULL };
    const char *const good[] = { "JF_NATS_USER=alice", "JF_NATS_PASSWORD=hunter2", NULL };
    char *err, *out;

    cr_assert_eq(jf_h_run(&srv, "cfg", env, args, &p), 2);
    err = jf_h_slurp(p.err_path);
    cr_assert(strstr(err, "JF_CONCURRENCY: 'lots' is not an integer") != NULL, "%s", err);
    cr_assert(strstr(err, "JF_SHUTDOWN_GRACE") != NULL, "%s", err);
    free(err);
    cr_assert_eq(jf_h_run(&srv, "cfg-ok", good, args, &p), 0);
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "hunter2") == NULL, "a secret was printed: %s", out);
    cr_assert(strstr(out, "JF_NATS_PASSWORD=<redacted>") != NULL, "%s", out);
    free(out);
}

Test(cli, every_subcommand_has_help, .init = setup, .fini = teardown)
{
    const char *const cmds[][3] = {
        { "worker", "--help", NULL }, { "provision", "--help", NULL },
        { "enqueue", "--help", NULL }, { "version", "--help", NULL },
        { "modules", "--help", NULL },
    };
    jf_h_proc_t p;

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        cr_assert_eq(jf_h_run(&srv, "help", NULL, cmds[i], &p), 0, "%s --help", cmds[i][0]);
        char *out = jf_h_slurp(p.out_path);
        cr_assert(strstr(out, "usage: jetfleet") != NULL, "%s", out);
        free(out);
    }
    {
        const char *const a[] = { "config", "check", "--help", NULL };
        cr_assert_eq(jf_h_run(&srv, "help", NULL, a, &p), 0);
        const char *const b[] = { "nonsense", NULL };
        cr_assert_eq(jf_h_run(&srv, "help", NULL, b, &p), 2);
    }
}
