/*
 * jobs.c - the table of jobs in the worker, their acknowledgements and
 * their leases (see job.h).
 *
 * A fixed array of descriptors and a stack of free ones, under one mutex.
 * The pull engine bounds how many jobs are delivered at once, so the table
 * is sized once at start-up and never grows; a delivery that finds it full
 * (the server overshooting after a restart) is given back at once.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "app/worker/job.h"
#include "core/clock.h"
#include "shared/arena_impl.h"

struct jf_jobs {
    pthread_mutex_t mu;
    pthread_cond_t  empty;        /* signalled when the last job is released */
    jf_wjob_t      *jobs;
    int             capacity;
    int            *free;         /* indexes of IDLE descriptors */
    int             nfree;
    int64_t         ack_wait_ms;
    int64_t         every_ms;     /* a progress ack every AckWait/3 */
    int64_t         margin_ms;    /* a lease ends this long before AckWait does */
    jf_pipe_t      *pipe;
    uint64_t        gen;
};

/* A +WPI waiting for the server's confirmation. Allocated apart from the
 * job: the job may leave the worker before the answer comes. */
typedef struct progress_req {
    jf_pipe_req_t req;
    jf_jobs_t    *t;
    int           index;
    uint64_t      gen;
    int64_t       sent;
} progress_req_t;

const char *jf_phase_name(jf_phase_t phase)
{
    switch (phase) {
    case JF_PHASE_IDLE:      return "idle";
    case JF_PHASE_ARRIVED:   return "arrived";
    case JF_PHASE_READING:   return "reading the ledger";
    case JF_PHASE_WAITING:   return "waiting for the ledger";
    case JF_PHASE_QUEUED:    return "queued";
    case JF_PHASE_RUNNING:   return "running";
    case JF_PHASE_FINISHING: return "finishing";
    }
    return "unknown";
}

jf_status_t jf_jobs_create(jf_jobs_t **out, int capacity, int64_t ack_wait_ms, jf_pipe_t *pipe,
                           jf_err_t *err)
{
    jf_jobs_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    t->jobs = calloc((size_t)capacity, sizeof(*t->jobs));
    t->free = calloc((size_t)capacity, sizeof(*t->free));
    if (t->jobs == NULL || t->free == NULL)
        goto nomem;
    t->capacity = capacity;
    t->ack_wait_ms = ack_wait_ms;
    t->every_ms = ack_wait_ms / 3 > 0 ? ack_wait_ms / 3 : 1;
    t->margin_ms = ack_wait_ms / 10 > 50 ? ack_wait_ms / 10 : 50;
    t->pipe = pipe;
    pthread_mutex_init(&t->mu, NULL);
    jf_cond_init(&t->empty);
    for (int i = 0; i < capacity; i++) {
        t->jobs[i].index = i;
        atomic_init(&t->jobs[i].held, false);
        /* A small first block: most handlers allocate nothing. */
        if (jf_arena_create(&t->jobs[i].arena, 1024) != JF_OK)
            goto nomem;
        t->free[t->nfree++] = capacity - 1 - i;   /* hand out index 0 first */
    }
    *out = t;
    return JF_OK;
nomem:
    t->nfree = t->capacity;   /* nothing taken */
    jf_jobs_destroy(t);
    return jf_err_set(err, JF_ENOMEM, "out of memory");
}

void jf_jobs_destroy(jf_jobs_t *t)
{
    if (t == NULL)
        return;
    for (int i = 0; t->jobs != NULL && i < t->capacity; i++)
        jf_arena_destroy(t->jobs[i].arena);
    if (t->capacity > 0) {
        pthread_cond_destroy(&t->empty);
        pthread_mutex_destroy(&t->mu);
    }
    free(t->jobs);
    free(t->free);
    free(t);
}

