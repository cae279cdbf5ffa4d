/*
 * test_dlq.c - `jetfleet dlq list|replay|purge` against a real nats-server.
 *
 * Dead letters are made by hand: published straight to the DLQ stream with
 * the headers of the contract (app/deadletter.h), after `jetfleet
 * provision`. Outcomes are read where an operator would look: the command's
 * output, the DLQ and JOBS streams, and the JF_LEDGER bucket. One test runs
 * the whole loop with a worker: a job dies, is replayed and succeeds.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <jetfleet/v1/ledger.pb-c.h>

#include "harness.h"

static jf_h_server_t   srv;
static natsConnection *nc;
static int             dl_count;   /* for the dead letters' Nats-Msg-Id */

static void setup(void)
{
    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
    dl_count = 0;
}

static void teardown(void)
{
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
}


static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- making dead letters ----------------------------------------------------- */

typedef struct dl {
    const char *tenant, *type;    /* subject dlq.<tenant>.<type> */
    const char *job;              /* Jf-Job-Id; NULL: none */
    const char *reason;
    const char *orig;             /* Jf-Original-Subject; NULL: none, "" : jobs.<tenant>.<type> */
    int64_t     dead_at;          /* Jf-Dead-At; 0: none */
    const char *error;            /* Jf-Last-Error */
    const char *payload;          /* NULL: {"message":"boom"} */
} dl_t;

/* Publish one dead letter the way the worker does. */
static void dead(const dl_t *d)
{
    char        subject[200], orig[200], dead_at[24], id[40], seq[16];
    const char *h[32];
    const char *payload = d->payload ? d->payload : "{\"message\":\"boom\"}";
    int         n = 0;

    dl_count++;
    snprintf(subject, sizeof(subject), "dlq.%s.%s", d->tenant, d->type);
    snprintf(orig, sizeof(orig), "jobs.%s.%s", d->tenant, d->type);
    snprintf(dead_at, sizeof(dead_at), "%" PRId64, d->dead_at);
    snprintf(id, sizeof(id), "jf-dlq-JOBS-%d", dl_count);
    snprintf(seq, sizeof(seq), "%d", dl_count);
    h[n++] = "Content-Type";        h[n++] = "application/json";
    h[n++] = "traceparent";         h[n++] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    h[n++] = "Jf-Failure-Reason";   h[n++] = d->reason;
    h[n++] = "Jf-Attempts";         h[n++] = "3";
    h[n++] = "Jf-Last-Error";       h[n++] = d->error ? d->error : "diag.fail asked to fail";
    h[n++] = "Jf-Error-Code";       h[n++] = "JF_EINVAL";
    if (d->job != NULL) {
        h[n++] = "Jf-Job-Id";       h[n++] = d->job;
    }
    if (d->orig != NULL) {
        h[n++] = "Jf-Original-Subject"; h[n++] = d->orig[0] ? d->orig : orig;
    }
    h[n++] = "Jf-Original-Stream";  h[n++] = "JOBS";
    h[n++] = "Jf-Original-Seq";     h[n++] = seq;
    if (d->dead_at != 0) {
        h[n++] = "Jf-Dead-At";      h[n++] = dead_at;
    }
    h[n++] = "Jf-Worker";           h[n++] = "test-worker";
    h[n] = NULL;
    cr_assert(jf_h_publish(nc, subject, payload, (int)strlen(payload), id, h));
}

/* ---- running the command -------------------------------------------------------- */

typedef struct run {
    int   rc;
    char *out, *err;
    char  out_path[300];
} run_t;

static run_t run_args(const char *const *args)
{
    static int  n;
    jf_h_proc_t p;
    run_t       r;
    char        tag[32];

    snprintf(tag, sizeof(tag), "dlq-%d", ++n);
    r.rc = jf_h_run(&srv, tag, NULL, args, &p);
    r.out = jf_h_slurp(p.out_path);
    r.err = jf_h_slurp(p.err_path);
    snprintf(r.out_path, sizeof(r.out_path), "%s", p.out_path);
    return r;
}

#define RUN(...) run_args((const char *const[]){ __VA_ARGS__, NULL })

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Lines of r's stdout that contain every needle. */
#define LINES(r, ...) jf_h_count_lines((r).out_path, (const char *const[]){ __VA_ARGS__, NULL })

