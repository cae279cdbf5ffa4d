/*
 * policy.c - loading, validating and querying the tenant policy file.
 *
 * The file is parsed with jansson and copied into plain C structures, so
 * that checks on the dispatch path are a few string compares and no JSON.
 * Every validation error names its JSON path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <jansson.h>

#include "security/policy.h"
#include "security/signature.h"
#include "shared/ids.h"

#define MAX_PAYLOAD_LIMIT   67108864   /* JF_MAX_PAYLOAD's own maximum */
#define MAX_IN_FLIGHT_LIMIT 4096       /* JF_CONCURRENCY's own maximum */

typedef struct cidr {
    int           family;   /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned      prefix;
} cidr_t;

typedef struct tenant {
    char     name[JF_TENANT_MAX + 1];
    char   **globs;
    size_t   nglobs;
    bool     require_signature;
    char   **keys;
    size_t   nkeys;
    int64_t  max_payload;     /* 0: none */
    int      max_in_flight;   /* 0: none */
    cidr_t  *cidrs;
    size_t   ncidrs;
} tenant_t;

struct jf_policy {
    bool      default_allow;
    tenant_t *t;
    size_t    n;
};

/* ---- destroy and lookups ---------------------------------------------------------------- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void jf_policy_destroy(jf_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free_strings(p->t[i].globs, p->t[i].nglobs);
        free_strings(p->t[i].keys, p->t[i].nkeys);
        free(p->t[i].cidrs);
    }
    free(p->t);
    free(p);
}

static const tenant_t *find(const jf_policy_t *p, const char *tenant)
{
    for (size_t i = 0; p != NULL && tenant != NULL && i < p->n; i++)
        if (strcmp(p->t[i].name, tenant) == 0)
            return &p->t[i];
    return NULL;
}

/* "*" matches every type, "<module>.*" every action of a module, anything
 * else exactly one type. Globs were validated at load. */
static bool glob_match(const char *glob, const char *type)
{
    size_t gl = strlen(glob);

    if (strcmp(glob, "*") == 0)
        return true;
    if (gl >= 2 && glob[gl - 1] == '*')
        return strncmp(glob, type, gl - 1) == 0 && type[gl - 1] != '\0';
    return strcmp(glob, type) == 0;
}

jf_status_t jf_policy_check(const jf_policy_t *p, const char *tenant, const char *type,
                            size_t payload_size, jf_err_t *err)
{
    const tenant_t *t = find(p, tenant);
    bool            ok = false;

    if (t == NULL) {
        if (p->default_allow)
            return JF_OK;
        return jf_err_set(err, JF_EDENIED, "tenant '%s' is not in the policy file, whose "
                          "default is deny", tenant);
    }
    for (size_t i = 0; i < t->nglobs && !ok; i++)
        ok = glob_match(t->globs[i], type);
    if (!ok)
        return jf_err_set(err, JF_EDENIED, "job type %s is not allowed for tenant '%s' by the "
                          "policy file", type, tenant);
    if (t->max_payload > 0 && payload_size > (size_t)t->max_payload)
        return jf_err_set(err, JF_ETOOBIG, "payload is %zu bytes; tenant '%s' is limited to "
                          "%lld by the policy file", payload_size, tenant,
                          (long long)t->max_payload);
    return JF_OK;
}

bool jf_policy_requires_signature(const jf_policy_t *p, const char *tenant,
                                  const char *const **ret_key_ids, size_t *ret_n)
{
    const tenant_t *t = find(p, tenant);

    if (t == NULL || !t->require_signature)
        return false;
    *ret_key_ids = (const char *const *)t->keys;
    *ret_n = t->nkeys;
    return true;
}

int jf_policy_max_in_flight(const jf_policy_t *p, const char *tenant)
{
    const tenant_t *t = find(p, tenant);
    return t == NULL ? 0 : t->max_in_flight;
}

static bool prefix_match(const unsigned char *a, const unsigned char *net, unsigned prefix)
{
    unsigned bytes = prefix / 8, bits = prefix % 8;

    if (memcmp(a, net, bytes) != 0)
        return false;
    if (bits == 0)
        return true;
    return ((a[bytes] ^ net[bytes]) & (unsigned char)(0xff << (8 - bits))) == 0;
}

