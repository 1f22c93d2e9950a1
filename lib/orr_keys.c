/*  orr_keys: key names with per-owner hash tags and injective escaping.
 *
 *  Design. Every key is "orr:{" TAG "}:" FAMILY [":" SUB], produced by s_key from parts
 *  that are escaped here and nowhere else, so no service can build a key that breaks the
 *  scheme. The tag is "<kind>:<escaped id>" for owned objects and a fixed word for the few
 *  global keys. The fixed prefix "orr:" has no braces, so the first '{' of every key opens
 *  our tag; escaped ids contain no '}', so the first '}' closes it: that is exactly the
 *  span Redis Cluster hashes, and all of one owner's keys share a slot.
 *
 *  Escaping is %XX of '{', '}', '%', ':', white space and control bytes. Escaping '%'
 *  makes it reversible and therefore injective: distinct names give distinct keys. Escaping
 *  ':' keeps a name from forging a family or sub-key suffix ("x:lock" as a server name must
 *  not alias the lock of server "x"). White space and control bytes are escaped so keys
 *  print safely in logs and in redis-cli. Bytes >= 0x80 are kept, so UTF-8 names stay
 *  readable.
 *
 *  Builders return malloc'd strings rather than filling caller buffers: an escaped name can
 *  be three times its input, and a silently truncated key would be a wrong key.
 */
#include "orr_keys.h"
#include "orr_util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "orr:"
#define CLUSTER_SLOTS 16384

static bool
s_needs_escape (unsigned char c)
{
    return c == '{' || c == '}' || c == '%' || c == ':' || c == ' ' || c < 0x20 || c == 0x7f;
}

/* Appends the escaped form of `name` at `out`; returns the new end. `out` must have room
 * for 3 * strlen(name) bytes. */
static char *
s_escape_into (char *out, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        if (s_needs_escape (*p)) {
            *out++ = '%';
            *out++ = hex[*p >> 4];
            *out++ = hex[*p & 15];
        }
        else
            *out++ = (char) *p;
    }
    return out;
}

char *
orr_key_escape (const char *name)
{
    char *out = orr_zalloc (3 * strlen (name) + 1);
    *s_escape_into (out, name) = '\0';
    return out;
}

static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;   /* lowercase is never produced, so it is not accepted: one form per name */
}

char *
orr_key_unescape (const char *escaped)
{
    size_t len = strlen (escaped);
    char *out = orr_zalloc (len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) escaped[i];
        if (c == '%') {
            /* Only the one form orr_key_escape writes is accepted ("%41" for 'A' is not),
             * so unescape(k) == name implies escape(name) == k. */
            int hi = i + 2 < len ? s_hex_digit (escaped[i + 1]) : -1;
            int lo = hi >= 0 ? s_hex_digit (escaped[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0 || !s_needs_escape ((unsigned char) (hi * 16 + lo))) {
                free (out);
                return NULL;
            }
            out[o++] = (char) (hi * 16 + lo);
            i += 2;
        }
        else if (s_needs_escape (c)) {
            free (out);
            return NULL;
        }
        else
            out[o++] = (char) c;
    }
    return out;
}

/* "orr:{" kind [":" id] "}:" family [":" sub]; kind and family are our own literals,
 * id and sub are escaped. kind's id is omitted when id is NULL (global keys). */
static char *
s_key (const char *kind, const char *id, const char *family, const char *sub)
{
    size_t cap = strlen (KEY_PREFIX) + strlen (kind) + strlen (family) + 8;
    if (id)
        cap += 3 * strlen (id);
    if (sub)
        cap += 3 * strlen (sub);
    char *key = orr_zalloc (cap);
    char *p = key;
    size_t n = strlen (KEY_PREFIX);
    memcpy (p, KEY_PREFIX, n);
    p += n;
    *p++ = '{';
    n = strlen (kind);
    memcpy (p, kind, n);
    p += n;
    if (id) {
        *p++ = ':';
        p = s_escape_into (p, id);
    }
    *p++ = '}';
    *p++ = ':';
    n = strlen (family);
    memcpy (p, family, n);
    p += n;
    if (sub) {
        *p++ = ':';
        p = s_escape_into (p, sub);
    }
    *p = '\0';
    return key;
}

/* A server's keys: orr:{u:U}:server:N[:suffix]. The server name is escaped, so the
 * literal suffix cannot be confused with part of a name. */
static char *
s_server_key (const char *user, const char *server, const char *suffix)
{
    char *base = s_key ("u", user, "server", server ? server : "");
    if (!suffix)
        return base;
    char *key = orr_sprintf ("%s:%s", base, suffix);
    free (base);
    return key;
}

