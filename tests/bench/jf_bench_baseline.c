/*
 * jf_bench_baseline.c - the baseline of the benchmark (DESIGN.md section 10,
 * scripts/bench, docs/performance.md): the least a pull consumer can do.
 *
 * It binds to a durable pull consumer that already exists (created by
 * `jetfleet provision` with JF_POOL=baseline, or by itself with --create),
 * drives the pull protocol by hand over one plain subscription, acks each
 * message, and stops after --count messages. Nothing is decoded, stored or
 * published besides the acks, so jetfleet's throughput divided by this one's
 * is the cost of the runtime, with the same server, stream and messages.
 *
 * The pull protocol: a request {"batch":B,"expires":ns} published on
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> with our inbox as reply
 * asks for up to B messages, delivered to the inbox with a $JS.ACK.. reply
 * subject each. A request that ends early (it expired: 408, or the
 * consumer changed: 409) comes back as a status message without a reply
 * subject, whose Nats-Pending-Messages header says how many of the B were
 * not delivered. We keep about one and a half batches requested ahead and
 * ack with "+ACK" published to the message's reply subject.
 * natsSubscription_Fetch is deliberately not used: with a batch of 2 or
 * more it overflows the heap in nats.c 3.4.1.
 *
 * Output: one JSON line on stdout,
 *   {"consumed":N,"elapsed_ms":T,"msgs_per_s":R,"requests":Q,"status_msgs":S}
 * where the clock runs from the first pull request until every ack has been
 * flushed to the server. Exit status: 0 when --count messages were
 * consumed, 1 otherwise (time-out, lost connection), 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define WAIT_MS 1000   /* NextMsg wait; on a time-out every request is assumed gone */

typedef struct baseline {
    const char *url;
    const char *stream;
    const char *consumer;
    uint64_t    count;
    int64_t     batch;
    int64_t     expires_ms;
    int         timeout_s;
    bool        create;
} baseline_t;

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: jf_bench_baseline --url URL --count N [--stream S] [--consumer C]\n"
               "                         [--batch B] [--expires-ms MS] [--timeout SECONDS]\n"
               "                         [--create]\n"
               "  defaults: --stream JOBS --consumer baseline --batch 256 --expires-ms 2000\n"
               "            --timeout 120; --create adds the durable consumer (explicit ack)\n"
               "            instead of expecting `jetfleet provision` to have made it\n");
}

static int parse_args(baseline_t *b, int argc, char **argv)
{
    b->stream = "JOBS";
    b->consumer = "baseline";
    b->batch = 256;
    b->expires_ms = 2000;
    b->timeout_s = 120;
    for (int k = 1; k < argc; k++) {
        const char        *a = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        char              *end = NULL;
        unsigned long long n = 0;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--create") == 0) {
            b->create = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "jf_bench_baseline: %s needs a value\n", a);
            return -1;
        }
        k++;
        if (strcmp(a, "--url") == 0) {
            b->url = v;
            continue;
        }
        if (strcmp(a, "--stream") == 0) {
            b->stream = v;
            continue;
        }
        if (strcmp(a, "--consumer") == 0) {
            b->consumer = v;
            continue;
        }
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n > INT32_MAX) {
            fprintf(stderr, "jf_bench_baseline: bad value for %s: %s\n", a, v);
            return -1;
        }
        if (strcmp(a, "--count") == 0)
            b->count = n;
        else if (strcmp(a, "--batch") == 0)
            b->batch = (int64_t)n;
        else if (strcmp(a, "--expires-ms") == 0)
            b->expires_ms = (int64_t)n;
        else if (strcmp(a, "--timeout") == 0)
            b->timeout_s = (int)n;
        else {
            fprintf(stderr, "jf_bench_baseline: unknown option %s\n", a);
            return -1;
        }
    }
    if (b->url == NULL || b->count == 0 || b->batch <= 0 || b->expires_ms <= 0 ||
        b->timeout_s <= 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Create the durable consumer if it does not exist; an existing one with
 * the same configuration is fine. */
static natsStatus add_consumer(natsConnection *nc, const baseline_t *b)
{
    jsCtx           *js = NULL;
    jsConsumerConfig cc;
    jsConsumerInfo  *ci = NULL;
    jsErrCode        jerr = 0;
    natsStatus       s;

    s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) {
        jsConsumerConfig_Init(&cc);
        cc.Durable = b->consumer;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = (int64_t)30 * 1000000000;
        cc.MaxAckPending = 10000;
        s = js_AddConsumer(&ci, js, b->stream, &cc, NULL, &jerr);
    }
    if (s != NATS_OK)
        fprintf(stderr, "jf_bench_baseline: cannot add consumer %s on %s: %s (%d)\n",
                b->consumer, b->stream, natsStatus_GetText(s), (int)jerr);
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    return s;
}

