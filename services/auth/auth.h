/*  auth: the state shared by the auth service's files, and the helpers they all use.
 *
 *  One auth_t per process, built by main.c's setup. Handlers run on the service loop's
 *  thread, one at a time, so nothing here is locked; the Redis store is the thread's own.
 */
#ifndef AUTH_H
#define AUTH_H

#include "auth_ldap.h"
#include "orr_hubservices.h"
#include "orr_identity.h"
#include "orr_roles.h"
#include "orr_service.h"
#include "orr_store.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

typedef enum { AUTH_BUILTIN, AUTH_LDAP, AUTH_DEMO } auth_kind_t;

typedef struct {
    orr_service_t *svc;
    char *redis_url;
    orr_roles_t *roles;
    orr_hubservices_t *services;
    auth_kind_t kind;
    auth_ldap_t *ldap;
    char *demo_password;
    char **admin_users;               /* ADMIN_USERS: made admins at start */
    long session_ttl_s;
    long password_min_length;
    long throttle_free_failures;      /* failures of one user name allowed before delays start */
    long throttle_free_failures_addr; /* the same for one client address */
    long throttle_max_delay_s;
    long throttle_window_s;
    long oauth_token_expires_in_s;
    long oauth_code_ttl_s;
} auth_t;

/* The calling thread's store (never NULL for a valid URL). */
orr_store_t *auth_store (auth_t *self);

/* Publishes an IdentityEvent on `topic` (user.created, token.revoked, ...). */
void auth_publish (auth_t *self, const char *topic, const char *kind, const char *name, const char *action,
                   const char *owner);

/* Packs a reply message into result->body. */
void auth_reply (orr_result_t *result, const ProtobufCMessage *msg);

/* A user name is acceptable: 1..255 bytes, no '/', no control bytes, no surrounding
 * space. err says why not. */
bool auth_username_ok (const char *name, char *err, size_t errlen);

/* Registers a method behind the trust check and the repeat memory (main.c). */
void auth_method (auth_t *self, const char *name, orr_method_fn *fn);

/* Unpacks the request body as message type T (a protobuf-c name such as orrery__login),
 * or fails the result with 400 and returns from the handler. */
#define AUTH_UNPACK(var, T, call, result)                                                   \
    var = T##__unpack (NULL, (call)->len, (call)->body);                                    \
    if (!var) {                                                                             \
        orr_result_fail (result, 400, "%s: body is not a valid message", (call)->method);   \
        return;                                                                             \
    }

/* A write script that runs at most once per request: it takes one extra key, last in
 * KEYS (from auth_done_key), where it stores its result atomically with its writes; a
 * repeat of the request (a client retry after a replica died mid-request) gets that
 * stored result and changes nothing. A result of 'retry' (see auth_users.c) is not
 * stored. */
orr_script_t *auth_script_once (const char *name, const char *lua);
/* That extra key for this call and script: orr:{req:<request id>:<script>}:done, or a
 * fresh key when the call has no request id. Caller frees. */
char *auth_done_key (const orr_call_t *call, const char *script);

/* --- registration of each file's methods --- */
void auth_users_register (auth_t *self);
void auth_tokens_register (auth_t *self);
void auth_login_register (auth_t *self);
void auth_oauth_register (auth_t *self);

/* --- used across files --- */
/* Creates `name` if absent (admin as given; an existing user is made admin when `admin`);
 * 0, or -1 on a store failure. */
int auth_users_ensure (auth_t *self, const char *name, bool admin);
/* Deletes every token of `owner` for which keep(token hash) is false... see auth_tokens.c */
int auth_tokens_revoke_where (auth_t *self, const char *owner, const char *field, const char *value);
/* Creates a token record and returns the token text (caller frees), or NULL. */
char *auth_tokens_issue (auth_t *self, const orr_call_t *call, const char *owner, const char *scopes_json,
                         const char *note, int64_t expires_in_s, const char *oauth_client, const char *session_id,
                         char *id_out, size_t id_len);
/* Password checking against the configured authenticator: 200 ok, 403 refused, 503
 * unavailable; message set when not 200. `name_out` gets the normalised user name. */
int auth_login_check (auth_t *self, const char *username, const char *password, char *name_out, size_t name_len,
                      char *message, size_t msglen);
/* Built-in passwords (auth_password.c). */
char *auth_password_hash (const char *password);          /* caller frees; NULL on failure */
bool auth_password_verify (const char *password, const char *hash);

#endif
