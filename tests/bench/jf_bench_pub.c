/*
 * jf_bench_pub.c - the pre-publisher of the benchmark (scripts/bench,
 * docs/performance.md).
 *
 * It fills the jobs stream before a consumer starts, so that the timed part
 * of a scenario is consumption alone. It publishes --count jobs on one
 * subject (--subject, diag.noop's by default), each with a distinct
 * Nats-Msg-Id <prefix>-<i> and a JSON payload {"note":"xxx..."} of exactly
 * --size bytes, or with --data TEXT the bytes of TEXT verbatim (then --size
 * is ignored: the size is TEXT's length; e.g. --subject
 * jobs.bench.diag.sleep --data '{"ms":10}'), through nats.c's
 * asynchronous JetStream publish with a bounded window of pending acks.
 * With --rate R it publishes open-loop at R messages a second instead:
 * message i leaves at start + i/R whatever the acks do, which is how the
 * benchmark's latency run loads a worker at a fixed fraction of its peak.
 * There are no retries: the server is local and nothing kills it, so any
 * failed or unanswered publish makes the run invalid and the exit status 1.
 *
 * Output: one JSON line on stdout,
 *   {"published":N,"acked":A,"failed":F,"duplicates":D,"elapsed_ms":T,"msgs_per_s":R}
 * Exit status: 0 when every publish was acknowledged as new, 1 otherwise,
 * 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define MAX_PENDING  4096   /* async publishes in flight */
#define MIN_SIZE     12     /* {"note":""} plus one byte */
#define MAX_SIZE     (512 * 1024)

typedef struct bench_pub {
    const char      *url;
    const char      *subject;
    const char      *prefix;
    const char      *data;        /* --data: the payload verbatim; NULL: {"note":"x..."} */
    uint32_t         count;
    uint32_t         size;
    int              timeout_s;
    uint32_t         rate;        /* messages a second; 0: as fast as acks allow */

    _Atomic uint64_t acked;
    _Atomic uint64_t failed;
    _Atomic uint64_t duplicates;
} bench_pub_t;

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs on the library's reply thread for every answered publish. */
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    bench_pub_t *b = closure;

    (void)js;
    (void)pae;
    if (pa != NULL) {
        if (pa->Duplicate)
            atomic_fetch_add(&b->duplicates, 1);
        else
            atomic_fetch_add(&b->acked, 1);
    } else {
        atomic_fetch_add(&b->failed, 1);
    }
    natsMsg_Destroy(m);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: jf_bench_pub --url URL --count N [--size BYTES | --data TEXT]\n"
               "                    [--subject S] [--prefix ID_PREFIX] [--timeout SECONDS]\n"
               "                    [--rate PER_S]\n"
               "  defaults: --size 128 --subject jobs.bench.diag.noop --prefix bench\n"
               "            --timeout 120\n"
               "  --size BYTES  payload {\"note\":\"xxx...\"} of exactly BYTES bytes (%d..%d)\n"
               "  --data TEXT   payload TEXT verbatim (1..%d bytes); --size is then ignored\n",
            MIN_SIZE, MAX_SIZE, MAX_SIZE);
}

