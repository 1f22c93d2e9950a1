/*  fuzz_scopes: libFuzzer target for the scope algebra (lib/orr_scopes.c) and the
 *  expansion of the built-in roles (lib/orr_roles.c).
 *
 *  Input: up to MAX_LINES lines separated by '\n' (a NUL ends a line early; lines longer
 *  than MAX_LINE are skipped). Every line is tried as a scope (orr_scope_is_valid,
 *  orr_scopes_expand_into for owner user "alice" and for owner service "svc") and as a
 *  role name (orr_roles_expand). Set A is the expansion of the first half of the lines
 *  for "alice", set B of the second half for "bob"; targets (user, server, group or
 *  service) and any_of lists for orr_scopes_check come from the lines too (targets from
 *  the first MAX_TARGETS lines), plus a fixed few. Group membership answers from the
 *  small table s_membership. Sets are also round-tripped through JSON.
 *
 *  Invariants checked (abort() on violation, so libFuzzer reports the input):
 *   - a valid scope with a complete filter (or none) expands without error and the
 *     expansion contains the scope itself; an invalid scope (other than "self") is
 *     refused and adds nothing;
 *   - expansion is idempotent: expanding any member of an expanded set again, for the
 *     same owner, adds nothing;
 *   - orr_scopes_holds / orr_scopes_allows / orr_scopes_check agree with a linear-scan
 *     re-reading of the rules in orr_scopes.h (first held scope decides; unfiltered
 *     allows; a matching filter allows; otherwise 404; none held is 403), and a set that
 *     holds an unfiltered base always allows it;
 *   - intersect(A, B) only holds scopes of A or B, and each of them is allowed by both A
 *     and B for the target its own filter names; intersect(A, A) = A; intersecting with
 *     the unfiltered bases of A (either side) gives A;
 *   - orr_roles_expand: the built-in "token" role gives exactly the owner's scopes, "user"
 *     exactly the expansion of "self"; only built-in role names exist;
 *   - orr_scopes_from_json (orr_scopes_to_json (A)) = A when A's strings are UTF-8.
 *
 *  The process-wide custom-scope table is filled once, in LLVMFuzzerInitialize, so every
 *  input runs against the same state and crashes replay deterministically.
 */
#include "orr_roles.h"
#include "orr_scopes.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 48
#define MAX_LINE 700
#define MAX_TARGETS 8   /* targets made of lines (each costs a full pass of checks) */

/* For messages: a string that may be NULL. */
static const char *
s_or_empty (const char *s)
{
    return s ? s : "";
}

#define CHECK(cond, what, s)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf (stderr, "fuzz_scopes: invariant violated: %s\n  (%s) [%s]\n", what, #cond, \
                     s_or_empty (s));                                                 \
            abort ();                                                                 \
        }                                                                             \
    } while (0)

static orr_roles_t *s_roles;

/* (user, group) pairs: who is in which group. */
static const char *const s_membership[][2] = {
    { "alice", "staff" }, { "alice", "dev" }, { "bob", "dev" }, { "carol", "ops" }, { "svc", "dev" },
};

static bool
s_is_member (void *ctx, const char *user, const char *group)
{
    (void) ctx;
    for (size_t i = 0; i < sizeof s_membership / sizeof s_membership[0]; i++)
        if (strcmp (s_membership[i][0], user) == 0 && strcmp (s_membership[i][1], group) == 0)
            return true;
    return false;
}

/* Bases every check below is also asked about, whatever the input. */
static const char *const s_bases[] = {
    "admin:users", "users", "read:users", "list:users", "read:users:name", "read:users:groups",
    "read:users:activity", "users:activity", "read:servers", "servers", "delete:servers", "admin:servers",
    "access:servers", "tokens", "read:tokens", "groups", "read:groups", "list:groups", "read:groups:name",
    "admin:groups", "read:services", "read:services:name", "list:services", "access:services", "read:roles",
    "read:hub", "shutdown", "custom:fuzz", NULL,
};

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    orr_scopes_define_custom ("custom:fuzz");
    orr_scopes_define_custom ("custom:fuzz:more");
    char err[256];
    s_roles = orr_roles_new (NULL, err, sizeof err);
    if (!s_roles)
        abort ();
    return 0;
}

/* --- an independent, linear reading of the rules of orr_scopes.h ------------------------ */

