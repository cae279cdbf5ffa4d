/*
 * test_notifications.c - subscriptions, notifications and webhooks working
 * together through their contracts, end to end: real workers, a real
 * nats-server, a real HTTP receiver that verifies signatures (receiver.h).
 *
 * Covers: endpoints kept by subscriptions.upsert/remove in their KV bucket;
 * notifications.publish fanning out to exactly the subscribed, enabled
 * endpoints, one webhooks.deliver child each, with ids <parent>/<endpoint>;
 * a parent that is retried half-way through its fan-out, and parents whose
 * worker is SIGKILLed mid-fan-out, still give exactly one delivery per
 * endpoint; 410 Gone disables the endpoint through subscriptions.v1; a
 * child cannot leave its parent's tenant, and the policy applies to it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <jetfleet/subscriptions/v1/subscriptions.pb-c.h>

#include "harness.h"
#include "receiver.h"

static jf_h_server_t   srv;
static natsConnection *nc;
static char            env_policy[400], env_secrets[400];

/* Server, policy (acme may run all three modules and reach 127.0.0.1;
 * "webless" may publish notifications but not run webhooks), secrets,
 * streams and the pools' consumers. */
static void setup(void)
{
    const char *const tenants[] = { "acme", NULL };

    jf_r_start();
    jf_h_server_start(&srv);
    nc = jf_h_connect(&srv);
    jf_r_tenant_files(srv.dir,
                      "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
                      "\"acme\":{\"job_types\":[\"webhooks.*\",\"subscriptions.*\",\"notifications.*\"],"
                      "\"egress_allow\":[\"127.0.0.1/32\"]},"
                      "\"webless\":{\"job_types\":[\"subscriptions.*\",\"notifications.*\"],"
                      "\"egress_allow\":[\"127.0.0.1/32\"]}}}",
                      tenants, env_policy, sizeof(env_policy), env_secrets, sizeof(env_secrets));
}

static void teardown(void)
{
    natsConnection_Destroy(nc);
    jf_h_server_stop(&srv);
    jf_r_stop();
}

/* Provision one pool (consumer) with a filter; ack_wait e.g. "30s". */
static void provision_pool(const char *pool, const char *filter, const char *ack_wait)
{
    char        p[80], f[120], a[40];
    const char *env[] = { p, f, a, NULL };

    snprintf(p, sizeof(p), "JF_POOL=%s", pool);
    snprintf(f, sizeof(f), "JF_POOL_FILTER=%s", filter);
    snprintf(a, sizeof(a), "JF_ACK_WAIT=%s", ack_wait);
    jf_h_provision(&srv, env);
}

static void worker(const char *tag, const char *pool, jf_h_proc_t *w)
{
    char        p[80];
    const char *env[] = { "JF_LOG_LEVEL=debug", env_policy, env_secrets, p,
                          "JF_CONCURRENCY=8", NULL };

    snprintf(p, sizeof(p), "JF_POOL=%s", pool);
    jf_h_worker_start(&srv, tag, env, w);
    jf_h_wait_started(w);
}

static void publish(const char *tenant, const char *type, const char *id, const char *json)
{
    char subject[128];

    snprintf(subject, sizeof(subject), "jobs.%s.%s", tenant, type);
    cr_assert(jf_h_publish(nc, subject, json, (int)strlen(json), id, NULL), "%s was a duplicate",
              id);
}

/* subscriptions.upsert as job id. */
static void upsert_as(const char *id, const char *tenant, const char *ep, const char *path,
                      const char *types, bool disabled)
{
    char json[512];

    snprintf(json, sizeof(json),
             "{\"endpoint_id\":\"%s\",\"url\":\"http://127.0.0.1:%d%s\",\"event_types\":%s%s}",
             ep, jf_r_port(), path, types, disabled ? ",\"disabled\":true" : "");
    publish(tenant, "subscriptions.upsert", id, json);
}

/* The same, as job "up-<tenant>-<ep>-on" (or -off). */
static void upsert(const char *tenant, const char *ep, const char *path, const char *types,
                   bool disabled)
{
    char id[96];

    snprintf(id, sizeof(id), "up-%s-%s-%s", tenant, ep, disabled ? "off" : "on");
    upsert_as(id, tenant, ep, path, types, disabled);
}

