/*
 * httpd.h - a tiny HTTP endpoint (libmicrohttpd) for /metrics, /healthz and
 * /readyz. GET only; the handler runs on the server's own thread.
 */
#ifndef JF_CORE_HTTPD_H
#define JF_CORE_HTTPD_H

#include <stddef.h>

#include "shared/err.h"

typedef struct jf_httpd jf_httpd_t;

typedef struct jf_http_reply {
    int         status;
    const char *content_type;
    char       *body;        /* malloc'ed; freed by the server */
    size_t      len;
} jf_http_reply_t;

/* Fill reply for path. Runs on the server thread. */
typedef void (*jf_http_handler_fn)(const char *path, jf_http_reply_t *reply, void *arg);

/* Listen on addr ("host:port", "[v6]:port" or ":port" for every
 * interface). JF_ECONFIG for an unparsable address, JF_EIO when the port
 * cannot be bound. */
jf_status_t jf_httpd_start(jf_httpd_t **out, const char *addr, jf_http_handler_fn fn,
                           void *arg, jf_err_t *err);

/* Accepts NULL. */
void jf_httpd_stop(jf_httpd_t *h);

#endif /* JF_CORE_HTTPD_H */
