/*
 * contract.h - the diag module's only public face.
 *
 * diag provides canary and test job types; it offers no service contract.
 *
 *   diag.noop    payload jetfleet.diag.v1.Noop   succeeds at once
 *   diag.sleep   payload jetfleet.diag.v1.Sleep  sleeps ms (cut short by
 *                                                 deadline or shutdown: RETRY)
 *   diag.fail    payload jetfleet.diag.v1.Fail   RETRY or FAIL with message;
 *                                                 succeeds from succeed_on_attempt
 *   diag.effect  payload jetfleet.diag.v1.Effect appends "<job id> <attempt> <pid>
 *                                                 <unix ms>" to
 *                                                 $JF_DIAG_EFFECTS_DIR/effects.log,
 *                                                 so chaos runs can count effects
 *   diag.crash   payload jetfleet.diag.v1.Crash  aborts the process; flagged
 *                                                 unsafe (JF_DIAG_UNSAFE=1 only)
 *
 * Used by tests, the benchmark, chaos runs and operators' canary jobs.
 */
#ifndef JF_MODULES_DIAG_CONTRACT_H
#define JF_MODULES_DIAG_CONTRACT_H

#include <jetfleet/module.h>

/* The module descriptor, listed in the composition root (src/app/modules.c). */
extern const jf_module_t jf_module_diag;

#endif /* JF_MODULES_DIAG_CONTRACT_H */
