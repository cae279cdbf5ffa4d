/*
 * test_lag.c - `jetfleet lag` against a real nats-server: the backlog read
 * from the JetStream API and from the monitoring endpoint (/jsz, the way
 * KEDA's nats-jetstream scaler reads it) agree, fall to zero once workers
 * run, and a missing stream or consumer is exit 4, never a lag of 0.
 *
 * The backlog test is issue 6's: with the workers stopped (one has run and
 * been stopped with SIGTERM, so a stopped worker must leave nothing
 * counted), enqueue N; both sources report N for the consumer; start two
 * workers; the lag falls to 0 on both.
 *
 * The shared harness starts nats-server without a monitoring port, so this
 * file starts its own with `-m <port>` and fills a jf_h_server_t by hand;
 * everything else (jf_h_run, jf_h_worker_start, jf_h_server_stop) is the
 * harness's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

#define SERVER_NAME "jf-lag-test"
#define NJOBS       7

static jf_h_server_t   srv;
static natsConnection *nc;
static int             mport;      /* the monitoring port */
static char            monitor[64]; /* http://127.0.0.1:<mport> */

static const char *const json_ct[] = { "Content-Type", "application/json", NULL };

/* ---- a nats-server with a monitoring port -------------------------------------- */

extern char **environ;

static bool spawn_monitored(void)
{
    char  port[16], mp[16], store[300], log[300];
    char *argv[] = { "nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-m", mp,
                     "-sd", store, "--server_name", SERVER_NAME, "-l", log, NULL };
    pid_t pid;

    snprintf(port, sizeof(port), "%d", srv.port);
    snprintf(mp, sizeof(mp), "%d", mport);
    snprintf(store, sizeof(store), "%s/js", srv.dir);
    snprintf(log, sizeof(log), "%s/server.log", srv.dir);
    snprintf(srv.url, sizeof(srv.url), "nats://127.0.0.1:%d", srv.port);
    snprintf(monitor, sizeof(monitor), "http://127.0.0.1:%d", mport);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    srv.pid = pid;
    for (int i = 0; i < 400; i++) {
        natsConnection *c = NULL;
        int             status;
        if (natsConnection_ConnectTo(&c, srv.url) == NATS_OK) {
            natsConnection_Destroy(c);
            return true;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            srv.pid = 0;
            return false;   /* a port was taken between probe and bind */
        }
        jf_h_sleep_ms(25);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    srv.pid = 0;
    return false;
}

static void setup(void)
{
    memset(&srv, 0, sizeof(srv));
    snprintf(srv.dir, sizeof(srv.dir), "/tmp/jf-it-lag-XXXXXX");
    cr_assert_not_null(mkdtemp(srv.dir));
    for (int attempt = 0; attempt < 5; attempt++) {
        srv.port = jf_h_free_port();
        do
            mport = jf_h_free_port();
        while (mport == srv.port);
        if (spawn_monitored()) {
            nc = jf_h_connect(&srv);
            return;
        }
    }
    cr_assert_fail("nats-server -m did not start; see %s/server.log", srv.dir);
}

static void teardown(void)
{
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
}

/* ---- helpers --------------------------------------------------------------------- */

static void enqueue(int n)
{
    char id[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "lag-%d", i);
        cr_assert(jf_h_publish(nc, "jobs.acme.diag.noop", "{}", 2, id, json_ct));
    }
}

/* Run `jetfleet lag <args> --json`; returns the exit code and, on 0, the
 * parsed object (decref it). */
static int lag_json(const char *tag, const char *const *args, json_t **out)
{
    const char *argv[16];
    jf_h_proc_t p;
    json_error_t e;
    char       *text;
    int         n = 0, rc;

    argv[n++] = "lag";
    for (const char *const *a = args; a != NULL && *a != NULL; a++)
        argv[n++] = *a;
    argv[n++] = "--json";
    argv[n] = NULL;
    rc = jf_h_run(&srv, tag, NULL, argv, &p);
    *out = NULL;
    if (rc == 0) {
        text = jf_h_slurp(p.out_path);
        *out = json_loads(text, 0, &e);
        cr_assert_not_null(*out, "not JSON: '%s'", text);
        cr_assert(strchr(text, '\n') == strrchr(text, '\n'), "more than one line: %s", text);
        free(text);
    } else {
        text = jf_h_slurp(p.err_path);
        fprintf(stderr, "%s: exit %d: %s", tag, rc, text);
        free(text);
    }
    return rc;
}

