/*
 * cmd_lag.c - `jetfleet lag`: a pool's backlog as KEDA's nats-jetstream
 * scaler computes it (docs/deployment.md).
 *
 * The lag of a consumer is num_pending (not yet delivered) plus
 * num_ack_pending (delivered, not yet acked). KEDA divides it by the
 * trigger's lagThreshold to choose the replica count, so this command is
 * how an operator checks what the autoscaler sees.
 *
 * Two sources, one answer:
 *   - by default the JetStream API (CONSUMER.INFO), over a normal client
 *     connection with the JF_* settings;
 *   - with --monitor, the server's HTTP monitoring endpoint, read the way
 *     KEDA reads it: GET <endpoint>/jsz?acc=<account>&consumers=true&config=true,
 *     then account_details[name=account].stream_detail[name=stream]
 *     .consumer_detail[name=consumer]. This path needs no NATS credentials
 *     and also reports the consumer's leader (cluster.leader, falling back
 *     to the stream's).
 *
 * A missing stream, consumer or account is exit 4 with a message naming
 * it, never a lag of zero: an autoscaler fed a zero would scale to nothing.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "app/cli.h"
#include "shared/ids.h"
#include "core/jsadmin.h"

#define NAME_MAX_LEN       255        /* JetStream's limit for stream and consumer names */
#define MONITOR_TIMEOUT_MS 5000L
#define MONITOR_BODY_MAX   (64L * 1024 * 1024)
#define DEFAULT_ACCOUNT    "$G"       /* KEDA's default, the server's global account */

typedef struct lag_opts {
    const char *stream;     /* NULL: JF_STREAM */
    const char *consumer;   /* NULL: JF_POOL */
    const char *monitor;    /* NULL: the JetStream API */
    const char *account;
    bool        json;
} lag_opts_t;

/* One consumer's lag. leader is "" when unknown (always, for the API). */
typedef struct lag_result {
    uint64_t num_pending;
    uint64_t num_ack_pending;
    char     leader[128];
} lag_result_t;

/* ---- help and options ---------------------------------------------------------- */

static void help(void)
{
    printf("usage: jetfleet lag [--stream S] [--consumer C] [--json]\n"
           "                    [--monitor URL [--account A]]\n"
           "\n"
           "Print a pool's lag: num_pending + num_ack_pending of its durable consumer,\n"
           "the number KEDA's nats-jetstream scaler divides by lagThreshold.\n"
           "\n"
           "  stream JOBS consumer default lag 42 (pending 40, ack pending 2)\n"
           "\n"
           "options:\n"
           "  --stream S       the stream (default JF_STREAM, JOBS)\n"
           "  --consumer C     the consumer, that is the pool (default JF_POOL, default)\n"
           "  --monitor URL    read the server's monitoring endpoint instead of the\n"
           "                   JetStream API, exactly as KEDA does:\n"
           "                   URL/jsz?acc=A&consumers=true&config=true. URL is\n"
           "                   http://host:8222, https://host:8222 or host:8222 (http);\n"
           "                   the consumer's leader is reported too\n"
           "  --account A      with --monitor: the account (default $G, KEDA's default)\n"
           "  --json           one JSON object: stream, consumer, lag, num_pending,\n"
           "                   num_ack_pending, source (\"jetstream\" or \"monitor\"),\n"
           "                   and with --monitor account and leader\n"
           "\n"
           "Exit status 0 with the lag printed, 2 for bad options or configuration, 3\n"
           "when NATS (or the monitoring endpoint) does not answer, 4 when the stream,\n"
           "the consumer or the account does not exist.\n");
}

enum {
    OPT_STREAM = 256,
    OPT_CONSUMER,
    OPT_MONITOR,
    OPT_ACCOUNT,
    OPT_JSON,
};

