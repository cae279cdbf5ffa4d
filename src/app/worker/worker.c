/*
 * worker.c - `jetfleet worker`: one stateless worker process.
 *
 * Start-up: configuration, module table and init, authorization policy,
 * connection, then binding to the pool's durable consumer (created by
 * `jetfleet provision`, never here). Then the main thread only waits for
 * signals while the pull engine feeds the job threads.
 *
 * Shutdown on SIGTERM or SIGINT (DESIGN.md 5.6):
 *   1. stop pulling; jobs queued but not started are NAKed at once;
 *   2. running jobs get JF_SHUTDOWN_GRACE to finish;
 *   3. then handlers are told to stop (jf_job_cancelled) and, a moment
 *      later, whatever still runs is NAKed without delay;
 *   4. the connection is flushed and drained, modules shut down, exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>
#include <bsd/unistd.h>

#include "app/cli.h"
#include "app/modules.h"
#include "app/worker/worker.h"
#include "core/clock.h"
#include "core/jsadmin.h"
#include "jf_build_config.h"
#include "core/log.h"
#include "core/registry_impl.h"
#include "shared/arena_impl.h"
#include "security/redact.h"
#include "shared/ids.h"

static void update_title(jf_worker_t *w);

/* ---- the hand-off queue ----------------------------------------------------- */

/* The tenant token of a job subject, without validating it (dispatch does). */
static void subject_tenant(const char *subject, const char *prefix, char *out, size_t size)
{
    size_t plen = strlen(prefix);
    size_t n;

    out[0] = '\0';
    if (strncmp(subject, prefix, plen) != 0 || subject[plen] != '.')
        return;
    subject += plen + 1;
    n = strcspn(subject, ".");
    if (n < size) {
        memcpy(out, subject, n);
        out[n] = '\0';
    }
}

static jf_tenant_count_t *tenant_count(jf_worker_t *w, const char *tenant, bool create)
{
    jf_tenant_count_t *free_slot = NULL;

    for (int i = 0; i < w->nslots; i++) {
        jf_tenant_count_t *t = &w->tenants[i];
        if (t->running > 0 && strcmp(t->tenant, tenant) == 0)
            return t;
        if (t->running == 0 && free_slot == NULL)
            free_slot = t;
    }
    if (create && free_slot != NULL)
        strlcpy(free_slot->tenant, tenant, sizeof(free_slot->tenant));
    return create ? free_slot : NULL;
}

/* The queued job waiting for token's ledger read, or NULL. Holds qmu. */
static jf_queued_t *awaiting(jf_worker_t *w, uint64_t token)
{
    for (size_t i = 0; i < w->qlen; i++)
        if (w->queue[i].token == token && !w->queue[i].ready)
            return &w->queue[i];
    return NULL;
}

/* The ledger's answer to a read-ahead (library thread): the job becomes
 * ready for a thread. An answer for a job no longer queued (timed out,
 * shut down) is dropped. */
static void on_ledger_read(uint64_t token, jf_status_t st, jf_job_record_t *rec,
                           const char *why, void *arg)
{
    jf_worker_t *w = arg;
    jf_queued_t *q;

    (void)why;   /* dispatch reads again and reports a failure itself */
    pthread_mutex_lock(&w->qmu);
    q = awaiting(w, token);
    if (q != NULL) {
        q->ready = true;
        q->pre_st = st;
        q->pre_rec = rec;
        rec = NULL;
        pthread_cond_signal(&w->qcond);
    }
    pthread_mutex_unlock(&w->qmu);
    jf_job_record_free(rec);
}

/* ---- settling: successes acknowledged when the ledger answers ----------------- */

bool jf_worker_settle_later(jf_worker_t *w, jf_settling_t *job, uint64_t *token)
{
    bool ok;

    pthread_mutex_lock(&w->wmu);
    ok = !w->wclosed && w->wlen < w->wcap;
    if (ok) {
        jf_pending_write_t *p = &w->writes[w->wlen++];
        p->token = *token = ++w->next_wtoken;
        p->job = job;
        p->since = jf_clock_mono_ms();
        atomic_fetch_add(&w->settling, 1);
    }
    pthread_mutex_unlock(&w->wmu);
    return ok;
}

/* Remove and return the job of token, or NULL. Holds wmu. */
static jf_settling_t *take_write(jf_worker_t *w, uint64_t token)
{
    for (size_t i = 0; i < w->wlen; i++)
        if (w->writes[i].token == token) {
            jf_settling_t *job = w->writes[i].job;
            w->writes[i] = w->writes[--w->wlen];
            return job;
        }
    return NULL;
}

bool jf_worker_settle_cancel(jf_worker_t *w, uint64_t token)
{
    jf_settling_t *job;

    pthread_mutex_lock(&w->wmu);
    job = take_write(w, token);
    pthread_mutex_unlock(&w->wmu);
    if (job != NULL)
        atomic_fetch_sub(&w->settling, 1);
    return job != NULL;
}

/* Tokens of writes a job thread waits for: the top bit set, the slot's
 * index in bits 32-62, a sequence below. */
