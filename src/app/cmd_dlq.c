/*
 * cmd_dlq.c - `jetfleet dlq list|replay|purge`: the dead-letter stream for
 * operators (docs/reliability.md, "Dead letters").
 *
 * All three scan the DLQ stream from its first to its last sequence, read
 * each dead letter by sequence (gaps are messages deleted earlier) and keep
 * those that pass the filters. The headers and subjects they read are the
 * contract in app/deadletter.h; nothing here writes a dead letter.
 *
 * Replay republishes the stored message to its Jf-Original-Subject with a
 * new Nats-Msg-Id (the old one stays blocked for the duplicate window) and
 * Jf-Job-Id set to the original id, which is the ledger identity. The order
 * is: reset the ledger record, publish and wait for the ack, delete the dead
 * letter. The ledger comes first because a worker acks a job whose record
 * says dead as a duplicate; a failed publish puts the old record back. A
 * failure at any step leaves the dead letter in place, so that nothing is
 * lost; the message says what already happened.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "app/cli.h"
#include "app/deadletter.h"
#include "core/clock.h"
#include "core/jsadmin.h"
#include "core/jsstore.h"
#include "core/ledger.h"
#include "core/timefmt.h"
#include "shared/ids.h"
#include "shared/subject.h"

/* The DLQ stream, its subject prefix and the ledger of the configured
 * region (cfg->names), set once by the command before anything runs. */
static const jf_names_t *names;
#define REPLAY_ID_KEEP  100   /* characters of the job id kept in a replay's id */
#define ERROR_SHOWN     80    /* characters of Jf-Last-Error shown by `dlq list` */

typedef enum {
    DLQ_LIST,
    DLQ_REPLAY,
    DLQ_PURGE,
} dlq_mode_t;

static const char *const mode_names[] = { "list", "replay", "purge" };

static const char *const reasons[] = { "failed", "exhausted", "rejected", "quarantined", NULL };

typedef struct dlq_filter {
    const char *tenant;
    const char *type;
    const char *reason;
    const char *job;
    bool        has_since;
    int64_t     since_ms;
    uint64_t    limit;       /* 0: no limit */
} dlq_filter_t;

typedef struct dlq_opts {
    dlq_mode_t   mode;
    dlq_filter_t f;
    bool         json, dry_run, all;
} dlq_opts_t;

/* One dead letter as the filters and the commands see it. Borrowed from
 * the stored message, valid while it lives. */
typedef struct dlq_entry {
    const jf_stored_msg_t *msg;
    uint64_t     seq;
    bool         parsed;       /* the subject is dlq.<tenant>.<module>.<action> */
    jf_subject_t where;        /* valid when parsed */
    const char  *job_id;       /* Jf-Job-Id, NULL when absent */
    const char  *reason;       /* Jf-Failure-Reason, "" when absent */
    int64_t      dead_at_ms;   /* Jf-Dead-At, else the stored time */
} dlq_entry_t;

/* ---- help --------------------------------------------------------------------- */

static void help_filters(void)
{
    printf("filters (all that are given must match):\n"
           "  --tenant T       dead letters of tenant T (dlq.T.>)\n"
           "  --type M.A       of job type module.action\n"
           "  --reason R       Jf-Failure-Reason: failed, exhausted, rejected or quarantined\n"
           "  --since WHEN     dead at or after WHEN (Jf-Dead-At, else the stored time):\n"
           "                   a duration back from now (30m, 1h, 7d), an RFC 3339 time\n"
           "                   (2026-11-29T08:00:00Z, ...+01:00) or Unix milliseconds\n"
           "  --job ID         Jf-Job-Id equals ID\n"
           "  --limit N        stop after N matching dead letters\n");
}

