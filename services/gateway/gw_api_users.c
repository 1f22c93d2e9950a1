/*  gw_api_users: /hub/api/users and /hub/api/users/{name} (jupyterhub-api.md §4).
 *
 *  Reads come from Redis (a page of users costs three pipelined round trips: the users,
 *  their server names and activity, their server records); changes go to the auth
 *  service, and the reply is the model read back afterwards. The state filter reads the
 *  spawner's index of active servers (gw_servers_active_users), not every user's servers.
 */
#include "gw_api.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool
s_contains_ci (const char *hay, const char *needle)
{
    size_t n = strlen (needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp (p, needle, n) == 0)
            return true;
    return n == 0;
}

static bool
s_include_stopped (const gw_request_t *req)
{
    /* any value but 0 or false, an empty one and none ("?include_stopped_servers") included */
    const char *v = gw_arg (req, "include_stopped_servers");
    if (!v)
        return gw_arg_present (req, "include_stopped_servers");
    return strcmp (v, "0") != 0 && strcasecmp (v, "false") != 0;
}

/* Replies with the user's model as the caller sees it (status 200 or 201). */
static enum MHD_Result
s_reply_user (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *name, unsigned status,
              bool with_auth_state)
{
    orr_user_rec_t rec;
    int found = orr_user_load (gw_store (gw), name, &rec);
    enum MHD_Result rc;
    if (found < 0)
        rc = gw_reply_error (req, 503, "User store unavailable; try again");
    else if (found == 0)
        rc = gw_reply_errorf (req, 404, "No such user: %s", name);
    else {
        bool unavailable;
        json_t *m = gw_user_model_load (gw, &rec, caller->id.scopes, s_include_stopped (req), with_auth_state,
                                        &unavailable);
        if (unavailable)
            rc = gw_reply_error (req, 503, "Server store unavailable; try again");
        else
            rc = m ? gw_reply_jsonv (req, status, m) : gw_reply_json (req, status, "{}");
    }
    orr_user_rec_clear (&rec);
    return rc;
}

