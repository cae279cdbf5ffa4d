/*
 * test_webhooks.c - webhooks.deliver end to end: a real worker delivers to
 * a real HTTP receiver (libmicrohttpd, in this process, on 127.0.0.1) that
 * checks the Standard Webhooks signatures on its own with OpenSSL.
 *
 * Covers signing with two secrets (rotation), the outcome classification
 * (2xx, 5xx, 429 + Retry-After, 410, 400), the egress guard (loopback,
 * localhost, metadata and private addresses refused before any socket
 * exists) and the configuration errors (bad scheme, no secret).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"

/* The two secrets of tenant acme, raw. */
static const char key1[] = "first-webhook-key-24byte";
static const char key2[] = "the-second-key-for-rotation-32by";

/* ---- the receiver ---------------------------------------------------------------------- */

#define MAX_REQ 64

typedef struct req {
    char path[64];
    char id[160];
    char body[256];
    int  sigs_ok;         /* how many of key1, key2 verified */
    bool headers_ok;      /* user agent, traceparent, content type as expected */
} req_t;

static struct MHD_Daemon *mhd;
static int                http_port;
static pthread_mutex_t    mu = PTHREAD_MUTEX_INITIALIZER;
static req_t              reqs[MAX_REQ];
static int                nreqs;
static volatile int       healed;   /* /fail500 and /busy answer 200 once set */

typedef struct upload {
    char   buf[4096];
    size_t len;
} upload_t;

static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Does sig_header ("v1,<b64> v1,<b64>") hold the signature by key? */
static bool signed_by(const char *key, const char *id, const char *ts, const char *body,
                      size_t body_len, const char *sig_header)
{
    char          msg[5000], want[128], tok[140];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int  mac_len = 0;
    int           n = snprintf(msg, sizeof(msg), "%s.%s.", id, ts);
    const char   *p = sig_header;

    memcpy(msg + n, body, body_len);
    HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)msg, (size_t)n + body_len, mac,
         &mac_len);
    b64(mac, mac_len, want);
    snprintf(tok, sizeof(tok), "v1,%s", want);
    while ((p = strstr(p, tok)) != NULL) {
        size_t l = strlen(tok);
        if ((p == sig_header || p[-1] == ' ') && (p[l] == '\0' || p[l] == ' '))
            return true;
        p += l;
    }
    return false;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
    upload_t             *u = *con_cls;
    struct MHD_Response  *resp;
    const char           *id, *ts, *sig, *ua, *tp, *ct;
    int                   status = 200;
    enum MHD_Result       ret;
    req_t                 r = { 0 };

    (void)cls;
    (void)version;
    (void)method;
    if (u == NULL) {
        *con_cls = calloc(1, sizeof(upload_t));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size > 0) {
        size_t n = *data_size < sizeof(u->buf) - 1 - u->len ? *data_size
                                                             : sizeof(u->buf) - 1 - u->len;
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        *data_size = 0;
        return MHD_YES;
    }
    id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    tp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent");
    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(r.path, sizeof(r.path), "%s", url);
    snprintf(r.id, sizeof(r.id), "%s", id ? id : "");
    snprintf(r.body, sizeof(r.body), "%.*s", (int)u->len, u->buf);
    if (id && ts && sig && labs(atol(ts) - (long)time(NULL)) < 300) {
        r.sigs_ok += signed_by(key1, id, ts, u->buf, u->len, sig);
        r.sigs_ok += signed_by(key2, id, ts, u->buf, u->len, sig);
    }
    r.headers_ok = ua && strncmp(ua, "jetfleet-webhooks/", 18) == 0 && tp &&
                   strlen(tp) == 55 && strncmp(tp, "00-", 3) == 0 && ct &&
                   strcmp(ct, "application/json") == 0;
    pthread_mutex_lock(&mu);
    if (nreqs < MAX_REQ)
        reqs[nreqs++] = r;
    pthread_mutex_unlock(&mu);

    if (strcmp(url, "/fail500") == 0 && !healed)
        status = 500;
    else if (strcmp(url, "/busy") == 0 && !healed)
        status = 429;
    else if (strcmp(url, "/gone") == 0)
        status = 410;
    else if (strcmp(url, "/bad") == 0)
        status = 400;
    else if (strcmp(url, "/slow") == 0)
        sleep(3);
    resp = MHD_create_response_from_buffer(strlen("nope: field x"), (void *)"nope: field x",
                                           MHD_RESPMEM_PERSISTENT);
    if (status == 429)
        MHD_add_response_header(resp, "Retry-After", "1");
    ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void receiver_start(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };

    http_port = jf_h_free_port();
    sa.sin_port = htons((uint16_t)http_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    nreqs = 0;
    healed = 0;
    mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                           (uint16_t)http_port, NULL, NULL, answer, NULL,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
    cr_assert_not_null(mhd, "receiver did not start on port %d", http_port);
}

