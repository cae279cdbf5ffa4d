/*
 * test_pipeline.c - the job pipeline under the faults it must survive, on
 * a real nats-server: a worker frozen past AckWait with jobs in its queue,
 * a deleted ledger bucket, a deleted AUDIT stream, shutdown with jobs that
 * have not started, a job held by its tenant's limit, and `jetfleet job
 * show` asking the workers about a job that runs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <jetfleet/v1/event.pb-c.h>

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

#define STATE_SUCCEEDED 2

/* ---- helpers ---------------------------------------------------------------------------- */

/* The pool's unacknowledged jobs, once they reach want (or after 1 s). */
static int64_t wait_ack_pending(int64_t want)
{
    int64_t  ack_pending = 0;
    uint64_t pending = 0;

    for (int i = 0; i < 50; i++) {
        jf_h_consumer_state(nc, "JOBS", "default", &pending, &ack_pending, NULL);
        if (ack_pending >= want)
            break;
        jf_h_sleep_ms(20);
    }
    return ack_pending;
}

/* GET http://<addr><path>: the status (0 when unreachable); *out the body. */
static long http_get(const char *addr, const char *path, char **out)
{
    char url[128];

    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    return jf_h_http_get(url, out);
}

static void delete_stream(const char *stream)
{
    jsCtx    *js = NULL;
    jsErrCode jerr = 0;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_DeleteStream(js, stream, NULL, &jerr), NATS_OK, "deleting %s: %d", stream,
                 jerr);
    jsCtx_Destroy(js);
}

/* Lines of the effects file of diag.effect that begin with "<id> ". */
static int effects_of(const char *dir, const char *id)
{
    char  path[300], line[512], prefix[160];
    FILE *f;
    int   n = 0;

    snprintf(path, sizeof(path), "%s/effects.log", dir);
    snprintf(prefix, sizeof(prefix), "%s ", id);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            n++;
    fclose(f);
    return n;
}

static int job_lines(jf_h_proc_t *w, const char *id, const char *msg)
{
    return jf_h_job_lines(w->err_path, id, msg, 0, 0);
}

static int wait_job_lines(jf_h_proc_t *w, const char *id, const char *msg, int want, int ms)
{
    return jf_h_job_lines(w->err_path, id, msg, want, ms);
}

/* ---- a frozen worker ---------------------------------------------------------------------- */

/* A worker frozen (SIGSTOP) past AckWait while a job waits in its queue:
 * the server gives the job to another worker, which runs it. When the
 * frozen worker wakes, the job's lease is gone, so it does not start it
 * there: one effect, not two. (The run under way when it froze finishes;
 * that overlap is the documented one of a paused worker.) */
Test(pipeline, a_worker_frozen_past_ack_wait_does_not_run_the_jobs_it_queued,
     .init = setup, .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=1s", NULL };
    char              effects_env[320];
    /* One thread and one job held besides: the redelivered job cannot go
     * back to the frozen worker, whose pull has room for no more. */
    const char       *env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=1", "JF_PREFETCH=1",
                                effects_env, NULL };
    jf_h_proc_t       w1, w2;

    snprintf(effects_env, sizeof(effects_env), "JF_DIAG_EFFECTS_DIR=%s", srv.dir);
    jf_h_provision(&srv, penv);
    jf_h_worker_start(&srv, "w1", env, &w1);
    jf_h_wait_started(&w1);
    jf_h_publish(nc, "jobs.acme.diag.effect", "{\"sleepMs\":1500}", 16, "fz-run", NULL);
    cr_assert_eq(wait_job_lines(&w1, "fz-run", "job started", 1, 10000), 1);
    jf_h_publish(nc, "jobs.acme.diag.effect", "{}", 2, "fz-queued", NULL);
    /* Two held by w1: one running, one queued (JF_PREFETCH=1). */
    cr_assert_eq(wait_ack_pending(2), 2, "w1 holds the running job and the queued one");
    cr_assert_eq(kill(w1.pid, SIGSTOP), 0);

    jf_h_worker_start(&srv, "w2", env, &w2);
    cr_assert_eq(wait_job_lines(&w2, "fz-queued", "job succeeded", 1, 10000), 1, "%s",
                 jf_h_slurp(w2.err_path));
    cr_assert_eq(kill(w1.pid, SIGCONT), 0);
    cr_assert_eq(wait_job_lines(&w1, "fz-queued",
                                "job's lease ran out before it started; left to its redelivery",
                                1, 10000), 1, "%s", jf_h_slurp(w1.err_path));
    jf_h_sleep_ms(1000);
    cr_assert_eq(job_lines(&w1, "fz-queued", "job started"), 0, "%s", jf_h_slurp(w1.err_path));
    cr_assert_eq(effects_of(srv.dir, "fz-queued"), 1, "the queued job ran once");
    cr_assert_eq(wait_job_lines(&w2, "fz-run", "job succeeded", 1, 10000), 1);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- a deleted ledger bucket ---------------------------------------------------------------- */