enum MHD_Result
gw_api_users_list (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "list:users", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    /* a filtered list:users may only be filtered by user or group */
    for (size_t i = 0; i < orr_scopes_size (caller->id.scopes); i++) {
        const char *s = orr_scopes_at (caller->id.scopes, i);
        if (strncmp (s, "list:users!", 11) == 0 && strncmp (s + 11, "user=", 5) != 0 && strncmp (s + 11, "group=", 6) != 0)
            return gw_reply_error (req, 403, "list:users may only be filtered by user or group");
    }
    const char *state = gw_arg (req, "state");
    if (state && strcmp (state, "active") != 0 && strcmp (state, "ready") != 0 && strcmp (state, "inactive") != 0)
        return gw_reply_errorf (req, 400, "Unrecognized state filter: %.64s; must be one of active, ready, inactive",
                                state);
    gw_page_t page;
    char msg[256];
    if (gw_page_parse (gw, req, &page, msg, sizeof msg) != 0)
        return gw_reply_error (req, 400, msg);
    const char *name_filter = gw_arg (req, "name_filter");
    char *idx = orr_key_index (ORR_INDEX_USERS);
    redisReply *all = orr_store_command (gw_store (gw), "ZRANGE %s 0 -1", idx);
    free (idx);
    if (!all || all->type != REDIS_REPLY_ARRAY) {
        if (all)
            freeReplyObject (all);
        return gw_reply_error (req, 503, "User store unavailable; try again");
    }
    /* state: active = a ready or pending server, ready = a ready one, inactive = neither */
    zhashx_t *active = NULL, *ready = NULL;
    if (state && gw_servers_active_users (gw, &active, &ready) != 0) {
        freeReplyObject (all);
        return gw_reply_error (req, 503, "Server store unavailable; try again");
    }
    const char **names = orr_zalloc ((all->elements + 1) * sizeof (char *));
    size_t n = 0;
    for (size_t i = 0; i < all->elements; i++) {
        const char *name = all->element[i]->str;
        orr_scope_target_t t = { .user = name };
        if (name_filter && !s_contains_ci (name, name_filter))
            continue;
        if (state && strcmp (state, "active") == 0 && !zhashx_lookup (active, name))
            continue;
        if (state && strcmp (state, "ready") == 0 && !zhashx_lookup (ready, name))
            continue;
        if (state && strcmp (state, "inactive") == 0 && zhashx_lookup (active, name))
            continue;
        if (!orr_scopes_allows (caller->id.scopes, "list:users", &t, gw_is_member, gw))
            continue;
        names[n++] = name;
    }
    zhashx_destroy (&active);
    zhashx_destroy (&ready);
    long total = (long) n;
    size_t first = (size_t) (page.offset < total ? page.offset : total);
    size_t count = n - first < (size_t) page.limit ? n - first : (size_t) page.limit;
    orr_user_rec_t *recs = orr_zalloc ((count + 1) * sizeof *recs);
    gw_servers_t *servers = orr_zalloc ((count + 1) * sizeof *servers);
    json_t *items = json_array ();
    if (count && (orr_users_load_many (gw_store (gw), names + first, count, recs) != 0
                  || gw_servers_load_many (gw, names + first, count, servers) != 0)) {
        json_decref (items);
        items = NULL;
    }
    bool stopped = s_include_stopped (req);
    for (size_t i = 0; i < count; i++) {
        if (items && recs[i].name) {
            json_t *m = gw_user_model (gw, &recs[i], &servers[i], caller->id.scopes, stopped, false);
            if (m)
                json_array_append_new (items, m);
        }
        orr_user_rec_clear (&recs[i]);
        gw_servers_clear (&servers[i]);
    }
    free (recs);
    free (servers);
    free (names);
    freeReplyObject (all);
    if (!items)
        return gw_reply_error (req, 503, "User store unavailable; try again");
    return gw_reply_jsonv (req, 200, gw_page_wrap (gw, req, &page, items, total));
}

/* Sends users.create; returns the HTTP status and fills created names (NameList). */
static int
s_create (gw_t *gw, const char *const *names, size_t n, bool admin, Orrery__NameList **created, char *msg, size_t len)
{
    Orrery__UsersCreate m = ORRERY__USERS_CREATE__INIT;
    m.names = (char **) names;
    m.n_names = n;
    m.admin = admin;
    return gw_call_auth (gw, "users.create", &m.base, &orrery__name_list__descriptor, (ProtobufCMessage **) created,
                         msg, len);
}

