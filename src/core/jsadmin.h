/*
 * jsadmin.h - creating and updating JetStream streams, consumers and KV
 * buckets, idempotently. Used by `jetfleet provision`; workers never call it.
 */
#ifndef JF_CORE_JSADMIN_H
#define JF_CORE_JSADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/nats.h"
#include "shared/err.h"

typedef enum {
    JF_PROV_CREATED,
    JF_PROV_UPDATED,
    JF_PROV_UNCHANGED,
} jf_prov_result_t;

const char *jf_prov_result_str(jf_prov_result_t r);

typedef enum {
    JF_RETENTION_LIMITS,
    JF_RETENTION_WORKQUEUE,
    JF_RETENTION_INTEREST,
} jf_retention_t;

typedef struct jf_stream_spec {
    const char        *name;
    const char        *description;
    const char *const *subjects;
    int                nsubjects;
    jf_retention_t     retention;
    int64_t            max_age_ms;     /* 0: unlimited */
    int64_t            max_bytes;      /* 0: unlimited */
    int32_t            max_msg_size;   /* 0: unlimited */
    int64_t            duplicates_ms;  /* 0: server default */
    int                replicas;
    const char        *placement_cluster;  /* NULL: where the server puts it; set at creation only */
    const char *const *sources;        /* streams to source from; existing sources are kept */
    int                nsources;
} jf_stream_spec_t;

typedef struct jf_consumer_spec {
    const char *stream;
    const char *durable;
    const char *description;
    const char *filter_subject;
    int64_t     ack_wait_ms;
    int64_t     max_deliver;
    int64_t     max_ack_pending;
} jf_consumer_spec_t;

typedef struct jf_kv_spec {
    const char *bucket;
    const char *description;
    int64_t     ttl_ms;
    int32_t     max_value_size;
    int         replicas;
    int         history;        /* revisions kept per key; 0 means 1 */
    const char *placement_cluster;  /* NULL: where the server puts it; set at creation only */
} jf_kv_spec_t;

/* Create the stream, or bring an existing one to the spec. A change that
 * JetStream cannot make in place (retention, storage) is JF_ECONFIG with a
 * sentence saying so; the stream is left as it was. */
jf_status_t jf_js_ensure_stream(jf_nats_t *nc, const jf_stream_spec_t *spec,
                                jf_prov_result_t *out, jf_err_t *err);

/* Create the durable pull consumer, or update an existing one. */
jf_status_t jf_js_ensure_consumer(jf_nats_t *nc, const jf_consumer_spec_t *spec,
                                  jf_prov_result_t *out, jf_err_t *err);

/* Create the KV bucket, or update its TTL, value size and replicas. */
jf_status_t jf_js_ensure_kv(jf_nats_t *nc, const jf_kv_spec_t *spec,
                            jf_prov_result_t *out, jf_err_t *err);

typedef struct jf_consumer_state {
    uint64_t num_pending;      /* not yet delivered */
    int64_t  num_ack_pending;  /* delivered, not yet acked */
    int64_t  num_redelivered;
    int64_t  num_waiting;      /* pull requests waiting */
    uint64_t delivered_stream_seq;
    uint64_t ack_floor_stream_seq;
    int64_t  created_ns;
} jf_consumer_state_t;

jf_status_t jf_js_consumer_state(jf_nats_t *nc, const char *stream, const char *consumer,
                                 jf_consumer_state_t *out, jf_err_t *err);

typedef struct jf_stream_state {
    uint64_t msgs;
    uint64_t bytes;
    uint64_t first_seq, last_seq;
    int64_t  created_ns;
} jf_stream_state_t;

jf_status_t jf_js_stream_state(jf_nats_t *nc, const char *stream, jf_stream_state_t *out,
                               jf_err_t *err);

/* ---- publishing ------------------------------------------------------------ */

typedef struct jf_header {
    const char *name;
    const char *value;
} jf_header_t;

typedef struct jf_pub_ack {
    char     stream[64];
    uint64_t seq;
    bool     duplicate;   /* the stream already had this Nats-Msg-Id */
} jf_pub_ack_t;

/* Publish to a stream and wait for its acknowledgement. msg_id becomes the
 * Nats-Msg-Id header (may be NULL). out may be NULL. */
jf_status_t jf_js_publish(jf_nats_t *nc, const char *subject, const void *data, size_t len,
                          const jf_header_t *headers, size_t nheaders, const char *msg_id,
                          jf_pub_ack_t *out, jf_err_t *err);

#endif /* JF_CORE_JSADMIN_H */