char *orr_key_user (const char *user)              { return s_key ("u", user, "user", NULL); }
char *orr_key_user_tokens (const char *user)       { return s_key ("u", user, "tokens", NULL); }
char *orr_key_user_groups (const char *user)       { return s_key ("u", user, "groups", NULL); }
char *orr_key_user_servers (const char *user)      { return s_key ("u", user, "servers", NULL); }
char *orr_key_token (const char *token_hash)       { return s_key ("t", token_hash, "token", NULL); }
char *orr_key_group (const char *group)            { return s_key ("g", group, "group", NULL); }
char *orr_key_group_members (const char *group)    { return s_key ("g", group, "members", NULL); }
char *orr_key_role (const char *role)              { return s_key ("r", role, "role", NULL); }
char *orr_key_oauth_client (const char *client_id) { return s_key ("oc", client_id, "oauth_client", NULL); }
char *orr_key_oauth_code (const char *code_hash)   { return s_key ("oa", code_hash, "oauth_code", NULL); }
char *orr_key_session (const char *session_id)     { return s_key ("s", session_id, "session", NULL); }
char *orr_key_user_sessions (const char *user)     { return s_key ("u", user, "sessions", NULL); }
char *orr_key_user_oauth (const char *user)        { return s_key ("u", user, "oauth", NULL); }
char *orr_key_user_activity (const char *user)     { return s_key ("u", user, "activity", NULL); }
char *orr_key_node (const char *node)              { return s_key ("n", node, "node", NULL); }
char *orr_key_node_reservations (const char *node) { return s_key ("n", node, "reservations", NULL); }
char *orr_key_node_expiry (const char *node)       { return s_key ("n", node, "expiry", NULL); }
char *orr_key_placement (const char *reservation)  { return s_key ("p", reservation, "placement", NULL); }
char *orr_key_spread_group (const char *group)     { return s_key ("sg", group, "spread", NULL); }
char *orr_key_request_done (const char *request_id) { return s_key ("req", request_id, "done", NULL); }
char *orr_key_user_fence (const char *user)        { return s_key ("u", user, "fence", NULL); }
char *orr_key_node_starts (const char *node)       { return s_key ("n", node, "starts", NULL); }
char *orr_key_holder_stops (const char *holder)    { return s_key ("h", holder, "stops", NULL); }
char *orr_key_routes (void)                        { return s_key ("routes", NULL, "table", NULL); }

char *
orr_key_login_throttle (const char *kind, const char *who)
{
    /* kind is our own literal; who is escaped, so ':' inside it cannot shift the parts */
    char *escaped_who = orr_key_escape (who);
    char *key = orr_sprintf ("orr:{lt:%s:%s}:throttle", kind, escaped_who);
    free (escaped_who);
    return key;
}

char *
orr_key_server (const char *user, const char *server)
{
    return s_server_key (user, server, NULL);
}

char *
orr_key_server_lock (const char *user, const char *server)
{
    return s_server_key (user, server, "lock");
}

char *
orr_key_server_fence (const char *user, const char *server)
{
    return s_server_key (user, server, "fence");
}

char *
orr_key_index (orr_index_t index)
{
    static const char *names[] = {
        [ORR_INDEX_USERS] = "users",
        [ORR_INDEX_USER_SEQ] = "user_seq",
        [ORR_INDEX_GROUPS] = "groups",
        [ORR_INDEX_ROLES] = "roles",
        [ORR_INDEX_OAUTH_CLIENTS] = "oauth_clients",
        [ORR_INDEX_NODES] = "nodes",
        [ORR_INDEX_GROUP_SEQ] = "group_seq",
        [ORR_INDEX_TOKEN_SEQ] = "token_seq",
        [ORR_INDEX_SECRETS] = "secrets",
        [ORR_INDEX_RESERVATION_EXPIRY] = "reservation_expiry",
        [ORR_INDEX_SPAWN_QUEUE] = "spawn_queue",
        [ORR_INDEX_SPAWN_SEQ] = "spawn_seq",
        [ORR_INDEX_SPAWNING] = "spawning",
        [ORR_INDEX_LEASES] = "leases",
        [ORR_INDEX_ACTIVE] = "active",
        [ORR_INDEX_CULLER_LOCK] = "culler_lock",
    };
    if ((unsigned) index >= sizeof names / sizeof names[0] || !names[index])
        abort ();   /* not a member of the enum: a programming error */
    return s_key ("idx", NULL, names[index], NULL);
}

/* CRC16, XMODEM variant (polynomial 0x1021, initial value 0, no reflection), as the
 * Redis Cluster specification defines the key hash. Bitwise: keys are short and this is
 * not on a hot path. */
static uint16_t
s_crc16_xmodem (const unsigned char *data, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t) (data[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
    }
    return crc;
}

int
orr_key_hash_slot (const char *key)
{
    const unsigned char *k = (const unsigned char *) key;
    size_t len = strlen (key);
    const char *open = strchr (key, '{');
    if (open) {
        const char *close = strchr (open + 1, '}');
        if (close && close > open + 1)
            return s_crc16_xmodem ((const unsigned char *) open + 1, (size_t) (close - open - 1))
                   % CLUSTER_SLOTS;
    }
    return s_crc16_xmodem (k, len) % CLUSTER_SLOTS;
}
