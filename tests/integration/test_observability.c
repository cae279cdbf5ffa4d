/*
 * test_observability.c - what operators see: /metrics, /healthz, /readyz
 * scraped over real HTTP (libcurl), JSON log lines, the process title,
 * and secrets that must never show up in logs or events.
 */
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

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


static int free_port(void)
{
    /* Let a throwaway nats-server-free probe pick a port: bind :0. */
    return jf_h_free_port();
}


Test(observability, metrics_match_the_jobs_run_and_parse_as_prometheus_text, .init = setup,
     .fini = teardown)
{
    char        addr[64], url[96], env_addr[96];
    const char *const env[] = { "JF_LOG_LEVEL=debug", env_addr, NULL };
    const char *const done[] = { "\"msg\":\"job succeeded\"", NULL };
    const char *const failed[] = { "\"msg\":\"job failed\"", NULL };
    jf_h_proc_t w;
    char       *body = NULL;
    regex_t     line_re;
    char        id[32];
    int         port = free_port();

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(env_addr, sizeof(env_addr), "JF_METRICS_ADDR=%s", addr);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "m-%d", i);
        jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, NULL);
    }
    jf_h_publish(nc, "jobs.acme.diag.fail", "{\"message\":\"no\"}", 16, "m-fail", NULL);
    cr_assert_eq(jf_h_wait_lines(w.err_path, done, 5, 10000), 5);
    cr_assert_eq(jf_h_wait_lines(w.err_path, failed, 1, 10000), 1);

    snprintf(url, sizeof(url), "http://%s/metrics", addr);
    cr_assert_eq(jf_h_http_get(url, &body), 200);
    cr_assert_eq(jf_h_metric(body, "jetfleet_jobs_total{type=\"diag.noop\",outcome=\"succeeded\"}"), 5,
                 "%s", body);
    cr_assert_eq(jf_h_metric(body, "jetfleet_jobs_total{type=\"diag.fail\",outcome=\"failed\"}"), 1);
    cr_assert_eq(jf_h_metric(body, "jetfleet_job_duration_seconds_count{type=\"diag.noop\"}"), 5);
    cr_assert_eq(jf_h_metric(body, "jetfleet_job_duration_seconds_bucket{type=\"diag.noop\",le=\"+Inf\"}"),
                 5);
    cr_assert_eq(jf_h_metric(body, "jetfleet_jobs_in_flight"), 0);
    cr_assert_eq(jf_h_metric(body, "jetfleet_consumer_pending"), 0);
    cr_assert(strstr(body, "jetfleet_build_info{version=\"") != NULL);
    /* Every line is a comment or a sample of the exposition format. */
    cr_assert_eq(regcomp(&line_re,
                         "^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|"
                         "[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\",?)*\\})? "
                         "[-+]?([0-9.]+(e[-+]?[0-9]+)?|Inf|NaN))$",
                         REG_EXTENDED | REG_NOSUB), 0);
    {
        char *save = NULL;
        int   lines = 0;
        for (char *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++)
            cr_assert_eq(regexec(&line_re, l, 0, NULL, 0), 0, "not Prometheus text: '%s'", l);
        cr_assert_gt(lines, 20);
    }
    regfree(&line_re);
    free(body);

    snprintf(url, sizeof(url), "http://%s/healthz", addr);
    cr_assert_eq(jf_h_http_get(url, &body), 200);
    free(body);
    snprintf(url, sizeof(url), "http://%s/nope", addr);
    cr_assert_eq(jf_h_http_get(url, &body), 404);
    free(body);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(observability, readyz_flips_while_draining, .init = setup, .fini = teardown)
{
    char        addr[64], url[96], env_addr[96];
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_SHUTDOWN_GRACE=3s", env_addr, NULL };
    const char *const started[] = { "\"msg\":\"job started\"", NULL };
    jf_h_proc_t w;
    char       *body = NULL;
    long        st = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
    snprintf(env_addr, sizeof(env_addr), "JF_METRICS_ADDR=%s", addr);
    snprintf(url, sizeof(url), "http://%s/readyz", addr);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    for (int i = 0; i < 50 && st != 200; i++) {
        st = jf_h_http_get(url, &body);
        free(body);
        if (st != 200)
            jf_h_sleep_ms(100);
    }
    cr_assert_eq(st, 200, "ready once bound");
    jf_h_publish(nc, "jobs.acme.diag.sleep", "{\"ms\":2000}", 11, "drain-1", NULL);
    cr_assert_eq(jf_h_wait_lines(w.err_path, started, 1, 10000), 1);
    kill(w.pid, SIGTERM);
    jf_h_sleep_ms(300);
    st = jf_h_http_get(url, &body);
    cr_assert_eq(st, 503, "not ready while draining (%ld: %s)", st, body);
    cr_assert(strstr(body, "draining") != NULL);
    free(body);
    cr_assert_eq(jf_h_proc_stop(&w, 0, 10000), 0);
}