/* Requests the receiver saw with this webhook-id; *last gets the last one. */
static int seen(const char *id, req_t *last)
{
    int n = 0;

    pthread_mutex_lock(&mu);
    for (int i = 0; i < nreqs; i++)
        if (strcmp(reqs[i].id, id) == 0) {
            n++;
            if (last)
                *last = reqs[i];
        }
    pthread_mutex_unlock(&mu);
    return n;
}

static int seen_total(void)
{
    int n;

    pthread_mutex_lock(&mu);
    n = nreqs;
    pthread_mutex_unlock(&mu);
    return n;
}

/* ---- the worker ------------------------------------------------------------------------ */

static jf_h_server_t   srv;
static natsConnection *nc;
static jf_h_proc_t     w;
static char            env_policy[400], env_secrets[400];

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void setup(void)
{
    char policy[340], secrets[340], dir[360], path[380], s1[64], s2[64], text[200];
    const char *env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, NULL };

    receiver_start();
    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
    snprintf(policy, sizeof(policy), "%s/policy.json", srv.dir);
    snprintf(secrets, sizeof(secrets), "%s/secrets", srv.dir);
    snprintf(dir, sizeof(dir), "%s/webhooks", secrets);
    cr_assert_eq(mkdir(secrets, 0700), 0);
    cr_assert_eq(mkdir(dir, 0700), 0);
    b64((const unsigned char *)key1, strlen(key1), s1);
    b64((const unsigned char *)key2, strlen(key2), s2);
    snprintf(text, sizeof(text), "whsec_%s\n  whsec_%s\n", s1, s2);
    snprintf(path, sizeof(path), "%s/acme", dir);
    write_file(path, text, 0600);
    snprintf(path, sizeof(path), "%s/other", dir);
    write_file(path, text, 0600);
    write_file(policy,
               "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
               "\"acme\":{\"job_types\":[\"webhooks.*\"],\"egress_allow\":[\"127.0.0.1/32\"]},"
               "\"other\":{\"job_types\":[\"webhooks.*\"]},"
               "\"nosec\":{\"job_types\":[\"webhooks.*\"],\"egress_allow\":[\"127.0.0.1/32\"]}}}",
               0600);
    snprintf(env_policy, sizeof(env_policy), "JF_POLICY_FILE=%s", policy);
    snprintf(env_secrets, sizeof(env_secrets), "JF_SECRETS_DIR=%s", secrets);
    jf_h_provision(&srv, NULL);
    jf_h_worker_start(&srv, "w", env, &w);
    jf_h_wait_started(&w);
}

static void teardown(void)
{
    cr_expect_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
    MHD_stop_daemon(mhd);
    mhd = NULL;
}

/* Enqueue webhooks.deliver for tenant to url (a path on the receiver when
 * it starts with '/'). */
static void deliver(const char *tenant, const char *id, const char *url)
{
    char subject[128], payload[512], full[256];

    if (url[0] == '/')
        snprintf(full, sizeof(full), "http://127.0.0.1:%d%s", http_port, url);
    else
        snprintf(full, sizeof(full), "%s", url);
    snprintf(subject, sizeof(subject), "jobs.%s.webhooks.deliver", tenant);
    snprintf(payload, sizeof(payload),
             "{\"url\":\"%s\",\"body\":\"{\\\"order\\\":42,\\\"id\\\":\\\"%s\\\"}\","
             "\"event_type\":\"order.paid\"}", full, id);
    cr_assert(jf_h_publish(nc, subject, payload, (int)strlen(payload), id, NULL));
}

static int logged(const char *id, const char *msg, const char *extra, int want, int timeout_ms)
{
    char idf[160], msgf[80];

    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const n[] = { idf, msgf, extra, NULL };
    return jf_h_wait_lines(w.err_path, n, want, timeout_ms);
}

/* ---- tests ----------------------------------------------------------------------------- */

