/*  gw_auth: who is asking -- API tokens and login cookies -- with a short cache.
 *
 *  Credentials: `Authorization: token T` or `bearer T` (any case); the hub API ignores
 *  ?token= (jupyterhub-api.md §1). Otherwise the login cookie "jupyterhub-hub-login",
 *  whose value is "<session id>.<HMAC-SHA256(secret, session id)>": the signature lets a
 *  forged cookie be refused without a Redis read, and the session in Redis lets logout on
 *  one replica end it on all. On /hub/api paths a cookie counts only when the Referer is
 *  this hub (JupyterHub's rule), and a cookie-authenticated API mutation must also carry
 *  the session's XSRF token (X-XSRFToken header or _xsrf argument).
 *
 *  Cache: a resolved credential is kept for cache_ms (default 500 ms), keyed by the SHA-256
 *  of the token or the session id, and the whole cache is dropped whenever an identity
 *  event (token revoked, user or group changed, session ended) arrives. Revocation is
 *  therefore effective on every replica within cache_ms even if an event is lost, and at
 *  once when it is not. Token scopes are recomputed (narrowed to the owner's current
 *  scopes) on every miss.
 */
#include "gw.h"
#include "orr_crypto.h"
#include "orr_log.h"
#include "orr_util.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CACHE_MAX 50000

typedef struct {
    orr_identity_t id;
    int64_t expires_ms;
} cache_entry_t;

struct gw_cache_t {
    pthread_mutex_t lock;
    zhashx_t *entries;        /* key -> cache_entry_t */
};

static void
s_entry_free (void **item)
{
    cache_entry_t *e = *item;
    if (e) {
        orr_identity_clear (&e->id);
        free (e);
        *item = NULL;
    }
}

gw_cache_t *
gw_cache_new (void)
{
    gw_cache_t *self = orr_zalloc (sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_free);
    return self;
}

