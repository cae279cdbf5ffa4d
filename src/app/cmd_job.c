/*
 * cmd_job.c - `jetfleet job show`: one job as the system remembers it
 * (docs/reliability.md, docs/telemetry.md).
 *
 * Two sources: the job's JF_LEDGER record (state, attempts, worker, times,
 * last error; kept for JF_LEDGER_TTL) and its lifecycle events in AUDIT
 * (kept for JF_AUDIT_MAX_AGE). The ledger key needs the job type; when
 * --type is not given, the type is taken from the job's events. Either
 * source alone is enough to show something; a job neither knows is "not
 * found" (exit 4).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/audit.h"
#include "app/cli.h"
#include "app/worker/inflight.h"
#include "core/ledger.h"
#include "core/pbjson.h"
#include "core/timefmt.h"
#include "shared/ids.h"

#define MAX_TYPES     8

typedef struct show_opts {
    const char *id;
    const char *tenant;
    const char *type;
    bool        json;
} show_opts_t;

/* The job's events, rendered as audit tail would, oldest first. */
typedef struct history {
    bool        json;
    char      **lines;
    size_t      n, cap;
    char       *types[MAX_TYPES];   /* distinct types seen, in order */
    size_t      ntypes;
    jf_status_t st;                 /* first failure (out of memory) */
    jf_err_t    err;
} history_t;

static void help(void)
{
    printf("usage: jetfleet job show <id> --tenant T [--type M.A] [--json]\n"
           "\n"
           "Show one job: its JF_LEDGER record (state, attempts, worker, first and last\n"
           "start, finish, last error, replays), what the workers holding it now say (a\n"
           "running job has no record until it ends), and every lifecycle event AUDIT\n"
           "holds for it, oldest first, in the format of `jetfleet audit tail`.\n"
           "\n"
           "options:\n"
           "  --tenant T   the job's tenant (required)\n"
           "  --type M.A   the job's type module.action; without it, the type is taken\n"
           "               from the job's events\n"
           "  --json       one JSON object: job_id, tenant, type, \"record\" (the ledger\n"
           "               record by proto field name, or null), \"events\" (as\n"
           "               `audit tail --json` prints them) and \"now\" (one object per\n"
           "               worker holding the job: worker, pool, phase, attempt, ...)\n"
           "\n"
           "The ledger record alone: nats kv get JF_LEDGER <tenant>.<module>.<action>.<id>\n"
           "Exit status 0 when the job was found, 2 for bad options (or a job id used by\n"
           "several types without --type), 4 when neither the ledger nor AUDIT knows it.\n");
}

enum {
    OPT_TENANT = 256,
    OPT_TYPE,
    OPT_JSON,
};

