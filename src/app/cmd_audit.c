/*
 * cmd_audit.c - `jetfleet audit tail`: the AUDIT stream for people
 * (docs/telemetry.md), and the event reading that `jetfleet job show` shares.
 *
 * Workers publish each lifecycle step as a jetfleet.v1.JobEvent on
 * telemetry.jobs.<tenant>.<module>.<action>.<event>, binary protobuf or,
 * with Content-Type application/json, its proto3 JSON form; AUDIT keeps
 * them. Tenant, type and event filters become the consumer's subject
 * filter, so the server does the filtering; the job id is not in the
 * subject and is matched here.
 *
 * The reader (core/jsconsume.h) is an ephemeral ordered consumer, or with
 * --durable a named pull consumer that remembers how far it got: each
 * event is acknowledged once its line is written, so the next run with
 * the same name starts after it.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "app/audit.h"
#include "app/cli.h"
#include "core/clock.h"
#include "core/jsconsume.h"
#include "core/pbjson.h"
#include "core/timefmt.h"
#include "shared/ids.h"

/* The AUDIT stream and telemetry prefix of the configured region
 * (cfg->names), set by jf_audit_use() before anything runs. */
static const jf_names_t *names;
#define AUDIT_STREAM     (names->audit_stream)
#define TELEMETRY_PREFIX (names->telemetry_prefix)

void jf_audit_use(const jf_names_t *n)
{
    names = n;
}
#define IDLE_MS          1000      /* --no-follow: done after this long without a message */
#define POLL_MS          200       /* how often a waiting reader looks at the signal flag */
#define ERROR_SHOWN      300       /* characters of an event's error text on a line */
#define MAX_EVENT_BYTES  (1024 * 1024)

static const char *const event_names[] = {
    "received", "started", "succeeded", "retry_scheduled", "failed",
    "dead_lettered", "duplicate", "rejected", "quarantined", NULL,
};

/* ---- decoding and formatting events (shared with job show) ------------------------- */

/* Decode the JobEvent in m: proto3 JSON when Content-Type says so, binary
 * protobuf otherwise. *out is freed with protobuf_c_message_free_unpacked. */
static jf_status_t event_decode(const jf_jsmsg_t *m, jf_job_event_t **out, jf_err_t *err)
{
    const char             *ct = jf_jsmsg_header(m, "Content-Type");
    const jf_pbjson_limits_t limits = { .max_bytes = MAX_EVENT_BYTES };
    ProtobufCMessage       *msg = NULL;
    jf_job_event_t         *ev;
    jf_status_t             st;

    if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0) {
        st = jf_pbjson_decode(&jetfleet__v1__job_event__descriptor, jf_jsmsg_data(m),
                              jf_jsmsg_len(m), &limits, &msg, err);
        if (st != JF_OK)
            return jf_err_wrap(err, "not a JSON JobEvent");
        *out = (jf_job_event_t *)msg;
        return JF_OK;
    }
    ev = jetfleet__v1__job_event__unpack(NULL, jf_jsmsg_len(m),
                                         (const uint8_t *)jf_jsmsg_data(m));
    if (ev == NULL)
        return jf_err_set(err, JF_EDECODE, "not a protobuf JobEvent (Content-Type %.40s)",
                          ct != NULL ? ct : "absent");
    *out = ev;
    return JF_OK;
}

static void event_free(jf_job_event_t *ev)
{
    if (ev != NULL)
        protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* Append s for a terminal: control characters become '?', at most max
 * characters, "-" when empty. */
static void put_shown(FILE *f, const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || *s == '\0') {
        fputc('-', f);
        return;
    }
    for (; *s != '\0' && n < max; s++, n++)
        fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, f);
    if (*s != '\0')
        fputs("...", f);
}

