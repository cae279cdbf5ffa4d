/*
 * nats.c - connecting to NATS, and translating natsStatus.
 *
 * nats_Open is called once per process with no global delivery pool: every
 * subscription gets its own delivery thread, which the pull engine relies
 * on to keep message handling off the connection's read loop.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/clock.h"
#include "core/nats_internal.h"

/* ---- status translation ------------------------------------------------- */

static jf_status_t map_status(natsStatus s)
{
    switch (s) {
    case NATS_OK:                return JF_OK;
    case NATS_NO_MEMORY:         return JF_ENOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_SUBSCRIPTION:
    case NATS_INVALID_TIMEOUT:   return JF_EINVAL;
    case NATS_NOT_FOUND:         return JF_ENOTFOUND;
    case NATS_TIMEOUT:           return JF_ETIMEOUT;
    case NATS_MAX_PAYLOAD:       return JF_ETOOBIG;
    case NATS_NOT_PERMITTED:     return JF_EDENIED;
    case NATS_ILLEGAL_STATE:     return JF_ESTATE;
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_DRAINING:          return JF_EUNAVAILABLE;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_SSL_ERROR:         return JF_EDENIED;
    default:                     return JF_EIO;
    }
}

jf_status_t jf_nats_status(natsStatus s, jf_err_t *err, const char *what)
{
    natsStatus  last = NATS_OK;
    const char *text;

    if (s == NATS_OK)
        return JF_OK;
    text = nats_GetLastError(&last);
    if (text == NULL || text[0] == '\0' || last != s)
        text = natsStatus_GetText(s);
    return jf_err_set(err, map_status(s), "%s: %s", what, text);
}

jf_status_t jf_js_status(natsStatus s, jsErrCode jerr, jf_err_t *err, const char *what)
{
    jf_status_t st;

    if (s == NATS_OK)
        return JF_OK;
    st = jf_nats_status(s, err, what);
    if (jerr == JSStreamNotFoundErr || jerr == JSConsumerNotFoundErr)
        st = JF_ENOTFOUND;
    if (err != NULL) {
        err->code = st;
        if (jerr != 0) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof(err->msg) - n, " (JetStream error %d)", (int)jerr);
        }
    }
    return st;
}

/* ---- connection events ---------------------------------------------------- */

static void notify(jf_nats_t *nc, jf_nats_event_t ev, const char *detail)
{
    pthread_mutex_lock(&nc->mu);
    if (!nc->closing && nc->on_event != NULL)
        nc->on_event(ev, detail, nc->arg);
    pthread_mutex_unlock(&nc->mu);
}

static void on_disconnected(natsConnection *conn, void *arg)
{
    (void)conn;
    notify(arg, JF_NATS_EV_DISCONNECTED, "connection lost; reconnecting");
}

static void on_reconnected(natsConnection *conn, void *arg)
{
    jf_nats_t *nc = arg;
    char       url[256] = "";

    (void)conn;
    jf_nats_server_url(nc, url, sizeof(url));
    notify(nc, JF_NATS_EV_RECONNECTED, url);
}

/* The library's last callback for a connection: after it, nc may go. */
static void on_closed(natsConnection *conn, void *arg)
{
    jf_nats_t *nc = arg;

    (void)conn;
    pthread_mutex_lock(&nc->mu);
    if (!nc->closing && nc->on_event != NULL)
        nc->on_event(JF_NATS_EV_CLOSED, "connection closed", nc->arg);
    nc->closed = true;
    pthread_cond_broadcast(&nc->cond);
    pthread_mutex_unlock(&nc->mu);
}

static void on_lame_duck(natsConnection *conn, void *arg)
{
    (void)conn;
    notify(arg, JF_NATS_EV_LAME_DUCK, "server entered lame duck mode");
}

static void on_error(natsConnection *conn, natsSubscription *sub, natsStatus s, void *arg)
{
    (void)conn;
    (void)sub;
    notify(arg, JF_NATS_EV_ERROR, natsStatus_GetText(s));
}

/* Wait for on_closed; false on timeout. */
static bool wait_closed(jf_nats_t *nc, int64_t timeout_ms)
{
    int64_t deadline = jf_clock_mono_ms() + timeout_ms;
    bool    closed;

    pthread_mutex_lock(&nc->mu);
    while (!nc->closed)
        if (jf_cond_wait_until(&nc->cond, &nc->mu, deadline) != 0)
            break;
    closed = nc->closed;
    pthread_mutex_unlock(&nc->mu);
    return closed;
}

/* ---- connect -------------------------------------------------------------- */

static pthread_once_t open_once = PTHREAD_ONCE_INIT;
static natsStatus     open_status = NATS_OK;

