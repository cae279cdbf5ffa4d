/*
 * webhooks.c - the webhooks module: signed HTTP deliveries.
 *
 * webhooks.deliver POSTs a body to a tenant's endpoint, signed by the
 * Standard Webhooks scheme (https://www.standardwebhooks.com):
 *
 *   webhook-id:        the job id, the receiver's idempotency key, so a
 *                      delivery repeated after a crash or a retry is
 *                      recognised as the same one;
 *   webhook-timestamp: Unix seconds;
 *   webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one
 *                      per secret of the tenant, space-separated, so that
 *                      secrets can be rotated without a gap.
 *
 * The signatures are made by sign.c (private to this module, unit tested
 * with the scheme's published vector); Retry-After is parsed by core
 * (core/httphdr.h).
 *
 * The handler never lets a job reach an address the tenant may not reach:
 * curl's open-socket callback puts every resolved address through the
 * runtime's egress guard before a socket exists, so DNS names that resolve
 * to loopback, private or metadata addresses are caught too. Proxies from
 * the environment are disabled (the guard would see only the proxy) and
 * redirects are not followed.
 *
 * The answer maps onto the job outcome: 2xx OK; 408, 425, 429 and 5xx
 * RETRY (honouring Retry-After); 410 and other 4xx FAIL; network, DNS, TLS
 * and timeout errors RETRY.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include <jetfleet/jetfleet.h>
#include <jetfleet/webhooks/v1/webhooks.pb-c.h>

#include "core/clock.h"
#include "core/httphdr.h"
#include "jf_build_config.h"
#include "modules/subscriptions/contract.h"
#include "modules/webhooks/contract.h"
#include "modules/webhooks/sign.h"

#define WEBHOOKS_USER_AGENT         "jetfleet-webhooks/" JF_VERSION
#define WEBHOOKS_CONNECT_TIMEOUT_MS 5000L
#define WEBHOOKS_TOTAL_TIMEOUT_MS   30000L
#define WEBHOOKS_BODY_CAP           (64u * 1024u)   /* response bytes read at most */
#define WEBHOOKS_BODY_KEEP          200u            /* response bytes kept for the reason */
#define WEBHOOKS_RETRY_AFTER_CAP_MS 3600000u        /* 1 h */

/* ---- one delivery ---------------------------------------------------------------------- */

/* What the curl callbacks share with the handler for one delivery. */
typedef struct webhooks_delivery {
    jf_job_t *job;
    bool      refused;                      /* the egress guard said no at least once */
    char      refused_why[256];
    size_t    body_len;                     /* response bytes received */
    bool      body_too_big;                 /* aborted at WEBHOOKS_BODY_CAP */
    char      body[WEBHOOKS_BODY_KEEP + 1]; /* the first bytes, NUL-terminated */
} webhooks_delivery_t;


/* CURLOPT_OPENSOCKETFUNCTION: runs for every address curl is about to
 * connect to, after DNS and before any socket exists. A refusal is
 * remembered; curl then tries the next address, if any. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    webhooks_delivery_t *d = clientp;
    char                 why[sizeof(d->refused_why)];

    if (purpose != CURLSOCKTYPE_IPCXN) {
        d->refused = true;
        snprintf(d->refused_why, sizeof(d->refused_why), "egress refused: unexpected socket type");
        return CURL_SOCKET_BAD;
    }
    if (!jf_job_egress_allowed(d->job, &addr->addr, why, sizeof(why))) {
        if (!d->refused)
            memcpy(d->refused_why, why, sizeof(why));
        d->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* CURLOPT_WRITEFUNCTION: keep the first bytes for error reasons, and stop
 * reading (abort) past WEBHOOKS_BODY_CAP; the status code is known by then. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    webhooks_delivery_t *d = userdata;
    size_t               n = size * nmemb;

    if (d->body_len < WEBHOOKS_BODY_KEEP) {
        size_t keep = WEBHOOKS_BODY_KEEP - d->body_len;
        if (keep > n)
            keep = n;
        memcpy(d->body + d->body_len, ptr, keep);
        d->body[d->body_len + keep] = '\0';
    }
    d->body_len += n;
    if (d->body_len > WEBHOOKS_BODY_CAP) {
        d->body_too_big = true;
        return 0;   /* CURLE_WRITE_ERROR */
    }
    return n;
}

/* CURLOPT_XFERINFOFUNCTION: give up when the deadline passed or the worker
 * is shutting down. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const webhooks_delivery_t *d = clientp;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return jf_job_cancelled(d->job) ? 1 : 0;
}

/* ---- validation ------------------------------------------------------------------------ */

