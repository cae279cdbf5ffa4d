/*
 * test_redact.c - secrets never leave through a URL.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "security/redact.h"

Test(redact, hides_passwords_and_tokens)
{
    char out[256];

    jf_redact_url_list("nats://alice:s3cret@h1:4222,nats://tok3n@h2:4222,nats://h3:4222", out,
                       sizeof(out));
    cr_assert(strstr(out, "s3cret") == NULL, "%s", out);
    cr_assert(strstr(out, "tok3n") == NULL, "%s", out);
    cr_assert(strstr(out, "alice") != NULL, "%s", out);
    cr_assert(strstr(out, "h3:4222") != NULL, "%s", out);
}

Test(redact, keeps_urls_without_secrets_as_written)
{
    char out[128];

    cr_assert_str_eq(jf_redact_url_list("nats://127.0.0.1:4222", out, sizeof(out)),
                     "nats://127.0.0.1:4222");
    cr_assert_str_eq(jf_redact_url_list("", out, sizeof(out)), "");
}