static const struct option lag_options[] = {
    { "stream", required_argument, NULL, OPT_STREAM },
    { "consumer", required_argument, NULL, OPT_CONSUMER },
    { "monitor", required_argument, NULL, OPT_MONITOR },
    { "account", required_argument, NULL, OPT_ACCOUNT },
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* Returns JF_EXIT_OK, or the exit code to stop with (-1 after --help). */
static int parse_args(int argc, char **argv, lag_opts_t *o)
{
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lag_options, NULL)) != -1) {
        switch (c) {
        case OPT_STREAM:   o->stream = optarg; break;
        case OPT_CONSUMER: o->consumer = optarg; break;
        case OPT_MONITOR:  o->monitor = optarg; break;
        case OPT_ACCOUNT:  o->account = optarg; break;
        case OPT_JSON:     o->json = true; break;
        case 'h':          help(); return -1;
        default:
            jf_cli_error("lag: see `jetfleet lag --help`");
            return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("lag: unexpected argument '%s'", argv[optind]);
        return JF_EXIT_USAGE;
    }
    if (o->stream != NULL && !jf_js_name_ok(o->stream, NAME_MAX_LEN)) {
        jf_cli_error("lag: --stream: '%.64s' is not a stream name (1-255 characters, no "
                     "spaces, '.', '*', '>', '/' or '\\')", o->stream);
        return JF_EXIT_USAGE;
    }
    if (o->consumer != NULL && !jf_js_name_ok(o->consumer, NAME_MAX_LEN)) {
        jf_cli_error("lag: --consumer: '%.64s' is not a consumer name (1-255 characters, no "
                     "spaces, '.', '*', '>', '/' or '\\')", o->consumer);
        return JF_EXIT_USAGE;
    }
    if (o->account != NULL && o->monitor == NULL) {
        jf_cli_error("lag: --account needs --monitor (the JetStream API answers for the "
                     "account you connect as)");
        return JF_EXIT_USAGE;
    }
    if (o->account != NULL && !jf_js_name_ok(o->account, NAME_MAX_LEN)) {
        jf_cli_error("lag: --account: '%.64s' is not an account name", o->account);
        return JF_EXIT_USAGE;
    }
    if (o->monitor != NULL && (o->monitor[0] == '\0' || strpbrk(o->monitor, " \t\r\n?#"))) {
        jf_cli_error("lag: --monitor: '%.64s' is not an endpoint; give http://host:port, "
                     "https://host:port or host:port", o->monitor);
        return JF_EXIT_USAGE;
    }
    return JF_EXIT_OK;
}

/* ---- from the JetStream API --------------------------------------------------------- */

/* The lag of stream/consumer through CONSUMER.INFO. A missing consumer is
 * told apart from a missing stream with one STREAM.INFO. */
static jf_status_t lag_from_api(jf_nats_t *nc, const char *stream, const char *consumer,
                                lag_result_t *out, jf_err_t *err)
{
    jf_consumer_state_t cs;
    jf_stream_state_t   ss;
    jf_err_t            serr = { 0 };
    jf_status_t         st;

    st = jf_js_consumer_state(nc, stream, consumer, &cs, err);
    if (st == JF_ENOTFOUND) {
        if (jf_js_stream_state(nc, stream, &ss, &serr) == JF_ENOTFOUND)
            return jf_err_set(err, JF_ENOTFOUND, "stream %s does not exist; run `jetfleet "
                              "provision` or check JF_STREAM / --stream", stream);
        return jf_err_set(err, JF_ENOTFOUND, "consumer %s does not exist on stream %s; run "
                          "`jetfleet provision` with JF_POOL=%s or check --consumer",
                          consumer, stream, consumer);
    }
    if (st != JF_OK)
        return st;
    out->num_pending = cs.num_pending;
    out->num_ack_pending = cs.num_ack_pending > 0 ? (uint64_t)cs.num_ack_pending : 0;
    out->leader[0] = '\0';
    return JF_OK;
}

/* ---- from the monitoring endpoint ------------------------------------------------------ */

typedef struct body {
    char  *p;
    size_t len;
} body_t;

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    body_t *b = arg;
    size_t  add = size * n;
    char   *p;

    if (b->len + add > (size_t)MONITOR_BODY_MAX)
        return 0;   /* aborts the transfer: CURLE_WRITE_ERROR */
    p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* The element of array whose "name" (or, for streams, "config"."name")
 * equals name; borrowed. */
