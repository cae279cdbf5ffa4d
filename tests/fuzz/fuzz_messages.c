/*
 * fuzz_messages.c - the table of message types behind fuzz_message_pick:
 * every payload and record schema of jetfleet (proto/), and the unit
 * tests' pbjson fixture (tests/unit/core/pbjson_test.proto), which has the
 * field kinds our own schemas lack (maps, oneofs, bytes, reals, nested and
 * repeated messages) so that every path of the JSON mapping is reached.
 */
#include <jetfleet/diag/v1/diag.pb-c.h>
#include <jetfleet/v1/deadletter.pb-c.h>
#include <jetfleet/v1/event.pb-c.h>
#include <jetfleet/v1/ledger.pb-c.h>

#include "fuzz_messages.h"
#include "pbjson_test.pb-c.h"

static const fuzz_message_t messages[] = {
    { &jetfleet__v1__job_record__descriptor, true },     /* A */
    { &jetfleet__v1__job_event__descriptor, true },      /* B */
    { &jetfleet__v1__dead_letter__descriptor, true },    /* C */
    { &jetfleet__diag__v1__noop__descriptor, true },     /* D */
    { &jetfleet__diag__v1__sleep__descriptor, true },    /* E */
    { &jetfleet__diag__v1__fail__descriptor, true },     /* F */
    { &jetfleet__diag__v1__effect__descriptor, true },   /* G */
    { &jetfleet__diag__v1__crash__descriptor, true },    /* H */
    { &jftest__v1__everything__descriptor, false },      /* I */
    { &jftest__v1__inner__descriptor, true },            /* J */
};

const fuzz_message_t *fuzz_message_pick(uint8_t c)
{
    return &messages[(uint8_t)(c - 'A') % (sizeof(messages) / sizeof(messages[0]))];
}
