/*
 * worker.c - `jetfleet worker`: start-up and shutdown of one stateless
 * worker process (the parts are listed in worker.h).
 *
 * Start-up: configuration, modules, the security guard, the connections
 * (one for jobs, events and dead letters; one for the ledger), the
 * publisher of lifecycle events, the ledger, the binding to the pool's
 * durable consumer (created by `jetfleet provision`, never here), the jobs
 * table, the pipeline and its handler threads, health, the ticker, the
 * quarantine and in-flight listeners, and at last the first pull. Then the
 * main thread only waits for signals.
 *
 * Shutdown on SIGTERM or SIGINT (docs/operations.md, "Signals"):
 *   1. stop pulling; jobs not started are given back at once, recorded as
 *      free deliveries so that they are charged no attempt;
 *   2. running jobs get JF_SHUTDOWN_GRACE to finish and record their end;
 *   3. then handlers are told to stop (jf_job_cancelled) and, a second
 *      later, whatever is still here is NAKed without delay;
 *   4. events are flushed, the connections drained, modules shut down,
 *      exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bsd/string.h>

#include "app/cli.h"
#include "app/modules.h"
#include "app/worker/enqueue.h"
#include "app/worker/guard.h"
#include "app/worker/health.h"
#include "app/worker/inflight.h"
#include "app/worker/job.h"
#include "app/worker/pipeline.h"
#include "app/worker/quarantine.h"
#include "app/worker/ticker.h"
#include "app/worker/worker.h"
#include "core/clock.h"
#include "core/ledger.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/nats.h"
#include "core/pipe.h"
#include "core/pull.h"
#include "core/registry_impl.h"
#include "core/telemetry.h"
#include "jf_build_config.h"
#include "security/redact.h"
#include "shared/ids.h"

/* ---- events from the connections and the pull engine ----------------------------- */

/* Events of either connection: "jobs" (pulls, acks, events, dead letters)
 * or "ledger" (the ledger's reads and writes). */
static void nats_event(jf_worker_t *w, const char *conn, jf_nats_event_t ev, const char *detail)
{
    char url[512];

    switch (ev) {
    case JF_NATS_EV_DISCONNECTED:
        jf_log_kv(JF_LOG_WARN, "disconnected from NATS", JF_LS("connection", conn),
                  JF_LS("detail", detail));
        break;
    case JF_NATS_EV_RECONNECTED:
        jf_metrics_add(w->metrics, JF_COUNTER_NATS_RECONNECTS, 1);
        jf_log_kv(JF_LOG_INFO, "reconnected to NATS", JF_LS("connection", conn),
                  JF_LS("server", jf_redact_url_list(detail, url, sizeof(url))));
        if (strcmp(conn, "jobs") == 0 && w->pull != NULL) {
            /* The server may have restarted and forgotten our progress
             * acks: jobs that have not started here may be another
             * worker's by now (job.h). */
            if (w->jobs != NULL)
                jf_jobs_lose_leases(w->jobs);
            jf_pull_restart(w->pull);
        }
        break;
    case JF_NATS_EV_CLOSED:
        jf_log_kv(JF_LOG_INFO, "NATS connection closed", JF_LS("connection", conn),
                  JF_LS("detail", detail));
        break;
    case JF_NATS_EV_ERROR:
        jf_log_kv(JF_LOG_ERROR, "NATS asynchronous error", JF_LS("connection", conn),
                  JF_LS("detail", detail));
        break;
    case JF_NATS_EV_LAME_DUCK:
        jf_log_kv(JF_LOG_WARN, "NATS server entering lame duck mode", JF_LS("connection", conn),
                  JF_LS("detail", detail));
        break;
    }
}

static void on_nats_event(jf_nats_event_t ev, const char *detail, void *arg)
{
    nats_event(arg, "jobs", ev, detail);
}

static void on_ledger_nats_event(jf_nats_event_t ev, const char *detail, void *arg)
{
    nats_event(arg, "ledger", ev, detail);
}