enum MHD_Result
gw_api_users_create (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "admin:users", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty ? gw_reply_error (req, 400, "Must specify at least one user to create") : rc;
    static const char *const keys[] = { "usernames", "admin", NULL };
    size_t n = 0;
    const char **names = NULL;
    json_t *admin = json_object_get (body, "admin");
    if (!json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (!gw_keys_ok (req, body, keys, &rc))
        ;
    else if (admin && !json_is_boolean (admin))
        rc = gw_reply_error (req, 400, "admin must be true or false");
    else if ((names = gw_string_list (req, json_object_get (body, "usernames"), "usernames", &n, &rc)) != NULL) {
        Orrery__NameList *created = NULL;
        char msg[256];
        int st = s_create (gw, names, n, json_is_true (admin), &created, msg, sizeof msg);
        if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else {
            json_t *out = json_array ();
            for (size_t i = 0; i < created->n_names; i++) {
                orr_user_rec_t rec;
                bool unavailable;
                if (orr_user_load (gw_store (gw), created->names[i], &rec) == 1) {
                    json_t *m = gw_user_model_load (gw, &rec, caller->id.scopes, false, false, &unavailable);
                    if (m)
                        json_array_append_new (out, m);
                }
                orr_user_rec_clear (&rec);
            }
            rc = gw_reply_jsonv (req, 201, out);
            orrery__name_list__free_unpacked (created, NULL);
        }
    }
    free (names);
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_user_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:users", "read:users:name", "read:servers", "read:users:groups",
                                        "read:users:activity", "read:roles:users", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    return s_reply_user (gw, req, caller, params[0], 200, true);
}

enum MHD_Result
gw_api_user_create (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "admin:users", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    static const char *const keys[] = { "admin", NULL };
    json_t *admin = body ? json_object_get (body, "admin") : NULL;
    if (body && !json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (body && !gw_keys_ok (req, body, keys, &rc))
        ;
    else if (admin && !json_is_boolean (admin))
        rc = gw_reply_error (req, 400, "admin must be true or false");
    else {
        const char *names[] = { params[0] };
        Orrery__NameList *created = NULL;
        char msg[256];
        int st = s_create (gw, names, 1, json_is_true (admin), &created, msg, sizeof msg);
        if (st == 409)
            rc = gw_reply_errorf (req, 409, "User %s already exists", params[0]);
        else if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else
            rc = s_reply_user (gw, req, caller, params[0], 201, false);
        if (created)
            orrery__name_list__free_unpacked (created, NULL);
    }
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_user_patch (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "admin:users", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty ? gw_reply_error (req, 400, "Invalid JSON in body of request") : rc;
    static const char *const keys[] = { "name", "admin", "auth_state", "password", NULL };
    json_t *name = json_object_get (body, "name"), *admin = json_object_get (body, "admin");
    json_t *state = json_object_get (body, "auth_state"), *password = json_object_get (body, "password");
    if (!json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (!gw_keys_ok (req, body, keys, &rc))
        ;
    else if ((name && !json_is_string (name)) || (admin && !json_is_boolean (admin))
             || (password && !json_is_string (password)) || (state && !json_is_object (state) && !json_is_null (state)))
        rc = gw_reply_error (req, 400, "name and password must be strings, admin a boolean, auth_state an object");
    else if (state && !orr_scopes_allows (caller->id.scopes, "admin:auth_state", &t, gw_is_member, gw))
        rc = gw_reply_error (req, 403, "Action is not authorized with current scopes; requires any of [admin:auth_state]");
    else {
        Orrery__UserUpdate m = ORRERY__USER_UPDATE__INIT;
        m.name = params[0];
        char *state_text = state ? json_dumps (state, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (name) {
            m.has_new_name = true;
            m.new_name = (char *) json_string_value (name);
        }
        if (admin) {
            m.has_admin = true;
            m.admin = json_is_true (admin);
        }
        if (state) {
            m.has_auth_state_json = true;
            m.auth_state_json = state_text;
        }
        if (password) {
            m.has_password = true;
            m.password = (char *) json_string_value (password);
        }
        char msg[256];
        int st = gw_call_auth (gw, "user.update", &m.base, NULL, NULL, msg, sizeof msg);
        if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else
            rc = s_reply_user (gw, req, caller, name ? json_string_value (name) : params[0], 200, true);
        free (state_text);
    }
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_user_delete (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "delete:users", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    if (strcmp (caller->id.kind, "user") == 0 && strcmp (caller->id.name, params[0]) == 0)
        return gw_reply_error (req, 400, "Cannot delete yourself!");
    Orrery__UserDelete m = ORRERY__USER_DELETE__INIT;
    m.name = params[0];
    char msg[256];
    int st = gw_call_auth (gw, "user.delete", &m.base, NULL, NULL, msg, sizeof msg);
    if (st != 200)
        return gw_reply_error (req, (unsigned) st, msg);
    return gw_reply (req, 204, NULL, "", 0);
}

enum MHD_Result
gw_api_admin_access (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "servers", NULL };
    orr_scope_target_t t = { .user = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    return gw_reply (req, 200, NULL, "", 0);   /* deprecated no-op, as in 3.0 */
}
