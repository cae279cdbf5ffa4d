/*
 * jsmsg.c - JetStream message metadata and acknowledgements.
 *
 * Acks are plain publishes to the message's reply subject ("+ACK",
 * "-NAK {"delay":ns}", "+WPI", "+TERM"): no round trip on the job path.
 * A lost ack is safe: the server redelivers after AckWait and the ledger
 * (docs/reliability.md) recognises the job.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "core/jsmsg_internal.h"

struct jf_jsmsg {
    jf_nats_t  *nc;
    natsMsg    *msg;
    jf_jsmeta_t meta;
    bool        acked;
    bool        stale;
};

/* ---- metadata ------------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

jf_status_t jf_jsmeta_parse(const char *reply, jf_jsmeta_t *out, jf_err_t *err)
{
    char        buf[512];
    char       *tok[13];
    int         n = 0;
    char       *save = NULL;
    jf_jsmeta_t m;
    int         base;
    uint64_t    ts;

    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
        return jf_err_set(err, JF_EINVAL, "reply subject '%.100s' is not a JetStream ack subject",
                          reply ? reply : "(none)");
    if (strlcpy(buf, reply, sizeof(buf)) >= sizeof(buf))
        return jf_err_set(err, JF_EINVAL, "reply subject is too long");
    for (char *t = strtok_r(buf, ".", &save); t != NULL && n < 13; t = strtok_r(NULL, ".", &save))
        tok[n++] = t;

    memset(&m, 0, sizeof(m));
    if (n == 9) {
        base = 2;
    } else if (n >= 12) {
        /* $JS.ACK.<domain>.<account hash>.<stream>... ; "_" means no domain */
        if (strcmp(tok[2], "_") != 0)
            strlcpy(m.domain, tok[2], sizeof(m.domain));
        base = 4;
    } else {
        return jf_err_set(err, JF_EINVAL, "ack subject '%.100s' has %d tokens, expected 9 or 12",
                          reply, n);
    }
    strlcpy(m.stream, tok[base], sizeof(m.stream));
    strlcpy(m.consumer, tok[base + 1], sizeof(m.consumer));
    if (!parse_u64(tok[base + 2], &m.delivered) || !parse_u64(tok[base + 3], &m.stream_seq) ||
        !parse_u64(tok[base + 4], &m.consumer_seq) || !parse_u64(tok[base + 5], &ts) ||
        !parse_u64(tok[base + 6], &m.pending))
        return jf_err_set(err, JF_EINVAL, "ack subject '%.100s' has a non-numeric field", reply);
    m.timestamp_ns = (int64_t)ts;
    *out = m;
    return JF_OK;
}

jf_status_t jf_jsmsg_wrap(jf_jsmsg_t **out, jf_nats_t *nc, natsMsg *msg, jf_err_t *err)
{
    jf_jsmsg_t *m;
    jf_status_t st;

    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    st = jf_jsmeta_parse(natsMsg_GetReply(msg), &m->meta, err);
    if (st != JF_OK) {
        free(m);
        return st;
    }
    m->nc = nc;
    m->msg = msg;
    *out = m;
    return JF_OK;
}

/* ---- accessors ------------------------------------------------------------ */

natsMsg *jf_jsmsg_raw(const jf_jsmsg_t *m)
{
    return m->msg;
}

const char *jf_jsmsg_subject(const jf_jsmsg_t *m)
{
    return natsMsg_GetSubject(m->msg);
}

const char *jf_jsmsg_reply(const jf_jsmsg_t *m)
{
    return natsMsg_GetReply(m->msg);
}

const char *jf_jsmsg_data(const jf_jsmsg_t *m)
{
    return natsMsg_GetData(m->msg);
}

size_t jf_jsmsg_len(const jf_jsmsg_t *m)
{
    int n = natsMsg_GetDataLength(m->msg);
    return n > 0 ? (size_t)n : 0;
}

size_t jf_jsmsg_size(const jf_jsmsg_t *m)
{
    const char **keys = NULL;
    int          count = 0;
    size_t       size = jf_jsmsg_len(m);

    if (natsMsgHeader_Keys(m->msg, &keys, &count) != NATS_OK)
        return size;
    for (int i = 0; i < count; i++) {
        const char **vals = NULL;
        int          nv = 0;
        size += strlen(keys[i]) + 4;
        if (natsMsgHeader_Values(m->msg, keys[i], &vals, &nv) == NATS_OK) {
            for (int j = 0; j < nv; j++)
                size += strlen(vals[j]);
            free((void *)vals);
        }
    }
    free((void *)keys);
    return size;
}

const jf_jsmeta_t *jf_jsmsg_meta(const jf_jsmsg_t *m)
{
    return &m->meta;
}

const char *jf_jsmsg_header(const jf_jsmsg_t *m, const char *name)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(m->msg, name, &v) != NATS_OK)
        return NULL;
    return v;
}

bool jf_jsmsg_stale(const jf_jsmsg_t *m)
{
    return m->stale;
}

void jf_jsmsg_mark_stale(jf_jsmsg_t *m)
{
    m->stale = true;
}

bool jf_jsmsg_acked(const jf_jsmsg_t *m)
{
    return m->acked;
}

/* ---- acknowledgements ----------------------------------------------------- */

static jf_status_t send_ack(jf_jsmsg_t *m, const char *body, bool final, jf_err_t *err)
{
    const char *reply = natsMsg_GetReply(m->msg);
    natsStatus  s;

    if (m->acked)
        return jf_err_set(err, JF_ESTATE, "message %" PRIu64 " was already acknowledged",
                          m->meta.stream_seq);
    s = natsConnection_Publish(m->nc->conn, reply, body, (int)strlen(body));
    if (s != NATS_OK)
        return jf_nats_status(s, err, "acknowledging a job");
    if (final)
        m->acked = true;
    return JF_OK;
}

jf_status_t jf_jsmsg_ack(jf_jsmsg_t *m, jf_err_t *err)
{
    return send_ack(m, "+ACK", true, err);
}

jf_status_t jf_jsmsg_nak(jf_jsmsg_t *m, uint32_t delay_ms, jf_err_t *err)
{
    char body[64];

    if (delay_ms == 0)
        return send_ack(m, "-NAK", true, err);
    snprintf(body, sizeof(body), "-NAK {\"delay\":%" PRIu64 "}", (uint64_t)delay_ms * 1000000u);
    return send_ack(m, body, true, err);
}

jf_status_t jf_jsmsg_progress(jf_jsmsg_t *m, jf_err_t *err)
{
    return send_ack(m, "+WPI", false, err);
}

jf_status_t jf_jsmsg_term(jf_jsmsg_t *m, jf_err_t *err)
{
    return send_ack(m, "+TERM", true, err);
}

void jf_jsmsg_destroy(jf_jsmsg_t *m)
{
    if (m == NULL)
        return;
    natsMsg_Destroy(m->msg);
    free(m);
}