static json_int_t get_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

/* Run lag expecting a failure; returns its stderr (free it). */
static char *lag_fails(const char *tag, const char *const *args, int want_rc)
{
    jf_h_proc_t p;
    char       *out, *err;
    int         rc = jf_h_run(&srv, tag, NULL, args, &p);

    out = jf_h_slurp(p.out_path);
    err = jf_h_slurp(p.err_path);
    cr_assert_eq(rc, want_rc, "%s: exit %d, want %d; stdout '%s' stderr '%s'", tag, rc, want_rc,
                 out, err);
    cr_assert_str_empty(out, "%s printed a lag on failure: %s", tag, out);
    free(out);
    return err;
}

/* ---- the lag, from both sources ------------------------------------------------------ */

Test(lag, backlog_from_api_and_monitor_then_drained, .init = setup, .fini = teardown)
{
    const char *const monitor_args[] = { "--monitor", monitor, NULL };
    const char *const text_args[] = { "lag", NULL };
    const char *const text_mon[] = { "lag", "--monitor", monitor, NULL };
    const char *const w1_env[] = { "JF_WORKER_ID=lag-w1", NULL };
    const char *const w2_env[] = { "JF_WORKER_ID=lag-w2", NULL };
    json_t     *o = NULL;
    jf_h_proc_t p, w, w1, w2;
    char       *out, want[160];
    json_int_t  lag = -1;

    jf_h_provision(&srv, NULL);
    /* the workers are stopped: one ran, bound to the consumer, and was
     * stopped gracefully before the jobs arrive */
    jf_h_worker_start(&srv, "worker-before", NULL, &w);
    jf_h_wait_started(&w);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 30000), 0);
    enqueue(NJOBS);
    jf_h_wait_stream_msgs(nc, "JOBS", NJOBS, 5000);

    /* the JetStream API */
    cr_assert_eq(lag_json("api", NULL, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "stream")), "JOBS");
    cr_assert_str_eq(json_string_value(json_object_get(o, "consumer")), "default");
    cr_assert_str_eq(json_string_value(json_object_get(o, "source")), "jetstream");
    cr_assert_eq(get_int(o, "lag"), NJOBS);
    cr_assert_eq(get_int(o, "num_pending"), NJOBS);
    cr_assert_eq(get_int(o, "num_ack_pending"), 0);
    json_decref(o);

    cr_assert_eq(jf_h_run(&srv, "api-text", NULL, text_args, &p), 0);
    out = jf_h_slurp(p.out_path);
    snprintf(want, sizeof(want), "stream JOBS consumer default lag %d (pending %d, ack pending 0)\n",
             NJOBS, NJOBS);
    cr_assert_str_eq(out, want);
    free(out);

    /* the monitoring endpoint, as KEDA reads it */
    cr_assert_eq(lag_json("monitor", monitor_args, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "source")), "monitor");
    cr_assert_str_eq(json_string_value(json_object_get(o, "account")), "$G");
    cr_assert_str_eq(json_string_value(json_object_get(o, "leader")), SERVER_NAME);
    cr_assert_eq(get_int(o, "lag"), NJOBS);
    cr_assert_eq(get_int(o, "num_pending"), NJOBS);
    json_decref(o);

    cr_assert_eq(jf_h_run(&srv, "monitor-text", NULL, text_mon, &p), 0);
    out = jf_h_slurp(p.out_path);
    snprintf(want, sizeof(want), "stream JOBS consumer default lag %d (pending %d, ack pending 0) "
             "leader " SERVER_NAME "\n", NJOBS, NJOBS);
    cr_assert_str_eq(out, want);
    free(out);

    /* start the workers: two drain it; both sources see 0 */
    jf_h_worker_start(&srv, "worker-1", w1_env, &w1);
    jf_h_worker_start(&srv, "worker-2", w2_env, &w2);
    jf_h_wait_started(&w1);
    jf_h_wait_started(&w2);
    for (int i = 0; i < 60 && lag != 0; i++) {
        cr_assert_eq(lag_json("api-drain", NULL, &o), 0);
        lag = get_int(o, "lag");
        json_decref(o);
        if (lag != 0)
            jf_h_sleep_ms(250);
    }
    cr_assert_eq(lag, 0, "the workers did not drain the backlog");
    cr_assert_eq(lag_json("monitor-drain", monitor_args, &o), 0);
    cr_assert_eq(get_int(o, "lag"), 0);
    cr_assert_eq(get_int(o, "num_pending"), 0);
    cr_assert_eq(get_int(o, "num_ack_pending"), 0);
    json_decref(o);
    cr_assert_eq(jf_h_proc_stop(&w1, SIGTERM, 30000), 0);
    cr_assert_eq(jf_h_proc_stop(&w2, SIGTERM, 30000), 0);
}