static void help(dlq_mode_t mode)
{
    switch (mode) {
    case DLQ_LIST:
        printf("usage: jetfleet dlq list [filters] [--json]\n"
               "\n"
               "List dead letters, oldest first: stream sequence, dead-at (UTC), tenant,\n"
               "type, job id, reason, attempts and the last error (shortened). Ends with\n"
               "\"N dead letters\".\n"
               "\n");
        help_filters();
        printf("  --json           one JSON object per line instead: seq, subject, size,\n"
               "                   tenant, type, dead_at and every Jf-* header under\n"
               "                   \"headers\"; the count goes to stderr\n");
        break;
    case DLQ_REPLAY:
        printf("usage: jetfleet dlq replay [filters] [--dry-run] [--all]\n"
               "\n"
               "Publish matching dead letters again to their Jf-Original-Subject, with the\n"
               "payload and headers they had, Jf-Job-Id set to the original job id and a\n"
               "new Nats-Msg-Id <job id>~r<dlq seq>. The job's ledger record is reset\n"
               "first (state replayed, attempts 0, replays + 1); once the stream has\n"
               "acknowledged the copy, the dead letter is deleted. A dead letter without\n"
               "a valid Jf-Job-Id, or whose Jf-Original-Subject is missing or is not\n"
               "<JF_SUBJECT_PREFIX>.<tenant>.<module>.<action> of its own dlq subject,\n"
               "cannot be replayed and is reported.\n"
               "\n");
        help_filters();
        printf("  --dry-run        print what would be replayed; change nothing\n"
               "  --all            needed when no filter is given (--limit is no filter)\n"
               "\n"
               "Exit status 0 when every match was replayed, 1 when any was not.\n");
        break;
    case DLQ_PURGE:
        printf("usage: jetfleet dlq purge [filters] [--dry-run] [--all]\n"
               "\n"
               "Delete matching dead letters for good.\n"
               "\n");
        help_filters();
        printf("  --dry-run        print what would be deleted; change nothing\n"
               "  --all            needed when no filter is given (--limit is no filter)\n"
               "\n"
               "Exit status 0 when every match was deleted, 1 when any was not.\n");
        break;
    }
}

/* ---- parsing the filters --------------------------------------------------------- */

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}


enum {
    OPT_TENANT = 256,
    OPT_TYPE,
    OPT_REASON,
    OPT_SINCE,
    OPT_JOB,
    OPT_LIMIT,
    OPT_JSON,
    OPT_DRY_RUN,
    OPT_ALL,
};

#define FILTER_OPTIONS                                       \
    { "tenant", required_argument, NULL, OPT_TENANT },       \
    { "type", required_argument, NULL, OPT_TYPE },           \
    { "reason", required_argument, NULL, OPT_REASON },       \
    { "since", required_argument, NULL, OPT_SINCE },         \
    { "job", required_argument, NULL, OPT_JOB },             \
    { "limit", required_argument, NULL, OPT_LIMIT },         \
    { "help", no_argument, NULL, 'h' }

static const struct option list_options[] = {
    FILTER_OPTIONS,
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct option change_options[] = {
    FILTER_OPTIONS,
    { "dry-run", no_argument, NULL, OPT_DRY_RUN },
    { "all", no_argument, NULL, OPT_ALL },
    { NULL, 0, NULL, 0 },
};

/* Check one option's value; prints the error naming the option. */
static bool check_value(const dlq_opts_t *o, const char *opt, const char *value)
{
    const char *name = mode_names[o->mode];
    char        module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1];
    jf_err_t    err = { 0 };
    jf_status_t st = JF_OK;

    if (strcmp(opt, "tenant") == 0) {
        st = jf_token_check(value, strlen(value), JF_TENANT_MAX, "tenant", &err);
    } else if (strcmp(opt, "type") == 0) {
        st = jf_type_split(value, module, action, &err);
    } else if (strcmp(opt, "job") == 0) {
        st = jf_job_id_check(value, &err);
    } else if (strcmp(opt, "reason") == 0) {
        bool known = false;
        for (const char *const *r = reasons; *r != NULL; r++)
            known = known || strcmp(*r, value) == 0;
        if (!known)
            st = jf_err_set(&err, JF_EINVAL, "'%.64s' is not one of failed, exhausted, "
                            "rejected, quarantined", value);
    }
    if (st != JF_OK) {
        jf_cli_error("dlq %s: --%s: %s", name, opt, jf_err_msg(&err));
        return false;
    }
    return true;
}