/* Lock spin count 0: the library's default spins up to 2000 times on a
 * contended mutex before sleeping. A worker has dozens of job threads
 * publishing on one connection, usually on few cores: spinning burnt 20%
 * of the worker's CPU in natsMutex_Lock and cost 25% of its throughput
 * with the ledger on (docs/performance.md). */
static void open_library(void)
{
    open_status = nats_Open(0);
}

/* Split "a,b,c" into an array of trimmed URLs. */
static jf_status_t split_urls(const char *list, char ***out, int *count, jf_err_t *err)
{
    char  *copy = strdup(list);
    char **urls = NULL;
    int    n = 0;
    char  *save = NULL;

    if (copy == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char **grown;
        while (*tok == ' ')
            tok++;
        for (char *e = tok + strlen(tok); e > tok && e[-1] == ' '; e--)
            e[-1] = '\0';
        if (*tok == '\0')
            continue;
        grown = reallocarray(urls, (size_t)n + 1, sizeof(*urls));
        if (grown == NULL)
            goto nomem;
        urls = grown;
        urls[n] = strdup(tok);
        if (urls[n] == NULL)
            goto nomem;
        n++;
    }
    free(copy);
    if (n == 0) {
        free(urls);
        return jf_err_set(err, JF_ECONFIG, "JF_NATS_URL: no server URL given");
    }
    *out = urls;
    *count = n;
    return JF_OK;
nomem:
    for (int i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
    free(copy);
    return jf_err_set(err, JF_ENOMEM, "out of memory");
}

static jf_status_t connect_with(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                               bool direct, jf_nats_event_fn on_event, void *arg, jf_err_t *err);

jf_status_t jf_nats_connect(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                            jf_nats_event_fn on_event, void *arg, jf_err_t *err)
{
    return connect_with(out, cfg, name, false, on_event, arg, err);
}

jf_status_t jf_nats_connect_direct(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                                   jf_nats_event_fn on_event, void *arg, jf_err_t *err)
{
    return connect_with(out, cfg, name, true, on_event, arg, err);
}

static jf_status_t connect_with(jf_nats_t **out, const jf_config_t *cfg, const char *name,
                               bool direct, jf_nats_event_fn on_event, void *arg, jf_err_t *err)
{
    natsOptions *opts = NULL;
    jf_nats_t   *nc = NULL;
    char       **urls = NULL;
    int          nurls = 0;
    natsStatus   s;
    jf_status_t  st;

    pthread_once(&open_once, open_library);
    if (open_status != NATS_OK)
        return jf_nats_status(open_status, err, "initialising the NATS library");

    st = split_urls(cfg->nats_url, &urls, &nurls, err);
    if (st != JF_OK)
        return st;

    nc = calloc(1, sizeof(*nc));
    if (nc == NULL) {
        st = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    nc->on_event = on_event;
    nc->arg = arg;
    nc->api_timeout_ms = cfg->api_timeout;
    pthread_mutex_init(&nc->mu, NULL);
    jf_cond_init(&nc->cond);

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetServers(opts, (const char **)urls, nurls);
    if (s == NATS_OK && name != NULL)
        s = natsOptions_SetName(opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, cfg->nats_connect_timeout);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, cfg->nats_reconnect_wait);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(opts, cfg->nats_reconnect_jitter,
                                           cfg->nats_reconnect_jitter);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(opts, 8 * 1024 * 1024);
    if (s == NATS_OK && direct)
        s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, nc);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, nc);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(opts, on_closed, nc);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(opts, on_error, nc);
    if (s == NATS_OK)
        s = natsOptions_SetLameDuckModeCB(opts, on_lame_duck, nc);
    if (s != NATS_OK) {
        st = jf_nats_status(s, err, "setting connection options");
        goto out;
    }

    /* Authentication: jf_config_validate() allows at most one of creds,
     * nkey, user/password and token. */
    if (cfg->nats_creds[0] != '\0') {
        s = natsOptions_SetUserCredentialsFromFiles(opts, cfg->nats_creds, NULL);
        if (s != NATS_OK) {
            st = jf_nats_status(s, err, "JF_NATS_CREDS");
            goto out;
        }
    }
    if (cfg->nats_nkey[0] != '\0' || cfg->nats_nkey_seed_file[0] != '\0') {
        if (cfg->nats_nkey[0] == '\0' || cfg->nats_nkey_seed_file[0] == '\0') {
            st = jf_err_set(err, JF_ECONFIG,
                            "JF_NATS_NKEY and JF_NATS_NKEY_SEED_FILE must be set together");
            goto out;
        }
        s = natsOptions_SetNKeyFromSeed(opts, cfg->nats_nkey, cfg->nats_nkey_seed_file);
        if (s != NATS_OK) {
            st = jf_nats_status(s, err, "JF_NATS_NKEY_SEED_FILE");
            goto out;
        }
    }
    if (cfg->nats_user[0] != '\0') {
        s = natsOptions_SetUserInfo(opts, cfg->nats_user, cfg->nats_password);
        if (s != NATS_OK) {
            st = jf_nats_status(s, err, "JF_NATS_USER");
            goto out;
        }
    }
    if (cfg->nats_token[0] != '\0') {
        s = natsOptions_SetToken(opts, cfg->nats_token);
        if (s != NATS_OK) {
            st = jf_nats_status(s, err, "JF_NATS_TOKEN");
            goto out;
        }
    }
    if (cfg->nats_tls_ca[0] != '\0' || cfg->nats_tls_cert[0] != '\0' ||
        cfg->nats_tls_key[0] != '\0') {
        s = natsOptions_SetSecure(opts, true);
        if (s == NATS_OK && cfg->nats_tls_ca[0] != '\0')
            s = natsOptions_LoadCATrustedCertificates(opts, cfg->nats_tls_ca);
        if (s != NATS_OK) {
            st = jf_nats_status(s, err, "JF_NATS_TLS_CA");
            goto out;
        }
        if (cfg->nats_tls_cert[0] != '\0' || cfg->nats_tls_key[0] != '\0') {
            if (cfg->nats_tls_cert[0] == '\0' || cfg->nats_tls_key[0] == '\0') {
                st = jf_err_set(err, JF_ECONFIG,
                                "JF_NATS_TLS_CERT and JF_NATS_TLS_KEY must be set together");
                goto out;
            }
            s = natsOptions_LoadCertificatesChain(opts, cfg->nats_tls_cert, cfg->nats_tls_key);
            if (s != NATS_OK) {
                st = jf_nats_status(s, err, "JF_NATS_TLS_CERT/JF_NATS_TLS_KEY");
                goto out;
            }
        }
    }

    s = natsConnection_Connect(&nc->conn, opts);
    if (s != NATS_OK) {
        st = jf_nats_status(s, err, "connecting to NATS");
        goto out;
    }
    s = natsConnection_JetStream(&nc->js, nc->conn, NULL);
    if (s != NATS_OK) {
        st = jf_nats_status(s, err, "opening the JetStream context");
        goto out;
    }
    *out = nc;
    nc = NULL;
    st = JF_OK;
