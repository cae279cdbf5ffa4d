/*
 * test_webhooks.c - webhooks.deliver end to end: a real worker delivers to
 * a real HTTP receiver (libmicrohttpd, in this process, on 127.0.0.1) that
 * checks the Standard Webhooks signatures on its own with OpenSSL.
 *
 * Covers signing with two secrets (rotation), the outcome classification
 * (2xx, 5xx, 429 + Retry-After, 410, 400), the egress guard (loopback,
 * localhost, metadata and private addresses refused before any socket
 * exists) and the configuration errors (bad scheme, no secret).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include <criterion/criterion.h>

#include "harness.h"
#include "receiver.h"

/* ---- the worker ------------------------------------------------------------------------ */

static jf_h_server_t   srv;
static natsConnection *nc;
static jf_h_proc_t     w;
static char            env_policy[400], env_secrets[400];

static void setup(void)
{
    const char *const tenants[] = { "acme", "other", NULL };
    const char *env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, NULL };

    jf_r_start();
    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
    jf_r_tenant_files(srv.dir,
                      "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
                      "\"acme\":{\"job_types\":[\"webhooks.*\"],\"egress_allow\":[\"127.0.0.1/32\"]},"
                      "\"other\":{\"job_types\":[\"webhooks.*\"]},"
                      "\"nosec\":{\"job_types\":[\"webhooks.*\"],\"egress_allow\":[\"127.0.0.1/32\"]}}}",
                      tenants, env_policy, sizeof(env_policy), env_secrets, sizeof(env_secrets));
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
}

static void teardown(void)
{
    cr_expect_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
    jf_r_stop();
}

/* Enqueue webhooks.deliver for tenant to url (a path on the receiver when
 * it starts with '/'). */
static void deliver(const char *tenant, const char *id, const char *url)
{
    char subject[128], payload[512], full[256];

    if (url[0] == '/')
        snprintf(full, sizeof(full), "http://127.0.0.1:%d%s", jf_r_port(), url);
    else
        snprintf(full, sizeof(full), "%s", url);
    snprintf(subject, sizeof(subject), "jobs.%s.webhooks.deliver", tenant);
    snprintf(payload, sizeof(payload),
             "{\"url\":\"%s\",\"body\":\"{\\\"order\\\":42,\\\"id\\\":\\\"%s\\\"}\","
             "\"event_type\":\"order.paid\"}", full, id);
    cr_assert(jf_h_publish(nc, subject, payload, (int)strlen(payload), id, NULL));
}

static int logged(const char *id, const char *msg, const char *extra, int want, int timeout_ms)
{
    char idf[160], msgf[80];

    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const n[] = { idf, msgf, extra, NULL };
    return jf_h_wait_lines(w.err_path, n, want, timeout_ms);
}

/* ---- tests ----------------------------------------------------------------------------- */

