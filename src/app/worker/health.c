/*
 * health.c - the worker's metrics, health endpoints and title (see
 * health.h).
 *
 * /readyz is 200 only when the worker can run jobs end to end: both
 * connections up, bound to its consumer, the ledger answering, and not
 * draining. Its body says why when it is not, and adds what degrades the
 * worker without stopping it: lifecycle events lost lately.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/unistd.h>

#include "app/worker/health.h"
#include "app/worker/job.h"
#include "app/worker/pipeline.h"
#include "app/worker/worker.h"
#include "core/clock.h"
#include "core/httpd.h"
#include "core/jsadmin.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/nats.h"
#include "core/pull.h"
#include "core/telemetry.h"

/* Lost events are logged at most once per this interval. */
#define LOST_EVERY_MS 10000
/* /readyz mentions losses for this long after the last one. */
#define LOST_RECENT_MS 60000

struct jf_health {
    jf_worker_t    *w;
    jf_httpd_t     *httpd;
    int64_t         last_title;

    pthread_mutex_t mu;           /* the loss report */
    uint64_t        lost_window;  /* lost since the last log line */
    uint64_t        dropped_window;
    int64_t         last_logged;  /* mono ms of the last loss line */
    int64_t         last_lost;    /* mono ms of the last loss */
    char            last_detail[200];
    char            last_subject[160];
};

/* ---- lost lifecycle events ---------------------------------------------------------- */

static void log_losses(jf_health_t *h, int64_t now, bool force)
{
    uint64_t lost, dropped;
    char     detail[200], subject[160];

    pthread_mutex_lock(&h->mu);
    if ((h->lost_window == 0 && h->dropped_window == 0) ||
        (!force && now - h->last_logged < LOST_EVERY_MS)) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    lost = h->lost_window;
    dropped = h->dropped_window;
    h->lost_window = h->dropped_window = 0;
    h->last_logged = now;
    memcpy(detail, h->last_detail, sizeof(detail));
    memcpy(subject, h->last_subject, sizeof(subject));
    pthread_mutex_unlock(&h->mu);
    jf_log_kv(JF_LOG_ERROR, "lifecycle events lost", JF_LN("lost", lost),
              JF_LN("dropped", dropped), JF_LN("interval_ms", LOST_EVERY_MS),
              JF_LS("last_subject", subject), JF_LS("last_error", detail));
}

void jf_health_event_lost(bool dropped, const char *subject, const char *detail, void *arg)
{
    jf_health_t *h = arg;
    int64_t      now = jf_clock_mono_ms();
    bool         first;

    jf_metrics_add(h->w->metrics, JF_COUNTER_TELEMETRY_LOST, 1);
    if (dropped)
        jf_metrics_add(h->w->metrics, JF_COUNTER_TELEMETRY_DROPPED, 1);
    pthread_mutex_lock(&h->mu);
    if (dropped)
        h->dropped_window++;
    else
        h->lost_window++;
    h->last_lost = now;
    snprintf(h->last_detail, sizeof(h->last_detail), "%s", detail ? detail : "");
    snprintf(h->last_subject, sizeof(h->last_subject), "%s", subject ? subject : "");
    /* The first loss after a quiet interval is said at once. */
    first = now - h->last_logged >= LOST_EVERY_MS;
    pthread_mutex_unlock(&h->mu);
    if (first)
        log_losses(h, now, false);
}

/* ---- the endpoint ---------------------------------------------------------------------- */

static void set_body(jf_http_reply_t *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup(text);
    r->len = r->body ? strlen(r->body) : 0;
}

