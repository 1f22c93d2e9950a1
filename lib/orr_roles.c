/*  orr_roles: role definitions and who holds them.
 *
 *  Data: an array of roles, each a name, its scope strings (unexpanded, as written) and
 *  the user, group and service names it is given to. Built-in roles come first; a
 *  load_roles entry with a built-in name only adds members (JupyterHub lets the admin role
 *  be given to more users this way) and may not change the built-in scopes.
 */
#include "orr_roles.h"
#include "orr_log.h"
#include "orr_util.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char **scopes;      /* NULL-terminated */
    char **users;
    char **groups;
    char **services;
    bool builtin;
} role_t;

struct orr_roles_t {
    role_t *roles;
    size_t n;
};

static const char *const s_admin_scopes[] = {
    "admin-ui", "admin:users", "admin:servers", "tokens", "admin:groups", "list:services", "read:services",
    "read:hub", "proxy", "shutdown", "access:services", "access:servers", "read:roles", "read:metrics",
    "admin:nodes", NULL,
};
static const char *const s_user_scopes[] = { "self", NULL };
static const char *const s_server_scopes[] = { "users:activity!user", "access:servers!user", NULL };
static const char *const s_token_scopes[] = { "inherit", NULL };

static char **
s_strv_from (const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        out[i] = orr_strdup (v[i]);
    return out;
}

static char **
s_strv_from_json (const json_t *arr)
{
    size_t n = json_is_array (arr) ? json_array_size (arr) : 0;
    char **out = orr_zalloc ((n + 1) * sizeof (char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value (json_array_get (arr, i));
        if (s)
            out[k++] = orr_strdup (s);
    }
    return out;
}

static bool
s_strv_has (char **v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp (v[i], s) == 0)
            return true;
    return false;
}

static char **
s_strv_merge (char **a, char **b)
{
    size_t na = 0, nb = 0;
    while (a[na])
        na++;
    while (b[nb])
        nb++;
    a = orr_realloc (a, (na + nb + 1) * sizeof (char *));
    for (size_t i = 0; i < nb; i++)
        if (!s_strv_has (a, b[i])) {
            a[na++] = b[i];
            a[na] = NULL;   /* s_strv_has reads up to the terminator on the next pass */
            b[i] = NULL;
        }
    for (size_t i = 0; i < nb; i++)
        free (b[i]);
    free (b);
    return a;
}

static void
s_role_free (role_t *r)
{
    free (r->name);
    orr_strv_free (&r->scopes);
    orr_strv_free (&r->users);
    orr_strv_free (&r->groups);
    orr_strv_free (&r->services);
}

static role_t *
s_find (const orr_roles_t *self, const char *name)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp (self->roles[i].name, name) == 0)
            return &self->roles[i];
    return NULL;
}

static void
s_add_builtin (orr_roles_t *self, const char *name, const char *const *scopes)
{
    self->roles = orr_realloc (self->roles, (self->n + 1) * sizeof (role_t));
    role_t *r = &self->roles[self->n++];
    memset (r, 0, sizeof *r);
    r->name = orr_strdup (name);
    r->scopes = s_strv_from (scopes);
    r->users = s_strv_from (NULL);
    r->groups = s_strv_from (NULL);
    r->services = s_strv_from (NULL);
    r->builtin = true;
}

static bool
s_scope_word_ok (const char *s)
{
    return strcmp (s, "self") == 0 || strcmp (s, "inherit") == 0 || orr_scope_is_valid (s);
}

static int
s_load (orr_roles_t *self, const json_t *list, char *err, size_t errlen)
{
    regex_t name_re;
    regcomp (&name_re, "^[a-z][a-z0-9_~.-]{1,253}[a-z0-9]$", REG_EXTENDED | REG_NOSUB);
    int rc = 0;
    size_t i;
    json_t *entry;
    /* custom scopes first, so roles may use them in any order */
    json_array_foreach (list, i, entry) {
        json_t *scopes = json_object_get (entry, "scopes");
        size_t j;
        json_t *s;
        json_array_foreach (scopes, j, s)
            if (json_is_string (s) && strncmp (json_string_value (s), "custom:", 7) == 0) {
                char base[ORR_SCOPE_MAX_LEN + 1];
                snprintf (base, sizeof base, "%s", json_string_value (s));
                char *bang = strchr (base, '!');
                if (bang)
                    *bang = '\0';
                orr_scopes_define_custom (base);
            }
    }
    json_array_foreach (list, i, entry) {
        const char *name = json_string_value (json_object_get (entry, "name"));
        if (!json_is_object (entry) || !name || regexec (&name_re, name, 0, NULL, 0) != 0) {
            snprintf (err, errlen, "load_roles entry %zu: a role needs a name matching ^[a-z][a-z0-9\\-_~.]{1,253}[a-z0-9]$",
                      i);
            rc = -1;
            break;
        }
        json_t *scopes = json_object_get (entry, "scopes");
        if (scopes && !json_is_array (scopes)) {
            snprintf (err, errlen, "role %s: scopes must be a list", name);
            rc = -1;
            break;
        }
        char **sv = s_strv_from_json (scopes);
        for (size_t k = 0; sv[k]; k++)
            if (!s_scope_word_ok (sv[k])) {
                snprintf (err, errlen, "role %s: unknown scope %s", name, sv[k]);
                rc = -1;
            }
        role_t *existing = s_find (self, name);
        if (rc == 0 && existing && existing->builtin && scopes) {
            snprintf (err, errlen, "role %s is built in: only its members may be configured", name);
            rc = -1;
        }
        else if (rc == 0 && existing && !existing->builtin) {
            snprintf (err, errlen, "role %s is defined twice", name);
            rc = -1;
        }
        if (rc != 0) {
            orr_strv_free (&sv);
            break;
        }
        if (!existing) {
            self->roles = orr_realloc (self->roles, (self->n + 1) * sizeof (role_t));
            existing = &self->roles[self->n++];
            memset (existing, 0, sizeof *existing);
            existing->name = orr_strdup (name);
            existing->scopes = sv;
            existing->users = s_strv_from (NULL);
            existing->groups = s_strv_from (NULL);
            existing->services = s_strv_from (NULL);
        }
        else
            orr_strv_free (&sv);
        existing->users = s_strv_merge (existing->users, s_strv_from_json (json_object_get (entry, "users")));
        existing->groups = s_strv_merge (existing->groups, s_strv_from_json (json_object_get (entry, "groups")));
        existing->services = s_strv_merge (existing->services, s_strv_from_json (json_object_get (entry, "services")));
    }
    regfree (&name_re);
    return rc;
}

