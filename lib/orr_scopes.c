/*  orr_scopes: the scope algebra of JupyterHub 3.0 (jupyterhub-api.md §8).
 *
 *  Data: a set is a growable array of strings kept sorted and unique. The implication
 *  table below is the whole of §8's first table (plus Orrery's own leaf scopes, marked);
 *  expansion walks it recursively, carrying the filter down, so every later question
 *  ("may this token read bob?") is a scan of one small sorted array.
 *
 *  Filters are parsed on the fly from "base!kind=value"; a value may hold any byte but
 *  NUL (user names with '!' or '=' included: the split is at the first '!' and the first
 *  '=' after it).
 */
#include "orr_scopes.h"
#include "orr_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct orr_scopes_t {
    char **items;
    size_t size;
    size_t cap;
};

typedef struct {
    const char *scope;
    const char *implies[6];
} implication_t;

/* §8: what each scope implies (transitively closed by expansion). Scopes listed with no
 * implication are leaves; every valid scope name appears here exactly once. */
static const implication_t s_table[] = {
    { "admin:users", { "admin:auth_state", "users", "read:roles:users", "delete:users", NULL } },
    { "users", { "read:users", "list:users", "users:activity", NULL } },
    { "read:users", { "read:users:name", "read:users:groups", "read:users:activity", NULL } },
    { "list:users", { "read:users:name", NULL } },
    { "read:servers", { "read:users:name", NULL } },
    { "users:activity", { "read:users:activity", NULL } },
    { "read:roles", { "read:roles:users", "read:roles:services", "read:roles:groups", NULL } },
    { "admin:servers", { "admin:server_state", "servers", NULL } },
    { "servers", { "read:servers", "delete:servers", NULL } },
    { "tokens", { "read:tokens", NULL } },
    { "admin:groups", { "groups", "read:roles:groups", "delete:groups", NULL } },
    { "groups", { "read:groups", "list:groups", NULL } },
    { "list:groups", { "read:groups:name", NULL } },
    { "read:groups", { "read:groups:name", NULL } },
    { "list:services", { "read:services:name", NULL } },
    { "read:services", { "read:services:name", NULL } },
    { "admin:auth_state", { NULL } },
    { "read:roles:users", { NULL } },
    { "read:roles:services", { NULL } },
    { "read:roles:groups", { NULL } },
    { "delete:users", { NULL } },
    { "read:users:name", { NULL } },
    { "read:users:groups", { NULL } },
    { "read:users:activity", { NULL } },
    { "admin:server_state", { NULL } },
    { "delete:servers", { NULL } },
    { "read:tokens", { NULL } },
    { "delete:groups", { NULL } },
    { "read:groups:name", { NULL } },
    { "read:services:name", { NULL } },
    { "admin-ui", { NULL } },
    { "read:hub", { NULL } },
    { "access:servers", { NULL } },
    { "access:services", { NULL } },
    { "proxy", { NULL } },
    { "shutdown", { NULL } },
    { "read:metrics", { NULL } },
    { "admin:nodes", { NULL } },        /* Orrery: the scheduler's node endpoints */
};
#define TABLE_SIZE (sizeof s_table / sizeof s_table[0])

/* What `self` means for a user (§8), each with !user=<me>. */
static const char *const s_self_scopes[] = {
    "read:users", "read:users:name", "read:users:groups", "users:activity", "read:users:activity", "servers",
    "delete:servers", "read:servers", "tokens", "read:tokens", "access:servers", NULL,
};

#define MAX_CUSTOM 256
static char *s_custom[MAX_CUSTOM];
static size_t s_ncustom;

void
orr_scopes_define_custom (const char *name)
{
    if (strncmp (name, "custom:", 7) != 0 || s_ncustom >= MAX_CUSTOM)
        return;
    for (size_t i = 0; i < s_ncustom; i++)
        if (strcmp (s_custom[i], name) == 0)
            return;
    s_custom[s_ncustom++] = orr_strdup (name);
}

static const implication_t *
s_lookup (const char *base, size_t len)
{
    for (size_t i = 0; i < TABLE_SIZE; i++)
        if (strlen (s_table[i].scope) == len && memcmp (s_table[i].scope, base, len) == 0)
            return &s_table[i];
    return NULL;
}