/* ---- reading JetStream and the ledger ------------------------------------------------- */

/* The first message of stream whose header name equals value; NULL when none. */
static natsMsg *find_msg(const char *stream, const char *name, const char *value)
{
    jsCtx        *js = NULL;
    jsStreamInfo *si = NULL;
    natsMsg      *found = NULL;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
    for (uint64_t seq = si->State.FirstSeq; found == NULL && si->State.Msgs > 0 &&
                                            seq <= si->State.LastSeq; seq++) {
        natsMsg    *m = NULL;
        const char *v = NULL;
        if (js_GetMsg(&m, js, stream, seq, NULL, NULL) != NATS_OK)
            continue;
        if (natsMsgHeader_Get(m, name, &v) == NATS_OK && strcmp(v, value) == 0)
            found = m;
        else
            natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return found;
}

static bool has_header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK;
}

static const char *header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

static kvStore *ledger_bucket(jsCtx **js)
{
    kvStore *kv = NULL;

    cr_assert_eq(natsConnection_JetStream(js, nc, NULL), NATS_OK);
    cr_assert_eq(js_KeyValue(&kv, *js, "JF_LEDGER"), NATS_OK);
    return kv;
}

/* The record under key, or NULL when there is none. */
static Jetfleet__V1__JobRecord *ledger_get(const char *key)
{
    jsCtx                  *js = NULL;
    kvStore                *kv = ledger_bucket(&js);
    kvEntry                *e = NULL;
    Jetfleet__V1__JobRecord *rec = NULL;
    natsStatus              s = kvStore_Get(&e, kv, key);

    if (s == NATS_OK) {
        rec = jetfleet__v1__job_record__unpack(NULL, (size_t)kvEntry_ValueLen(e),
                                               kvEntry_Value(e));
        cr_assert_not_null(rec, "ledger record %s does not decode", key);
        kvEntry_Destroy(e);
    } else {
        cr_assert_eq(s, NATS_NOT_FOUND, "kvStore_Get %s: %s", key, natsStatus_GetText(s));
    }
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return rec;
}

