/*  auth_login: password logins, sessions, logout and password changes.
 *
 *  Throttling: failures are counted per user name and per client address in Redis
 *  (orr:{lt:u:NAME}:throttle, orr:{lt:a:ADDR}:throttle), so every replica sees them. After
 *  LOGIN_FREE_FAILURES failures of a name (LOGIN_FREE_FAILURES_PER_ADDRESS of an address,
 *  higher because a campus NAT puts many users behind one address), each further failure locks that name or address out for a
 *  delay that doubles (1 s, 2 s, 4 s ...) up to LOGIN_MAX_DELAY_S; an attempt during the
 *  delay is answered 429 with the seconds left, without asking the authenticator (so a
 *  password guesser gains nothing by hammering). Counters are forgotten LOGIN_WINDOW_S after
 *  the last failure; a success clears the name's counter.
 *
 *  Sessions are random 128-bit ids in Redis with a TTL, so logout on one gateway replica
 *  is logout on all of them. Logout also revokes the OAuth tokens the session issued.
 */
#include "auth.h"
#include "orr_crypto.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_util.h"
#include "orrery/auth.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: throttle.  ARGV: now_us -> seconds left (0 = may try) */
static const char *LUA_THROTTLE_CHECK =
    "local until_us = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0\n"
    "local now = tonumber(ARGV[1])\n"
    "if until_us > now then return math.ceil((until_us - now) / 1000000) end\n"
    "return 0\n";

/* KEYS: throttle.  ARGV: now_us, free failures, max delay s, window s -> failures */
static const char *LUA_THROTTLE_FAIL =
    "local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)\n"
    "local over = fails - tonumber(ARGV[2])\n"
    "if over > 0 then\n"
    "  local delay = math.min(2 ^ (over - 1), tonumber(ARGV[3]))\n"
    "  redis.call('HSET', KEYS[1], 'until', string.format('%.0f', tonumber(ARGV[1]) + delay * 1000000))\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "return fails\n";

static orr_script_t *script_check, *script_fail;

/* Seconds the name or address must still wait (0 = none, -1 store down). */
static long
s_throttled (auth_t *self, const char *kind, const char *who)
{
    char *key = orr_key_login_throttle (kind, who);
    char now[24];
    snprintf (now, sizeof now, "%lld", (long long) orr_now_us ());
    const char *argv[] = { key, now };
    redisReply *r = orr_store_eval (auth_store (self), script_check, 1, 2, argv, NULL);
    free (key);
    long left = r && r->type == REDIS_REPLY_INTEGER ? (long) r->integer : -1;
    if (r)
        freeReplyObject (r);
    return left;
}

static void
s_record_failure (auth_t *self, const char *kind, const char *who)
{
    char *key = orr_key_login_throttle (kind, who);
    char now[24], freef[16], maxd[16], window[16];
    snprintf (now, sizeof now, "%lld", (long long) orr_now_us ());
    snprintf (freef, sizeof freef, "%ld",
              strcmp (kind, "a") == 0 ? self->throttle_free_failures_addr : self->throttle_free_failures);
    snprintf (maxd, sizeof maxd, "%ld", self->throttle_max_delay_s);
    snprintf (window, sizeof window, "%ld", self->throttle_window_s);
    const char *argv[] = { key, now, freef, maxd, window };
    redisReply *r = orr_store_eval (auth_store (self), script_fail, 1, 5, argv, NULL);
    free (key);
    if (r)
        freeReplyObject (r);
}

static void
s_clear_failures (auth_t *self, const char *kind, const char *who)
{
    char *key = orr_key_login_throttle (kind, who);
    redisReply *r = orr_store_command (auth_store (self), "DEL %s", key);
    free (key);
    if (r)
        freeReplyObject (r);
}

int
auth_login_check (auth_t *self, const char *username, const char *password, char *name_out, size_t name_len,
                  char *message, size_t msglen)
{
    snprintf (name_out, name_len, "%s", username);
    char err[256];
    if (!password || !*password) {
        /* never reaches an authenticator: an empty LDAP password is an anonymous bind */
        snprintf (message, msglen, "Invalid username or password");
        return 403;
    }
    if (!auth_username_ok (username, err, sizeof err)) {
        snprintf (message, msglen, "Invalid username or password");
        return 403;
    }
    if (self->kind == AUTH_DEMO) {
        if (!orr_secret_equal (password, self->demo_password)) {
            snprintf (message, msglen, "Invalid username or password");
            return 403;
        }
        if (auth_users_ensure (self, username, false) != 0) {
            snprintf (message, msglen, "user store unavailable");
            return 503;
        }
        return 200;
    }
    if (self->kind == AUTH_LDAP) {
        auth_ldap_result_t r = auth_ldap_authenticate (self->ldap, username, strlen (username), password, err, sizeof err);
        if (r == AUTH_LDAP_UNAVAILABLE) {
            snprintf (message, msglen, "%s", err[0] ? err : "LDAP server unavailable");
            return 503;
        }
        if (r != AUTH_LDAP_OK) {
            snprintf (message, msglen, "Invalid username or password");
            return 403;
        }
        /* the directory compares names case-insensitively, so "ALICE" and "alice" are one
         * person: Orrery knows them by the lower-case name (JupyterHub's default
         * normalize_username). LDAP users exist from their first login on. */
        for (char *p = name_out; *p; p++)
            *p = (char) tolower ((unsigned char) *p);
        if (auth_users_ensure (self, name_out, false) != 0) {
            snprintf (message, msglen, "user store unavailable");
            return 503;
        }
        return 200;
    }
    orr_user_rec_t rec;
    int found = orr_user_load (auth_store (self), username, &rec);
    int status = 403;
    if (found < 0) {
        snprintf (message, msglen, "user store unavailable");
        status = 503;
    }
    else {
        /* hash even when the user is unknown, so timing does not tell which names exist */
        static char *dummy;
        if (!dummy)
            dummy = auth_password_hash ("not a password anyone has");
        bool ok = auth_password_verify (password, found == 1 && rec.password_hash ? rec.password_hash : dummy);
        if (found == 1 && rec.password_hash && ok)
            status = 200;
        else
            snprintf (message, msglen, "Invalid username or password");
    }
    orr_user_rec_clear (&rec);
    return status;
}

