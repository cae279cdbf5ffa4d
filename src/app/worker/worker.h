/*
 * worker.h - the worker runtime: consume loop, dispatch and lifecycle.
 *
 *   pull engine (core) --deliver--> queue --> N job threads --> dispatch
 *                                                              |
 *                      parse, validate, authorize, decode <----+
 *                      run the handler, ack / nak / terminate
 *
 * worker.c owns the process lifecycle (start-up, signals, shutdown);
 * dispatch.c owns what happens to one message.
 */
#ifndef JF_APP_WORKER_H
#define JF_APP_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jetfleet/registry.h>

#include "core/config.h"
#include "core/jsmsg.h"
#include "core/nats.h"
#include "core/pull.h"
#include "security/authz.h"

typedef struct jf_arena jf_arena_t;

/* One job thread and what it is running. */
typedef struct jf_slot {
    struct jf_worker *w;
    pthread_t         thread;
    jf_arena_t       *arena;
    pthread_mutex_t   mu;        /* guards current's acknowledgement */
    jf_jsmsg_t       *current;   /* the message being run, or NULL */
} jf_slot_t;

typedef struct jf_worker {
    const jf_config_t *cfg;
    jf_registry_t     *reg;
    jf_authz_t        *authz;
    jf_nats_t         *nc;
    jf_pull_t         *pull;
    char               worker_id[128];

    /* the hand-off queue between the pull engine and the job threads */
    pthread_mutex_t    qmu;
    pthread_cond_t     qcond;
    jf_jsmsg_t       **queue;
    size_t             qcap, qhead, qlen;
    bool               qclosed;

    jf_slot_t         *slots;
    int                nslots;
    atomic_int         running;       /* jobs inside dispatch */
    atomic_bool        stopping;      /* SIGTERM seen: no new jobs */
    atomic_bool        cancel;        /* grace over: handlers should stop */
    atomic_bool        fatal;         /* consumer gone: exit non-zero */
} jf_worker_t;

/* Run one message to its end: acknowledged one way or another, destroyed,
 * and its slot in the pull engine returned. Never fails. */
void jf_dispatch(jf_worker_t *w, jf_slot_t *slot, jf_jsmsg_t *msg);

#endif /* JF_APP_WORKER_H */
