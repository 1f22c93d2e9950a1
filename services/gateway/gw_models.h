/*  gw_models: the JSON models of jupyterhub-api.md §3 with their field-visibility rules,
 *  Orrery's node model (docs/api.md), and pagination (§2).
 */
#ifndef GW_MODELS_H
#define GW_MODELS_H

#include "gw.h"
#include "orrery/scheduler.pb-c.h"

#include <jansson.h>

/* The User model as `scopes` may see it, or NULL when they see nothing of it.
 * auth_state is included only when `with_auth_state` and admin:auth_state allow. */
json_t *gw_user_model (gw_t *gw, const orr_user_rec_t *rec, const orr_scopes_t *scopes, bool include_stopped,
                       bool with_auth_state);
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