/* Said at once and once, reported by /readyz, and the jobs wait without
 * being charged an attempt (no NAK: no redelivery) until `jetfleet
 * provision` brings the bucket back. */
Test(pipeline, a_deleted_ledger_bucket_holds_jobs_and_says_so_once, .init = setup,
     .fini = teardown)
{
    const char *const missing[] = { "the ledger's KV bucket does not exist", NULL };
    const char *const back[] = { "the ledger answers again", NULL };
    char              addr[64], addr_env[96];
    const char       *env[] = { "JF_LOG_LEVEL=debug", addr_env, NULL };
    jf_h_proc_t       w;
    char             *body;
    int64_t           ack_pending = 0, redelivered = -1;
    uint64_t          pending = 0;
    int               state = 0;
    unsigned          attempts = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", jf_h_free_port());
    snprintf(addr_env, sizeof(addr_env), "JF_METRICS_ADDR=%s", addr);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    delete_stream("KV_JF_LEDGER");
    cr_assert_eq(jf_h_wait_lines(w.err_path, missing, 1, 3000), 1,
                 "said within a moment: %s", jf_h_slurp(w.err_path));
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "lm-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
    }
    jf_h_sleep_ms(3000);
    cr_assert_eq(jf_h_count_lines(w.err_path, missing), 1, "said once: %s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(job_lines(&w, "lm-0", "job started"), 0);
    jf_h_consumer_state(nc, "JOBS", "default", &pending, &ack_pending, &redelivered);
    cr_assert_eq(ack_pending, 3, "the worker holds them");
    cr_assert_eq(redelivered, 0, "no NAK, no redelivery: no attempt is spent");
    cr_assert_eq(http_get(addr, "/readyz", &body), 503);
    cr_assert(strstr(body, "does not exist: run `jetfleet provision`") != NULL, "%s", body);
    free(body);
    cr_assert_eq(http_get(addr, "/metrics", &body), 200);
    cr_assert_eq(jf_h_metric(body, "jetfleet_ledger_up"), 0, "%s", body);
    cr_assert_eq(jf_h_metric(body, "jetfleet_jobs_waiting"), 3, "%s", body);
    free(body);

    jf_h_provision(&srv, NULL);
    for (int i = 0; i < 3; i++) {
        char id[16], key[48];
        snprintf(id, sizeof(id), "lm-%d", i);
        snprintf(key, sizeof(key), "acme.diag.noop.%s", id);
        cr_assert_eq(wait_job_lines(&w, id, "job succeeded", 1, 20000), 1, "%s",
                     jf_h_slurp(w.err_path));
        cr_assert(jf_h_ledger(nc, key, &state, &attempts));
        cr_assert_eq(state, STATE_SUCCEEDED);
        cr_assert_eq(attempts, 1, "no attempt was spent waiting");
    }
    cr_assert_eq(jf_h_count_lines(w.err_path, back), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(http_get(addr, "/readyz", &body), 200, "%s", body);
    free(body);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- a deleted AUDIT stream ------------------------------------------------------------------ */

/* Jobs go on; lost events are counted in /metrics, told in /readyz, and
 * logged once per interval with a count, not once per event. */
Test(pipeline, a_deleted_audit_stream_loses_events_quietly_and_jobs_go_on, .init = setup,
     .fini = teardown)
{
    const char *const lost[] = { "\"msg\":\"lifecycle events lost\"", NULL };
    char              addr[64], addr_env[96];
    const char       *env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=16", addr_env, NULL };
    jf_h_proc_t       w;
    char             *body;
    int               n;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", jf_h_free_port());
    snprintf(addr_env, sizeof(addr_env), "JF_METRICS_ADDR=%s", addr);
    jf_h_provision(&srv, NULL);
    delete_stream("AUDIT");
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "al-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
    }
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 20000), 0, "every job ran");
    cr_assert_eq(wait_job_lines(&w, "al-199", "job succeeded", 1, 5000), 1);
    n = jf_h_count_lines(w.err_path, lost);
    cr_assert(n >= 1 && n <= 2, "one line per interval, not one per event: %d lines\n%s", n,
              jf_h_slurp(w.err_path));
    cr_assert_eq(http_get(addr, "/metrics", &body), 200);
    cr_assert_geq(jf_h_metric(body, "jetfleet_telemetry_lost_total"), 200, "%s", body);
    free(body);
    cr_assert_eq(http_get(addr, "/readyz", &body), 200, "jobs run: still ready");
    cr_assert(strstr(body, "telemetry: lifecycle events were lost") != NULL, "%s", body);
    free(body);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- shutdown before a job starts ------------------------------------------------------------- */

/* A job given back at shutdown before it started is recorded as a free
 * delivery: on its next delivery it is still attempt 1. */
