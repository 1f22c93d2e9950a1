/*  orr_identity: reading users and resolving credentials, one pipelined round trip each
 *  where possible (the gateway does this for every request it cannot answer from its
 *  short cache).
 */
#include "orr_identity.h"
#include "orr_crypto.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"

#include <stdlib.h>
#include <string.h>

static int64_t
s_int (const char *s)
{
    long v = 0;
    if (!s || orr_parse_long (s, &v) != 0)
        return 0;
    return (int64_t) v;
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static char **
s_strv_from_reply (const redisReply *r)
{
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    char **v = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        v[i] = orr_strndup (r->element[i]->str, r->element[i]->len);
    qsort (v, n, sizeof (char *), s_cmp_str);
    return v;
}

/* Fills rec from an HGETALL reply and an SMEMBERS reply; 1, or 0 for an empty hash. */
static int
s_fill_user (orr_user_rec_t *rec, const char *name, const redisReply *hash, const redisReply *groups)
{
    memset (rec, 0, sizeof *rec);
    if (!hash || hash->type != REDIS_REPLY_ARRAY || hash->elements == 0)
        return 0;
    rec->name = orr_strdup (name);
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const char *f = hash->element[i]->str;
        const redisReply *v = hash->element[i + 1];
        if (strcmp (f, "id") == 0)
            rec->id = s_int (v->str);
        else if (strcmp (f, "admin") == 0)
            rec->admin = strcmp (v->str, "1") == 0;
        else if (strcmp (f, "created") == 0)
            rec->created_us = s_int (v->str);
        else if (strcmp (f, "last_activity") == 0)
            rec->last_activity_us = s_int (v->str);
        else if (strcmp (f, "auth_state") == 0 && v->len)
            rec->auth_state = orr_strndup (v->str, v->len);
        else if (strcmp (f, "password") == 0 && v->len)
            rec->password_hash = orr_strndup (v->str, v->len);
    }
    rec->groups = s_strv_from_reply (groups);
    return 1;
}

int
orr_users_load_many (orr_store_t *store, const char *const *names, size_t n, orr_user_rec_t *recs)
{
    for (size_t i = 0; i < n; i++) {
        char *uk = orr_key_user (names[i]);
        char *gk = orr_key_user_groups (names[i]);
        orr_store_append (store, "HGETALL %s", uk);
        orr_store_append (store, "SMEMBERS %s", gk);
        free (uk);
        free (gk);
    }
    if (n == 0)
        return 0;
    redisReply **replies = orr_zalloc (2 * n * sizeof (redisReply *));
    int rc = orr_store_flush_replies (store, replies, 2 * n);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            s_fill_user (&recs[i], names[i], replies[2 * i], replies[2 * i + 1]);
        if (replies[2 * i])
            freeReplyObject (replies[2 * i]);
        if (replies[2 * i + 1])
            freeReplyObject (replies[2 * i + 1]);
    }
    free (replies);
    return rc;
}

int
orr_user_load (orr_store_t *store, const char *name, orr_user_rec_t *rec)
{
    memset (rec, 0, sizeof *rec);
    if (orr_users_load_many (store, &name, 1, rec) != 0)
        return -1;
    return rec->name ? 1 : 0;
}

void
orr_user_rec_clear (orr_user_rec_t *rec)
{
    free (rec->name);
    orr_strv_free (&rec->groups);
    free (rec->auth_state);
    free (rec->password_hash);
    memset (rec, 0, sizeof *rec);
}

orr_scopes_t *
orr_user_scopes (const orr_roles_t *roles, const orr_user_rec_t *rec)
{
    return orr_roles_user_scopes (roles, rec->name, rec->admin, (const char *const *) rec->groups);
}

bool
orr_identity_is_member (void *store, const char *user, const char *group)
{
    char *gk = orr_key_group_members (group);
    redisReply *r = orr_store_command (store, "SISMEMBER %s %s", gk, user);
    free (gk);
    bool member = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject (r);
    return member;
}

void
orr_identity_clear (orr_identity_t *id)
{
    free (id->name);
    orr_strv_free (&id->groups);
    orr_scopes_destroy (&id->scopes);
    free (id->token_id);
    free (id->token_hash);
    free (id->session_id);
    free (id->oauth_client);
    memset (id, 0, sizeof *id);
}

static char *
s_dup_or_null (const char *s)
{
    return s ? orr_strdup (s) : NULL;
}

void
orr_identity_copy (orr_identity_t *dst, const orr_identity_t *src)
{
    memset (dst, 0, sizeof *dst);
    memcpy (dst->kind, src->kind, sizeof dst->kind);
    dst->name = s_dup_or_null (src->name);
    dst->admin = src->admin;
    if (src->groups) {
        size_t n = 0;
        while (src->groups[n])
            n++;
        dst->groups = orr_zalloc ((n + 1) * sizeof (char *));
        for (size_t i = 0; i < n; i++)
            dst->groups[i] = orr_strdup (src->groups[i]);
    }
    dst->scopes = src->scopes ? orr_scopes_dup (src->scopes) : NULL;
    dst->token_id = s_dup_or_null (src->token_id);
    dst->token_hash = s_dup_or_null (src->token_hash);
    dst->session_id = s_dup_or_null (src->session_id);
    dst->oauth_client = s_dup_or_null (src->oauth_client);
    dst->expires_us = src->expires_us;
}

