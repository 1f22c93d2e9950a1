/*  orrery-auth: identity for Orrery -- users, groups, tokens, sessions, OAuth -- and the
 *  decision of every password login.
 *
 *  The auth service owns the identity keys in Redis (docs/keyspace.md): every change goes
 *  through one of its bus methods (proto/orrery/auth.proto), which writes with a Lua script
 *  or MULTI/EXEC and then publishes an event (docs/events.md). Reads do not come here: the
 *  gateway reads Redis directly (lib/orr_identity.h).
 *
 *  Repeats: a client that times out sends the same request id again, possibly to another
 *  replica. Two layers make a repeat harmless. Every method is wrapped so that its Result
 *  is remembered in Redis under the request id for REQUEST_MEMORY_S, and a repeat gets that
 *  Result. A replica can die between its write and that remembering, so every write script
 *  also stores its own result under the request id, atomically with the write
 *  (auth_script_once): a repeat that runs the handler again gets the same script result,
 *  hence the same answer, and writes nothing twice.
 *
 *  This file: settings, start-up (roles, services, the authenticator, admin users, the
 *  cookie secret), the repeat wrapper and the helpers every auth file uses.
 */
#include "auth.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"
#include "orrery/events.pb-c.h"
#include "orrery/rpc.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define REQUEST_MEMORY_S 300

static const orr_setting_t s_settings[] = {
    ORR_IDENTITY_SETTINGS,
    { "AUTHENTICATOR", "builtin", "how passwords are checked: builtin (yescrypt hashes in Redis), ldap, or demo" },
    { "DEMO_PASSWORD", NULL, "demo authenticator: the one password every user name signs in with" },
    { "PUBLIC_IP", "127.0.0.1", "the address the proxy listens on (the demo authenticator refuses any but loopback)" },
    { "ADMIN_USERS", NULL, "comma-separated user names made admins at start (created if absent)" },
    { "SESSION_TTL_S", "1209600", "login sessions expire after this many seconds (14 days)" },
    { "PASSWORD_MIN_LENGTH", "8", "shortest built-in password accepted" },
    { "LOGIN_FREE_FAILURES", "3", "failed logins per user name before delays start" },
    { "LOGIN_FREE_FAILURES_PER_ADDRESS", "20",
      "failed logins per client address (any names) before delays start; higher, as many users may share one address" },
    { "LOGIN_MAX_DELAY_S", "300", "longest delay imposed after repeated failures (it doubles up to this)" },
    { "LOGIN_WINDOW_S", "900", "failures older than this are forgotten" },
    { "OAUTH_TOKEN_EXPIRES_IN_S", "1209600", "lifetime of OAuth access tokens (JupyterHub's oauth_token_expires_in)" },
    { "OAUTH_CODE_TTL_S", "300", "lifetime of OAuth authorization codes" },
    { NULL, NULL, NULL },
};

orr_store_t *
auth_store (auth_t *self)
{
    return orr_store_thread (self->redis_url);
}

void
auth_publish (auth_t *self, const char *topic, const char *kind, const char *name, const char *action,
              const char *owner)
{
    Orrery__IdentityEvent ev = ORRERY__IDENTITY_EVENT__INIT;
    ev.kind = (char *) kind;
    ev.name = (char *) (name ? name : "");
    ev.action = (char *) action;
    ev.owner = (char *) (owner ? owner : "");
    ev.time_us = orr_now_us ();
    orr_service_publish_msg (self->svc, topic, &ev.base);
}

void
auth_reply (orr_result_t *result, const ProtobufCMessage *msg)
{
    orr_result_reply (result, msg);
}

bool
auth_username_ok (const char *name, char *err, size_t errlen)
{
    size_t n = strlen (name);
    if (n == 0 || n > 255) {
        snprintf (err, errlen, "Invalid username: must be 1 to 255 bytes");
        return false;
    }
    if (name[0] == ' ' || name[n - 1] == ' ') {
        snprintf (err, errlen, "Invalid username: %s (leading or trailing space)", name);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *) name; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/') {
            snprintf (err, errlen, "Invalid username: '/' and control characters are not allowed");
            return false;
        }
    return true;
}

/* --- at-most-once scripts -------------------------------------------------------------- */

#define DONE_PROLOGUE                                                                              \
    "local done = table.remove(KEYS)\n"                                                             \
    "local prev = redis.call('GET', done)\n"                                                        \
    "if prev then return cjson.decode(prev) end\n"                                                  \
    "local function body()\n"
#define DONE_EPILOGUE                                                                              \
    "\nend\n"                                                                                       \
    "local result = body()\n"                                                                       \
    "if result ~= 'retry' then redis.call('SET', done, cjson.encode(result), 'EX', %d) end\n"       \
    "return result\n"

