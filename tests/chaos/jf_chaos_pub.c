/*
 * jf_chaos_pub.c - the job publisher of the chaos run (scripts/chaos).
 *
 * It publishes diag.effect jobs with deterministic ids <prefix>-<i> for i in
 * [start, start+count), spread over the tenants t0..t3, through nats.c's
 * asynchronous JetStream publish with a bounded window of pending acks.
 * Every dup-every-th job is published a second time with the same
 * Nats-Msg-Id, on purpose: the stream must drop it.
 *
 * The run restarts nats-server under it, so a publish can fail, stall, or
 * simply never be answered. Every copy is therefore tracked until the
 * stream acknowledges it: failed acks come back through the ack handler,
 * unanswered ones are taken back with js_PublishAsyncGetPendingList when
 * js_PublishAsyncComplete times out, and both are published again with
 * the same id (the stream's duplicate window makes that safe). The whole
 * thing is bounded by --timeout.
 *
 * With --rate, SIGUSR1 asks for a burst: the next --burst jobs are published
 * at once, and the rate schedule goes on from there (the jobs are pulled
 * forward, none is added). The chaos script uses it to build a backlog in
 * the stream just before it freezes a worker or the server, so that the
 * frozen process holds queued jobs.
 *
 * Output: one JSON line on stdout,
 *   {"published":N,"acked":A,"duplicates_reported":D,"retries":R,...}
 * where acked counts job ids with at least one acknowledged copy. Ids that
 * were never acknowledged are listed on stderr as "unacked <id>" lines.
 * Exit status: 0 when every copy was acknowledged, 1 otherwise, 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define MAX_PENDING     256    /* async publishes in flight */
#define COMPLETE_WAIT   2000   /* ms js_PublishAsyncComplete waits before taking messages back */
#define RETRY_PAUSE_MS  100    /* pause after a failed round, so a down server is not hammered */
#define TENANTS         4

/* The state of one copy of one job. Copy u is job u/2, copy u%2 (1: the
 * deliberate duplicate). */
enum { C_UNUSED = 0, C_TODO, C_INFLIGHT, C_QUEUED, C_ACKED };

typedef struct chaos {
    const char      *url;
    const char      *prefix;
    const char      *subject_prefix;   /* "jobs", or "jobs.<region>" */
    uint64_t         start;
    uint32_t         count;
    uint32_t         dup_every;   /* 0: no duplicates */
    double           rate;        /* jobs per second, 0: as fast as possible */
    uint32_t         burst;       /* jobs pulled forward per SIGUSR1, 0: none */
    int              timeout_s;

    _Atomic uint8_t *state;       /* 2 * count entries */
    pthread_mutex_t  mu;          /* guards the retry queue */
    uint32_t        *queue;       /* copies to publish again */
    size_t           qlen;
    _Atomic uint64_t dups_reported;
    _Atomic uint64_t ack_errors;
    uint64_t         retries;
} chaos_t;

/* SIGUSR1 requests seen so far; the main loop compares it with its own count. */
static volatile sig_atomic_t burst_requests;

static void on_usr1(int sig)
{
    (void)sig;
    burst_requests++;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The payload's sleepMs: 0-20, fixed per job so both copies agree. */
static unsigned sleep_of(uint64_t i)
{
    uint64_t x = i * 6364136223846793005ULL + 1442695040888963407ULL;

    return (unsigned)((x >> 33) % 21);
}

/* Queue copy u for another publish unless it is already acked or queued. */
static void requeue(chaos_t *c, uint32_t u)
{
    uint8_t expect = C_INFLIGHT;

    if (!atomic_compare_exchange_strong(&c->state[u], &expect, C_QUEUED))
        return;
    pthread_mutex_lock(&c->mu);
    c->queue[c->qlen++] = u;
    pthread_mutex_unlock(&c->mu);
}

/* Which copy a message is, from its headers; false for a stranger. */
static bool copy_of(const chaos_t *c, natsMsg *m, uint32_t *ret_u)
{
    const char *id = NULL, *dup = NULL, *dash;
    char       *end;
    uint64_t    i;

    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == NULL)
        return false;
    dash = strrchr(id, '-');
    if (dash == NULL)
        return false;
    errno = 0;
    i = strtoull(dash + 1, &end, 10);
    if (errno != 0 || *end != '\0' || i < c->start || i - c->start >= c->count)
        return false;
    if (natsMsgHeader_Get(m, "Jf-Chaos-Copy", &dup) != NATS_OK)
        dup = NULL;
    *ret_u = (uint32_t)(i - c->start) * 2 + (dup != NULL ? 1 : 0);
    return true;
}

/* Runs on the library's reply thread for every answered publish. */
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    chaos_t *c = closure;
    uint32_t u;

    (void)js;
    if (copy_of(c, m, &u)) {
        if (pa != NULL) {
            if (pa->Duplicate)
                atomic_fetch_add(&c->dups_reported, 1);
            atomic_store(&c->state[u], C_ACKED);
        } else {
            (void)pae;
            atomic_fetch_add(&c->ack_errors, 1);
            requeue(c, u);
        }
    }
    natsMsg_Destroy(m);
}