void
gw_cache_destroy (gw_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_cache_t *self = *self_p;
    zhashx_destroy (&self->entries);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
gw_cache_flush (gw_cache_t *self)
{
    pthread_mutex_lock (&self->lock);
    zhashx_purge (self->entries);
    pthread_mutex_unlock (&self->lock);
}

static bool
s_cache_get (gw_cache_t *self, const char *key, orr_identity_t *out)
{
    bool hit = false;
    pthread_mutex_lock (&self->lock);
    cache_entry_t *e = zhashx_lookup (self->entries, key);
    if (e && e->expires_ms > orr_mono_ms ()) {
        orr_identity_copy (out, &e->id);
        hit = true;
    }
    pthread_mutex_unlock (&self->lock);
    return hit;
}

static void
s_cache_put (gw_cache_t *self, const char *key, const orr_identity_t *id, long ttl_ms)
{
    if (ttl_ms <= 0)
        return;
    cache_entry_t *e = orr_zalloc (sizeof *e);
    orr_identity_copy (&e->id, id);
    e->expires_ms = orr_mono_ms () + ttl_ms;
    pthread_mutex_lock (&self->lock);
    if (zhashx_size (self->entries) >= CACHE_MAX)
        zhashx_purge (self->entries);   /* a flood of distinct tokens: start over */
    zhashx_update (self->entries, key, e);
    pthread_mutex_unlock (&self->lock);
}

void
gw_caller_clear (gw_caller_t *caller)
{
    orr_identity_clear (&caller->id);
    memset (caller, 0, sizeof *caller);
}

void
gw_session_cookie (gw_t *gw, const char *session_id, char *out, size_t outlen)
{
    char sig[ORR_SHA256_HEX_LEN + 1];
    orr_hmac_sha256_hex (gw->cookie_secret, session_id, strlen (session_id), sig);
    snprintf (out, outlen, "%s.%s", session_id, sig);
}

void
gw_xsrf_token (gw_t *gw, const char *session_id, char *out, size_t outlen)
{
    char *msg = orr_sprintf ("xsrf:%s", session_id);
    char sig[ORR_SHA256_HEX_LEN + 1];
    orr_hmac_sha256_hex (gw->cookie_secret, msg, strlen (msg), sig);
    free (msg);
    snprintf (out, outlen, "%.32s", sig);
}

bool
gw_session_from_cookie (gw_t *gw, const gw_request_t *req, char *out, size_t outlen)
{
    const char *cookie = gw_cookie (req, "jupyterhub-hub-login");
    if (!cookie)
        return false;
    const char *dot = strchr (cookie, '.');
    if (!dot || dot == cookie || (size_t) (dot - cookie) >= outlen || dot - cookie > 64)
        return false;
    snprintf (out, outlen, "%.*s", (int) (dot - cookie), cookie);
    char expected[160];
    gw_session_cookie (gw, out, expected, sizeof expected);
    return orr_secret_equal (expected, cookie);
}

/* The token of an Authorization header ("token T" / "bearer T"), or NULL. */
static const char *
s_header_token (const gw_request_t *req)
{
    const char *h = gw_header (req, "Authorization");
    if (!h)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp (h, "token ", 6) == 0)
        h += 6;
    else if (strncasecmp (h, "bearer ", 7) == 0)
        h += 7;
    else
        return NULL;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* JupyterHub accepts cookies on the API only from its own pages: Referer must be
 * http(s)://<Host><base_url>... */
static bool
s_referer_ok (gw_t *gw, const gw_request_t *req)
{
    const char *referer = gw_header (req, "Referer");
    const char *host = gw_header (req, "X-Forwarded-Host");
    if (!host)
        host = gw_header (req, "Host");
    if (!referer || !host)
        return false;
    const char *p = strstr (referer, "://");
    if (!p)
        return false;
    p += 3;
    size_t hl = strlen (host);
    return strncmp (p, host, hl) == 0 && strncmp (p + hl, gw->base_url, strlen (gw->base_url)) == 0;
}

int
gw_resolve_caller (gw_t *gw, const gw_request_t *req, gw_caller_t *caller)
{
    memset (caller, 0, sizeof *caller);
    const char *token = s_header_token (req);
    /* the OAuth pages live under /hub/api but are browser pages with their own XSRF check */
    bool api = strncmp (req->path, "/hub/api", 8) == 0 && strncmp (req->path, "/hub/api/oauth2/", 16) != 0;
    char key[128];
    orr_identity_status_t st;
    if (token) {
        if (strlen (token) > 256)
            return 0;
        char hash[ORR_SHA256_HEX_LEN + 1];
        orr_sha256_hex (token, strlen (token), hash);
        snprintf (key, sizeof key, "t:%s", hash);
        if (s_cache_get (gw->cache, key, &caller->id)) {
            __atomic_add_fetch (&gw->cache_hits, 1, __ATOMIC_RELAXED);
            st = ORR_IDENTITY_OK;
        }
        else {
            __atomic_add_fetch (&gw->cache_misses, 1, __ATOMIC_RELAXED);
            st = orr_identity_from_token (gw_store (gw), gw->roles, gw->services, token, &caller->id);
            if (st == ORR_IDENTITY_OK)
                s_cache_put (gw->cache, key, &caller->id, gw->cache_ms);
        }
        if (st == ORR_IDENTITY_UNAVAILABLE)
            return 503;
        if (st == ORR_IDENTITY_OK) {
            caller->authenticated = true;
            snprintf (caller->credential, sizeof caller->credential, "%s", key);
            if (caller->id.token_id)
                gw_activity_note (gw->activity, caller->id.token_hash, caller->id.name);
        }
        return 0;
    }
    char sid[80];
    if (!gw_session_from_cookie (gw, req, sid, sizeof sid))
        return 0;
    if (api && !s_referer_ok (gw, req))
        return 0;
    bool mutation = strcmp (req->method, "GET") != 0 && strcmp (req->method, "HEAD") != 0;
    if (api && mutation) {
        char xsrf[64];
        gw_xsrf_token (gw, sid, xsrf, sizeof xsrf);
        const char *given = gw_header (req, "X-XSRFToken");
        if (!given)
            given = gw_arg (req, "_xsrf");
        if (!given || !orr_secret_equal (given, xsrf))
            return 0;
    }
    snprintf (key, sizeof key, "s:%s", sid);
    if (s_cache_get (gw->cache, key, &caller->id))
        st = ORR_IDENTITY_OK;
    else {
        st = orr_identity_from_session (gw_store (gw), gw->roles, sid, &caller->id);
        if (st == ORR_IDENTITY_OK)
            s_cache_put (gw->cache, key, &caller->id, gw->cache_ms);
    }
    if (st == ORR_IDENTITY_UNAVAILABLE)
        return 503;
    caller->authenticated = st == ORR_IDENTITY_OK;
    caller->via_cookie = caller->authenticated;
    if (caller->authenticated)
        snprintf (caller->credential, sizeof caller->credential, "%s", key);
    return 0;
}
