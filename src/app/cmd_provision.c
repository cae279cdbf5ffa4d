/*
 * cmd_provision.c - `jetfleet provision`: create or update, idempotently,
 * the JOBS work queue, the DLQ and AUDIT streams, the JF_LEDGER bucket and
 * the pool's durable pull consumer. Workers never create any of these.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/modules.h"
#include "core/jsadmin.h"
#include "core/registry_impl.h"
#include "shared/ids.h"

static void help(void)
{
    printf("usage: jetfleet provision [--pool NAME] [--filter SUBJECT] [--region R [--cluster C]]\n"
           "\n"
           "Create or update the JetStream objects jetfleet needs; safe to run again:\n"
           "  stream   $JF_STREAM (default JOBS)  work queue on <prefix>.>, file storage,\n"
           "                                      duplicate window JF_DUPLICATE_WINDOW\n"
           "  stream   DLQ                        dead letters on dlq.>\n"
           "  stream   AUDIT                      lifecycle events on telemetry.jobs.>\n"
           "  bucket   JF_LEDGER                  one record per job, TTL JF_LEDGER_TTL\n"
           "  bucket   each module's own buckets  e.g. JF_SUBSCRIPTIONS (jetfleet modules)\n"
           "  consumer <pool> on $JF_STREAM        durable pull consumer of the pool\n"
           "\n"
           "options:\n"
           "  --pool NAME       pool (consumer) to create; default JF_POOL\n"
           "  --filter SUBJECT  the pool's filter subject; default JF_POOL_FILTER or <prefix>.>\n"
           "  --region R        provision region R (default JF_REGION): JOBS_R on <prefix>.R.>,\n"
           "                    DLQ_R on dlq.R.>, AUDIT_R on telemetry.jobs.R.>, JF_LEDGER_R, all\n"
           "                    placed in cluster R; and the global AUDIT, which sources every\n"
           "                    region's AUDIT_R. JF_REGION=local (the default) is one region\n"
           "                    with the plain names above.\n"
           "  --cluster C       place the region's objects in cluster C instead of R\n"
           "\n"
           "Pools on one stream must have filters that do not overlap (a work-queue\n"
           "stream gives each message to exactly one consumer).\n");
}

static int report(const char *kind, const char *name, jf_status_t st, jf_prov_result_t r,
                  const jf_err_t *err)
{
    (void)name;
    if (st != JF_OK) {
        /* err already names the object ("stream JOBS: ..."). */
        jf_cli_error("%s", jf_err_msg(err));
        return jf_cli_exit_code(st);
    }
    printf("%-8s %-12s %s\n", kind, name, jf_prov_result_str(r));
    return JF_EXIT_OK;
}