static void ledger_put_dead(const char *key, const char *job, const char *tenant,
                            const char *type, uint32_t attempts, uint32_t replays)
{
    Jetfleet__V1__JobRecord rec = JETFLEET__V1__JOB_RECORD__INIT;
    jsCtx   *js = NULL;
    kvStore *kv = ledger_bucket(&js);
    uint8_t  buf[512];
    size_t   len;

    rec.job_id = (char *)job;
    rec.tenant = (char *)tenant;
    rec.type = (char *)type;
    rec.state = JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD;
    rec.attempts = attempts;
    rec.replays = replays;
    rec.worker = "w-1";
    rec.first_started_ms = 1700000000000;
    rec.last_error = "diag.fail asked to fail";
    rec.last_error_code = "JF_EINVAL";
    len = jetfleet__v1__job_record__get_packed_size(&rec);
    cr_assert_leq(len, sizeof(buf));
    jetfleet__v1__job_record__pack(&rec, buf);
    cr_assert_eq(kvStore_Put(NULL, kv, key, buf, (int)len), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
}

/* The replay id is <job id>~r<dlq seq>: derived from the dead letter, so a
 * repeated replay of the same letter is dropped by the duplicate window. */
static void assert_replay_id(const char *msg_id, const char *job, int64_t from, int64_t to)
{
    (void)from;
    (void)to;
    size_t  n = strlen(job);
    char   *end;
    long long ms;

    cr_assert_not_null(msg_id);
    cr_assert(strncmp(msg_id, job, n) == 0 && strncmp(msg_id + n, "~r", 2) == 0,
              "replay id '%s' is not %s~r<seq>", msg_id, job);
    cr_assert(msg_id[n + 2] >= '0' && msg_id[n + 2] <= '9', "%s", msg_id);
    ms = strtoll(msg_id + n + 2, &end, 10);
    cr_assert_eq(*end, '\0', "replay id '%s' has more after the digits", msg_id);
    cr_assert_gt(ms, 0, "a DLQ sequence starts at 1");
}

/* The replayed copy of job on subject: checked header by header. */
static void assert_replayed_copy(const char *job, const char *subject, int64_t from, int64_t to)
{
    static const char *const gone[] = {
        "Jf-Failure-Reason", "Jf-Attempts", "Jf-Last-Error", "Jf-Error-Code",
        "Jf-Original-Subject", "Jf-Original-Stream", "Jf-Original-Seq", "Jf-Dead-At",
        "Jf-Worker", NULL,
    };
    natsMsg    *m = find_msg("JOBS", "Jf-Job-Id", job);
    const char **vals = NULL;
    int         nvals = 0;

    cr_assert_not_null(m, "no message for %s in JOBS", job);
    cr_assert_str_eq(natsMsg_GetSubject(m), subject);
    cr_assert_str_eq(natsMsg_GetData(m), "{\"message\":\"boom\"}");
    assert_replay_id(header(m, "Nats-Msg-Id"), job, from, to);
    cr_assert_eq(natsMsgHeader_Values(m, "Jf-Job-Id", &vals, &nvals), NATS_OK);
    cr_assert_eq(nvals, 1, "Jf-Job-Id appears %d times", nvals);
    free((void *)vals);
    for (const char *const *g = gone; *g != NULL; g++)
        cr_assert_not(has_header(m, *g), "replayed %s still has %s", job, *g);
    /* what the job had is kept */
    cr_assert_str_eq(header(m, "Content-Type"), "application/json");
    cr_assert_not_null(header(m, "traceparent"));
    natsMsg_Destroy(m);
}

/* ---- dlq list -------------------------------------------------------------------------- */

/* Five dead letters; job-4 died two hours ago, job-5 has no Jf-Dead-At. */
static int64_t list_fixture(void)
{
    int64_t now = now_ms();
    char    long_error[301];

    memset(long_error, 'x', 300);
    long_error[300] = '\0';
    memcpy(long_error, "connection refused", 18);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now, NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job-2", "exhausted", "", now, long_error, NULL });
    dead(&(dl_t){ "beta", "diag.noop", "job-3", "rejected", "", now, NULL, NULL });
    dead(&(dl_t){ "acme", "diag.sleep", "job-4", "quarantined", "", now - 7200000, NULL, NULL });
    dead(&(dl_t){ "gamma", "diag.noop", "job-5", "failed", "", 0, NULL, NULL });
    return now;
}

static void assert_list(const char *const *args, int want, const char *const *ids)
{
    run_t r = run_args(args);
    char  footer[40];
    int   rows = jf_h_count_lines(r.out_path, (const char *const[]){ " job-", NULL });

    cr_assert_eq(r.rc, 0, "%s %s: exit %d: %s", args[2], args[3] ? args[3] : "", r.rc, r.err);
    cr_assert_eq(rows, want, "%s %s: %d rows, want %d:\n%s", args[2], args[3] ? args[3] : "",
                 rows, want, r.out);
    snprintf(footer, sizeof(footer), "%d dead letter%s\n", want, want == 1 ? "" : "s");
    cr_assert(strlen(r.out) >= strlen(footer) &&
              strcmp(r.out + strlen(r.out) - strlen(footer), footer) == 0 &&
              (strlen(r.out) == strlen(footer) || r.out[strlen(r.out) - strlen(footer) - 1] == '\n'),
              "no footer '%d dead letters':\n%s", want, r.out);
    for (const char *const *id = ids; id && *id; id++) {
        char needle[32];
        snprintf(needle, sizeof(needle), " %s ", *id);
        cr_assert(strstr(r.out, needle) != NULL, "%s missing:\n%s", *id, r.out);
    }
    run_free(&r);
}

#define IDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ARGS(...) ((const char *const[]){ "dlq", "list", __VA_ARGS__, NULL })

Test(dlq_list, shows_every_dead_letter_with_its_columns, .init = setup, .fini = teardown)
{
    run_t r;

    jf_h_provision(&srv, NULL);
    list_fixture();
    r = RUN("dlq", "list");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(jf_h_count_lines(r.out_path, IDS(" job-")), 5, "%s", r.out);
    cr_assert(strstr(r.out, "\n5 dead letters\n") != NULL, "%s", r.out);
    cr_assert_eq(LINES(r, "1 ", "acme", "diag.fail", "job-1", "failed", "3",
                       "diag.fail asked to fail"), 1, "%s", r.out);
    cr_assert_eq(LINES(r, "job-3", "beta", "diag.noop", "rejected"), 1, "%s", r.out);
    /* dead-at in RFC 3339 UTC */
    cr_assert_eq(LINES(r, "job-1", "T", "Z "), 1, "%s", r.out);
    /* a long last error is cut to about 80 characters */
    cr_assert_eq(LINES(r, "job-2", "connection refused", "..."), 1, "%s", r.out);
    cr_assert(strstr(r.out, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") == NULL,
              "the last error was not shortened:\n%s", r.out);
    run_free(&r);
}

Test(dlq_list, filters_narrow_the_list, .init = setup, .fini = teardown)
{
    int64_t now, cut;
    char    since_ms[32], exact[32], after[32], rfc_z[40], rfc_off[40];
    time_t  t;
    struct tm tm;

    jf_h_provision(&srv, NULL);
    now = list_fixture();

    assert_list(ARGS("--tenant", "acme"), 3, IDS("job-1", "job-2", "job-4"));
    assert_list(ARGS("--type", "diag.fail"), 2, IDS("job-1", "job-2"));
    assert_list(ARGS("--reason", "rejected"), 1, IDS("job-3"));
    assert_list(ARGS("--job", "job-2"), 1, IDS("job-2"));
    assert_list(ARGS("--tenant", "acme", "--reason", "exhausted"), 1, IDS("job-2"));
    assert_list(ARGS("--tenant", "nobody"), 0, NULL);
    assert_list(ARGS("--limit", "2"), 2, IDS("job-1", "job-2"));

    /* --since: job-4 died two hours ago; job-5 counts by its stored time */
    assert_list(ARGS("--since", "1h"), 4, IDS("job-1", "job-2", "job-3", "job-5"));
    cut = now - 3600000;
    snprintf(since_ms, sizeof(since_ms), "%" PRId64, cut);
    assert_list(ARGS("--since", since_ms), 4, IDS("job-5"));
    t = (time_t)(cut / 1000);
    gmtime_r(&t, &tm);
    strftime(rfc_z, sizeof(rfc_z), "%Y-%m-%dT%H:%M:%SZ", &tm);
    assert_list(ARGS("--since", rfc_z), 4, IDS("job-1"));
    t += 2 * 3600;   /* the same instant written at +02:00 */
    gmtime_r(&t, &tm);
    strftime(rfc_off, sizeof(rfc_off), "%Y-%m-%dT%H:%M:%S+02:00", &tm);
    assert_list(ARGS("--since", rfc_off), 4, IDS("job-1"));
    t -= 2 * 3600;   /* lower-case separators and a fraction are RFC 3339 too */
    gmtime_r(&t, &tm);
    strftime(rfc_off, sizeof(rfc_off), "%Y-%m-%dt%H:%M:%S.000z", &tm);
    assert_list(ARGS("--since", rfc_off), 4, IDS("job-1"));
    /* at or after: the exact Jf-Dead-At of job-4 includes it, one ms later does not */
    snprintf(exact, sizeof(exact), "%" PRId64, now - 7200000);
    snprintf(after, sizeof(after), "%" PRId64, now - 7200000 + 1);
    assert_list(ARGS("--since", exact), 5, IDS("job-4"));
    assert_list(ARGS("--since", after), 4, NULL);
    assert_list(ARGS("--since", "2100-01-01T00:00:00Z"), 0, NULL);
}

Test(dlq_list, json_has_every_jf_header, .init = setup, .fini = teardown)
{
    run_t        r;
    json_t      *o, *h;
    json_error_t jerr;
    char        *line, *save = NULL;
    int          n = 0;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", 1700000000123, NULL, NULL });
    dead(&(dl_t){ "beta", "diag.noop", "job-3", "rejected", "", 1700000000456, NULL, NULL });
    r = RUN("dlq", "list", "--json", "--tenant", "acme");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.err, "1 dead letter") != NULL, "count not on stderr: %s", r.err);
    cr_assert(strstr(r.out, "dead letter") == NULL, "count on stdout: %s", r.out);
    for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        o = json_loads(line, 0, &jerr);
        cr_assert_not_null(o, "not JSON: %s (%s)", line, jerr.text);
        n++;
        cr_assert_eq(json_integer_value(json_object_get(o, "seq")), 1);
        cr_assert_str_eq(json_string_value(json_object_get(o, "subject")), "dlq.acme.diag.fail");
        cr_assert_eq(json_integer_value(json_object_get(o, "size")), 18);
        cr_assert_str_eq(json_string_value(json_object_get(o, "tenant")), "acme");
        cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "diag.fail");
        cr_assert_str_eq(json_string_value(json_object_get(o, "dead_at")),
                         "2023-11-14T22:13:20.123Z");
        h = json_object_get(o, "headers");
        cr_assert(json_is_object(h), "%s", line);
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Job-Id")), "job-1");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Failure-Reason")), "failed");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Attempts")), "3");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Original-Subject")),
                         "jobs.acme.diag.fail");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Original-Stream")), "JOBS");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Dead-At")), "1700000000123");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Worker")), "test-worker");
        cr_assert_str_eq(json_string_value(json_object_get(h, "Jf-Error-Code")), "JF_EINVAL");
        cr_assert_null(json_object_get(h, "Content-Type"), "only Jf-* headers: %s", line);
        json_decref(o);
    }
    cr_assert_eq(n, 1, "%d JSON lines", n);
    run_free(&r);
}

