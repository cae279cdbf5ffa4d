/*
 * jetfleet.h - the public module API, in one include.
 *
 * Module authors program against these headers and nothing under src/
 * except the contract.h of modules whose services they require.
 */
#ifndef JETFLEET_JETFLEET_H
#define JETFLEET_JETFLEET_H

#include <jetfleet/arena.h>
#include <jetfleet/enqueue.h>
#include <jetfleet/job.h>
#include <jetfleet/module.h>
#include <jetfleet/registry.h>
#include <jetfleet/status.h>

#endif /* JETFLEET_JETFLEET_H */