static void on_pull_event(jf_pull_event_t ev, const char *detail, void *arg)
{
    jf_worker_t *w = arg;

    switch (ev) {
    case JF_PULL_EV_RESTARTED:
        jf_log_kv(JF_LOG_WARN, "pull restarted", JF_LS("detail", detail));
        break;
    case JF_PULL_EV_CONSUMER_GONE:
        jf_log_kv(JF_LOG_ERROR, "consumer deleted; stopping", JF_LS("detail", detail));
        atomic_store(&w->fatal, true);
        kill(getpid(), SIGTERM);
        break;
    case JF_PULL_EV_WARNING:
        jf_log_kv(JF_LOG_WARN, "pull warning", JF_LS("detail", detail));
        break;
    }
}

/* The pull engine's thread: the pipeline exists before the first pull. */
static void deliver(jf_jsmsg_t *msg, void *arg)
{
    jf_worker_t *w = arg;

    jf_pipeline_deliver(msg, w->pipeline);
}

/* ---- the tick ---------------------------------------------------------------------- */

static void on_overrun(jf_wjob_t *job, void *arg)
{
    jf_worker_t *w = arg;

    jf_log_kv(JF_LOG_ERROR, "job overran its deadline; no longer extended, so another worker "
              "will get it after AckWait", JF_LS("job_id", job->job_id ? job->job_id : ""),
              JF_LS("tenant", job->subj.tenant), JF_LS("type", job->subj.type),
              JF_LN("ack_wait_ms", w->ack_wait_ms));
}