#define WAIT_BIT (UINT64_C(1) << 63)

jf_status_t jf_worker_ledger_put(jf_worker_t *w, jf_slot_t *slot, const char *key,
                                 const jf_job_record_t *rec, jf_err_t *err)
{
    static _Atomic uint32_t seq;
    uint64_t    token = WAIT_BIT | (uint64_t)slot->index << 32 | (atomic_fetch_add(&seq, 1) + 1);
    int64_t     end = jf_clock_mono_ms() + w->cfg->api_timeout;
    jf_status_t st;

    pthread_mutex_lock(&slot->mu);
    slot->wtoken = token;
    slot->wdone = false;
    pthread_mutex_unlock(&slot->mu);
    st = jf_ledger_put_async(w->ledger, key, rec, token, err);
    pthread_mutex_lock(&slot->mu);
    while (st == JF_OK && !slot->wdone) {
        int64_t         left = end - jf_clock_mono_ms();
        struct timespec ts;

        if (left <= 0) {
            st = jf_err_set(err, JF_ETIMEOUT, "no answer from the ledger within %" PRId64 " ms",
                            w->cfg->api_timeout);
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&slot->wcond, &slot->mu, &ts);
    }
    if (st == JF_OK && slot->wst != JF_OK)
        st = jf_err_set(err, slot->wst, "%s", slot->wwhy);
    slot->wtoken = 0;
    pthread_mutex_unlock(&slot->mu);
    return st;
}

/* The answer to a write a job thread waits for. */
static void wake_writer(jf_worker_t *w, uint64_t token, jf_status_t st, const char *why)
{
    uint64_t   index = (token & ~WAIT_BIT) >> 32;
    jf_slot_t *slot;

    if (index >= (uint64_t)w->nslots)
        return;
    slot = &w->slots[index];
    pthread_mutex_lock(&slot->mu);
    if (slot->wtoken == token) {   /* else it timed out: too late */
        slot->wdone = true;
        slot->wst = st;
        strlcpy(slot->wwhy, why ? why : "", sizeof(slot->wwhy));
        pthread_cond_signal(&slot->wcond);
    }
    pthread_mutex_unlock(&slot->mu);
}

/* The ledger's answer to a write (library thread). */
static void on_ledger_written(uint64_t token, jf_status_t st, const char *why, void *arg)
{
    jf_worker_t   *w = arg;
    jf_settling_t *job;

    if (token & WAIT_BIT) {
        wake_writer(w, token, st, why);
        return;
    }
    pthread_mutex_lock(&w->wmu);
    job = take_write(w, token);
    pthread_mutex_unlock(&w->wmu);
    if (job != NULL)
        jf_dispatch_settle(w, job, st, why);
}

/* Settle, with st, every write sent before older_than (mono ms), or
 * every one when older_than is 0 (shutdown). */
static void settle_expired(jf_worker_t *w, int64_t older_than, jf_status_t st, const char *why)
{
    for (;;) {
        jf_settling_t *job = NULL;

        pthread_mutex_lock(&w->wmu);
        for (size_t i = 0; i < w->wlen && job == NULL; i++)
            if (older_than == 0 || w->writes[i].since < older_than)
                job = take_write(w, w->writes[i].token);
        pthread_mutex_unlock(&w->wmu);
        if (job == NULL)
            return;
        jf_dispatch_settle(w, job, st, why);
    }
}

static void deliver(jf_jsmsg_t *msg, void *arg)
{
    jf_worker_t *w = arg;
    bool         full;
    char         key[JF_LEDGER_KEY_MAX];
    bool         ahead = w->ledger != NULL && jf_dispatch_ledger_key(w, msg, key, sizeof(key));
    uint64_t     token = 0;

    pthread_mutex_lock(&w->qmu);
    full = w->qclosed || w->qlen == w->qcap;
    if (!full) {
        jf_queued_t *q = &w->queue[w->qlen++];
        q->msg = msg;
        q->since = q->asked = jf_clock_mono_ms();
        subject_tenant(jf_jsmsg_subject(msg), w->cfg->names.jobs_prefix, q->tenant,
                       sizeof(q->tenant));
        q->token = token = ahead ? ++w->next_token : 0;
        q->ready = !ahead;
        q->pre_st = JF_OK;
        q->pre_rec = NULL;
        if (q->ready)
            pthread_cond_signal(&w->qcond);
    }
    pthread_mutex_unlock(&w->qmu);
    if (!full && ahead) {
        /* Read the job's record now, so that it is there when a thread
         * takes the job; if asking fails, dispatch reads it itself. */
        jf_err_t err = { 0 };
        jf_status_t st = jf_ledger_get_async(w->ledger, key, token, &err);
        if (st != JF_OK)
            on_ledger_read(token, st, NULL, jf_err_msg(&err), w);
    }
    if (full) {
        /* Only reachable if the server overshoots a pull after a restart,
         * or during shutdown: give the job back at once. */
        jf_jsmsg_nak(msg, 0, NULL);
        jf_jsmsg_destroy(msg);
        jf_pull_done(w->pull, 1);
    }
}

