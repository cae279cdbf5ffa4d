/*
 * redact.h - keeping secrets out of output.
 */
#ifndef JF_SECURITY_REDACT_H
#define JF_SECURITY_REDACT_H

#include <stddef.h>

/* Copy a comma-separated list of URLs into out with any password or token
 * in the user-info part replaced by "<redacted>". A URL that does not
 * parse is replaced whole by "<unparsable url>", since it might hold a
 * secret in a place we cannot see. Always NUL-terminates out. */
const char *jf_redact_url_list(const char *urls, char *out, size_t size);

#endif /* JF_SECURITY_REDACT_H */