out:
    natsOptions_Destroy(opts);
    for (int i = 0; i < nurls; i++)
        free(urls[i]);
    free(urls);
    if (nc != NULL) {
        jsCtx_Destroy(nc->js);
        if (nc->conn != NULL) {
            nc->closing = true;
            natsConnection_Close(nc->conn);
            wait_closed(nc, 2000);
            natsConnection_Destroy(nc->conn);
        }
        pthread_cond_destroy(&nc->cond);
        pthread_mutex_destroy(&nc->mu);
        free(nc);
    }
    return st;
}

void jf_nats_close(jf_nats_t *nc, int64_t timeout_ms)
{
    if (nc == NULL)
        return;
    if (timeout_ms <= 0)
        timeout_ms = 1000;
    pthread_mutex_lock(&nc->mu);
    nc->closing = true;   /* the owner is going away: no more events */
    pthread_mutex_unlock(&nc->mu);

    /* Flush acks and publishes, then drain: subscriptions finish what they
     * hold and the connection closes itself. */
    natsConnection_FlushTimeout(nc->conn, timeout_ms);
    if (natsConnection_DrainTimeout(nc->conn, timeout_ms) != NATS_OK)
        natsConnection_Close(nc->conn);
    if (!wait_closed(nc, timeout_ms + 1000)) {
        natsConnection_Close(nc->conn);
        wait_closed(nc, 2000);
    }
    jsCtx_Destroy(nc->js);
    natsConnection_Destroy(nc->conn);
    pthread_cond_destroy(&nc->cond);
    pthread_mutex_destroy(&nc->mu);
    free(nc);
}

bool jf_nats_connected(const jf_nats_t *nc)
{
    return nc != NULL && natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED;
}

jf_status_t jf_nats_flush(jf_nats_t *nc, int64_t timeout_ms, jf_err_t *err)
{
    return jf_nats_status(natsConnection_FlushTimeout(nc->conn, timeout_ms), err, "flush");
}

const char *jf_nats_server_url(jf_nats_t *nc, char *buf, size_t size)
{
    if (natsConnection_GetConnectedUrl(nc->conn, buf, size) != NATS_OK)
        buf[0] = '\0';
    return buf;
}