static json_t *find_named(json_t *array, const char *name)
{
    size_t  i;
    json_t *el;

    json_array_foreach(array, i, el) {
        const char *n = json_string_value(json_object_get(el, "name"));
        if (n == NULL)
            n = json_string_value(json_object_get(json_object_get(el, "config"), "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return el;
    }
    return NULL;
}

static bool get_count(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL) {
        *out = 0;   /* the server omits zero counts in some versions */
        return true;
    }
    if (!json_is_number(v) || json_number_value(v) < 0 ||
        json_number_value(v) > 9007199254740992.0)   /* 2^53 */
        return false;
    *out = (uint64_t)json_number_value(v);
    return true;
}

/* Walk the /jsz answer down to the consumer, as KEDA does. */
static jf_status_t parse_jsz(const char *text, const char *url, const char *account,
                             const char *stream, const char *consumer, lag_result_t *out,
                             jf_err_t *err)
{
    json_error_t jerr;
    /* /jsz carries unsigned 64-bit limits (reserved_memory is 2^64-1 when
     * unset) that jansson's signed integers refuse; reals take them. Counts
     * stay exact up to 2^53. */
    json_t      *top = json_loads(text, JSON_DECODE_INT_AS_REAL, &jerr);
    json_t      *acc, *str, *con, *details;
    const char  *leader;
    jf_status_t  st = JF_OK;

    if (top == NULL || !json_is_object(top)) {
        st = jf_err_set(err, JF_EDECODE, "%s: not a JSON object (%s)", url,
                        top == NULL ? jerr.text : "wrong type");
        goto out;
    }
    details = json_object_get(top, "account_details");
    if (details != NULL && !json_is_array(details)) {
        st = jf_err_set(err, JF_EDECODE, "%s: account_details is not an array", url);
        goto out;
    }
    acc = details != NULL ? find_named(details, account) : NULL;
    if (acc == NULL) {
        st = jf_err_set(err, JF_ENOTFOUND, "account %s has no JetStream details at %s (wrong "
                        "--account, JetStream disabled for it, or this server holds none of "
                        "its streams)", account, url);
        goto out;
    }
    str = find_named(json_object_get(acc, "stream_detail"), stream);
    if (str == NULL) {
        st = jf_err_set(err, JF_ENOTFOUND, "stream %s does not exist in account %s (per %s); "
                        "run `jetfleet provision` or check --stream", stream, account, url);
        goto out;
    }
    con = find_named(json_object_get(str, "consumer_detail"), consumer);
    if (con == NULL) {
        st = jf_err_set(err, JF_ENOTFOUND, "consumer %s does not exist on stream %s in account "
                        "%s (per %s); run `jetfleet provision` or check --consumer",
                        consumer, stream, account, url);
        goto out;
    }
    if (!get_count(con, "num_pending", &out->num_pending) ||
        !get_count(con, "num_ack_pending", &out->num_ack_pending)) {
        st = jf_err_set(err, JF_EDECODE, "%s: consumer %s: num_pending or num_ack_pending is "
                        "not a count", url, consumer);
        goto out;
    }
    leader = json_string_value(json_object_get(json_object_get(con, "cluster"), "leader"));
    if (leader == NULL)
        leader = json_string_value(json_object_get(json_object_get(str, "cluster"), "leader"));
    snprintf(out->leader, sizeof(out->leader), "%s", leader != NULL ? leader : "");
out:
    json_decref(top);
    return st;
}

/* GET the /jsz document and find the consumer in it. */
static jf_status_t lag_from_monitor(const char *endpoint, const char *account, const char *stream,
                                    const char *consumer, lag_result_t *out, jf_err_t *err)
{
    CURL       *c = NULL;
    char       *acc_q = NULL, *url = NULL;
    body_t      b = { 0 };
    const char *scheme = strstr(endpoint, "://") != NULL ? "" : "http://";
    size_t      elen = strlen(endpoint), ulen;
    long        status = 0;
    CURLcode    cc;
    jf_status_t st;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (c = curl_easy_init()) == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "cannot initialise libcurl");
        goto out;
    }
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    acc_q = curl_easy_escape(c, account, 0);
    ulen = strlen(scheme) + elen + strlen(acc_q != NULL ? acc_q : "") + 64;
    url = malloc(ulen);
    if (acc_q == NULL || url == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, ulen, "%s%.*s/jsz?acc=%s&consumers=true&config=true", scheme, (int)elen,
             endpoint, acc_q);
    curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500   /* 7.85: CURLOPT_PROTOCOLS is deprecated */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, MONITOR_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "jetfleet-lag");
    cc = curl_easy_perform(c);
    if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT) {
        st = jf_err_set(err, JF_EINVAL, "--monitor %s: %s", endpoint, curl_easy_strerror(cc));
        goto out;
    }
    if (cc != CURLE_OK) {
        st = jf_err_set(err, JF_EUNAVAILABLE, "monitoring endpoint %s: %s", url,
                        curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        st = jf_err_set(err, status >= 500 ? JF_EUNAVAILABLE : JF_EIO,
                        "monitoring endpoint %s answered HTTP %ld", url, status);
        goto out;
    }
    st = parse_jsz(b.p != NULL ? b.p : "", url, account, stream, consumer, out, err);
out:
    free(b.p);
    free(url);
    curl_free(acc_q);
    curl_easy_cleanup(c);
    return st;
}