orr_script_t *
auth_script_once (const char *name, const char *lua)
{
    char *epilogue = orr_sprintf (DONE_EPILOGUE, REQUEST_MEMORY_S);
    char *text = orr_sprintf ("%s%s%s", DONE_PROLOGUE, lua, epilogue);
    orr_script_t *script = orr_script_new (name, text);
    free (text);
    free (epilogue);
    return script;
}

char *
auth_done_key (const orr_call_t *call, const char *script)
{
    char fresh[33];
    const char *rid = call && call->request_id && *call->request_id ? call->request_id : NULL;
    if (!rid) {
        orr_random_hex (fresh, 16);
        rid = fresh;
    }
    char *id = orr_sprintf ("%s:%s", rid, script);
    char *key = orr_key_request_done (id);
    free (id);
    return key;
}

/* --- the repeat wrapper ---------------------------------------------------------------- */

typedef struct {
    auth_t *auth;
    orr_method_fn *fn;
} remembered_t;

static remembered_t s_remembered[32];
static size_t s_nremembered;

static void
s_remembering_call (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    remembered_t *r = ctx;
    orr_store_t *store = auth_store (r->auth);
    char *key = call->request_id && *call->request_id ? orr_key_request_done (call->request_id) : NULL;
    if (key) {
        redisReply *seen = orr_store_command (store, "GET %s", key);
        if (seen && seen->type == REDIS_REPLY_STRING) {
            Orrery__Result *old = orrery__result__unpack (NULL, seen->len, (const uint8_t *) seen->str);
            if (old) {
                orr_info ("%s: repeat of request %s, answered from memory", call->method, call->request_id);
                result->status = old->status;
                snprintf (result->error, sizeof result->error, "%s", old->error);
                if (old->body.len) {
                    result->body = orr_zalloc (old->body.len);
                    memcpy (result->body, old->body.data, old->body.len);
                    result->len = old->body.len;
                }
                orrery__result__free_unpacked (old, NULL);
                freeReplyObject (seen);
                free (key);
                return;
            }
        }
        if (seen)
            freeReplyObject (seen);
    }
    r->fn (r->auth, call, result);
    if (key) {
        Orrery__Result out = ORRERY__RESULT__INIT;
        out.status = result->status;
        out.error = result->error;
        out.body.data = result->body;
        out.body.len = result->len;
        size_t n = orrery__result__get_packed_size (&out);
        uint8_t *buf = orr_zalloc (n + 1);
        orrery__result__pack (&out, buf);
        char ttl[16];
        snprintf (ttl, sizeof ttl, "%d", REQUEST_MEMORY_S);
        const char *argv[] = { "SET", key, (const char *) buf, "EX", ttl };
        size_t lens[] = { 3, strlen (key), n, 2, strlen (ttl) };
        redisReply *ok = orr_store_commandv (store, 5, argv, lens);
        if (ok)
            freeReplyObject (ok);
        free (buf);
        free (key);
    }
}

/* Only Orrery's own services may change identity (see auth.proto). */
static void
s_trusted_call (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    if (!orr_bus_principal_is_trusted (call->principal)) {
        orr_result_fail (result, 403, "principal %s may not call auth.%s", call->principal, call->method);
        return;
    }
    s_remembering_call (ctx, call, result);
}

void
auth_method (auth_t *self, const char *name, orr_method_fn *fn)
{
    if (s_nremembered >= sizeof s_remembered / sizeof s_remembered[0])
        abort ();   /* a programming error: raise the table size */
    remembered_t *r = &s_remembered[s_nremembered++];
    r->auth = self;
    r->fn = fn;
    orr_service_add_method (self->svc, name, s_trusted_call, r);
}

/* --- start-up -------------------------------------------------------------------------- */

