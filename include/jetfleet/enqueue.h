/*
 * enqueue.h - the runtime's enqueue service: a handler starts child jobs.
 *
 * A child job belongs to its parent's tenant (a handler cannot choose
 * another), is published to the job stream like any job, and goes through
 * the same authorization, policy and ledger as a job published from
 * outside. Its id is derived from the parent's id and a key the handler
 * chooses, so running the parent again (a retry, a crash, a redelivery)
 * enqueues the very same children: JetStream drops a republished child
 * within the duplicate window and the ledger skips one that already
 * succeeded after it. A fan-out therefore happens once per parent, however
 * often the parent runs.
 *
 *     for (size_t i = 0; i < n; i++) {
 *         Jetfleet__Webhooks__V1__Deliver d = ...;
 *         st = jf_job_enqueue(job, "webhooks.deliver", &d.base, endpoint[i].id, NULL);
 *         if (st != JF_OK)
 *             return jf_status_retryable(st) ? jf_retry(st, 0, "enqueue failed")
 *                                            : jf_fail(st, "enqueue refused");
 *     }
 */
#ifndef JETFLEET_ENQUEUE_H
#define JETFLEET_ENQUEUE_H

#include <protobuf-c/protobuf-c.h>

#include <jetfleet/job.h>
#include <jetfleet/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest child key: 1 to 64 characters from [A-Za-z0-9_.:-]. */
#define JF_CHILD_KEY_MAX 64

/* Enqueue a child job of type "<module>.<action>" with payload (a message
 * of that job type's payload descriptor) and wait until the stream has
 * stored it. The child's id is jf_job_child_id(parent, key); when
 * ret_id is not NULL it points to that id, in the parent's arena.
 *
 * JF_OK: stored now, or already stored by an earlier run of the parent.
 * JF_EINVAL: bad key, or payload is not the type's message.
 * JF_ENOTFOUND: no such job type in this runtime.
 * JF_EDENIED: the tenant policy does not let this tenant run that type.
 * JF_ETOOBIG: the encoded payload exceeds the job size limit.
 * Retryable statuses (JF_ETIMEOUT, JF_EUNAVAILABLE, JF_EIO): the stream did
 * not confirm; retry the parent, which enqueues the same child again. */
jf_status_t jf_job_enqueue(jf_job_t *parent, const char *type, const ProtobufCMessage *payload,
                           const char *key, const char **ret_id);

/* The id a child with key gets: "<parent id>/<key>" when that fits the
 * 128-character job id limit, else the parent id's first 60 characters,
 * "/" and the SHA-256 of parent id and key in hex. In the parent's arena;
 * NULL for an invalid key or when out of memory. */
const char *jf_job_child_id(jf_job_t *parent, const char *key);

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_ENQUEUE_H */