/* Does set item `item` grant `base` to target t? */
static bool
s_oracle_item (const char *item, const char *base, const orr_scope_target_t *t)
{
    const char *bang = strchr (item, '!');
    size_t blen = bang ? (size_t) (bang - item) : strlen (item);
    if (blen != strlen (base) || memcmp (item, base, blen) != 0)
        return false;
    if (!bang)
        return true;
    const char *kind = bang + 1, *eq = strchr (kind, '=');
    if (!eq)
        return false;
    size_t klen = (size_t) (eq - kind);
    const char *value = eq + 1;
    char *server_user = NULL;
    const char *user = t->user;
    if (!user && t->server) {
        const char *slash = strchr (t->server, '/');
        server_user = strndup (t->server, slash ? (size_t) (slash - t->server) : 0);
        user = server_user;
    }
    bool ok = false;
    if (klen == 4 && memcmp (kind, "user", 4) == 0)
        ok = user && strcmp (user, value) == 0;
    else if (klen == 6 && memcmp (kind, "server", 6) == 0)
        ok = t->server && strcmp (t->server, value) == 0;
    else if (klen == 5 && memcmp (kind, "group", 5) == 0)
        ok = (t->group && strcmp (t->group, value) == 0) || (user && s_is_member (NULL, user, value));
    else if (klen == 7 && memcmp (kind, "service", 7) == 0)
        ok = t->service && strcmp (t->service, value) == 0;
    free (server_user);
    return ok;
}

static bool
s_oracle_holds (const orr_scopes_t *set, const char *base)
{
    for (size_t i = 0; i < orr_scopes_size (set); i++) {
        const char *item = orr_scopes_at (set, i);
        const char *bang = strchr (item, '!');
        size_t blen = bang ? (size_t) (bang - item) : strlen (item);
        if (blen == strlen (base) && memcmp (item, base, blen) == 0)
            return true;
    }
    return false;
}

static bool
s_oracle_allows (const orr_scopes_t *set, const char *base, const orr_scope_target_t *t)
{
    for (size_t i = 0; i < orr_scopes_size (set); i++)
        if (s_oracle_item (orr_scopes_at (set, i), base, t))
            return true;
    return false;
}

static orr_scope_decision_t
s_oracle_check (const orr_scopes_t *set, const char *const *any_of, const orr_scope_target_t *t)
{
    for (int i = 0; any_of[i]; i++) {
        if (!s_oracle_holds (set, any_of[i]))
            continue;
        return s_oracle_allows (set, any_of[i], t) ? ORR_SCOPE_ALLOW : ORR_SCOPE_NOT_FOUND;
    }
    return ORR_SCOPE_MISSING;
}

/* The target a set item's own filter names ({} when unfiltered or bare); base into base. */
static orr_scope_target_t
s_target_of (const char *item, char *base, size_t cap)
{
    orr_scope_target_t t = { 0 };
    const char *bang = strchr (item, '!');
    size_t blen = bang ? (size_t) (bang - item) : strlen (item);
    snprintf (base, cap, "%.*s", (int) blen, item);
    if (!bang)
        return t;
    const char *kind = bang + 1, *eq = strchr (kind, '=');
    if (!eq)
        return t;
    size_t klen = (size_t) (eq - kind);
    if (klen == 4 && memcmp (kind, "user", 4) == 0)
        t.user = eq + 1;
    else if (klen == 6 && memcmp (kind, "server", 6) == 0)
        t.server = eq + 1;
    else if (klen == 5 && memcmp (kind, "group", 5) == 0)
        t.group = eq + 1;
    else if (klen == 7 && memcmp (kind, "service", 7) == 0)
        t.service = eq + 1;
    return t;
}

/* --- helpers ---------------------------------------------------------------------------- */

static bool
s_same (const orr_scopes_t *a, const orr_scopes_t *b)
{
    if (orr_scopes_size (a) != orr_scopes_size (b))
        return false;
    for (size_t i = 0; i < orr_scopes_size (a); i++)
        if (strcmp (orr_scopes_at (a, i), orr_scopes_at (b, i)) != 0)
            return false;
    return true;
}

/* Expanding any member of `set` again, for the same owner, must add nothing. */
static void
s_check_idempotent (const orr_scopes_t *set, const char *kind, const char *name)
{
    char err[256];
    for (size_t i = 0; i < orr_scopes_size (set); i++) {
        /* "adds nothing" = the member's own expansion is inside the set */
        orr_scopes_t *again = orr_scopes_new ();
        orr_scopes_expand_into (again, orr_scopes_at (set, i), kind, name, err, sizeof err);
        for (size_t k = 0; k < orr_scopes_size (again); k++)
            CHECK (orr_scopes_contains (set, orr_scopes_at (again, k)),
                   "expansion is idempotent (re-expanding a member adds a scope)", orr_scopes_at (again, k));
        orr_scopes_destroy (&again);
    }
}

