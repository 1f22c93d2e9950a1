/*  auth_ldap: the LDAP authenticator of the auth service (libldap, simple binds).
 *
 *  Owns the whole conversation with the directory for one login: opening a connection
 *  (protocol 3, no referral chasing, timeouts on connecting and on every operation,
 *  optional StartTLS), finding the user's DN (bind DN templates first, then a subtree
 *  search, anonymous or as a service account), checking the password by binding as that
 *  DN, and checking group membership. It also owns the escaping that keeps a username
 *  from changing the meaning of a DN (RFC 4514) or a filter (RFC 4515), and the
 *  ORRERY_LDAP_* settings.
 *
 *  Why a fresh connection per login: a replica of the auth service decides one request
 *  at a time, a bind is cheap next to a login's other costs, and a connection that lives
 *  only for the call carries no state across a directory restart, a failover to the next
 *  URL or a half-dead socket. Why the empty password is refused here and not left to the
 *  server: RFC 4513 5.1.2 makes "DN + empty password" an unauthenticated bind, which many
 *  servers answer with success.
 *
 *  Result classes: an answer about the user (wrong password, no such entry, not allowed)
 *  is DENIED; anything that keeps us from deciding (unreachable, timed out, the service
 *  account refused, a server error) is UNAVAILABLE, so that the gateway says "try later"
 *  instead of "wrong password" and nothing is ever let in by an error.
 */
#include "auth_ldap.h"
#include "orr_log.h"
#include "orr_util.h"

#include <ldap.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define USERNAME_TOKEN "{username}"
#define USER_ATTRIBUTE_TOKEN "{user_attribute}"

struct auth_ldap_t {
    char *url;                   /* space-separated list, as ldap_initialize takes it */
    char **bind_dn_templates;    /* NULL-terminated, possibly empty */
    char *search_base;           /* NULL = no search */
    char *search_filter;         /* {user_attribute} already replaced; {username} left */
    char *search_bind_dn;        /* NULL = anonymous search */
    char *search_bind_password;
    char **allowed_groups;       /* NULL-terminated, possibly empty (= no group check) */
    bool starttls;
    bool uses_tls;               /* StartTLS or an ldaps:// URL */
    char *ca_file;
    bool tls_verify;
    int timeout_ms;
    regex_t username_re;         /* "^(" pattern ")$" */
    bool username_re_ready;
};

const orr_setting_t auth_ldap_settings[] = {
    { "LDAP_URL", NULL, "LDAP server URL(s), space-separated, tried in order: ldap://HOST:PORT or ldaps://HOST:PORT" },
    { "LDAP_BIND_DN_TEMPLATE", NULL,
      "';'-separated DN templates tried in order, {username} = the escaped name, e.g. uid={username},ou=people,dc=example,dc=org" },
    { "LDAP_SEARCH_BASE", NULL, "when set, a user no template accepted is looked up by a subtree search under this DN" },
    { "LDAP_SEARCH_FILTER", AUTH_LDAP_DEFAULT_SEARCH_FILTER, "filter of that search ({username} = the escaped name)" },
    { "LDAP_USER_ATTRIBUTE", "uid", "attribute holding the username ({user_attribute} in the filter)" },
    { "LDAP_SEARCH_BIND_DN", NULL, "service account for the search and the group check (anonymous when unset)" },
    { "LDAP_SEARCH_BIND_PASSWORD", NULL, "password of LDAP_SEARCH_BIND_DN" },
    { "LDAP_ALLOWED_GROUPS", NULL,
      "';'-separated group DNs; when set only their members (member, uniqueMember or memberUid) may log in" },
    { "LDAP_STARTTLS", "false", "upgrade ldap:// connections with StartTLS" },
    { "LDAP_CA_FILE", NULL, "CA certificates (PEM) to verify the server's certificate with" },
    { "LDAP_TLS_VERIFY", "true", "verify the server's TLS certificate; false is INSECURE (tests only)" },
    { "LDAP_TIMEOUT_MS", "5000", "bound on connecting and on each LDAP operation of a login" },
    { "LDAP_USERNAME_PATTERN", AUTH_LDAP_DEFAULT_USERNAME_PATTERN,
      "POSIX extended regex a username must match in full before it reaches the directory" },
    { NULL, NULL, NULL }
};

