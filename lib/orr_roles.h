/*  orr_roles: JupyterHub 3.0's roles -- the built-in ones and those from configuration
 *  (c.JupyterHub.load_roles) -- and the scopes they give users, groups and services
 *  (jupyterhub-api.md §8).
 *
 *  Role assignment comes from configuration, not from Redis: every replica of every service
 *  reads the same ORRERY_LOAD_ROLES, so a user's roles are a pure function of (name, admin
 *  flag, groups) and a role removed from the file is gone everywhere at the next restart.
 */
#ifndef ORR_ROLES_H
#define ORR_ROLES_H

#include "orr_scopes.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct orr_roles_t orr_roles_t;

/* The built-in roles (user, admin, server, token) plus the roles of `load_roles`, a JSON
 * list of {"name", "description", "scopes": [..], "users": [..], "groups": [..],
 * "services": [..]} (JupyterHub's load_roles); NULL or "" = none. A value that does not
 * start with '[' is read as the path of a file holding that JSON. Custom scopes used by the
 * roles ("custom:...") are declared. NULL and err set for invalid input (bad JSON, bad role
 * name, unknown scope, redefinition of a built-in role other than extending its members). */
orr_roles_t *orr_roles_new (const char *load_roles, char *err, size_t errlen);
void orr_roles_destroy (orr_roles_t **self_p);

bool orr_roles_exists (const orr_roles_t *self, const char *role);

/* Names of the roles held directly (not through groups), as a new JSON array. */
json_t *orr_roles_of_user (const orr_roles_t *self, const char *user, bool admin);
json_t *orr_roles_of_group (const orr_roles_t *self, const char *group);
json_t *orr_roles_of_service (const orr_roles_t *self, const char *service, bool admin);

/* Every scope a user holds now: roles held directly and through `groups` (NULL-terminated
 * or NULL), expanded. Never NULL. */
orr_scopes_t *orr_roles_user_scopes (const orr_roles_t *self, const char *user, bool admin, const char *const *groups);
orr_scopes_t *orr_roles_service_scopes (const orr_roles_t *self, const char *service, bool admin);

/* Expands one role's scopes for an owner into `into` (token roles, §8). `inherit` in a role
 * adds `owner_scopes`. -1 and err for an unknown role. */
int orr_roles_expand (const orr_roles_t *self, const char *role, const char *owner_kind, const char *owner_name,
                      const orr_scopes_t *owner_scopes, orr_scopes_t *into, char *err, size_t errlen);

#endif