/* True when s is safe inside an HTTP header: printable ASCII only, so that
 * no payload can inject a header or split the request. */
static bool header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Parse url with curl's own parser, so that the URL checked is the URL
 * used. On success *ret_h is the handle (caller cleans it up) and
 * *ret_host the host, arena-allocated; otherwise the reason. */
static const char *parse_url(jf_job_t *job, const char *url, CURLU **ret_h, const char **ret_host)
{
    CURLU      *h = curl_url();
    CURLUcode   uc;
    char       *scheme = NULL, *host = NULL;
    const char *reason = NULL;

    if (h == NULL)
        return "out of memory parsing url";
    uc = curl_url_set(h, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        reason = jf_arena_sprintf(jf_job_arena(job), "url is not valid: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
        reason = jf_arena_sprintf(jf_job_arena(job),
                                  "url scheme '%s' is not allowed: only http and https",
                                  scheme ? scheme : "?");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        reason = "url has no host";
        goto out;
    }
    *ret_host = jf_arena_strdup(jf_job_arena(job), host);
    *ret_h = h;
    h = NULL;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(h);
    return reason;
}

/* ---- classification -------------------------------------------------------------------- */

/* The Retry-After header in ms (delay seconds or an HTTP date), capped at
 * 1 h; 0 when absent or unparsable. The parsing is core's. */
static uint32_t retry_after_ms(CURL *curl)
{
    struct curl_header *h = NULL;
    uint32_t            ms;

    if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return 0;
    if (jf_http_retry_after_parse(h->value, strlen(h->value), jf_clock_now_ms(),
                                  WEBHOOKS_RETRY_AFTER_CAP_MS, &ms) != JF_OK)
        return 0;
    return ms;
}

/* The kept response bytes, made safe for a log line and a header. */
static const char *body_excerpt(webhooks_delivery_t *d)
{
    for (char *p = d->body; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = ' ';
    return d->body;
}

static jf_result_t classify_http(jf_job_t *job, CURL *curl, long code, webhooks_delivery_t *d)
{
    jf_arena_t *a = jf_job_arena(job);

    if (code >= 200 && code <= 299)
        return jf_ok();
    if (code == 408 || code == 425 || code == 429 || (code >= 500 && code <= 599))
        return jf_retry(JF_EUNAVAILABLE, retry_after_ms(curl), jf_arena_sprintf(a, "HTTP %ld", code));
    if (code == 410)
        return jf_fail(JF_ENOTFOUND, "HTTP 410 Gone: endpoint removed");
    if (code >= 400 && code <= 499)
        return jf_fail(JF_EINVAL, jf_arena_sprintf(a, "HTTP %ld: %s", code, body_excerpt(d)));
    if (code >= 300 && code <= 399)
        return jf_fail(JF_EINVAL, jf_arena_sprintf(a, "HTTP %ld: redirects are not followed", code));
    return jf_fail(JF_EINVAL, jf_arena_sprintf(a, "HTTP %ld: unexpected status", code));
}

static jf_result_t classify_curl(jf_job_t *job, CURLcode rc)
{
    const char *why = jf_arena_sprintf(jf_job_arena(job), "%s", curl_easy_strerror(rc));

    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return jf_retry(JF_ETIMEOUT, 0, why);
    case CURLE_ABORTED_BY_CALLBACK:
        return jf_retry(JF_ETIMEOUT, 0, "delivery interrupted by deadline or shutdown");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return jf_fail(JF_EINVAL, why);
    default:
        /* DNS, connect, TLS, send/receive: the endpoint may be back later. */
        return jf_retry(JF_EUNAVAILABLE, 0, why);
    }
}

/* Append a formatted header line to *list; false when out of memory. */
static bool add_header(jf_arena_t *a, struct curl_slist **list, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool add_header(jf_arena_t *a, struct curl_slist **list, const char *fmt, ...)
{
    va_list            ap;
    char               small[256], *line = small;
    int                n;
    struct curl_slist *h;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n >= sizeof(small)) {
        line = jf_arena_alloc(a, (size_t)n + 1);
        if (line == NULL)
            return false;
        va_start(ap, fmt);
        vsnprintf(line, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    h = curl_slist_append(*list, line);
    if (h == NULL)
        return false;
    *list = h;
    return true;
}

/* ---- the handler ----------------------------------------------------------------------- */

/* HTTP 410 Gone: the receiver says the endpoint is gone for good. Disable
 * it through subscriptions.v1 so no further events go there; the job still
 * FAILs (gone is terminal). When the disable itself fails transiently, RETRY
 * instead, so that it is not forgotten: the next attempt sees 410 again. */
static jf_result_t report_gone(jf_job_t *job, const char *endpoint_id, const char *host,
                               jf_result_t gone)
{
    jf_arena_t                  *a = jf_job_arena(job);
    const jf_subscriptions_v1_t *subs;
    jf_service_t                 svc;
    const char                  *why = NULL;
    jf_status_t                  st;

    st = jf_registry_get(jf_job_registry(job), JF_SUBSCRIPTIONS_V1, &svc);
    if (st != JF_OK)
        return jf_fail(JF_ENOTFOUND, "HTTP 410 Gone; subscriptions.v1 is not available to "
                                     "disable the endpoint");
    subs = svc.vtable;
    st = subs->disable(svc.instance, job, endpoint_id,
                       jf_arena_sprintf(a, "HTTP 410 Gone from %s (job %s)", host,
                                        jf_job_id(job)), &why);
    if (st == JF_OK) {
        jf_job_log(job, JF_LOG_WARN, "endpoint %s answered 410 Gone; disabled", endpoint_id);
        return jf_fail(gone.code, jf_arena_sprintf(a, "HTTP 410 Gone: endpoint %s disabled",
                                                   endpoint_id));
    }
    if (jf_status_retryable(st))
        return jf_retry(st, 0, jf_arena_sprintf(a, "HTTP 410 Gone; disabling endpoint %s "
                                                "failed: %s", endpoint_id, why));
    return jf_fail(gone.code, jf_arena_sprintf(a, "HTTP 410 Gone; endpoint %s not disabled: %s",
                                               endpoint_id, why));
}

static jf_result_t webhooks_deliver(jf_job_t *job, const ProtobufCMessage *payload)
{
    const Jetfleet__Webhooks__V1__Deliver *p = (const Jetfleet__Webhooks__V1__Deliver *)payload;
    jf_arena_t          *a = jf_job_arena(job);
    webhooks_delivery_t  d = { .job = job };
    CURLU               *url = NULL;
    CURL                *curl = NULL;
    struct curl_slist   *hdrs = NULL;
    const char          *host = NULL, *reason, *ctype, *body, *id = jf_job_id(job);
    const void          *secret = NULL;
    size_t               secret_len = 0, body_len, msg_len;
    char                *msg, *sig;
    unsigned char        span[8];
    long                 ts, code = 0, total_ms;
    int64_t              left;
    jf_status_t          st;
    CURLcode             rc;
    jf_result_t          res;

    if (p->url == NULL || p->url[0] == '\0')
        return jf_fail(JF_EINVAL, "url is empty");
    reason = parse_url(job, p->url, &url, &host);
    if (reason != NULL)
        return jf_fail(JF_EINVAL, reason);
    ctype = p->content_type && p->content_type[0] ? p->content_type : "application/json";
    if (!header_safe(ctype) || (p->event_type && !header_safe(p->event_type))) {
        res = jf_fail(JF_EINVAL, "content_type and event_type must be printable ASCII");
        goto out;
    }
    body = p->body ? p->body : "";
    body_len = strlen(body);

    /* Sign: "<id>.<timestamp>.<body>" with every secret of the tenant. */
    st = jf_job_tenant_secret(job, "webhooks", &secret, &secret_len);
    if (st != JF_OK) {
        res = st == JF_ENOTFOUND
            ? jf_fail(JF_ECONFIG, jf_arena_sprintf(a, "no webhook secret for tenant %s "
                                                  "(webhooks/%s in JF_SECRETS_DIR)",
                                                  jf_job_tenant(job), jf_job_tenant(job)))
            : jf_retry(st, 0, jf_arena_sprintf(a, "reading the webhook secret: %s",
                                               jf_status_str(st)));
        goto out;
    }
    ts = (long)time(NULL);
    msg_len = strlen(id) + body_len + 32;
    msg = jf_arena_alloc(a, msg_len);
    if (msg == NULL) {
        res = jf_retry(JF_ENOMEM, 0, "out of memory");
        goto out;
    }
    msg_len = (size_t)snprintf(msg, msg_len, "%s.%ld.", id, ts);
    memcpy(msg + msg_len, body, body_len);
    msg_len += body_len;
    sig = webhooks_sign(a, jf_job_tenant(job), secret, secret_len, msg, msg_len, &reason);
    explicit_bzero((void *)secret, secret_len);
    secret = NULL;
    if (sig == NULL) {
        res = jf_fail(JF_ECONFIG, reason);
        goto out;
    }

    /* Headers. curl_slist_append copies its argument. */
    if (!add_header(a, &hdrs, "webhook-signature: %s", sig) ||
        !add_header(a, &hdrs, "webhook-id: %s", id) ||
        !add_header(a, &hdrs, "webhook-timestamp: %ld", ts) ||
        !add_header(a, &hdrs, "Content-Type: %s", ctype) ||
        (p->event_type && p->event_type[0] &&
         !add_header(a, &hdrs, "X-Event-Type: %s", p->event_type)) ||
        !add_header(a, &hdrs, "Expect:"))   /* no 100-continue round trip */
        goto oom;
    if (RAND_bytes(span, sizeof(span)) != 1)
        memset(span, 0x5a, sizeof(span));
    span[0] |= 1;   /* never all zero */
    if (!add_header(a, &hdrs, "traceparent: 00-%s-%02x%02x%02x%02x%02x%02x%02x%02x-01",
                    jf_job_trace_id(job), span[0], span[1], span[2], span[3], span[4], span[5],
                    span[6], span[7]))
        goto oom;

    /* Time: the total is capped by what is left of the job's deadline. */
    left = jf_job_deadline_ms(job) - jf_clock_now_ms();
    if (left <= 0) {
        res = jf_retry(JF_ETIMEOUT, 0, "deadline passed before delivery");
        goto out;
    }
    total_ms = left < WEBHOOKS_TOTAL_TIMEOUT_MS ? (long)left : WEBHOOKS_TOTAL_TIMEOUT_MS;

    curl = curl_easy_init();
    if (curl == NULL)
        goto oom;
    if (curl_easy_setopt(curl, CURLOPT_CURLU, url) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK ||   /* never an env proxy */
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_USERAGENT, WEBHOOKS_USER_AGENT) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                         total_ms < WEBHOOKS_CONNECT_TIMEOUT_MS ? total_ms
                                                                : WEBHOOKS_CONNECT_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total_ms) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &d) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK) {
        res = jf_retry(JF_EIO, 0, "setting up the HTTP client failed");
        goto out;
    }

    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && d.body_too_big && code != 0)) {
        res = classify_http(job, curl, code, &d);
        jf_job_log(job, JF_LOG_DEBUG, "webhook to %s answered HTTP %ld", host, code);
        if (code == 410 && p->endpoint_id[0] != '\0')
            res = report_gone(job, p->endpoint_id, host, res);
    } else if (d.refused && rc == CURLE_COULDNT_CONNECT) {
        res = jf_fail(JF_EDENIED, jf_arena_strdup(a, d.refused_why));
    } else {
        res = classify_curl(job, rc);
        jf_job_log(job, JF_LOG_DEBUG, "webhook to %s: %s", host, curl_easy_strerror(rc));
    }
    goto out;