Test(webhooks, a_delivery_is_signed_with_every_secret_and_succeeds, .init = setup,
     .fini = teardown)
{
    jf_r_req_t r;

    deliver("acme", "order-42", "/ok");
    cr_assert_eq(logged("order-42", "job succeeded", "order-42", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(jf_r_seen("order-42", &r), 1, "exactly one request with webhook-id = job id");
    cr_assert_str_eq(r.path, "/ok");
    cr_assert_eq(r.sigs_ok, 2, "both rotation secrets must sign the delivery");
    cr_assert(r.headers_ok, "user agent, traceparent and content type");
    cr_assert_str_eq(r.body, "{\"order\":42,\"id\":\"order-42\"}");

    /* A slow endpoint inside the timeouts is still a success. */
    deliver("acme", "slow-1", "/slow");
    cr_assert_eq(logged("slow-1", "job succeeded", "slow-1", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(jf_r_seen("slow-1", NULL), 1);
    {
        char *log = jf_h_slurp(w.err_path);
        cr_assert(strstr(log, "whsec_") == NULL, "a webhook secret leaked into the log");
        free(log);
    }
}

Test(webhooks, 5xx_and_429_are_retried_then_succeed, .init = setup, .fini = teardown)
{
    int    n = 0;
    char **lines;
    long   delay;

    deliver("acme", "r500", "/fail500");
    deliver("acme", "r429", "/busy");
    cr_assert_eq(logged("r500", "job will be retried", "HTTP 500", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("r429", "job will be retried", "HTTP 429", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    {
        const char *const nd[] = { "\"job_id\":\"r429\"", "\"msg\":\"job will be retried\"",
                                   NULL };
        lines = jf_h_grep(w.err_path, nd, &n);
        cr_assert_geq(n, 1);
        cr_assert_not_null(strstr(lines[0], "\"next_delay_ms\":"));
        delay = atol(strstr(lines[0], "\"next_delay_ms\":") + strlen("\"next_delay_ms\":"));
        jf_h_grep_free(lines, n);
        cr_assert_geq(delay, 1000, "Retry-After: 1 must hold the retry back at least 1 s");
    }
    jf_r_heal();
    cr_assert_eq(logged("r500", "job succeeded", "r500", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("r429", "job succeeded", "r429", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_geq(jf_r_seen("r500", NULL), 2, "the same webhook-id is sent again on a retry");
    cr_assert_geq(jf_r_seen("r429", NULL), 2);
}

Test(webhooks, 410_and_400_fail_without_retry, .init = setup, .fini = teardown)
{
    deliver("acme", "gone-1", "/gone");
    deliver("acme", "bad-1", "/bad");
    cr_assert_eq(logged("gone-1", "job failed", "HTTP 410 Gone", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("bad-1", "job failed", "HTTP 400: nope: field x", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    jf_h_sleep_ms(1500);
    cr_assert_eq(jf_r_seen("gone-1", NULL), 1);
    cr_assert_eq(jf_r_seen("bad-1", NULL), 1);
    cr_assert_eq(logged("gone-1", "job will be retried", "gone-1", 0, 0), 0);
    cr_assert_eq(logged("bad-1", "job will be retried", "bad-1", 0, 0), 0);
    {
        natsMsg *dl = jf_h_dlq_find(nc, "gone-1", 0);
        cr_assert_not_null(dl, "410 goes to the dead letters");
        natsMsg_Destroy(dl);
    }
}

Test(webhooks, a_huge_response_is_read_up_to_the_cap_and_classified, .init = setup,
     .fini = teardown)
{
    char **lines;
    int    n = 0;

    deliver("acme", "huge-ok", "/huge");
    deliver("acme", "huge-bad", "/huge-bad");
    cr_assert_eq(logged("huge-ok", "job succeeded", NULL, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("huge-bad", "job failed", "HTTP 400: xxxx", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    {
        const char *const needles[] = { "\"job_id\":\"huge-bad\"", "\"msg\":\"job failed\"",
                                        NULL };
        lines = jf_h_grep(w.err_path, needles, &n);
        cr_assert_eq(n, 1);
        /* the reason keeps the first 200 bytes of the body, not 4 MiB */
        cr_assert_lt(strlen(lines[0]), 2000, "%zu bytes", strlen(lines[0]));
        jf_h_grep_free(lines, n);
    }
    cr_assert_eq(jf_r_seen("huge-ok", NULL), 1);
    cr_assert_eq(jf_r_seen("huge-bad", NULL), 1);
}

Test(webhooks, the_egress_guard_refuses_before_connecting, .init = setup, .fini = teardown)
{
    char url[128];

    deliver("other", "eg-loop", "/ok");
    snprintf(url, sizeof(url), "http://localhost:%d/ok", jf_r_port());
    deliver("other", "eg-localhost", url);
    /* acme may reach 127.0.0.1/32 only: metadata and private ranges stay shut.
     * The guard runs in curl's open-socket callback, before any socket. */
    deliver("acme", "eg-meta", "http://169.254.169.254/latest/meta-data/");
    deliver("acme", "eg-private", "http://10.0.0.1/hook");
    cr_assert_eq(logged("eg-loop", "job failed", "egress to 127.0.0.1 refused", 1, 15000), 1,
                 "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-localhost", "job failed", "refused", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-meta", "job failed", "egress to 169.254.169.254 refused", 1, 15000),
                 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-private", "job failed", "egress to 10.0.0.1 refused", 1, 15000), 1,
                 "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-loop", "job failed", "JF_EDENIED", 1, 1000), 1);
    cr_assert_eq(jf_r_seen_total(), 0, "the receiver must get no request at all");
    cr_assert_eq(logged("eg-loop", "job will be retried", "eg-loop", 0, 0), 0);

    /* The same receiver is reachable for acme, whose policy allows it. */
    deliver("acme", "eg-allowed", "/ok");
    cr_assert_eq(logged("eg-allowed", "job succeeded", "eg-allowed", 1, 15000), 1);
    cr_assert_eq(jf_r_seen_total(), 1);
}

Test(webhooks, a_bad_scheme_or_a_missing_secret_fails_clearly, .init = setup, .fini = teardown)
{
    deliver("acme", "ftp-1", "ftp://127.0.0.1/upload");
    deliver("acme", "gopher-1", "gopher://127.0.0.1/");
    deliver("nosec", "nosec-1", "/ok");
    cr_assert_eq(logged("ftp-1", "job failed", "only http and https", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("ftp-1", "job failed", "JF_EINVAL", 1, 1000), 1);
    cr_assert_eq(logged("gopher-1", "job failed", "gopher", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("nosec-1", "job failed",
                        "no webhook secret for tenant nosec (webhooks/nosec in JF_SECRETS_DIR)",
                        1, 15000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_r_seen_total(), 0);
}