orr_scopes_t *
orr_token_effective_scopes (orr_store_t *store, const orr_roles_t *roles, const char *owner_kind, const char *owner,
                            const orr_scopes_t *owner_scopes, const json_t *token_scopes)
{
    orr_scopes_t *wanted = orr_scopes_new ();
    char err[256];
    size_t i;
    json_t *v;
    json_array_foreach (token_scopes, i, v) {
        const char *s = json_string_value (v);
        if (!s)
            continue;
        if (strcmp (s, "inherit") == 0) {
            for (size_t k = 0; k < orr_scopes_size (owner_scopes); k++)
                orr_scopes_add (wanted, orr_scopes_at (owner_scopes, k));
        }
        else if (strcmp (s, "(no_scope)") != 0 && orr_scopes_expand_into (wanted, s, owner_kind, owner, err, sizeof err) != 0)
            orr_debug ("token scope ignored: %s", err);
    }
    if (strcmp (owner_kind, "user") == 0) {
        orr_scopes_expand_into (wanted, "read:users:name!user", owner_kind, owner, err, sizeof err);
        orr_scopes_expand_into (wanted, "read:users:groups!user", owner_kind, owner, err, sizeof err);
    }
    else
        orr_scopes_expand_into (wanted, "read:services:name!service", owner_kind, owner, err, sizeof err);
    orr_scopes_t *effective = orr_scopes_intersect (wanted, owner_scopes, orr_identity_is_member, store);
    orr_scopes_destroy (&wanted);
    (void) roles;
    return effective;
}


orr_identity_status_t
orr_identity_from_token (orr_store_t *store, const orr_roles_t *roles, const orr_hubservices_t *services,
                         const char *token, orr_identity_t *out)
{
    memset (out, 0, sizeof *out);
    char hash[ORR_SHA256_HEX_LEN + 1];
    orr_sha256_hex (token, strlen (token), hash);
    const orr_hubservice_t *svc = services ? orr_hubservices_by_token_hash (services, hash) : NULL;
    if (svc) {
        snprintf (out->kind, sizeof out->kind, "service");
        out->name = orr_strdup (svc->name);
        out->admin = svc->admin;
        out->scopes = orr_roles_service_scopes (roles, svc->name, svc->admin);
        char err[128];
        orr_scopes_expand_into (out->scopes, "read:services:name!service", "service", svc->name, err, sizeof err);
        out->token_hash = orr_strdup (hash);
        return ORR_IDENTITY_OK;
    }
    char *tk = orr_key_token (hash);
    redisReply *r = orr_store_command (store, "HGETALL %s", tk);
    free (tk);
    if (!r)
        return ORR_IDENTITY_UNAVAILABLE;
    orr_identity_status_t status = ORR_IDENTITY_INVALID;
    const char *kind = orr_reply_field (r, "kind", NULL);
    const char *owner = orr_reply_field (r, "owner", NULL);
    int64_t expires = s_int (orr_reply_field (r, "expires_at", NULL));
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || !kind || !owner || strcmp (kind, "user") != 0
        || (expires && expires <= orr_now_us ())) {
        freeReplyObject (r);
        return ORR_IDENTITY_INVALID;
    }
    orr_user_rec_t rec;
    int found = orr_user_load (store, owner, &rec);
    if (found < 0)
        status = ORR_IDENTITY_UNAVAILABLE;
    else if (found == 1) {
        orr_scopes_t *owner_scopes = orr_user_scopes (roles, &rec);
        json_t *tscopes = json_loads (orr_reply_field (r, "scopes", "[]"), 0, NULL);
        snprintf (out->kind, sizeof out->kind, "user");
        out->scopes = orr_token_effective_scopes (store, roles, "user", owner, owner_scopes, tscopes);
        json_decref (tscopes);
        orr_scopes_destroy (&owner_scopes);
        out->name = rec.name;
        rec.name = NULL;
        out->admin = rec.admin;
        out->groups = rec.groups;
        rec.groups = NULL;
        out->token_id = s_dup_or_null (orr_reply_field (r, "id", NULL));
        out->token_hash = orr_strdup (hash);
        const char *sid = orr_reply_field (r, "session_id", NULL);
        out->session_id = sid && *sid ? orr_strdup (sid) : NULL;
        const char *client = orr_reply_field (r, "oauth_client", NULL);
        out->oauth_client = client && *client ? orr_strdup (client) : NULL;
        out->expires_us = expires;
        status = ORR_IDENTITY_OK;
    }
    orr_user_rec_clear (&rec);
    freeReplyObject (r);
    return status;
}

orr_identity_status_t
orr_identity_from_session (orr_store_t *store, const orr_roles_t *roles, const char *session_id, orr_identity_t *out)
{
    memset (out, 0, sizeof *out);
    char *sk = orr_key_session (session_id);
    redisReply *r = orr_store_command (store, "HGET %s user", sk);
    free (sk);
    if (!r)
        return ORR_IDENTITY_UNAVAILABLE;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject (r);
        return ORR_IDENTITY_INVALID;
    }
    orr_user_rec_t rec;
    int found = orr_user_load (store, r->str, &rec);
    freeReplyObject (r);
    if (found != 1) {
        orr_user_rec_clear (&rec);
        return found < 0 ? ORR_IDENTITY_UNAVAILABLE : ORR_IDENTITY_INVALID;
    }
    snprintf (out->kind, sizeof out->kind, "user");
    out->scopes = orr_user_scopes (roles, &rec);
    out->name = rec.name;
    rec.name = NULL;
    out->admin = rec.admin;
    out->groups = rec.groups;
    rec.groups = NULL;
    out->session_id = orr_strdup (session_id);
    orr_user_rec_clear (&rec);
    return ORR_IDENTITY_OK;
}