Test(observability, every_log_line_is_json_and_no_secret_leaks, .init = setup, .fini = teardown)
{
    char        url_env[160], title[512];
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_NATS_USER=alice",
                                "JF_NATS_PASSWORD=s3cr3t-plant", url_env,
                                "JF_TELEMETRY_FORMAT=json", NULL };
    const char *const done[] = { "\"msg\":\"job succeeded\"", NULL };
    jf_h_proc_t w;
    char       *log, *save = NULL;
    int         lines = 0;

    snprintf(url_env, sizeof(url_env), "JF_NATS_URL=nats://bob:url-s3cr3t@127.0.0.1:%d",
             srv.port);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "sec-1", NULL);
    jf_h_publish(nc, "jobs.acme.diag.fail", "{\"message\":\"x\"}", 15, "sec-2", NULL);
    jf_h_publish(nc, "jobs.acme.nope.x", "{}", 2, "sec-3", NULL);
    cr_assert_eq(jf_h_wait_lines(w.err_path, done, 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_sleep_ms(500);

    /* The process title names the pool and the in-flight count. */
    {
        char  path[64];
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)w.pid);
        f = fopen(path, "rb");
        cr_assert_not_null(f);
        n = fread(title, 1, sizeof(title) - 1, f);
        fclose(f);
        title[n] = '\0';
        cr_assert(strstr(title, "jetfleet worker pool=default in-flight=") != NULL &&
                  strstr(title, " held=") != NULL, "title '%s'", title);
    }
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);

    log = jf_h_slurp(w.err_path);
    cr_assert(strstr(log, "s3cr3t-plant") == NULL, "the password leaked into the log");
    cr_assert(strstr(log, "url-s3cr3t") == NULL, "the URL password leaked into the log");
    for (char *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t e;
        json_t      *o = json_loads(l, 0, &e);
        cr_assert_not_null(o, "not JSON: '%s' (%s)", l, e.text);
        cr_assert(json_is_string(json_object_get(o, "ts")) &&
                  json_is_string(json_object_get(o, "level")) &&
                  json_is_string(json_object_get(o, "msg")), "missing ts/level/msg: %s", l);
        json_decref(o);
    }
    cr_assert_gt(lines, 5);
    free(log);

    /* Nor into events. */
    {
        jsCtx        *js = NULL;
        jsStreamInfo *si = NULL;
        cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
        cr_assert_eq(js_GetStreamInfo(&si, js, "AUDIT", NULL, NULL), NATS_OK);
        cr_assert_gt(si->State.Msgs, 0);
        for (uint64_t s = si->State.FirstSeq; s <= si->State.LastSeq; s++) {
            natsMsg *m = NULL;
            char     body[4096];
            if (js_GetMsg(&m, js, "AUDIT", s, NULL, NULL) != NATS_OK)
                continue;
            snprintf(body, sizeof(body), "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
            cr_assert(strstr(body, "s3cr3t") == NULL, "a secret leaked into an event: %s", body);
            natsMsg_Destroy(m);
        }
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
    }
}