/* The oldest queued job whose tenant is under JF_TENANT_MAX_INFLIGHT, or
 * -1. Holds qmu. */
/* How many jobs of tenant may run at once: the policy's max_in_flight for
 * it when set, else JF_TENANT_MAX_INFLIGHT; 0 means no limit. Holds qmu;
 * takes the policy lock inside it (a SIGHUP reload never holds qmu). */
static int tenant_limit_of(jf_worker_t *w, const char *tenant)
{
    int limit = 0;

    if (w->policy_file) {
        pthread_rwlock_rdlock(&w->sec_mu);
        if (w->policy != NULL)
            limit = jf_policy_max_in_flight(w->policy, tenant);
        pthread_rwlock_unlock(&w->sec_mu);
    }
    return limit > 0 ? limit : w->tenant_limit;
}

/* The oldest queued job whose tenant is under its limit, or -1. Holds qmu. */
static int eligible(jf_worker_t *w)
{
    for (size_t i = 0; i < w->qlen; i++) {
        jf_tenant_count_t *t;
        int                limit;

        if (!w->queue[i].ready)
            continue;   /* its ledger record is on its way */
        if (!w->limits_on || w->queue[i].tenant[0] == '\0')
            return (int)i;
        limit = tenant_limit_of(w, w->queue[i].tenant);
        if (limit == 0)
            return (int)i;
        t = tenant_count(w, w->queue[i].tenant, false);
        if (t == NULL || t->running < limit)
            return (int)i;
    }
    return -1;
}

/* Take the next job for a job thread, with its ledger read-ahead; NULL
 * once the queue is closed. */
static jf_jsmsg_t *next_job(jf_worker_t *w, jf_slot_t *slot, char tenant[JF_TENANT_MAX + 1])
{
    jf_jsmsg_t *msg = NULL;
    int         i;

    pthread_mutex_lock(&w->qmu);
    while ((i = eligible(w)) < 0 && !w->qclosed)
        pthread_cond_wait(&w->qcond, &w->qmu);
    if (i >= 0 && !w->qclosed) {
        msg = w->queue[i].msg;
        slot->have_pre = w->queue[i].token != 0;
        slot->pre_st = w->queue[i].pre_st;
        slot->pre_rec = w->queue[i].pre_rec;
        strlcpy(tenant, w->queue[i].tenant, JF_TENANT_MAX + 1);
        memmove(&w->queue[i], &w->queue[i + 1], (w->qlen - (size_t)i - 1) * sizeof(*w->queue));
        w->qlen--;
        if (w->limits_on && tenant[0] != '\0') {
            jf_tenant_count_t *t = tenant_count(w, tenant, true);
            t->running++;
        }
    }
    pthread_mutex_unlock(&w->qmu);
    return msg;
}

void jf_worker_job_done(jf_worker_t *w, const char *tenant)
{
    if (!w->limits_on || tenant[0] == '\0')
        return;
    pthread_mutex_lock(&w->qmu);
    {
        jf_tenant_count_t *t = tenant_count(w, tenant, false);
        if (t != NULL)
            t->running--;
    }
    /* A job of this tenant may have become eligible. */
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
}

static void *job_thread(void *arg)
{
    jf_slot_t   *slot = arg;
    jf_worker_t *w = slot->w;
    jf_jsmsg_t  *msg;
    char         tenant[JF_TENANT_MAX + 1];

    while ((msg = next_job(w, slot, tenant)) != NULL) {
        pthread_mutex_lock(&slot->mu);
        slot->current = msg;
        slot->last_progress = jf_clock_mono_ms();
        pthread_mutex_unlock(&slot->mu);
        bool handed_off;

        atomic_fetch_add(&w->running, 1);
        handed_off = jf_dispatch(w, slot, msg);
        atomic_fetch_sub(&w->running, 1);
        if (!handed_off)
            jf_worker_job_done(w, tenant);   /* else when it settles */
    }
    return NULL;
}

/* Close the queue and NAK what never started. */
static void close_queue(jf_worker_t *w)
{
    int n = 0;

    pthread_mutex_lock(&w->qmu);
    w->qclosed = true;
    for (size_t i = 0; i < w->qlen; i++) {
        jf_jsmsg_nak(w->queue[i].msg, 0, NULL);
        jf_jsmsg_destroy(w->queue[i].msg);
        jf_job_record_free(w->queue[i].pre_rec);
        n++;
    }
    w->qlen = 0;
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qmu);
    if (n > 0) {
        jf_pull_done(w->pull, n);
        jf_log_kv(JF_LOG_INFO, "returned queued jobs to the stream", JF_LN("jobs", n));
    }
}

/* ---- progress: +WPI for running and waiting jobs (DESIGN.md 5.5) ------------- */

static pthread_t       ticker;
static bool            ticker_running;
static pthread_mutex_t ticker_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  ticker_cond = PTHREAD_COND_INITIALIZER;
static bool            ticker_stop;

/* Every AckWait/3 a job that is running within its deadline, or waiting in
 * the queue, tells the server it is alive; a job past its deadline is no
 * longer extended, so the server redelivers it elsewhere after AckWait. */
