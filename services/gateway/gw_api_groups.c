/*  gw_api_groups: /hub/api/groups and /hub/api/groups/{name}[/users]
 *  (jupyterhub-api.md §4). Groups are listed in creation (id) order.
 */
#include "gw_api.h"
#include "orr_keys.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <stdlib.h>
#include <string.h>

static enum MHD_Result
s_reply_group (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, const char *name, unsigned status)
{
    char *gk = orr_key_group (name);
    redisReply *r = orr_store_command (gw_store (gw), "EXISTS %s", gk);
    free (gk);
    if (!r)
        return gw_reply_error (req, 503, "Group store unavailable; try again");
    bool exists = r->integer == 1;
    freeReplyObject (r);
    if (!exists)
        return gw_reply_errorf (req, 404, "No such group: %s", name);
    json_t *m = gw_group_model (gw, name, caller->id.scopes);
    return m ? gw_reply_jsonv (req, status, m) : gw_reply_json (req, status, "{}");
}

enum MHD_Result
gw_api_groups_list (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "list:groups", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    gw_page_t page;
    char msg[256];
    if (gw_page_parse (gw, req, &page, msg, sizeof msg) != 0)
        return gw_reply_error (req, 400, msg);
    char *idx = orr_key_index (ORR_INDEX_GROUPS);
    redisReply *all = orr_store_command (gw_store (gw), "ZRANGE %s 0 -1", idx);
    free (idx);
    if (!all || all->type != REDIS_REPLY_ARRAY) {
        if (all)
            freeReplyObject (all);
        return gw_reply_error (req, 503, "Group store unavailable; try again");
    }
    json_t *items = json_array ();
    long total = 0;
    for (size_t i = 0; i < all->elements; i++) {
        orr_scope_target_t t = { .group = all->element[i]->str };
        if (!orr_scopes_allows (caller->id.scopes, "list:groups", &t, gw_is_member, gw))
            continue;
        if (total >= page.offset && total < page.offset + page.limit) {
            json_t *m = gw_group_model (gw, all->element[i]->str, caller->id.scopes);
            if (m)
                json_array_append_new (items, m);
        }
        total++;
    }
    freeReplyObject (all);
    return gw_reply_jsonv (req, 200, gw_page_wrap (gw, req, &page, items, total));
}

/* groups.create over the bus. */
static int
s_create (gw_t *gw, const char **names, size_t n, const char **users, size_t nu, Orrery__NameList **out, char *msg,
          size_t len)
{
    Orrery__GroupsCreate m = ORRERY__GROUPS_CREATE__INIT;
    m.names = (char **) names;
    m.n_names = n;
    m.users = (char **) users;
    m.n_users = nu;
    return gw_call_auth (gw, "groups.create", &m.base, &orrery__name_list__descriptor, (ProtobufCMessage **) out, msg,
                         len);
}