static bool
s_is_custom (const char *base, size_t len)
{
    for (size_t i = 0; i < s_ncustom; i++)
        if (strlen (s_custom[i]) == len && memcmp (s_custom[i], base, len) == 0)
            return true;
    return false;
}

/* --- sets ------------------------------------------------------------------------------ */

orr_scopes_t *
orr_scopes_new (void)
{
    return orr_zalloc (sizeof (orr_scopes_t));
}

void
orr_scopes_destroy (orr_scopes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orr_scopes_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        free (self->items[i]);
    free (self->items);
    free (self);
    *self_p = NULL;
}

orr_scopes_t *
orr_scopes_dup (const orr_scopes_t *self)
{
    orr_scopes_t *copy = orr_scopes_new ();
    for (size_t i = 0; i < self->size; i++)
        orr_scopes_add (copy, self->items[i]);
    return copy;
}

size_t
orr_scopes_size (const orr_scopes_t *self)
{
    return self->size;
}

const char *
orr_scopes_at (const orr_scopes_t *self, size_t i)
{
    return i < self->size ? self->items[i] : NULL;
}

/* Index of the first item >= scope (binary search). */
static size_t
s_lower_bound (const orr_scopes_t *self, const char *scope)
{
    size_t lo = 0, hi = self->size;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp (self->items[mid], scope) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool
orr_scopes_contains (const orr_scopes_t *self, const char *scope)
{
    size_t i = s_lower_bound (self, scope);
    return i < self->size && strcmp (self->items[i], scope) == 0;
}

void
orr_scopes_add (orr_scopes_t *self, const char *scope)
{
    size_t i = s_lower_bound (self, scope);
    if (i < self->size && strcmp (self->items[i], scope) == 0)
        return;
    if (self->size == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->items = orr_realloc (self->items, self->cap * sizeof (char *));
    }
    memmove (self->items + i + 1, self->items + i, (self->size - i) * sizeof (char *));
    self->items[i] = orr_strdup (scope);
    self->size++;
}

/* --- parsing --------------------------------------------------------------------------- */

typedef struct {
    const char *base;
    size_t base_len;
    const char *kind;      /* "user", "server", "group", "service" or NULL (no filter) */
    size_t kind_len;
    const char *value;     /* NULL for a bare filter ("!user") */
} scope_parts_t;

static void
s_split (const char *scope, scope_parts_t *p)
{
    memset (p, 0, sizeof *p);
    p->base = scope;
    const char *bang = strchr (scope, '!');
    p->base_len = bang ? (size_t) (bang - scope) : strlen (scope);
    if (!bang)
        return;
    p->kind = bang + 1;
    const char *eq = strchr (p->kind, '=');
    p->kind_len = eq ? (size_t) (eq - p->kind) : strlen (p->kind);
    p->value = eq ? eq + 1 : NULL;
}

static bool
s_kind_is (const scope_parts_t *p, const char *kind)
{
    return p->kind && p->kind_len == strlen (kind) && memcmp (p->kind, kind, p->kind_len) == 0;
}

static bool
s_filter_valid (const scope_parts_t *p)
{
    if (!p->kind)
        return true;
    if (!s_kind_is (p, "user") && !s_kind_is (p, "server") && !s_kind_is (p, "group") && !s_kind_is (p, "service"))
        return false;
    if (!p->value)
        return true;
    if (!*p->value)
        return false;
    /* a server filter names USER/SERVER, with a non-empty USER */
    if (!s_kind_is (p, "server"))
        return true;
    const char *slash = strchr (p->value, '/');
    return slash != NULL && slash != p->value;
}

bool
orr_scope_is_valid (const char *scope)
{
    if (!scope || strlen (scope) > ORR_SCOPE_MAX_LEN)
        return false;
    scope_parts_t p;
    s_split (scope, &p);
    if (!s_lookup (p.base, p.base_len) && !s_is_custom (p.base, p.base_len))
        return false;
    return s_filter_valid (&p);
}

/* --- expansion ------------------------------------------------------------------------- */

static void
s_add_with_filter (orr_scopes_t *self, const char *base, const char *filter)
{
    if (filter) {
        char *s = orr_sprintf ("%s!%s", base, filter);
        orr_scopes_add (self, s);
        free (s);
    }
    else
        orr_scopes_add (self, base);
}

static void
s_expand_base (orr_scopes_t *self, const char *base, size_t base_len, const char *filter, int depth)
{
    char name[ORR_SCOPE_MAX_LEN + 1];
    snprintf (name, sizeof name, "%.*s", (int) base_len, base);
    s_add_with_filter (self, name, filter);
    /* §8: a read:* scope filtered to one server also lets its holder see the user's name;
     * applied to implied scopes too, so expansion is idempotent */
    if (filter && strncmp (filter, "server=", 7) == 0 && strncmp (name, "read:", 5) == 0) {
        const char *slash = strchr (filter + 7, '/');
        if (slash && slash > filter + 7) {
            char *user_filter = orr_sprintf ("user=%.*s", (int) (slash - (filter + 7)), filter + 7);
            s_add_with_filter (self, "read:users:name", user_filter);
            free (user_filter);
        }
    }
    const implication_t *imp = s_lookup (base, base_len);
    if (!imp || depth > 8)
        return;
    for (int i = 0; imp->implies[i]; i++)
        s_expand_base (self, imp->implies[i], strlen (imp->implies[i]), filter, depth + 1);
}

int
orr_scopes_expand_into (orr_scopes_t *self, const char *scope, const char *owner_kind, const char *owner_name,
                        char *err, size_t errlen)
{
    if (strcmp (scope, "self") == 0) {
        if (owner_kind && strcmp (owner_kind, "user") == 0) {
            char *filter = orr_sprintf ("user=%s", owner_name);
            for (int i = 0; s_self_scopes[i]; i++)
                s_expand_base (self, s_self_scopes[i], strlen (s_self_scopes[i]), filter, 0);
            free (filter);
        }
        return 0;
    }
    if (!orr_scope_is_valid (scope)) {
        snprintf (err, errlen, "Undefined scope: %s", scope);
        return -1;
    }
    scope_parts_t p;
    s_split (scope, &p);
    char *filter = NULL;
    if (p.kind && !p.value) {
        /* bare filter: completed from the owner */
        if (s_kind_is (&p, "user") && owner_kind && strcmp (owner_kind, "user") == 0)
            filter = orr_sprintf ("user=%s", owner_name);
        else if (s_kind_is (&p, "service") && owner_kind && strcmp (owner_kind, "service") == 0)
            filter = orr_sprintf ("service=%s", owner_name);
        else if (s_kind_is (&p, "server") && owner_kind && strcmp (owner_kind, "user") == 0)
            filter = orr_sprintf ("user=%s", owner_name);   /* all of the owner's servers */
        else {
            snprintf (err, errlen, "Cannot fill the filter of %s for this owner", scope);
            return -1;
        }
    }
    else if (p.kind)
        filter = orr_strdup (p.kind);
    s_expand_base (self, p.base, p.base_len, filter, 0);
    free (filter);
    return 0;
}

/* --- matching -------------------------------------------------------------------------- */

/* Does filter (kind, value) cover the target? */
static bool
s_filter_matches (const scope_parts_t *p, const orr_scope_target_t *t, orr_group_member_fn *is_member, void *ctx)
{
    if (!p->kind || !p->value)
        return !p->kind;
    const char *v = p->value;
    char server_user[ORR_SCOPE_MAX_LEN + 1] = "";
    const char *target_user = t->user;
    if (t->server) {
        const char *slash = strchr (t->server, '/');
        if (slash)
            snprintf (server_user, sizeof server_user, "%.*s", (int) (slash - t->server), t->server);
        if (!target_user)
            target_user = server_user;
    }
    if (s_kind_is (p, "user"))
        return target_user && strcmp (target_user, v) == 0;
    if (s_kind_is (p, "server"))
        return t->server && strcmp (t->server, v) == 0;
    if (s_kind_is (p, "group")) {
        if (t->group && strcmp (t->group, v) == 0)
            return true;
        return target_user && is_member && is_member (ctx, target_user, v);
    }
    if (s_kind_is (p, "service"))
        return t->service && strcmp (t->service, v) == 0;
    return false;
}

/* Items of `self` whose base is exactly `base`: [*first, *end). Items "base" and
 * "base!..." sort together because '!' sorts before every character allowed in names. */
static void
s_range (const orr_scopes_t *self, const char *base, size_t *first, size_t *end)
{
    size_t n = strlen (base);
    size_t i = s_lower_bound (self, base);
    *first = i;
    while (i < self->size && strncmp (self->items[i], base, n) == 0
           && (self->items[i][n] == '\0' || self->items[i][n] == '!'))
        i++;
    *end = i;
}

bool
orr_scopes_holds (const orr_scopes_t *self, const char *base)
{
    size_t first, end;
    s_range (self, base, &first, &end);
    return end > first;
}

bool
orr_scopes_allows (const orr_scopes_t *self, const char *base, const orr_scope_target_t *target,
                   orr_group_member_fn *is_member, void *ctx)
{
    size_t first, end;
    s_range (self, base, &first, &end);
    for (size_t i = first; i < end; i++) {
        scope_parts_t p;
        s_split (self->items[i], &p);
        if (!p.kind || s_filter_matches (&p, target, is_member, ctx))
            return true;
    }
    return false;
}

orr_scope_decision_t
orr_scopes_check (const orr_scopes_t *self, const char *const *any_of, const orr_scope_target_t *target,
                  orr_group_member_fn *is_member, void *ctx)
{
    for (int i = 0; any_of[i]; i++) {
        if (!orr_scopes_holds (self, any_of[i]))
            continue;
        return orr_scopes_allows (self, any_of[i], target, is_member, ctx) ? ORR_SCOPE_ALLOW : ORR_SCOPE_NOT_FOUND;
    }
    return ORR_SCOPE_MISSING;
}

/* --- intersection ---------------------------------------------------------------------- */

/* Is filter `narrow` inside filter `wide` (both set)? */
static bool
s_filter_within (const scope_parts_t *narrow, const scope_parts_t *wide, orr_group_member_fn *is_member, void *ctx)
{
    if (!narrow->value || !wide->value)
        return false;
    orr_scope_target_t t = { 0 };
    if (s_kind_is (narrow, "user"))
        t.user = narrow->value;
    else if (s_kind_is (narrow, "server"))
        t.server = narrow->value;
    else if (s_kind_is (narrow, "group"))
        t.group = narrow->value;
    else if (s_kind_is (narrow, "service"))
        t.service = narrow->value;
    /* a group filter never sits inside a user filter, and a group is inside another
     * group only when it is the same group */
    if (s_kind_is (narrow, "group") && !s_kind_is (wide, "group"))
        return false;
    return s_filter_matches (wide, &t, is_member, ctx);
}

orr_scopes_t *
orr_scopes_intersect (const orr_scopes_t *a, const orr_scopes_t *b, orr_group_member_fn *is_member, void *ctx)
{
    orr_scopes_t *out = orr_scopes_new ();
    for (size_t i = 0; i < a->size; i++) {
        scope_parts_t pa;
        s_split (a->items[i], &pa);
        char base[ORR_SCOPE_MAX_LEN + 1];
        snprintf (base, sizeof base, "%.*s", (int) pa.base_len, pa.base);
        size_t first, end;
        s_range (b, base, &first, &end);
        for (size_t j = first; j < end; j++) {
            scope_parts_t pb;
            s_split (b->items[j], &pb);
            if (!pb.kind)
                orr_scopes_add (out, a->items[i]);           /* b unfiltered: keep a's */
            else if (!pa.kind)
                orr_scopes_add (out, b->items[j]);           /* a unfiltered: b's filter */
            else if (strcmp (a->items[i], b->items[j]) == 0 || s_filter_within (&pa, &pb, is_member, ctx))
                orr_scopes_add (out, a->items[i]);
            else if (s_filter_within (&pb, &pa, is_member, ctx))
                orr_scopes_add (out, b->items[j]);
        }
    }
    return out;
}

/* --- conversions ----------------------------------------------------------------------- */

json_t *
orr_scopes_to_json (const orr_scopes_t *self)
{
    json_t *arr = json_array ();
    for (size_t i = 0; i < self->size; i++)
        json_array_append_new (arr, json_string (self->items[i]));
    return arr;
}

orr_scopes_t *
orr_scopes_from_json (const json_t *array)
{
    orr_scopes_t *self = orr_scopes_new ();
    size_t i;
    json_t *v;
    if (json_is_array (array))
        json_array_foreach (array, i, v)
            if (json_is_string (v))
                orr_scopes_add (self, json_string_value (v));
    return self;
}
