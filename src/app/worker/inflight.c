/*
 * inflight.c - answering `jetfleet job show` about held jobs (see
 * inflight.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/worker/inflight.h"
#include "app/worker/job.h"
#include "app/worker/worker.h"
#include "core/log.h"
#include "core/nats.h"
#include "shared/ids.h"

void jf_inflight_subject(char *buf, size_t size, const char *stream, const char *tenant)
{
    snprintf(buf, size, "%s.%s.%s", JF_INFLIGHT_PREFIX, stream, tenant);
}

static void on_query(const char *subject, const char *reply, const char *data, size_t len,
                     void *arg)
{
    jf_worker_t  *w = arg;
    const char   *tenant = strrchr(subject, '.');
    char          id[JF_JOB_ID_MAX + 1];
    jf_job_view_t v;
    json_t       *o;
    char         *text;

    if (reply == NULL || tenant == NULL || len == 0 || len > JF_JOB_ID_MAX)
        return;
    memcpy(id, data, len);
    id[len] = '\0';
    if (!jf_jobs_find(w->jobs, tenant + 1, id, &v))
        return;
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
                  "worker", w->worker_id, "pool", w->pool, "job_id", id, "tenant", tenant + 1,
                  "type", v.type, "phase", jf_phase_name(v.phase),
                  "attempt", (json_int_t)v.attempt, "delivery", (json_int_t)v.delivered,
                  "stream_seq", (json_int_t)v.stream_seq, "received_ms",
                  (json_int_t)v.received_ms, "started_ms", (json_int_t)v.started_ms);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text != NULL)
        jf_nats_publish(w->nc, reply, text, strlen(text), NULL);
    free(text);
    json_decref(o);
}

jf_status_t jf_inflight_start(jf_worker_t *w, jf_err_t *err)
{
    char subject[256];

    jf_inflight_subject(subject, sizeof(subject), w->cfg->names.jobs_stream, "*");
    return jf_nats_subscribe(w->nc, subject, NULL, on_query, w, &w->inflight, err);
}

void jf_inflight_stop(jf_worker_t *w)
{
    jf_nats_unsubscribe(w->inflight);
    w->inflight = NULL;
}