int jf_cmd_provision(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pool", required_argument, NULL, 'p' },
        { "filter", required_argument, NULL, 'f' },
        { "region", required_argument, NULL, 'r' },
        { "cluster", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    jf_config_t      cfg;
    jf_nats_t       *nc = NULL;
    jf_registry_t   *reg = NULL;
    jf_err_t         err = { 0 };
    jf_prov_result_t r = JF_PROV_UNCHANGED;
    jf_status_t      st;
    const char      *pool = NULL, *filter = NULL, *region = NULL, *cluster = NULL;
    char             jobs_subject[160], default_filter[160];
    int              c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:f:r:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pool = optarg; break;
        case 'f': filter = optarg; break;
        case 'r': region = optarg; break;
        case 'c': cluster = optarg; break;
        case 'h': help(); return JF_EXIT_OK;
        default:  return JF_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        jf_cli_error("provision: unexpected argument '%s'", argv[optind]);
        return JF_EXIT_USAGE;
    }
    rc = jf_cli_load_config(&cfg);
    if (rc != JF_EXIT_OK)
        return rc;
    if (region != NULL && jf_config_set_region(&cfg, region, &err) != JF_OK) {
        jf_cli_error("provision: --region: %s", jf_err_msg(&err));
        rc = JF_EXIT_USAGE;
        goto out;
    }
    if (cluster != NULL && !cfg.names.regional) {
        jf_cli_error("provision: --cluster places a region's objects; give --region (or "
                     "JF_REGION) too");
        rc = JF_EXIT_USAGE;
        goto out;
    }
    if (cluster == NULL && cfg.names.regional)
        cluster = cfg.names.region;   /* by convention the region's cluster has its name */
    if (pool == NULL)
        pool = cfg.pool;
    snprintf(jobs_subject, sizeof(jobs_subject), "%s.>", cfg.names.jobs_prefix);
    snprintf(default_filter, sizeof(default_filter), "%s", jobs_subject);
    if (filter == NULL)
        filter = cfg.pool_filter[0] ? cfg.pool_filter : default_filter;
    if (jf_token_check(pool, strlen(pool), JF_TOKEN_MAX, "pool", &err) != JF_OK) {
        jf_cli_error("provision: --pool: %s", jf_err_msg(&err));
        rc = JF_EXIT_USAGE;
        goto out;
    }
    if (jf_app_registry(&reg, &err) != JF_OK) {
        jf_cli_error("%s", jf_err_msg(&err));
        rc = JF_EXIT_FAIL;
        goto out;
    }
    rc = jf_cli_connect(&cfg, "jetfleet-provision", &nc);
    if (rc != JF_EXIT_OK)
        goto out;

    {
        const char *const subjects[] = { jobs_subject };
        jf_stream_spec_t s = {
            .name = cfg.names.jobs_stream, .description = "jetfleet jobs (work queue)",
            .subjects = subjects, .nsubjects = 1, .retention = JF_RETENTION_WORKQUEUE,
            .max_msg_size = (int32_t)cfg.max_payload, .duplicates_ms = cfg.duplicate_window,
            .replicas = (int)cfg.stream_replicas, .placement_cluster = cluster,
        };
        st = jf_js_ensure_stream(nc, &s, &r, &err);
        if ((rc = report("stream", s.name, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    {
        char              subj[64];
        const char *const subjects[] = { subj };
        jf_stream_spec_t  s = {
            .name = cfg.names.dlq_stream, .description = "jetfleet dead letters",
            .subjects = subjects, .nsubjects = 1, .retention = JF_RETENTION_LIMITS,
            .max_age_ms = cfg.dlq_max_age, .duplicates_ms = cfg.duplicate_window,
            .replicas = (int)cfg.stream_replicas, .placement_cluster = cluster,
        };
        snprintf(subj, sizeof(subj), "%s.>", cfg.names.dlq_prefix);
        st = jf_js_ensure_stream(nc, &s, &r, &err);
        if ((rc = report("stream", s.name, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    {
        char              subj[80];
        const char *const subjects[] = { subj };
        jf_stream_spec_t  s = {
            .name = cfg.names.audit_stream, .description = "jetfleet job lifecycle events",
            .subjects = subjects, .nsubjects = 1, .retention = JF_RETENTION_LIMITS,
            .max_age_ms = cfg.audit_max_age, .duplicates_ms = cfg.duplicate_window,
            .replicas = (int)cfg.stream_replicas, .placement_cluster = cluster,
        };
        snprintf(subj, sizeof(subj), "%s.>", cfg.names.telemetry_prefix);
        st = jf_js_ensure_stream(nc, &s, &r, &err);
        if ((rc = report("stream", s.name, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    if (cfg.names.regional) {
        /* The global AUDIT: no subjects of its own, it sources every
         * region's AUDIT_<region>; each region's provision adds its own,
         * once that stream answers (its leader is elected): a source added
         * before is retried by the server only after a back-off. */
        const char *const sources[] = { cfg.names.audit_stream };
        jf_stream_spec_t  s = {
            .name = JF_AUDIT_GLOBAL, .description = "jetfleet job lifecycle events, all regions",
            .retention = JF_RETENTION_LIMITS, .max_age_ms = cfg.audit_max_age,
            .replicas = (int)cfg.global_audit_replicas, .sources = sources, .nsources = 1,
        };
        jf_stream_state_t ss;

        for (int i = 0; i < 100 && jf_js_stream_state(nc, s.sources[0], &ss, NULL) != JF_OK; i++)
            usleep(100 * 1000);
        st = jf_js_ensure_stream(nc, &s, &r, &err);
        if ((rc = report("stream", s.name, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    {
        jf_kv_spec_t k = {
            .bucket = cfg.names.ledger_bucket, .description = "jetfleet job ledger",
            .ttl_ms = cfg.ledger_ttl, .max_value_size = 64 * 1024,
            .replicas = (int)cfg.stream_replicas, .placement_cluster = cluster,
        };
        st = jf_js_ensure_kv(nc, &k, &r, &err);
        if ((rc = report("bucket", k.bucket, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    /* every module's own buckets, named by its settings */
    {
        const jf_module_t *mods[64];
        size_t             n = jf_registry_modules(reg, mods, 64);

        for (size_t i = 0; i < n; i++) {
            for (const jf_module_bucket_t *b = mods[i]->buckets; b && b->setting; b++) {
                const jf_cfg_var_t *v = jf_config_var(b->setting);
                char                bucket[128];

                if (v == NULL || jf_config_format(&cfg, v, bucket, sizeof(bucket)) == NULL ||
                    !jf_js_name_ok(bucket, 64)) {
                    jf_cli_error("provision: module %s names its bucket by %s, which is not a "
                                 "valid setting or bucket name", mods[i]->name, b->setting);
                    rc = JF_EXIT_USAGE;
                    goto out;
                }
                jf_kv_spec_t k = {
                    .bucket = bucket, .description = b->description,
                    .max_value_size = (int32_t)b->max_value_size,
                    .replicas = (int)cfg.stream_replicas, .history = (int)b->history,
                };
                st = jf_js_ensure_kv(nc, &k, &r, &err);
                if ((rc = report("bucket", bucket, st, r, &err)) != JF_EXIT_OK)
                    goto out;
            }
        }
    }
    {
        int64_t max_deliver = cfg.max_deliver;
        if (max_deliver == 0)
            max_deliver = (int64_t)jf_app_max_attempts(reg) + cfg.max_deliver_margin;
        jf_consumer_spec_t cs = {
            .stream = cfg.names.jobs_stream, .durable = pool, .description = "jetfleet worker pool",
            .filter_subject = filter, .ack_wait_ms = cfg.ack_wait, .max_deliver = max_deliver,
            .max_ack_pending = cfg.max_ack_pending,
        };
        st = jf_js_ensure_consumer(nc, &cs, &r, &err);
        if ((rc = report("consumer", pool, st, r, &err)) != JF_EXIT_OK)
            goto out;
    }
    rc = JF_EXIT_OK;
out:
    jf_nats_close(nc, 2000);
    jf_registry_destroy(reg);
    jf_config_free(&cfg);
    return rc;
}