int main(int argc, char **argv)
{
    baseline_t        b = { 0 };
    natsOptions      *opts = NULL;
    natsConnection   *nc = NULL;
    natsSubscription *sub = NULL;
    natsInbox        *inbox = NULL;
    natsStatus        s;
    char              next[512], req[96];
    int64_t           t0 = 0, deadline, elapsed_us = 0, outstanding = 0;
    uint64_t          consumed = 0, requests = 0, status_msgs = 0;
    int               rc = 1;

    if (parse_args(&b, argc, argv) != 0)
        return 2;
    snprintf(next, sizeof(next), "$JS.API.CONSUMER.MSG.NEXT.%s.%s", b.stream, b.consumer);
    snprintf(req, sizeof(req), "{\"batch\":%" PRId64 ",\"expires\":%" PRId64 "}", b.batch,
             b.expires_ms * 1000000);

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, b.url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "jf_bench_baseline");
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK) {
        fprintf(stderr, "jf_bench_baseline: cannot connect to %s: %s\n", b.url,
                natsStatus_GetText(s));
        goto out;
    }
    if (b.create && add_consumer(nc, &b) != NATS_OK)
        goto out;
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s != NATS_OK) {
        fprintf(stderr, "jf_bench_baseline: cannot subscribe: %s\n", natsStatus_GetText(s));
        goto out;
    }

    t0 = now_us();
    deadline = t0 + (int64_t)b.timeout_s * 1000000;
    while (consumed < b.count && now_us() < deadline) {
        natsMsg    *m = NULL;
        const char *reply, *pending = NULL;

        /* Keep between half a batch and one and a half batches asked for. */
        if (outstanding <= b.batch / 2) {
            s = natsConnection_PublishRequestString(nc, next, inbox, req);
            if (s != NATS_OK) {
                fprintf(stderr, "jf_bench_baseline: pull request: %s\n", natsStatus_GetText(s));
                break;
            }
            outstanding += b.batch;
            requests++;
        }
        s = natsSubscription_NextMsg(&m, sub, WAIT_MS);
        if (s == NATS_TIMEOUT) {
            outstanding = 0;   /* whatever was asked for has expired */
            continue;
        }
        if (s != NATS_OK) {
            fprintf(stderr, "jf_bench_baseline: next message: %s\n", natsStatus_GetText(s));
            break;
        }
        reply = natsMsg_GetReply(m);
        if (reply == NULL || reply[0] == '\0') {
            /* A status message: a request ended (408, 409) or found nothing
             * (404). Forget what it did not deliver. */
            status_msgs++;
            if (natsMsgHeader_Get(m, "Nats-Pending-Messages", &pending) == NATS_OK &&
                pending != NULL)
                outstanding -= strtoll(pending, NULL, 10);
            else
                outstanding = 0;
            if (outstanding < 0)
                outstanding = 0;
        } else {
            s = natsConnection_PublishString(nc, reply, "+ACK");
            if (s != NATS_OK) {
                fprintf(stderr, "jf_bench_baseline: ack: %s\n", natsStatus_GetText(s));
                natsMsg_Destroy(m);
                break;
            }
            consumed++;
            if (outstanding > 0)
                outstanding--;
        }
        natsMsg_Destroy(m);
    }
    /* The last acks must reach the server before the clock stops. */
    s = natsConnection_FlushTimeout(nc, 5000);
    elapsed_us = now_us() - t0;
    if (s != NATS_OK)
        fprintf(stderr, "jf_bench_baseline: flush: %s\n", natsStatus_GetText(s));
    if (consumed < b.count)
        fprintf(stderr, "jf_bench_baseline: consumed %" PRIu64 " of %" PRIu64 "\n", consumed,
                b.count);

    printf("{\"consumed\":%" PRIu64 ",\"elapsed_ms\":%.1f,\"msgs_per_s\":%.0f"
           ",\"requests\":%" PRIu64 ",\"status_msgs\":%" PRIu64 ",\"batch\":%" PRId64 "}\n",
           consumed, (double)elapsed_us / 1000.0,
           elapsed_us > 0 ? (double)consumed * 1e6 / (double)elapsed_us : 0.0, requests,
           status_msgs, b.batch);
    fflush(stdout);
    rc = (consumed == b.count && s == NATS_OK) ? 0 : 1;

out:
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
