/*  gw_models: the JSON models of jupyterhub-api.md §3 with their field-visibility rules,
 *  Orrery's node model (docs/api.md), and pagination (§2).
 */
#ifndef GW_MODELS_H
#define GW_MODELS_H

#include "gw.h"
#include "gw_servers.h"
#include "orrery/scheduler.pb-c.h"

#include <jansson.h>

/* The User model as `scopes` may see it, or NULL when they see nothing of it.
 * `servers`: the user's servers (gw_servers_load_many; NULL = none). `servers` lists the
 * ready and pending ones (all with a record when include_stopped) that read:servers
 * allows one by one. auth_state is included only when `with_auth_state` and
 * admin:auth_state allow. */
json_t *gw_user_model (gw_t *gw, const orr_user_rec_t *rec, const gw_servers_t *servers, const orr_scopes_t *scopes,
                       bool include_stopped, bool with_auth_state);
/* gw_user_model after reading the user's servers (two round trips); NULL also when Redis
 * fails (then *unavailable is set). */
json_t *gw_user_model_load (gw_t *gw, const orr_user_rec_t *rec, const orr_scopes_t *scopes, bool include_stopped,
                            bool with_auth_state, bool *unavailable);
/* The Server model (§3) of `user`'s server s; `state` ({"pid": N} or {}) only when
 * with_state (the caller holds admin:server_state for it). */
json_t *gw_server_model (gw_t *gw, const char *user, const gw_server_t *s, bool with_state);
/* The Group model as `scopes` may see it (NULL = nothing). Reads the members. */
json_t *gw_group_model (gw_t *gw, const char *group, const orr_scopes_t *scopes);
/* The Token model of the token stored under `hash` (NULL when gone). */
json_t *gw_token_model (gw_t *gw, const char *hash);

/* The Node model (an Orrery extension, docs/api.md) of the scheduler's NodeInfo. Every
 * field is shown: the node endpoints need admin:nodes, which has no filters. */
json_t *gw_node_model (const Orrery__NodeInfo *node);

/* Pagination arguments. Returns 0, or 400 with message set. */
typedef struct {
    long offset;
    long limit;
    bool paginated;           /* the client asked for the pagination media type */
} gw_page_t;
int gw_page_parse (gw_t *gw, const gw_request_t *req, gw_page_t *page, char *message, size_t msglen);
/* Wraps `items` (stolen) for the reply: a bare list, or {items, _pagination}. */
json_t *gw_page_wrap (gw_t *gw, const gw_request_t *req, const gw_page_t *page, json_t *items, long total);

#endif