orr_roles_t *
orr_roles_new (const char *load_roles, char *err, size_t errlen)
{
    orr_roles_t *self = orr_zalloc (sizeof *self);
    s_add_builtin (self, "user", s_user_scopes);
    s_add_builtin (self, "admin", s_admin_scopes);
    s_add_builtin (self, "server", s_server_scopes);
    s_add_builtin (self, "token", s_token_scopes);
    if (!load_roles || !*load_roles)
        return self;
    json_error_t jerr;
    const char *p = load_roles;
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    json_t *list = *p == '[' ? json_loads (p, 0, &jerr) : json_load_file (p, 0, &jerr);
    if (!json_is_array (list)) {
        snprintf (err, errlen, "load_roles: %s", list ? "must be a JSON list of roles" : jerr.text);
        json_decref (list);
        orr_roles_destroy (&self);
        return NULL;
    }
    if (s_load (self, list, err, errlen) != 0)
        orr_roles_destroy (&self);
    json_decref (list);
    return self;
}

void
orr_roles_destroy (orr_roles_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_roles_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        s_role_free (&self->roles[i]);
    free (self->roles);
    free (self);
    *self_p = NULL;
}

bool
orr_roles_exists (const orr_roles_t *self, const char *role)
{
    return s_find (self, role) != NULL;
}

/* Does role r apply to this user directly? */
static bool
s_user_holds (const role_t *r, const char *user, bool admin)
{
    if (strcmp (r->name, "user") == 0)
        return true;
    if (strcmp (r->name, "admin") == 0 && admin)
        return true;
    return s_strv_has (r->users, user);
}

json_t *
orr_roles_of_user (const orr_roles_t *self, const char *user, bool admin)
{
    json_t *out = json_array ();
    for (size_t i = 0; i < self->n; i++)
        if (s_user_holds (&self->roles[i], user, admin))
            json_array_append_new (out, json_string (self->roles[i].name));
    return out;
}

json_t *
orr_roles_of_group (const orr_roles_t *self, const char *group)
{
    json_t *out = json_array ();
    for (size_t i = 0; i < self->n; i++)
        if (s_strv_has (self->roles[i].groups, group))
            json_array_append_new (out, json_string (self->roles[i].name));
    return out;
}

json_t *
orr_roles_of_service (const orr_roles_t *self, const char *service, bool admin)
{
    json_t *out = json_array ();
    for (size_t i = 0; i < self->n; i++) {
        const role_t *r = &self->roles[i];
        if ((strcmp (r->name, "admin") == 0 && admin) || s_strv_has (r->services, service))
            json_array_append_new (out, json_string (r->name));
    }
    return out;
}

static void
s_expand_role_scopes (const role_t *r, const char *kind, const char *name, orr_scopes_t *into)
{
    char err[256];
    for (size_t k = 0; r->scopes[k]; k++)
        if (strcmp (r->scopes[k], "inherit") != 0
            && orr_scopes_expand_into (into, r->scopes[k], kind, name, err, sizeof err) != 0)
            orr_debug ("role %s: %s", r->name, err);
}

orr_scopes_t *
orr_roles_user_scopes (const orr_roles_t *self, const char *user, bool admin, const char *const *groups)
{
    orr_scopes_t *out = orr_scopes_new ();
    for (size_t i = 0; i < self->n; i++) {
        const role_t *r = &self->roles[i];
        bool holds = s_user_holds (r, user, admin);
        for (size_t g = 0; !holds && groups && groups[g]; g++)
            holds = s_strv_has (r->groups, groups[g]);
        if (holds)
            s_expand_role_scopes (r, "user", user, out);
    }
    return out;
}

orr_scopes_t *
orr_roles_service_scopes (const orr_roles_t *self, const char *service, bool admin)
{
    orr_scopes_t *out = orr_scopes_new ();
    for (size_t i = 0; i < self->n; i++) {
        const role_t *r = &self->roles[i];
        if ((strcmp (r->name, "admin") == 0 && admin) || s_strv_has (r->services, service))
            s_expand_role_scopes (r, "service", service, out);
    }
    return out;
}

int
orr_roles_expand (const orr_roles_t *self, const char *role, const char *owner_kind, const char *owner_name,
                  const orr_scopes_t *owner_scopes, orr_scopes_t *into, char *err, size_t errlen)
{
    const role_t *r = s_find (self, role);
    if (!r) {
        snprintf (err, errlen, "Role %s does not exist", role);
        return -1;
    }
    for (size_t k = 0; r->scopes[k]; k++)
        if (strcmp (r->scopes[k], "inherit") == 0) {
            for (size_t i = 0; owner_scopes && i < orr_scopes_size (owner_scopes); i++)
                orr_scopes_add (into, orr_scopes_at (owner_scopes, i));
        }
    s_expand_role_scopes (r, owner_kind, owner_name, into);
    return 0;
}
