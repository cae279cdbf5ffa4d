/*
 * test_policy.c - the tenant policy, signed jobs and secrets, applied by
 * a real worker before dispatch, and reloaded on SIGHUP.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "security/signature.h"

static jf_h_server_t   srv;
static natsConnection *nc;
static char            policy_path[320], secrets_dir[320];
static char            env_policy[400], env_secrets[400];

static const char *const key = "0123456789abcdef0123456789abcdef";

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void setup(void)
{
    char dir[340], path[360];

    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
    snprintf(policy_path, sizeof(policy_path), "%s/policy.json", srv.dir);
    snprintf(secrets_dir, sizeof(secrets_dir), "%s/secrets", srv.dir);
    snprintf(dir, sizeof(dir), "%s/signing", secrets_dir);
    cr_assert_eq(mkdir(secrets_dir, 0700), 0);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/k1", dir);
    write_file(path, key, 0600);
    write_file(policy_path,
               "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
               "\"acme\":{\"job_types\":[\"diag.*\"],\"require_signature\":true,"
               "\"signing_keys\":[\"k1\"],\"max_payload\":256},"
               "\"open\":{\"job_types\":[\"diag.noop\"]}}}", 0600);
    snprintf(env_policy, sizeof(env_policy), "JF_POLICY_FILE=%s", policy_path);
    snprintf(env_secrets, sizeof(env_secrets), "JF_SECRETS_DIR=%s", secrets_dir);
}

static void teardown(void)
{
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
}

static void publish_signed(const char *subject, const char *payload, const char *id,
                           const char *key_id, const char *with_key)
{
    char        sig[256];
    const char *h[] = { "Jf-Signature", sig, NULL };

    cr_assert_eq(jf_signature_make(key_id, with_key, strlen(with_key), subject, id, payload,
                                   strlen(payload), sig, sizeof(sig), NULL), JF_OK);
    jf_h_publish(nc, subject, payload, (int)strlen(payload), id, h);
}

static int rejected_with(jf_h_proc_t *w, const char *id, const char *why)
{
    char idf[96];
    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    const char *const n[] = { idf, "\"msg\":\"job rejected\"", why, NULL };
    return jf_h_wait_lines(w->err_path, n, 1, 10000);
}

static int succeeded(jf_h_proc_t *w, const char *id)
{
    char idf[96];
    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    const char *const n[] = { idf, "\"msg\":\"job succeeded\"", NULL };
    return jf_h_wait_lines(w->err_path, n, 1, 10000);
}

Test(policy, signatures_types_tenants_and_sizes_are_enforced_before_dispatch, .init = setup,
     .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, NULL };
    const char *const started[] = { "\"msg\":\"job started\"", NULL };
    char        big[400];
    jf_h_proc_t w;

    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);

    publish_signed("jobs.acme.diag.noop", "{}", "signed-ok", "k1", key);
    jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, "unsigned", NULL);
    publish_signed("jobs.acme.diag.noop", "{}", "wrong-key", "k1", "not the key at all......");
    publish_signed("jobs.acme.diag.noop", "{}", "unknown-key", "k9", key);
    publish_signed("jobs.acme.diag.noop", big, "too-big", "k1", key);
    jf_h_publish(nc, "jobs.open.diag.sleep", "{}", 2, "type-denied", NULL);
    jf_h_publish(nc, "jobs.stranger.diag.noop", "{}", 2, "tenant-denied", NULL);
    jf_h_publish(nc, "jobs.open.diag.noop", "{}", 2, "open-ok", NULL);

    cr_assert_eq(succeeded(&w, "signed-ok"), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(succeeded(&w, "open-ok"), 1);
    cr_assert_eq(rejected_with(&w, "unsigned", "missing Jf-Signature"), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(rejected_with(&w, "wrong-key", "signature mismatch"), 1);
    cr_assert_eq(rejected_with(&w, "unknown-key", "k9"), 1);
    cr_assert_eq(rejected_with(&w, "too-big", "256"), 1);
    cr_assert_eq(rejected_with(&w, "type-denied", "diag.sleep"), 1);
    cr_assert_eq(rejected_with(&w, "tenant-denied", "stranger"), 1);
    /* Nothing refused ever reached a handler. */
    cr_assert_eq(jf_h_count_lines(w.err_path, started), 2);
    {
        char *log = jf_h_slurp(w.err_path);
        cr_assert(strstr(log, key) == NULL, "a signing key leaked into the log");
        free(log);
    }
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(policy, sighup_reloads_and_a_bad_file_keeps_the_old_policy, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, NULL };
    const char *const failed[] = { "\"msg\":\"reload failed; keeping the current policy and secrets\"",
                                   NULL };
    const char *const reloaded[] = { "\"msg\":\"policy and secrets reloaded\"", NULL };
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);

    /* A broken file: refused, the running policy stays. */
    write_file(policy_path, "{\"version\":1,\"tenants\":{\"open\":{\"job_types\":7}}}", 0600);
    kill(w.pid, SIGHUP);
    cr_assert_eq(jf_h_wait_lines(w.err_path, failed, 1, 5000), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_publish(nc, "jobs.open.diag.noop", "{}", 2, "still-open", NULL);
    cr_assert_eq(succeeded(&w, "still-open"), 1);

    /* A good file: applied at once; now tenant open may no longer run noop. */
    write_file(policy_path,
               "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
               "\"open\":{\"job_types\":[\"diag.sleep\"]}}}", 0600);
    kill(w.pid, SIGHUP);
    cr_assert_eq(jf_h_wait_lines(w.err_path, reloaded, 1, 5000), 1, "%s", jf_h_slurp(w.err_path));
    jf_h_publish(nc, "jobs.open.diag.noop", "{}", 2, "now-closed", NULL);
    cr_assert_eq(rejected_with(&w, "now-closed", "diag.noop"), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0, "SIGHUP must not stop the worker");
}

