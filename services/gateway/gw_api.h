/*  gw_api: the handler signature, the routing table's interface, and the checks every
 *  handler shares (credentials, scopes, JSON bodies).
 */
#ifndef GW_API_H
#define GW_API_H

#include "gw.h"
#include "gw_models.h"

#include <jansson.h>

#define GW_MAX_PARAMS 4

typedef enum MHD_Result (gw_handler_fn) (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params);

/* --- gw_router.c: pure path matching, no I/O (fuzzed on its own) --- */
typedef struct {
    const char *method;       /* "GET" also answers HEAD */
    const char *pattern;      /* "/hub/api/users/{}/tokens/{}": {} = one non-empty segment */
    gw_handler_fn *fn;
} gw_route_t;
/* Index of the route for (method, path), copying the {} segments into params (caller frees
 * each); -1 when no pattern matches the path, -2 when one matches but not for this method. */
int gw_router_match (const gw_route_t *routes, size_t nroutes, const char *method, const char *path,
                     char **params);

/* --- checks (gw_routes.c) --- */
/* True when the caller holds one of `any_of` for `t` (NULL = no target). Otherwise queues
 * the right error (403 no credentials or scope, 404 filter miss) into *reply. */
bool gw_allowed (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *const *any_of,
                 const orr_scope_target_t *t, enum MHD_Result *reply);
/* The body as JSON: NULL with *reply set for bad JSON (400); NULL with *reply untouched and
 * *empty true for an empty body. */
json_t *gw_body_json (const gw_request_t *req, bool *empty, enum MHD_Result *reply);
/* True when every key of obj is in `allowed` (NULL-terminated); else 400 "Invalid JSON keys". */
bool gw_keys_ok (const gw_request_t *req, const json_t *obj, const char *const *allowed, enum MHD_Result *reply);
/* A list of strings from a JSON value: 400 on anything else. Caller frees the array only. */
const char **gw_string_list (const gw_request_t *req, const json_t *v, const char *what, size_t *n,
                             enum MHD_Result *reply);

/* --- pages (gw_pages.c), shared by every file that serves HTML --- */
/* s HTML-escaped into a new string. */
char *gw_html (const char *s);
/* A page: title (escaped here) and body (HTML, trusted), extra headers as gw_reply_with. */
enum MHD_Result gw_page (const gw_request_t *req, unsigned status, const char *title, const char *body,
                         const char *const *headers);
/* 302 to location, setting the given Set-Cookie values (NULL-terminated, may be NULL). */
enum MHD_Result gw_redirect (const gw_request_t *req, const char *location, const char *const *cookies);
/* A redirect with another status (303). */
enum MHD_Result gw_redirect_status (const gw_request_t *req, unsigned status, const char *location);
/* Is next a path on this site ("/...", never "//host" or "/\\host", no line breaks)? */
bool gw_local_path (const char *next);
/* 302 to the login page, coming back to this page (path and query) afterwards. */
enum MHD_Result gw_to_login (gw_t *gw, const gw_request_t *req);

/* --- servers (gw_api_servers.c), shared with the pages --- */
/* Asks the spawner to start a server with user_options_json ("" = the previous ones).
 * Returns the bus status (200 ok) with the server's state then into state (>= 16 bytes),
 * or the failure's message into msg. */
int gw_spawn (gw_t *gw, const char *user, const char *server, const char *options_json, const char *by, char *state,
              size_t statelen, char *msg, size_t msglen);

/* --- handlers --- */
gw_handler_fn gw_api_root, gw_api_info, gw_api_whoami, gw_api_services, gw_api_service, gw_api_shutdown,
    gw_api_metrics, gw_api_authorizations_token, gw_api_gone, gw_api_health;
gw_handler_fn gw_api_users_list, gw_api_users_create, gw_api_user_get, gw_api_user_create, gw_api_user_patch,
    gw_api_user_delete, gw_api_admin_access;
gw_handler_fn gw_api_tokens_list, gw_api_tokens_create, gw_api_token_get, gw_api_token_delete;
gw_handler_fn gw_api_groups_list, gw_api_groups_create, gw_api_group_get, gw_api_group_create, gw_api_group_delete,
    gw_api_group_users_add, gw_api_group_users_remove;
gw_handler_fn gw_api_nodes_list, gw_api_node_get, gw_api_node_cordon, gw_api_node_uncordon;
gw_handler_fn gw_api_server_start, gw_api_named_server_start, gw_api_server_stop, gw_api_named_server_stop,
    gw_api_server_progress, gw_api_named_server_progress, gw_api_server_logs, gw_api_named_server_logs,
    gw_api_user_activity;
gw_handler_fn gw_api_proxy_get, gw_api_proxy_post, gw_api_proxy_patch;
gw_handler_fn gw_page_spawn, gw_page_spawn_user, gw_page_spawn_named, gw_page_spawn_pending,
    gw_page_spawn_pending_named, gw_page_user_prefix, gw_page_hub_user;
gw_handler_fn gw_page_logo, gw_page_login, gw_page_login_post, gw_page_logout, gw_page_home, gw_page_root, gw_page_hub_root,
    gw_page_change_password, gw_page_change_password_post;
gw_handler_fn gw_oauth_authorize, gw_oauth_authorize_post, gw_oauth_token;

/* The route table (gw_routes.c), exposed for the fuzz target. */
extern const gw_route_t gw_routes[];
extern const size_t gw_nroutes;

#endif