static void *ticker_main(void *arg)
{
    jf_worker_t *w = arg;
    int64_t      every = w->ack_wait_ms / 3;
    int64_t      tick = every / 4 > 0 ? (every / 4 < 1000 ? every / 4 : 1000) : 50;
    int64_t      last_title = 0;

    for (;;) {
        struct timespec ts;
        int64_t         now;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += tick * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&ticker_mu);
        if (!ticker_stop)
            pthread_cond_timedwait(&ticker_cond, &ticker_mu, &ts);
        if (ticker_stop) {
            pthread_mutex_unlock(&ticker_mu);
            break;
        }
        pthread_mutex_unlock(&ticker_mu);
        now = jf_clock_mono_ms();

        for (int i = 0; i < w->nslots; i++) {
            jf_slot_t *s = &w->slots[i];
            bool       overran = false;
            char       job[JF_JOB_ID_MAX + 1] = "";

            pthread_mutex_lock(&s->mu);
            if (s->current != NULL && s->deadline_mono != 0 && !jf_jsmsg_acked(s->current) &&
                now - s->last_progress >= every) {
                if (now < s->deadline_mono) {
                    jf_jsmsg_progress(s->current, NULL);
                    s->last_progress = now;
                } else if (!s->overrun_logged) {
                    const char *id = jf_jsmsg_header(s->current, "Nats-Msg-Id");
                    s->overrun_logged = true;
                    overran = true;
                    strlcpy(job, id ? id : "", sizeof(job));
                }
            }
            pthread_mutex_unlock(&s->mu);
            if (overran)
                jf_log_kv(JF_LOG_ERROR, "job overran its deadline; no longer extended, so "
                          "another worker will get it after AckWait",
                          JF_LS("job_id", job), JF_LN("slot", i),
                          JF_LN("ack_wait_ms", w->ack_wait_ms));
        }
        pthread_mutex_lock(&w->qmu);
        for (size_t i = 0; i < w->qlen; i++) {
            jf_queued_t *q = &w->queue[i];
            if (now - q->since >= every) {
                jf_jsmsg_progress(q->msg, NULL);
                q->since = now;
            }
            if (!q->ready && now - q->asked >= w->cfg->api_timeout) {
                /* The answer was lost: dispatch reads the record itself. */
                q->ready = true;
                q->pre_st = JF_ETIMEOUT;
                pthread_cond_signal(&w->qcond);
            }
        }
        pthread_mutex_unlock(&w->qmu);
        /* A write the server never answered: the job runs again. */
        settle_expired(w, now - w->cfg->api_timeout, JF_ETIMEOUT,
                       "no answer from the ledger within JF_API_TIMEOUT");
        if (now - last_title >= 1000) {
            update_title(w);
            last_title = now;
        }
    }
    return NULL;
}

static void ticker_start(jf_worker_t *w)
{
    ticker_stop = false;
    ticker_running = pthread_create(&ticker, NULL, ticker_main, w) == 0;
    if (!ticker_running)
        jf_log(JF_LOG_ERROR, "cannot start the progress thread; long jobs may be redelivered");
}

static void ticker_halt(void)
{
    if (!ticker_running)
        return;
    pthread_mutex_lock(&ticker_mu);
    ticker_stop = true;
    pthread_cond_broadcast(&ticker_cond);
    pthread_mutex_unlock(&ticker_mu);
    pthread_join(ticker, NULL);
    ticker_running = false;
}

/* ---- events from the connection and the pull engine -------------------------- */

/* Events of either connection: "jobs" (pulls, acks, telemetry, DLQ) or
 * "ledger" (the ledger's reads and writes, written to the socket at once). */
