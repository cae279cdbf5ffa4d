/*
 * test_audit.c - lifecycle events as an outside audit subscriber sees them.
 *
 * Each test runs a job down one path and reads the AUDIT stream through an
 * ordered consumer, exactly as a `nats sub` or any JetStream client would,
 * then asserts the exact sequence of events and their fields.
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


static const char *const env_default[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=4", NULL };

static const char *kind_name(int k)
{
    static const char *const names[] = { "unspecified", "received", "started", "succeeded",
                                         "retry_scheduled", "failed", "dead_lettered",
                                         "duplicate", "rejected", "quarantined" };
    return k >= 0 && k < 10 ? names[k] : "?";
}

#define MAX_EVENTS 64

typedef struct events {
    Jetfleet__V1__JobEvent *ev[MAX_EVENTS];
    char                    subject[MAX_EVENTS][160];
    int                     n;
    char                    seq[1024];   /* "received,started,..." */
} events_t;

/* Read every event of job_id from AUDIT through an ordered push consumer,
 * waiting until `want` events arrived (or 10 s). */
static void read_events(const char *job_id, int want, events_t *out)
{
    jsCtx            *js = NULL;
    jsSubOptions      so;
    natsSubscription *sub = NULL;

    memset(out, 0, sizeof(*out));
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    for (int round = 0; round < 50 && out->n < want; round++) {
        natsMsg *m = NULL;
        for (int i = 0; i < out->n; i++)
            jetfleet__v1__job_event__free_unpacked(out->ev[i], NULL);
        out->n = 0;
        out->seq[0] = '\0';
        jsSubOptions_Init(&so);
        so.Stream = "AUDIT";
        so.Ordered = true;
        cr_assert_eq(js_SubscribeSync(&sub, js, "telemetry.jobs.>", NULL, &so, NULL), NATS_OK);
        while (natsSubscription_NextMsg(&m, sub, 300) == NATS_OK) {
            Jetfleet__V1__JobEvent *ev = jetfleet__v1__job_event__unpack(
                NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
            cr_assert_not_null(ev, "an AUDIT message is not a JobEvent");
            if (strcmp(ev->job_id, job_id) == 0 && out->n < MAX_EVENTS) {
                snprintf(out->subject[out->n], sizeof(out->subject[0]), "%s",
                         natsMsg_GetSubject(m));
                out->ev[out->n++] = ev;
                if (out->seq[0])
                    strcat(out->seq, ",");
                strcat(out->seq, kind_name(ev->event));
            } else {
                jetfleet__v1__job_event__free_unpacked(ev, NULL);
            }
            natsMsg_Destroy(m);
        }
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        if (out->n < want)
            jf_h_sleep_ms(200);
    }
    jsCtx_Destroy(js);
}

static void free_events(events_t *e)
{
    for (int i = 0; i < e->n; i++)
        jetfleet__v1__job_event__free_unpacked(e->ev[i], NULL);
    e->n = 0;
}

static void run_one(const char *subject, const char *payload, const char *id, int want,
                    events_t *out, const char *const *wenv)
{
    jf_h_proc_t w;

    jf_h_worker_start(&srv, "w", wenv ? wenv : env_default, &w);
    jf_h_publish(nc, subject, payload, (int)strlen(payload), id, NULL);
    read_events(id, want, out);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* The lean path: a job that starts at once and ends within
 * JF_STARTED_EVENT_AFTER is audited by its outcome event alone, which
 * carries when it was received, started and ended. */
Test(audit, a_success_is_one_succeeded_event_with_every_field_and_time, .init = setup,
     .fini = teardown)
{
    events_t    e;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *const h[] = { "traceparent", tp, NULL };
    jf_h_proc_t w;
    Jetfleet__V1__JobEvent *ev;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env_default, &w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":20}", 9, "a-ok", h);
    read_events("a-ok", 1, &e);
    jf_h_sleep_ms(500);   /* nothing more comes */
    free_events(&e);
    read_events("a-ok", 1, &e);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_str_eq(e.seq, "succeeded");
    cr_assert_str_eq(e.subject[0], "telemetry.jobs.acme.diag.sleep.succeeded");
    ev = e.ev[0];
    cr_assert_str_eq(ev->tenant, "acme");
    cr_assert_str_eq(ev->type, "diag.sleep");
    cr_assert_eq(ev->attempt, 1);
    cr_assert_str_eq(ev->pool, "default");
    cr_assert_str_eq(ev->region, "local");
    cr_assert_gt(strlen(ev->worker_id), 0);
    cr_assert_eq(ev->stream_seq, 1);
    cr_assert_gt(ev->enqueued_ms, 0);
    cr_assert_str_eq(ev->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "traceparent flows in");
    cr_assert_geq(ev->received_ms, ev->enqueued_ms);
    cr_assert_geq(ev->started_ms, ev->received_ms);
    cr_assert_geq(ev->ended_ms, ev->started_ms + 20);
    cr_assert_geq(ev->duration_us, 20000);
    free_events(&e);
}

/* A run still going after JF_STARTED_EVENT_AFTER says so while it runs. */
Test(audit, a_long_run_gets_a_started_event_while_it_runs, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_STARTED_EVENT_AFTER=300ms", NULL };
    events_t    e;
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":3000}", 11, "a-long", NULL);
    read_events("a-long", 1, &e);
    cr_assert_str_eq(e.seq, "started", "the started event comes before the end");
    cr_assert_gt(e.ev[0]->started_ms, 0);
    cr_assert_eq(e.ev[0]->ended_ms, 0);
    free_events(&e);
    read_events("a-long", 2, &e);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_str_eq(e.seq, "started,succeeded");
    cr_assert_eq(e.ev[0]->started_ms, e.ev[1]->started_ms);
    free_events(&e);
}