/* Lines of w's log for job id with msg (and extra, may be NULL). */
static int logged(const jf_h_proc_t *w, const char *id, const char *msg, const char *extra,
                  int want, int timeout_ms)
{
    char idf[200], msgf[80];

    snprintf(idf, sizeof(idf), "\"job_id\":\"%s\"", id);
    snprintf(msgf, sizeof(msgf), "\"msg\":\"%s\"", msg);
    const char *const n[] = { idf, msgf, extra, NULL };
    return jf_h_wait_lines(w->err_path, n, want, timeout_ms);
}

/* Jobs run concurrently: wait until w ran n upserts in all. */
static void wait_upserts(const jf_h_proc_t *w, int n)
{
    const char *const needles[] = { "\"type\":\"subscriptions.upsert\"",
                                    "\"msg\":\"job succeeded\"", NULL };

    cr_assert_eq(jf_h_wait_lines(w->err_path, needles, n, 30000), n, "%s",
                 jf_h_slurp(w->err_path));
}

/* Wait until the receiver saw want distinct webhook-ids. */
static int wait_distinct(int want, int timeout_ms)
{
    int dups, conflicts, n = 0;

    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        n = jf_r_distinct(&dups, &conflicts);
        if (n >= want)
            break;
        jf_h_sleep_ms(50);
    }
    return n;
}

/* The endpoint as stored in JF_SUBSCRIPTIONS, read with plain KV calls
 * (what `nats kv get JF_SUBSCRIPTIONS <tenant>` shows). */
static Jetfleet__Subscriptions__V1__EndpointSet *stored(const char *tenant)
{
    jsCtx   *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    Jetfleet__Subscriptions__V1__EndpointSet *set = NULL;

    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_KeyValue(&kv, js, "JF_SUBSCRIPTIONS"), NATS_OK);
    if (kvStore_Get(&e, kv, tenant) == NATS_OK) {
        set = jetfleet__subscriptions__v1__endpoint_set__unpack(
            NULL, (size_t)kvEntry_ValueLen(e), kvEntry_Value(e));
        cr_assert_not_null(set, "the stored value is not an EndpointSet");
        kvEntry_Destroy(e);
    }
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    return set;
}

static const Jetfleet__Subscriptions__V1__Endpoint *
find_ep(const Jetfleet__Subscriptions__V1__EndpointSet *set, const char *id)
{
    for (size_t i = 0; set != NULL && i < set->n_endpoints; i++)
        if (strcmp(set->endpoints[i]->id, id) == 0)
            return set->endpoints[i];
    return NULL;
}

/* ---- tests ----------------------------------------------------------------------------- */