Test(dlq_list, an_empty_dlq_is_not_an_error, .init = setup, .fini = teardown)
{
    run_t r;

    jf_h_provision(&srv, NULL);
    r = RUN("dlq", "list");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "0 dead letters") != NULL, "%s", r.out);
    run_free(&r);
}

/* ---- dlq replay ------------------------------------------------------------------------ */

Test(dlq_replay, dry_run_changes_nothing, .init = setup, .fini = teardown)
{
    run_t r;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job-2", "failed", "", now_ms(), NULL, NULL });
    r = RUN("dlq", "replay", "--tenant", "acme", "--dry-run");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(LINES(r, "would replay job-1 as job-1~r", "dlq seq 1", "jobs.acme.diag.fail"), 1,
                 "%s", r.out);
    cr_assert_eq(LINES(r, "would replay job-2 as job-2~r", "dlq seq 2"), 1, "%s", r.out);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 2);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0);
    cr_assert_null(ledger_get("acme.diag.fail.job-1"));
    cr_assert_null(ledger_get("acme.diag.fail.job-2"));
    run_free(&r);
}

Test(dlq_replay, moves_exactly_the_filtered_ones, .init = setup, .fini = teardown)
{
    Jetfleet__V1__JobRecord *rec;
    natsMsg *left;
    int64_t  from, to;
    run_t    r;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "beta", "diag.fail", "job-9", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job.2", "exhausted", "", now_ms(), NULL, NULL });
    /* job-1 ran 5 times and died; job.2 has no record (e.g. expired) */
    ledger_put_dead("acme.diag.fail.job-1", "job-1", "acme", "diag.fail", 5, 0);

    from = now_ms();
    r = RUN("dlq", "replay", "--tenant", "acme");
    to = now_ms();
    cr_assert_eq(r.rc, 0, "exit %d: %s\n%s", r.rc, r.err, r.out);
    cr_assert_eq(LINES(r, "replayed job-1 as job-1~r", "(dlq seq 1 -> JOBS seq "), 1, "%s", r.out);
    cr_assert_eq(LINES(r, "replayed job.2 as job.2~r", "(dlq seq 3 -> JOBS seq "), 1, "%s", r.out);
    cr_assert_eq(LINES(r, "replayed 2 dead letters; 0 failed"), 1, "%s", r.out);

    /* JOBS gained exactly the two, as clean jobs */
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 2);
    assert_replayed_copy("job-1", "jobs.acme.diag.fail", from, to);
    assert_replayed_copy("job.2", "jobs.acme.diag.fail", from, to);
    /* the DLQ lost them and kept the other tenant's */
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 1);
    left = find_msg("DLQ", "Jf-Job-Id", "job-9");
    cr_assert_not_null(left);
    natsMsg_Destroy(left);

    rec = ledger_get("acme.diag.fail.job-1");
    cr_assert_not_null(rec);
    cr_assert_eq(rec->state, JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED);
    cr_assert_eq(rec->replays, 1);
    cr_assert_eq(rec->attempts, 0);
    cr_assert_str_eq(rec->job_id, "job-1");
    cr_assert_str_eq(rec->tenant, "acme");
    cr_assert_str_eq(rec->type, "diag.fail");
    cr_assert_str_eq(rec->last_error, "");
    cr_assert_eq(rec->first_started_ms, 1700000000000, "the rest of the record is kept");
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    /* the id with a dot is escaped in the key */
    rec = ledger_get("acme.diag.fail.job=2E2");
    cr_assert_not_null(rec);
    cr_assert_eq(rec->state, JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED);
    cr_assert_eq(rec->replays, 1);
    cr_assert_str_eq(rec->job_id, "job.2");
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    cr_assert_null(ledger_get("beta.diag.fail.job-9"));
    run_free(&r);

    /* it dies again and is replayed again: a second replay */
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    r = RUN("dlq", "replay", "--job", "job-1");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    rec = ledger_get("acme.diag.fail.job-1");
    cr_assert_not_null(rec);
    cr_assert_eq(rec->replays, 2);
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 3);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 1);
    run_free(&r);
}