static void nats_event(jf_worker_t *w, const char *conn, jf_nats_event_t ev, const char *detail)
{
    switch (ev) {
    case JF_NATS_EV_DISCONNECTED:
        jf_log_kv(JF_LOG_WARN, "disconnected from NATS", JF_LS("connection", conn),
                  JF_LS("detail", detail));
        break;
    case JF_NATS_EV_RECONNECTED: {
        char url[512];
        jf_metrics_add(w->metrics, JF_COUNTER_NATS_RECONNECTS, 1);
        jf_log_kv(JF_LOG_INFO, "reconnected to NATS", JF_LS("connection", conn),
                  JF_LS("server", jf_redact_url_list(detail, url, sizeof(url))));
        if (strcmp(conn, "jobs") == 0 && w->pull != NULL)
            jf_pull_restart(w->pull);
        break;
    }
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

static void on_telemetry_lost(const char *subject, const char *detail, void *arg)
{
    jf_worker_t *w = arg;

    jf_metrics_add(w->metrics, JF_COUNTER_TELEMETRY_LOST, 1);
    jf_log_kv(JF_LOG_ERROR, "lifecycle event lost", JF_LS("subject", subject),
              JF_LS("error", detail));
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

/* ---- what handlers may ask of the runtime (include/jetfleet/job.h) -------------------- */

/* "<kind>/<tenant>", copied into the job's arena under the policy lock,
 * so that a SIGHUP swap (which wipes the old values) cannot pull it away. */
static jf_status_t hook_secret(void *ctx, const char *tenant, const char *kind,
                               jf_arena_t *arena, const void **ret_ptr, size_t *ret_len)
{
    jf_worker_t *w = ctx;
    const void  *p = NULL;
    size_t       n = 0;
    char         name[160];
    void        *copy = NULL;
    jf_status_t  st;

    snprintf(name, sizeof(name), "%s/%s", kind, tenant);
    pthread_rwlock_rdlock(&w->sec_mu);
    st = w->secrets ? jf_secrets_get(w->secrets, name, &p, &n) : JF_ENOTFOUND;
    if (st == JF_OK) {
        copy = jf_arena_alloc(arena, n + 1);   /* zero-filled: NUL-terminated too */
        if (copy == NULL)
            st = JF_ENOMEM;
        else
            memcpy(copy, p, n);
    }
    pthread_rwlock_unlock(&w->sec_mu);
    if (st != JF_OK)
        return st == JF_ENOMEM ? JF_ENOMEM : JF_ENOTFOUND;
    *ret_ptr = copy;
    *ret_len = n;
    return JF_OK;
}

static bool hook_egress(void *ctx, const char *tenant, const struct sockaddr *addr, char *why,
                        size_t why_size)
{
    jf_worker_t *w = ctx;
    bool         ok;

    pthread_rwlock_rdlock(&w->sec_mu);
    ok = jf_egress_allowed(w->policy, tenant, addr, why, why_size);
    pthread_rwlock_unlock(&w->sec_mu);
    return ok;
}

/* ---- SIGHUP: reload the tenant policy and the secrets --------------------------------- */

/* Load both anew; swap them in only when both are valid, so a bad file
 * keeps the running policy (and says why). */
static void reload_security(jf_worker_t *w, const jf_config_t *cfg)
{
    jf_policy_t  *np = NULL, *op;
    jf_secrets_t *ns = NULL, *os;
    jf_err_t      err = { 0 };

    if ((cfg->secrets_dir[0] != '\0' && jf_secrets_load(cfg->secrets_dir, &ns, &err) != JF_OK) ||
        (cfg->policy_file[0] != '\0' && (jf_policy_load(cfg->policy_file, &np, &err) != JF_OK ||
                                          jf_policy_check_keys(np, ns, &err) != JF_OK))) {
        jf_log_kv(JF_LOG_ERROR, "reload failed; keeping the current policy and secrets",
                  JF_LS("error", jf_err_msg(&err)));
        jf_policy_destroy(np);
        jf_secrets_destroy(ns);
        return;
    }
    pthread_rwlock_wrlock(&w->sec_mu);
    op = w->policy;
    os = w->secrets;
    w->policy = np;
    w->secrets = ns;
    pthread_rwlock_unlock(&w->sec_mu);
    jf_policy_destroy(op);
    jf_secrets_destroy(os);   /* wipes the old values */
    jf_log_kv(JF_LOG_INFO, "policy and secrets reloaded", JF_LS("policy_file", cfg->policy_file),
              JF_LN("secrets", ns ? (int64_t)jf_secrets_count(ns) : 0));
}

/* ---- metrics, health and the process title ------------------------------------------ */

static void set_body(jf_http_reply_t *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup(text);
    r->len = r->body ? strlen(r->body) : 0;
}

static void on_http(const char *path, jf_http_reply_t *r, void *arg)
{
    jf_worker_t *w = arg;

    if (strcmp(path, "/metrics") == 0) {
        jf_telemetry_stats_t ts;
        jf_consumer_state_t  cs;
        char                *text = NULL;
        size_t               len = 0;

        jf_metrics_set(w->metrics, JF_GAUGE_IN_FLIGHT, atomic_load(&w->running));
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
    } else if (strcmp(path, "/healthz") == 0) {
        set_body(r, 200, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&w->stopping))
            set_body(r, 503, "draining\n");
        else if (!jf_nats_connected(w->nc))
            set_body(r, 503, "not connected to NATS\n");
        else if (w->ledger_nc != NULL && !jf_nats_connected(w->ledger_nc))
            set_body(r, 503, "the ledger's connection to NATS is down\n");
        else if (!atomic_load(&w->pulling))
            set_body(r, 503, "not bound to the consumer yet\n");
        else
            set_body(r, 200, "ready\n");
    } else {
        set_body(r, 404, "not found: try /metrics, /healthz or /readyz\n");
    }
}

/* What `ps` shows for this worker. */
static void update_title(jf_worker_t *w)
{
    setproctitle("-jetfleet worker pool=%s in-flight=%d/%d %s", w->pool ? w->pool : "?",
                 atomic_load(&w->running), w->nslots,
                 atomic_load(&w->stopping) ? "draining"
                 : jf_nats_connected(w->nc) ? "running" : "disconnected");
}

/* ---- shutdown ------------------------------------------------------------------ */

static void wait_running(jf_worker_t *w, int64_t budget_ms)
{
    int64_t end = jf_clock_mono_ms() + budget_ms;

    while (atomic_load(&w->running) + atomic_load(&w->settling) > 0 &&
           jf_clock_mono_ms() < end) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void shutdown_jobs(jf_worker_t *w)
{
    int released = 0;

    jf_pull_stop(w->pull);
    close_queue(w);
    jf_log_kv(JF_LOG_INFO, "shutting down; waiting for running jobs",
              JF_LN("running", atomic_load(&w->running)),
              JF_LN("grace_ms", w->cfg->shutdown_grace));
    wait_running(w, w->cfg->shutdown_grace);
    if (atomic_load(&w->running) == 0 && atomic_load(&w->settling) == 0)
        return;

    /* Grace is over: ask handlers to stop, then give back what still runs. */
    atomic_store(&w->cancel, true);
    wait_running(w, 1000);
    for (int i = 0; i < w->nslots; i++) {
        jf_slot_t *s = &w->slots[i];
        pthread_mutex_lock(&s->mu);
        if (s->current != NULL && !jf_jsmsg_acked(s->current)) {
            jf_jsmsg_nak(s->current, 0, NULL);
            released++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (released > 0)
        jf_log_kv(JF_LOG_WARN, "jobs still running after the grace period were NAKed for "
                  "another worker", JF_LN("jobs", released));
}

/* ---- the command ------------------------------------------------------------------ */

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
           "  --concurrency N    jobs in flight; default JF_CONCURRENCY\n"
           "\n"
           "Configuration: `jetfleet config schema`. Logs: JSON lines on stderr.\n");
}

int jf_cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pool", required_argument, NULL, 'p' },
        { "concurrency", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    jf_config_t     cfg;
    jf_worker_t     w;
    jf_err_t        err = { 0 };
    const char     *pool = NULL;
    int64_t         concurrency = 0;
    char            conn_name[192], urls[1024], host[64];
    sigset_t        sigs;
    bool            modules_up = false;
    int             started = 0, c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pool = optarg; break;
        case 'c':
            if (jf_parse_int(optarg, &concurrency, &err) != JF_OK || concurrency < 1 ||
                concurrency > 4096) {
                jf_cli_error("worker: --concurrency must be an integer in [1, 4096]");
                return JF_EXIT_USAGE;
            }
            break;
        case 'h': help(); return JF_EXIT_OK;
        default:  return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("worker: unexpected argument '%s'", argv[optind]);
        return JF_EXIT_USAGE;
    }
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
    pthread_rwlock_init(&w.sec_mu, NULL);
    w.hooks = (jf_job_hooks_t){ .secret = hook_secret, .egress = hook_egress,
                                .enqueue = jf_worker_enqueue, .ctx = &w };
    pthread_mutex_init(&w.qmu, NULL);
    pthread_cond_init(&w.qcond, NULL);
    pthread_mutex_init(&w.wmu, NULL);
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
        jf_log_kv(JF_LOG_ERROR, "module start-up failed", JF_LS("error", jf_err_msg(&err)));
        goto out;
    }
    jf_registry_set_config(w.reg, &cfg);
    {
        jf_authz_opts_t ao = { .tenants = cfg.tenants, .allow_unsafe = cfg.diag_unsafe };
        if (jf_authz_create(&w.authz, &ao, &err) != JF_OK) {
            jf_log_kv(JF_LOG_ERROR, "invalid authorization settings",
                      JF_LS("error", jf_err_msg(&err)));
            rc = JF_EXIT_USAGE;
            goto out;
        }
    }

    if ((cfg.secrets_dir[0] != '\0' && jf_secrets_load(cfg.secrets_dir, &w.secrets, &err) != JF_OK) ||
        (cfg.policy_file[0] != '\0' && (jf_policy_load(cfg.policy_file, &w.policy, &err) != JF_OK ||
                                         jf_policy_check_keys(w.policy, w.secrets, &err) != JF_OK))) {
        jf_log_kv(JF_LOG_ERROR, "invalid policy or secrets", JF_LS("error", jf_err_msg(&err)));
        rc = JF_EXIT_USAGE;
        goto out;
    }
    if (jf_metrics_create(&w.metrics, JF_VERSION) != JF_OK) {
        jf_log(JF_LOG_ERROR, "out of memory");
        goto out;
    }
    if (cfg.metrics_addr[0] != '\0' &&
        jf_httpd_start(&w.httpd, cfg.metrics_addr, on_http, &w, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot serve metrics", JF_LS("error", jf_err_msg(&err)));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    snprintf(conn_name, sizeof(conn_name), "jetfleet-worker %s %s", pool, w.worker_id);
    if (jf_nats_connect(&w.nc, &cfg, conn_name, on_nats_event, &w, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot connect to NATS", JF_LS("error", jf_err_msg(&err)),
                  JF_LS("servers", jf_redact_url_list(cfg.nats_url, urls, sizeof(urls))));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    {
        jf_telemetry_opts_t to = {
            .json = strcmp(cfg.telemetry_format, "json") == 0,
            .max_pending = (int)cfg.telemetry_max_pending,
            .stall_ms = 2000,
            .ack_wait_ms = cfg.api_timeout,
            .on_lost = on_telemetry_lost,
            .arg = &w,
        };
        if (jf_telemetry_create(&w.telemetry, w.nc, &to, &err) != JF_OK) {
            jf_log_kv(JF_LOG_ERROR, "cannot start telemetry", JF_LS("error", jf_err_msg(&err)));
            goto out;
        }
    }
    w.pool = pool;
    /* Dedupe-only mode never touches the ledger, not even to open it. */
    w.ledger_off = strcmp(cfg.ledger_mode, "off") == 0;
    /* The ledger has its own connection, by default written to the socket
     * at once (JF_LEDGER_FLUSH=direct): its round trips are on every job's
     * path, and a batching flusher adds about a millisecond to each. */
    snprintf(conn_name, sizeof(conn_name), "jetfleet-worker %s %s ledger", pool, w.worker_id);
    if (!w.ledger_off &&
        (strcmp(cfg.ledger_flush, "direct") == 0
             ? jf_nats_connect_direct(&w.ledger_nc, &cfg, conn_name, on_ledger_nats_event, &w,
                                      &err)
             : jf_nats_connect(&w.ledger_nc, &cfg, conn_name, on_ledger_nats_event, &w,
                               &err)) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot connect to NATS for the ledger",
                  JF_LS("error", jf_err_msg(&err)),
                  JF_LS("servers", jf_redact_url_list(cfg.nats_url, urls, sizeof(urls))));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    if (!w.ledger_off &&
        (jf_ledger_open(&w.ledger, w.ledger_nc, cfg.names.ledger_bucket, &err) != JF_OK ||
         jf_ledger_pipe_start(w.ledger, on_ledger_read, on_ledger_written, &w, &err) != JF_OK)) {
        jf_log_kv(JF_LOG_ERROR, "cannot open the job ledger", JF_LS("error", jf_err_msg(&err)));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    /* Modules start once the connection is up: they may open their own
     * KV buckets over it (core/kv.h). */
    jf_registry_set_nats(w.reg, w.nc);
    if (jf_registry_init_modules(w.reg, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "module start-up failed", JF_LS("error", jf_err_msg(&err)));
        rc = jf_cli_exit_code(err.code);
        goto out;
    }
    modules_up = true;
    /* With a per-tenant limit, fetch ahead so that jobs of other tenants
     * queued behind a burst can still be reached. */
    w.tenant_limit = cfg.tenant_max_inflight < concurrency ? (int)cfg.tenant_max_inflight : 0;
    w.policy_file = cfg.policy_file[0] != '\0';
    w.limits_on = w.tenant_limit > 0 || w.policy_file;
    {
        jf_pull_opts_t po = {
            .stream = cfg.names.jobs_stream, .consumer = pool,
            /* Twice the threads: a thread's next job is at hand while
             * its last success waits for the ledger's answer, and, with
             * per-tenant limits, jobs of other tenants behind a burst
             * can be reached. */
            .max_inflight = (int)concurrency * 2,
            .expires_ms = cfg.pull_expires, .heartbeat_ms = cfg.pull_heartbeat,
        };
        if (jf_pull_create(&w.pull, w.nc, &po, deliver, on_pull_event, &w, &err) != JF_OK) {
            jf_log_kv(JF_LOG_ERROR, "cannot bind to the pool's consumer",
                      JF_LS("error", jf_err_msg(&err)));
            rc = jf_cli_exit_code(err.code);
            goto out;
        }
    }

    w.ack_wait_ms = jf_pull_ack_wait_ms(w.pull);
    w.nslots = (int)concurrency;
    w.qcap = (size_t)concurrency * 4 + 16;
    w.queue = calloc(w.qcap, sizeof(*w.queue));
    w.slots = calloc((size_t)w.nslots, sizeof(*w.slots));
    w.tenants = calloc((size_t)w.nslots, sizeof(*w.tenants));
    w.wcap = (size_t)concurrency * 2;
    w.writes = calloc(w.wcap, sizeof(*w.writes));
    if (w.queue == NULL || w.slots == NULL || w.tenants == NULL || w.writes == NULL) {
        jf_log(JF_LOG_ERROR, "out of memory");
        goto out;
    }
    for (int i = 0; i < w.nslots; i++) {
        jf_slot_t     *s = &w.slots[i];
        pthread_attr_t attr;

        s->w = &w;
        s->index = i;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->wcond, NULL);
        if (jf_arena_create(&s->arena, 0) != JF_OK) {
            jf_log(JF_LOG_ERROR, "out of memory");
            goto out;
        }
        /* Handlers get 256 KiB of stack: plenty for C handlers, and it
         * keeps a worker at concurrency 256 small. */
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&s->thread, &attr, job_thread, s) != 0) {
            pthread_attr_destroy(&attr);
            jf_log(JF_LOG_ERROR, "cannot create job threads");
            goto out;
        }
        pthread_attr_destroy(&attr);
        started++;
    }

    ticker_start(&w);
    if (jf_quarantine_start(&w, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot start the quarantine listener",
                  JF_LS("error", jf_err_msg(&err)));
        goto out;
    }
    if (jf_pull_start(w.pull, &err) != JF_OK) {
        jf_log_kv(JF_LOG_ERROR, "cannot start pulling", JF_LS("error", jf_err_msg(&err)));
        goto out;
    }
    atomic_store(&w.pulling, true);
    update_title(&w);
    {
        char server[512];
        jf_nats_server_url(w.nc, server, sizeof(server));
        jf_log_kv(JF_LOG_INFO, "worker started", JF_LS("worker", w.worker_id),
                  JF_LS("pool", pool), JF_LS("stream", cfg.names.jobs_stream),
                  JF_LN("concurrency", concurrency), JF_LS("region", cfg.region),
                  JF_LN("ack_wait_ms", w.ack_wait_ms), JF_LN("tenant_limit", w.tenant_limit),
                  JF_LS("metrics", cfg.metrics_addr), JF_LS("ledger_mode", cfg.ledger_mode),
                  JF_LS("ledger_flush", w.ledger_off ? "-" : cfg.ledger_flush),
                  JF_LS("server", jf_redact_url_list(server, urls, sizeof(urls))));
        if (w.ledger_off)
            jf_log_kv(JF_LOG_WARN, "ledger off (JF_LEDGER_MODE=off): dedupe-only mode weakens "
                      "DESIGN.md 5.1; a job whose worker dies after its effect but before the "
                      "ack runs again, and so does one re-published after the duplicate window",
                      JF_LS("worker", w.worker_id), JF_LS("ledger_mode", "off"));
    }

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            jf_log_kv(JF_LOG_INFO, "signal received", JF_LS("signal", strsignal(sig)));
            break;
        }
        if (sig == SIGHUP)
            reload_security(&w, &cfg);
        if (sig < 0 && errno != EINTR)
            break;
    }
    atomic_store(&w.stopping, true);
    shutdown_jobs(&w);
    rc = atomic_load(&w.fatal) ? JF_EXIT_FAIL : JF_EXIT_OK;

out:
    if (w.pull != NULL)
        jf_pull_stop(w.pull);
    if (w.queue != NULL)
        close_queue(&w);
    atomic_store(&w.cancel, true);
    for (int i = 0; i < started; i++) {
        /* A handler that ignores cancellation cannot be joined; its job
         * was already NAKed, so leave it to process exit. */
        if (atomic_load(&w.running) == 0)
            pthread_join(w.slots[i].thread, NULL);
    }
    jf_log(JF_LOG_DEBUG, "job threads stopped");
    ticker_halt();
    jf_httpd_stop(w.httpd);
    w.httpd = NULL;
    jf_quarantine_stop(&w);
    /* Successes still waiting for the ledger go back to the stream. */
    pthread_mutex_lock(&w.wmu);
    w.wclosed = true;
    pthread_mutex_unlock(&w.wmu);
    if (w.writes != NULL)
        settle_expired(&w, 0, JF_ESTATE, "shutting down");
    if (atomic_load(&w.running) == 0) {
        jf_pull_destroy(w.pull);
        w.pull = NULL;
    }
    jf_log(JF_LOG_DEBUG, "pull engine stopped; flushing telemetry");
    if (w.telemetry != NULL) {
        jf_telemetry_stats_t ts;
        jf_telemetry_flush(w.telemetry, 5000, NULL);
        jf_telemetry_stats(w.telemetry, &ts);
        jf_log_kv(ts.lost > 0 || ts.pending > 0 ? JF_LOG_WARN : JF_LOG_DEBUG, "telemetry flushed",
                  JF_LN("events", ts.emitted), JF_LN("acked", ts.acked), JF_LN("lost", ts.lost),
                  JF_LN("retried", ts.retried), JF_LN("unacknowledged", ts.pending));
    }
    if (atomic_load(&w.running) == 0) {
        jf_telemetry_destroy(w.telemetry, 0);
        jf_ledger_close(w.ledger);
        jf_nats_close(w.ledger_nc, 5000);
    }
    if (modules_up && atomic_load(&w.running) == 0)
        jf_registry_shutdown_modules(w.reg);   /* before the connection their buckets use */
    jf_nats_close(w.nc, 5000);
    if (atomic_load(&w.running) == 0) {
        for (int i = 0; w.slots != NULL && i < w.nslots; i++) {
            jf_arena_destroy(w.slots[i].arena);
            pthread_mutex_destroy(&w.slots[i].mu);
            pthread_cond_destroy(&w.slots[i].wcond);
        }
        free(w.slots);
        free(w.queue);
        free(w.tenants);
        free(w.writes);
        jf_metrics_destroy(w.metrics);
        jf_policy_destroy(w.policy);
        jf_secrets_destroy(w.secrets);
        pthread_rwlock_destroy(&w.sec_mu);
        jf_registry_destroy(w.reg);
        jf_authz_destroy(w.authz);
        jf_config_free(&cfg);
    }
    jf_log_kv(JF_LOG_INFO, "worker stopped", JF_LN("exit_code", rc));
    return rc;
}
