/*
 * metrics.c - counters, gauges and one histogram family, Prometheus text.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/metrics.h"

#define MAX_SERIES 256
#define NBUCKETS 12

static const double bucket_le[NBUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25, 0.5, 1, 5, 30 };

struct job_series {
    char     type[130];
    char     outcome[24];
    uint64_t count;
};

struct hist_series {
    char     type[130];
    uint64_t buckets[NBUCKETS];   /* non-cumulative; summed at render */
    uint64_t count;
    double   sum;
};

struct jf_metrics {
    pthread_mutex_t    mu;
    char               version[32];
    struct job_series  jobs[MAX_SERIES];
    size_t             njobs;
    struct hist_series hist[MAX_SERIES];
    size_t             nhist;
    int64_t            gauges[JF_GAUGE_MAX_];
    uint64_t           counters[JF_COUNTER_MAX_];
};

jf_status_t jf_metrics_create(jf_metrics_t **out, const char *version)
{
    jf_metrics_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return JF_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    strlcpy(m->version, version, sizeof(m->version));
    *out = m;
    return JF_OK;
}

void jf_metrics_destroy(jf_metrics_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void jf_metrics_job(jf_metrics_t *m, const char *type, const char *outcome, double seconds)
{
    size_t i;

    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    for (i = 0; i < m->njobs; i++)
        if (strcmp(m->jobs[i].type, type) == 0 && strcmp(m->jobs[i].outcome, outcome) == 0)
            break;
    if (i == m->njobs && m->njobs < MAX_SERIES) {
        strlcpy(m->jobs[i].type, type, sizeof(m->jobs[i].type));
        strlcpy(m->jobs[i].outcome, outcome, sizeof(m->jobs[i].outcome));
        m->njobs++;
    }
    if (i < m->njobs)
        m->jobs[i].count++;
    if (seconds >= 0) {
        for (i = 0; i < m->nhist; i++)
            if (strcmp(m->hist[i].type, type) == 0)
                break;
        if (i == m->nhist && m->nhist < MAX_SERIES) {
            strlcpy(m->hist[i].type, type, sizeof(m->hist[i].type));
            m->nhist++;
        }
        if (i < m->nhist) {
            int b = 0;
            while (b < NBUCKETS && seconds > bucket_le[b])
                b++;
            if (b < NBUCKETS)
                m->hist[i].buckets[b]++;
            m->hist[i].count++;
            m->hist[i].sum += seconds;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void jf_metrics_set(jf_metrics_t *m, jf_gauge_t g, int64_t v)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->gauges[g] = v;
    pthread_mutex_unlock(&m->mu);
}

void jf_metrics_add(jf_metrics_t *m, jf_counter_t c, uint64_t n)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->counters[c] += n;
    pthread_mutex_unlock(&m->mu);
}

/* A growing text buffer. */
typedef struct text {
    char  *p;
    size_t len, cap;
    bool   oom;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text_t *t, const char *fmt, ...)
{
    va_list ap;
    int     n;

    if (t->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        {
            size_t cap = t->cap * 2 + (size_t)n;
            char  *p = realloc(t->p, cap);
            if (p == NULL) {
                t->oom = true;
                return;
            }
            t->p = p;
            t->cap = cap;
        }
    }
}

jf_status_t jf_metrics_render(jf_metrics_t *m, char **out, size_t *out_len, jf_err_t *err)
{
    static const char *const gauge_name[JF_GAUGE_MAX_] = {
        "jetfleet_jobs_in_flight", "jetfleet_telemetry_pending", "jetfleet_consumer_pending",
        "jetfleet_consumer_ack_pending", "jetfleet_jobs_held", "jetfleet_jobs_waiting",
        "jetfleet_ledger_up",
    };
    static const char *const gauge_help[JF_GAUGE_MAX_] = {
        "Jobs this worker is running now.",
        "Lifecycle events published and not yet acknowledged by the stream.",
        "Messages of the pool's consumer not yet delivered (read at scrape).",
        "Messages of the pool's consumer delivered and not yet acknowledged (read at scrape).",
        "Jobs delivered to this worker and not yet acknowledged, in every phase.",
        "Jobs waiting for the ledger or the DLQ to answer again (not charged an attempt).",
        "1 when the job ledger answers, 0 when it does not or its bucket is missing.",
    };
    static const char *const counter_name[JF_COUNTER_MAX_] = {
        "jetfleet_telemetry_lost_total", "jetfleet_nats_reconnects_total",
        "jetfleet_telemetry_dropped_total",
    };
    static const char *const counter_help[JF_COUNTER_MAX_] = {
        "Lifecycle events that could not be published (refused or unanswered, dropped included).",
        "Reconnections to NATS since start.",
        "Lifecycle events dropped because JF_TELEMETRY_MAX_PENDING were awaiting acknowledgement.",
    };
    text_t t = { .p = malloc(4096), .cap = 4096 };

    if (t.p == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    t.p[0] = '\0';
    pthread_mutex_lock(&m->mu);
    put(&t, "# HELP jetfleet_build_info Build information.\n"
            "# TYPE jetfleet_build_info gauge\n"
            "jetfleet_build_info{version=\"%s\"} 1\n", m->version);
    put(&t, "# HELP jetfleet_jobs_total Jobs finished by this worker, by type and outcome.\n"
            "# TYPE jetfleet_jobs_total counter\n");
    for (size_t i = 0; i < m->njobs; i++)
        put(&t, "jetfleet_jobs_total{type=\"%s\",outcome=\"%s\"} %llu\n", m->jobs[i].type,
            m->jobs[i].outcome, (unsigned long long)m->jobs[i].count);
    put(&t, "# HELP jetfleet_job_duration_seconds Handler run time.\n"
            "# TYPE jetfleet_job_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nhist; i++) {
        uint64_t cum = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            cum += m->hist[i].buckets[b];
            put(&t, "jetfleet_job_duration_seconds_bucket{type=\"%s\",le=\"%g\"} %llu\n",
                m->hist[i].type, bucket_le[b], (unsigned long long)cum);
        }
        put(&t, "jetfleet_job_duration_seconds_bucket{type=\"%s\",le=\"+Inf\"} %llu\n"
                "jetfleet_job_duration_seconds_sum{type=\"%s\"} %.6f\n"
                "jetfleet_job_duration_seconds_count{type=\"%s\"} %llu\n",
            m->hist[i].type, (unsigned long long)m->hist[i].count, m->hist[i].type,
            m->hist[i].sum, m->hist[i].type, (unsigned long long)m->hist[i].count);
    }
    for (int g = 0; g < JF_GAUGE_MAX_; g++)
        put(&t, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", gauge_name[g], gauge_help[g],
            gauge_name[g], gauge_name[g], (long long)m->gauges[g]);
    for (int c = 0; c < JF_COUNTER_MAX_; c++)
        put(&t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_name[c], counter_help[c],
            counter_name[c], counter_name[c], (unsigned long long)m->counters[c]);
    pthread_mutex_unlock(&m->mu);
    if (t.oom) {
        free(t.p);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    *out = t.p;
    *out_len = t.len;
    return JF_OK;
}