Test(notifications, an_event_reaches_exactly_its_subscribed_endpoints, .init = setup,
     .fini = teardown)
{
    jf_h_proc_t w;
    jf_r_req_t  r;
    int         dups, conflicts;
    const char *ids[] = { "evt-1/ep-a", "evt-1/ep-b", "evt-1/ep-c" };
    Jetfleet__Subscriptions__V1__EndpointSet *set;

    provision_pool("default", "jobs.>", "30s");
    worker("w", "default", &w);

    upsert("acme", "ep-a", "/a", "[\"order.*\"]", false);
    upsert("acme", "ep-b", "/b", "[]", false);
    upsert("acme", "ep-c", "/c", "[\"order.paid\",\"invoice.sent\"]", false);
    upsert("acme", "ep-d", "/d", "[\"invoice.*\"]", false);     /* another event type */
    upsert("acme", "ep-e", "/e", "[]", true);                   /* disabled */
    upsert("acme", "ep-f", "/f", "[]", false);
    wait_upserts(&w, 6);   /* remove ep-f only once it exists */
    publish("acme", "subscriptions.remove", "rm-f", "{\"endpoint_id\":\"ep-f\"}");
    cr_assert_eq(logged(&w, "rm-f", "job succeeded", NULL, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));

    set = stored("acme");
    cr_assert_not_null(set);
    cr_assert_eq(set->n_endpoints, 5, "ep-a..ep-e stored, ep-f removed");
    cr_assert_str_eq(set->endpoints[0]->id, "ep-a", "kept in id order");
    cr_assert(!find_ep(set, "ep-e")->enabled);
    cr_assert_null(find_ep(set, "ep-f"));
    jetfleet__subscriptions__v1__endpoint_set__free_unpacked(set, NULL);

    publish("acme", "notifications.publish", "evt-1",
            "{\"event_type\":\"order.paid\",\"data\":\"{\\\"order\\\":7}\"}");
    cr_assert_eq(logged(&w, "evt-1", "job succeeded", NULL, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(wait_distinct(3, 15000), 3, "%s", jf_h_slurp(w.err_path));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(jf_r_seen(ids[i], &r), 1, "one delivery with webhook-id %s", ids[i]);
        cr_assert_str_eq(r.body, "{\"order\":7}");
        cr_assert_eq(r.sigs_ok, 2, "signed with both of the tenant's secrets");
        cr_assert(r.headers_ok);
        cr_assert_eq(logged(&w, ids[i], "job succeeded", NULL, 1, 5000), 1);
    }
    /* nothing else arrives: not ep-d (other type), ep-e (disabled), ep-f (removed) */
    jf_h_sleep_ms(1000);
    cr_assert_eq(jf_r_distinct(&dups, &conflicts), 3);
    cr_assert_eq(dups, 0);
    cr_assert_eq(jf_r_seen_total(), 3);

    /* upsert is idempotent: the same job again changes nothing */
    upsert_as("up-again", "acme", "ep-b", "/b", "[]", false);
    cr_assert_eq(logged(&w, "up-again", "job succeeded", NULL, 1, 15000), 1);
    set = stored("acme");
    cr_assert_str_eq(find_ep(set, "ep-b")->updated_by, "up-acme-ep-b-on", "nothing was written");
    jetfleet__subscriptions__v1__endpoint_set__free_unpacked(set, NULL);

    /* the children carry the parent's trace and tenant */
    {
        char **lines;
        int    n = 0;
        const char *const needles[] = { "\"job_id\":\"evt-1/ep-a\"", "\"tenant\":\"acme\"",
                                        "\"msg\":\"job succeeded\"", NULL };
        lines = jf_h_grep(w.err_path, needles, &n);
        cr_assert_eq(n, 1);
        jf_h_grep_free(lines, n);
    }
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* The parent is retried half-way through its fan-out: the stream refuses
 * its third child (it is full), so the parent NAKs with a delay; meanwhile
 * the first two children are delivered. The retry enqueues all three
 * again: JetStream drops the two it has seen (same Nats-Msg-Id within the
 * duplicate window), stores the third, and each endpoint gets exactly one
 * delivery. */
Test(notifications, a_parent_retried_mid_fanout_delivers_once_per_endpoint, .init = setup,
     .fini = teardown)
{
    jf_h_proc_t w, hooks;
    int         dups, conflicts, state = 0;
    unsigned    attempts = 0;

    provision_pool("subs", "jobs.*.subscriptions.>", "30s");
    provision_pool("notify", "jobs.*.notifications.>", "30s");
    provision_pool("hooks", "jobs.*.webhooks.>", "30s");
    worker("subs", "subs", &w);
    upsert("acme", "ep-1", "/1", "[]", false);
    upsert("acme", "ep-2", "/2", "[]", false);
    upsert("acme", "ep-3", "/3", "[]", false);
    wait_upserts(&w, 3);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_wait_stream_msgs(nc, "JOBS", 0, 5000), 0);

    /* room for the parent and two children only */
    {
        jsCtx          *js = NULL;
        jsStreamInfo   *si = NULL, *upd = NULL;
        jsStreamConfig  sc;

        cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
        cr_assert_eq(js_GetStreamInfo(&si, js, "JOBS", NULL, NULL), NATS_OK);
        sc = *si->Config;
        sc.MaxMsgs = 3;
        sc.Discard = js_DiscardNew;
        cr_assert_eq(js_UpdateStream(&upd, js, &sc, NULL, NULL), NATS_OK);
        jsStreamInfo_Destroy(upd);
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
    }

    worker("notify", "notify", &w);
    publish("acme", "notifications.publish", "evt-r",
            "{\"event_type\":\"order.paid\",\"data\":\"{\\\"n\\\":1}\"}");
    /* At least once: with full jitter the first retry may come after a few
     * ms and fail the same way before the children are drained. */
    cr_assert_geq(logged(&w, "evt-r", "job will be retried", "ep-3", 1, 15000), 1, "%s",
                  jf_h_slurp(w.err_path));
    cr_assert_eq(jf_h_stream_msgs(nc, "JOBS"), 3, "the parent and two children");

    worker("hooks", "hooks", &hooks);   /* drains the two children */
    cr_assert_eq(logged(&w, "evt-r", "job succeeded", NULL, 1, 30000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_eq(wait_distinct(3, 15000), 3);
    jf_h_sleep_ms(1000);
    cr_assert_eq(jf_r_distinct(&dups, &conflicts), 3);
    cr_assert_eq(dups, 0, "an endpoint got a second delivery");
    cr_assert_eq(jf_r_seen_total(), 3);
    cr_assert(jf_h_ledger(nc, "acme.notifications.publish.evt-r", &state, &attempts));
    cr_assert_geq(attempts, 2, "the parent ran again after the fan-out failed");
    cr_assert_eq(jf_h_proc_stop(&hooks, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* Workers SIGKILLed while they fan out: every endpoint of every event gets
 * its delivery, and a webhook-id that arrives twice (possible only when a
 * worker dies between the POST and the ledger write) always carries the
 * same body, which receivers deduplicate on. */
Test(notifications, killing_workers_mid_fanout_loses_and_changes_nothing, .init = setup,
     .fini = teardown)
{
    enum { ENDPOINTS = 20, EVENTS = 40 };
    jf_h_proc_t w, hooks;
    int         dups, conflicts, distinct, retried = 0;
    char        ep[16], path[16], id[32], json[160], key[96];

    provision_pool("subs", "jobs.*.subscriptions.>", "30s");
    provision_pool("notify", "jobs.*.notifications.>", "2s");
    provision_pool("hooks", "jobs.*.webhooks.>", "30s");
    worker("subs", "subs", &w);
    for (int i = 0; i < ENDPOINTS; i++) {
        snprintf(ep, sizeof(ep), "ep-%02d", i);
        snprintf(path, sizeof(path), "/k%02d", i);
        upsert("acme", ep, path, "[]", false);
    }
    wait_upserts(&w, ENDPOINTS);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    worker("hooks", "hooks", &hooks);

    for (int i = 0; i < EVENTS; i++) {
        snprintf(id, sizeof(id), "kill-%02d", i);
        snprintf(json, sizeof(json), "{\"event_type\":\"order.paid\",\"data\":\"{\\\"e\\\":%d}\"}",
                 i);
        publish("acme", "notifications.publish", id, json);
    }
    /* a worker that is killed soon after it starts, four times over */
    for (int k = 0; k < 4; k++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "notify%d", k);
        worker(tag, "notify", &w);
        jf_h_sleep_ms(20 + 20 * k);
        jf_h_proc_stop(&w, SIGKILL, 5000);
    }
    worker("notify-last", "notify", &w);

    distinct = wait_distinct(ENDPOINTS * EVENTS, 60000);
    jf_h_sleep_ms(1000);
    distinct = jf_r_distinct(&dups, &conflicts);
    cr_assert_eq(distinct, ENDPOINTS * EVENTS, "every endpoint of every event, once: %d of %d "
                 "(%d repeated)", distinct, ENDPOINTS * EVENTS, dups);
    cr_assert_eq(conflicts, 0, "a repeated webhook-id carried a different body");
    for (int i = 0; i < EVENTS; i++) {
        int      state = 0;
        unsigned attempts = 0;
        snprintf(key, sizeof(key), "acme.notifications.publish.kill-%02d", i);
        cr_assert(jf_h_ledger(nc, key, &state, &attempts), "no ledger record for %s", key);
        cr_assert_eq(state, 2 /* succeeded */, "%s", key);
        retried += attempts > 1;
    }
    cr_log_info("%d of %d events ran more than once; %d repeated deliveries, same bodies",
                retried, EVENTS, dups);
    cr_assert_gt(retried, 0, "no kill landed during a fan-out: the test proved nothing");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
    cr_assert_eq(jf_h_proc_stop(&hooks, SIGTERM, 10000), 0);
}

/* 410 Gone disables the endpoint through subscriptions.v1: the next event
 * is not sent there any more. */
Test(notifications, gone_disables_the_endpoint, .init = setup, .fini = teardown)
{
    jf_h_proc_t w;
    Jetfleet__Subscriptions__V1__EndpointSet *set;
    const Jetfleet__Subscriptions__V1__Endpoint *e;

    provision_pool("default", "jobs.>", "30s");
    worker("w", "default", &w);
    upsert("acme", "ep-live", "/live", "[]", false);
    upsert("acme", "ep-gone", "/gone", "[]", false);
    wait_upserts(&w, 2);
    publish("acme", "notifications.publish", "g-1", "{\"event_type\":\"a.b\",\"data\":\"1\"}");
    cr_assert_eq(logged(&w, "g-1/ep-gone", "job failed", "endpoint ep-gone disabled", 1, 15000),
                 1, "%s", jf_h_slurp(w.err_path));
    cr_assert_eq(jf_r_seen("g-1/ep-gone", NULL), 1, "410 is not retried");
    set = stored("acme");
    e = find_ep(set, "ep-gone");
    cr_assert_not_null(e);
    cr_assert(!e->enabled);
    cr_assert(strstr(e->disabled_reason, "HTTP 410 Gone") != NULL, "%s", e->disabled_reason);
    cr_assert_str_eq(e->updated_by, "g-1/ep-gone");
    cr_assert(find_ep(set, "ep-live")->enabled);
    jetfleet__subscriptions__v1__endpoint_set__free_unpacked(set, NULL);

    publish("acme", "notifications.publish", "g-2", "{\"event_type\":\"a.b\",\"data\":\"2\"}");
    cr_assert_eq(logged(&w, "g-2/ep-live", "job succeeded", NULL, 1, 15000), 1);
    jf_h_sleep_ms(500);
    cr_assert_eq(jf_r_seen("g-2/ep-gone", NULL), 0, "a disabled endpoint got an event");

    /* an upsert enables it again */
    upsert_as("up-revive", "acme", "ep-gone", "/gone", "[\"a.*\"]", false);
    cr_assert_eq(logged(&w, "up-revive", "job succeeded", NULL, 1, 15000), 1);
    set = stored("acme");
    cr_assert(find_ep(set, "ep-gone")->enabled);
    cr_assert_str_eq(find_ep(set, "ep-gone")->disabled_reason, "");
    jetfleet__subscriptions__v1__endpoint_set__free_unpacked(set, NULL);
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}

/* The policy applies to children: a tenant that may not run webhooks
 * cannot get them run by publishing a notification, and its fan-out fails
 * with the reason instead of leaving dead children. Bad input fails. */
Test(notifications, children_obey_the_tenant_policy_and_bad_input_fails, .init = setup,
     .fini = teardown)
{
    jf_h_proc_t w;

    provision_pool("default", "jobs.>", "30s");
    worker("w", "default", &w);
    upsert("webless", "ep-x", "/x", "[]", false);
    cr_assert_eq(logged(&w, "up-webless-ep-x-on", "job succeeded", NULL, 1, 15000), 1);
    publish("webless", "notifications.publish", "wl-1", "{\"event_type\":\"a.b\",\"data\":\"1\"}");
    cr_assert_eq(logged(&w, "wl-1", "job failed", "failed: not authorized", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    {
        const char *const n[] = { "\"job_id\":\"wl-1\"", "wl-1/ep-x (webhooks.deliver) not enqueued",
                                  "webhooks.deliver", NULL };
        cr_assert_eq(jf_h_count_lines(w.err_path, n), 1, "the reason is logged");
    }
    cr_assert_eq(jf_r_seen_total(), 0, "nothing may be sent for webless");

    /* bad payloads: clear reasons, dead-lettered, nothing stored or sent */
    publish("acme", "subscriptions.upsert", "bad-url",
            "{\"endpoint_id\":\"e1\",\"url\":\"ftp://x\"}");
    cr_assert_eq(logged(&w, "bad-url", "job failed", "url must be http", 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    publish("acme", "subscriptions.upsert", "bad-id",
            "{\"endpoint_id\":\"no spaces\",\"url\":\"http://127.0.0.1/\"}");
    cr_assert_eq(logged(&w, "bad-id", "job failed", "endpoint_id must be", 1, 15000), 1);
    publish("acme", "notifications.publish", "bad-type", "{\"event_type\":\"Bad Type\"}");
    cr_assert_eq(logged(&w, "bad-type", "job failed", "event_type must be", 1, 15000), 1);
    /* a payload naming another tenant is rejected before any handler */
    publish("acme", "subscriptions.upsert", "cross",
            "{\"endpoint_id\":\"e2\",\"url\":\"http://127.0.0.1/\",\"tenant\":\"webless\"}");
    cr_assert_eq(logged(&w, "cross", "job rejected", NULL, 1, 15000), 1, "%s",
                 jf_h_slurp(w.err_path));
    cr_assert_null(stored("acme"), "nothing was stored for acme");
    cr_assert_eq(jf_h_proc_stop(&w, SIGTERM, 10000), 0);
}