static void on_tick(int64_t now, void *arg)
{
    jf_worker_t *w = arg;

    jf_jobs_progress(w->jobs, now, on_overrun, w);
    jf_pipeline_tick(w->pipeline, now);
    jf_health_tick(w->health, now);
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void shutdown_jobs(jf_worker_t *w)
{
    int left;

    jf_pull_stop(w->pull);
    jf_pipeline_close(w->pipeline);
    jf_log_kv(JF_LOG_INFO, "shutting down; waiting for running jobs",
              JF_LN("grace_ms", w->cfg->shutdown_grace));
    if (jf_pipeline_wait(w->pipeline, w->cfg->shutdown_grace))
        return;

    /* Grace is over: ask handlers to stop, then give back what is left. */
    atomic_store(&w->cancel, true);
    if (jf_pipeline_wait(w->pipeline, 1000))
        return;
    left = jf_pipeline_give_back(w->pipeline);
    if (left > 0)
        jf_log_kv(JF_LOG_WARN, "jobs still running after the grace period were NAKed for "
                  "another worker", JF_LN("jobs", left));
    /* Requests still out come back, or time out, within JF_API_TIMEOUT. */
    jf_pipeline_wait(w->pipeline, w->cfg->api_timeout);
}

/* ---- the command ------------------------------------------------------------------------ */

static void help(void)
{
    printf("usage: jetfleet worker [--pool NAME] [--concurrency N]\n"
           "\n"
           "Run one worker process: bind to the pool's durable pull consumer on\n"
           "$JF_STREAM (create it first with `jetfleet provision`), run up to N jobs at\n"
           "once, and stop gracefully on SIGTERM or SIGINT (JF_SHUTDOWN_GRACE).\n"
           "\n"
           "options:\n"
           "  --pool NAME        pool to serve; default JF_POOL\n"
           "  --concurrency N    handler threads; default JF_CONCURRENCY\n"
           "\n"
           "Configuration: `jetfleet config schema`. Logs: JSON lines on stderr.\n");
}

static int parse_args(int argc, char **argv, const char **pool, int64_t *concurrency)
{
    static const struct option opts[] = {
        { "pool", required_argument, NULL, 'p' },
        { "concurrency", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    jf_err_t err = { 0 };
    int      c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': *pool = optarg; break;
        case 'c':
            if (jf_parse_int(optarg, concurrency, &err) != JF_OK || *concurrency < 1 ||
                *concurrency > 4096) {
                jf_cli_error("worker: --concurrency must be an integer in [1, 4096]");
                return JF_EXIT_USAGE;
            }
            break;
        case 'h': help(); return -1;
        default:  return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("worker: unexpected argument '%s'", argv[optind]);
        return JF_EXIT_USAGE;
    }
    return JF_EXIT_OK;
}

/* Log err, and the exit code it calls for. */
static int failed(const char *what, const jf_err_t *err)
{
    jf_log_kv(JF_LOG_ERROR, what, JF_LS("error", jf_err_msg(err)));
    return jf_cli_exit_code(err->code);
}

int jf_cmd_worker(int argc, char **argv)
{
    jf_config_t cfg;
    jf_worker_t w;
    jf_err_t    err = { 0 };
    const char *pool = NULL;
    int64_t     concurrency = 0;
    char        conn_name[192], urls[1024], host[64];
    sigset_t    sigs;
    bool        modules_up = false, torn_down = true;
    int         rc;

    if ((rc = parse_args(argc, argv, &pool, &concurrency)) != JF_EXIT_OK)
        return rc < 0 ? JF_EXIT_OK : rc;
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        return rc;
    if (pool == NULL)
        pool = cfg.pool;
    if (concurrency == 0)
        concurrency = cfg.concurrency;
    if (jf_token_check(pool, strlen(pool), JF_TOKEN_MAX, "pool", &err) != JF_OK) {
        jf_cli_error("worker: %s", jf_err_msg(&err));
        jf_config_free(&cfg);
        return JF_EXIT_USAGE;
    }

    memset(&w, 0, sizeof(w));
    w.cfg = &cfg;
    w.pool = pool;
    w.concurrency = (int)concurrency;
    if (cfg.worker_id[0] != '\0') {
        strlcpy(w.worker_id, cfg.worker_id, sizeof(w.worker_id));
    } else {
        if (gethostname(host, sizeof(host)) != 0)
            strlcpy(host, "unknown", sizeof(host));
        host[sizeof(host) - 1] = '\0';
        snprintf(w.worker_id, sizeof(w.worker_id), "%s-%d", host, (int)getpid());
    }

    /* Signals are taken synchronously by the main thread; block them before
     * any thread exists so every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);   /* reloads the policy and secrets; never fatal */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = JF_EXIT_FAIL;
    if (jf_app_registry(&w.reg, &err) != JF_OK) {
        rc = failed("module start-up failed", &err);
        goto out;
    }
    jf_registry_set_config(w.reg, &cfg);
    if (jf_guard_create(&w.guard, &cfg, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "invalid policy or secrets", JF_LS("error", jf_err_msg(&err)));
        rc = JF_EXIT_USAGE;
        goto out;
    }
    jf_guard_hooks(w.guard, &w.hooks);
    w.hooks.enqueue = jf_worker_enqueue;
    w.hooks.enqueue_ctx = &w;
    if (jf_metrics_create(&w.metrics, JF_VERSION) != JF_OK) {
        jf_log(JF_LOG_ERROR, "out of memory");
        goto out;
    }

    /* The jobs connection: pulls, acks, events, dead letters. */
    snprintf(conn_name, sizeof(conn_name), "jetfleet-worker %s %s", pool, w.worker_id);
    if (jf_nats_connect(&w.nc, &cfg, conn_name, on_nats_event, &w, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot connect to NATS", JF_LS("error", jf_err_msg(&err)),
                  JF_LS("servers", jf_redact_url_list(cfg.nats_url, urls, sizeof(urls))));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    if (jf_pipe_create(&w.pipe, w.nc, cfg.api_timeout, &err) != JF_OK) {
        rc = failed("cannot start the request pipe", &err);
        goto out;
    }
    /* The ledger has its own connection, by default written to the socket
     * at once (JF_LEDGER_FLUSH=direct): its round trips are on every job's
     * path, and a batching flusher adds about a millisecond to each. In
     * dedupe-only mode there is no ledger at all. */
    if (strcmp(cfg.ledger_mode, "off") != 0) {
        snprintf(conn_name, sizeof(conn_name), "jetfleet-worker %s %s ledger", pool,
                 w.worker_id);
        if ((strcmp(cfg.ledger_flush, "direct") == 0
                 ? jf_nats_connect_direct(&w.ledger_nc, &cfg, conn_name, on_ledger_nats_event,
                                          &w, &err)
                 : jf_nats_connect(&w.ledger_nc, &cfg, conn_name, on_ledger_nats_event, &w,
                                   &err)) != JF_OK) {
            jf_log_kv(JF_LOG_ERROR, "cannot connect to NATS for the ledger",
                      JF_LS("error", jf_err_msg(&err)),
                      JF_LS("servers", jf_redact_url_list(cfg.nats_url, urls, sizeof(urls))));
            rc = jf_cli_exit_code(err.code);
            goto out;
        }
        if (jf_ledger_open(&w.ledger, w.ledger_nc, cfg.names.ledger_bucket, &err) != JF_OK ||
            jf_ledger_start(w.ledger, cfg.api_timeout, &err) != JF_OK) {
            rc = failed("cannot open the job ledger", &err);
            goto out;
        }
    }

    /* Modules start once the connection is up: they may open their own
     * KV buckets over it (core/kv.h). */
    jf_registry_set_nats(w.reg, w.nc);
    if (jf_registry_init_modules(w.reg, &err) != JF_OK) {
        rc = failed("module start-up failed", &err);
        goto out;
    }
    modules_up = true;

    /* The jobs held besides those running: their ledger records are read
     * while others run, so a handler thread that finishes starts the next
     * job at once; with per-tenant limits, jobs of other tenants behind a
     * burst are within reach. */
    w.prefetch = cfg.prefetch > 0 ? (int)cfg.prefetch
                                  : (int)(concurrency > 8 ? concurrency : 8);
    {
        jf_pull_opts_t po = {
            .stream = cfg.names.jobs_stream, .consumer = pool,
            .max_inflight = (int)concurrency + w.prefetch,
            .expires_ms = cfg.pull_expires, .heartbeat_ms = cfg.pull_heartbeat,
        };
        if (jf_pull_create(&w.pull, w.nc, &po, deliver, on_pull_event, &w, &err) != JF_OK) {
            rc = failed("cannot bind to the pool's consumer", &err);
            goto out;
        }
    }
    w.ack_wait_ms = jf_pull_ack_wait_ms(w.pull);
    /* The pull engine's limit, and room for a server that overshoots it
     * after a restart. */
    if (jf_jobs_create(&w.jobs, (int)concurrency + w.prefetch + (int)concurrency / 2 + 16,
                       w.ack_wait_ms,
                       w.pipe, &err) != JF_OK ||
        jf_health_create(&w.health, &w, &err) != JF_OK) {
        rc = failed(w.jobs == NULL ? "cannot allocate the jobs table" : "cannot serve metrics",
                    &err);
        goto out;
    }
    {
        jf_telemetry_opts_t to = {
            .json = strcmp(cfg.telemetry_format, "json") == 0,
            .max_pending = (int)cfg.telemetry_max_pending,
            .on_lost = jf_health_event_lost,
            .arg = w.health,
        };
        if (jf_telemetry_create(&w.telemetry, w.pipe, &to, &err) != JF_OK) {
            rc = failed("cannot start telemetry", &err);
            goto out;
        }
    }
    w.events = (jf_events_t){ .telemetry = w.telemetry, .prefix = cfg.names.telemetry_prefix,
                              .worker_id = w.worker_id, .region = cfg.region, .pool = pool };
    if (jf_pipeline_create(&w.pipeline, &w, &err) != JF_OK) {
        rc = failed("cannot start the job pipeline", &err);
        goto out;
    }
    {
        int64_t every = w.ack_wait_ms / 12;
        if (every > 250)
            every = 250;
        if (jf_ticker_start(&w.ticker, every < 20 ? 20 : every, on_tick, &w, &err) != JF_OK) {
            rc = failed("cannot start the ticker", &err);
            goto out;
        }
    }
    /* Both listeners before the first pull, so that an advisory caused by
     * this worker's own pull is not missed. */
    if (jf_quarantine_start(&w, &err) != JF_OK) {
        rc = failed("cannot start the quarantine listener", &err);
        goto out;
    }
    if (jf_inflight_start(&w, &err) != JF_OK) {
        rc = failed("cannot answer job queries", &err);
        goto out;
    }
    if (jf_pull_start(w.pull, &err) != JF_OK) {
        rc = failed("cannot start pulling", &err);
        goto out;
    }
    atomic_store(&w.pulling, true);
    {
        char server[512];
        jf_nats_server_url(w.nc, server, sizeof(server));
        jf_log_kv(JF_LOG_INFO, "worker started", JF_LS("worker", w.worker_id),
                  JF_LS("pool", pool), JF_LS("stream", cfg.names.jobs_stream),
                  JF_LN("concurrency", concurrency), JF_LN("prefetch", w.prefetch),
                  JF_LS("region", cfg.region),
                  JF_LN("ack_wait_ms", w.ack_wait_ms),
                  JF_LN("tenant_limit", cfg.tenant_max_inflight),
                  JF_LS("metrics", cfg.metrics_addr), JF_LS("ledger_mode", cfg.ledger_mode),
                  JF_LS("ledger_flush", w.ledger == NULL ? "-" : cfg.ledger_flush),
                  JF_LS("server", jf_redact_url_list(server, urls, sizeof(urls))));
        if (w.ledger == NULL)
            jf_log_kv(JF_LOG_WARN, "ledger off (JF_LEDGER_MODE=off): dedupe-only mode weakens "
                      "the promise of one effect per success; a job whose worker dies after "
                      "its effect but before the ack runs again, and so does one re-published "
                      "after the duplicate window", JF_LS("worker", w.worker_id),
                      JF_LS("ledger_mode", "off"));
    }

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            jf_log_kv(JF_LOG_INFO, "signal received", JF_LS("signal", strsignal(sig)));
            break;
        }
        if (sig == SIGHUP) {
            if (jf_guard_reload(w.guard, &err) != JF_OK)
                jf_log_kv(JF_LOG_ERROR, "reload failed; keeping the current policy and secrets",
                          JF_LS("error", jf_err_msg(&err)));
            else
                jf_log_kv(JF_LOG_INFO, "policy and secrets reloaded",
                          JF_LS("policy_file", cfg.policy_file),
                          JF_LN("secrets", (int64_t)jf_guard_secrets(w.guard)));
        }
        if (sig < 0 && errno != EINTR)
            break;
    }
    atomic_store(&w.stopping, true);
    shutdown_jobs(&w);
    rc = atomic_load(&w.fatal) ? JF_EXIT_FAIL : JF_EXIT_OK;

out:
    atomic_store(&w.stopping, true);
    atomic_store(&w.cancel, true);
    if (w.pull != NULL)
        jf_pull_stop(w.pull);
    jf_inflight_stop(&w);
    jf_quarantine_stop(&w);
    jf_ticker_stop(w.ticker);
    jf_health_destroy(w.health);
    if (w.pipeline != NULL) {
        jf_pipeline_close(w.pipeline);
        jf_pipeline_give_back(w.pipeline);
        /* A handler that ignores cancellation cannot be joined: its job
         * was given back, and what it uses is left to process exit. */
        torn_down = jf_pipeline_handlers_done(w.pipeline);
    }
    jf_log(JF_LOG_DEBUG, "handlers stopped; flushing telemetry");
    if (w.telemetry != NULL) {
        jf_telemetry_stats_t ts;
        jf_telemetry_flush(w.telemetry, 5000, NULL);
        jf_telemetry_stats(w.telemetry, &ts);
        jf_log_kv(ts.lost > 0 || ts.dropped > 0 || ts.pending > 0 ? JF_LOG_WARN : JF_LOG_DEBUG,
                  "telemetry flushed", JF_LN("events", ts.emitted), JF_LN("acked", ts.acked),
                  JF_LN("lost", ts.lost), JF_LN("dropped", ts.dropped),
                  JF_LN("retried", ts.retried), JF_LN("unacknowledged", ts.pending));
    }
    if (torn_down) {
        /* The pipes call back what is still out; the jobs, the pipeline and
         * the pull engine those callbacks use are freed after them. */
        jf_ledger_close(w.ledger);
        jf_nats_close(w.ledger_nc, 5000);
        jf_pipe_destroy(w.pipe);
        jf_telemetry_destroy(w.telemetry);
        jf_pipeline_destroy(w.pipeline);
        jf_pull_destroy(w.pull);
        jf_jobs_destroy(w.jobs);
        if (modules_up)
            jf_registry_shutdown_modules(w.reg);   /* before the connection their buckets use */
    }
    jf_nats_close(w.nc, 5000);
    if (torn_down) {
        jf_metrics_destroy(w.metrics);
        jf_guard_destroy(w.guard);
        jf_registry_destroy(w.reg);
        jf_config_free(&cfg);
    }
    jf_log_kv(JF_LOG_INFO, "worker stopped", JF_LN("exit_code", rc));
    return rc;
}
