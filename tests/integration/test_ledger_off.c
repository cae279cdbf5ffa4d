/*
 * test_ledger_off.c - dedupe-only mode (JF_LEDGER_MODE=off, issue 7)
 * against a real nats-server: jobs succeed, retry and die as in the
 * default mode, attempts come from JetStream's delivery count, and the
 * JF_LEDGER bucket is never written. What the mode gives up (DESIGN.md
 * 5.1) is stated in docs/reliability.md; this file proves what it keeps.
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

static const char *const off_env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                       "JF_LEDGER_MODE=off", NULL };

static int count(jf_h_proc_t *w, const char *id, const char *msg)
{
    return jf_h_job_lines(w->err_path, id, msg, 0, 0);
}

static int wait_count(jf_h_proc_t *w, const char *id, const char *msg, int want)
{
    return jf_h_job_lines(w->err_path, id, msg, want, 15000);
}

static const char *hdr(natsMsg *m, const char *name)
{
    const char *v = NULL;
    natsMsgHeader_Get(m, name, &v);
    return v ? v : "";
}

/* The ledger's KV stream holds nothing: no record was read into being. */
static void assert_ledger_empty(const char *id)
{
    int      state = 0;
    unsigned attempts = 0;
    char     key[200];

    cr_assert_eq(jf_h_stream_msgs(nc, "KV_JF_LEDGER"), 0, "JF_LEDGER must stay empty");
    snprintf(key, sizeof(key), "acme.diag.fail.%s", id);
    cr_assert_not(jf_h_ledger(nc, key, &state, &attempts), "no record for %s", id);
}

Test(ledger_off, start_up_says_the_ledger_is_off_and_a_job_succeeds_once, .init = setup,
     .fini = teardown)
{
    jf_h_proc_t w;
    const char *const started[] = { "\"msg\":\"worker started\"", "\"ledger_mode\":\"off\"",
                                    NULL };
    const char *const warned[] = { "\"level\":\"warn\"", "dedupe-only mode weakens", NULL };

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", off_env, &w);
    jf_h_wait_started(&w);
    cr_assert_eq(jf_h_count_lines(w.err_path, started), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_count_lines(w.err_path, warned), 1, "%s", jf_h_slurp(w.err_path));

    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "off-ok-1", NULL));
    cr_assert_not(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "off-ok-1", NULL),
                  "the duplicate window still drops a second publish of the same id");
    cr_assert_eq(wait_count(&w, "off-ok-1", "job succeeded", 1), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(300);
    cr_assert_eq(count(&w, "off-ok-1", "job started"), 1);
    {
        const char *const first[] = { "\"job_id\":\"off-ok-1\"", "\"msg\":\"job succeeded\"",
                                      "\"attempt\":1", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, first), 1);
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_stream_msgs(nc, "KV_JF_LEDGER"), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(ledger_off, a_retry_then_success_counts_deliveries, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    const char *payload = "{\"retryable\":true,\"message\":\"flaky\",\"succeedOnAttempt\":3}";

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", off_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "off-flaky-1", NULL);
    cr_assert_eq(wait_count(&w, "off-flaky-1", "job succeeded", 1), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(count(&w, "off-flaky-1", "job will be retried"), 2);
    for (int a = 1; a <= 3; a++) {
        char attempt[32];
        snprintf(attempt, sizeof(attempt), "\"attempt\":%d", a);
        const char *const run[] = { "\"job_id\":\"off-flaky-1\"", "\"msg\":\"job started\"",
                                    attempt, NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, run), 1, "attempt %d", a);
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    assert_ledger_empty("off-flaky-1");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(ledger_off, failures_are_dead_lettered_with_their_attempts, .init = setup,
     .fini = teardown)
{
    jf_h_proc_t w;
    natsMsg    *dl;
    const char *down = "{\"retryable\":true,\"message\":\"always down\"}";
    const char *declined = "{\"retryable\":false,\"message\":\"card declined\"}";

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", off_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", down, (int)strlen(down), "off-down-1", NULL);
    jf_h_publish(nc, "jobs.acme.diag.fail", declined, (int)strlen(declined), "off-decl-1", NULL);
    cr_assert_eq(wait_count(&w, "off-down-1", "job failed", 1), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(wait_count(&w, "off-decl-1", "job failed", 1), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(500);

    /* retries used up: five runs, counted by the delivery count */
    cr_assert_eq(count(&w, "off-down-1", "job started"), 5);
    cr_assert_eq(count(&w, "off-down-1", "job will be retried"), 4);
    dl = jf_h_dlq_find(nc, "off-down-1", 0);
    cr_assert_not_null(dl, "no dead letter for off-down-1");
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "exhausted");
    cr_assert_str_eq(hdr(dl, "Jf-Attempts"), "5");
    cr_assert(strstr(hdr(dl, "Jf-Last-Error"), "always down") != NULL);
    natsMsg_Destroy(dl);

    /* a terminal failure: one run, straight to the DLQ */
    cr_assert_eq(count(&w, "off-decl-1", "job started"), 1);
    dl = jf_h_dlq_find(nc, "off-decl-1", 0);
    cr_assert_not_null(dl, "no dead letter for off-decl-1");
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "failed");
    cr_assert_str_eq(hdr(dl, "Jf-Attempts"), "1");
    natsMsg_Destroy(dl);

    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    assert_ledger_empty("off-down-1");
    assert_ledger_empty("off-decl-1");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}
