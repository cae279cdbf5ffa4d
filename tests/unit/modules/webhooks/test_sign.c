/*
 * test_sign.c - the webhooks module's Standard Webhooks signer (sign.c):
 * the scheme's published test vector, rotation, padding, limits and
 * malformed secret files.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "modules/webhooks/sign.h"
#include "shared/arena_impl.h"

/* The test vector of the Standard Webhooks specification. */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_MSG    "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}"
#define VEC_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* "second-secret-key-bytes" (23 bytes: one "=" of padding), and its
 * signature of VEC_MSG; computed with Python's hmac and base64. */
#define SECOND_SECRET "whsec_c2Vjb25kLXNlY3JldC1rZXktYnl0ZXM="
#define SECOND_SIG    "v1,njtgxf66xDm+oHJZbtAxvqy/Bpcy0rGQsU+vk8oLGLo="

/* bytes 0..127 and 0..128: the largest key allowed, and one byte more */
#define KEY128 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy" \
               "MzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWpr" \
               "bG1ub3BxcnN0dXZ3eHl6e3x9fn8="
#define KEY128_SIG "v1,QpnRh3rHsHewzshAeM0JlMn63HDVv7aa2GghS3Zy/ik="
#define KEY129 "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy" \
               "MzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWpr" \
               "bG1ub3BxcnN0dXZ3eHl6e3x9fn+A"

static jf_arena_t *arena;

static void setup(void)
{
    cr_assert_eq(jf_arena_create(&arena, 0), JF_OK);
}

static void teardown(void)
{
    jf_arena_destroy(arena);
}

/* Sign VEC_MSG with the secret text s; *reason as the signer left it. */
static char *sign_vec(const char *s, const char **reason)
{
    *reason = NULL;
    return webhooks_sign(arena, "acme", s, strlen(s), VEC_MSG, strlen(VEC_MSG), reason);
}

static void expect_sig(const char *secrets, const char *want)
{
    const char *reason;
    char       *sig = sign_vec(secrets, &reason);

    cr_assert_not_null(sig, "'%s' refused: %s", secrets, reason ? reason : "(no reason)");
    cr_assert_str_eq(sig, want, "'%s'", secrets);
}

static void expect_refusal(const char *secrets, const char *want_reason)
{
    const char *reason;
    char       *sig = sign_vec(secrets, &reason);

    cr_assert_null(sig, "'%s' was accepted: %s", secrets, sig);
    cr_assert_not_null(reason, "'%s': no reason", secrets);
    cr_assert_str_eq(reason, want_reason, "'%s'", secrets);
}

TestSuite(sign, .init = setup, .fini = teardown);

Test(sign, the_published_test_vector)
{
    expect_sig(VEC_SECRET, VEC_SIG);
}

Test(sign, whitespace_around_the_secrets_is_ignored)
{
    expect_sig(VEC_SECRET "\n", VEC_SIG);
    expect_sig("\n  \t" VEC_SECRET " \r\n\n", VEC_SIG);
}

Test(sign, reads_only_secrets_len_bytes)
{
    static const char text[] = VEC_SECRET "garbage";
    const char       *reason = NULL;
    char             *sig = webhooks_sign(arena, "acme", text, strlen(VEC_SECRET), VEC_MSG,
                                          strlen(VEC_MSG), &reason);

    cr_assert_not_null(sig, "%s", reason ? reason : "(no reason)");
    cr_assert_str_eq(sig, VEC_SIG);
}

Test(sign, rotation_gives_one_signature_per_secret_in_order)
{
    expect_sig(VEC_SECRET "\n" SECOND_SECRET "\n", VEC_SIG " " SECOND_SIG);
    expect_sig(SECOND_SECRET " " VEC_SECRET, SECOND_SIG " " VEC_SIG);
}

Test(sign, padding_and_key_sizes)
{
    expect_sig("whsec_YWI=", "v1,vHojwjV0xppqxeWQOw3i9VrH5wjGxYf3RB6uU8E8Xuw=");   /* "ab" */
    expect_sig("whsec_eA==", "v1,Qs87/2TtT3dBZBDJE56tFymiPdefBYtvg4D+Xlx+Xd4=");   /* "x" */
    expect_sig(KEY128, KEY128_SIG);
    expect_refusal(KEY129, "webhook secret #1 for tenant acme is not whsec_<base64 key>");
}

Test(sign, eight_secrets_are_allowed)
{
    char        text[1024] = "", want[1024] = "";
    const char *reason;
    char       *sig;

    for (int i = 0; i < WEBHOOKS_MAX_SECRETS; i++) {
        strcat(text, VEC_SECRET " ");
        strcat(want, i ? " " VEC_SIG : VEC_SIG);
    }
    sig = sign_vec(text, &reason);
    cr_assert_not_null(sig, "%s", reason ? reason : "(no reason)");
    cr_assert_str_eq(sig, want);
}

Test(sign, too_many_secrets)
{
    char text[1024] = "";

    for (int i = 0; i <= WEBHOOKS_MAX_SECRETS; i++)
        strcat(text, VEC_SECRET "\n");
    expect_refusal(text, "more than 8 webhook secrets for tenant acme");
}

Test(sign, empty_secret_files)
{
    expect_refusal("", "webhook secret file for tenant acme is empty");
    expect_refusal(" \n\t\r\n", "webhook secret file for tenant acme is empty");
}

Test(sign, malformed_secrets)
{
    static const char *const bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* no prefix */
        "whsec_",                                       /* no key */
        "whsec",                                        /* a short prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* a prefix in upper case */
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* another prefix */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",        /* not a multiple of 4 */
        "whsec_!!!!",                                   /* not the base64 alphabet */
        "whsec_MfKQ9r8GKYqrTwjU_D8ILPZIo2LaLaSw",       /* base64url */
        "whsec_====",                                   /* padding only */
        "whsec_A===",                                   /* three padding characters */
        "whsec_AA=A",                                   /* padding in the middle */
        "whsec_AA==AAAA",                               /* padding before the end */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refusal(bad[i], "webhook secret #1 for tenant acme is not whsec_<base64 key>");
}

Test(sign, the_reason_names_the_bad_secret_and_never_a_secret)
{
    const char *reason;

    cr_assert_null(sign_vec(VEC_SECRET " " SECOND_SECRET " whsec_not!base64", &reason));
    cr_assert_str_eq(reason, "webhook secret #3 for tenant acme is not whsec_<base64 key>");
    cr_assert_null(sign_vec(VEC_SECRET " MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &reason));
    cr_assert_null(strstr(reason, "MfKQ"), "%s", reason);
}