enum MHD_Result
gw_api_groups_create (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "admin:groups", NULL };
    if (!gw_allowed (gw, req, caller, need, NULL, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty ? gw_reply_error (req, 400, "Must specify at least one group to create") : rc;
    static const char *const keys[] = { "groups", "users", NULL };
    size_t n = 0, nu = 0;
    const char **names = NULL, **users = NULL;
    json_t *ju = json_is_object (body) ? json_object_get (body, "users") : NULL;
    if (!json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (!gw_keys_ok (req, body, keys, &rc))
        ;
    else if (!(names = gw_string_list (req, json_object_get (body, "groups"), "groups", &n, &rc)))
        ;
    else if (ju && !(users = gw_string_list (req, ju, "users", &nu, &rc)))
        ;
    else {
        Orrery__NameList *created = NULL;
        char msg[256];
        int st = s_create (gw, names, n, users, nu, &created, msg, sizeof msg);
        if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else {
            json_t *out = json_array ();
            for (size_t i = 0; i < created->n_names; i++) {
                json_t *m = gw_group_model (gw, created->names[i], caller->id.scopes);
                if (m)
                    json_array_append_new (out, m);
            }
            rc = gw_reply_jsonv (req, 201, out);
            orrery__name_list__free_unpacked (created, NULL);
        }
    }
    free (names);
    free (users);
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_group_get (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "read:groups", "read:groups:name", "read:roles:groups", NULL };
    orr_scope_target_t t = { .group = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    return s_reply_group (gw, req, caller, params[0], 200);
}

enum MHD_Result
gw_api_group_create (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "admin:groups", NULL };
    orr_scope_target_t t = { .group = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body && !empty)
        return rc;
    static const char *const keys[] = { "users", NULL };
    size_t nu = 0;
    const char **users = NULL;
    json_t *ju = json_is_object (body) ? json_object_get (body, "users") : NULL;
    if (body && !json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (body && !gw_keys_ok (req, body, keys, &rc))
        ;
    else if (ju && !(users = gw_string_list (req, ju, "users", &nu, &rc)))
        ;
    else {
        const char *names[] = { params[0] };
        Orrery__NameList *created = NULL;
        char msg[256];
        int st = s_create (gw, names, 1, users, nu, &created, msg, sizeof msg);
        if (st == 409)
            rc = gw_reply_errorf (req, 409, "Group %s already exists", params[0]);
        else if (st != 200)
            rc = gw_reply_error (req, (unsigned) st, msg);
        else
            rc = s_reply_group (gw, req, caller, params[0], 201);
        if (created)
            orrery__name_list__free_unpacked (created, NULL);
    }
    free (users);
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_group_delete (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    enum MHD_Result rc;
    static const char *const need[] = { "delete:groups", NULL };
    orr_scope_target_t t = { .group = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    Orrery__GroupDelete m = ORRERY__GROUP_DELETE__INIT;
    m.name = params[0];
    char msg[256];
    int st = gw_call_auth (gw, "group.delete", &m.base, NULL, NULL, msg, sizeof msg);
    if (st != 200)
        return gw_reply_error (req, (unsigned) st, msg);
    return gw_reply (req, 204, NULL, "", 0);
}

static enum MHD_Result
s_members (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params, bool remove)
{
    enum MHD_Result rc;
    static const char *const need[] = { "groups", NULL };
    orr_scope_target_t t = { .group = params[0] };
    if (!gw_allowed (gw, req, caller, need, &t, &rc))
        return rc;
    bool empty;
    json_t *body = gw_body_json (req, &empty, &rc);
    if (!body)
        return empty ? gw_reply_error (req, 400, "Must specify users") : rc;
    static const char *const keys[] = { "users", NULL };
    size_t nu = 0;
    const char **users = NULL;
    if (!json_is_object (body))
        rc = gw_reply_error (req, 400, "Body must be a JSON object");
    else if (!gw_keys_ok (req, body, keys, &rc))
        ;
    else if ((users = gw_string_list (req, json_object_get (body, "users"), "users", &nu, &rc)) != NULL) {
        Orrery__GroupMembers m = ORRERY__GROUP_MEMBERS__INIT;
        m.group = params[0];
        m.users = (char **) users;
        m.n_users = nu;
        m.remove = remove;
        char msg[256];
        int st = gw_call_auth (gw, "group.members", &m.base, NULL, NULL, msg, sizeof msg);
        rc = st != 200 ? gw_reply_error (req, (unsigned) st, msg) : s_reply_group (gw, req, caller, params[0], 200);
    }
    free (users);
    json_decref (body);
    return rc;
}

enum MHD_Result
gw_api_group_users_add (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_members (gw, req, caller, params, false);
}

enum MHD_Result
gw_api_group_users_remove (gw_t *gw, const gw_request_t *req, gw_caller_t *caller, char **params)
{
    return s_members (gw, req, caller, params, true);
}
