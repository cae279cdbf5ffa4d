/*
 * egress.h - the egress guard: may a job of a tenant connect to an address?
 *
 * Addresses a job could use to reach inside the deployment are refused
 * unless the tenant policy's egress_allow covers them: loopback, private
 * (RFC 1918, IPv6 ULA), link-local (which includes the cloud metadata
 * address 169.254.169.254), CGNAT (100.64/10), multicast, unspecified and
 * the IPv4-mapped forms of all of these. Callers check the address they
 * are about to connect to, after name resolution, so that DNS rebinding
 * cannot get around it.
 */
#ifndef JF_SECURITY_EGRESS_H
#define JF_SECURITY_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "security/policy.h"

/* The name of the reserved range addr is in ("loopback", "private",
 * "link-local", "cloud metadata", "CGNAT", "multicast", "unspecified"), or
 * NULL for a public address. */
const char *jf_egress_reserved(const struct sockaddr *addr);

/* True when a job of tenant may connect to addr: a public address, or a
 * reserved one inside the tenant's egress_allow (policy may be NULL: no
 * exceptions). When false, why (if not NULL) says which range refused it. */
bool jf_egress_allowed(const jf_policy_t *policy, const char *tenant,
                       const struct sockaddr *addr, char *why, size_t why_size);

#endif /* JF_SECURITY_EGRESS_H */