/* ---- plain subscriptions ------------------------------------------------------ */

struct jf_nats_sub {
    natsSubscription *sub;
    jf_nats_msg_fn    fn;
    void             *arg;
    pthread_mutex_t   mu;
    pthread_cond_t    cond;
    bool              done;
};

static void sub_msg(natsConnection *conn, natsSubscription *s, natsMsg *msg, void *closure)
{
    jf_nats_sub_t *sub = closure;
    int            len = natsMsg_GetDataLength(msg);

    (void)conn;
    (void)s;
    sub->fn(natsMsg_GetSubject(msg), natsMsg_GetReply(msg), natsMsg_GetData(msg),
            len > 0 ? (size_t)len : 0, sub->arg);
    natsMsg_Destroy(msg);
}

static void sub_complete(void *closure)
{
    jf_nats_sub_t *sub = closure;

    pthread_mutex_lock(&sub->mu);
    sub->done = true;
    pthread_cond_broadcast(&sub->cond);
    pthread_mutex_unlock(&sub->mu);
}

jf_status_t jf_nats_subscribe(jf_nats_t *nc, const char *subject, const char *queue,
                              jf_nats_msg_fn fn, void *arg, jf_nats_sub_t **out, jf_err_t *err)
{
    jf_nats_sub_t *sub = calloc(1, sizeof(*sub));
    natsStatus     s;
    char           what[300];

    if (sub == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    sub->fn = fn;
    sub->arg = arg;
    pthread_mutex_init(&sub->mu, NULL);
    jf_cond_init(&sub->cond);
    if (queue != NULL)
        s = natsConnection_QueueSubscribe(&sub->sub, nc->conn, subject, queue, sub_msg, sub);
    else
        s = natsConnection_Subscribe(&sub->sub, nc->conn, subject, sub_msg, sub);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(sub->sub, sub_complete, sub);
    if (s != NATS_OK) {
        snprintf(what, sizeof(what), "subscribing to %s", subject);
        if (sub->sub != NULL) {
            natsSubscription_Unsubscribe(sub->sub);
            natsSubscription_Destroy(sub->sub);
        }
        pthread_cond_destroy(&sub->cond);
        pthread_mutex_destroy(&sub->mu);
        free(sub);
        return jf_nats_status(s, err, what);
    }
    *out = sub;
    return JF_OK;
}

void jf_nats_unsubscribe(jf_nats_sub_t *sub)
{
    if (sub == NULL)
        return;
    if (natsSubscription_Unsubscribe(sub->sub) == NATS_OK) {
        int64_t deadline = jf_clock_mono_ms() + 5000;
        pthread_mutex_lock(&sub->mu);
        while (!sub->done)
            if (jf_cond_wait_until(&sub->cond, &sub->mu, deadline) != 0)
                break;
        pthread_mutex_unlock(&sub->mu);
    }
    natsSubscription_Destroy(sub->sub);
    pthread_cond_destroy(&sub->cond);
    pthread_mutex_destroy(&sub->mu);
    free(sub);
}

jf_status_t jf_nats_publish(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                            jf_err_t *err)
{
    natsStatus s = natsConnection_Publish(nc->conn, subject, data, (int)len);
    char       what[300];

    if (s == NATS_OK)
        return JF_OK;
    snprintf(what, sizeof(what), "publishing to %.200s", subject);
    return jf_nats_status(s, err, what);
}

jf_status_t jf_nats_gather(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                           int64_t wait_ms, jf_nats_answer_fn fn, void *arg, jf_err_t *err)
{
    natsInbox        *inbox = NULL;
    natsSubscription *sub = NULL;
    natsStatus        s;
    int64_t           end = jf_clock_mono_ms() + wait_ms;
    jf_status_t       st;
    char              what[300];

    snprintf(what, sizeof(what), "asking on %.200s", subject);
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, nc->conn, inbox);
    if (s == NATS_OK)
        s = natsConnection_PublishRequest(nc->conn, subject, inbox, data, (int)len);
    st = jf_nats_status(s, err, what);
    while (st == JF_OK) {
        natsMsg *m = NULL;
        int64_t  left = end - jf_clock_mono_ms();
        bool     more;

        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        more = natsMsg_GetDataLength(m) == 0 ||   /* a status (no responders): skip */
               fn(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), arg);
        natsMsg_Destroy(m);
        if (!more)
            break;
    }
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
    return st;
}

int64_t jf_nats_api_timeout(const jf_nats_t *nc)
{
    return nc->api_timeout_ms;
}
