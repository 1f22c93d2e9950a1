/*  orr_identity: the read side of identity -- users, groups and credentials as they are in
 *  Redis -- shared by the gateway (which resolves every request's credential) and the auth
 *  service (which checks what a new token may hold). Writes belong to the auth service.
 *
 *  Redis layout (docs/keyspace.md):
 *    orr:{u:U}:user     hash  name id admin created last_activity [password] [auth_state]
 *    orr:{u:U}:groups   set   group names
 *    orr:{t:H}:token    hash  id kind owner scopes(JSON) created expires_at last_activity
 *                             note session_id oauth_client
 *    orr:{s:S}:session  hash  user created (with a TTL)
 *  Times are integer microseconds since the epoch; "" or absent = unknown.
 */
#ifndef ORR_IDENTITY_H
#define ORR_IDENTITY_H

#include "orr_hubservices.h"
#include "orr_roles.h"
#include "orr_scopes.h"
#include "orr_store.h"

#include <stdbool.h>
#include <stdint.h>

/* Settings read by every process that decides identity (auth and gateway): one
 * declaration here, placed in each program's settings table. */
#define ORR_IDENTITY_SETTINGS                                                                                    \
    { "LOAD_ROLES", NULL, "roles like JupyterHub's load_roles: a JSON list, or the path of a file holding one" }, \
    { "SERVICES", NULL,                                                                                          \
      "externally managed services: a JSON list of {name, api_token, admin, url, oauth_client_id, "             \
      "oauth_redirect_uri, oauth_no_confirm}, or the path of a file holding one" },                              \
    { "COOKIE_SECRET", NULL, "key that signs login cookies (default: a random key kept in Redis)" }

typedef struct {
    char *name;
    int64_t id;
    bool admin;
    int64_t created_us;
    int64_t last_activity_us;   /* 0 = never */
    char **groups;              /* NULL-terminated, sorted */
    char *auth_state;           /* JSON text or NULL */
    char *password_hash;        /* crypt(3) string or NULL */
} orr_user_rec_t;

/* 1 found (rec filled), 0 no such user, -1 Redis unavailable. */
int orr_user_load (orr_store_t *store, const char *name, orr_user_rec_t *rec);
/* Loads n users in one pipelined round trip; recs[i].name is NULL for a missing user.
 * 0, or -1 when Redis is unavailable (then nothing is filled). */
int orr_users_load_many (orr_store_t *store, const char *const *names, size_t n, orr_user_rec_t *recs);
void orr_user_rec_clear (orr_user_rec_t *rec);

/* The scopes the user holds now (roles directly and through groups). */
orr_scopes_t *orr_user_scopes (const orr_roles_t *roles, const orr_user_rec_t *rec);

/* The membership callback of orr_scopes for a store (ctx = orr_store_t *). */
bool orr_identity_is_member (void *store, const char *user, const char *group);

/* Who a request is. */
typedef struct {
    char kind[8];             /* "user" or "service" */
    char *name;
    bool admin;
    char **groups;            /* users only; NULL-terminated */
    orr_scopes_t *scopes;     /* effective scopes of this credential */
    char *token_id;           /* "a<N>" when a stored token was used, else NULL */
    char *token_hash;
    char *session_id;         /* the login session behind the credential, or NULL */
    char *oauth_client;       /* for OAuth tokens */
    int64_t expires_us;       /* 0 = never */
} orr_identity_t;

typedef enum {
    ORR_IDENTITY_OK = 0,
    ORR_IDENTITY_INVALID = 1,       /* unknown, expired, or owner gone: treat as anonymous */
    ORR_IDENTITY_UNAVAILABLE = -1,  /* Redis unavailable: answer 503 */
} orr_identity_status_t;

/* Resolves an API token (service tokens from configuration first, then stored tokens). */
orr_identity_status_t orr_identity_from_token (orr_store_t *store, const orr_roles_t *roles,
                                               const orr_hubservices_t *services, const char *token,
                                               orr_identity_t *out);
/* Resolves a login session id: the user's full scopes. */
orr_identity_status_t orr_identity_from_session (orr_store_t *store, const orr_roles_t *roles, const char *session_id,
                                                 orr_identity_t *out);
void orr_identity_clear (orr_identity_t *id);
/* A deep copy (for caches). */
void orr_identity_copy (orr_identity_t *dst, const orr_identity_t *src);

/* The effective scopes of a stored token: its scopes (inherit = the owner's), plus the
 * identify scopes, intersected with what the owner holds now (§8). `token_scopes` is the
 * stored JSON list. */
orr_scopes_t *orr_token_effective_scopes (orr_store_t *store, const orr_roles_t *roles, const char *owner_kind,
                                          const char *owner, const orr_scopes_t *owner_scopes,
                                          const json_t *token_scopes);

#endif
