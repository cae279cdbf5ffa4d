/*
 * httpd.c - libmicrohttpd behind httpd.h.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "core/httpd.h"

struct jf_httpd {
    struct MHD_Daemon *d;
    jf_http_handler_fn fn;
    void              *arg;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    jf_httpd_t           *h = cls;
    jf_http_reply_t       r = { 500, "text/plain", NULL, 0 };
    struct MHD_Response  *resp;
    enum MHD_Result       ret;

    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "method not allowed\n";
        resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        MHD_add_response_header(resp, "Allow", "GET, HEAD");
        ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    h->fn(url, &r, h->arg);
    resp = MHD_create_response_from_buffer(r.len, r.body ? r.body : (void *)"",
                                           r.body ? MHD_RESPMEM_MUST_FREE
                                                  : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r.content_type);
    ret = MHD_queue_response(conn, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

jf_status_t jf_httpd_start(jf_httpd_t **out, const char *addr, jf_http_handler_fn fn,
                           void *arg, jf_err_t *err)
{
    struct addrinfo  hints = { 0 }, *ai = NULL;
    char             host[256], port[16];
    const char      *colon = strrchr(addr, ':');
    jf_httpd_t      *h;
    size_t           hlen;
    int              rc;

    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(port))
        return jf_err_set(err, JF_ECONFIG, "JF_METRICS_ADDR '%.100s' is not host:port", addr);
    hlen = (size_t)(colon - addr);
    if (hlen >= sizeof(host))
        return jf_err_set(err, JF_ECONFIG, "JF_METRICS_ADDR: host too long");
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    strcpy(port, colon + 1);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0)
        return jf_err_set(err, JF_ECONFIG, "JF_METRICS_ADDR '%.100s': %s", addr, gai_strerror(rc));
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        freeaddrinfo(ai);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    h->fn = fn;
    h->arg = arg;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                               (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                           0, NULL, NULL, on_request, h,
                           MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                           MHD_OPTION_END);
    freeaddrinfo(ai);
    if (h->d == NULL) {
        free(h);
        return jf_err_set(err, JF_EIO, "cannot listen on %.100s (address in use or not "
                          "permitted)", addr);
    }
    *out = h;
    return JF_OK;
}

void jf_httpd_stop(jf_httpd_t *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