oom:
    res = jf_retry(JF_ENOMEM, 0, "out of memory");
out:
    if (secret != NULL)
        explicit_bzero((void *)secret, secret_len);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    curl_url_cleanup(url);
    return res;
}

/* ---- the module ------------------------------------------------------------------------ */

static jf_status_t webhooks_init(jf_module_ctx_t *mctx)
{
    const curl_version_info_data *v;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        jf_module_log(mctx, JF_LOG_ERROR, "curl_global_init failed");
        return JF_ECONFIG;
    }
    v = curl_version_info(CURLVERSION_NOW);
    if (v == NULL || v->ssl_version == NULL)
        jf_module_log(mctx, JF_LOG_WARN, "libcurl has no TLS: https:// deliveries will fail");
    return JF_OK;
}

static void webhooks_shutdown(jf_module_ctx_t *mctx)
{
    (void)mctx;
    curl_global_cleanup();
}

static const jf_job_type_t webhooks_types[] = {
    {
        .action = "deliver",
        .summary = "POSTs a Standard Webhooks-signed body to an http(s) endpoint",
        .payload = &jetfleet__webhooks__v1__deliver__descriptor,
        .retry = { .max_attempts = 8, .base_delay_ms = 1000, .max_delay_ms = 300000,
                   .multiplier = 2 },
        .deadline_ms = 60000,
        .handler = webhooks_deliver,
    },
    { 0 },
};

/* 410 Gone disables the endpoint (see report_gone). */
static const char *const webhooks_requires[] = { JF_SUBSCRIPTIONS_V1, NULL };

const jf_module_t jf_module_webhooks = {
    .abi_version = JF_ABI_VERSION,
    .name = "webhooks",
    .summary = "signed HTTP webhook deliveries",
    .job_types = webhooks_types,
    .requires = webhooks_requires,
    .init = webhooks_init,
    .shutdown = webhooks_shutdown,
};