static void metrics(jf_health_t *h, jf_http_reply_t *r)
{
    jf_worker_t         *w = h->w;
    jf_telemetry_stats_t ts;
    jf_consumer_state_t  cs;
    int                  counts[JF_PHASE_FINISHING + 1];
    char                *text = NULL;
    size_t               len = 0;

    /* The jobs and the pipeline exist once the worker pulls (it never
     * stops being true; they are freed only after this endpoint stops). */
    if (atomic_load(&w->pulling)) {
        jf_jobs_count(w->jobs, counts);
        jf_metrics_set(w->metrics, JF_GAUGE_IN_FLIGHT, counts[JF_PHASE_RUNNING]);
        jf_metrics_set(w->metrics, JF_GAUGE_JOBS_HELD,
                       jf_jobs_capacity(w->jobs) - counts[JF_PHASE_IDLE]);
        jf_metrics_set(w->metrics, JF_GAUGE_JOBS_WAITING, counts[JF_PHASE_WAITING]);
        jf_metrics_set(w->metrics, JF_GAUGE_LEDGER_UP,
                       w->ledger == NULL ||
                       jf_pipeline_ledger_state(w->pipeline, NULL, 0) == JF_LEDGER_UP);
    }
    if (w->telemetry != NULL) {
        jf_telemetry_stats(w->telemetry, &ts);
        jf_metrics_set(w->metrics, JF_GAUGE_TELEMETRY_PENDING, ts.pending);
    }
    if (jf_nats_connected(w->nc) && w->pull != NULL &&
        jf_js_consumer_state(w->nc, w->cfg->names.jobs_stream, jf_pull_consumer(w->pull), &cs,
                             NULL) == JF_OK) {
        jf_metrics_set(w->metrics, JF_GAUGE_CONSUMER_PENDING, (int64_t)cs.num_pending);
        jf_metrics_set(w->metrics, JF_GAUGE_CONSUMER_ACK_PENDING, cs.num_ack_pending);
    }
    if (jf_metrics_render(w->metrics, &text, &len, NULL) != JF_OK) {
        set_body(r, 500, "out of memory\n");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = text;
    r->len = len;
}

static void readyz(jf_health_t *h, jf_http_reply_t *r)
{
    jf_worker_t *w = h->w;
    char         why[300], body[700], lost[400] = "";
    int64_t      now = jf_clock_mono_ms();

    pthread_mutex_lock(&h->mu);
    if (h->last_lost != 0 && now - h->last_lost < LOST_RECENT_MS)
        snprintf(lost, sizeof(lost), "telemetry: lifecycle events were lost in the last %d s "
                 "(last error: %s); jobs go on, see jetfleet_telemetry_lost_total\n",
                 LOST_RECENT_MS / 1000, h->last_detail);
    pthread_mutex_unlock(&h->mu);

    if (atomic_load(&w->stopping)) {
        set_body(r, 503, "draining\n");
    } else if (!jf_nats_connected(w->nc)) {
        set_body(r, 503, "not connected to NATS\n");
    } else if (w->ledger_nc != NULL && !jf_nats_connected(w->ledger_nc)) {
        set_body(r, 503, "the ledger's connection to NATS is down\n");
    } else if (!atomic_load(&w->pulling)) {
        set_body(r, 503, "not bound to the consumer yet\n");
    } else if (w->ledger != NULL &&
               jf_pipeline_ledger_state(w->pipeline, why, sizeof(why)) != JF_LEDGER_UP) {
        snprintf(body, sizeof(body), "the job ledger (%s) %s: %s; jobs wait for it\n%s",
                 w->cfg->names.ledger_bucket,
                 jf_pipeline_ledger_state(w->pipeline, NULL, 0) == JF_LEDGER_MISSING
                     ? "does not exist: run `jetfleet provision`" : "is failing",
                 why, lost);
        set_body(r, 503, body);
    } else {
        snprintf(body, sizeof(body), "ready\n%s", lost);
        set_body(r, 200, body);
    }
}

static void on_http(const char *path, jf_http_reply_t *r, void *arg)
{
    jf_health_t *h = arg;

    if (strcmp(path, "/metrics") == 0)
        metrics(h, r);
    else if (strcmp(path, "/healthz") == 0)
        set_body(r, 200, "ok\n");
    else if (strcmp(path, "/readyz") == 0)
        readyz(h, r);
    else
        set_body(r, 404, "not found: try /metrics, /healthz or /readyz\n");
}

/* ---- lifecycle -------------------------------------------------------------------------- */

jf_status_t jf_health_create(jf_health_t **out, jf_worker_t *w, jf_err_t *err)
{
    jf_health_t *h = calloc(1, sizeof(*h));
    jf_status_t  st;

    if (h == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    h->w = w;
    h->last_logged = jf_clock_mono_ms() - LOST_EVERY_MS;
    pthread_mutex_init(&h->mu, NULL);
    if (w->cfg->metrics_addr[0] != '\0') {
        st = jf_httpd_start(&h->httpd, w->cfg->metrics_addr, on_http, h, err);
        if (st != JF_OK) {
            pthread_mutex_destroy(&h->mu);
            free(h);
            return st;
        }
    }
    *out = h;
    return JF_OK;
}

void jf_health_destroy(jf_health_t *h)
{
    if (h == NULL)
        return;
    jf_httpd_stop(h->httpd);
    log_losses(h, jf_clock_mono_ms(), true);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void jf_health_tick(jf_health_t *h, int64_t now)
{
    jf_worker_t *w = h->w;
    int          counts[JF_PHASE_FINISHING + 1];

    log_losses(h, now, false);
    if (now - h->last_title < 1000)
        return;
    h->last_title = now;
    jf_jobs_count(w->jobs, counts);
    setproctitle("-jetfleet worker pool=%s in-flight=%d/%d held=%d %s", w->pool ? w->pool : "?",
                 counts[JF_PHASE_RUNNING], w->concurrency,
                 jf_jobs_capacity(w->jobs) - counts[JF_PHASE_IDLE],
                 atomic_load(&w->stopping) ? "draining"
                 : jf_nats_connected(w->nc) ? "running" : "disconnected");
}
