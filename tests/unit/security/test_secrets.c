/*
 * test_secrets.c - loading JF_SECRETS_DIR, refusals, and the wipe.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "security/secrets.h"

static char dir[64];

static void put(const char *name, const void *data, size_t len, mode_t mode)
{
    char path[256];
    int  fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "%s", path);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    cr_assert_eq(chmod(path, mode), 0);
}

static void sub(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(mkdir(path, 0700), 0);
}

static void setup(void)
{
    strcpy(dir, "/tmp/jf-secrets-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(secrets, .init = setup, .fini = teardown);

Test(secrets, loads_files_by_relative_name)
{
    jf_secrets_t *s = NULL;
    jf_err_t      err = { 0 };
    const void   *v;
    size_t        len;

    sub("signing");
    sub("webhooks");
    put("signing/k1", "key-one\n", 8, 0600);            /* one newline trimmed */
    put("signing/k2", "key-two\n\n", 9, 0400);          /* only one */
    put("webhooks/acme", "\x00\x01\xff", 3, 0600);       /* binary is fine */
    put(".hidden", "x", 1, 0644);                         /* dotfiles are skipped */
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_OK, "%s", err.msg);
    cr_assert_eq(jf_secrets_count(s), 3);
    cr_assert_eq(jf_secrets_get(s, "signing/k1", &v, &len), JF_OK);
    cr_assert_eq(len, 7);
    cr_assert_eq(memcmp(v, "key-one", 7), 0);
    cr_assert_eq(jf_secrets_get(s, "signing/k2", &v, &len), JF_OK);
    cr_assert_eq(len, 8);
    cr_assert_eq(memcmp(v, "key-two\n", 8), 0);
    cr_assert_eq(jf_secrets_get(s, "webhooks/acme", &v, &len), JF_OK);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(v, "\x00\x01\xff", 3), 0);
    cr_assert_eq(jf_secrets_get(s, ".hidden", &v, &len), JF_ENOTFOUND);
    cr_assert_eq(jf_secrets_get(s, "k1", &v, &len), JF_ENOTFOUND);
    cr_assert_eq(jf_secrets_get(NULL, "signing/k1", &v, &len), JF_ENOTFOUND);
    jf_secrets_destroy(s);
}

Test(secrets, refuses_group_or_world_readable_files)
{
    jf_secrets_t *s = (jf_secrets_t *)0x1;
    jf_err_t      err = { 0 };

    sub("signing");
    put("signing/k1", "ok", 2, 0600);
    put("signing/k2", "leaky", 5, 0640);
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_ECONFIG);
    cr_assert_eq(s, (jf_secrets_t *)0x1);
    cr_assert(strstr(err.msg, "signing/k2") && strstr(err.msg, "0640") &&
              strstr(err.msg, "chmod 600"), "%s", err.msg);
    put("signing/k2", "leaky", 5, 0604);
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_ECONFIG);
    cr_assert(strstr(err.msg, "signing/k2"), "%s", err.msg);
}

Test(secrets, refuses_files_over_4_kib)
{
    static char   big[JF_SECRET_MAX + 1];
    jf_secrets_t *s = NULL;
    jf_err_t      err = { 0 };

    memset(big, 'a', sizeof(big));
    put("exact", big, JF_SECRET_MAX, 0600);
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_OK, "%s", err.msg);
    jf_secrets_destroy(s);
    s = NULL;
    put("huge", big, sizeof(big), 0600);
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_ECONFIG);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "/huge is 4097 bytes"), "%s", err.msg);
}

Test(secrets, missing_dir_and_empty_path)
{
    jf_secrets_t *s = NULL;
    jf_err_t      err = { 0 };

    cr_assert_eq(jf_secrets_load("/nonexistent/jf-secrets", &s, &err), JF_ECONFIG);
    cr_assert(strstr(err.msg, "/nonexistent/jf-secrets"), "%s", err.msg);
    cr_assert_eq(jf_secrets_load("", &s, &err), JF_EINVAL);
    cr_assert_null(s);
    jf_secrets_destroy(NULL);
}

Test(secrets, empty_dir_is_an_empty_set)
{
    jf_secrets_t *s = NULL;
    jf_err_t      err = { 0 };

    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_OK, "%s", err.msg);
    cr_assert_eq(jf_secrets_count(s), 0);
    jf_secrets_destroy(s);
}

/* What this proves: the wipe that destroy runs first (jf_secrets_wipe)
 * overwrites the very bytes jf_secrets_get handed out, while that memory
 * is still allocated, and lookups fail afterwards. It cannot prove that
 * freed memory stays zero (reading it would be use-after-free), nor that
 * no copy exists elsewhere; explicit_bzero keeps the compiler from eliding
 * the stores. */
Test(secrets, wipe_zeroes_values_in_place)
{
    jf_secrets_t        *s = NULL;
    jf_err_t             err = { 0 };
    const void          *v;
    const unsigned char *bytes;
    size_t               len;

    put("k", "s3cr3t-value", 12, 0600);
    cr_assert_eq(jf_secrets_load(dir, &s, &err), JF_OK, "%s", err.msg);
    cr_assert_eq(jf_secrets_get(s, "k", &v, &len), JF_OK);
    bytes = v;
    cr_assert_eq(memcmp(bytes, "s3cr3t-value", 12), 0);
    jf_secrets_wipe(s);
    for (size_t i = 0; i < 12; i++)
        cr_assert_eq(bytes[i], 0, "byte %zu survived the wipe", i);
    cr_assert_eq(jf_secrets_get(s, "k", &v, &len), JF_ENOTFOUND);
    jf_secrets_destroy(s);
}