/* Expands one line for one owner, checks the expansion invariants; returns the set. */
static orr_scopes_t *
s_expand_line (const char *line, const char *kind, const char *name)
{
    char err[256];
    orr_scopes_t *set = orr_scopes_new ();
    bool valid = orr_scope_is_valid (line);
    int rc = orr_scopes_expand_into (set, line, kind, name, err, sizeof err);
    const char *bang = strchr (line, '!');
    bool complete = !bang || strchr (bang, '=') != NULL;
    if (strcmp (line, "self") != 0) {
        if (!valid) {
            CHECK (rc == -1, "an invalid scope is refused", line);
            CHECK (orr_scopes_size (set) == 0, "a refused scope adds nothing", line);
        }
        else if (complete) {
            CHECK (rc == 0, "a valid scope with a complete filter expands", line);
            CHECK (orr_scopes_contains (set, line), "an expansion holds the scope itself", line);
        }
    }
    if (rc == 0)
        s_check_idempotent (set, kind, name);
    return set;
}

static void
s_union (orr_scopes_t *into, const orr_scopes_t *from)
{
    for (size_t i = 0; i < orr_scopes_size (from); i++)
        orr_scopes_add (into, orr_scopes_at (from, i));
}

/* Checks holds/allows/check of `set` against the oracle for one target. */
static void
s_check_decisions (const orr_scopes_t *set, const orr_scope_target_t *t, const char *const *any_of)
{
    for (int i = 0; s_bases[i]; i++) {
        CHECK (orr_scopes_holds (set, s_bases[i]) == s_oracle_holds (set, s_bases[i]), "holds agrees with the oracle",
               s_bases[i]);
        CHECK (orr_scopes_allows (set, s_bases[i], t, s_is_member, NULL) == s_oracle_allows (set, s_bases[i], t),
               "allows agrees with the oracle", s_bases[i]);
    }
    CHECK (orr_scopes_check (set, any_of, t, s_is_member, NULL) == s_oracle_check (set, any_of, t),
           "check agrees with the oracle", any_of[0]);
    /* a held unfiltered base allows every target */
    for (size_t i = 0; i < orr_scopes_size (set); i++) {
        const char *item = orr_scopes_at (set, i);
        if (strchr (item, '!'))
            continue;
        const char *one[] = { item, NULL };
        CHECK (orr_scopes_check (set, one, t, s_is_member, NULL) == ORR_SCOPE_ALLOW,
               "check allows a base held unfiltered", item);
    }
}

static void
s_check_intersection (const orr_scopes_t *a, const orr_scopes_t *b)
{
    orr_scopes_t *x = orr_scopes_intersect (a, b, s_is_member, NULL);
    char base[MAX_LINE + 1];
    for (size_t i = 0; i < orr_scopes_size (x); i++) {
        const char *m = orr_scopes_at (x, i);
        CHECK (orr_scopes_contains (a, m) || orr_scopes_contains (b, m), "intersect(a, b) is within a or b", m);
        orr_scope_target_t t = s_target_of (m, base, sizeof base);
        CHECK (s_oracle_allows (a, base, &t), "a member of intersect(a, b) is allowed by a", m);
        CHECK (s_oracle_allows (b, base, &t), "a member of intersect(a, b) is allowed by b", m);
    }
    orr_scopes_destroy (&x);
}

static void
s_check_set_algebra (const orr_scopes_t *a)
{
    orr_scopes_t *self_x = orr_scopes_intersect (a, a, s_is_member, NULL);
    CHECK (s_same (self_x, a), "intersect(a, a) = a", orr_scopes_size (a) ? orr_scopes_at (a, 0) : "");
    orr_scopes_destroy (&self_x);
    orr_scopes_t *bases = orr_scopes_new ();
    char base[MAX_LINE + 1];
    for (size_t i = 0; i < orr_scopes_size (a); i++) {
        s_target_of (orr_scopes_at (a, i), base, sizeof base);
        orr_scopes_add (bases, base);
    }
    orr_scopes_t *left = orr_scopes_intersect (a, bases, s_is_member, NULL);
    orr_scopes_t *right = orr_scopes_intersect (bases, a, s_is_member, NULL);
    CHECK (s_same (left, a), "intersect(a, unfiltered bases of a) = a", "");
    CHECK (s_same (right, a), "intersect(unfiltered bases of a, a) = a", "");
    orr_scopes_destroy (&left);
    orr_scopes_destroy (&right);
    orr_scopes_destroy (&bases);
}

