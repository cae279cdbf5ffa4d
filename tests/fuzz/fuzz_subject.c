/*
 * fuzz_subject.c - libFuzzer target for the job subject and identifier
 * rules (src/shared/subject.h, src/shared/ids.h).
 *
 * Every job's subject and Nats-Msg-Id come from whoever published it, so
 * these checks are the first thing untrusted input meets. The input, as a
 * C string, goes through jf_subject_parse (with the default prefix "jobs"
 * and a two-token one), jf_job_id_check, jf_token_check and jf_type_split.
 * Each verdict is compared with an independent oracle written here from
 * the grammar of the job contract (split on every '.', then check the parts),
 * so a false accept and a false reject are both caught; every success
 * must also rebuild the input exactly with jf_subject_format, and every
 * failure must leave the out-params untouched and say why.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "shared/ids.h"
#include "shared/subject.h"

#define POISON 0xA5

static const char *const prefixes[] = { "jobs", "jobs.eu" };

/* ---------------------------------------------------------------------
 * The oracle: the job contract, written without looking at the parsers
 * ------------------------------------------------------------------- */

static bool oracle_token(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool oracle_job_id(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > JF_JOB_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Split s on every '.' (empty parts included) into at most max parts;
 * returns the number of parts, or max + 1 when there are more. */
static size_t split(const char *s, const char **part, size_t *len, size_t max)
{
    size_t n = 0;

    for (;;) {
        const char *dot = strchr(s, '.');
        size_t      l = dot ? (size_t)(dot - s) : strlen(s);

        if (n == max)
            return max + 1;
        part[n] = s;
        len[n++] = l;
        if (dot == NULL)
            return n;
        s = dot + 1;
    }
}

/* "<prefix>.<tenant>.<module>.<action>": the prefix's tokens verbatim,
 * then exactly three valid tokens. */
static bool oracle_subject(const char *s, const char *prefix)
{
    const char *sp[8], *pp[8];
    size_t      sl[8], pl[8];
    size_t      np = split(prefix, pp, pl, 4), ns = split(s, sp, sl, 7);

    if (ns != np + 3)
        return false;
    for (size_t i = 0; i < np; i++)
        if (sl[i] != pl[i] || memcmp(sp[i], pp[i], pl[i]) != 0)
            return false;
    return oracle_token(sp[np], sl[np], JF_TENANT_MAX) &&
           oracle_token(sp[np + 1], sl[np + 1], JF_TOKEN_MAX) &&
           oracle_token(sp[np + 2], sl[np + 2], JF_TOKEN_MAX);
}

/* "<module>.<action>": exactly two valid tokens. */
static bool oracle_type(const char *s)
{
    const char *p[3];
    size_t      l[3];

    return split(s, p, l, 2) == 2 && oracle_token(p[0], l[0], JF_TOKEN_MAX) &&
           oracle_token(p[1], l[1], JF_TOKEN_MAX);
}

/* ---------------------------------------------------------------------
 * The checks
 * ------------------------------------------------------------------- */

static bool all_poison(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i] != POISON)
            return false;
    return true;
}

/* A failure returns a status and explains it, in err, with that status. */
static void check_failure(jf_status_t st, const jf_err_t *err, const char *what)
{
    FUZZ_CHECK(st == JF_EINVAL, "%s failed with %s, expected JF_EINVAL", what,
               jf_status_name(st));
    FUZZ_CHECK(err->code == st && err->msg[0] != '\0', "%s failed without a message", what);
    FUZZ_CHECK(fuzz_terminated(err->msg, sizeof(err->msg)), "%s: unterminated message", what);
}

