/*
 * test_egress.c - the egress guard: reserved ranges refused, public
 * addresses allowed, the tenant policy's exceptions honoured.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "security/egress.h"

static struct sockaddr_storage addr_of(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1, "%s", text);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, text, &in->sin_addr), 1, "%s", text);
    }
    return ss;
}

struct range_case {
    char addr[48];
    char range[24];   /* "" = public */
};

ParameterizedTestParameters(egress, classifies_addresses)
{
    static struct range_case cases[] = {
        { "127.0.0.1", "loopback" }, { "127.255.1.2", "loopback" }, { "::1", "loopback" },
        { "10.0.0.1", "private" }, { "172.16.5.4", "private" }, { "172.31.255.255", "private" },
        { "192.168.1.1", "private" }, { "fd12:3456::1", "private" },
        { "169.254.169.254", "cloud metadata" }, { "169.254.1.1", "link-local" },
        { "fe80::1", "link-local" }, { "100.64.0.1", "CGNAT" }, { "100.127.255.254", "CGNAT" },
        { "224.0.0.1", "multicast" }, { "ff02::1", "multicast" }, { "0.0.0.0", "unspecified" },
        { "::", "unspecified" }, { "::ffff:127.0.0.1", "loopback" },
        { "::ffff:169.254.169.254", "cloud metadata" }, { "64:ff9b::a00:1", "private" },
        { "255.255.255.255", "reserved" },
        { "93.184.216.34", "" }, { "172.32.0.1", "" }, { "100.128.0.1", "" },
        { "2606:4700::1111", "" }, { "::ffff:8.8.8.8", "" },
    };
    return cr_make_param_array(struct range_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct range_case *c, egress, classifies_addresses)
{
    struct sockaddr_storage ss = addr_of(c->addr);
    const char             *got = jf_egress_reserved((struct sockaddr *)&ss);

    if (c->range[0] == '\0')
        cr_assert_null(got, "%s is public, got %s", c->addr, got);
    else
        cr_assert(got != NULL && strcmp(got, c->range) == 0, "%s: want %s, got %s", c->addr,
                  c->range, got ? got : "public");
}

Test(egress, the_policy_allows_exceptions_per_tenant_only)
{
    jf_policy_t            *p = NULL;
    const char             *json = "{\"version\":1,\"default\":\"deny\",\"tenants\":{"
                                   "\"test\":{\"job_types\":[\"*\"],\"egress_allow\":[\"127.0.0.1/32\"]},"
                                   "\"other\":{\"job_types\":[\"*\"]}}}";
    struct sockaddr_storage lo = addr_of("127.0.0.1"), lo2 = addr_of("127.0.0.2"),
                            pub = addr_of("93.184.216.34");
    char                    why[200] = "";

    cr_assert_eq(jf_policy_parse(json, strlen(json), "test", &p, NULL), JF_OK);
    cr_assert(jf_egress_allowed(p, "test", (struct sockaddr *)&lo, why, sizeof(why)));
    cr_assert_not(jf_egress_allowed(p, "test", (struct sockaddr *)&lo2, why, sizeof(why)));
    cr_assert_not(jf_egress_allowed(p, "other", (struct sockaddr *)&lo, why, sizeof(why)));
    cr_assert(strstr(why, "egress to 127.0.0.1 refused: loopback address") != NULL, "%s", why);
    cr_assert(jf_egress_allowed(p, "other", (struct sockaddr *)&pub, why, sizeof(why)));
    cr_assert_not(jf_egress_allowed(NULL, "other", (struct sockaddr *)&lo, NULL, 0));
    jf_policy_destroy(p);
}
