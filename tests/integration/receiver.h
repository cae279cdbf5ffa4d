/*
 * receiver.h - a webhook receiver for integration tests: a real HTTP
 * server (libmicrohttpd) on 127.0.0.1 in the test process that checks
 * Standard Webhooks signatures on its own, with OpenSSL, and records
 * every request.
 *
 * What it answers depends on the path: /fail500 500 and /busy 429 with
 * Retry-After: 1 (both 200 once jf_r_heal() was called), /gone 410,
 * /bad 400, /slow 200 after 3 s, /huge 200 and /huge-bad 400 with a 4 MiB
 * body, anything else 200.
 */
#ifndef JF_TESTS_RECEIVER_H
#define JF_TESTS_RECEIVER_H

#include <stdbool.h>

/* The two webhook secrets tenants get in these tests, raw. */
extern const char jf_r_key1[];
extern const char jf_r_key2[];

typedef struct jf_r_req {
    char path[64];
    char id[160];
    char body[256];
    int  sigs_ok;         /* how many of key1, key2 verified */
    bool headers_ok;      /* user agent, traceparent, content type as expected */
} jf_r_req_t;

/* Start on a free port; fails the test when it cannot. */
void jf_r_start(void);
void jf_r_stop(void);
int jf_r_port(void);
void jf_r_heal(void);

/* Requests seen with this webhook-id; *last (may be NULL) gets the last. */
int jf_r_seen(const char *id, jf_r_req_t *last);
int jf_r_seen_total(void);

/* Distinct webhook-ids seen; *dups gets how many requests repeated an id,
 * *conflicts how many of those carried another body than the first. */
int jf_r_distinct(int *dups, int *conflicts);

/* The "whsec_<base64 key1>\n  whsec_<base64 key2>\n" secret file text. */
void jf_r_secret_file(char *out, size_t size);

/* Write the tenant policy policy_json to <dir>/policy.json and the secret
 * file above for each of the NULL-terminated tenants to
 * <dir>/secrets/webhooks/<tenant> (all 0600, directories 0700), and fill
 * env_policy and env_secrets with "JF_POLICY_FILE=..." and
 * "JF_SECRETS_DIR=..." for the workers' environment. */
void jf_r_tenant_files(const char *dir, const char *policy_json, const char *const *tenants,
                       char *env_policy, size_t policy_size, char *env_secrets,
                       size_t secrets_size);

#endif /* JF_TESTS_RECEIVER_H */