Test(audit, retry_then_success, .init = setup, .fini = teardown)
{
    events_t e;

    jf_h_provision(&srv, NULL);
    run_one("jobs.acme.diag.fail", "{\"retryable\":true,\"message\":\"blip\",\"succeedOnAttempt\":2}",
            "a-retry", 2, &e, NULL);
    cr_assert_str_eq(e.seq, "retry_scheduled,succeeded");
    cr_assert_eq(e.ev[0]->attempt, 1);
    cr_assert_str_eq(e.ev[0]->error_text, "blip");
    cr_assert_str_eq(e.ev[0]->error_code, "JF_EAGAIN");
    cr_assert_leq(e.ev[0]->next_delay_ms, 100);
    cr_assert_gt(e.ev[0]->started_ms, 0);
    cr_assert_eq(e.ev[1]->attempt, 2);
    free_events(&e);
}

Test(audit, terminal_failure_is_failed_then_dead_lettered, .init = setup, .fini = teardown)
{
    events_t e;

    jf_h_provision(&srv, NULL);
    run_one("jobs.acme.diag.fail", "{\"retryable\":false,\"message\":\"no such account\"}",
            "a-fail", 2, &e, NULL);
    cr_assert_str_eq(e.seq, "failed,dead_lettered");
    cr_assert_str_eq(e.ev[0]->error_text, "no such account");
    cr_assert_str_eq(e.subject[1], "telemetry.jobs.acme.diag.fail.dead_lettered");
    free_events(&e);
}

Test(audit, exhausted_retries_end_dead_lettered, .init = setup, .fini = teardown)
{
    events_t e;

    jf_h_provision(&srv, NULL);
    run_one("jobs.acme.diag.fail", "{\"retryable\":true,\"message\":\"down\"}", "a-dead", 6, &e,
            NULL);
    cr_assert_str_eq(e.seq, "retry_scheduled,retry_scheduled,retry_scheduled,retry_scheduled,"
                            "failed,dead_lettered");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(e.ev[i]->attempt, (unsigned)i + 1);
    cr_assert(strstr(e.ev[4]->error_text, "retries exhausted after 5 attempts") != NULL);
    free_events(&e);
}

Test(audit, a_duplicate_is_one_duplicate_event, .init = setup, .fini = teardown)
{
    const char *const penv[] = { "JF_DUPLICATE_WINDOW=1s", NULL };
    events_t    e;
    jf_h_proc_t w;

    jf_h_provision(&srv, penv);
    jf_h_worker_start(&srv, "w", env_default, &w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "a-dup", NULL);
    read_events("a-dup", 1, &e);
    free_events(&e);
    jf_h_sleep_ms(1500);   /* past the stream's duplicate window */
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "a-dup", NULL));
    read_events("a-dup", 2, &e);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_str_eq(e.seq, "succeeded,duplicate");
    cr_assert_eq(e.ev[1]->stream_seq, 2);
    cr_assert_gt(e.ev[1]->received_ms, 0);
    free_events(&e);
}

