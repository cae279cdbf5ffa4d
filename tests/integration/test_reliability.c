/*
 * test_reliability.c - the promises of DESIGN.md 5, each proved against a
 * real nats-server: effect once per success, retries within the policy,
 * dead letters with their reasons, duplicates after the dedupe window,
 * SIGKILL mid-job, poison pills, MaxDeliver quarantine, long jobs kept
 * alive by +WPI, server restarts, bad-input storms, schedules, fairness
 * and deadlines.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

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

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}



static int count(jf_h_proc_t *w, const char *id, const char *msg)
{
    char idf[200], msgf[100];
    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const needles[] = { idf, msgf, NULL };
    return jf_h_count_lines(w->err_path, needles);
}

static int wait_count(jf_h_proc_t *w, const char *id, const char *msg, int want, int ms)
{
    char idf[200], msgf[100];
    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const needles[] = { idf, msgf, NULL };
    return jf_h_wait_lines(w->err_path, needles, want, ms);
}

static const char *hdr(natsMsg *m, const char *name)
{
    const char *v = NULL;
    natsMsgHeader_Get(m, name, &v);
    return v;
}

#define STATE_SUCCEEDED 2
#define STATE_DEAD 4

static const char *const debug_env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4", NULL };

/* ---- 1. success ---------------------------------------------------------------- */