jf_wjob_t *jf_jobs_take(jf_jobs_t *t, jf_jsmsg_t *msg)
{
    jf_wjob_t *job = NULL;
    jf_arena_t *arena;
    int        index;
    int64_t    now = jf_clock_mono_ms();

    pthread_mutex_lock(&t->mu);
    if (t->nfree > 0) {
        index = t->free[--t->nfree];
        job = &t->jobs[index];
        arena = job->arena;
        memset(job, 0, sizeof(*job));
        job->index = index;
        job->arena = arena;
        atomic_init(&job->held, false);
        job->phase = JF_PHASE_ARRIVED;
        job->gen = ++t->gen;
        job->msg = msg;
        job->meta = jf_jsmsg_meta(msg);
        job->way = JF_WAY_MAX_;
        job->received_mono = job->last_progress = now;
        job->lease_until = now + t->ack_wait_ms - t->margin_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return job;
}

void jf_jobs_release(jf_jobs_t *t, jf_wjob_t *job)
{
    jf_jsmsg_t *msg;

    jf_job_record_free(job->rec);
    job->rec = NULL;
    if (job->payload != NULL)
        protobuf_c_message_free_unpacked(job->payload, NULL);
    job->payload = NULL;
    jf_arena_reset(job->arena);
    pthread_mutex_lock(&t->mu);
    msg = job->msg;
    job->msg = NULL;
    job->phase = JF_PHASE_IDLE;
    t->free[t->nfree++] = job->index;
    if (t->nfree == t->capacity)
        pthread_cond_broadcast(&t->empty);
    pthread_mutex_unlock(&t->mu);
    jf_jsmsg_destroy(msg);
}

bool jf_jobs_wait_empty(jf_jobs_t *t, int64_t deadline_ms)
{
    bool empty;

    pthread_mutex_lock(&t->mu);
    while (t->nfree < t->capacity)
        if (jf_cond_wait_until(&t->empty, &t->mu, deadline_ms) != 0)
            break;
    empty = t->nfree == t->capacity;
    pthread_mutex_unlock(&t->mu);
    return empty;
}

int jf_jobs_capacity(const jf_jobs_t *t)
{
    return t->capacity;
}

void jf_jobs_set_phase(jf_jobs_t *t, jf_wjob_t *job, jf_phase_t phase)
{
    pthread_mutex_lock(&t->mu);
    job->phase = phase;
    if (phase == JF_PHASE_RUNNING)
        job->ran = true;
    pthread_mutex_unlock(&t->mu);
}

jf_status_t jf_jobs_ack(jf_jobs_t *t, jf_wjob_t *job, jf_ack_t kind, uint32_t delay_ms,
                        jf_err_t *err)
{
    jf_status_t st = JF_OK;

    pthread_mutex_lock(&t->mu);
    if (kind != JF_ACK_NONE && jf_jsmsg_acked(job->msg)) {
        st = jf_err_set(err, JF_ESTATE, "already given back at shutdown");
    } else {
        switch (kind) {
        case JF_ACK_NONE:      break;
        case JF_ACK_ACK:       st = jf_jsmsg_ack(job->msg, err); break;
        case JF_ACK_NAK:       st = jf_jsmsg_nak(job->msg, 0, err); break;
        case JF_ACK_NAK_DELAY: st = jf_jsmsg_nak(job->msg, delay_ms, err); break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

bool jf_jobs_lease_held(jf_jobs_t *t, jf_wjob_t *job)
{
    bool held;

    pthread_mutex_lock(&t->mu);
    if (!job->lease_lost && jf_clock_mono_ms() > job->lease_until)
        job->lease_lost = true;
    held = !job->lease_lost;
    pthread_mutex_unlock(&t->mu);
    return held;
}

void jf_jobs_each(jf_jobs_t *t, jf_jobs_fn fn, void *arg)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->capacity; i++)
        if (t->jobs[i].phase != JF_PHASE_IDLE && t->jobs[i].phase != JF_PHASE_ARRIVED)
            fn(&t->jobs[i], arg);
    pthread_mutex_unlock(&t->mu);
}

/* A pipe thread: the server's answer to a +WPI, or none. */
static void on_progress(jf_pipe_req_t *req, jf_status_t st, const jf_pipe_answer_t *a)
{
    progress_req_t *r = (progress_req_t *)((char *)req - offsetof(progress_req_t, req));
    jf_jobs_t      *t = r->t;
    jf_wjob_t      *job = &t->jobs[r->index];

    pthread_mutex_lock(&t->mu);
    if (job->gen == r->gen && job->phase != JF_PHASE_IDLE) {
        job->wpi_out = false;
        /* Seen by the server: its AckWait restarted after we sent it. */
        if (st == JF_OK && jf_pipe_answer_status(a) == NULL && !job->lease_lost &&
            r->sent + t->ack_wait_ms - t->margin_ms > job->lease_until)
            job->lease_until = r->sent + t->ack_wait_ms - t->margin_ms;
    }
    pthread_mutex_unlock(&t->mu);
    free(r);
}

/* Send job a +WPI asking for a confirmation. Holds mu. */
static void progress(jf_jobs_t *t, jf_wjob_t *job, int64_t now)
{
    progress_req_t *r = malloc(sizeof(*r));

    if (r == NULL)
        return;
    *r = (progress_req_t){ .req.done = on_progress, .t = t, .index = job->index, .gen = job->gen,
                           .sent = now };
    job->wpi_out = true;
    job->last_progress = now;
    if (jf_pipe_send(t->pipe, &r->req, jf_jsmsg_reply(job->msg), NULL, 0, "+WPI", 4, NULL) !=
        JF_OK) {
        job->wpi_out = false;   /* not sent (disconnected): tried again next tick */
        free(r);
    }
}

void jf_jobs_progress(jf_jobs_t *t, int64_t now, jf_jobs_overrun_fn overran, void *arg)
{
    int n = 0;
    int late[64];

    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->capacity; i++) {
        jf_wjob_t *job = &t->jobs[i];
        bool       running = job->phase == JF_PHASE_RUNNING;

        if (job->phase == JF_PHASE_IDLE || job->phase == JF_PHASE_ARRIVED ||
            jf_jsmsg_acked(job->msg))
            continue;
        if (running && now >= job->deadline_mono) {
            /* Past its deadline a run is no longer extended: the server
             * hands the job to another worker after AckWait. */
            if (!job->overrun_logged && n < (int)(sizeof(late) / sizeof(late[0]))) {
                job->overrun_logged = true;
                late[n++] = i;
            }
            continue;
        }
        /* A job that has not started loses a lapsed lease for good: the
         * server may have given it to another worker. One whose run began
         * keeps sending progress acks: giving up would only make sure it
         * runs twice. */
        if (!job->lease_lost && now > job->lease_until && !job->ran)
            job->lease_lost = true;
        if (job->lease_lost || job->wpi_out || now - job->last_progress < t->every_ms)
            continue;
        progress(t, job, now);
    }
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; overran != NULL && i < n; i++)
        overran(&t->jobs[late[i]], arg);
}