bool jf_policy_egress_allowed(const jf_policy_t *p, const char *tenant,
                              const struct sockaddr *addr)
{
    const tenant_t *t = find(p, tenant);
    unsigned char   a[16];
    int             family;

    if (t == NULL || addr == NULL)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
        family = AF_INET;
        memcpy(a, &in->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            family = AF_INET;   /* ::ffff:a.b.c.d is a.b.c.d on the wire */
            memcpy(a, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            family = AF_INET6;
            memcpy(a, &in6->sin6_addr, 16);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < t->ncidrs; i++)
        if (t->cidrs[i].family == family && prefix_match(a, t->cidrs[i].addr, t->cidrs[i].prefix))
            return true;
    return false;
}

jf_status_t jf_policy_check_keys(const jf_policy_t *p, const jf_secrets_t *secrets,
                                 jf_err_t *err)
{
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; k < p->t[i].nkeys; k++) {
            char        name[sizeof("signing/") + JF_KEY_ID_MAX];
            const void *v;
            size_t      len;
            snprintf(name, sizeof(name), "signing/%s", p->t[i].keys[k]);
            if (jf_secrets_get(secrets, name, &v, &len) != JF_OK)
                return jf_err_set(err, JF_ECONFIG, "tenants.%s.signing_keys names key '%s', "
                                  "but JF_SECRETS_DIR has no secret %s", p->t[i].name,
                                  p->t[i].keys[k], name);
        }
    }
    return JF_OK;
}

/* ---- validation ------------------------------------------------------------------------- */

typedef struct parse {
    const char *name;   /* the file, for messages */
    jf_err_t   *err;
} parse_t;

/* JF_ECONFIG "<file>: <json path>: <problem>". */
__attribute__((format(printf, 3, 4)))
static jf_status_t bad(parse_t *ps, const char *path, const char *fmt, ...)
{
    char    msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return jf_err_set(ps->err, JF_ECONFIG, "%s: %s: %s", ps->name, path, msg);
}

/* Every key of obj must be one of allowed (NULL-terminated). */
static jf_status_t only_keys(parse_t *ps, const char *path, json_t *obj,
                             const char *const *allowed)
{
    const char *k;
    json_t     *v;

    json_object_foreach(obj, k, v) {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(allowed[i], k) == 0;
        if (!known)
            return bad(ps, path[0] ? path : "(top level)", "unknown key '%s'", k);
    }
    return JF_OK;
}

static jf_status_t check_glob(const char *g)
{
    size_t len = strlen(g);
    char   module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1];

    if (strcmp(g, "*") == 0)
        return JF_OK;
    if (len >= 2 && strcmp(g + len - 2, ".*") == 0)
        return jf_token_check(g, len - 2, JF_TOKEN_MAX, "module", NULL);
    return jf_type_split(g, module, action, NULL);
}

static jf_status_t parse_cidr(const char *s, cidr_t *c)
{
    char        host[64];
    const char *slash = strchr(s, '/');
    size_t      hl;
    unsigned    max, prefix = 0;

    if (slash == NULL || slash[1] == '\0' || strlen(slash + 1) > 3)
        return JF_EINVAL;
    hl = (size_t)(slash - s);
    if (hl == 0 || hl >= sizeof(host))
        return JF_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return JF_EINVAL;
    }
    for (const char *d = slash + 1; *d != '\0'; d++) {
        if (*d < '0' || *d > '9' || (d == slash + 1 && *d == '0' && d[1] != '\0'))
            return JF_EINVAL;
        prefix = prefix * 10 + (unsigned)(*d - '0');
    }
    if (prefix > max)
        return JF_EINVAL;
    c->prefix = prefix;
    /* No host bits: "10.0.0.1/8" is a mistake more often than a shorthand. */
    for (unsigned b = prefix; b < max; b++)
        if (c->addr[b / 8] & (0x80 >> (b % 8)))
            return JF_ECONFIG;
    return JF_OK;
}

/* A JSON array of strings at path into a new char* vector. each checks one
 * element and returns a problem text, or NULL when it is fine. */