/* ---------------------------------------------------------------------------------------
 * Escaping
 */

static char *
s_hex_escape (char *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '\\';
    *out++ = hex[c >> 4];
    *out++ = hex[c & 15];
    return out;
}

char *
auth_ldap_escape_filter (const char *value, size_t len)
{
    if (!value)
        len = 0;
    char *out = orr_zalloc (3 * len + 1);
    char *p = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) value[i];
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0')
            p = s_hex_escape (p, c);
        else
            *p++ = (char) c;
    }
    *p = '\0';
    return out;
}

char *
auth_ldap_escape_dn (const char *value, size_t len)
{
    if (!value)
        len = 0;
    char *out = orr_zalloc (3 * len + 1);
    char *p = out;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (c == '\0')
            p = s_hex_escape (p, 0);
        else if (strchr (",+\"\\<>;=", c) || (i == 0 && (c == ' ' || c == '#')) || (i == len - 1 && c == ' ')) {
            *p++ = '\\';
            *p++ = c;
        }
        else
            *p++ = c;
    }
    *p = '\0';
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

static void
s_err (char *err, size_t errlen, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_err (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (err, errlen, fmt, ap);
    va_end (ap);
}

/* Every occurrence of `token` in `tmpl` replaced by `value`, in a new string. */
static char *
s_substitute (const char *tmpl, const char *token, const char *value)
{
    size_t token_len = strlen (token), value_len = strlen (value), count = 0;
    for (const char *p = strstr (tmpl, token); p; p = strstr (p + token_len, token))
        count++;
    char *out = orr_zalloc (strlen (tmpl) + count * value_len + 1);
    char *o = out;
    const char *p = tmpl;
    for (const char *hit = strstr (p, token); hit; hit = strstr (p, token)) {
        memcpy (o, p, (size_t) (hit - p));
        o += hit - p;
        memcpy (o, value, value_len);
        o += value_len;
        p = hit + token_len;
    }
    strcpy (o, p);
    return out;
}

static size_t
s_strv_len (char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* A NULL-terminated copy of `v` (NULL gives an empty list), skipping empty strings. */
static char **
s_strv_copy (char **v)
{
    char **out = orr_zalloc ((s_strv_len (v) + 1) * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; v && v[i]; i++)
        if (*v[i])
            out[k++] = orr_strdup (v[i]);
    return out;
}

static char *
s_strdup_nonempty (const char *s)
{
    return s && *s ? orr_strdup (s) : NULL;
}

static bool
s_dn_valid (const char *dn)
{
    LDAPDN parsed = NULL;
    if (ldap_str2dn (dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return false;
    ldap_dnfree (parsed);
    return true;
}

static struct timeval
s_timeval (int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return tv;
}

/* ---------------------------------------------------------------------------------------
 * Construction
 */

/* Checks the URL list; sets *has_ldaps. */
static bool
s_urls_valid (const char *url, bool *has_ldaps)
{
    size_t count = 0;
    char **urls = orr_split (url, ' ', &count);
    bool ok = count > 0;
    *has_ldaps = false;
    for (size_t i = 0; ok && urls[i]; i++) {
        LDAPURLDesc *desc = NULL;
        if (ldap_url_parse (urls[i], &desc) != LDAP_URL_SUCCESS) {
            orr_error ("LDAP: '%s' is not an LDAP URL (ORRERY_LDAP_URL)", urls[i]);
            ok = false;
            break;
        }
        if (desc->lud_scheme && strcasecmp (desc->lud_scheme, "ldaps") == 0)
            *has_ldaps = true;
        ldap_free_urldesc (desc);
    }
    orr_strv_free (&urls);
    return ok;
}

auth_ldap_t *
auth_ldap_new (const auth_ldap_opts_t *opts)
{
    if (!opts || !opts->url || !*opts->url) {
        orr_error ("LDAP: no server URL (ORRERY_LDAP_URL)");
        return NULL;
    }
    auth_ldap_t *self = orr_zalloc (sizeof *self);
    bool has_ldaps = false;
    if (!s_urls_valid (opts->url, &has_ldaps))
        goto fail;
    self->url = orr_strdup (opts->url);

    self->bind_dn_templates = s_strv_copy (opts->bind_dn_templates);
    for (char **t = self->bind_dn_templates; *t; t++)
        if (!strstr (*t, USERNAME_TOKEN)) {
            orr_error ("LDAP: bind DN template '%s' has no " USERNAME_TOKEN " (ORRERY_LDAP_BIND_DN_TEMPLATE)", *t);
            goto fail;
        }

    self->search_base = s_strdup_nonempty (opts->search_base);
    if (!self->bind_dn_templates[0] && !self->search_base) {
        orr_error ("LDAP: set ORRERY_LDAP_BIND_DN_TEMPLATE, ORRERY_LDAP_SEARCH_BASE or both");
        goto fail;
    }
    if (self->search_base && !s_dn_valid (self->search_base)) {
        orr_error ("LDAP: search base '%s' is not a DN (ORRERY_LDAP_SEARCH_BASE)", self->search_base);
        goto fail;
    }

    const char *attribute = opts->user_attribute && *opts->user_attribute ? opts->user_attribute : "uid";
    if (strspn (attribute, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.;") != strlen (attribute)) {
        orr_error ("LDAP: '%s' is not an attribute name (ORRERY_LDAP_USER_ATTRIBUTE)", attribute);
        goto fail;
    }
    const char *filter = opts->search_filter && *opts->search_filter ? opts->search_filter : AUTH_LDAP_DEFAULT_SEARCH_FILTER;
    if (!strstr (filter, USERNAME_TOKEN)) {
        /* a filter that ignores the name would find the same entry for everyone */
        orr_error ("LDAP: search filter '%s' has no " USERNAME_TOKEN " (ORRERY_LDAP_SEARCH_FILTER)", filter);
        goto fail;
    }
    self->search_filter = s_substitute (filter, USER_ATTRIBUTE_TOKEN, attribute);

    self->search_bind_dn = s_strdup_nonempty (opts->search_bind_dn);
    if (self->search_bind_dn) {
        if (!opts->search_bind_password || !*opts->search_bind_password) {
            /* an empty password would make the "service bind" an anonymous one */
            orr_error ("LDAP: ORRERY_LDAP_SEARCH_BIND_DN is set but ORRERY_LDAP_SEARCH_BIND_PASSWORD is empty");
            goto fail;
        }
        if (!s_dn_valid (self->search_bind_dn)) {
            orr_error ("LDAP: '%s' is not a DN (ORRERY_LDAP_SEARCH_BIND_DN)", self->search_bind_dn);
            goto fail;
        }
        self->search_bind_password = orr_strdup (opts->search_bind_password);
    }

    self->allowed_groups = s_strv_copy (opts->allowed_groups);
    for (char **g = self->allowed_groups; *g; g++)
        if (!s_dn_valid (*g)) {
            orr_error ("LDAP: allowed group '%s' is not a DN (ORRERY_LDAP_ALLOWED_GROUPS)", *g);
            goto fail;
        }

    self->starttls = opts->starttls;
    if (self->starttls && has_ldaps) {
        orr_error ("LDAP: StartTLS (ORRERY_LDAP_STARTTLS) is for ldap:// URLs; ldaps:// is TLS already");
        goto fail;
    }
    self->uses_tls = self->starttls || has_ldaps;
    self->ca_file = s_strdup_nonempty (opts->ca_file);
    if (self->ca_file && access (self->ca_file, R_OK) != 0) {
        orr_error ("LDAP: CA file %s cannot be read (ORRERY_LDAP_CA_FILE)", self->ca_file);
        goto fail;
    }
    self->tls_verify = opts->tls_verify;
    if (self->uses_tls && !self->tls_verify)
        orr_warn ("LDAP: server certificates are NOT verified (ORRERY_LDAP_TLS_VERIFY=false): anyone on the path "
                  "can read the passwords; use this for tests only");

    if (opts->timeout_ms < 0) {
        orr_error ("LDAP: the timeout must be positive (ORRERY_LDAP_TIMEOUT_MS)");
        goto fail;
    }
    self->timeout_ms = opts->timeout_ms ? opts->timeout_ms : AUTH_LDAP_DEFAULT_TIMEOUT_MS;

    const char *pattern = opts->username_pattern && *opts->username_pattern ? opts->username_pattern
                                                                              : AUTH_LDAP_DEFAULT_USERNAME_PATTERN;
    char *anchored = orr_sprintf ("^(%s)$", pattern);
    int rc = regcomp (&self->username_re, anchored, REG_EXTENDED | REG_NOSUB);
    free (anchored);
    if (rc != 0) {
        char why[128];
        regerror (rc, &self->username_re, why, sizeof why);
        orr_error ("LDAP: username pattern '%s' is not a valid extended regex: %s (ORRERY_LDAP_USERNAME_PATTERN)", pattern, why);
        goto fail;
    }
    self->username_re_ready = true;
    return self;

fail:
    auth_ldap_destroy (&self);
    return NULL;
}

void
auth_ldap_destroy (auth_ldap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    auth_ldap_t *self = *self_p;
    free (self->url);
    orr_strv_free (&self->bind_dn_templates);
    free (self->search_base);
    free (self->search_filter);
    free (self->search_bind_dn);
    if (self->search_bind_password) {
        explicit_bzero (self->search_bind_password, strlen (self->search_bind_password));
        free (self->search_bind_password);
    }
    orr_strv_free (&self->allowed_groups);
    free (self->ca_file);
    if (self->username_re_ready)
        regfree (&self->username_re);
    free (self);
    *self_p = NULL;
}

/* Accepts true/false, yes/no, on/off, 1/0; anything else is an error (a typo must not
 * turn certificate checks off). */
static int
s_config_bool (orr_config_t *config, const char *name, bool *out)
{
    const char *v = orr_config_get (config, name);
    if (!v)
        return 0;   /* unset and no default: leave *out */
    if (!strcasecmp (v, "true") || !strcasecmp (v, "yes") || !strcasecmp (v, "on") || !strcmp (v, "1"))
        *out = true;
    else if (!strcasecmp (v, "false") || !strcasecmp (v, "no") || !strcasecmp (v, "off") || !strcmp (v, "0"))
        *out = false;
    else {
        orr_error ("ORRERY_%s must be true or false, not '%s'", name, v);
        return -1;
    }
    return 0;
}

/* ';'-separated list, or NULL when unset or empty. */
static char **
s_config_list (orr_config_t *config, const char *name)
{
    const char *v = orr_config_get (config, name);
    size_t count = 0;
    char **list = orr_split (v, ';', &count);
    if (count == 0)
        orr_strv_free (&list);
    return list;
}

auth_ldap_t *
auth_ldap_new_from_config (orr_config_t *config)
{
    auth_ldap_opts_t opts = { .tls_verify = true };
    const char *url = orr_config_get (config, "LDAP_URL");
    if (!url || !*url) {
        orr_error ("LDAP: ORRERY_LDAP_URL is not set");
        return NULL;
    }
    if (s_config_bool (config, "LDAP_STARTTLS", &opts.starttls) != 0
        || s_config_bool (config, "LDAP_TLS_VERIFY", &opts.tls_verify) != 0)
        return NULL;
    long timeout_ms = orr_config_int (config, "LDAP_TIMEOUT_MS");
    if (timeout_ms <= 0 || timeout_ms > 600000) {
        orr_error ("ORRERY_LDAP_TIMEOUT_MS must be between 1 and 600000, not %ld", timeout_ms);
        return NULL;
    }
    char **templates = s_config_list (config, "LDAP_BIND_DN_TEMPLATE");
    char **groups = s_config_list (config, "LDAP_ALLOWED_GROUPS");
    opts.url = url;
    opts.bind_dn_templates = templates;
    opts.search_base = orr_config_get (config, "LDAP_SEARCH_BASE");
    opts.search_filter = orr_config_get (config, "LDAP_SEARCH_FILTER");
    opts.user_attribute = orr_config_get (config, "LDAP_USER_ATTRIBUTE");
    opts.search_bind_dn = orr_config_get (config, "LDAP_SEARCH_BIND_DN");
    opts.search_bind_password = orr_config_get (config, "LDAP_SEARCH_BIND_PASSWORD");
    opts.allowed_groups = groups;
    opts.ca_file = orr_config_get (config, "LDAP_CA_FILE");
    opts.timeout_ms = (int) timeout_ms;
    opts.username_pattern = orr_config_get (config, "LDAP_USERNAME_PATTERN");
    auth_ldap_t *self = auth_ldap_new (&opts);
    orr_strv_free (&templates);
    orr_strv_free (&groups);
    if (self)
        orr_info ("LDAP authenticator: %s, %zu bind DN template(s)%s%s, %zu allowed group(s)%s", self->url,
                  s_strv_len (self->bind_dn_templates), self->search_base ? ", search under " : "",
                  self->search_base ? self->search_base : "", s_strv_len (self->allowed_groups),
                  self->starttls ? ", StartTLS" : "");
    return self;
}

/* ---------------------------------------------------------------------------------------
 * One login
 */

/* Result codes that are an answer about the user rather than a failure to decide. */
static bool
s_rc_is_denial (int rc)
{
    switch (rc) {
    case LDAP_INVALID_CREDENTIALS:   /* wrong password, or no such DN */
    case LDAP_INVALID_DN_SYNTAX:
    case LDAP_NO_SUCH_OBJECT:
    case LDAP_INAPPROPRIATE_AUTH:    /* the entry has no password */
    case LDAP_UNWILLING_TO_PERFORM:  /* e.g. a disabled account */
    case LDAP_INSUFFICIENT_ACCESS:
    case LDAP_CONSTRAINT_VIOLATION:  /* e.g. password policy lockout */
        return true;
    default:
        return false;
    }
}

/* Logs what failed (with the server's diagnostic) and words `err` for the user. */
static auth_ldap_result_t
s_unavailable (LDAP *ld, int rc, const char *what, const char *name, char *err, size_t errlen)
{
    char *diag = NULL;
    if (ld)
        ldap_get_option (ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    orr_warn ("LDAP: %s failed for user '%s': %s (%d)%s%s", what, name, ldap_err2string (rc), rc,
              diag && *diag ? ": " : "", diag && *diag ? diag : "");
    if (diag)
        ldap_memfree (diag);
    s_err (err, errlen, "LDAP server unavailable: %s", ldap_err2string (rc));
    return AUTH_LDAP_UNAVAILABLE;
}

static int
s_bind (LDAP *ld, const char *dn, const char *password)
{
    struct berval cred = { .bv_len = strlen (password), .bv_val = (char *) password };
    /* bounded by LDAP_OPT_TIMEOUT (set in s_open): the synchronous calls wait that long */
    return ldap_sasl_bind_s (ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* A connection with every option set, StartTLS done when asked. The TCP connection itself
 * is made by the first operation (StartTLS or a bind), bounded by the network timeout. */
static auth_ldap_result_t
s_open (auth_ldap_t *self, LDAP **ld_p, const char *name, char *err, size_t errlen)
{
    LDAP *ld = NULL;
    int rc = ldap_initialize (&ld, self->url);
    if (rc != LDAP_SUCCESS)
        return s_unavailable (NULL, rc, "initialising the connection", name, err, errlen);
    *ld_p = ld;
    int version = LDAP_VERSION3;
    struct timeval tv = s_timeval (self->timeout_ms);
    if (ldap_set_option (ld, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS
        || ldap_set_option (ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS
        || ldap_set_option (ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != LDAP_OPT_SUCCESS
        || ldap_set_option (ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS)
        return s_unavailable (ld, LDAP_LOCAL_ERROR, "setting connection options", name, err, errlen);
    if (self->uses_tls) {
        /* options on this handle, then a context of its own so they take effect */
        int require = self->tls_verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
        int is_server = 0;
        if (ldap_set_option (ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require) != LDAP_OPT_SUCCESS
            || (self->ca_file && ldap_set_option (ld, LDAP_OPT_X_TLS_CACERTFILE, self->ca_file) != LDAP_OPT_SUCCESS)
            || ldap_set_option (ld, LDAP_OPT_X_TLS_NEWCTX, &is_server) != LDAP_OPT_SUCCESS)
            return s_unavailable (ld, LDAP_LOCAL_ERROR, "setting up TLS", name, err, errlen);
    }
    if (self->starttls) {
        rc = ldap_start_tls_s (ld, NULL, NULL);
        if (rc != LDAP_SUCCESS)
            return s_unavailable (ld, rc, "StartTLS", name, err, errlen);
    }
    return AUTH_LDAP_OK;
}

/* Binds as the service account (or stays anonymous without one). */
static auth_ldap_result_t
s_bind_service (auth_ldap_t *self, LDAP *ld, const char *name, char *err, size_t errlen)
{
    if (!self->search_bind_dn)
        return AUTH_LDAP_OK;   /* after a failed bind the connection is anonymous (RFC 4511 4.2.1) */
    int rc = s_bind (ld, self->search_bind_dn, self->search_bind_password);
    if (rc == LDAP_SUCCESS)
        return AUTH_LDAP_OK;
    /* even "invalid credentials" here is the operator's problem, not the user's */
    return s_unavailable (ld, rc, "binding as the lookup account (ORRERY_LDAP_SEARCH_BIND_DN)", name, err, errlen);
}

/* Finds the user's DN by search; *dn_p is set only when exactly one entry matches. */
static auth_ldap_result_t
s_search_user (auth_ldap_t *self, LDAP *ld, const char *name, char **dn_p, char *err, size_t errlen)
{
    auth_ldap_result_t result = s_bind_service (self, ld, name, err, errlen);
    if (result != AUTH_LDAP_OK)
        return result;
    char *value = auth_ldap_escape_filter (name, strlen (name));
    char *filter = s_substitute (self->search_filter, USERNAME_TOKEN, value);
    free (value);
    char *attrs[] = { LDAP_NO_ATTRS, NULL };
    struct timeval tv = s_timeval (self->timeout_ms);
    LDAPMessage *res = NULL;
    /* a size limit of 2 is enough to see that a name is ambiguous */
    int rc = ldap_search_ext_s (ld, self->search_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv, 2, &res);
    int entries = res ? ldap_count_entries (ld, res) : 0;
    if (rc == LDAP_SIZELIMIT_EXCEEDED || (rc == LDAP_SUCCESS && entries > 1)) {
        orr_warn ("LDAP: %s under %s matches several entries; refusing the login", filter, self->search_base);
        s_err (err, errlen, "username matches several directory entries");
        result = AUTH_LDAP_DENIED;
    }
    else if (rc != LDAP_SUCCESS)
        result = s_unavailable (ld, rc, "looking the user up", name, err, errlen);
    else if (entries == 0) {
        s_err (err, errlen, "no such user");
        result = AUTH_LDAP_DENIED;
    }
    else {
        char *dn = ldap_get_dn (ld, ldap_first_entry (ld, res));
        if (dn) {
            *dn_p = orr_strdup (dn);
            ldap_memfree (dn);
        }
        else
            result = s_unavailable (ld, LDAP_DECODING_ERROR, "reading the user's DN", name, err, errlen);
    }
    if (res)
        ldap_msgfree (res);
    free (filter);
    return result;
}

/* Finds the user's DN and binds as it with the password; *dn_p set on OK. */
static auth_ldap_result_t
s_bind_user (auth_ldap_t *self, LDAP *ld, const char *name, const char *password, char **dn_p, char *err,
             size_t errlen)
{
    char *value = auth_ldap_escape_dn (name, strlen (name));
    for (char **t = self->bind_dn_templates; *t; t++) {
        char *dn = s_substitute (*t, USERNAME_TOKEN, value);
        int rc = s_bind (ld, dn, password);
        if (rc == LDAP_SUCCESS) {
            *dn_p = dn;
            free (value);
            return AUTH_LDAP_OK;
        }
        free (dn);
        if (!s_rc_is_denial (rc)) {
            free (value);
            return s_unavailable (ld, rc, "bind", name, err, errlen);
        }
    }
    free (value);
    if (!self->search_base) {
        s_err (err, errlen, "invalid credentials");
        return AUTH_LDAP_DENIED;
    }
    char *dn = NULL;
    auth_ldap_result_t result = s_search_user (self, ld, name, &dn, err, errlen);
    if (result != AUTH_LDAP_OK)
        return result;
    int rc = s_bind (ld, dn, password);
    if (rc == LDAP_SUCCESS) {
        *dn_p = dn;
        return AUTH_LDAP_OK;
    }
    free (dn);
    if (s_rc_is_denial (rc)) {
        s_err (err, errlen, "invalid credentials");
        return AUTH_LDAP_DENIED;
    }
    return s_unavailable (ld, rc, "bind", name, err, errlen);
}

/* OK when the user is in at least one allowed group. Runs as the service account when
 * there is one, otherwise on the user's own bind. */
static auth_ldap_result_t
s_check_groups (auth_ldap_t *self, LDAP *ld, const char *name, const char *user_dn, char *err, size_t errlen)
{
    auth_ldap_result_t result = s_bind_service (self, ld, name, err, errlen);
    if (result != AUTH_LDAP_OK)
        return result;
    char *dn_value = auth_ldap_escape_filter (user_dn, strlen (user_dn));
    char *name_value = auth_ldap_escape_filter (name, strlen (name));
    char *filter = orr_sprintf ("(|(member=%s)(uniqueMember=%s)(memberUid=%s))", dn_value, dn_value, name_value);
    free (dn_value);
    free (name_value);
    char *attrs[] = { LDAP_NO_ATTRS, NULL };
    struct timeval tv = s_timeval (self->timeout_ms);
    result = AUTH_LDAP_DENIED;
    s_err (err, errlen, "not a member of an allowed group");
    for (char **g = self->allowed_groups; *g; g++) {
        LDAPMessage *res = NULL;
        int rc = ldap_search_ext_s (ld, *g, LDAP_SCOPE_BASE, filter, attrs, 0, NULL, NULL, &tv, 1, &res);
        int entries = res ? ldap_count_entries (ld, res) : 0;
        if (res)
            ldap_msgfree (res);
        if (rc == LDAP_SUCCESS && entries > 0) {
            result = AUTH_LDAP_OK;
            break;
        }
        if (rc == LDAP_NO_SUCH_OBJECT)
            orr_warn ("LDAP: allowed group %s does not exist or cannot be read (ORRERY_LDAP_ALLOWED_GROUPS)", *g);
        else if (rc != LDAP_SUCCESS) {
            result = s_unavailable (ld, rc, "checking group membership", name, err, errlen);
            break;
        }
    }
    free (filter);
    return result;
}

auth_ldap_result_t
auth_ldap_authenticate (auth_ldap_t *self, const char *username, size_t username_len, const char *password,
                        char *err, size_t errlen)
{
    s_err (err, errlen, "%s", "");
    if (!self) {
        s_err (err, errlen, "LDAP server unavailable: no LDAP authenticator configured");
        return AUTH_LDAP_UNAVAILABLE;
    }
    /* refusals that never reach the directory */
    if (!username || username_len == 0) {
        s_err (err, errlen, "empty username");
        return AUTH_LDAP_DENIED;
    }
    if (username_len > AUTH_LDAP_USERNAME_MAX) {
        s_err (err, errlen, "username longer than %d bytes", AUTH_LDAP_USERNAME_MAX);
        return AUTH_LDAP_DENIED;
    }
    if (memchr (username, '\0', username_len)) {
        s_err (err, errlen, "username contains a NUL byte");
        return AUTH_LDAP_DENIED;
    }
    if (!password || !*password) {
        s_err (err, errlen, "empty password");   /* it would be an anonymous bind */
        return AUTH_LDAP_DENIED;
    }
    char *name = orr_strndup (username, username_len);
    if (regexec (&self->username_re, name, 0, NULL, 0) != 0) {
        orr_debug ("LDAP: username '%s' does not match ORRERY_LDAP_USERNAME_PATTERN", name);
        s_err (err, errlen, "username does not match the allowed pattern");
        free (name);
        return AUTH_LDAP_DENIED;
    }

    LDAP *ld = NULL;
    char *user_dn = NULL;
    auth_ldap_result_t result = s_open (self, &ld, name, err, errlen);
    if (result == AUTH_LDAP_OK)
        result = s_bind_user (self, ld, name, password, &user_dn, err, errlen);
    if (result == AUTH_LDAP_OK && self->allowed_groups[0])
        result = s_check_groups (self, ld, name, user_dn, err, errlen);
    if (ld)
        ldap_unbind_ext_s (ld, NULL, NULL);

    if (result == AUTH_LDAP_OK) {
        s_err (err, errlen, "%s", "");
        orr_debug ("LDAP: '%s' authenticated as %s", name, user_dn);
    }
    else if (result == AUTH_LDAP_DENIED)
        orr_debug ("LDAP: '%s' denied: %s", name, err && errlen ? err : "");
    free (user_dn);
    free (name);
    return result;
}