/* ---- printing ------------------------------------------------------------------------------ */

static jf_status_t print_result(const lag_opts_t *o, const char *stream, const char *consumer,
                                const lag_result_t *r, jf_err_t *err)
{
    uint64_t lag = r->num_pending + r->num_ack_pending;
    json_t  *top;
    char    *text;

    if (!o->json) {
        printf("stream %s consumer %s lag %" PRIu64 " (pending %" PRIu64 ", ack pending %"
               PRIu64 ")", stream, consumer, lag, r->num_pending, r->num_ack_pending);
        if (o->monitor != NULL)
            printf(" leader %s", r->leader[0] != '\0' ? r->leader : "-");
        putchar('\n');
        return JF_OK;
    }
    top = json_object();
    if (top == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    json_object_set_new(top, "stream", json_string(stream));
    json_object_set_new(top, "consumer", json_string(consumer));
    json_object_set_new(top, "lag", json_integer((json_int_t)lag));
    json_object_set_new(top, "num_pending", json_integer((json_int_t)r->num_pending));
    json_object_set_new(top, "num_ack_pending", json_integer((json_int_t)r->num_ack_pending));
    json_object_set_new(top, "source", json_string(o->monitor != NULL ? "monitor" : "jetstream"));
    if (o->monitor != NULL) {
        json_object_set_new(top, "account", json_string(o->account));
        json_object_set_new(top, "leader", r->leader[0] != '\0' ? json_string(r->leader)
                                                                 : json_null());
    }
    text = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(top);
    if (text == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    puts(text);
    free(text);
    return JF_OK;
}

/* ---- the command ------------------------------------------------------------------------------- */

int jf_cmd_lag(int argc, char **argv)
{
    lag_opts_t   o = { 0 };
    lag_result_t r = { 0 };
    jf_config_t  cfg;
    bool         cfg_loaded = false;
    jf_nats_t   *nc = NULL;
    jf_err_t     err = { 0 };
    const char  *stream, *consumer;
    jf_status_t  st;
    int          rc;

    rc = parse_args(argc, argv, &o);
    if (rc != JF_EXIT_OK)
        return rc < 0 ? JF_EXIT_OK : rc;
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        return rc;
    cfg_loaded = true;
    stream = o.stream != NULL ? o.stream : cfg.names.jobs_stream;
    consumer = o.consumer != NULL ? o.consumer : cfg.pool;
    if (!jf_js_name_ok(stream, NAME_MAX_LEN) || !jf_js_name_ok(consumer, NAME_MAX_LEN)) {
        jf_cli_error("lag: JF_STREAM '%.64s' or JF_POOL '%.64s' is not a valid name",
                     stream, consumer);
        rc = JF_EXIT_USAGE;
        goto out;
    }

    if (o.monitor != NULL) {
        if (o.account == NULL)
            o.account = DEFAULT_ACCOUNT;
        st = lag_from_monitor(o.monitor, o.account, stream, consumer, &r, &err);
    } else {
        if ((rc = jf_cli_connect(&cfg, "jetfleet-lag", &nc)) != JF_EXIT_OK)
            goto out;
        st = lag_from_api(nc, stream, consumer, &r, &err);
    }
    if (st == JF_OK)
        st = print_result(&o, stream, consumer, &r, &err);
    if (st != JF_OK) {
        jf_cli_error("lag: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    rc = JF_EXIT_OK;
out:
    fflush(stdout);
    jf_nats_close(nc, 2000);
    if (cfg_loaded)
        jf_config_free(&cfg);
    return rc;
}
