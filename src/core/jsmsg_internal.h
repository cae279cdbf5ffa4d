/*
 * jsmsg_internal.h - building a jf_jsmsg_t from a natsMsg (src/core only).
 */
#ifndef JF_CORE_JSMSG_INTERNAL_H
#define JF_CORE_JSMSG_INTERNAL_H

#include "core/jsmsg.h"
#include "core/nats_internal.h"

/* Wrap msg, whose reply subject must be a $JS.ACK subject. Takes ownership
 * of msg on success only. */
jf_status_t jf_jsmsg_wrap(jf_jsmsg_t **out, jf_nats_t *nc, natsMsg *msg, jf_err_t *err);

/* Mark m as delivered across a stall (see jf_jsmsg_stale). */
void jf_jsmsg_mark_stale(jf_jsmsg_t *m);

/* The natsMsg inside a jf_jsmsg_t (borrowed). */
natsMsg *jf_jsmsg_raw(const jf_jsmsg_t *m);

#endif /* JF_CORE_JSMSG_INTERNAL_H */
