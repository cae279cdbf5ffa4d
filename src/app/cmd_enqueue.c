/*
 * cmd_enqueue.c - `jetfleet enqueue`: publish one job, checked first.
 *
 * Everything `nats pub` can do, plus validation before anything is sent:
 * the type must exist, the tenant and id must be valid, and the payload must
 * decode as the type's message, so a typo fails here and not in a worker.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "app/cli.h"
#include "app/modules.h"
#include "core/jsadmin.h"
#include "core/pbjson.h"
#include "core/registry_impl.h"
#include "core/timefmt.h"
#include "security/secrets.h"
#include "security/signature.h"
#include "shared/ids.h"
#include "shared/subject.h"

#define MAX_HEADERS 16

static void help(void)
{
    printf("usage: jetfleet enqueue <module.action> --tenant T --id ID\n"
           "                        (--json '{...}' | --file payload.pb) [--header K:V]...\n"
           "\n"
           "Publish one job to <JF_SUBJECT_PREFIX>.<tenant>.<module>.<action> with\n"
           "Nats-Msg-Id ID, after checking that the type exists and the payload decodes.\n"
           "The same as, for JSON payloads:\n"
           "  nats pub jobs.acme.diag.sleep '{\"ms\":100}' -H Nats-Msg-Id:job-1\n"
           "\n"
           "options:\n"
           "  --tenant T      tenant token ([a-z0-9_-], at most 64 characters)\n"
           "  --id ID         job id (Nats-Msg-Id): 1-128 printable ASCII characters;\n"
           "                  a second job with the same id within JF_DUPLICATE_WINDOW is\n"
           "                  dropped by the stream\n"
           "  --json TEXT     the payload in proto3 JSON form (Content-Type application/json)\n"
           "  --file PATH     the payload as binary protobuf (Content-Type application/protobuf)\n"
           "  --header K:V    an extra header, e.g. traceparent:00-... or\n"
           "                  Jf-Not-Before:2026-12-01T08:00:00Z; repeatable\n"
           "  --sign KEYID    add Jf-Signature, an HMAC-SHA256 over subject, id and payload\n"
           "                  with the secret signing/KEYID from JF_SECRETS_DIR\n");
}

static jf_status_t read_file(const char *path, size_t limit, char **out, size_t *out_len,
                             jf_err_t *err)
{
    FILE  *f = fopen(path, "rb");
    char  *buf;
    size_t n;

    if (f == NULL)
        return jf_err_set(err, JF_EINVAL, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(limit + 1);
    if (buf == NULL) {
        fclose(f);
        return jf_err_set(err, JF_ENOMEM, "out of memory");
    }
    n = fread(buf, 1, limit + 1, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return jf_err_set(err, JF_EINVAL, "cannot read %s", path);
    }
    fclose(f);
    if (n > limit) {
        free(buf);
        return jf_err_set(err, JF_ETOOBIG, "%s is larger than JF_MAX_PAYLOAD (%zu bytes)",
                          path, limit);
    }
    *out = buf;
    *out_len = n;
    return JF_OK;
}

int jf_cmd_enqueue(int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "id", required_argument, NULL, 'i' },
        { "json", required_argument, NULL, 'j' },
        { "file", required_argument, NULL, 'f' },
        { "header", required_argument, NULL, 'H' },
        { "sign", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char   *tenant = NULL, *id = NULL, *json = NULL, *file = NULL, *type = NULL;
    const char   *sign_key = NULL;
    char          signature[512];
    char         *hdr_copy[MAX_HEADERS] = { 0 };
    jf_header_t   headers[MAX_HEADERS + 2];
    size_t        nheaders = 0;
    jf_config_t   cfg;
    bool          cfg_loaded = false;
    jf_registry_t *reg = NULL;
    jf_nats_t    *nc = NULL;
    jf_err_t      err = { 0 };
    char          module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1];
    char          subject[512];
    char         *data = NULL;
    size_t        len = 0;
    const jf_job_type_t *jt;
    jf_pub_ack_t  ack;
    jf_status_t   st;
    int           c, rc = JF_EXIT_USAGE;

    optind = 1;
    while ((c = getopt_long(argc, argv, "t:i:j:f:H:S:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'i': id = optarg; break;
        case 'j': json = optarg; break;
        case 'f': file = optarg; break;
        case 'H': {
            char *colon;
            if (nheaders == MAX_HEADERS) {
                jf_cli_error("enqueue: at most %d --header options", MAX_HEADERS);
                goto out;
            }
            hdr_copy[nheaders] = strdup(optarg);
            colon = hdr_copy[nheaders] ? strchr(hdr_copy[nheaders], ':') : NULL;
            if (colon == NULL || colon == hdr_copy[nheaders]) {
                jf_cli_error("enqueue: --header '%s' is not of the form Name:Value", optarg);
                nheaders++;
                goto out;
            }
            *colon = '\0';
            headers[nheaders].name = hdr_copy[nheaders];
            headers[nheaders].value = colon + 1;
            if (strcasecmp(headers[nheaders].name, "Nats-Msg-Id") == 0) {
                jf_cli_error("enqueue: set the job id with --id, not --header");
                nheaders++;
                goto out;
            }
            if (strcasecmp(headers[nheaders].name, "Jf-Signature") == 0) {
                jf_cli_error("enqueue: sign with --sign KEYID, not --header");
                nheaders++;
                goto out;
            }
            if (strcasecmp(headers[nheaders].name, "Jf-Not-Before") == 0) {
                int64_t when;
                if (jf_time_parse_ms(headers[nheaders].value, &when, &err) != JF_OK) {
                    jf_cli_error("enqueue: --header Jf-Not-Before: %s", jf_err_msg(&err));
                    nheaders++;
                    goto out;
                }
            }
            nheaders++;
            break;
        }
        case 'S': sign_key = optarg; break;
        case 'h': help(); rc = JF_EXIT_OK; goto out;
        default:  goto out;
        }
    }
    if (optind + 1 != argc) {
        jf_cli_error("enqueue: expected exactly one job type (module.action); see --help");
        goto out;
    }
    type = argv[optind];
    if (tenant == NULL || id == NULL) {
        jf_cli_error("enqueue: --tenant and --id are required");
        goto out;
    }
    if ((json == NULL) == (file == NULL)) {
        jf_cli_error("enqueue: give exactly one of --json and --file");
        goto out;
    }
    if (jf_type_split(type, module, action, &err) != JF_OK ||
        jf_token_check(tenant, strlen(tenant), JF_TENANT_MAX, "tenant", &err) != JF_OK ||
        jf_job_id_check(id, &err) != JF_OK) {
        jf_cli_error("enqueue: %s", jf_err_msg(&err));
        goto out;
    }
    if ((rc = jf_cli_load_config(&cfg)) != JF_EXIT_OK)
        goto out;
    cfg_loaded = true;
    rc = JF_EXIT_USAGE;
    if (jf_app_registry(&reg, &err) != JF_OK) {
        jf_cli_error("%s", jf_err_msg(&err));
        rc = JF_EXIT_FAIL;
        goto out;
    }
    jt = jf_registry_find_type(reg, type, NULL, NULL, NULL);
    if (jt == NULL) {
        jf_cli_error("enqueue: unknown job type '%s'; `jetfleet modules` lists them", type);
        goto out;
    }

    /* Validate the payload by decoding it as a worker would. */
    if (json != NULL) {
        jf_pbjson_limits_t lim = { (size_t)cfg.max_payload, (int)cfg.json_max_depth };
        ProtobufCMessage  *m = NULL;
        if (jf_pbjson_decode(jt->payload, json, strlen(json), &lim, &m, &err) != JF_OK) {
            jf_cli_error("enqueue: payload is not a valid %s: %s", jt->payload->name,
                         jf_err_msg(&err));
            goto out;
        }
        protobuf_c_message_free_unpacked(m, NULL);
        data = strdup(json);
        len = strlen(json);
        headers[nheaders].name = "Content-Type";
        headers[nheaders++].value = "application/json";
    } else {
        ProtobufCMessage *m;
        if (read_file(file, (size_t)cfg.max_payload, &data, &len, &err) != JF_OK) {
            jf_cli_error("enqueue: %s", jf_err_msg(&err));
            goto out;
        }
        m = protobuf_c_message_unpack(jt->payload, NULL, len, (const uint8_t *)data);
        if (m == NULL) {
            jf_cli_error("enqueue: %s is not a valid binary %s", file, jt->payload->name);
            goto out;
        }
        protobuf_c_message_free_unpacked(m, NULL);
        headers[nheaders].name = "Content-Type";
        headers[nheaders++].value = "application/protobuf";
    }
    if (data == NULL) {
        jf_cli_error("enqueue: out of memory");
        rc = JF_EXIT_FAIL;
        goto out;
    }
    if (jf_subject_format(subject, sizeof(subject), cfg.names.jobs_prefix, tenant, type, &err) != JF_OK) {
        jf_cli_error("enqueue: %s", jf_err_msg(&err));
        goto out;
    }
    if (sign_key != NULL) {
        jf_secrets_t *secrets = NULL;
        const void   *key = NULL;
        size_t        key_len = 0;
        char          name[160];

        err = (jf_err_t){ 0 };
        if (cfg.secrets_dir[0] == '\0') {
            jf_cli_error("enqueue: --sign needs JF_SECRETS_DIR (the key is signing/%s there)",
                         sign_key);
            goto out;
        }
        snprintf(name, sizeof(name), "signing/%s", sign_key);
        if (jf_secrets_load(cfg.secrets_dir, &secrets, &err) != JF_OK ||
            jf_secrets_get(secrets, name, &key, &key_len) != JF_OK) {
            jf_cli_error("enqueue: --sign: %s", err.msg[0] ? jf_err_msg(&err)
                                                           : "no such signing key in JF_SECRETS_DIR");
            jf_secrets_destroy(secrets);
            goto out;
        }
        st = jf_signature_make(sign_key, key, key_len, subject, id, data, len, signature,
                               sizeof(signature), &err);
        jf_secrets_destroy(secrets);   /* wipes the key */
        if (st != JF_OK) {
            jf_cli_error("enqueue: --sign: %s", jf_err_msg(&err));
            rc = JF_EXIT_FAIL;
            goto out;
        }
        headers[nheaders].name = "Jf-Signature";
        headers[nheaders++].value = signature;
    }
    if ((rc = jf_cli_connect(&cfg, "jetfleet-enqueue", &nc)) != JF_EXIT_OK)
        goto out;
    st = jf_js_publish(nc, subject, data, len, headers, nheaders, id, &ack, &err);
    if (st != JF_OK) {
        jf_cli_error("enqueue: %s", jf_err_msg(&err));
        rc = jf_cli_exit_code(st);
        goto out;
    }
    if (ack.duplicate)
        printf("duplicate: job %s was already enqueued (stream %s seq %llu); nothing published\n",
               id, ack.stream, (unsigned long long)ack.seq);
    else
        printf("enqueued %s id=%s subject=%s stream=%s seq=%llu\n", type, id, subject,
               ack.stream, (unsigned long long)ack.seq);
    rc = JF_EXIT_OK;
out:
    jf_nats_close(nc, 2000);
    jf_registry_destroy(reg);
    if (cfg_loaded)
        jf_config_free(&cfg);
    free(data);
    for (size_t i = 0; i < MAX_HEADERS; i++)
        free(hdr_copy[i]);
    return rc;
}