static void
s_check_roles (const char *const *lines, size_t n, const orr_scopes_t *owner_scopes)
{
    static const char *const builtin[] = { "user", "admin", "server", "token", NULL };
    char err[256];
    for (int i = 0; builtin[i]; i++) {
        orr_scopes_t *r = orr_scopes_new ();
        CHECK (orr_roles_expand (s_roles, builtin[i], "user", "alice", owner_scopes, r, err, sizeof err) == 0,
               "a built-in role expands", builtin[i]);
        if (strcmp (builtin[i], "token") == 0)
            CHECK (s_same (r, owner_scopes), "the token role is the owner's scopes", "");
        if (strcmp (builtin[i], "user") == 0) {
            orr_scopes_t *self = orr_scopes_new ();
            orr_scopes_expand_into (self, "self", "user", "alice", err, sizeof err);
            CHECK (s_same (r, self), "the user role is self", "");
            orr_scopes_destroy (&self);
        }
        if (strcmp (builtin[i], "token") != 0)
            s_check_idempotent (r, "user", "alice");
        orr_scopes_destroy (&r);
        r = orr_scopes_new ();
        orr_roles_expand (s_roles, builtin[i], "service", "svc", NULL, r, err, sizeof err);
        orr_scopes_destroy (&r);
    }
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (int k = 0; builtin[k]; k++)
            known = known || strcmp (lines[i], builtin[k]) == 0;
        orr_scopes_t *r = orr_scopes_new ();
        int rc = orr_roles_expand (s_roles, lines[i], "user", "alice", owner_scopes, r, err, sizeof err);
        CHECK ((rc == 0) == known, "only built-in roles exist", lines[i]);
        orr_scopes_destroy (&r);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *lines[MAX_LINES];
    size_t n = 0, pos = 0;
    while (pos <= size && n < MAX_LINES) {
        const uint8_t *nl = memchr (data + pos, '\n', size - pos);
        size_t len = nl ? (size_t) (nl - (data + pos)) : size - pos;
        if (len <= MAX_LINE)
            lines[n++] = strndup ((const char *) data + pos, len);
        pos += len + 1;
        if (!nl)
            break;
    }

    /* every line as a scope, for both kinds of owner */
    orr_scopes_t *a = orr_scopes_new (), *b = orr_scopes_new ();
    for (size_t i = 0; i < n; i++) {
        orr_scopes_t *u = s_expand_line (lines[i], "user", i < n / 2 ? "alice" : "bob");
        orr_scopes_t *s = s_expand_line (lines[i], "service", "svc");
        s_union (i < n / 2 ? a : b, u);
        orr_scopes_destroy (&u);
        orr_scopes_destroy (&s);
    }

    /* decisions: fixed targets, and targets made of the lines */
    orr_scope_target_t targets[MAX_TARGETS + 6] = {
        { .user = "alice" }, { .server = "alice/" }, { .group = "dev" }, { .service = "svc" }, { 0 },
        { .user = "bob", .server = "alice/x" },
    };
    size_t nt = 6;
    for (size_t i = 0; i < n && i < MAX_TARGETS; i++) {
        orr_scope_target_t t = { 0 };
        if (strchr (lines[i], '/'))
            t.server = lines[i];
        else if (i % 3 == 0)
            t.user = lines[i];
        else if (i % 3 == 1)
            t.group = lines[i];
        else
            t.service = lines[i];
        targets[nt++] = t;
    }
    /* any_of: the unfiltered lines of the second half, then a few real bases */
    const char *any_of[MAX_LINES + 4];
    size_t na = 0;
    for (size_t i = n / 2; i < n; i++)
        if (!strchr (lines[i], '!'))
            any_of[na++] = lines[i];
    any_of[na++] = "read:users";
    any_of[na++] = "read:users:name";
    any_of[na++] = "servers";
    any_of[na] = NULL;
    for (size_t i = 0; i < nt; i++) {
        s_check_decisions (a, &targets[i], any_of);
        s_check_decisions (b, &targets[i], any_of);
    }

    s_check_intersection (a, b);
    s_check_intersection (b, a);
    s_check_set_algebra (a);
    s_check_set_algebra (b);
    s_check_roles ((const char *const *) lines, n, a);

    /* JSON round trip of a set. Strings that are not UTF-8 cannot be JSON strings and are
     * left out by orr_scopes_to_json; real sets never hold one (every scope comes from
     * JSON or from a validated name), so only UTF-8 sets must survive whole. */
    bool utf8 = true;
    for (size_t i = 0; i < orr_scopes_size (a) && utf8; i++) {
        json_t *s = json_string (orr_scopes_at (a, i));
        utf8 = s != NULL;
        json_decref (s);
    }
    json_t *j = orr_scopes_to_json (a);
    orr_scopes_t *back = orr_scopes_from_json (j);
    if (utf8)
        CHECK (s_same (back, a), "orr_scopes_from_json (orr_scopes_to_json (a)) = a", "");
    orr_scopes_destroy (&back);
    json_decref (j);

    orr_scopes_destroy (&a);
    orr_scopes_destroy (&b);
    for (size_t i = 0; i < n; i++)
        free (lines[i]);
    return 0;
}