Test(dlq_replay, without_a_filter_needs_all, .init = setup, .fini = teardown)
{
    run_t r;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "beta", "diag.noop", "job-2", "rejected", "", now_ms(), NULL, NULL });
    r = RUN("dlq", "replay");
    cr_assert_eq(r.rc, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--all") != NULL, "%s", r.err);
    run_free(&r);
    r = RUN("dlq", "replay", "--limit", "1");   /* a limit is no filter */
    cr_assert_eq(r.rc, 2, "%s", r.err);
    run_free(&r);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 2);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0);

    r = RUN("dlq", "replay", "--all");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(LINES(r, "replayed 2 dead letters"), 1, "%s", r.out);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 0);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 2);
    run_free(&r);
}

Test(dlq_replay, skips_what_cannot_be_replayed_and_exits_1, .init = setup, .fini = teardown)
{
    Jetfleet__V1__JobRecord *rec;
    natsMsg *m;
    run_t    r;

    jf_h_provision(&srv, NULL);
    /* 1: no Jf-Original-Subject; 2: fine; 3: rejected for its id, so no
     * Jf-Job-Id; 4: an original subject that is not its own job subject */
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", NULL, now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job-2", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.noop", NULL, "rejected", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job-4", "failed", "dlq.acme.diag.fail", now_ms(), NULL,
                  NULL });
    r = RUN("dlq", "replay", "--tenant", "acme");
    cr_assert_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_assert(strstr(r.err, "dlq seq 1 (job job-1)") != NULL &&
              strstr(r.err, "Jf-Original-Subject") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "dlq seq 3 (job -)") != NULL &&
              strstr(r.err, "cannot replay a job without a valid id") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "dlq seq 4 (job job-4)") != NULL, "%s", r.err);
    cr_assert_eq(LINES(r, "replayed job-2 as job-2~r"), 1, "%s", r.out);
    cr_assert_eq(LINES(r, "replayed 1 dead letter; 3 failed"), 1, "%s", r.out);

    /* the good one moved; the three others stay where they were */
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 1);
    m = find_msg("JOBS", "Jf-Job-Id", "job-2");
    cr_assert_not_null(m);
    natsMsg_Destroy(m);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 3);
    cr_assert_null(ledger_get("acme.diag.fail.job-1"));
    cr_assert_null(ledger_get("acme.diag.fail.job-4"));
    rec = ledger_get("acme.diag.fail.job-2");
    cr_assert_not_null(rec);
    cr_assert_eq(rec->state, JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED);
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    run_free(&r);
}

