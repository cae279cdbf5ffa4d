/*
 * redact.c - URL redaction through curl's URL API (never hand-parsed).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>
#include <curl/curl.h>

#include "security/redact.h"

static void redact_one(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char  *user = NULL, *pass = NULL, *clean = NULL;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, url,
                                  CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) != CURLUE_OK) {
        strlcat(out, "<unparsable url>", size);
        curl_url_cleanup(u);
        return;
    }
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    /* nats://token@host puts a token where a user name goes. */
    if (user == NULL && pass == NULL)
        strlcat(out, url, size);   /* nothing to hide: keep it as written */
    else if (pass != NULL)
        curl_url_set(u, CURLUPART_PASSWORD, "<redacted>", 0);
    else if (user != NULL)
        curl_url_set(u, CURLUPART_USER, "<redacted>", 0);
    if (user != NULL || pass != NULL) {
        if (curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK)
            strlcat(out, clean, size);
        else
            strlcat(out, "<unparsable url>", size);
    }
    curl_free(user);
    curl_free(pass);
    curl_free(clean);
    curl_url_cleanup(u);
}

const char *jf_redact_url_list(const char *urls, char *out, size_t size)
{
    char *copy, *save = NULL;
    bool  first = true;

    if (size == 0)
        return out;
    out[0] = '\0';
    if (urls == NULL || (copy = strdup(urls)) == NULL)
        return out;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!first)
            strlcat(out, ",", size);
        first = false;
        redact_one(t, out, size);
    }
    free(copy);
    return out;
}
