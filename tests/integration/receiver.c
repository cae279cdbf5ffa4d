/*
 * receiver.c - the webhook receiver of the integration tests (receiver.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "receiver.h"

/* The two secrets tenants get in these tests, raw. */
const char jf_r_key1[] = "first-webhook-key-24byte";
const char jf_r_key2[] = "the-second-key-for-rotation-32by";

/* ---- the receiver ---------------------------------------------------------------------- */

#define MAX_REQ 4096

static struct MHD_Daemon *mhd;
static int                http_port;
static pthread_mutex_t    mu = PTHREAD_MUTEX_INITIALIZER;
static jf_r_req_t        *reqs;   /* MAX_REQ, allocated at start */
static int                nreqs;
static bool               healed;   /* /fail500 and /busy answer 200 once set; under mu */
/* The 4 MiB body of /huge and /huge-bad. jf_r_start() fills it before the
 * daemon's threads exist; filled lazily by the first connection thread, it
 * was written by one thread while another read it (TSan reported it). */
static char               huge[4 << 20];

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
    bool                  heal;
    enum MHD_Result       ret;
    jf_r_req_t                 r = { 0 };

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
        r.sigs_ok += signed_by(jf_r_key1, id, ts, u->buf, u->len, sig);
        r.sigs_ok += signed_by(jf_r_key2, id, ts, u->buf, u->len, sig);
    }
    r.headers_ok = ua && strncmp(ua, "jetfleet-webhooks/", 18) == 0 && tp &&
                   strlen(tp) == 55 && strncmp(tp, "00-", 3) == 0 && ct &&
                   strcmp(ct, "application/json") == 0;
    pthread_mutex_lock(&mu);
    if (reqs != NULL && nreqs < MAX_REQ)
        reqs[nreqs++] = r;
    heal = healed;
    pthread_mutex_unlock(&mu);

    if (strcmp(url, "/fail500") == 0 && !heal)
        status = 500;
    else if (strcmp(url, "/busy") == 0 && !heal)
        status = 429;
    else if (strcmp(url, "/gone") == 0)
        status = 410;
    else if (strcmp(url, "/bad") == 0)
        status = 400;
    else if (strcmp(url, "/slow") == 0)
        sleep(3);
    else if (strcmp(url, "/huge-bad") == 0)
        status = 400;
    if (strncmp(url, "/huge", 5) == 0) {
        /* 4 MiB of body: the worker must read at most its cap and go on */
        resp = MHD_create_response_from_buffer(sizeof(huge), huge, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(strlen("nope: field x"), (void *)"nope: field x",
                                               MHD_RESPMEM_PERSISTENT);
    }
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

void jf_r_start(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };

    http_port = jf_h_free_port();
    sa.sin_port = htons((uint16_t)http_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    free(reqs);
    reqs = calloc(MAX_REQ, sizeof(*reqs));
    cr_assert_not_null(reqs);
    nreqs = 0;
    healed = false;
    memset(huge, 'x', sizeof(huge));
    mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                           (uint16_t)http_port, NULL, NULL, answer, NULL,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_END);
    cr_assert_not_null(mhd, "receiver did not start on port %d", http_port);
}

/* Requests the receiver saw with this webhook-id; *last gets the last one. */
int jf_r_seen(const char *id, jf_r_req_t *last)
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

int jf_r_seen_total(void)
{
    int n;

    pthread_mutex_lock(&mu);
    n = nreqs;
    pthread_mutex_unlock(&mu);
    return n;
}


void jf_r_stop(void)
{
    if (mhd != NULL)
        MHD_stop_daemon(mhd);
    mhd = NULL;
    free(reqs);
    reqs = NULL;
    nreqs = 0;
}

int jf_r_port(void)
{
    return http_port;
}

void jf_r_heal(void)
{
    pthread_mutex_lock(&mu);
    healed = true;
    pthread_mutex_unlock(&mu);
}

int jf_r_distinct(int *dups, int *conflicts)
{
    int distinct = 0;

    *dups = 0;
    *conflicts = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nreqs; i++) {
        int first = -1;
        for (int j = 0; j < i && first < 0; j++)
            if (strcmp(reqs[j].id, reqs[i].id) == 0)
                first = j;
        if (first < 0) {
            distinct++;
            continue;
        }
        (*dups)++;
        if (strcmp(reqs[first].body, reqs[i].body) != 0 ||
            strcmp(reqs[first].path, reqs[i].path) != 0)
            (*conflicts)++;
    }
    pthread_mutex_unlock(&mu);
    return distinct;
}

void jf_r_secret_file(char *out, size_t size)
{
    char s1[64], s2[64];

    b64((const unsigned char *)jf_r_key1, strlen(jf_r_key1), s1);
    b64((const unsigned char *)jf_r_key2, strlen(jf_r_key2), s2);
    snprintf(out, size, "whsec_%s\n  whsec_%s\n", s1, s2);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(path, 0600), 0, "%s", path);
}

void jf_r_tenant_files(const char *dir, const char *policy_json, const char *const *tenants,
                       char *env_policy, size_t policy_size, char *env_secrets,
                       size_t secrets_size)
{
    char policy[340], secrets[340], hooks[360], path[440], text[200];

    snprintf(policy, sizeof(policy), "%s/policy.json", dir);
    snprintf(secrets, sizeof(secrets), "%s/secrets", dir);
    snprintf(hooks, sizeof(hooks), "%s/webhooks", secrets);
    cr_assert_eq(mkdir(secrets, 0700), 0, "%s", secrets);
    cr_assert_eq(mkdir(hooks, 0700), 0, "%s", hooks);
    jf_r_secret_file(text, sizeof(text));
    for (const char *const *t = tenants; *t != NULL; t++) {
        snprintf(path, sizeof(path), "%s/%s", hooks, *t);
        write_file(path, text);
    }
    write_file(policy, policy_json);
    snprintf(env_policy, policy_size, "JF_POLICY_FILE=%s", policy);
    snprintf(env_secrets, secrets_size, "JF_SECRETS_DIR=%s", secrets);
}