Test(reliability, success_runs_once_and_records_succeeded, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    int         state = 0;
    unsigned    attempts = 0;
    int64_t     ack_pending;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "ok-1", NULL);
    cr_assert_eq(wait_count(&w, "ok-1", "job succeeded", 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert(jf_h_ledger(nc, "acme.diag.noop.ok-1", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 1);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    jf_h_consumer_state(nc, "JOBS", "default", NULL, &ack_pending, NULL);
    cr_assert_eq(ack_pending, 0);
    cr_assert_eq(count(&w, "ok-1", "job started"), 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(reliability, ledger_keys_escape_any_job_id, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    int         state = 0;
    unsigned    attempts = 0;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "order.42/x=y*", NULL);
    cr_assert_eq(wait_count(&w, "order.42/x=y*", "job succeeded", 1, 10000), 1);
    cr_assert(jf_h_ledger(nc, "acme.diag.noop.order=2E42=2Fx=3Dy=2A", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- 2. retries ---------------------------------------------------------------- */

Test(reliability, retry_gaps_stay_within_the_policy_then_dead_letter, .init = setup,
     .fini = teardown)
{
    /* diag.fail: 5 attempts, base 100 ms, x2, cap 5 s, full jitter */
    static const int64_t ceiling[] = { 100, 200, 400, 800 };
    const char *const started[] = { "\"job_id\":\"flaky-9\"", "\"msg\":\"job started\"", NULL };
    const char *payload = "{\"retryable\":true,\"message\":\"upstream 503\"}";
    jf_h_proc_t w;
    char      **lines;
    int         n, state = 0;
    unsigned    attempts = 0;
    natsMsg    *dl;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "flaky-9", NULL);
    cr_assert_eq(wait_count(&w, "flaky-9", "job failed", 1, 15000), 1, "%s", jf_h_slurp(w.err_path));
    lines = jf_h_grep(w.err_path, started, &n);
    cr_assert_eq(n, 5, "5 attempts expected, saw %d", n);
    for (int i = 1; i < n; i++) {
        int64_t gap = jf_h_line_ts(lines[i]) - jf_h_line_ts(lines[i - 1]);
        /* full jitter: anywhere in [0, ceiling], plus scheduling slack */
        cr_assert_geq(gap, 0);
        cr_assert_leq(gap, ceiling[i - 1] + 400, "gap %d was %lld ms, ceiling %lld", i,
                      (long long)gap, (long long)ceiling[i - 1]);
    }
    jf_h_grep_free(lines, n);
    cr_assert_eq(count(&w, "flaky-9", "job will be retried"), 4);

    dl = jf_h_dlq_find(nc, "flaky-9", 0);
    cr_assert_not_null(dl, "no dead letter");
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "exhausted");
    cr_assert_str_eq(hdr(dl, "Jf-Attempts"), "5");
    cr_assert(strstr(hdr(dl, "Jf-Last-Error"), "upstream 503") != NULL);
    natsMsg_Destroy(dl);
    cr_assert(jf_h_ledger(nc, "acme.diag.fail.flaky-9", &state, &attempts));
    cr_assert_eq(state, STATE_DEAD);
    cr_assert_eq(attempts, 5);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(reliability, a_deadline_overrun_is_retried, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_JOB_DEADLINE=300ms", NULL };
    const char *const overran[] = { "\"job_id\":\"slow-1\"", "\"msg\":\"job will be retried\"",
                                    "deadline of 300 ms exceeded", NULL };
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":5000}", 11, "slow-1", NULL);
    cr_assert_geq(jf_h_wait_lines(w.err_path, overran, 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- 3. terminal failure, dead letter, replay ------------------------------------ */

Test(reliability, terminal_failure_dead_letters_with_every_header_and_replay_runs_it_again,
     .init = setup, .fini = teardown)
{
    char          payload[160];
    const int64_t until = now_ms() + 1500;
    const char   *const extra[] = { "X-Order", "42", NULL };
    jf_h_proc_t   w, p;
    natsMsg      *dl;
    int           state = 0;
    unsigned      attempts = 0;

    snprintf(payload, sizeof(payload),
             "{\"retryable\":false,\"message\":\"card declined\",\"failUntilMs\":\"%lld\"}",
             (long long)until);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "pay-7", extra);
    cr_assert_eq(wait_count(&w, "pay-7", "job failed", 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(count(&w, "pay-7", "job started"), 1, "a terminal failure must not retry");

    dl = jf_h_dlq_find(nc, "pay-7", 0);
    cr_assert_not_null(dl);
    cr_assert_str_eq(natsMsg_GetSubject(dl), "dlq.acme.diag.fail");
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "failed");
    cr_assert_str_eq(hdr(dl, "Jf-Attempts"), "1");
    cr_assert_str_eq(hdr(dl, "Jf-Last-Error"), "card declined");
    cr_assert_str_eq(hdr(dl, "Jf-Error-Code"), "JF_EINVAL");
    cr_assert_str_eq(hdr(dl, "Jf-Original-Subject"), "jobs.acme.diag.fail");
    cr_assert_str_eq(hdr(dl, "Jf-Original-Stream"), "JOBS");
    cr_assert_str_eq(hdr(dl, "Jf-Original-Seq"), "1");
    cr_assert_not_null(hdr(dl, "Jf-Dead-At"));
    cr_assert_not_null(hdr(dl, "Jf-Worker"));
    cr_assert_str_eq(hdr(dl, "X-Order"), "42", "original headers are kept");
    cr_assert_eq(natsMsg_GetDataLength(dl), (int)strlen(payload));
    cr_assert(memcmp(natsMsg_GetData(dl), payload, strlen(payload)) == 0, "payload kept");
    natsMsg_Destroy(dl);
    cr_assert(jf_h_ledger(nc, "acme.diag.fail.pay-7", &state, &attempts));
    cr_assert_eq(state, STATE_DEAD);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);

    /* The upstream is fixed; an operator replays the dead letter. */
    while (now_ms() <= until)
        jf_h_sleep_ms(50);
    {
        const char *const args[] = { "dlq", "replay", "--job", "pay-7", NULL };
        int rc = jf_h_run(&srv, "replay", NULL, args, &p);
        cr_assert_eq(rc, 0, "replay: %s %s", jf_h_slurp(p.out_path), jf_h_slurp(p.err_path));
    }
    cr_assert_eq(wait_count(&w, "pay-7", "job succeeded", 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(count(&w, "pay-7", "job started"), 2, "ran exactly once more");
    cr_assert(jf_h_ledger(nc, "acme.diag.fail.pay-7", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 1, "replay resets the attempts");
    cr_assert_null(jf_h_dlq_find(nc, "pay-7", 0), "the dead letter is gone after replay");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- 4. duplicates past the dedupe window --------------------------------------- */

Test(reliability, a_succeeded_job_enqueued_again_after_the_window_is_not_run,
     .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_DUPLICATE_WINDOW=1s", NULL };
    /* Each of the worker's two connections says so once. */
    const char *const reconnected[] = { "\"msg\":\"reconnected to NATS\"",
                                        "\"connection\":\"jobs\"", NULL };
    const char *const ledger_back[] = { "\"msg\":\"reconnected to NATS\"",
                                        "\"connection\":\"ledger\"", NULL };
    jf_h_proc_t w;
    int         state = 0;
    unsigned    attempts = 0;

    jf_h_provision(&srv, env);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "once-1", NULL));
    cr_assert_eq(wait_count(&w, "once-1", "job succeeded", 1, 10000), 1);

    /* Past the window, and after a restart the server forgets removed ids. */
    jf_h_sleep_ms(1500);
    natsConnection_Destroy(nc);
    jf_h_server_restart(&srv, 200);
    nc = jf_h_connect(&srv);
    cr_assert_eq(jf_h_wait_lines(w.err_path, reconnected, 1, 15000), 1);
    cr_assert_eq(jf_h_wait_lines(w.err_path, ledger_back, 1, 15000), 1);
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "once-1", NULL),
              "the stream must accept the id again once its window passed");
    cr_assert_eq(wait_count(&w, "once-1", "job duplicate", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(count(&w, "once-1", "job started"), 1, "never run twice");
    cr_assert(jf_h_ledger(nc, "acme.diag.noop.once-1", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 1);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- 5. SIGKILL mid-job ------------------------------------------------------------ */

Test(reliability, a_job_whose_worker_is_killed_runs_again_elsewhere_once,
     .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_ACK_WAIT=2s", NULL };
    jf_h_proc_t w1, w2;
    int         state = 0;
    unsigned    attempts = 0;

    jf_h_provision(&srv, env);
    jf_h_worker_start(&srv, "w1", debug_env, &w1);
    jf_h_wait_started(&w1);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":1500}", 11, "kill-1", NULL);
    cr_assert_eq(wait_count(&w1, "kill-1", "job started", 1, 10000), 1);
    jf_h_proc_stop(&w1, SIGKILL, 5000);

    jf_h_worker_start(&srv, "w2", debug_env, &w2);
    cr_assert_eq(wait_count(&w2, "kill-1", "job succeeded", 1, 15000), 1, "%s",
                 jf_h_slurp(w2.err_path));
    cr_assert_eq(count(&w1, "kill-1", "job succeeded"), 0);
    cr_assert(jf_h_ledger(nc, "acme.diag.sleep.kill-1", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 2, "the killed run is counted");
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- 5b. the ledger refuses the success record -------------------------------------- */

/* Make the ledger's stream refuse every write (a 1-byte message size
 * limit), or take writes again as provisioned. */
static void ledger_refuse_writes(bool refuse)
{
    static int32_t provisioned;
    jsCtx        *js = NULL;
    jsStreamInfo *si = NULL, *res = NULL;
    jsErrCode     jerr = 0;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, "KV_JF_LEDGER", NULL, &jerr), NATS_OK);
    if (refuse)
        provisioned = si->Config->MaxMsgSize;
    si->Config->MaxMsgSize = refuse ? 1 : provisioned;
    cr_assert_eq(js_UpdateStream(&res, js, si->Config, NULL, &jerr), NATS_OK, "jerr %d", jerr);
    jsStreamInfo_Destroy(res);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
}

/* The ack waits for the success record (DESIGN.md 5.1). If the ledger
 * refuses it, the job is not acknowledged: it waits in the worker, keeping
 * its lease, and the write is tried again until the ledger takes it. The
 * job runs once, and its record says so. */
Test(reliability, a_success_the_ledger_refuses_waits_and_is_recorded_once_it_can_be,
     .init = setup, .fini = teardown)
{
    const char *const waits[] = { "\"job_id\":\"refused-1\"",
                                  "the job's ledger record could not be written", NULL };
    jf_h_proc_t w;
    int         state = 0;
    unsigned    attempts = 0;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":1500}", 11, "refused-1", NULL);
    cr_assert_eq(wait_count(&w, "refused-1", "job started", 1, 10000), 1);
    ledger_refuse_writes(true);   /* the run is under way; its record will be refused */
    cr_assert_eq(jf_h_wait_lines(w.err_path, waits, 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(count(&w, "refused-1", "job succeeded"), 0, "acknowledged without its record");
    cr_assert(!jf_h_ledger(nc, "acme.diag.sleep.refused-1", &state, &attempts) ||
              state != STATE_SUCCEEDED);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 1, "the job is still in the stream");
    ledger_refuse_writes(false);
    cr_assert_eq(wait_count(&w, "refused-1", "job succeeded", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert(jf_h_ledger(nc, "acme.diag.sleep.refused-1", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 1, "one run");
    cr_assert_eq(count(&w, "refused-1", "job started"), 1, "it did not run again");
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* JF_LEDGER_FLUSH=batched: the ledger's connection batches its writes; the
 * promises are the same. A bad value is refused before anything starts. */
Test(reliability, a_batched_ledger_connection_keeps_the_promises, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                "JF_LEDGER_FLUSH=batched", NULL };
    const char *const bad[] = { "JF_LEDGER_FLUSH=sometimes", NULL };
    const char *const started[] = { "\"msg\":\"worker started\"",
                                    "\"ledger_flush\":\"batched\"", NULL };
    const char *const args[] = { "worker", NULL };
    jf_h_proc_t w, p;
    char        id[32], key[64];
    int         state = 0;
    unsigned    attempts = 0;
    char       *err;

    jf_h_provision(&srv, NULL);
    cr_assert_eq(jf_h_run(&srv, "bad", bad, args, &p), 2);
    err = jf_h_slurp(p.err_path);
    cr_assert(strstr(err, "JF_LEDGER_FLUSH") != NULL, "%s", err);
    free(err);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    cr_assert_eq(jf_h_count_lines(w.err_path, started), 1, "%s", jf_h_slurp(w.err_path));
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "batched-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
    }
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "batched-0", NULL);   /* in the window */
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 10000), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "batched-%d", i);
        cr_assert_eq(wait_count(&w, id, "job succeeded", 1, 10000), 1);
        snprintf(key, sizeof(key), "acme.diag.noop.batched-%d", i);
        cr_assert(jf_h_ledger(nc, key, &state, &attempts));
        cr_assert_eq(state, STATE_SUCCEEDED);
        cr_assert_eq(attempts, 1);
    }
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- 6. a poison pill that kills every worker ------------------------------------- */

Test(reliability, a_crashing_job_is_dead_lettered_and_the_others_complete,
     .init = setup, .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=2s", NULL };
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=2", "JF_DIAG_UNSAFE=1",
                                NULL };
    char        id[32], tag[16], logs[6][300];
    int         done = 0, crashes = 0, gens = 0;
    natsMsg    *dl;

    jf_h_provision(&srv, penv);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "good-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
        if (i == 4)
            jf_h_publish(nc, "jobs.acme.diag.crash", "{}", 2, "poison-1", NULL);
    }
    /* Run workers, restarting any that dies, as a supervisor would, until
     * the queue is drained. */
    for (; gens < 6; gens++) {
        jf_h_proc_t w;
        int         rc;

        snprintf(tag, sizeof(tag), "w%d", gens);
        jf_h_worker_start(&srv, tag, env, &w);
        snprintf(logs[gens], sizeof(logs[gens]), "%s", w.err_path);
        jf_h_wait_stream_msgs(nc, "JOBS", 0, 8000);
        rc = jf_h_proc_stop(&w, SIGTERM, 10000);
        if (rc == 128 + SIGABRT)
            crashes++;
        if (rc == 0 && jf_h_stream_msgs(nc, "JOBS") == 0)
            break;
    }
    /* A job in flight when the worker aborted may have recorded success
     * without its ack: its redelivery is then a duplicate, not a new run.
     * And the abort can come between a job's ack and its log line: the
     * ledger is the record of truth, the logs are the evidence we show. */
    for (int i = 0; i < 10; i++) {
        char     idf[48], key[64];
        int      n = 0, state = 0;
        unsigned attempts = 0;
        snprintf(idf, sizeof(idf), "\"job_id\":\"good-%d\"", i);
        const char *const ok[] = { idf, "\"msg\":\"job succeeded\"", NULL };
        const char *const dup[] = { idf, "\"msg\":\"job duplicate\"", NULL };
        for (int g = 0; g <= gens && g < 6; g++)
            n += jf_h_count_lines(logs[g], ok) + jf_h_count_lines(logs[g], dup);
        snprintf(key, sizeof(key), "acme.diag.noop.good-%d", i);
        if (n > 0 || (jf_h_ledger(nc, key, &state, &attempts) && state == 2 /* succeeded */))
            done++;
    }
    cr_assert_eq(done, 10, "every good job completes (done %d)", done);
    cr_assert_eq(crashes, 1, "the poison pill ran once, then the ledger stopped it");
    dl = jf_h_dlq_find(nc, "poison-1", 0);
    cr_assert_not_null(dl, "the poison pill is in the DLQ");
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "exhausted");
    cr_assert(strstr(hdr(dl, "Jf-Last-Error"), "worker died") != NULL, "%s",
              hdr(dl, "Jf-Last-Error"));
    natsMsg_Destroy(dl);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
}

/* ---- 7. quarantine after MaxDeliver ------------------------------------------------ */

/* Take one delivery of the pool's consumer without acknowledging it, as a
 * worker that dies before its ledger write would. */
static bool steal_delivery(const char *consumer)
{
    natsMsg *reply = NULL;
    char     subject[128];
    bool     got;

    snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.MSG.NEXT.JOBS.%s", consumer);
    if (natsConnection_RequestString(&reply, nc, subject, "{\"batch\":1,\"expires\":3000000000}",
                                     4000) != NATS_OK)
        return false;
    got = natsMsgHeader_Get(reply, "Status", &(const char *){ NULL }) != NATS_OK;
    natsMsg_Destroy(reply);
    return got;
}

Test(reliability, a_message_at_max_deliver_is_quarantined_once, .init = setup, .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=1s", "JF_MAX_DELIVER=2", NULL };
    const char *const quarantined[] = { "\"msg\":\"job quarantined\"", NULL };
    jf_h_proc_t w1, w2;
    natsMsg    *dl;
    int         n;

    jf_h_provision(&srv, penv);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "stuck-1", NULL);
    cr_assert(steal_delivery("default"), "first delivery");
    jf_h_sleep_ms(1200);
    cr_assert(steal_delivery("default"), "second delivery");
    /* Two listeners race for the advisory; one moves the message. */
    jf_h_worker_start(&srv, "w1", debug_env, &w1);
    jf_h_worker_start(&srv, "w2", debug_env, &w2);
    n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        n = jf_h_count_lines(w1.err_path, quarantined) + jf_h_count_lines(w2.err_path, quarantined);
        jf_h_sleep_ms(100);
    }
    jf_h_sleep_ms(500);
    n = jf_h_count_lines(w1.err_path, quarantined) + jf_h_count_lines(w2.err_path, quarantined);
    cr_assert_eq(n, 1, "exactly one worker quarantines: %s\n%s", jf_h_slurp(w1.err_path),
                 jf_h_slurp(w2.err_path));
    dl = jf_h_dlq_find(nc, "stuck-1", 0);
    cr_assert_not_null(dl);
    cr_assert_str_eq(hdr(dl, "Jf-Failure-Reason"), "quarantined");
    cr_assert(strstr(hdr(dl, "Jf-Last-Error"), "2 deliveries") != NULL, "%s",
              hdr(dl, "Jf-Last-Error"));
    natsMsg_Destroy(dl);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 1, "one copy in the DLQ");
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0, "deleted from JOBS");
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- 8. long jobs ----------------------------------------------------------------- */

Test(reliability, a_job_longer_than_ack_wait_completes_once, .init = setup, .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=1s", NULL };
    jf_h_proc_t w1, w2;
    int64_t     redelivered;

    jf_h_provision(&srv, penv);
    jf_h_worker_start(&srv, "w1", debug_env, &w1);
    jf_h_worker_start(&srv, "w2", debug_env, &w2);
    jf_h_wait_started(&w1);
    jf_h_wait_started(&w2);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":3500}", 11, "long-1", NULL);
    cr_assert_eq(wait_count(&w1, "long-1", "job succeeded", 1, 10000) +
                 wait_count(&w2, "long-1", "job succeeded", 1, 100), 1);
    cr_assert_eq(count(&w1, "long-1", "job started") + count(&w2, "long-1", "job started"), 1,
                 "+WPI kept the job with its worker");
    jf_h_consumer_state(nc, "JOBS", "default", NULL, NULL, &redelivered);
    cr_assert_eq(redelivered, 0);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- 9. server restart while jobs flow ----------------------------------------------- */

struct flow {
    int published;
    int total;
};

static void *publisher(void *arg)
{
    struct flow    *f = arg;
    natsConnection *pc = NULL;
    natsOptions    *o = NULL;
    jsCtx          *js = NULL;
    char            id[32];

    natsOptions_Create(&o);
    natsOptions_SetURL(o, srv.url);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 100);
    natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    natsConnection_Connect(&pc, o);
    natsConnection_JetStream(&js, pc, NULL);
    for (int i = 0; i < f->total; i++) {
        jsPubOptions po;
        snprintf(id, sizeof(id), "flow-%d", i);
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = 1000;
        /* Retry until the stream acknowledges: the server may be down. */
        for (int tries = 0; tries < 200; tries++) {
            if (js_Publish(NULL, js, "jobs.acme.diag.noop", "{}", 2, &po, NULL) == NATS_OK)
                break;
            jf_h_sleep_ms(100);
        }
        __atomic_store_n(&f->published, i + 1, __ATOMIC_SEQ_CST);
        jf_h_sleep_ms(5);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(pc);
    natsOptions_Destroy(o);
    return NULL;
}

Test(reliability, a_server_restart_while_jobs_flow_loses_nothing, .init = setup, .fini = teardown)
{
    struct flow f = { 0, 300 };
    pthread_t   t;
    jf_h_proc_t w1, w2;
    int         done;
    char        id[32], idf[64];

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w1", debug_env, &w1);
    jf_h_worker_start(&srv, "w2", debug_env, &w2);
    jf_h_wait_started(&w1);
    jf_h_wait_started(&w2);
    cr_assert_eq(pthread_create(&t, NULL, publisher, &f), 0);
    while (__atomic_load_n(&f.published, __ATOMIC_SEQ_CST) < 100)
        jf_h_sleep_ms(10);
    natsConnection_Destroy(nc);
    jf_h_server_restart(&srv, 500);
    nc = jf_h_connect(&srv);
    pthread_join(t, NULL);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 30000), 0, "the queue drains");
    done = 0;
    for (int i = 0; i < f.total; i++) {
        snprintf(id, sizeof(id), "flow-%d", i);
        snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
        const char *const ok[] = { idf, "\"msg\":\"job succeeded\"", NULL };
        const char *const dup[] = { idf, "\"msg\":\"job duplicate\"", NULL };
        if (jf_h_count_lines(w1.err_path, ok) + jf_h_count_lines(w2.err_path, ok) +
            jf_h_count_lines(w1.err_path, dup) + jf_h_count_lines(w2.err_path, dup) > 0)
            done++;
    }
    cr_assert_eq(done, f.total, "every job completed: %d of %d", done, f.total);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- 10. a storm of bad input ------------------------------------------------------------ */

Test(reliability, a_bad_input_storm_kills_nothing_and_dead_letters_everything_bad,
     .init = setup, .fini = teardown)
{
    static const struct { const char *subject, *data; bool with_id; } bad[] = {
        { "jobs.acme.diag.noop", "{}", false },
        { "jobs.acme.diag.nope", "{}", true },
        { "jobs.acme.diag.sleep", "{\"ms\":", true },
        { "jobs.acme.diag.sleep", "{\"ms\":\"x\"}", true },
        { "jobs.Acme.diag.noop", "{}", true },
        { "jobs.acme.diag.noop.x", "{}", true },
        { "jobs.acme.diag.crash", "{}", true },
        { "jobs.acme.diag.noop", "[1,2,3]", true },
    };
    const int   nbad = 1200, ngood = 300;
    const char *const ok[] = { "\"msg\":\"job succeeded\"", NULL };
    jf_h_proc_t w1, w2;
    char        id[32];
    int         b = 0, g = 0;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w1", debug_env, &w1);
    jf_h_worker_start(&srv, "w2", debug_env, &w2);
    while (b < nbad || g < ngood) {
        if (b < nbad) {
            const size_t k = (size_t)b % (sizeof(bad) / sizeof(bad[0]));
            snprintf(id, sizeof(id), "bad-%d", b);
            jf_h_publish(nc, bad[k].subject, bad[k].data, (int)strlen(bad[k].data),
                         bad[k].with_id ? id : NULL, NULL);
            b++;
        }
        if (b % 4 == 0 && g < ngood) {
            snprintf(id, sizeof(id), "fine-%d", g++);
            jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
        }
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 60000), 0, "the queue drains");
    cr_assert_eq(jf_h_count_lines(w1.err_path, ok) + jf_h_count_lines(w2.err_path, ok), ngood);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "DLQ", (uint64_t)nbad, 10000), (uint64_t)nbad,
                 "every bad message is a dead letter");
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 10000), 0, "worker 1 survived");
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0, "worker 2 survived");
}