/* Publish copy u once. A failure (stalled window, no connection) leaves it
 * queued for the next round. */
static natsStatus publish_copy(chaos_t *c, jsCtx *js, uint32_t u)
{
    uint64_t   i = c->start + u / 2;
    char       subj[160], id[160], data[32];
    natsMsg   *m = NULL;
    natsStatus s;
    int        n;

    snprintf(subj, sizeof(subj), "%s.t%u.diag.effect", c->subject_prefix,
             (unsigned)(i % TENANTS));
    snprintf(id, sizeof(id), "%s-%" PRIu64, c->prefix, i);
    n = snprintf(data, sizeof(data), "{\"sleepMs\":%u}", sleep_of(i));
    s = natsMsg_Create(&m, subj, NULL, data, n);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Content-Type", "application/json");
    if (s == NATS_OK && (u & 1))
        s = natsMsgHeader_Set(m, "Jf-Chaos-Copy", "duplicate");
    atomic_store(&c->state[u], C_INFLIGHT);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(js, &m, NULL);
    natsMsg_Destroy(m);   /* no-op when the library took it */
    if (s != NATS_OK)
        requeue(c, u);
    return s;
}

/* Take back every publish the server has not answered and queue it. */
static void take_back_pending(chaos_t *c, jsCtx *js)
{
    natsMsgList pending = { 0 };
    uint32_t    u;

    if (js_PublishAsyncGetPendingList(&pending, js) != NATS_OK)
        return;   /* NATS_NOT_FOUND: nothing pending */
    for (int k = 0; k < pending.Count; k++)
        if (pending.Msgs[k] != NULL && copy_of(c, pending.Msgs[k], &u))
            requeue(c, u);
    natsMsgList_Destroy(&pending);
}

/* Publish everything queued for a retry. Returns false if a publish
 * failed, so the caller can pause. */
