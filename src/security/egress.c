/*
 * egress.c - reserved address ranges and the tenant's exceptions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "security/egress.h"

typedef struct range {
    uint32_t    net, mask;   /* IPv4, host order */
    const char *name;
} range_t;

static const range_t v4_reserved[] = {
    { 0xA9FEA9FEu, 0xFFFFFFFFu, "cloud metadata" },   /* 169.254.169.254/32 first */
    { 0x00000000u, 0xFF000000u, "unspecified" },      /* 0.0.0.0/8 */
    { 0x7F000000u, 0xFF000000u, "loopback" },         /* 127.0.0.0/8 */
    { 0x0A000000u, 0xFF000000u, "private" },          /* 10.0.0.0/8 */
    { 0xAC100000u, 0xFFF00000u, "private" },          /* 172.16.0.0/12 */
    { 0xC0A80000u, 0xFFFF0000u, "private" },          /* 192.168.0.0/16 */
    { 0xA9FE0000u, 0xFFFF0000u, "link-local" },       /* 169.254.0.0/16 */
    { 0x64400000u, 0xFFC00000u, "CGNAT" },            /* 100.64.0.0/10 */
    { 0xE0000000u, 0xF0000000u, "multicast" },        /* 224.0.0.0/4 */
    { 0xF0000000u, 0xF0000000u, "reserved" },         /* 240.0.0.0/4, broadcast */
};

static const char *v4_range(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_reserved) / sizeof(v4_reserved[0]); i++)
        if ((a & v4_reserved[i].mask) == v4_reserved[i].net)
            return v4_reserved[i].name;
    return NULL;
}

const char *jf_egress_reserved(const struct sockaddr *addr)
{
    if (addr == NULL)
        return "unspecified";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
        return v4_range(ntohl(in->sin_addr.s_addr));
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        const uint8_t             *b = in6->sin6_addr.s6_addr;
        static const uint8_t       zero[16];

        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) || IN6_IS_ADDR_V4COMPAT(&in6->sin6_addr)) {
            uint32_t a;
            memcpy(&a, b + 12, 4);
            return v4_range(ntohl(a));
        }
        if (memcmp(b, zero, 16) == 0)
            return "unspecified";
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return "loopback";
        if ((b[0] & 0xFE) == 0xFC)
            return "private";          /* fc00::/7 unique local */
        if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
            return "link-local";       /* fe80::/10 */
        if (b[0] == 0xFF)
            return "multicast";
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B) {
            uint32_t a;                /* 64:ff9b::/96 NAT64 of a reserved v4 */
            memcpy(&a, b + 12, 4);
            return v4_range(ntohl(a));
        }
        return NULL;
    }
    return "unsupported address family";
}

bool jf_egress_allowed(const jf_policy_t *policy, const char *tenant,
                       const struct sockaddr *addr, char *why, size_t why_size)
{
    const char *range = jf_egress_reserved(addr);

    if (range == NULL)
        return true;
    if (policy != NULL && tenant != NULL && jf_policy_egress_allowed(policy, tenant, addr))
        return true;
    if (why != NULL && why_size > 0) {
        char text[INET6_ADDRSTRLEN] = "?";
        if (addr != NULL && addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr,
                      text, sizeof(text));
        else if (addr != NULL && addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr,
                      text, sizeof(text));
        snprintf(why, why_size, "egress to %s refused: %s address, not in tenant '%s' "
                 "egress_allow", text, range, tenant ? tenant : "?");
    }
    return false;
}
