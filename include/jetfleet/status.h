/*
 * status.h - the one status enum of jetfleet.
 *
 * Every function that can fail returns a jf_status_t. The split between
 * retryable and terminal codes maps straight onto the runtime's choice
 * between NAK-with-delay and the dead-letter path.
 */
#ifndef JETFLEET_STATUS_H
#define JETFLEET_STATUS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    JF_OK = 0,

    /* terminal: retrying cannot help */
    JF_EINVAL,          /* invalid argument or malformed input */
    JF_ENOMEM,          /* allocation failed */
    JF_ENOTFOUND,       /* the named object does not exist */
    JF_EEXIST,          /* the named object already exists */
    JF_ETOOBIG,         /* input larger than the configured limit */
    JF_EDECODE,         /* payload could not be decoded */
    JF_EDENIED,         /* not authorized */
    JF_EUNSUPPORTED,    /* not supported by this build or this version */
    JF_ECONFIG,         /* bad configuration */
    JF_ESTATE,          /* call not valid in the object's current state */

    /* retryable: the same call may succeed later */
    JF_ETIMEOUT,        /* a deadline passed */
    JF_EIO,             /* transport or server error */
    JF_EUNAVAILABLE,    /* the peer or service is not reachable now */
    JF_EAGAIN,          /* try again later */

    JF_STATUS_MAX_
} jf_status_t;

/* A static, human-readable text for a status. Never NULL. */
const char *jf_status_str(jf_status_t st);

/* The status's stable identifier ("JF_ETIMEOUT"), for logs and events. */
const char *jf_status_name(jf_status_t st);

/* True when the same operation may succeed if tried again later. */
bool jf_status_retryable(jf_status_t st);

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_STATUS_H */