Test(dlq_replay, a_missing_ledger_stops_before_publishing, .init = setup, .fini = teardown)
{
    jsCtx *js = NULL;
    run_t  r;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_DeleteKeyValue(js, "JF_LEDGER"), NATS_OK);
    jsCtx_Destroy(js);
    r = RUN("dlq", "replay", "--job", "job-1");
    cr_assert_eq(r.rc, 4, "exit %d: %s", r.rc, r.err);
    cr_assert(strstr(r.err, "JF_LEDGER") != NULL && strstr(r.err, "jetfleet provision") != NULL,
              "%s", r.err);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 1);
    run_free(&r);
}

/* The loop an operator runs: a job fails terminally while something is
 * down, goes to the DLQ; once it is fixed, the job is replayed and runs. */
Test(dlq_replay, a_replayed_job_runs_again_in_a_worker, .init = setup, .fini = teardown)
{
    const char *const env[] = { "JF_LOG_LEVEL=debug", NULL };
    const char *const started[] = { "\"msg\":\"worker started\"", NULL };
    const char *const ok[] = { "\"job_id\":\"order-7\"", "\"msg\":\"job succeeded\"", NULL };
    Jetfleet__V1__JobRecord *rec;
    jf_h_proc_t w;
    char        payload[160];
    int64_t     until = now_ms() + 2000;
    run_t       r;

    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "worker", env, &w);
    cr_assert_eq(jf_h_wait_lines(w.err_path, started, 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    snprintf(payload, sizeof(payload),
             "{\"retryable\":false,\"message\":\"upstream down\",\"failUntilMs\":\"%" PRId64 "\"}",
             until);
    cr_assert(jf_h_publish(nc, "jobs.acme.diag.fail", payload, (int)strlen(payload), "order-7",
                           (const char *const[]){ "Content-Type", "application/json", NULL }));
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "DLQ", 1, 10000), 1, "%s", jf_h_slurp(w.err_path));
    /* the worker records the death after the dead letter is stored */
    for (int i = 0; i < 100; i++) {
        rec = ledger_get("acme.diag.fail.order-7");
        if (rec != NULL && rec->state == JETFLEET__V1__JOB_STATE__JOB_STATE_DEAD)
            break;
        if (rec != NULL)
            jetfleet__v1__job_record__free_unpacked(rec, NULL);
        rec = NULL;
        jf_h_sleep_ms(50);
    }
    cr_assert_not_null(rec, "the ledger never said dead");
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    while (now_ms() <= until)
        jf_h_sleep_ms(50);

    r = RUN("dlq", "replay", "--job", "order-7");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(LINES(r, "replayed order-7 as order-7~r"), 1, "%s", r.out);
    cr_assert_eq(jf_h_wait_lines(w.err_path, ok, 1, 15000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 0);
    rec = ledger_get("acme.diag.fail.order-7");
    cr_assert_not_null(rec);
    cr_assert_eq(rec->state, JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    cr_assert_eq(rec->replays, 1);
    cr_assert_eq(rec->attempts, 1, "the replay starts counting attempts again");
    jetfleet__v1__job_record__free_unpacked(rec, NULL);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    run_free(&r);
}

/* ---- dlq purge --------------------------------------------------------------------------- */

Test(dlq_purge, deletes_the_filtered_ones, .init = setup, .fini = teardown)
{
    natsMsg *m;
    run_t    r;

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "acme", "diag.fail", "job-2", "exhausted", "", now_ms(), NULL, NULL });
    dead(&(dl_t){ "beta", "diag.fail", "job-3", "exhausted", "", now_ms(), NULL, NULL });

    r = RUN("dlq", "purge", "--reason", "exhausted", "--dry-run");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(LINES(r, "would purge dlq seq 2", "job-2"), 1, "%s", r.out);
    cr_assert_eq(LINES(r, "would purge 2 dead letters"), 1, "%s", r.out);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 3);
    run_free(&r);

    r = RUN("dlq", "purge");
    cr_assert_eq(r.rc, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--all") != NULL, "%s", r.err);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 3);
    run_free(&r);

    r = RUN("dlq", "purge", "--reason", "exhausted", "--tenant", "acme");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(LINES(r, "purged 1 dead letter"), 1, "%s", r.out);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 2);
    m = find_msg("DLQ", "Jf-Job-Id", "job-2");
    cr_assert_null(m, "job-2 is still in the DLQ");
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0, "purge publishes nothing");
    run_free(&r);

    /* the listing skips the gap it left */
    r = RUN("dlq", "list");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, " job-1 ") && strstr(r.out, " job-3 ") && !strstr(r.out, " job-2 "),
              "%s", r.out);
    cr_assert(strstr(r.out, "\n2 dead letters\n") != NULL, "%s", r.out);
    run_free(&r);

    r = RUN("dlq", "purge", "--all");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 0);
    run_free(&r);
}

