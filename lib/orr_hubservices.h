/*  orr_hubservices: the externally managed services of configuration
 *  (JupyterHub's c.JupyterHub.services), each with an API token and roles.
 *
 *  ORRERY_SERVICES is a JSON list (or the path of a file holding one) of
 *  {"name", "api_token", "admin", "url", "display", "info", "oauth_client_id",
 *   "oauth_redirect_uri", "oauth_no_confirm"}; only "name" is required. Tokens are kept
 *  as SHA-256 only, like user tokens.
 */
#ifndef ORR_HUBSERVICES_H
#define ORR_HUBSERVICES_H

#include "orr_roles.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct orr_hubservices_t orr_hubservices_t;

typedef struct {
    const char *name;
    bool admin;
    const char *url;                  /* "" when none */
    const char *oauth_client_id;      /* "service-<name>" unless configured */
    const char *oauth_redirect_uri;   /* "" when the service takes no OAuth logins */
    bool oauth_no_confirm;
    const char *token_hash;           /* SHA-256 hex of api_token, or "" */
} orr_hubservice_t;

/* NULL and err set on invalid JSON, a missing or duplicate name, a token shorter than 8. */
orr_hubservices_t *orr_hubservices_new (const char *config_value, char *err, size_t errlen);
void orr_hubservices_destroy (orr_hubservices_t **self_p);

size_t orr_hubservices_count (const orr_hubservices_t *self);
const orr_hubservice_t *orr_hubservices_at (const orr_hubservices_t *self, size_t i);
const orr_hubservice_t *orr_hubservices_find (const orr_hubservices_t *self, const char *name);
/* The service whose api_token hashes to `token_hash` (constant-time compare), or NULL. */
const orr_hubservice_t *orr_hubservices_by_token_hash (const orr_hubservices_t *self, const char *token_hash);
/* The service whose OAuth client id is `client_id`, or NULL. */
const orr_hubservice_t *orr_hubservices_by_client (const orr_hubservices_t *self, const char *client_id);

/* The Service model of §3 (new reference). */
json_t *orr_hubservices_model (const orr_hubservices_t *self, const orr_hubservice_t *svc, const orr_roles_t *roles);

#endif