void jf_jobs_lose_leases(jf_jobs_t *t)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->capacity; i++)
        if (t->jobs[i].phase != JF_PHASE_IDLE && !t->jobs[i].ran)
            t->jobs[i].lease_lost = true;
    pthread_mutex_unlock(&t->mu);
}

void jf_jobs_count(jf_jobs_t *t, int out[JF_PHASE_FINISHING + 1])
{
    memset(out, 0, sizeof(int) * (JF_PHASE_FINISHING + 1));
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->capacity; i++)
        out[t->jobs[i].phase]++;
    pthread_mutex_unlock(&t->mu);
}

bool jf_jobs_find(jf_jobs_t *t, const char *tenant, const char *job_id, jf_job_view_t *out)
{
    bool found = false;

    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->capacity && !found; i++) {
        const jf_wjob_t *job = &t->jobs[i];
        if (job->phase == JF_PHASE_IDLE || job->phase == JF_PHASE_ARRIVED ||
            !job->have_subj || job->job_id == NULL || strcmp(job->subj.tenant, tenant) != 0 ||
            strcmp(job->job_id, job_id) != 0)
            continue;
        found = true;
        out->phase = job->phase;
        memcpy(out->type, job->subj.type, sizeof(out->type));
        /* The attempt is known from admission on (QUEUED). */
        out->attempt = job->phase >= JF_PHASE_QUEUED ? job->attempt : 0;
        out->delivered = job->meta->delivered;
        out->stream_seq = job->meta->stream_seq;
        out->received_ms = job->received_ms;
        out->started_ms = job->phase >= JF_PHASE_RUNNING ? job->started_ms : 0;
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}