static const struct option show_options[] = {
    { "tenant", required_argument, NULL, OPT_TENANT },
    { "type", required_argument, NULL, OPT_TYPE },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Returns JF_EXIT_OK, or the exit code to stop with (-1 after --help). */
static int parse_args(int argc, char **argv, show_opts_t *o)
{
    char     module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1];
    jf_err_t err = { 0 };
    int      c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", show_options, NULL)) != -1) {
        switch (c) {
        case OPT_TENANT:
            if (jf_token_check(optarg, strlen(optarg), JF_TENANT_MAX, "tenant", &err) != JF_OK) {
                jf_cli_error("job show: --tenant: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->tenant = optarg;
            break;
        case OPT_TYPE:
            if (jf_type_split(optarg, module, action, &err) != JF_OK) {
                jf_cli_error("job show: --type: %s", jf_err_msg(&err));
                return JF_EXIT_USAGE;
            }
            o->type = optarg;
            break;
        case OPT_JSON: o->json = true; break;
        case 'h':      help(); return -1;
        default:
            jf_cli_error("job show: see `jetfleet job show --help`");
            return JF_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        jf_cli_error("job show: the job id is missing; see `jetfleet job show --help`");
        return JF_EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        jf_cli_error("job show: unexpected argument '%s'", argv[optind + 1]);
        return JF_EXIT_USAGE;
    }
    o->id = argv[optind];
    if (jf_job_id_check(o->id, &err) != JF_OK) {
        jf_cli_error("job show: job id: %s", jf_err_msg(&err));
        return JF_EXIT_USAGE;
    }
    if (o->tenant == NULL) {
        jf_cli_error("job show: --tenant is required");
        return JF_EXIT_USAGE;
    }
    return JF_EXIT_OK;
}

/* ---- the history --------------------------------------------------------------------- */

static bool collect(const jf_audit_event_t *e, void *arg)
{
    history_t *h = arg;
    char      *line = NULL;
    jf_err_t   err = { 0 };
    bool       seen = false;

    if ((h->json ? jf_audit_event_json(e, &line, &err) : jf_audit_event_line(e, &line, &err))
        != JF_OK) {
        fprintf(stderr, "jetfleet: warning: AUDIT seq %" PRIu64 " on %s: %s; skipped\n",
                e->seq, e->subject, jf_err_msg(&err));
        return true;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        char **grown = reallocarray(h->lines, cap, sizeof(*grown));
        if (grown == NULL) {
            free(line);
            h->st = jf_err_set(&h->err, JF_ENOMEM, "out of memory");
            return false;
        }
        h->lines = grown;
        h->cap = cap;
    }
    h->lines[h->n++] = line;
    for (size_t i = 0; i < h->ntypes; i++)
        seen = seen || strcmp(h->types[i], e->ev->type) == 0;
    if (!seen && h->ntypes < MAX_TYPES && e->ev->type[0] != '\0')
        h->types[h->ntypes++] = strdup(e->ev->type);   /* NULL on ENOMEM: ignored below */
    return true;
}

static void history_free(history_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->lines[i]);
    free(h->lines);
    for (size_t i = 0; i < h->ntypes; i++)
        free(h->types[i]);
}

/* ---- the workers that hold it now --------------------------------------------------- */

/* How long the workers get to answer. */
#define LIVE_WAIT_MS 400

static bool collect_live(const char *data, size_t len, void *arg)
{
    json_t *o = json_loadb(data, len, 0, NULL);

    if (json_is_object(o))
        json_array_append(arg, o);
    json_decref(o);
    return true;
}

/* ---- printing ------------------------------------------------------------------------- */

static const char *when(int64_t ms, char *buf, size_t size)
{
    return ms > 0 ? jf_time_format_ms(ms, buf, size) : "-";
}

static void print_live(json_t *live)
{
    char   t1[48], t2[48];
    size_t i;
    json_t *a;

    if (json_array_size(live) == 0) {
        printf("now:            no worker holds it\n");
        return;
    }
    json_array_foreach(live, i, a) {
        json_int_t started = json_integer_value(json_object_get(a, "started_ms"));
        printf("now:            %s on worker %s (pool %s), attempt %lld, delivery %lld, "
               "received %s%s%s\n",
               json_string_value(json_object_get(a, "phase")),
               json_string_value(json_object_get(a, "worker")),
               json_string_value(json_object_get(a, "pool")),
               (long long)json_integer_value(json_object_get(a, "attempt")),
               (long long)json_integer_value(json_object_get(a, "delivery")),
               when(json_integer_value(json_object_get(a, "received_ms")), t1, sizeof(t1)),
               started > 0 ? ", started " : "", started > 0 ? when(started, t2, sizeof(t2)) : "");
    }
}

static void print_text(const show_opts_t *o, const char *type, const jf_job_record_t *rec,
                       const history_t *h, json_t *live)
{
    char t1[48];

    printf("job:            %s\n", o->id);
    printf("tenant:         %s\n", o->tenant);
    printf("type:           %s\n", type);
    if (rec == NULL) {
        printf("ledger:         no record (no run has ended yet, or older than JF_LEDGER_TTL)\n");
    } else {
        printf("state:          %s\n", jf_job_state_name(rec->state));
        printf("attempts:       %" PRIu32 "\n", rec->attempts);
        printf("worker:         %s\n", rec->worker[0] ? rec->worker : "-");
        printf("first started:  %s\n", when(rec->first_started_ms, t1, sizeof(t1)));
        printf("last started:   %s\n", when(rec->last_started_ms, t1, sizeof(t1)));
        printf("finished:       %s\n", when(rec->finished_ms, t1, sizeof(t1)));
        if (rec->last_error[0] != '\0' || rec->last_error_code[0] != '\0')
            printf("last error:     %s: %s\n", rec->last_error_code[0] ? rec->last_error_code : "-",
                   rec->last_error[0] ? rec->last_error : "-");
        else
            printf("last error:     -\n");
        printf("replays:        %" PRIu32 "\n", rec->replays);
        printf("stream seq:     %" PRIu64 "\n", rec->stream_seq);
    }
    print_live(live);
    printf("\nevents (%zu):\n", h->n);
    for (size_t i = 0; i < h->n; i++)
        printf("%s\n", h->lines[i]);
    if (h->n == 0)
        printf("(none in AUDIT)\n");
}

static jf_status_t print_json(const show_opts_t *o, const char *type,
                              const jf_job_record_t *rec, const history_t *h, json_t *live,
                              jf_err_t *err)
{
    json_t      *top = json_object(), *events = json_array(), *r = json_null();
    char        *text = NULL;
    json_error_t jerr;
    jf_status_t  st = JF_OK;

    if (rec != NULL) {
        st = jf_pbjson_encode(&rec->base, JF_PBJSON_ORIG_NAMES, &text, NULL, err);
        if (st != JF_OK)
            goto out;
        json_decref(r);
        r = json_loads(text, 0, &jerr);
        free(text);
        text = NULL;
    }
    for (size_t i = 0; i < h->n; i++)
        json_array_append_new(events, json_loads(h->lines[i], 0, &jerr));
    if (top == NULL || events == NULL || r == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(top, "job_id", json_string(o->id));
    json_object_set_new(top, "tenant", json_string(o->tenant));
    json_object_set_new(top, "type", json_string(type));
    json_object_set(top, "record", r);
    json_object_set(top, "events", events);
    json_object_set(top, "now", live);
    text = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    puts(text);
out:
    free(text);
    json_decref(r);
    json_decref(events);
    json_decref(top);
    return st;
}

/* ---- the command ----------------------------------------------------------------------- */

int jf_cmd_job_show(int argc, char **argv)
{
    show_opts_t      o = { 0 };
    history_t        h = { 0 };
    jf_config_t      cfg;
    bool             cfg_loaded = false;
    jf_nats_t       *nc = NULL;
    jf_ledger_t     *ledger = NULL;
    jf_job_record_t *rec = NULL;
    jf_err_t         err = { 0 };
    const char      *type;
    char             key[JF_LEDGER_KEY_MAX], subject[256];
    json_t          *live = NULL;
    jf_status_t      st;
    int              rc;

    rc = parse_args(argc, argv, &o);
    if (rc != JF_EXIT_OK)
        return rc < 0 ? JF_EXIT_OK : rc;
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        return rc;
    cfg_loaded = true;
    live = json_array();
    jf_audit_use(&cfg.names);
    if ((rc = jf_cli_connect(&cfg, "jetfleet-job-show", &nc)) != JF_EXIT_OK)
        goto out;

    /* The events first: without --type they tell the type. */
    h.json = o.json;
    st = jf_audit_scan(nc, o.tenant, o.type, o.id, collect, &h, &err);
    if (st == JF_OK && h.st != JF_OK) {
        st = h.st;
        err = h.err;
    }
    if (st != JF_OK) {
        jf_cli_error("job show: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    /* A running job may have no record and no event yet: ask the workers. */
    jf_inflight_subject(subject, sizeof(subject), cfg.names.jobs_stream, o.tenant);
    st = jf_nats_gather(nc, subject, o.id, strlen(o.id), LIVE_WAIT_MS, collect_live, live, &err);
    if (st != JF_OK) {
        jf_cli_error("job show: asking the workers: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    type = o.type;
    if (type == NULL && h.ntypes == 0 && json_array_size(live) > 0)
        type = json_string_value(json_object_get(json_array_get(live, 0), "type"));
    if (type == NULL && h.ntypes > 1) {
        jf_cli_error("job show: tenant %s has jobs with id %s of %zu types (%s, %s%s); pass "
                     "--type", o.tenant, o.id, h.ntypes, h.types[0] ? h.types[0] : "?",
                     h.types[1] ? h.types[1] : "?", h.ntypes > 2 ? ", ..." : "");
        rc = JF_EXIT_USAGE;
        goto out;
    }
    if (type == NULL && h.ntypes == 1)
        type = h.types[0];
    if (type == NULL) {
        jf_cli_error("job show: no job %s for tenant %s (no events in AUDIT, no worker holds "
                     "it; with --type the ledger is looked up as well)", o.id, o.tenant);
        rc = JF_EXIT_NOTFOUND;
        goto out;
    }

    st = jf_ledger_open(&ledger, nc, cfg.names.ledger_bucket, &err);
    if (st == JF_OK)
        st = jf_ledger_key(key, sizeof(key), o.tenant, type, o.id, &err);
    if (st == JF_OK)
        st = jf_ledger_get(ledger, key, &rec, &err);
    if (st == JF_ENOTFOUND) {
        rec = NULL;   /* no bucket, or no record */
    } else if (st != JF_OK) {
        jf_cli_error("job show: ledger: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    if (rec == NULL && h.n == 0 && json_array_size(live) == 0) {
        jf_cli_error("job show: no job %s for tenant %s (type %s): no ledger record, no "
                     "events, and no worker holds it", o.id, o.tenant, type);
        rc = JF_EXIT_NOTFOUND;
        goto out;
    }

    if (o.json) {
        st = print_json(&o, type, rec, &h, live, &err);
        if (st != JF_OK) {
            jf_cli_error("job show: %s", jf_err_msg(&err));
            rc = jf_cli_exit_code(st);
            goto out;
        }
    } else {
        print_text(&o, type, rec, &h, live);
    }
    rc = JF_EXIT_OK;
out:
    fflush(stdout);
    jf_job_record_free(rec);
    jf_ledger_close(ledger);
    history_free(&h);
    json_decref(live);
    jf_nats_close(nc, 2000);
    if (cfg_loaded)
        jf_config_free(&cfg);
    return rc;
}