/* ---- usage and errors ----------------------------------------------------------------- */

Test(dlq_cli, bad_filter_values_exit_2_naming_the_option, .init = setup, .fini = teardown)
{
    static const struct { const char *opt, *value; } bad[] = {
        { "--tenant", "Acme" },
        { "--tenant", "a.b" },
        { "--type", "nodot" },
        { "--type", "diag.Fail" },
        { "--reason", "sad" },
        { "--since", "yesterday" },
        { "--since", "2026-13-01T00:00:00Z" },
        { "--since", "2026-02-30T00:00:00Z" },
        { "--since", "2026-01-01T00:00:00" },
        { "--since", "2026-01-01T00:00:00+2:00" },
        { "--since", "-5m" },
        { "--job", "has space" },
        { "--limit", "0" },
        { "--limit", "ten" },
    };
    static const char *const cmds[] = { "list", "replay", "purge" };

    jf_h_provision(&srv, NULL);
    dead(&(dl_t){ "acme", "diag.fail", "job-1", "failed", "", now_ms(), NULL, NULL });
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (size_t c = 0; c < 3; c++) {
            run_t r = RUN("dlq", cmds[c], bad[i].opt, bad[i].value);
            cr_assert_eq(r.rc, 2, "dlq %s %s %s: exit %d", cmds[c], bad[i].opt, bad[i].value,
                         r.rc);
            cr_assert(strstr(r.err, bad[i].opt) != NULL, "dlq %s %s %s: %s", cmds[c],
                      bad[i].opt, bad[i].value, r.err);
            cr_assert_str_eq(r.out, "", "nothing done for %s %s", bad[i].opt, bad[i].value);
            run_free(&r);
        }
    }
    {
        run_t r = RUN("dlq", "list", "--dry-run");   /* an option of the others */
        cr_assert_eq(r.rc, 2);
        cr_assert(strstr(r.err, "dry-run") != NULL, "%s", r.err);
        run_free(&r);
        r = RUN("dlq", "list", "extra");
        cr_assert_eq(r.rc, 2);
        cr_assert(strstr(r.err, "extra") != NULL, "%s", r.err);
        run_free(&r);
    }
    cr_assert_eq(jf_h_stream_msgs(nc, "DLQ"), 1);
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 0);
}