static jf_status_t strings(parse_t *ps, const char *path, json_t *arr, bool nonempty,
                           const char *(*each)(const char *s), char ***ret, size_t *ret_n)
{
    char      **v = NULL;
    size_t      n = 0, i;
    json_t     *e;
    jf_status_t rc = JF_OK;

    if (!json_is_array(arr))
        return bad(ps, path, "expected an array of strings");
    if (nonempty && json_array_size(arr) == 0)
        return bad(ps, path, "must not be empty");
    v = calloc(json_array_size(arr) + 1, sizeof(*v));
    if (v == NULL)
        return jf_err_set(ps->err, JF_ENOMEM, "out of memory");
    json_array_foreach(arr, i, e) {
        char        where[160];
        const char *problem;
        snprintf(where, sizeof(where), "%s[%zu]", path, i);
        if (!json_is_string(e)) {
            rc = bad(ps, where, "expected a string");
            goto out;
        }
        problem = each(json_string_value(e));
        if (problem != NULL) {
            rc = bad(ps, where, "%s: '%.80s'", problem, json_string_value(e));
            goto out;
        }
        v[n] = strdup(json_string_value(e));
        if (v[n] == NULL) {
            rc = jf_err_set(ps->err, JF_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
out:
    if (rc != JF_OK) {
        free_strings(v, n);
        return rc;
    }
    *ret = v;
    *ret_n = n;
    return JF_OK;
}

static const char *glob_problem(const char *s)
{
    return check_glob(s) == JF_OK ? NULL
           : "expected \"*\", \"<module>.*\" or \"<module>.<action>\" of [a-z0-9_-] tokens";
}

static const char *key_problem(const char *s)
{
    return jf_token_check(s, strlen(s), JF_KEY_ID_MAX, "key id", NULL) == JF_OK ? NULL
           : "expected a key id of [a-z0-9_-], at most 64 characters";
}

static const char *cidr_problem(const char *s)
{
    cidr_t c;
    switch (parse_cidr(s, &c)) {
    case JF_OK:
        return NULL;
    case JF_ECONFIG:
        return "address has bits set beyond the prefix length";
    default:
        return "expected a CIDR such as 10.0.0.0/8 or fd00::/8";
    }
}

static jf_status_t positive(parse_t *ps, const char *path, json_t *v, int64_t max,
                            int64_t *ret)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return bad(ps, path, "expected a positive integer");
    if (json_integer_value(v) > max)
        return bad(ps, path, "at most %lld", (long long)max);
    *ret = json_integer_value(v);
    return JF_OK;
}

static jf_status_t parse_tenant(parse_t *ps, const char *name, json_t *o, tenant_t *t)
{
    static const char *const keys[] = { "job_types", "require_signature", "signing_keys",
                                         "max_payload", "max_in_flight", "egress_allow", NULL };
    char        path[160], where[200];
    json_t     *v;
    char      **cidrs = NULL;
    size_t      ncidrs = 0;
    int64_t     num;
    jf_status_t rc;

    snprintf(path, sizeof(path), "tenants.%s", name);
    if (jf_token_check(name, strlen(name), JF_TENANT_MAX, "tenant", NULL) != JF_OK)
        return bad(ps, path, "not a valid tenant token ([a-z0-9_-], at most %d characters)",
                   JF_TENANT_MAX);
    strlcpy(t->name, name, sizeof(t->name));
    if (!json_is_object(o))
        return bad(ps, path, "expected an object");
    if ((rc = only_keys(ps, path, o, keys)) != JF_OK)
        return rc;

    snprintf(where, sizeof(where), "%s.job_types", path);
    v = json_object_get(o, "job_types");
    if (v == NULL)
        return bad(ps, where, "required (use [\"*\"] for every job type)");
    if ((rc = strings(ps, where, v, true, glob_problem, &t->globs, &t->nglobs)) != JF_OK)
        return rc;

    snprintf(where, sizeof(where), "%s.require_signature", path);
    v = json_object_get(o, "require_signature");
    if (v != NULL && !json_is_boolean(v))
        return bad(ps, where, "expected true or false");
    t->require_signature = json_is_true(v);

    snprintf(where, sizeof(where), "%s.signing_keys", path);
    v = json_object_get(o, "signing_keys");
    if (v != NULL &&
        (rc = strings(ps, where, v, false, key_problem, &t->keys, &t->nkeys)) != JF_OK)
        return rc;
    if (t->require_signature && t->nkeys == 0)
        return bad(ps, where, "require_signature is true but no signing key is listed");

    snprintf(where, sizeof(where), "%s.max_payload", path);
    if ((v = json_object_get(o, "max_payload")) != NULL) {
        if ((rc = positive(ps, where, v, MAX_PAYLOAD_LIMIT, &num)) != JF_OK)
            return rc;
        t->max_payload = num;
    }
    snprintf(where, sizeof(where), "%s.max_in_flight", path);
    if ((v = json_object_get(o, "max_in_flight")) != NULL) {
        if ((rc = positive(ps, where, v, MAX_IN_FLIGHT_LIMIT, &num)) != JF_OK)
            return rc;
        t->max_in_flight = (int)num;
    }

    snprintf(where, sizeof(where), "%s.egress_allow", path);
    if ((v = json_object_get(o, "egress_allow")) != NULL) {
        if ((rc = strings(ps, where, v, false, cidr_problem, &cidrs, &ncidrs)) != JF_OK)
            return rc;
        t->cidrs = calloc(ncidrs + 1, sizeof(*t->cidrs));
        if (t->cidrs == NULL) {
            free_strings(cidrs, ncidrs);
            return jf_err_set(ps->err, JF_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < ncidrs; i++)
            parse_cidr(cidrs[i], &t->cidrs[i]);   /* validated above */
        t->ncidrs = ncidrs;
        free_strings(cidrs, ncidrs);
    }
    return JF_OK;
}

static jf_status_t parse_doc(parse_t *ps, json_t *root, jf_policy_t *p)
{
    static const char *const keys[] = { "version", "default", "tenants", NULL };
    json_t     *v;
    const char *name;
    jf_status_t rc;

    if (!json_is_object(root))
        return bad(ps, "(top level)", "expected a JSON object");
    if ((rc = only_keys(ps, "", root, keys)) != JF_OK)
        return rc;
    v = json_object_get(root, "version");
    if (v == NULL)
        return bad(ps, "version", "required; this worker reads version 1");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return bad(ps, "version", "expected 1; this worker reads version 1 only");
    v = json_object_get(root, "default");
    if (v != NULL) {
        if (!json_is_string(v) || (strcmp(json_string_value(v), "deny") != 0 &&
                                   strcmp(json_string_value(v), "allow") != 0))
            return bad(ps, "default", "expected \"deny\" or \"allow\"");
        p->default_allow = strcmp(json_string_value(v), "allow") == 0;
    }
    v = json_object_get(root, "tenants");
    if (v == NULL)
        return bad(ps, "tenants", "required (an object; may be empty)");
    if (!json_is_object(v))
        return bad(ps, "tenants", "expected an object of tenant -> rules");
    p->t = calloc(json_object_size(v) + 1, sizeof(*p->t));
    if (p->t == NULL)
        return jf_err_set(ps->err, JF_ENOMEM, "out of memory");
    {
        json_t *o;
        json_object_foreach(v, name, o) {
            /* count first so that destroy frees a half-parsed tenant */
            p->n++;
            if ((rc = parse_tenant(ps, name, o, &p->t[p->n - 1])) != JF_OK)
                return rc;
        }
    }
    return JF_OK;
}

jf_status_t jf_policy_parse(const char *json, size_t len, const char *name, jf_policy_t **out,
                            jf_err_t *err)
{
    parse_t      ps = { .name = name, .err = err };
    json_error_t je;
    json_t      *root;
    jf_policy_t *p = NULL;
    jf_status_t  rc;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return jf_err_set(err, JF_ECONFIG, "%s: line %d, column %d: %s", name, je.line,
                          je.column, je.text);
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = jf_err_set(err, JF_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_doc(&ps, root, p);
out:
    json_decref(root);
    if (rc != JF_OK) {
        jf_policy_destroy(p);
        return rc;
    }
    *out = p;
    return JF_OK;
}

jf_status_t jf_policy_load(const char *path, jf_policy_t **out, jf_err_t *err)
{
    FILE       *f;
    char       *buf = NULL;
    size_t      cap = 0, len = 0;
    jf_status_t rc = JF_OK;

    if (path == NULL || path[0] == '\0')
        return jf_err_set(err, JF_EINVAL, "no policy file given (JF_POLICY_FILE)");
    f = fopen(path, "re");
    if (f == NULL)
        return jf_err_set(err, JF_ECONFIG, "cannot open policy file %s (JF_POLICY_FILE): %s",
                          path, strerror(errno));
    for (;;) {
        size_t r;
        if (len == cap) {
            char *grown;
            if (cap >= 16u << 20) {
                rc = jf_err_set(err, JF_ECONFIG, "policy file %s is larger than 16 MiB", path);
                goto out;
            }
            grown = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (grown == NULL) {
                rc = jf_err_set(err, JF_ENOMEM, "out of memory");
                goto out;
            }
            buf = grown;
        }
        r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                rc = jf_err_set(err, JF_ECONFIG, "cannot read policy file %s: %s", path,
                                strerror(errno));
            break;
        }
    }
    if (rc == JF_OK)
        rc = jf_policy_parse(buf, len, path, out, err);
out:
    free(buf);
    fclose(f);
    return rc;
}