Test(webhooks, a_delivery_is_signed_with_every_secret_and_succeeds, .init = setup,
     .fini = teardown)
{
    req_t r;

    deliver("acme", "order-42", "/ok");
    cr_assert_eq(logged("order-42", "job succeeded", "order-42", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(seen("order-42", &r), 1, "exactly one request with webhook-id = job id");
    cr_assert_str_eq(r.path, "/ok");
    cr_assert_eq(r.sigs_ok, 2, "both rotation secrets must sign the delivery");
    cr_assert(r.headers_ok, "user agent, traceparent and content type");
    cr_assert_str_eq(r.body, "{\"order\":42,\"id\":\"order-42\"}");

    /* A slow endpoint inside the timeouts is still a success. */
    deliver("acme", "slow-1", "/slow");
    cr_assert_eq(logged("slow-1", "job succeeded", "slow-1", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(seen("slow-1", NULL), 1);
    {
        char *log = jf_h_slurp(w.err_path);
        cr_assert(strstr(log, "whsec_") == NULL, "a webhook secret leaked into the log");
        free(log);
    }
}

Test(webhooks, 5xx_and_429_are_retried_then_succeed, .init = setup, .fini = teardown)
{
    int    n = 0;
    char **lines;
    long   delay;

    deliver("acme", "r500", "/fail500");
    deliver("acme", "r429", "/busy");
    cr_assert_eq(logged("r500", "job will be retried", "HTTP 500", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("r429", "job will be retried", "HTTP 429", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    {
        const char *const nd[] = { "\"job_id\":\"r429\"", "\"msg\":\"job will be retried\"",
                                   NULL };
        lines = jf_h_grep(w.err_path, nd, &n);
        cr_assert_geq(n, 1);
        cr_assert_not_null(strstr(lines[0], "\"next_delay_ms\":"));
        delay = atol(strstr(lines[0], "\"next_delay_ms\":") + strlen("\"next_delay_ms\":"));
        jf_h_grep_free(lines, n);
        cr_assert_geq(delay, 1000, "Retry-After: 1 must hold the retry back at least 1 s");
    }
    healed = 1;
    cr_assert_eq(logged("r500", "job succeeded", "r500", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("r429", "job succeeded", "r429", 1, 20000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_geq(seen("r500", NULL), 2, "the same webhook-id is sent again on a retry");
    cr_assert_geq(seen("r429", NULL), 2);
}

Test(webhooks, 410_and_400_fail_without_retry, .init = setup, .fini = teardown)
{
    deliver("acme", "gone-1", "/gone");
    deliver("acme", "bad-1", "/bad");
    cr_assert_eq(logged("gone-1", "job failed", "HTTP 410 Gone", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("bad-1", "job failed", "HTTP 400: nope: field x", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    jf_h_sleep_ms(1500);
    cr_assert_eq(seen("gone-1", NULL), 1);
    cr_assert_eq(seen("bad-1", NULL), 1);
    cr_assert_eq(logged("gone-1", "job will be retried", "gone-1", 0, 0), 0);
    cr_assert_eq(logged("bad-1", "job will be retried", "bad-1", 0, 0), 0);
    {
        natsMsg *dl = jf_h_dlq_find(nc, "gone-1", 0);
        cr_assert_not_null(dl, "410 goes to the dead letters");
        natsMsg_Destroy(dl);
    }
}

Test(webhooks, the_egress_guard_refuses_before_connecting, .init = setup, .fini = teardown)
{
    char url[128];

    deliver("other", "eg-loop", "/ok");
    snprintf(url, sizeof(url), "http://localhost:%d/ok", http_port);
    deliver("other", "eg-localhost", url);
    /* acme may reach 127.0.0.1/32 only: metadata and private ranges stay shut.
     * The guard runs in curl's open-socket callback, before any socket. */
    deliver("acme", "eg-meta", "http://169.254.169.254/latest/meta-data/");
    deliver("acme", "eg-private", "http://10.0.0.1/hook");
    cr_assert_eq(logged("eg-loop", "job failed", "egress to 127.0.0.1 refused", 1, 15000), 1,
                 "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-localhost", "job failed", "refused", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-meta", "job failed", "egress to 169.254.169.254 refused", 1, 15000),
                 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-private", "job failed", "egress to 10.0.0.1 refused", 1, 15000), 1,
                 "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(logged("eg-loop", "job failed", "JF_EDENIED", 1, 1000), 1);
    cr_assert_eq(seen_total(), 0, "the receiver must get no request at all");
    cr_assert_eq(logged("eg-loop", "job will be retried", "eg-loop", 0, 0), 0);

    /* The same receiver is reachable for acme, whose policy allows it. */
    deliver("acme", "eg-allowed", "/ok");
    cr_assert_eq(logged("eg-allowed", "job succeeded", "eg-allowed", 1, 15000), 1);
    cr_assert_eq(seen_total(), 1);
}

Test(webhooks, a_bad_scheme_or_a_missing_secret_fails_clearly, .init = setup, .fini = teardown)
{
    deliver("acme", "ftp-1", "ftp://127.0.0.1/upload");
    deliver("acme", "gopher-1", "gopher://127.0.0.1/");
    deliver("nosec", "nosec-1", "/ok");
    cr_assert_eq(logged("ftp-1", "job failed", "only http and https", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("ftp-1", "job failed", "JF_EINVAL", 1, 1000), 1);
    cr_assert_eq(logged("gopher-1", "job failed", "gopher", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(logged("nosec-1", "job failed",
                        "no webhook secret for tenant nosec (webhooks/nosec in JF_SECRETS_DIR)",
                        1, 15000), 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(seen_total(), 0);
}
