/*  gw_models: building §3's models from Redis records.
 *
 *  Visibility is decided per object: for each read scope that applies to this object
 *  (held unfiltered, or with a filter matching it), the fields it unlocks are added; an
 *  object no scope applies to is left out. This is JupyterHub 3.0's access_map, written
 *  as one table per model.
 */
#include "gw_models.h"
#include "orr_keys.h"
#include "orr_oauth.h"
#include "orr_time.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *scope;
    const char *fields[10];
} access_row_t;

static const access_row_t s_user_access[] = {
    { "read:users", { "kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity", NULL } },
    { "read:users:name", { "kind", "name", "admin", NULL } },
    { "read:users:groups", { "kind", "name", "groups", NULL } },
    { "read:users:activity", { "kind", "name", "last_activity", NULL } },
    { "read:servers", { "kind", "name", "servers", NULL } },
    { "read:roles:users", { "kind", "name", "roles", "admin", NULL } },
    { "admin:auth_state", { "kind", "name", "auth_state", NULL } },
};

static const access_row_t s_group_access[] = {
    { "read:groups", { "kind", "name", "users", NULL } },
    { "read:groups:name", { "kind", "name", NULL } },
    { "read:roles:groups", { "kind", "name", "roles", NULL } },
};

static json_t *
s_time (int64_t us)
{
    char buf[ORR_ISO_LEN];
    return us ? json_string (orr_time_format (us, buf)) : json_null ();
}

/* Copies into `out` the fields of `full` that the rows allow for target t. */
static json_t *
s_filter (gw_t *gw, json_t *full, const access_row_t *rows, size_t nrows, const orr_scopes_t *scopes,
          const orr_scope_target_t *t)
{
    json_t *out = NULL;
    for (size_t i = 0; i < nrows; i++) {
        if (!orr_scopes_allows (scopes, rows[i].scope, t, gw_is_member, gw))
            continue;
        if (!out)
            out = json_object ();
        for (size_t k = 0; rows[i].fields[k]; k++) {
            json_t *v = json_object_get (full, rows[i].fields[k]);
            if (v)
                json_object_set (out, rows[i].fields[k], v);
        }
    }
    return out;
}

/* Is `base` allowed on server (user, name)? */
static bool
s_server_allows (gw_t *gw, const orr_scopes_t *scopes, const char *base, const char *user, const char *name)
{
    char *target = orr_sprintf ("%s/%s", user, name);
    orr_scope_target_t t = { .user = user, .server = target };
    bool ok = orr_scopes_allows (scopes, base, &t, gw_is_member, gw);
    free (target);
    return ok;
}

json_t *
gw_server_model (gw_t *gw, const char *user, const gw_server_t *s, bool with_state)
{
    json_t *options = s->user_options ? json_loads (s->user_options, 0, NULL) : NULL;
    if (!json_is_object (options)) {
        json_decref (options);
        options = json_object ();
    }
    const char *pending = gw_server_pending (s);
    char *url = gw_server_url (gw, user, s->name), *progress = gw_server_progress_url (gw, user, s->name);
    json_t *m = json_pack ("{s:s, s:o, s:o, s:o, s:b, s:b, s:s, s:o, s:s}", "name", s->name, "last_activity",
                           s_time (s->last_activity_us), "started", s_time (s->started_us), "pending",
                           pending ? json_string (pending) : json_null (), "ready", gw_server_ready (s), "stopped",
                           !gw_server_active (s), "url", url, "user_options", options, "progress_url", progress);
    if (with_state) {
        /* LocalProcessSpawner's get_state(): the pid while a process runs */
        bool running = s->pid > 0 && !gw_server_is (s, "stopped") && !gw_server_is (s, "failed");
        json_object_set_new (m, "state", running ? json_pack ("{s:I}", "pid", (json_int_t) s->pid) : json_object ());
    }
    free (url);
    free (progress);
    return m;
}

