/*  orr_oauth: OAuth2 clients as the gateway and the auth service read them
 *  (jupyterhub-api.md §7).
 *
 *  Clients of single-user servers live in Redis (orr:{oc:C}:oauth_client, written by the
 *  auth service when the spawner asks); clients of configured services come from
 *  ORRERY_SERVICES. Both look the same to callers.
 */
#ifndef ORR_OAUTH_H
#define ORR_OAUTH_H

#include "orr_hubservices.h"
#include "orr_store.h"

#include <jansson.h>

typedef struct {
    char *client_id;
    char *secret_hash;        /* SHA-256 hex of the client secret */
    char *redirect_uri;
    char *description;        /* shown on the confirmation page and as a token's oauth_client */
    char *owner;              /* the user whose server this is, "" for services */
    json_t *access_scopes;    /* list: what reaching the client needs */
    json_t *allowed_scopes;   /* list: what the client may ask for beyond identify */
    bool no_confirm;
} orr_oauth_client_t;

/* 1 found, 0 unknown, -1 Redis unavailable. */
int orr_oauth_client_load (orr_store_t *store, const orr_hubservices_t *services, const char *client_id,
                           orr_oauth_client_t *out);
void orr_oauth_client_clear (orr_oauth_client_t *client);

#endif