static void check_subject(const char *s, const char *prefix)
{
    jf_subject_t subj;
    jf_err_t     err = { 0 };
    bool         want = oracle_subject(s, prefix);
    jf_status_t  st;
    char         buf[512];
    size_t       len = strlen(s);

    memset(&subj, POISON, sizeof(subj));
    st = jf_subject_parse(s, prefix, &subj, &err);
    if (st != JF_OK) {
        FUZZ_CHECK(!want, "jf_subject_parse refused '%s' (prefix '%s'), which is valid: %s",
                   s, prefix, err.msg);
        FUZZ_CHECK(all_poison(&subj, sizeof(subj)), "jf_subject_parse wrote out on failure");
        check_failure(st, &err, "jf_subject_parse");
        return;
    }
    FUZZ_CHECK(want, "jf_subject_parse accepted '%s' (prefix '%s'), which is invalid", s, prefix);
    FUZZ_CHECK(fuzz_terminated(subj.tenant, sizeof(subj.tenant)) &&
               fuzz_terminated(subj.module, sizeof(subj.module)) &&
               fuzz_terminated(subj.action, sizeof(subj.action)) &&
               fuzz_terminated(subj.type, sizeof(subj.type)), "unterminated part of '%s'", s);
    FUZZ_CHECK(oracle_token(subj.tenant, strlen(subj.tenant), JF_TENANT_MAX) &&
               oracle_token(subj.module, strlen(subj.module), JF_TOKEN_MAX) &&
               oracle_token(subj.action, strlen(subj.action), JF_TOKEN_MAX),
               "a part of '%s' is not a valid token", s);
    snprintf(buf, sizeof(buf), "%s.%s", subj.module, subj.action);
    FUZZ_CHECK(strcmp(buf, subj.type) == 0, "type '%s' is not module.action '%s'", subj.type, buf);

    /* the round trip: the parts rebuild the input exactly */
    FUZZ_CHECK(len < sizeof(buf), "a valid subject is %zu long", len);
    st = jf_subject_format(buf, sizeof(buf), prefix, subj.tenant, subj.type, &err);
    FUZZ_CHECK(st == JF_OK, "jf_subject_format failed: %s", err.msg);
    FUZZ_CHECK(strcmp(buf, s) == 0, "parse then format gave '%s' for '%s'", buf, s);

    /* and the size limit is exact: len + 1 fits, len does not */
    st = jf_subject_format(buf, len + 1, prefix, subj.tenant, subj.type, &err);
    FUZZ_CHECK(st == JF_OK && strcmp(buf, s) == 0, "jf_subject_format into %zu bytes", len + 1);
    st = jf_subject_format(buf, len, prefix, subj.tenant, subj.type, &err);
    FUZZ_CHECK(st == JF_ETOOBIG && buf[len - 1] == '\0',
               "jf_subject_format into %zu bytes returned %s", len, jf_status_name(st));
}

static void check_job_id(const char *s)
{
    jf_err_t    err = { 0 };
    jf_status_t st = jf_job_id_check(s, &err);
    bool        want = oracle_job_id(s);

    if (st != JF_OK) {
        FUZZ_CHECK(!want, "jf_job_id_check refused valid id '%s': %s", s, err.msg);
        check_failure(st, &err, "jf_job_id_check");
    } else {
        FUZZ_CHECK(want, "jf_job_id_check accepted invalid id '%s'", s);
    }
}

/* jf_token_check reads exactly len bytes, so it gets the raw input (not
 * NUL-terminated: ASan sees any read past it), with two limits. */
static void check_token(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = { JF_TOKEN_MAX, 3 };

    for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
        jf_err_t    err = { 0 };
        const char *s = (const char *)data;
        jf_status_t st = jf_token_check(size ? s : NULL, size, maxes[i], "token", &err);
        bool        want = size > 0 && oracle_token(s, size, maxes[i]);

        if (st != JF_OK) {
            FUZZ_CHECK(!want, "jf_token_check refused a valid token (max %zu): %s", maxes[i],
                       err.msg);
            check_failure(st, &err, "jf_token_check");
        } else {
            FUZZ_CHECK(want, "jf_token_check accepted an invalid token of %zu bytes (max %zu)",
                       size, maxes[i]);
        }
    }
}

static void check_type(const char *s)
{
    char        module[JF_TOKEN_MAX + 1], action[JF_TOKEN_MAX + 1], buf[2 * JF_TOKEN_MAX + 2];
    jf_err_t    err = { 0 };
    jf_status_t st;
    bool        want = oracle_type(s);

    memset(module, POISON, sizeof(module));
    memset(action, POISON, sizeof(action));
    st = jf_type_split(s, module, action, &err);
    if (st != JF_OK) {
        FUZZ_CHECK(!want, "jf_type_split refused valid type '%s': %s", s, err.msg);
        FUZZ_CHECK(all_poison(module, sizeof(module)) && all_poison(action, sizeof(action)),
                   "jf_type_split wrote its out-params on failure");
        check_failure(st, &err, "jf_type_split");
        return;
    }
    FUZZ_CHECK(want, "jf_type_split accepted invalid type '%s'", s);
    FUZZ_CHECK(fuzz_terminated(module, sizeof(module)) && fuzz_terminated(action, sizeof(action)),
               "jf_type_split left a part unterminated");
    snprintf(buf, sizeof(buf), "%s.%s", module, action);
    FUZZ_CHECK(strcmp(buf, s) == 0, "jf_type_split of '%s' gave '%s' and '%s'", s, module, action);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        check_subject(s, prefixes[i]);
    check_job_id(s);
    check_token(data, size);
    check_type(s);
    free(s);
    return 0;
}