json_t *
gw_user_model (gw_t *gw, const orr_user_rec_t *rec, const gw_servers_t *servers, const orr_scopes_t *scopes,
               bool include_stopped, bool with_auth_state)
{
    json_t *groups = json_array ();
    for (size_t i = 0; rec->groups && rec->groups[i]; i++)
        json_array_append_new (groups, json_string (rec->groups[i]));
    json_t *auth_state = NULL;
    if (with_auth_state && rec->auth_state)
        auth_state = json_loads (rec->auth_state, 0, NULL);
    json_t *server_models = json_object ();
    for (size_t i = 0; servers && i < servers->n; i++) {
        const gw_server_t *s = &servers->items[i];
        if ((gw_server_active (s) || include_stopped)
            && s_server_allows (gw, scopes, "read:servers", rec->name, s->name))
            json_object_set_new (server_models, s->name,
                                 gw_server_model (gw, rec->name, s,
                                                  s_server_allows (gw, scopes, "admin:server_state", rec->name, s->name)));
    }
    /* `server` and `pending` are the default server's */
    const gw_server_t *def = gw_servers_find (servers, "");
    char *url = gw_server_url (gw, rec->name, "");
    const char *pending = gw_server_pending (def);
    json_t *full = json_pack ("{s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:O, s:o}", "kind", "user", "name",
                              rec->name, "admin", rec->admin, "roles", orr_roles_of_user (gw->roles, rec->name, rec->admin),
                              "groups", groups, "server", gw_server_ready (def) ? json_string (url) : json_null (),
                              "pending", pending ? json_string (pending) : json_null (), "created",
                              s_time (rec->created_us), "last_activity", s_time (rec->last_activity_us), "servers",
                              server_models, "auth_state", auth_state ? auth_state : json_null ());
    free (url);
    orr_scope_target_t t = { .user = rec->name };
    json_t *out = s_filter (gw, full, s_user_access, with_auth_state ? 7 : 6, scopes, &t);
    /* servers a server-filtered read:servers shows are shown even without the user-wide
     * scope (JupyterHub keeps `servers` when it is not empty) */
    if (out && !json_object_get (out, "servers") && json_object_size (server_models))
        json_object_set (out, "servers", server_models);
    json_decref (server_models);
    json_decref (full);
    return out;
}

json_t *
gw_user_model_load (gw_t *gw, const orr_user_rec_t *rec, const orr_scopes_t *scopes, bool include_stopped,
                    bool with_auth_state, bool *unavailable)
{
    gw_servers_t servers;
    const char *name = rec->name;
    *unavailable = gw_servers_load_many (gw, &name, 1, &servers) != 0;
    json_t *m = *unavailable ? NULL : gw_user_model (gw, rec, &servers, scopes, include_stopped, with_auth_state);
    gw_servers_clear (&servers);
    return m;
}

json_t *
gw_group_model (gw_t *gw, const char *group, const orr_scopes_t *scopes)
{
    char *mk = orr_key_group_members (group);
    redisReply *r = orr_store_command (gw_store (gw), "SMEMBERS %s", mk);
    free (mk);
    json_t *users = json_array ();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        json_array_append_new (users, json_string (r->element[i]->str));
    if (r)
        freeReplyObject (r);
    json_t *full = json_pack ("{s:s, s:s, s:o, s:o}", "kind", "group", "name", group, "users", users, "roles",
                              orr_roles_of_group (gw->roles, group));
    orr_scope_target_t t = { .group = group };
    json_t *out = s_filter (gw, full, s_group_access, 3, scopes, &t);
    json_decref (full);
    return out;
}

static json_t *
s_resources (const Orrery__Resources *r)
{
    const Orrery__Resources zero = ORRERY__RESOURCES__INIT;
    if (!r)
        r = &zero;
    return json_pack ("{s:I, s:I, s:i, s:i}", "cpu_millis", (json_int_t) r->cpu_millis, "memory_bytes",
                      (json_int_t) r->memory_bytes, "gpus", (int) r->gpus, "servers", (int) r->servers);
}

/* A string field as JSON ("" when not UTF-8, which JSON cannot carry). */
static json_t *
s_text (const char *s)
{
    json_t *v = json_string (s ? s : "");
    return v ? v : json_string ("");
}

/* A string field, null when empty (proto3 cannot tell "" from unset). */
static json_t *
s_text_or_null (const char *s)
{
    return s && *s ? s_text (s) : json_null ();
}

json_t *
gw_node_model (const Orrery__NodeInfo *n)
{
    json_t *labels = json_object ();
    for (size_t i = 0; i < n->n_labels; i++)
        json_object_set_new (labels, n->labels[i]->key, s_text (n->labels[i]->value));
    json_t *taints = json_array ();
    for (size_t i = 0; i < n->n_taints; i++) {
        const Orrery__Taint *t = n->taints[i];
        json_array_append_new (taints, json_pack ("{s:o, s:o, s:o}", "key", s_text (t->key), "value",
                                                  s_text (t->value), "effect", s_text (t->effect)));
    }
    /* a reason left over from an earlier cordon is not shown */
    json_t *reason = n->cordoned ? s_text_or_null (n->cordon_reason) : json_null ();
    return json_pack ("{s:s, s:o, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "kind", "node", "name",
                      s_text (n->name), "ready", n->ready, "cordoned", n->cordoned, "cordon_reason", reason,
                      "capacity", s_resources (n->capacity), "reserved", s_resources (n->reserved), "usage",
                      s_resources (n->usage), "labels", labels, "taints", taints, "last_heartbeat",
                      s_time (n->heartbeat_time_us), "registered", s_time (n->registered_time_us), "agent",
                      s_text_or_null (n->agent));
}