static char *
s_session_new (auth_t *self, const char *user)
{
    char sid[33];
    orr_random_hex (sid, 16);
    orr_store_t *store = auth_store (self);
    char *sk = orr_key_session (sid), *us = orr_key_user_sessions (user);
    orr_store_append (store, "HSET %s user %s created %lld", sk, user, (long long) orr_now_us ());
    orr_store_append (store, "EXPIRE %s %ld", sk, self->session_ttl_s);
    orr_store_append (store, "SADD %s %s", us, sid);
    int rc = orr_store_flush_replies (store, NULL, 3);
    free (sk);
    free (us);
    return rc == 0 ? orr_strdup (sid) : NULL;
}

static void
s_login (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__Login *req;
    AUTH_UNPACK (req, orrery__login, call, result);
    Orrery__LoginResult out = ORRERY__LOGIN_RESULT__INIT;
    char name[256] = "", message[256] = "";
    char *sid = NULL;
    const char *addr = req->client_addr && *req->client_addr ? req->client_addr : "unknown";
    long wait_name = s_throttled (self, "u", req->username);
    long wait_addr = s_throttled (self, "a", addr);
    if (wait_name < 0 || wait_addr < 0) {
        out.status = 503;
        snprintf (message, sizeof message, "user store unavailable");
    }
    else if (wait_name > 0 || wait_addr > 0) {
        out.status = 429;
        out.retry_after_s = (int32_t) (wait_name > wait_addr ? wait_name : wait_addr);
        snprintf (message, sizeof message, "Too many failed logins; try again in %d seconds", out.retry_after_s);
    }
    else {
        out.status = auth_login_check (self, req->username, req->password, name, sizeof name, message, sizeof message);
        if (out.status == 403) {
            s_record_failure (self, "u", req->username);
            s_record_failure (self, "a", addr);
            orr_info ("failed login for %s from %s", req->username, addr);
        }
        else if (out.status == 200) {
            s_clear_failures (self, "u", req->username);
            if (req->create_session) {
                sid = s_session_new (self, name);
                if (!sid) {
                    out.status = 503;
                    snprintf (message, sizeof message, "session store unavailable");
                }
            }
            orr_info ("%s signed in from %s", name, addr);
        }
    }
    out.message = message;
    out.username = name;
    out.session_id = sid ? sid : "";
    auth_reply (result, &out.base);
    free (sid);
    orrery__login__free_unpacked (req, NULL);
}

static void
s_logout (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__Logout *req;
    AUTH_UNPACK (req, orrery__logout, call, result);
    orr_store_t *store = auth_store (self);
    char *sk = orr_key_session (req->session_id);
    redisReply *user = orr_store_command (store, "HGET %s user", sk);
    if (!user)
        orr_result_fail (result, 503, "session store unavailable");
    else if (user->type == REDIS_REPLY_STRING) {
        char *us = orr_key_user_sessions (user->str);
        orr_store_append (store, "DEL %s", sk);
        orr_store_append (store, "SREM %s %s", us, req->session_id);
        orr_store_flush_replies (store, NULL, 2);
        free (us);
        auth_tokens_revoke_where (self, user->str, "session_id", req->session_id);
        auth_publish (self, "session.ended", "session", req->session_id, "ended", user->str);
    }
    if (user)
        freeReplyObject (user);
    free (sk);
    orrery__logout__free_unpacked (req, NULL);
}

static void
s_password_change (void *ctx, const orr_call_t *call, orr_result_t *result)
{
    auth_t *self = ctx;
    Orrery__PasswordChange *req;
    AUTH_UNPACK (req, orrery__password_change, call, result);
    char name[256], message[256];
    if (self->kind != AUTH_BUILTIN)
        orr_result_fail (result, 400, "Passwords are not kept by Orrery with this authenticator");
    else if ((long) strlen (req->new_password) < self->password_min_length)
        orr_result_fail (result, 400, "Password must be at least %ld characters", self->password_min_length);
    else {
        int st = auth_login_check (self, req->username, req->old_password, name, sizeof name, message, sizeof message);
        if (st != 200)
            orr_result_fail (result, st, "%s", st == 403 ? "Current password is wrong" : message);
        else {
            char *hash = auth_password_hash (req->new_password);
            char *uk = orr_key_user (req->username);
            redisReply *r = hash ? orr_store_command (auth_store (self), "HSET %s password %s", uk, hash) : NULL;
            if (!r)
                orr_result_fail (result, 503, "user store unavailable");
            else
                freeReplyObject (r);
            free (uk);
            free (hash);
        }
    }
    orrery__password_change__free_unpacked (req, NULL);
}

void
auth_login_register (auth_t *self)
{
    script_check = orr_script_new ("login.throttle_check", LUA_THROTTLE_CHECK);
    script_fail = orr_script_new ("login.throttle_fail", LUA_THROTTLE_FAIL);
    auth_method (self, "login", s_login);
    auth_method (self, "logout", s_logout);
    auth_method (self, "password.change", s_password_change);
}