Test(policy, an_invalid_policy_stops_the_worker_at_start, .init = setup, .fini = teardown)
{
    const char *const env[] = { env_policy, env_secrets, NULL };
    const char *const args[] = { "worker", NULL };
    jf_h_proc_t p;
    char       *log;

    write_file(policy_path, "{\"version\":1,\"tenants\":{\"Bad Tenant\":{}}}", 0600);
    jf_h_provision(&srv, NULL);
    cr_assert_eq(jf_h_run(&srv, "bad", env, args, &p), 2);
    log = jf_h_slurp(p.err_path);
    cr_assert(strstr(log, "invalid policy or secrets") != NULL, "%s", log);
    free(log);
}

Test(policy, a_tenants_max_in_flight_caps_its_running_jobs, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", "JF_CONCURRENCY=6", env_policy, env_secrets,
                                NULL };
    const char *const big_start[] = { "\"tenant\":\"big\"", "\"msg\":\"job started\"", NULL };
    const char *const big_end[] = { "\"tenant\":\"big\"", "\"msg\":\"job succeeded\"", NULL };
    jf_h_proc_t w;
    char        id[32];
    char      **st, **en;
    int         ns, ne, max_overlap = 0;

    write_file(policy_path,
               "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
               "\"big\":{\"job_types\":[\"diag.*\"],\"max_in_flight\":2}}}", 0600);
    jf_h_provision(&srv, NULL);
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "cap-%d", i);
        jf_h_publish(nc, "jobs.big.diag.sleep", "{\"ms\":250}", 10, id, NULL);
    }
    jf_h_worker_start(&srv, "w", env, &w);
    cr_assert_eq(jf_h_wait_lines(w.err_path, big_end, 8, 20000), 8, "%s", jf_h_slurp(w.err_path));
    st = jf_h_grep(w.err_path, big_start, &ns);
    en = jf_h_grep(w.err_path, big_end, &ne);
    for (int i = 0; i < ns; i++) {
        int64_t t = jf_h_line_ts(st[i]);
        int     running = 0;
        for (int j = 0; j < ns; j++)
            running += jf_h_line_ts(st[j]) <= t;
        for (int j = 0; j < ne; j++)
            running -= jf_h_line_ts(en[j]) <= t;
        if (running > max_overlap)
            max_overlap = running;
    }
    jf_h_grep_free(st, ns);
    jf_h_grep_free(en, ne);
    cr_assert_leq(max_overlap, 2, "tenant big ran %d jobs at once, policy says 2", max_overlap);
    cr_assert_geq(max_overlap, 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(policy, enqueue_sign_produces_jobs_a_signing_policy_accepts, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, NULL };
    const char *const ok[] = { "enqueue", "diag.noop", "--tenant", "acme", "--id", "cli-signed",
                               "--json", "{}", "--sign", "k1", NULL };
    const char *const nokey[] = { "enqueue", "diag.noop", "--tenant", "acme", "--id", "x1",
                                  "--json", "{}", "--sign", "k9", NULL };
    const char *const bad_nb[] = { "enqueue", "diag.noop", "--tenant", "acme", "--id", "x2",
                                   "--json", "{}", "--header", "Jf-Not-Before:someday", NULL };
    const char *const no_dir_env[] = { NULL };
    jf_h_proc_t w, p;
    char       *err;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    cr_assert_eq(jf_h_run(&srv, "enq", env, ok, &p), 0, "%s", jf_h_slurp(p.err_path));
    cr_assert_eq(succeeded(&w, "cli-signed"), 1, "%s", jf_h_slurp(w.err_path));

    cr_assert_eq(jf_h_run(&srv, "enq-k9", env, nokey, &p), 2);
    err = jf_h_slurp(p.err_path);
    cr_assert(strstr(err, "--sign") != NULL, "%s", err);
    free(err);
    cr_assert_eq(jf_h_run(&srv, "enq-nodir", no_dir_env, ok, &p), 2);
    err = jf_h_slurp(p.err_path);
    cr_assert(strstr(err, "JF_SECRETS_DIR") != NULL, "%s", err);
    free(err);
    cr_assert_eq(jf_h_run(&srv, "enq-nb", env, bad_nb, &p), 2);
    err = jf_h_slurp(p.err_path);
    cr_assert(strstr(err, "Jf-Not-Before") != NULL, "%s", err);
    free(err);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0, "refused enqueues publish nothing");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

Test(policy, a_payload_cannot_speak_for_another_tenant, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", NULL };
    jf_h_proc_t w;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
    jf_h_publish(nc, "jobs.open.diag.noop", "{\"tenant\":\"acme\"}", 17, "cross", NULL);
    jf_h_publish(nc, "jobs.open.diag.noop", "{\"tenant\":\"open\"}", 17, "same", NULL);
    jf_h_publish(nc, "jobs.open.diag.noop", "{}", 2, "none", NULL);
    cr_assert_eq(rejected_with(&w, "cross", "payload names tenant 'acme'"), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(succeeded(&w, "same"), 1);
    cr_assert_eq(succeeded(&w, "none"), 1);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}