static int64_t
s_us (const char *s)
{
    long v = 0;
    return s && *s && orr_parse_long (s, &v) == 0 ? (int64_t) v : 0;
}

json_t *
gw_token_model (gw_t *gw, const char *hash)
{
    char *tk = orr_key_token (hash);
    redisReply *h = orr_store_command (gw_store (gw), "HGETALL %s", tk);
    free (tk);
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        if (h)
            freeReplyObject (h);
        return NULL;
    }
    json_t *scopes = json_loads (orr_reply_field (h, "scopes", ""), 0, NULL);
    if (!json_is_array (scopes)) {
        json_decref (scopes);
        scopes = json_array ();
    }
    const char *client = orr_reply_field (h, "oauth_client", "");
    json_t *client_name = json_string ("JupyterHub");
    if (*client) {
        orr_oauth_client_t c;
        json_decref (client_name);
        client_name = json_string (client);
        if (orr_oauth_client_load (gw_store (gw), gw->services, client, &c) == 1) {
            json_decref (client_name);
            client_name = json_string (*c.description ? c.description : client);
            orr_oauth_client_clear (&c);
        }
    }
    const char *sid = orr_reply_field (h, "session_id", "");
    json_t *m = json_pack ("{s:s, s:s, s:s, s:[], s:o, s:o, s:o, s:o, s:s, s:o, s:o}", "user", orr_reply_field (h, "owner", ""),
                           "id", orr_reply_field (h, "id", ""), "kind", "api_token", "roles", "scopes", scopes, "created",
                           s_time (s_us (orr_reply_field (h, "created", ""))), "last_activity",
                           s_time (s_us (orr_reply_field (h, "last_activity", ""))), "expires_at",
                           s_time (s_us (orr_reply_field (h, "expires_at", ""))), "note", orr_reply_field (h, "note", ""), "session_id",
                           *sid ? json_string (sid) : json_null (), "oauth_client", client_name);
    freeReplyObject (h);
    return m;
}

int
gw_page_parse (gw_t *gw, const gw_request_t *req, gw_page_t *page, char *message, size_t msglen)
{
    const char *accept = gw_header (req, "Accept");
    page->paginated = accept && strstr (accept, "application/jupyterhub-pagination+json");
    page->offset = 0;
    page->limit = page->paginated ? 50 : gw->page_max;
    const char *o = gw_arg (req, "offset"), *l = gw_arg (req, "limit");
    if (o && orr_parse_long (o, &page->offset) != 0) {
        snprintf (message, msglen, "offset must be an integer, not %.64s", o);
        return 400;
    }
    if (l && orr_parse_long (l, &page->limit) != 0) {
        snprintf (message, msglen, "limit must be an integer, not %.64s", l);
        return 400;
    }
    if (page->offset < 0)
        page->offset = -page->offset;
    if (page->limit < 0)
        page->limit = -page->limit;
    if (page->limit > gw->page_max)
        page->limit = gw->page_max;
    if (page->limit < 1)
        page->limit = 1;
    return 0;
}

/* The request's query with offset and limit replaced, other arguments kept (§2). */
static char *
s_next_query (const gw_request_t *req, long offset, long limit)
{
    static const char *const skip[] = { "offset", "limit", NULL };
    char *rest = gw_query (req, skip);
    char *out = orr_sprintf ("offset=%ld&limit=%ld%s%s", offset, limit, *rest ? "&" : "", rest);
    free (rest);
    return out;
}

json_t *
gw_page_wrap (gw_t *gw, const gw_request_t *req, const gw_page_t *page, json_t *items, long total)
{
    if (!page->paginated)
        return items;
    json_t *next = json_null ();
    long next_offset = page->offset + page->limit;
    if (next_offset < total) {
        char *query = s_next_query (req, next_offset, page->limit);
        char *rel = orr_sprintf ("%s?%s", req->path + 1, query);
        char *url = gw_absolute_url (gw, req, rel);
        json_decref (next);
        next = json_pack ("{s:i, s:i, s:s}", "offset", (json_int_t) next_offset, "limit", (json_int_t) page->limit,
                          "url", url);
        free (url);
        free (rel);
        free (query);
    }
    return json_pack ("{s:o, s:{s:i, s:i, s:i, s:o}}", "items", items, "_pagination", "offset",
                      (json_int_t) page->offset, "limit", (json_int_t) page->limit, "total", (json_int_t) total, "next",
                      next);
}
