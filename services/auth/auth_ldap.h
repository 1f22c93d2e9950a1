/*  auth_ldap: decides a login against an LDAP directory (OpenLDAP's libldap).
 *
 *  The user's DN comes from bind DN templates ("uid={username},ou=people,dc=example,dc=org",
 *  tried in order) and, when none accepts the password and a search base is set, from a
 *  search (anonymous or as a service account); the password is then checked by a simple
 *  bind as that DN. Optionally the user must be in one of a list of groups. Every call
 *  opens its own connection and closes it, so a directory that restarts needs nothing
 *  from us. Usernames are checked against a pattern, and escaped (RFC 4514 inside DNs,
 *  RFC 4515 inside filters) before they reach the directory; empty passwords are refused
 *  before any bind, since LDAP treats them as an anonymous bind that "succeeds".
 *
 *  LDAP compares uids case-insensitively and ignores insignificant spaces, so "ALICE" can
 *  authenticate as alice: normalising the name (e.g. lower case) is the caller's job.
 *  libldap writes sockets with write(2): the process must ignore SIGPIPE (every Orrery
 *  service does, through orr_signal).
 */
#ifndef AUTH_LDAP_H
#define AUTH_LDAP_H

#include "orr_config.h"

#include <stdbool.h>
#include <stddef.h>

/* The pattern a username must match in full unless LDAP_USERNAME_PATTERN says otherwise:
 * letters, digits, . _ @ ' - and inner spaces and commas; no leading or trailing space. */
#define AUTH_LDAP_DEFAULT_USERNAME_PATTERN "[a-zA-Z0-9._@'-]([a-zA-Z0-9._@' ,-]*[a-zA-Z0-9._@'-])?"
#define AUTH_LDAP_DEFAULT_SEARCH_FILTER "({user_attribute}={username})"
#define AUTH_LDAP_DEFAULT_TIMEOUT_MS 5000
/* Longer usernames are refused without asking the directory. */
#define AUTH_LDAP_USERNAME_MAX 256

typedef struct {
    const char *url;                 /* "ldap://host:port" or "ldaps://..."; several space-separated are tried in order */
    char **bind_dn_templates;        /* NULL, or NULL-terminated; each contains "{username}" (replaced by the DN-escaped name) */
    const char *search_base;         /* when set and no template accepted the password: find the DN by a subtree search */
    const char *search_filter;       /* default "({user_attribute}={username})"; must contain {username} (filter-escaped) */
    const char *user_attribute;      /* default "uid" */
    const char *search_bind_dn;      /* service account for the search and the group check; anonymous when NULL */
    const char *search_bind_password;
    char **allowed_groups;           /* NULL, or NULL-terminated group DNs: the user must be in one (member, uniqueMember or memberUid) */
    bool starttls;                   /* StartTLS on ldap:// URLs (not allowed with ldaps://) */
    const char *ca_file;             /* CA certificates (PEM) to verify the server with; NULL = libldap's default */
    bool tls_verify;                 /* false = accept any server certificate: INSECURE, for tests only */
    int timeout_ms;                  /* bound on every network step and every LDAP operation; 0 = 5000 */
    const char *username_pattern;    /* POSIX extended regex the whole username must match; NULL = the default above */
} auth_ldap_opts_t;

typedef enum {
    AUTH_LDAP_OK = 0,                /* password right, user allowed */
    AUTH_LDAP_DENIED = 1,            /* anything the user got wrong or is not allowed: show a generic message */
    AUTH_LDAP_UNAVAILABLE = -1       /* could not decide: server unreachable, timed out, or failed (err says which) */
} auth_ldap_result_t;

typedef struct auth_ldap_t auth_ldap_t;

/* Copies opts. Returns NULL, with the reason logged, on bad options: no URL or an invalid
 * one, no template and no search base, a template without {username}, a filter without
 * {username}, a bad pattern, a service DN without a password, StartTLS with ldaps://, an
 * unreadable CA file, a negative timeout. */
auth_ldap_t *auth_ldap_new (const auth_ldap_opts_t *opts);
void auth_ldap_destroy (auth_ldap_t **self_p);

/* Decides one login. `username` is `username_len` bytes (a NUL inside is refused);
 * `password` is a C string. DENIED for a wrong password, an unknown or ambiguous user, a
 * user outside allowed_groups, an empty password, a username that is empty, too long, or
 * fails the pattern. UNAVAILABLE when the server cannot be reached, times out (each
 * operation is bounded by timeout_ms) or answers with an error that says nothing about the
 * user. `err` (may be NULL) receives a one-line reason in every case but OK, e.g. "LDAP
 * server unavailable: Can't contact LDAP server"; a DENIED reason is for logs, not for the
 * user, while an UNAVAILABLE one is fit to show (details go to the log). Passwords are
 * never logged. Calls may run in parallel threads: the object is read-only after
 * auth_ldap_new and each call has its own connection. */
auth_ldap_result_t auth_ldap_authenticate (auth_ldap_t *self, const char *username, size_t username_len,
                                           const char *password, char *err, size_t errlen);

/* RFC 4515 escaping of a value inside a search filter: * ( ) \ and NUL become \2a \28 \29
 * \5c \00. Caller frees. */
char *auth_ldap_escape_filter (const char *value, size_t len);
/* RFC 4514 escaping of a DN attribute value: , + " \ < > ; = get a backslash, as do a
 * leading space or '#' and a trailing space; NUL becomes \00. Caller frees. */
char *auth_ldap_escape_dn (const char *value, size_t len);

/* The settings read by auth_ldap_new_from_config (NULL-name terminated), to be merged into
 * the auth service's table: LDAP_URL, LDAP_BIND_DN_TEMPLATE, LDAP_SEARCH_BASE,
 * LDAP_SEARCH_FILTER, LDAP_USER_ATTRIBUTE, LDAP_SEARCH_BIND_DN, LDAP_SEARCH_BIND_PASSWORD,
 * LDAP_ALLOWED_GROUPS, LDAP_STARTTLS, LDAP_CA_FILE, LDAP_TLS_VERIFY, LDAP_TIMEOUT_MS,
 * LDAP_USERNAME_PATTERN. */
extern const orr_setting_t auth_ldap_settings[];

/* Builds an authenticator from a loaded config that declares auth_ldap_settings; NULL,
 * with the reason logged as an error, when a setting is missing or bad (LDAP_URL unset, a
 * boolean that is not true/false/yes/no/on/off/1/0, ...). */
auth_ldap_t *auth_ldap_new_from_config (orr_config_t *config);

#endif
