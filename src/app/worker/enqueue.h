/*
 * enqueue.h - the enqueue service lent to handlers (include/jetfleet/enqueue.h;
 * ADR 0009): jf_job_hooks_t.enqueue, with the worker as its context.
 */
#ifndef JF_APP_WORKER_ENQUEUE_H
#define JF_APP_WORKER_ENQUEUE_H

#include <jetfleet/job.h>
#include <protobuf-c/protobuf-c.h>

/* Publish a child job of parent's tenant under child_id; ctx is the
 * worker. Waits for the stream's acknowledgement, on the handler's thread. */
jf_status_t jf_worker_enqueue(void *ctx, const jf_job_t *parent, const char *type,
                              const ProtobufCMessage *payload, const char *child_id);

#endif /* JF_APP_WORKER_ENQUEUE_H */
