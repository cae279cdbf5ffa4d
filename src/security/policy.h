/*
 * policy.h - the tenant policy file (JF_POLICY_FILE).
 *
 * A JSON document that says, per tenant, which job types it may run, how
 * large its payloads may be, whether its jobs must be signed and with which
 * keys, how many of its jobs may run at once and where its jobs may connect
 * to. The format is in docs/security.md. A loaded policy is immutable and
 * holds no globals: on SIGHUP the runtime loads the file again, swaps the
 * new policy in when it loaded, and keeps the old one when it did not.
 *
 * The policy complements, and does not replace, jf_authz (JF_TENANTS and
 * unsafe job types): the runtime applies both. The worker enforces job
 * types, payload size, signatures and max_in_flight; egress_allow is
 * parsed and queryable, for the webhooks module's egress guard.
 */
#ifndef JF_SECURITY_POLICY_H
#define JF_SECURITY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "security/secrets.h"
#include "shared/err.h"

typedef struct jf_policy jf_policy_t;

/* Read and validate the policy file at path. Validation is strict: an
 * unknown key, a value of the wrong type, a bad tenant token, a bad job
 * type glob, a bad CIDR or a bad key id is JF_ECONFIG with the JSON path in
 * the message ("<path>: tenants.acme.max_payload: expected a positive
 * integer"). JF_ECONFIG too when the file cannot be read or is not JSON. On
 * success *out is owned by the caller (jf_policy_destroy); on failure it is
 * untouched. */
jf_status_t jf_policy_load(const char *path, jf_policy_t **out, jf_err_t *err);

/* Same, from a JSON text in memory; name is used in messages. */
jf_status_t jf_policy_parse(const char *json, size_t len, const char *name, jf_policy_t **out,
                            jf_err_t *err);

/* Free a policy. Accepts NULL. */
void jf_policy_destroy(jf_policy_t *p);

/* May tenant run a job of type ("module.action") whose payload is
 * payload_size bytes? JF_OK, JF_EDENIED (tenant not in the policy under
 * "default": "deny", or type not in its job_types) or JF_ETOOBIG (over its
 * max_payload), with the reason in err. Strings are borrowed. */
jf_status_t jf_policy_check(const jf_policy_t *p, const char *tenant, const char *type,
                            size_t payload_size, jf_err_t *err);

/* Does tenant require signed jobs? When true, *ret_key_ids and *ret_n are
 * set to the tenant's signing key ids (borrowed from p: valid until it is
 * destroyed), ready for jf_signature_verify. False for a tenant that is
 * not in the policy. */
bool jf_policy_requires_signature(const jf_policy_t *p, const char *tenant,
                                  const char *const **ret_key_ids, size_t *ret_n);

/* The tenant's max_in_flight; 0 when none is set or the tenant is not in
 * the policy. */
int jf_policy_max_in_flight(const jf_policy_t *p, const char *tenant);

/* Is addr (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is matched as
 * IPv4) inside one of the tenant's egress_allow CIDRs? False for any other
 * family and for a tenant that is not in the policy. */
bool jf_policy_egress_allowed(const jf_policy_t *p, const char *tenant,
                              const struct sockaddr *addr);

/* Check that every signing key id the policy names has a secret
 * "signing/<id>" in secrets: JF_ECONFIG naming the first missing one. For
 * start-up and reload, so that a typo fails loudly instead of rejecting
 * every job. */
jf_status_t jf_policy_check_keys(const jf_policy_t *p, const jf_secrets_t *secrets,
                                 jf_err_t *err);

#endif /* JF_SECURITY_POLICY_H */
