/*  orr_scopes: JupyterHub 3.0's scopes -- expansion, intersection and access checks
 *  (shared/reference/jupyterhub-api.md §8).
 *
 *  A scope is "base" or "base!filter" where filter is user=NAME, server=USER/SERVER,
 *  group=NAME or service=NAME. A set holds EXPANDED scopes: every implied scope is
 *  present with the filter of the scope that implied it, so a check is a lookup, never a
 *  walk of the implication tree. Sets are small (tens of entries), kept sorted.
 *
 *  Group filters need to know who is in a group; callers pass a membership callback so
 *  this file stays free of Redis and can be fuzzed on its own.
 */
#ifndef ORR_SCOPES_H
#define ORR_SCOPES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct orr_scopes_t orr_scopes_t;

/* Is `user` a member of `group`? */
typedef bool (orr_group_member_fn) (void *ctx, const char *user, const char *group);

/* What a request touches: any field may be NULL. `server` is "USER/SERVER" ("alice/" for
 * the default server) and implies `user`. */
typedef struct {
    const char *user;
    const char *server;
    const char *group;
    const char *service;
} orr_scope_target_t;

typedef enum {
    ORR_SCOPE_ALLOW = 0,
    ORR_SCOPE_MISSING = 403,    /* none of the scopes is held */
    ORR_SCOPE_NOT_FOUND = 404,  /* held, but only with filters that miss the target */
} orr_scope_decision_t;

/* The longest scope string accepted anywhere (longer ones are invalid). */
#define ORR_SCOPE_MAX_LEN 512

orr_scopes_t *orr_scopes_new (void);
void orr_scopes_destroy (orr_scopes_t **self_p);
orr_scopes_t *orr_scopes_dup (const orr_scopes_t *self);

size_t orr_scopes_size (const orr_scopes_t *self);
const char *orr_scopes_at (const orr_scopes_t *self, size_t i);
/* Exact membership of one (expanded) scope string. */
bool orr_scopes_contains (const orr_scopes_t *self, const char *scope);
/* Adds one scope string as is (no expansion); duplicates are ignored. */
void orr_scopes_add (orr_scopes_t *self, const char *scope);

/* Declares a custom scope ("custom:..."), valid from then on in every thread. Call at
 * start-up, before threads. */
void orr_scopes_define_custom (const char *name);

/* True when `scope` is a known scope name with a well-formed filter (or none). `self`,
 * `inherit` and `(no_scope)` are not scopes here: callers handle them. */
bool orr_scope_is_valid (const char *scope);

/* Expands one scope (with its filter) into `self`. A bare filter ("!user") is completed
 * from the owner ("!user=<owner_name>" for owner_kind "user", "!service=<name>" for
 * "service"). `self` expands to the user's own scopes. Returns 0, or -1 with err set for
 * an unknown scope or a malformed filter. */
int orr_scopes_expand_into (orr_scopes_t *self, const char *scope, const char *owner_kind, const char *owner_name,
                            char *err, size_t errlen);

/* The scopes of `a` that `b` also grants (a request's token scopes narrowed to what the
 * owner may do today). A filtered scope in `a` survives when `b` holds the same base
 * unfiltered, with the same filter, or with a wider one (user covers the user's servers,
 * group covers its members); an unfiltered scope in `a` is narrowed to b's filters. */
orr_scopes_t *orr_scopes_intersect (const orr_scopes_t *a, const orr_scopes_t *b, orr_group_member_fn *is_member,
                                    void *ctx);

/* JupyterHub's per-endpoint decision: the scopes in `any_of` (NULL-terminated) are tried in
 * order: not held -> next; held unfiltered -> allow; a filter matching the target -> allow;
 * held only with non-matching filters -> 404 at once. None held -> 403. */
orr_scope_decision_t orr_scopes_check (const orr_scopes_t *self, const char *const *any_of,
                                       const orr_scope_target_t *target, orr_group_member_fn *is_member, void *ctx);

/* True when `base` is held with no filter or with a filter matching `target`. */
bool orr_scopes_allows (const orr_scopes_t *self, const char *base, const orr_scope_target_t *target,
                        orr_group_member_fn *is_member, void *ctx);

/* True when `base` is held at all (any filter). */
bool orr_scopes_holds (const orr_scopes_t *self, const char *base);

/* Sorted JSON array of the set's strings (new reference). */
json_t *orr_scopes_to_json (const orr_scopes_t *self);

/* A set from a JSON array of strings (non-strings are skipped; no validation), as stored
 * in Redis by orr_scopes_to_json. NULL or a non-array gives an empty set. */
orr_scopes_t *orr_scopes_from_json (const json_t *array);

#endif