static int parse_args(bench_pub_t *b, int argc, char **argv)
{
    b->subject = "jobs.bench.diag.noop";
    b->prefix = "bench";
    b->size = 128;
    b->timeout_s = 120;
    for (int k = 1; k < argc; k++) {
        const char   *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        char         *end = NULL;
        unsigned long n = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (v == NULL) {
            fprintf(stderr, "jf_bench_pub: %s needs a value\n", a);
            return -1;
        }
        k++;
        if (strcmp(a, "--url") == 0) {
            b->url = v;
            continue;
        }
        if (strcmp(a, "--subject") == 0) {
            b->subject = v;
            continue;
        }
        if (strcmp(a, "--prefix") == 0) {
            b->prefix = v;
            continue;
        }
        if (strcmp(a, "--data") == 0) {
            b->data = v;
            continue;
        }
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n > UINT32_MAX) {
            fprintf(stderr, "jf_bench_pub: bad value for %s: %s\n", a, v);
            return -1;
        }
        if (strcmp(a, "--count") == 0)
            b->count = (uint32_t)n;
        else if (strcmp(a, "--size") == 0)
            b->size = (uint32_t)n;
        else if (strcmp(a, "--timeout") == 0)
            b->timeout_s = (int)n;
        else if (strcmp(a, "--rate") == 0)
            b->rate = (uint32_t)n;
        else {
            fprintf(stderr, "jf_bench_pub: unknown option %s\n", a);
            return -1;
        }
    }
    if (b->data != NULL) {
        size_t len = strlen(b->data);

        if (len == 0 || len > MAX_SIZE) {
            fprintf(stderr, "jf_bench_pub: --data must be 1..%d bytes\n", MAX_SIZE);
            return -1;
        }
        b->size = (uint32_t)len;
    }
    if (b->url == NULL || b->count == 0 || b->timeout_s <= 0 ||
        (b->data == NULL && (b->size < MIN_SIZE || b->size > MAX_SIZE))) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_pub_t     b = { 0 };
    natsOptions    *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx          *js = NULL;
    jsOptions       jo;
    jsPubOptions    po;
    natsStatus      s;
    char           *data = NULL;
    char            id[128];
    int64_t         t0, deadline, elapsed_us;
    uint32_t        sent = 0;
    int             rc = 1;

    if (parse_args(&b, argc, argv) != 0)
        return 2;

    /* --data verbatim, or {"note":"xxxx...x"}: exactly --size bytes. */
    data = malloc(b.size);
    if (data == NULL) {
        fprintf(stderr, "jf_bench_pub: out of memory\n");
        return 1;
    }
    if (b.data != NULL) {
        memcpy(data, b.data, b.size);
    } else {
        memcpy(data, "{\"note\":\"", 9);
        memset(data + 9, 'x', b.size - 11);
        memcpy(data + b.size - 2, "\"}", 2);
    }

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, b.url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "jf_bench_pub");
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = MAX_PENDING;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = &b;
        jo.PublishAsync.StallWait = 5000;
        s = natsConnection_JetStream(&js, nc, &jo);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "jf_bench_pub: cannot connect to %s: %s\n", b.url, natsStatus_GetText(s));
        goto out;
    }

    t0 = now_us();
    deadline = t0 + (int64_t)b.timeout_s * 1000000;
    for (; sent < b.count && now_us() < deadline; sent++) {
        natsMsg *m = NULL;

        if (b.rate > 0) {   /* open loop: wait for this message's slot only */
            int64_t due = t0 + (int64_t)((double)sent * 1e6 / (double)b.rate), wait;
            while ((wait = due - now_us()) > 0) {
                struct timespec ts = { wait / 1000000, (long)(wait % 1000000) * 1000 };
                nanosleep(&ts, NULL);
            }
        }
        snprintf(id, sizeof(id), "%s-%" PRIu32, b.prefix, sent);
        s = natsMsg_Create(&m, b.subject, NULL, data, (int)b.size);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Content-Type", "application/json");
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);   /* no-op when the library took it */
        if (s != NATS_OK) {
            fprintf(stderr, "jf_bench_pub: publish %s: %s\n", id, natsStatus_GetText(s));
            break;
        }
    }
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)b.timeout_s * 1000;
    s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK)
        fprintf(stderr, "jf_bench_pub: not every publish was answered: %s\n",
                natsStatus_GetText(s));
    elapsed_us = now_us() - t0;

    printf("{\"published\":%" PRIu32 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"duplicates\":%" PRIu64 ",\"size\":%" PRIu32 ",\"elapsed_ms\":%.1f"
           ",\"msgs_per_s\":%.0f}\n",
           sent, atomic_load(&b.acked), atomic_load(&b.failed), atomic_load(&b.duplicates),
           b.size, (double)elapsed_us / 1000.0,
           elapsed_us > 0 ? (double)atomic_load(&b.acked) * 1e6 / (double)elapsed_us : 0.0);
    fflush(stdout);
    rc = (sent == b.count && atomic_load(&b.acked) == b.count) ? 0 : 1;

out:
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    free(data);
    return rc;
}