Test(dlq_cli, a_missing_dlq_stream_exits_4, .init = setup, .fini = teardown)
{
    static const char *const cmds[][3] = {
        { "list", NULL, NULL }, { "replay", "--all", NULL }, { "replay", "--all", "--dry-run" },
        { "purge", "--all", NULL },
    };

    for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
        run_t r = run_args((const char *const[]){ "dlq", cmds[c][0], cmds[c][1], cmds[c][2],
                                                  NULL });
        cr_assert_eq(r.rc, 4, "dlq %s: exit %d: %s", cmds[c][0], r.rc, r.err);
        cr_assert(strstr(r.err, "run `jetfleet provision`") != NULL, "dlq %s: %s", cmds[c][0],
                  r.err);
        run_free(&r);
    }
}

Test(dlq_cli, every_subcommand_has_help, .init = setup, .fini = teardown)
{
    static const char *const cmds[] = { "list", "replay", "purge" };

    for (size_t c = 0; c < 3; c++) {
        char  want[64];
        run_t r = RUN("dlq", cmds[c], "--help");
        snprintf(want, sizeof(want), "usage: jetfleet dlq %s ", cmds[c]);
        cr_assert_eq(r.rc, 0, "%s", r.err);
        cr_assert(strncmp(r.out, want, strlen(want)) == 0, "%s", r.out);
        cr_assert(strstr(r.out, "--since") != NULL, "%s", r.out);
        run_free(&r);
    }
}