jf_status_t jf_audit_event_line(const jf_audit_event_t *e, char **out, jf_err_t *err)
{
    const jf_job_event_t *ev = e->ev;
    char                 *buf = NULL;
    size_t                size = 0;
    FILE                 *f = open_memstream(&buf, &size);
    char                  when[48];
    int64_t               t;

    if (f == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    /* When the step happened: it ended, else it started, else the worker
     * received the delivery. Events from before 0.8 carry no received_ms;
     * their enqueued_ms is the job's, not this delivery's (a retry is
     * received long after), so the time AUDIT stored them is closer. */
    t = ev->ended_ms != 0 ? ev->ended_ms : ev->started_ms != 0 ? ev->started_ms
      : ev->received_ms != 0 ? ev->received_ms
      : e->stored_ms > 0 ? e->stored_ms : ev->enqueued_ms;
    fprintf(f, "%s %-15s ", jf_time_format_ms(t, when, sizeof(when)),
            jf_event_kind_name(ev->event));
    put_shown(f, ev->tenant, JF_TENANT_MAX);
    fputc(' ', f);
    put_shown(f, ev->type, JF_TYPE_MAX);
    fputc(' ', f);
    put_shown(f, ev->job_id, JF_JOB_ID_MAX);
    fprintf(f, " attempt=%" PRIu32 " worker=", ev->attempt);
    put_shown(f, ev->worker_id, 128);
    if (ev->next_delay_ms != 0 ||
        ev->event == JETFLEET__V1__EVENT_KIND__EVENT_KIND_RETRY_SCHEDULED)
        fprintf(f, " delay=%" PRIu32 "ms", ev->next_delay_ms);
    if ((ev->error_code != NULL && ev->error_code[0] != '\0') ||
        (ev->error_text != NULL && ev->error_text[0] != '\0')) {
        fputs(" error=", f);
        put_shown(f, ev->error_code, 64);
        fputs(": ", f);
        put_shown(f, ev->error_text, ERROR_SHOWN);
    }
    /* How long the delivery waited in the worker before its run. */
    if (ev->received_ms != 0 && ev->started_ms >= ev->received_ms &&
        ev->event != JETFLEET__V1__EVENT_KIND__EVENT_KIND_RECEIVED)
        fprintf(f, " wait=%" PRId64 "ms", ev->started_ms - ev->received_ms);
    if (ev->duration_us > 0) {
        if (ev->duration_us % 1000 == 0)
            fprintf(f, " duration=%" PRId64 "ms", ev->duration_us / 1000);
        else
            fprintf(f, " duration=%" PRId64 ".%03" PRId64 "ms", ev->duration_us / 1000,
                    ev->duration_us % 1000);
    }
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    *out = buf;
    return JF_OK;
}

jf_status_t jf_audit_event_json(const jf_audit_event_t *e, char **out, jf_err_t *err)
{
    char        *text = NULL, *line = NULL;
    json_t      *o = NULL;
    json_error_t jerr;
    jf_status_t  st;

    st = jf_pbjson_encode(&e->ev->base, JF_PBJSON_ORIG_NAMES, &text, NULL, err);
    if (st != JF_OK)
        return st;
    o = json_loads(text, 0, &jerr);
    free(text);
    if (o == NULL)
        return jf_err_set(err, JF_EDECODE, "event JSON: %s", jerr.text);
    /* "stream_seq" is the event's own field: the job's sequence in JOBS.
     * Where the event itself is stored is audit_seq. */
    json_object_set_new(o, "subject", json_string(e->subject));
    json_object_set_new(o, "audit_seq", json_integer((json_int_t)e->seq));
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (line == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    *out = line;
    return JF_OK;
}

/* ---- the subject filter ---------------------------------------------------------------- */

/* telemetry.jobs.<tenant|*>.<module|*>.<action|*>.<event|*>, or
 * telemetry.jobs.> when nothing narrows it. The parts were validated. */
static void build_filter(char *buf, size_t size, const char *tenant, const char *type,
                         const char *event)
{
    char        module[JF_TOKEN_MAX + 1] = "*", action[JF_TOKEN_MAX + 1] = "*";
    const char *dot;

    if (tenant == NULL && type == NULL && event == NULL) {
        snprintf(buf, size, "%s.>", TELEMETRY_PREFIX);
        return;
    }
    if (type != NULL && (dot = strchr(type, '.')) != NULL) {
        snprintf(module, sizeof(module), "%.*s", (int)(dot - type), type);
        snprintf(action, sizeof(action), "%s", dot + 1);
    }
    snprintf(buf, size, "%s.%s.%s.%s.%s", TELEMETRY_PREFIX, tenant ? tenant : "*", module,
             action, event ? event : "*");
}

/* ---- reading ------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

typedef struct read_opts {
    const char     *filter;
    const char     *job;       /* client-side filter; NULL: every job */
    jf_read_start_t start;
    int64_t         since_ms;
    const char     *durable;
    bool            follow;    /* until a signal; else until caught up */
    bool            has_since;
} read_opts_t;

/* Why read_events() stopped. */
typedef enum {
    READ_DONE,        /* caught up (--no-follow), or a signal (follow) */
    READ_STOPPED,     /* the visitor asked to stop */
} read_end_t;

/* Read events with o, calling fn for each decoded event of the job
 * filter. Durable readers ack every message once fn has returned (so an
 * undecodable one does not come back). Stops on a signal, when fn returns
 * false, or (without follow) when caught up or nothing came for IDLE_MS. */
static jf_status_t read_events(jf_nats_t *nc, const read_opts_t *o, jf_audit_visit_fn fn,
                               void *arg, jf_err_t *err)
{
    jf_reader_opts_t ro = { .stream = AUDIT_STREAM, .filter = o->filter, .start = o->start,
                            .since_ms = o->since_ms, .durable = o->durable };
    jf_reader_t     *r = NULL;
    jf_jsmsg_t      *m = NULL;
    jf_status_t      st;
    int64_t          idle_since = jf_clock_mono_ms();
    bool             go_on = true;

    st = jf_reader_open(&r, nc, &ro, err);
    if (st == JF_ENOTFOUND)
        jf_err_set(err, st, "stream %s does not exist; run `jetfleet provision`", AUDIT_STREAM);
    if (st != JF_OK)
        goto out;
    if (o->durable != NULL && jf_reader_resumed(r) && o->has_since)
        fprintf(stderr, "jetfleet: note: durable %s resumes where it stopped; --since applies "
                "only when it is created\n", o->durable);
    if (o->follow)
        fprintf(stderr, "jetfleet: following %s on %s; interrupt to stop\n", o->filter,
                AUDIT_STREAM);
    else if (jf_reader_pending(r) == 0)
        goto out;   /* nothing there */

    while (go_on && stop_signal == 0) {
        jf_job_event_t  *ev = NULL;
        jf_audit_event_t e;
        jf_err_t         e2 = { 0 };
        int64_t          wait = POLL_MS;

        if (!o->follow) {
            int64_t left = IDLE_MS - (jf_clock_mono_ms() - idle_since);
            if (left <= 0)
                break;
            if (left < wait)
                wait = left;
        }
        st = jf_reader_next(r, wait, &m, err);
        if (st == JF_ETIMEOUT)
            continue;
        if (st != JF_OK)
            goto out;
        idle_since = jf_clock_mono_ms();

        if (event_decode(m, &ev, &e2) != JF_OK) {
            fprintf(stderr, "jetfleet: warning: %s seq %" PRIu64 " on %s: %s; skipped\n",
                    AUDIT_STREAM, jf_jsmsg_meta(m)->stream_seq, jf_jsmsg_subject(m),
                    jf_err_msg(&e2));
        } else if (o->job == NULL || strcmp(ev->job_id, o->job) == 0) {
            e = (jf_audit_event_t){ .ev = ev, .subject = jf_jsmsg_subject(m),
                                    .seq = jf_jsmsg_meta(m)->stream_seq,
                                    .stored_ms = jf_jsmsg_meta(m)->timestamp_ns / 1000000 };
            go_on = fn(&e, arg);
        }
        event_free(ev);
        if (o->durable != NULL) {
            fflush(stdout);   /* what is acknowledged has been written */
            jf_jsmsg_ack(m, NULL);
        }
        jf_jsmsg_destroy(m);
        m = NULL;
        if (!o->follow && jf_reader_pending(r) == 0)
            break;   /* caught up with what was there */
    }
    st = JF_OK;
out:
    jf_jsmsg_destroy(m);
    jf_reader_close(r);
    /* acks are plain publishes: make sure they left before we go */
    if (o->durable != NULL)
        jf_nats_flush(nc, 2000, NULL);
    return st;
}

jf_status_t jf_audit_scan(jf_nats_t *nc, const char *tenant, const char *type,
                          const char *job_id, jf_audit_visit_fn fn, void *arg, jf_err_t *err)
{
    char        filter[320];
    read_opts_t o = { .filter = filter, .job = job_id, .start = JF_READ_ALL };

    build_filter(filter, sizeof(filter), tenant, type, NULL);
    return read_events(nc, &o, fn, arg, err);
}

/* ---- audit tail ------------------------------------------------------------------------- */

typedef struct tail_opts {
    const char *tenant, *type, *event, *job, *durable;
    bool        has_since, follow, json;
    int64_t     since_ms;
    uint64_t    limit;       /* 0: no limit */
} tail_opts_t;

typedef struct tail_ctx {
    const tail_opts_t *o;
    uint64_t           printed;
} tail_ctx_t;

static void help(void)
{
    printf("usage: jetfleet audit tail [--since WHEN] [--tenant T] [--type M.A] [--event NAME]\n"
           "                           [--job ID] [--durable NAME] [--no-follow] [--json]\n"
           "                           [--limit N]\n"
           "\n"
           "Print job lifecycle events from the AUDIT stream, one line each:\n"
           "  <time> <event> <tenant> <type> <job id> attempt=N worker=W [delay=Nms]\n"
           "  [error=CODE: text] [duration=Nms]\n"
           "where time is when the step ended, else when it started, else when AUDIT\n"
           "stored the event (RFC 3339, UTC).\n"
           "By default only new events are shown, until interrupted (exit status 0).\n"
           "\n"
           "options:\n"
           "  --since WHEN     start with events stored at or after WHEN: a duration back\n"
           "                   from now (30m, 1h, 7d), an RFC 3339 time\n"
           "                   (2026-11-29T08:00:00Z) or Unix milliseconds\n"
           "  --tenant T       events of tenant T\n"
           "  --type M.A       of job type module.action\n"
           "  --event NAME     one of received, started, succeeded, retry_scheduled, failed,\n"
           "                   dead_lettered, duplicate, rejected, quarantined\n"
           "  --job ID         of job ID only (matched here, not by the server)\n"
           "  --no-follow      print the events there are now (from --since, else from the\n"
           "                   oldest) and exit\n"
           "  --durable NAME   read through the durable consumer NAME on AUDIT, created on\n"
           "                   first use with these filters and start; each printed event is\n"
           "                   acknowledged, and the next run with NAME goes on after the\n"
           "                   last one (events --job skips count as read). It keeps\n"
           "                   its filters; --since only applies when it is created.\n"
           "                   Remove it with `nats consumer rm AUDIT NAME`\n"
           "  --json           one JSON object per line: the event's fields by proto name,\n"
           "                   plus \"subject\" and \"audit_seq\" (its AUDIT sequence)\n"
           "  --limit N        stop after N events\n"
           "\n"
           "Any NATS client can read them too: live with `nats sub 'telemetry.jobs.>'`,\n"
           "stored through a consumer on the AUDIT stream.\n"
           "Exit status 0 on success or interrupt, 2 for bad options, 3 when NATS is\n"
           "unavailable, 4 when the AUDIT stream does not exist.\n");
}



enum {
    OPT_SINCE = 256,
    OPT_TENANT,
    OPT_TYPE,
    OPT_EVENT,
    OPT_JOB,
    OPT_DURABLE,
    OPT_NO_FOLLOW,
    OPT_JSON,
    OPT_LIMIT,
};

static const struct option tail_options[] = {
    { "since", required_argument, NULL, OPT_SINCE },
    { "tenant", required_argument, NULL, OPT_TENANT },
    { "type", required_argument, NULL, OPT_TYPE },
    { "event", required_argument, NULL, OPT_EVENT },
    { "job", required_argument, NULL, OPT_JOB },
    { "durable", required_argument, NULL, OPT_DURABLE },
    { "no-follow", no_argument, NULL, OPT_NO_FOLLOW },
    { "json", no_argument, NULL, OPT_JSON },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Parse argv into o. Returns JF_EXIT_OK, or the exit code to stop with
 * (-1 for a --help that was printed). */
static int parse_args(int argc, char **argv, tail_opts_t *o)
{
    char        module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1];
    jf_err_t    err = { 0 };
    int64_t     v;
    int         c;
    bool        known;

    o->follow = true;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", tail_options, NULL)) != -1) {
        switch (c) {
        case OPT_SINCE:
            if (jf_time_parse_since(optarg, jf_clock_now_ms(), &o->since_ms, &err) != JF_OK) {
                jf_cli_error("audit tail: --since: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->has_since = true;
            break;
        case OPT_TENANT:
            if (jf_token_check(optarg, strlen(optarg), JF_TENANT_MAX, "tenant", &err) != JF_OK) {
                jf_cli_error("audit tail: --tenant: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->tenant = optarg;
            break;
        case OPT_TYPE:
            if (jf_type_split(optarg, module, action, &err) != JF_OK) {
                jf_cli_error("audit tail: --type: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->type = optarg;
            break;
        case OPT_EVENT:
            known = false;
            for (const char *const *n = event_names; *n != NULL; n++)
                known = known || strcmp(*n, optarg) == 0;
            if (!known) {
                jf_cli_error("audit tail: --event: '%.64s' is not one of received, started, "
                             "succeeded, retry_scheduled, failed, dead_lettered, duplicate, "
                             "rejected, quarantined", optarg);
                return JF_EXIT_USAGE;
            }
            o->event = optarg;
            break;
        case OPT_JOB:
            if (jf_job_id_check(optarg, &err) != JF_OK) {
                jf_cli_error("audit tail: --job: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->job = optarg;
            break;
        case OPT_DURABLE:
            if (!jf_js_durable_name_ok(optarg)) {
                jf_cli_error("audit tail: --durable: '%.64s' is not a valid consumer name: 1 "
                             "to 64 letters, digits, '_' or '-'", optarg);
                return JF_EXIT_USAGE;
            }
            o->durable = optarg;
            break;
        case OPT_LIMIT:
            if (jf_parse_int(optarg, &v, NULL) != JF_OK || v < 1) {
                jf_cli_error("audit tail: --limit: '%.64s' is not a positive whole number",
                             optarg);
                return JF_EXIT_USAGE;
            }
            o->limit = (uint64_t)v;
            break;
        case OPT_NO_FOLLOW: o->follow = false; break;
        case OPT_JSON:      o->json = true; break;
        case 'h':           help(); return -1;
        default:
            jf_cli_error("audit tail: see `jetfleet audit tail --help`");
            return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("audit tail: unexpected argument '%s'", argv[optind]);
        return JF_EXIT_USAGE;
    }
    return JF_EXIT_OK;
}

static bool tail_one(const jf_audit_event_t *e, void *arg)
{
    tail_ctx_t *c = arg;
    char       *line = NULL;
    jf_err_t    err = { 0 };

    if ((c->o->json ? jf_audit_event_json(e, &line, &err)
                    : jf_audit_event_line(e, &line, &err)) != JF_OK) {
        /* e.g. an error text that is not UTF-8 cannot be JSON */
        fprintf(stderr, "jetfleet: warning: %s seq %" PRIu64 " on %s: %s; skipped\n",
                AUDIT_STREAM, e->seq, e->subject, jf_err_msg(&err));
        return true;
    }
    puts(line);
    free(line);
    fflush(stdout);
    c->printed++;
    return c->o->limit == 0 || c->printed < c->o->limit;
}

int jf_cmd_audit_tail(int argc, char **argv)
{
    tail_opts_t      o = { 0 };
    tail_ctx_t       c = { .o = &o };
    jf_config_t      cfg;
    bool             cfg_loaded = false;
    jf_nats_t       *nc = NULL;
    jf_err_t         err = { 0 };
    char             filter[320];
    read_opts_t      ro;
    struct sigaction sa;
    jf_status_t      st;
    int              rc;

    rc = parse_args(argc, argv, &o);
    if (rc != JF_EXIT_OK)
        return rc < 0 ? JF_EXIT_OK : rc;
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        return rc;
    cfg_loaded = true;
    jf_audit_use(&cfg.names);
    if ((rc = jf_cli_connect(&cfg, "jetfleet-audit-tail", &nc)) != JF_EXIT_OK)
        goto out;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    build_filter(filter, sizeof(filter), o.tenant, o.type, o.event);
    ro = (read_opts_t){
        .filter = filter, .job = o.job, .durable = o.durable, .follow = o.follow,
        .has_since = o.has_since, .since_ms = o.since_ms,
        .start = o.has_since ? JF_READ_SINCE : o.follow ? JF_READ_NEW : JF_READ_ALL,
    };
    st = read_events(nc, &ro, tail_one, &c, &err);
    fflush(stdout);
    if (st != JF_OK) {
        jf_cli_error("audit tail: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    rc = JF_EXIT_OK;
out:
    jf_nats_close(nc, 2000);
    if (cfg_loaded)
        jf_config_free(&cfg);
    return rc;
}