Test(pipeline, a_job_returned_at_shutdown_is_not_charged_an_attempt, .init = setup,
     .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=1",
                                "JF_SHUTDOWN_GRACE=10s", NULL };
    jf_h_proc_t w1, w2;
    int         state = 0;
    unsigned    attempts = 0;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w1", env, &w1);
    jf_h_wait_started(&w1);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":1000}", 11, "rt-run", NULL);
    cr_assert_eq(wait_job_lines(&w1, "rt-run", "job started", 1, 10000), 1);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "rt-queued", NULL);
    cr_assert_eq(wait_ack_pending(2), 2);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 15000), 0);
    cr_assert_eq(job_lines(&w1, "rt-run", "job succeeded"), 1, "the running job finished");
    cr_assert_eq(job_lines(&w1, "rt-queued", "job started"), 0);

    jf_h_worker_start(&srv, "w2", env, &w2);
    cr_assert_eq(wait_job_lines(&w2, "rt-queued", "job succeeded", 1, 10000), 1, "%s",
                 jf_h_slurp(w2.err_path));
    cr_assert(jf_h_ledger(nc, "acme.diag.noop.rt-queued", &state, &attempts));
    cr_assert_eq(state, STATE_SUCCEEDED);
    cr_assert_eq(attempts, 1, "the delivery it was given back in was free");
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
}

/* ---- a job held by its tenant's limit ------------------------------------------------------------ */

static int audit_events(const char *job_id, char *seq, size_t size)
{
    jsCtx            *js = NULL;
    jsSubOptions      so;
    natsSubscription *sub = NULL;
    natsMsg          *m = NULL;
    int               n = 0;

    seq[0] = '\0';
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions_Init(&so);
    so.Stream = "AUDIT";
    so.Ordered = true;
    cr_assert_eq(js_SubscribeSync(&sub, js, "telemetry.jobs.>", NULL, &so, NULL), NATS_OK);
    while (natsSubscription_NextMsg(&m, sub, 300) == NATS_OK) {
        Jetfleet__V1__JobEvent *ev = jetfleet__v1__job_event__unpack(
            NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
        if (ev != NULL && strcmp(ev->job_id, job_id) == 0) {
            const char *name = strrchr(natsMsg_GetSubject(m), '.') + 1;
            if (seq[0])
                strncat(seq, ",", size - strlen(seq) - 1);
            strncat(seq, name, size - strlen(seq) - 1);
            n++;
        }
        if (ev != NULL)
            jetfleet__v1__job_event__free_unpacked(ev, NULL);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    return n;
}

Test(pipeline, a_job_held_by_its_tenants_limit_gets_a_received_event, .init = setup,
     .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4",
                                "JF_TENANT_MAX_INFLIGHT=1", NULL };
    jf_h_proc_t w;
    char        seq[256];

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":1500}", 11, "hl-1", NULL);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":10}", 9, "hl-2", NULL);
    cr_assert_eq(wait_job_lines(&w, "hl-2", "job succeeded", 1, 10000), 1);
    jf_h_sleep_ms(300);
    audit_events("hl-2", seq, sizeof(seq));
    cr_assert_str_eq(seq, "received,succeeded", "held behind hl-1, it says so");
    audit_events("hl-1", seq, sizeof(seq));
    cr_assert_str_eq(seq, "succeeded", "hl-1 started at once");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* ---- job show asks the workers --------------------------------------------------------------------- */

Test(pipeline, job_show_finds_a_running_job_at_its_worker, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_WORKER_ID=show-w", NULL };
    const char *const args[] = { "job", "show", "sh-1", "--tenant", "acme", NULL };
    const char *const jargs[] = { "job", "show", "sh-1", "--tenant", "acme", "--json", NULL };
    jf_h_proc_t w, p;
    char       *out;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":4000}", 11, "sh-1", NULL);
    cr_assert_eq(wait_job_lines(&w, "sh-1", "job started", 1, 10000), 1);

    cr_assert_eq(jf_h_run(&srv, "show", NULL, args, &p), 0, "%s", jf_h_slurp(p.err_path));
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "type:           diag.sleep\n") != NULL, "%s", out);
    cr_assert(strstr(out, "ledger:         no record") != NULL, "%s", out);
    cr_assert(strstr(out, "now:            running on worker show-w (pool default), attempt 1")
              != NULL, "%s", out);
    free(out);
    cr_assert_eq(jf_h_run(&srv, "show-json", NULL, jargs, &p), 0);
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "\"now\":[{") != NULL && strstr(out, "\"phase\":\"running\"") != NULL,
              "%s", out);
    free(out);

    cr_assert_eq(wait_job_lines(&w, "sh-1", "job succeeded", 1, 10000), 1);
    cr_assert_eq(jf_h_run(&srv, "show-after", NULL, args, &p), 0);
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "state:          succeeded\n") != NULL, "%s", out);
    cr_assert(strstr(out, "now:            no worker holds it\n") != NULL, "%s", out);
    free(out);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}