static int
s_ensure_cookie_secret (auth_t *self)
{
    char secret[65];
    orr_random_hex (secret, 32);
    char *key = orr_key_index (ORR_INDEX_SECRETS);
    redisReply *r = orr_store_command (auth_store (self), "HSETNX %s cookie %s", key, secret);
    free (key);
    if (!r)
        return -1;
    freeReplyObject (r);
    return 0;
}

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    auth_t *self = orr_zalloc (sizeof *self);
    *state = self;
    self->svc = svc;
    self->redis_url = orr_strdup (orr_config_get (config, "REDIS_URL"));
    char err[512] = "";
    self->roles = orr_roles_new (orr_config_get (config, "LOAD_ROLES"), err, sizeof err);
    if (!self->roles) {
        orr_error ("ORRERY_LOAD_ROLES: %s", err);
        return 1;
    }
    self->services = orr_hubservices_new (orr_config_get (config, "SERVICES"), err, sizeof err);
    if (!self->services) {
        orr_error ("ORRERY_SERVICES: %s", err);
        return 1;
    }
    const char *kind = orr_config_get (config, "AUTHENTICATOR");
    if (strcmp (kind, "builtin") == 0)
        self->kind = AUTH_BUILTIN;
    else if (strcmp (kind, "ldap") == 0) {
        self->kind = AUTH_LDAP;
        self->ldap = auth_ldap_new_from_config (config);
        if (!self->ldap)
            return 1;
    }
    else if (strcmp (kind, "demo") == 0) {
        self->kind = AUTH_DEMO;
        const char *pw = orr_config_get (config, "DEMO_PASSWORD");
        const char *ip = orr_config_get (config, "PUBLIC_IP");
        if (!pw || !*pw) {
            orr_error ("the demo authenticator needs ORRERY_DEMO_PASSWORD");
            return 1;
        }
        if (strcmp (ip, "127.0.0.1") != 0 && strcmp (ip, "localhost") != 0 && strcmp (ip, "::1") != 0) {
            orr_error ("the demo authenticator lets anyone in with one password: it refuses to run while the proxy "
                       "listens on %s (only 127.0.0.1 is allowed)", ip);
            return 1;
        }
        self->demo_password = orr_strdup (pw);
    }
    else {
        orr_error ("ORRERY_AUTHENTICATOR must be builtin, ldap or demo (not '%s')", kind);
        return 1;
    }
    self->session_ttl_s = orr_config_int (config, "SESSION_TTL_S");
    self->password_min_length = orr_config_int (config, "PASSWORD_MIN_LENGTH");
    self->throttle_free_failures = orr_config_int (config, "LOGIN_FREE_FAILURES");
    self->throttle_free_failures_addr = orr_config_int (config, "LOGIN_FREE_FAILURES_PER_ADDRESS");
    self->throttle_max_delay_s = orr_config_int (config, "LOGIN_MAX_DELAY_S");
    self->throttle_window_s = orr_config_int (config, "LOGIN_WINDOW_S");
    self->oauth_token_expires_in_s = orr_config_int (config, "OAUTH_TOKEN_EXPIRES_IN_S");
    self->oauth_code_ttl_s = orr_config_int (config, "OAUTH_CODE_TTL_S");
    if (self->session_ttl_s < 60 || self->password_min_length < 1 || self->throttle_free_failures < 0 || self->throttle_free_failures_addr < 0
        || self->throttle_max_delay_s < 1 || self->throttle_window_s < 1 || self->oauth_token_expires_in_s < 60
        || self->oauth_code_ttl_s < 10) {
        orr_error ("auth settings out of range (see --help)");
        return 1;
    }
    size_t nadmins = 0;
    self->admin_users = orr_split (orr_config_get (config, "ADMIN_USERS") ? orr_config_get (config, "ADMIN_USERS") : "",
                                   ',', &nadmins);
    /* Redis may come up after us (orrery up starts everything at once): wait for it */
    int64_t deadline = orr_mono_ms () + 30000;
    while (s_ensure_cookie_secret (self) != 0) {
        if (orr_mono_ms () > deadline) {
            orr_error ("Redis at %s unreachable: %s", self->redis_url, orr_store_error (auth_store (self)));
            return 1;
        }
        orr_sleep_ms (200);
    }
    /* methods first: registering loads the scripts the admin bootstrap below uses */
    auth_users_register (self);
    auth_tokens_register (self);
    auth_login_register (self);
    auth_oauth_register (self);
    for (size_t i = 0; i < nadmins; i++)
        if (auth_users_ensure (self, self->admin_users[i], true) != 0)
            orr_warn ("could not make %s an admin: %s", self->admin_users[i], orr_store_error (auth_store (self)));
    orr_info ("auth ready: authenticator %s, %zu configured services", kind, orr_hubservices_count (self->services));
    return 0;
}

static void
s_teardown (void *state)
{
    auth_t *self = state;
    if (!self)
        return;
    orr_roles_destroy (&self->roles);
    orr_hubservices_destroy (&self->services);
    auth_ldap_destroy (&self->ldap);
    free (self->demo_password);
    orr_strv_free (&self->admin_users);
    free (self->redis_url);
    free (self);
    orr_store_thread_release ();
}

int
main (int argc, char **argv)
{
    /* this service's settings, then the LDAP authenticator's */
    size_t n1 = 0, n2 = 0;
    while (s_settings[n1].name)
        n1++;
    while (auth_ldap_settings[n2].name)
        n2++;
    orr_setting_t *all = orr_zalloc ((n1 + n2 + 1) * sizeof (orr_setting_t));
    memcpy (all, s_settings, n1 * sizeof (orr_setting_t));
    memcpy (all + n1, auth_ldap_settings, n2 * sizeof (orr_setting_t));
    int rc = orr_service_main (argc, argv, "auth", "Orrery auth: users, tokens, scopes and logins.", all, s_setup,
                               s_teardown);
    free (all);
    return rc;
}