/* Parse argv into o. Returns JF_EXIT_OK, or the exit code to stop with
 * (-1 for a --help that was printed). */
static int parse_args(int argc, char **argv, dlq_opts_t *o)
{
    const char *name = mode_names[o->mode];
    jf_err_t    err = { 0 };
    int64_t     v;
    int         c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h",
                            o->mode == DLQ_LIST ? list_options : change_options, NULL)) != -1) {
        switch (c) {
        case OPT_TENANT:
            if (!check_value(o, "tenant", optarg))
                return JF_EXIT_USAGE;
            o->f.tenant = optarg;
            break;
        case OPT_TYPE:
            if (!check_value(o, "type", optarg))
                return JF_EXIT_USAGE;
            o->f.type = optarg;
            break;
        case OPT_REASON:
            if (!check_value(o, "reason", optarg))
                return JF_EXIT_USAGE;
            o->f.reason = optarg;
            break;
        case OPT_JOB:
            if (!check_value(o, "job", optarg))
                return JF_EXIT_USAGE;
            o->f.job = optarg;
            break;
        case OPT_SINCE:
            if (jf_time_parse_since(optarg, jf_clock_now_ms(), &o->f.since_ms, &err) != JF_OK) {
                jf_cli_error("dlq %s: --since: %s", name, jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->f.has_since = true;
            break;
        case OPT_LIMIT:
            if (jf_parse_int(optarg, &v, NULL) != JF_OK || v < 1) {
                jf_cli_error("dlq %s: --limit: '%.64s' is not a positive whole number",
                             name, optarg);
                return JF_EXIT_USAGE;
            }
            o->f.limit = (uint64_t)v;
            break;
        case OPT_JSON:    o->json = true; break;
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_ALL:     o->all = true; break;
        case 'h':         help(o->mode); return -1;
        default:
            jf_cli_error("dlq %s: see `jetfleet dlq %s --help`", name, name);
            return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("dlq %s: unexpected argument '%s'", name, argv[optind]);
        return JF_EXIT_USAGE;
    }
    if (o->mode != DLQ_LIST && !o->all && o->f.tenant == NULL && o->f.type == NULL &&
        o->f.reason == NULL && o->f.job == NULL && !o->f.has_since) {
        jf_cli_error("dlq %s: no filter given; pass --all to %s every dead letter, or narrow "
                     "it with --tenant, --type, --reason, --since or --job", name, name);
        return JF_EXIT_USAGE;
    }
    return JF_EXIT_OK;
}

/* ---- scanning ----------------------------------------------------------------------- */

static void entry_read(dlq_entry_t *e, const jf_stored_msg_t *m, uint64_t seq)
{
    const char *dead_at = jf_stored_msg_header(m, JF_HDR_DEAD_AT);
    const char *reason = jf_stored_msg_header(m, JF_HDR_FAILURE_REASON);
    int64_t     v;

    memset(e, 0, sizeof(*e));
    e->msg = m;
    e->seq = seq;
    e->parsed = jf_subject_parse(jf_stored_msg_subject(m), names->dlq_prefix, &e->where, NULL) == JF_OK;
    e->job_id = jf_stored_msg_header(m, JF_HDR_JOB_ID);
    e->reason = reason != NULL ? reason : "";
    e->dead_at_ms = jf_stored_msg_time_ns(m) / 1000000;
    if (dead_at != NULL && all_digits(dead_at) && jf_parse_int(dead_at, &v, NULL) == JF_OK)
        e->dead_at_ms = v;
}

static bool entry_matches(const dlq_filter_t *f, const dlq_entry_t *e)
{
    if (f->tenant != NULL && (!e->parsed || strcmp(f->tenant, e->where.tenant) != 0))
        return false;
    if (f->type != NULL && (!e->parsed || strcmp(f->type, e->where.type) != 0))
        return false;
    if (f->reason != NULL && strcmp(f->reason, e->reason) != 0)
        return false;
    if (f->job != NULL && (e->job_id == NULL || strcmp(f->job, e->job_id) != 0))
        return false;
    if (f->has_since && e->dead_at_ms < f->since_ms)
        return false;
    return true;
}

/* Called for each match. A status other than JF_OK stops the scan and is
 * returned from scan(); a failure that concerns one dead letter only is
 * counted by the visitor and returns JF_OK. */
typedef jf_status_t (*visit_fn)(jf_nats_t *nc, const dlq_entry_t *e, void *arg, jf_err_t *err);

/* Visit the dead letters that match f, oldest first, up to f->limit.
 * The range is the stream's at the start: letters added while scanning
 * (a replayed job that fails again) are not visited. */
static jf_status_t scan(jf_nats_t *nc, const dlq_filter_t *f, visit_fn fn, void *arg,
                        uint64_t *out_matched, jf_err_t *err)
{
    jf_stream_state_t ss;
    jf_stored_msg_t  *m = NULL;
    dlq_entry_t       e;
    uint64_t          matched = 0;
    jf_status_t       st;

    st = jf_js_stream_state(nc, names->dlq_stream, &ss, err);
    if (st == JF_ENOTFOUND)
        jf_err_set(err, st, "stream %s does not exist; run `jetfleet provision`", names->dlq_stream);
    if (st != JF_OK)
        goto out;
    for (uint64_t seq = ss.first_seq; ss.msgs > 0 && seq <= ss.last_seq; seq++) {
        if (f->limit != 0 && matched >= f->limit)
            break;
        st = jf_js_get_msg(nc, names->dlq_stream, seq, &m, err);
        if (st == JF_ENOTFOUND)
            continue;   /* deleted: replayed or purged earlier */
        if (st != JF_OK)
            goto out;
        entry_read(&e, m, seq);
        if (entry_matches(f, &e)) {
            matched++;
            st = fn(nc, &e, arg, err);
            if (st != JF_OK)
                goto out;
        }
        jf_stored_msg_destroy(m);
        m = NULL;
    }
    st = JF_OK;
out:
    jf_stored_msg_destroy(m);
    *out_matched = matched;
    return st;
}

/* ---- output helpers ---------------------------------------------------------------- */

static const char *format_ms(int64_t ms, char *buf, size_t size)
{
    time_t    t = (time_t)(ms / 1000);
    int       frac = (int)(ms % 1000);
    struct tm tm;
    char      day[32];

    if (frac < 0) {
        frac += 1000;
        t--;
    }
    if (gmtime_r(&t, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, size, "%" PRId64, ms);
        return buf;
    }
    snprintf(buf, size, "%s.%03dZ", day, frac);
    return buf;
}

/* A header value for a terminal: control characters become '?', and a
 * value longer than max ends in "...". NULL or "" shows as "-". */
static const char *shown(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = 0, len;

    if (s == NULL || *s == '\0')
        return "-";
    len = strlen(s);
    for (; *s != '\0' && n + 1 < size && n < max; s++)
        buf[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    buf[n] = '\0';
    if (len > max && max >= 3 && n >= 3)
        memcpy(buf + n - 3, "...", 3);
    return buf;
}

/* ---- dlq list -------------------------------------------------------------------- */

typedef struct list_ctx {
    bool json;
    bool header_done;
} list_ctx_t;

/* A JSON string for s; bytes that are not valid UTF-8 become '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    char   *copy;

    if (j != NULL)
        return j;
    copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p != '\0'; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static void add_jf_header(const char *name, const char *value, void *arg)
{
    json_t *headers = arg;

    if (strncasecmp(name, "Jf-", 3) == 0 && json_object_get(headers, name) == NULL)
        json_object_set_new(headers, name, json_text(value));
}

static jf_status_t list_json(const dlq_entry_t *e, jf_err_t *err)
{
    json_t *o = json_object(), *headers = json_object();
    char    when[48], *line = NULL;

    if (o == NULL || headers == NULL)
        goto nomem;
    json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(o, "subject", json_text(jf_stored_msg_subject(e->msg)));
    json_object_set_new(o, "size", json_integer((json_int_t)jf_stored_msg_len(e->msg)));
    if (e->parsed) {
        json_object_set_new(o, "tenant", json_string(e->where.tenant));
        json_object_set_new(o, "type", json_string(e->where.type));
    }
    json_object_set_new(o, "dead_at", json_string(format_ms(e->dead_at_ms, when, sizeof(when))));
    jf_stored_msg_headers(e->msg, add_jf_header, headers);
    json_object_set_new(o, "headers", headers);
    headers = NULL;
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line == NULL)
        goto nomem;
    puts(line);
    free(line);
    json_decref(o);
    return JF_OK;
nomem:
    json_decref(headers);
    json_decref(o);
    return jf_err_set(err, JF_ENOMEM, "out of memory");
}

static jf_status_t list_one(jf_nats_t *nc, const dlq_entry_t *e, void *arg, jf_err_t *err)
{
    list_ctx_t *c = arg;
    char        when[48], job[JF_JOB_ID_MAX + 1], reason[32], attempts[16], last[ERROR_SHOWN + 1];
    const char *type = e->parsed ? e->where.type : "-";
    const char *tenant = e->parsed ? e->where.tenant : "-";

    (void)nc;
    if (c->json)
        return list_json(e, err);
    if (!c->header_done) {
        printf("%-8s %-24s %-16s %-24s %-24s %-11s %-8s %s\n", "SEQ", "DEAD-AT", "TENANT",
               "TYPE", "JOB", "REASON", "ATTEMPTS", "LAST-ERROR");
        c->header_done = true;
    }
    printf("%-8" PRIu64 " %-24s %-16s %-24s %-24s %-11s %-8s %s\n", e->seq,
           format_ms(e->dead_at_ms, when, sizeof(when)), tenant, type,
           shown(e->job_id, JF_JOB_ID_MAX, job, sizeof(job)),
           shown(e->reason, sizeof(reason) - 1, reason, sizeof(reason)),
           shown(jf_stored_msg_header(e->msg, JF_HDR_ATTEMPTS), sizeof(attempts) - 1, attempts,
                 sizeof(attempts)),
           shown(jf_stored_msg_header(e->msg, JF_HDR_LAST_ERROR), ERROR_SHOWN, last, sizeof(last)));
    return JF_OK;
}

/* ---- dlq replay and dlq purge --------------------------------------------------------- */

typedef struct change_ctx {
    const dlq_opts_t  *o;
    const jf_config_t *cfg;
    jf_ledger_t       *ledger;     /* replay: bound when first needed */
    uint64_t           done, failed;
} change_ctx_t;

/* Report that one dead letter could not be handled; the scan goes on. */
static jf_status_t failed(change_ctx_t *c, const dlq_entry_t *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static jf_status_t failed(change_ctx_t *c, const dlq_entry_t *e, const char *fmt, ...)
{
    char    why[600], job[JF_JOB_ID_MAX + 1];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    jf_cli_error("dlq %s: dlq seq %" PRIu64 " (job %s): %s", mode_names[c->o->mode], e->seq,
                 shown(e->job_id, JF_JOB_ID_MAX, job, sizeof(job)), why);
    c->failed++;
    return JF_OK;
}

/* The ledger record after a replay: the old one (if any) with state
 * replayed, attempts 0, one more replay and no last error. Borrows from
 * old and e; nothing in it is to be freed. */
static jf_job_record_t replayed_record(const jf_job_record_t *old, const dlq_entry_t *e)
{
    jf_job_record_t rec = JETFLEET__V1__JOB_RECORD__INIT;

    if (old != NULL)
        rec = *old;
    rec.job_id = (char *)e->job_id;
    rec.tenant = (char *)e->where.tenant;
    rec.type = (char *)e->where.type;
    rec.state = JETFLEET__V1__JOB_STATE__JOB_STATE_REPLAYED;
    rec.attempts = 0;
    rec.replays = (old != NULL ? old->replays : 0) + 1;
    rec.last_error = "";
    rec.last_error_code = "";
    return rec;
}

static jf_status_t replay_one(jf_nats_t *nc, const dlq_entry_t *e, void *arg, jf_err_t *err)
{
    change_ctx_t    *c = arg;
    const char      *orig = jf_stored_msg_header(e->msg, JF_HDR_ORIGINAL_SUBJECT);
    const char      *drop[16];
    jf_subject_t     os;
    jf_job_record_t *old = NULL, rec;
    jf_header_t      add;
    jf_copy_opts_t   copy;
    jf_pub_ack_t     ack;
    jf_err_t         e2 = { 0 };
    jf_status_t      st;
    char             new_id[JF_JOB_ID_MAX + 1], key[JF_LEDGER_KEY_MAX];
    size_t           n = 0;

    if (!e->parsed || strcmp(e->where.tenant, "_invalid") == 0)
        return failed(c, e, "cannot replay: on %s, so its job subject did not parse; "
                      "republish it by hand if it is worth saving",
                      jf_stored_msg_subject(e->msg));
    if (e->job_id == NULL)
        return failed(c, e, "cannot replay a job without a valid id: no %s header (a job "
                      "rejected for its Nats-Msg-Id has none); purge it instead", JF_HDR_JOB_ID);
    if (jf_job_id_check(e->job_id, &e2) != JF_OK)
        return failed(c, e, "cannot replay a job without a valid id: %s: %s", JF_HDR_JOB_ID,
                      jf_err_msg(&e2));
    if (orig == NULL || *orig == '\0')
        return failed(c, e, "cannot replay: no %s header, so there is nowhere to publish it",
                      JF_HDR_ORIGINAL_SUBJECT);
    /* Never publish anywhere but the job subject this dead letter belongs
     * to: a copy on a $JS.API or dlq.> subject would not be a job. */
    if (jf_subject_parse(orig, c->cfg->names.jobs_prefix, &os, NULL) != JF_OK ||
        strcmp(os.tenant, e->where.tenant) != 0 || strcmp(os.type, e->where.type) != 0)
        return failed(c, e, "cannot replay: %s '%.200s' is not %s.%s.%s", JF_HDR_ORIGINAL_SUBJECT,
                      orig, c->cfg->names.jobs_prefix, e->where.tenant, e->where.type);
    /* Derived from the dead letter, not the clock: replaying it again after
     * a failure between publish and delete is dropped by JOBS's duplicate
     * window instead of running the job twice. */
    snprintf(new_id, sizeof(new_id), "%.*s~r%" PRIu64, REPLAY_ID_KEEP, e->job_id, e->seq);
    if (jf_job_id_check(new_id, &e2) != JF_OK)
        return failed(c, e, "cannot replay: new id: %s", jf_err_msg(&e2));

    if (c->o->dry_run) {
        printf("would replay %s as %s (dlq seq %" PRIu64 " -> %s)\n", e->job_id, new_id, e->seq,
               orig);
        c->done++;
        return JF_OK;
    }

    /* Bound on the first replay, so that a missing DLQ stream is reported
     * as such; a missing bucket stops the scan. */
    if (c->ledger == NULL && (st = jf_ledger_open(&c->ledger, nc, names->ledger_bucket, err)) != JF_OK)
        return st;

    /* The ledger is reset before the copy is published, not after: a
     * worker that takes the copy at once and still reads "dead" would ack
     * it as a duplicate and the job would be lost. If the publish fails,
     * the old record is put back. */
    st = jf_ledger_key(key, sizeof(key), e->where.tenant, e->where.type, e->job_id, &e2);
    if (st == JF_OK) {
        st = jf_ledger_get(c->ledger, key, &old, &e2);
        if (st == JF_ENOTFOUND)
            st = JF_OK;
    }
    if (st == JF_OK && old != NULL &&
        old->state == JETFLEET__V1__JOB_STATE__JOB_STATE_SUCCEEDED) {
        /* An earlier replay of this letter ran and succeeded (its delete
         * failed): publishing again would be dropped as a duplicate, and
         * resetting the record would erase the success. Just clean up. */
        jf_job_record_free(old);
        st = jf_js_delete_msg(nc, names->dlq_stream, e->seq, &e2);
        if (st != JF_OK && st != JF_ENOTFOUND)
            return failed(c, e, "already succeeded after an earlier replay, but the dead "
                          "letter could not be deleted: %s", jf_err_msg(&e2));
        printf("not replayed %s: it already succeeded after an earlier replay; dead letter "
               "%" PRIu64 " removed\n", e->job_id, e->seq);
        c->done++;
        return JF_OK;
    }
    if (st == JF_OK) {
        rec = replayed_record(old, e);
        st = jf_ledger_put(c->ledger, key, &rec, &e2);
    }
    if (st != JF_OK) {
        jf_job_record_free(old);
        return failed(c, e, "not replayed: ledger: %s", jf_err_msg(&e2));
    }

    for (const char *const *d = jf_deadletter_headers; *d != NULL && n + 2 < 16; d++)
        drop[n++] = *d;
    drop[n++] = JF_HDR_JOB_ID;   /* added again below */
    drop[n] = NULL;
    add = (jf_header_t){ JF_HDR_JOB_ID, e->job_id };
    copy = (jf_copy_opts_t){ .subject = orig, .msg_id = new_id, .add = &add, .nadd = 1,
                             .drop = drop };
    st = jf_stored_msg_copy(nc, e->msg, &copy, &ack, &e2);
    if (st != JF_OK) {
        jf_err_t    e3 = { 0 };
        jf_status_t back = old != NULL ? jf_ledger_put(c->ledger, key, old, &e3) : JF_OK;
        jf_job_record_free(old);
        if (back != JF_OK)
            return failed(c, e, "not replayed: %s; and the ledger record %s could not be "
                          "put back (it says replayed): %s", jf_err_msg(&e2), key,
                          jf_err_msg(&e3));
        return failed(c, e, "not replayed: %s", jf_err_msg(&e2));
    }
    jf_job_record_free(old);

    st = jf_js_delete_msg(nc, names->dlq_stream, e->seq, &e2);
    if (st != JF_OK && st != JF_ENOTFOUND)   /* not found: someone else deleted it */
        return failed(c, e, "replayed as %s (%s seq %" PRIu64 ") but the dead letter could "
                      "not be deleted: %s; purge it with --job", new_id, ack.stream, ack.seq,
                      jf_err_msg(&e2));
    printf("replayed %s as %s (dlq seq %" PRIu64 " -> %s seq %" PRIu64 ")%s\n", e->job_id,
           new_id, e->seq, ack.stream, ack.seq,
           ack.duplicate ? " (the stream already had this id)" : "");
    c->done++;
    return JF_OK;
}

static jf_status_t purge_one(jf_nats_t *nc, const dlq_entry_t *e, void *arg, jf_err_t *err)
{
    change_ctx_t *c = arg;
    char          job[JF_JOB_ID_MAX + 1];
    const char   *what = shown(e->job_id, JF_JOB_ID_MAX, job, sizeof(job));
    const char   *where = jf_stored_msg_subject(e->msg);
    jf_err_t      e2 = { 0 };
    jf_status_t   st;

    (void)err;
    if (c->o->dry_run) {
        printf("would purge dlq seq %" PRIu64 " (%s, job %s)\n", e->seq, where, what);
        c->done++;
        return JF_OK;
    }
    st = jf_js_delete_msg(nc, names->dlq_stream, e->seq, &e2);
    if (st != JF_OK && st != JF_ENOTFOUND)
        return failed(c, e, "not purged: %s", jf_err_msg(&e2));
    printf("purged dlq seq %" PRIu64 " (%s, job %s)%s\n", e->seq, where, what,
           st == JF_ENOTFOUND ? ": already gone" : "");
    c->done++;
    return JF_OK;
}

/* ---- the commands ------------------------------------------------------------------- */

static int dlq_main(dlq_mode_t mode, int argc, char **argv)
{
    dlq_opts_t   o = { .mode = mode };
    const char  *name = mode_names[mode];
    jf_config_t  cfg;
    bool         cfg_loaded = false;
    jf_nats_t   *nc = NULL;
    jf_err_t     err = { 0 };
    list_ctx_t   lc = { 0 };
    change_ctx_t cc = { .o = &o };
    uint64_t     matched = 0;
    jf_status_t  st;
    char         client[32];
    int          rc;

    rc = parse_args(argc, argv, &o);
    if (rc != JF_EXIT_OK)
        return rc < 0 ? JF_EXIT_OK : rc;
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        return rc;
    cfg_loaded = true;
    cc.cfg = &cfg;
    names = &cfg.names;
    lc.json = o.json;
    snprintf(client, sizeof(client), "jetfleet-dlq-%s", name);
    if ((rc = jf_cli_connect(&cfg, client, &nc)) != JF_EXIT_OK)
        goto out;

    if (mode == DLQ_LIST)
        st = scan(nc, &o.f, list_one, &lc, &matched, &err);
    else
        st = scan(nc, &o.f, mode == DLQ_REPLAY ? replay_one : purge_one, &cc, &matched, &err);
    fflush(stdout);
    if (st != JF_OK) {
        jf_cli_error("dlq %s: %s", name, jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        if (mode == DLQ_LIST)
            goto out;
    }

    switch (mode) {
    case DLQ_LIST:
        fprintf(o.json ? stderr : stdout, "%" PRIu64 " dead letter%s\n", matched,
                matched == 1 ? "" : "s");
        break;
    case DLQ_REPLAY:
        if (o.dry_run)
            printf("would replay %" PRIu64 " dead letter%s; %" PRIu64 " cannot be replayed\n",
                   cc.done, cc.done == 1 ? "" : "s", cc.failed);
        else
            printf("replayed %" PRIu64 " dead letter%s; %" PRIu64 " failed\n",
                   cc.done, cc.done == 1 ? "" : "s", cc.failed);
        break;
    case DLQ_PURGE:
        printf("%s %" PRIu64 " dead letter%s%s\n", o.dry_run ? "would purge" : "purged",
               cc.done, cc.done == 1 ? "" : "s",
               cc.failed > 0 ? "; some could not be deleted" : "");
        break;
    }
    if (st == JF_OK)
        rc = cc.failed > 0 ? JF_EXIT_FAIL : JF_EXIT_OK;
out:
    jf_ledger_close(cc.ledger);
    jf_nats_close(nc, 2000);
    if (cfg_loaded)
        jf_config_free(&cfg);
    return rc;
}

int jf_cmd_dlq_list(int argc, char **argv)
{
    return dlq_main(DLQ_LIST, argc, argv);
}

int jf_cmd_dlq_replay(int argc, char **argv)
{
    return dlq_main(DLQ_REPLAY, argc, argv);
}

int jf_cmd_dlq_purge(int argc, char **argv)
{
    return dlq_main(DLQ_PURGE, argc, argv);
}