Test(audit, rejected_input_is_rejected_then_dead_lettered, .init = setup, .fini = teardown)
{
    events_t e;

    jf_h_provision(&srv, NULL);
    run_one("jobs.acme.diag.sleep", "{\"ms\":\"soon\"}", "a-bad", 2, &e, NULL);
    cr_assert_str_eq(e.seq, "rejected,dead_lettered");
    cr_assert_str_eq(e.ev[0]->error_code, "JF_EDECODE");
    cr_assert(strstr(e.ev[0]->error_text, "field 'ms'") != NULL, "%s", e.ev[0]->error_text);
    cr_assert_eq(e.ev[0]->started_ms, 0, "never ran");
    free_events(&e);
}

Test(audit, json_format_carries_the_same_event, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_TELEMETRY_FORMAT=json", NULL };
    jsCtx      *js = NULL;
    natsMsg    *m = NULL;
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "a-json", NULL);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    for (int i = 0; i < 50 && m == NULL; i++) {
        if (js_GetLastMsg(&m, js, "AUDIT", "telemetry.jobs.acme.diag.noop.succeeded", NULL,
                          NULL) != NATS_OK)
            jf_h_sleep_ms(100);
    }
    cr_assert_not_null(m);
    {
        const char *ct = NULL;
        char        body[2048];
        snprintf(body, sizeof(body), "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
        natsMsgHeader_Get(m, "Content-Type", &ct);
        cr_assert_str_eq(ct, "application/json");
        cr_assert(strstr(body, "\"event\":\"EVENT_KIND_SUCCEEDED\"") != NULL, "%s", body);
        cr_assert(strstr(body, "\"job_id\":\"a-json\"") != NULL, "%s", body);
    }
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(audit, a_worker_killed_between_events_leaves_no_duplicate_events, .init = setup,
     .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=1s", NULL };
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_STARTED_EVENT_AFTER=0", NULL };
    events_t    e;
    jf_h_proc_t w1, w2;
    const char *const started[] = { "\"job_id\":\"a-kill\"", "\"msg\":\"job started\"", NULL };

    jf_h_provision(&srv, penv);
    jf_h_worker_start(&srv, "w1", env, &w1);
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":2000}", 11, "a-kill", NULL);
    cr_assert_eq(jf_h_wait_lines(w1.err_path, started, 1, 10000), 1);
    read_events("a-kill", 1, &e);   /* its started event is out */
    free_events(&e);
    jf_h_proc_stop(&w1, SIGKILL, 5000);
    jf_h_worker_start(&srv, "w2", env, &w2);
    read_events("a-kill", 3, &e);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 10000), 0);
    cr_assert_str_eq(e.seq, "started,started,succeeded");
    for (int i = 0; i < e.n; i++)
        for (int j = i + 1; j < e.n; j++)
            cr_assert(!(e.ev[i]->attempt == e.ev[j]->attempt && e.ev[i]->event == e.ev[j]->event),
                      "event %s of attempt %u appears twice", kind_name(e.ev[i]->event),
                      e.ev[i]->attempt);
    cr_assert_eq(e.ev[0]->attempt, 1);
    cr_assert_eq(e.ev[2]->attempt, 2, "the killed run counts: the delivery count says so");
    free_events(&e);
}

Test(audit, a_quarantined_message_is_quarantined_then_dead_lettered, .init = setup,
     .fini = teardown)
{
    const char *const penv[] = { "JF_ACK_WAIT=1s", "JF_MAX_DELIVER=1", NULL };
    events_t    e;
    jf_h_proc_t w;
    natsMsg    *reply = NULL;

    jf_h_provision(&srv, penv);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "a-stuck", NULL);
    /* One delivery, never acknowledged, with MaxDeliver 1: the server gives
     * up after AckWait and says so with an advisory. */
    cr_assert_eq(natsConnection_RequestString(&reply, nc, "$JS.API.CONSUMER.MSG.NEXT.JOBS.default",
                                              "{\"batch\":1,\"expires\":2000000000}", 3000),
                 NATS_OK);
    natsMsg_Destroy(reply);
    jf_h_worker_start(&srv, "w", env_default, &w);
    read_events("a-stuck", 2, &e);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_str_eq(e.seq, "quarantined,dead_lettered");
    cr_assert(strstr(e.ev[0]->error_text, "1 deliveries") != NULL, "%s", e.ev[0]->error_text);
    cr_assert_str_eq(e.subject[0], "telemetry.jobs.acme.diag.noop.quarantined");
    free_events(&e);
}