/* ---- not found: exit 4, never a zero ------------------------------------------------------ */

Test(lag, missing_stream_consumer_account_exit_4, .init = setup, .fini = teardown)
{
    const char *const no_stream[] = { "lag", NULL };
    const char *const no_stream_mon[] = { "lag", "--monitor", monitor, NULL };
    const char *const no_consumer[] = { "lag", "--consumer", "nope", NULL };
    const char *const no_consumer_mon[] = { "lag", "--monitor", monitor, "--consumer", "nope",
                                            NULL };
    const char *const other_stream[] = { "lag", "--stream", "ELSEWHERE", NULL };
    const char *const no_account[] = { "lag", "--monitor", monitor, "--account", "NOPE", NULL };
    char *err;

    /* before provisioning: the stream is missing */
    err = lag_fails("no-stream", no_stream, 4);
    cr_assert(strstr(err, "stream JOBS does not exist") != NULL, "%s", err);
    free(err);
    err = lag_fails("no-stream-mon", no_stream_mon, 4);
    cr_assert(strstr(err, "stream JOBS does not exist") != NULL, "%s", err);
    free(err);

    jf_h_provision(&srv, NULL);
    err = lag_fails("no-consumer", no_consumer, 4);
    cr_assert(strstr(err, "consumer nope does not exist on stream JOBS") != NULL, "%s", err);
    free(err);
    err = lag_fails("no-consumer-mon", no_consumer_mon, 4);
    cr_assert(strstr(err, "consumer nope does not exist on stream JOBS") != NULL, "%s", err);
    free(err);
    err = lag_fails("other-stream", other_stream, 4);
    cr_assert(strstr(err, "stream ELSEWHERE does not exist") != NULL, "%s", err);
    free(err);
    err = lag_fails("no-account", no_account, 4);
    cr_assert(strstr(err, "account NOPE") != NULL, "%s", err);
    free(err);
}

/* ---- usage: exit 2 ------------------------------------------------------------------------ */

Test(lag, bad_options_exit_2, .init = setup, .fini = teardown)
{
    const char *const unknown[] = { "lag", "--bogus", NULL };
    const char *const extra[] = { "lag", "JOBS", NULL };
    const char *const bad_stream[] = { "lag", "--stream", "a.b", NULL };
    const char *const bad_consumer[] = { "lag", "--consumer", "x>", NULL };
    const char *const account_alone[] = { "lag", "--account", "A", NULL };
    const char *const bad_scheme[] = { "lag", "--monitor", "ftp://127.0.0.1:1", NULL };
    const char *const missing_value[] = { "lag", "--monitor", NULL };
    const char *const *cases[] = { unknown, extra, bad_stream, bad_consumer, account_alone,
                                   bad_scheme, missing_value };
    const char *const help[] = { "lag", "--help", NULL };
    jf_h_proc_t p;
    char        tag[32], *out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(tag, sizeof(tag), "usage-%zu", i);
        free(lag_fails(tag, cases[i], 2));
    }
    cr_assert_eq(jf_h_run(&srv, "help", NULL, help, &p), 0);
    out = jf_h_slurp(p.out_path);
    cr_assert(strstr(out, "usage: jetfleet lag") != NULL, "%s", out);
    free(out);
}

/* ---- unavailable: exit 3 --------------------------------------------------------------------- */

Test(lag, dead_server_exit_3, .init = setup, .fini = teardown)
{
    const char *const api[] = { "lag", NULL };
    const char *const mon[] = { "lag", "--monitor", monitor, NULL };
    char *err;

    jf_h_provision(&srv, NULL);
    /* stop the server but keep its directory for the output files */
    kill(srv.pid, SIGTERM);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;

    err = lag_fails("dead-api", api, 3);
    cr_assert(strstr(err, "NATS") != NULL, "%s", err);
    free(err);
    err = lag_fails("dead-monitor", mon, 3);
    cr_assert(strstr(err, "monitoring endpoint") != NULL, "%s", err);
    free(err);
}