static bool publish_queued(chaos_t *c, jsCtx *js)
{
    uint32_t *batch;
    size_t    n;
    bool      ok = true;

    pthread_mutex_lock(&c->mu);
    n = c->qlen;
    if (n == 0) {
        pthread_mutex_unlock(&c->mu);
        return true;
    }
    batch = malloc(n * sizeof(*batch));
    if (batch == NULL) {
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    memcpy(batch, c->queue, n * sizeof(*batch));
    c->qlen = 0;
    pthread_mutex_unlock(&c->mu);

    for (size_t k = 0; k < n; k++) {
        uint8_t expect = C_QUEUED;

        if (!ok) {
            /* After one failure the rest waits for the next round. */
            pthread_mutex_lock(&c->mu);
            c->queue[c->qlen++] = batch[k];
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        if (!atomic_compare_exchange_strong(&c->state[batch[k]], &expect, C_TODO))
            continue;   /* acked in the meantime */
        c->retries++;
        if (publish_copy(c, js, batch[k]) != NATS_OK)
            ok = false;
    }
    free(batch);
    return ok;
}

static size_t queued(chaos_t *c)
{
    size_t n;

    pthread_mutex_lock(&c->mu);
    n = c->qlen;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static bool all_acked(const chaos_t *c)
{
    for (uint32_t u = 0; u < 2 * c->count; u++) {
        uint8_t s = atomic_load(&c->state[u]);
        if (s != C_UNUSED && s != C_ACKED)
            return false;
    }
    return true;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: jf_chaos_pub --url URL --count N --start K --prefix P --dup-every M\n"
               "                    [--rate JOBS_PER_S] [--burst N] [--timeout SECONDS]\n"
               "                    [--subject-prefix jobs]\n"
               "SIGUSR1, with --rate and --burst: publish the next N jobs at once\n");
}

static int parse_args(chaos_t *c, int argc, char **argv)
{
    c->timeout_s = 300;
    c->subject_prefix = "jobs";
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        char       *end = NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "jf_chaos_pub: %s needs a value\n", a);
            return -1;
        }
        k++;
        errno = 0;
        if (strcmp(a, "--url") == 0)
            c->url = v;
        else if (strcmp(a, "--prefix") == 0)
            c->prefix = v;
        else if (strcmp(a, "--subject-prefix") == 0)
            c->subject_prefix = v;
        else if (strcmp(a, "--count") == 0)
            c->count = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--start") == 0)
            c->start = strtoull(v, &end, 10);
        else if (strcmp(a, "--dup-every") == 0)
            c->dup_every = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--rate") == 0)
            c->rate = strtod(v, &end);
        else if (strcmp(a, "--burst") == 0)
            c->burst = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--timeout") == 0)
            c->timeout_s = (int)strtol(v, &end, 10);
        else {
            fprintf(stderr, "jf_chaos_pub: unknown option %s\n", a);
            return -1;
        }
        if (end != NULL && (errno != 0 || *end != '\0' || end == v)) {
            fprintf(stderr, "jf_chaos_pub: bad value for %s: %s\n", a, v);
            return -1;
        }
    }
    if (c->url == NULL || c->prefix == NULL || c->count == 0 || c->count > 50000000 ||
        c->rate < 0 || c->timeout_s <= 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    chaos_t         c = { 0 };
    natsOptions    *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx          *js = NULL;
    jsOptions       jo;
    jsPubOptions    po;
    natsStatus      s;
    int64_t         t0, deadline;
    uint64_t        acked_jobs = 0, copies = 0;
    uint64_t        shift = 0;    /* jobs pulled forward by bursts */
    uint32_t        bursts = 0;
    sig_atomic_t    bursts_seen = 0;
    int             rc = 1;

    if (parse_args(&c, argc, argv) != 0)
        return 2;
    c.state = calloc(2 * (size_t)c.count, sizeof(*c.state));
    c.queue = calloc(2 * (size_t)c.count, sizeof(*c.queue));
    if (c.state == NULL || c.queue == NULL) {
        fprintf(stderr, "jf_chaos_pub: out of memory\n");
        return 1;
    }
    pthread_mutex_init(&c.mu, NULL);
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
    for (uint32_t j = 0; j < c.count; j++) {
        c.state[2 * j] = C_TODO;
        if (c.dup_every > 0 && (c.start + j) % c.dup_every == 0)
            c.state[2 * j + 1] = C_TODO;
    }

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, c.url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 200);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "jf_chaos_pub");
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = MAX_PENDING;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = &c;
        jo.PublishAsync.StallWait = 500;
        s = natsConnection_JetStream(&js, nc, &jo);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "jf_chaos_pub: cannot connect to %s: %s\n", c.url,
                natsStatus_GetText(s));
        goto out;
    }

    t0 = now_ms();
    deadline = t0 + (int64_t)c.timeout_s * 1000;

    /* First pass: every job in order, its duplicate right after it. */
    for (uint32_t j = 0; j < c.count && now_ms() < deadline; j++) {
        /* Wait for job j's turn, in slices short enough to notice a burst
         * request: it moves the schedule c.burst jobs ahead. */
        while (c.rate > 0) {
            int64_t wait;

            if (burst_requests != bursts_seen) {
                bursts_seen = burst_requests;
                if (c.burst > 0) {
                    shift += c.burst;
                    bursts++;
                }
            }
            wait = t0 + (int64_t)(((double)j - (double)shift) * 1000.0 / c.rate) - now_ms();
            if (wait <= 0)
                break;
            sleep_ms(wait < 20 ? wait : 20);
        }
        for (uint32_t u = 2 * j; u <= 2 * j + 1; u++) {
            if (atomic_load(&c.state[u]) != C_TODO)
                continue;
            if (publish_copy(&c, js, u) != NATS_OK) {
                /* The window is stalled or the connection is down: take
                 * back what the server did not answer and go on. */
                if (js_PublishAsyncComplete(js, &(jsPubOptions){ .MaxWait = COMPLETE_WAIT })
                    != NATS_OK)
                    take_back_pending(&c, js);
                sleep_ms(RETRY_PAUSE_MS);
            }
        }
        if ((j & 63) == 0 && queued(&c) > 0)
            publish_queued(&c, js);
    }

    /* Then rounds until every copy is acknowledged or time is up. */
    while (now_ms() < deadline) {
        bool ok = publish_queued(&c, js);

        jsPubOptions_Init(&po);
        po.MaxWait = COMPLETE_WAIT;
        s = js_PublishAsyncComplete(js, &po);
        if (s != NATS_OK)
            take_back_pending(&c, js);
        if (queued(&c) == 0 && all_acked(&c))
            break;
        if (!ok || s != NATS_OK)
            sleep_ms(RETRY_PAUSE_MS);
    }
    take_back_pending(&c, js);   /* forget what is still unanswered */

    for (uint32_t j = 0; j < c.count; j++) {
        bool any = false;
        for (uint32_t u = 2 * j; u <= 2 * j + 1; u++) {
            uint8_t st = atomic_load(&c.state[u]);
            if (st != C_UNUSED)
                copies++;
            any = any || st == C_ACKED;
        }
        if (any)
            acked_jobs++;
        else
            fprintf(stderr, "unacked %s-%" PRIu64 "\n", c.prefix, c.start + j);
    }
    printf("{\"published\":%" PRIu32 ",\"acked\":%" PRIu64 ",\"duplicates_reported\":%" PRIu64
           ",\"retries\":%" PRIu64 ",\"copies\":%" PRIu64 ",\"ack_errors\":%" PRIu64
           ",\"all_copies_acked\":%s,\"start\":%" PRIu64 ",\"prefix\":\"%s\",\"seconds\":%.3f"
           ",\"bursts\":%" PRIu32 "}\n",
           c.count, acked_jobs, atomic_load(&c.dups_reported), c.retries, copies,
           atomic_load(&c.ack_errors), all_acked(&c) ? "true" : "false", c.start, c.prefix,
           (double)(now_ms() - t0) / 1000.0, bursts);
    fflush(stdout);
    rc = all_acked(&c) ? 0 : 1;

out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    pthread_mutex_destroy(&c.mu);
    free(c.queue);
    free((void *)c.state);
    return rc;
}