/* ---- scheduled jobs ---------------------------------------------------------------- */

Test(reliability, a_scheduled_job_waits_without_being_charged_an_attempt,
     .init = setup, .fini = teardown)
{
    const char *const started[] = { "\"job_id\":\"later-1\"", "\"msg\":\"job started\"", NULL };
    jf_h_proc_t w;
    char        nb[32];
    const char *const h[] = { "Jf-Not-Before", nb, NULL };
    const char *const bad[] = { "Jf-Not-Before", "tomorrow", NULL };
    int64_t     t0 = now_ms();
    char      **lines;
    int         n, state = 0;
    unsigned    attempts = 0;

    snprintf(nb, sizeof(nb), "%lld", (long long)(t0 + 1500));
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", debug_env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "later-1", h);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "later-bad", bad);
    cr_assert_eq(wait_count(&w, "later-1", "job succeeded", 1, 10000), 1);
    lines = jf_h_grep(w.err_path, started, &n);
    cr_assert_eq(n, 1);
    cr_assert_geq(jf_h_line_ts(lines[0]), t0 + 1450, "started %lld ms after publishing",
                  (long long)(jf_h_line_ts(lines[0]) - t0));
    jf_h_grep_free(lines, n);
    cr_assert(jf_h_ledger(nc, "acme.diag.noop.later-1", &state, &attempts));
    cr_assert_eq(attempts, 1, "waiting is not an attempt");
    cr_assert_eq(wait_count(&w, "later-bad", "job rejected", 1, 5000), 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- fairness ---------------------------------------------------------------------- */

Test(reliability, one_tenants_burst_cannot_take_every_slot, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=6",
                                "JF_TENANT_MAX_INFLIGHT=2", NULL };
    const char *const big_start[] = { "\"tenant\":\"big\"", "\"msg\":\"job started\"", NULL };
    const char *const big_end[] = { "\"tenant\":\"big\"", "\"msg\":\"job succeeded\"", NULL };
    const char *const small_end[] = { "\"tenant\":\"small\"", "\"msg\":\"job succeeded\"", NULL };
    jf_h_proc_t w;
    char        id[32];
    char      **s, **e, **se;
    int         ns, ne, nse, max_overlap = 0;
    int64_t     last_big = 0;

    jf_h_provision(&srv, NULL);
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "big-%d", i);
        jf_h_publish(nc, "jobs.big.diag.sleep", "{\"ms\":300}", 10, id, NULL);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "small-%d", i);
        jf_h_publish(nc, "jobs.small.diag.sleep", "{\"ms\":300}", 10, id, NULL);
    }
    jf_h_worker_start(&srv, "w", env, &w);
    cr_assert_eq(jf_h_wait_lines(w.err_path, big_end, 12, 20000), 12);
    s = jf_h_grep(w.err_path, big_start, &ns);
    e = jf_h_grep(w.err_path, big_end, &ne);
    se = jf_h_grep(w.err_path, small_end, &nse);
    cr_assert_eq(nse, 3);
    /* The most big-tenant jobs running at any start instant. */
    for (int i = 0; i < ns; i++) {
        int64_t t = jf_h_line_ts(s[i]);
        int     running = 0;
        for (int j = 0; j < ns; j++)
            if (jf_h_line_ts(s[j]) <= t)
                running++;
        for (int j = 0; j < ne; j++)
            if (jf_h_line_ts(e[j]) <= t)
                running--;
        if (running > max_overlap)
            max_overlap = running;
    }
    for (int j = 0; j < ne; j++)
        if (jf_h_line_ts(e[j]) > last_big)
            last_big = jf_h_line_ts(e[j]);
    cr_assert_leq(max_overlap, 2, "tenant big ran %d jobs at once", max_overlap);
    for (int j = 0; j < nse; j++)
        cr_assert_lt(jf_h_line_ts(se[j]), last_big, "small tenant waited for the whole burst");
    jf_h_grep_free(s, ns);
    jf_h_grep_free(e, ne);
    jf_h_grep_free(se, nse);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}
