/*
 * registry.h - the service registry: dependency injection by contract name.
 *
 * A module declares in its descriptor which service contracts it provides
 * and which it requires. At start-up the runtime refuses a contract provided
 * twice or required but provided by nobody, then calls each module's init in
 * dependency order; init provides its services with jf_registry_provide().
 * Handlers look services up with jf_registry_get(). There are no globals:
 * the registry is handed to init and reachable from every job context.
 *
 * Contract names are "<module>.v<N>", e.g. "subscriptions.v1". A service is
 * a pointer to a const vtable, declared in the providing module's
 * contract.h, plus an opaque instance pointer passed back to every call.
 */
#ifndef JETFLEET_REGISTRY_H
#define JETFLEET_REGISTRY_H

#include <jetfleet/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jf_registry jf_registry_t;

typedef struct jf_service {
    const void *vtable;   /* the contract's vtable; borrowed, must outlive the registry */
    void       *instance; /* passed back to every vtable call; owned by the provider */
} jf_service_t;

/* Provide a service under a contract name. name and svc->vtable are
 * borrowed and must stay valid until shutdown. Returns JF_EEXIST when the
 * name is already provided, JF_EDENIED when the calling module did not
 * declare it in its descriptor's provides list. */
jf_status_t jf_registry_provide(jf_registry_t *reg, const char *name,
                                const jf_service_t *svc);

/* Look up a service. On success *out is filled; on failure it is left
 * untouched and JF_ENOTFOUND is returned, or JF_EDENIED when the calling
 * module did not declare the contract in its requires (or provides) list:
 * every dependency between modules is declared, so start-up and the gates
 * see it. */
jf_status_t jf_registry_get(const jf_registry_t *reg, const char *name,
                            jf_service_t *out);

#ifdef __cplusplus
}
#endif

#endif /* JETFLEET_REGISTRY_H */
