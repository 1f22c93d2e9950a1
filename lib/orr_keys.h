/*  orr_keys: every Redis key name Orrery uses, built in one place (see docs/keyspace.md).
 *
 *  Scheme:  orr:{<kind>:<id>}:<family>[:<sub>]      (per-owner keys)
 *           orr:{<word>}:<family>                    (the few global keys)
 *  The {...} part is the Redis Cluster hash tag: only it is hashed, so every key of one
 *  owner lands on one slot and multi-key scripts over one owner stay cluster-safe.
 *  Kinds: u user, t token, g group, r role, oc OAuth client, oa OAuth code, s session,
 *  n node, p placement, sg spread group, req request. Words: idx (indexes), routes (the proxy table).
 *
 *  Names (<id>, <sub>) may hold any bytes except NUL. Each is escaped on the way in:
 *  '{', '}', '%', ':', white space, control bytes (< 0x20) and DEL (0x7f) become %XX
 *  (uppercase hex); every other byte, UTF-8 included, is kept. Because '}' is escaped, a
 *  name can never close the hash tag early; because ':' and '%' are escaped, two different
 *  (owner, name) pairs can never yield the same key.
 *
 *  Every builder returns a new string the caller frees with free(); never NULL (allocation
 *  failure aborts, per orr_util).
 */
#ifndef ORR_KEYS_H
#define ORR_KEYS_H

/* Escapes one key component as described above. Caller frees. */
char *orr_key_escape (const char *name);
/* Reverses orr_key_escape. NULL when `escaped` is not something orr_key_escape could have
 * produced (bad %XX, an unescaped special byte, %00). Caller frees. */
char *orr_key_unescape (const char *escaped);

/* --- auth --------------------------------------------------------------------------- */
char *orr_key_user (const char *user);                /* orr:{u:U}:user     hash   */
char *orr_key_user_tokens (const char *user);         /* orr:{u:U}:tokens   set    */
char *orr_key_user_groups (const char *user);         /* orr:{u:U}:groups   set    */
char *orr_key_token (const char *token_hash);         /* orr:{t:H}:token    hash   */
char *orr_key_group (const char *group);              /* orr:{g:G}:group    hash   */
char *orr_key_group_members (const char *group);      /* orr:{g:G}:members  set    */
char *orr_key_role (const char *role);                /* orr:{r:R}:role     hash   */
char *orr_key_oauth_client (const char *client_id);   /* orr:{oc:C}:oauth_client hash */
char *orr_key_oauth_code (const char *code_hash);     /* orr:{oa:H}:oauth_code   hash */
char *orr_key_session (const char *session_id);       /* orr:{s:S}:session  hash   */
char *orr_key_user_sessions (const char *user);       /* orr:{u:U}:sessions set    */
char *orr_key_user_oauth (const char *user);          /* orr:{u:U}:oauth    hash client -> consented scopes */
/* Login throttling: kind "u" (user name) or "a" (client address). */
char *orr_key_login_throttle (const char *kind, const char *who);  /* orr:{lt:K:W}:throttle hash */

/* --- spawner (server names may be "", the default server) ------------------------------ */
char *orr_key_user_servers (const char *user);                     /* orr:{u:U}:servers        set */
char *orr_key_server (const char *user, const char *server);       /* orr:{u:U}:server:N       hash */
char *orr_key_server_lock (const char *user, const char *server);  /* orr:{u:U}:server:N:lock  string */
char *orr_key_server_fence (const char *user, const char *server); /* orr:{u:U}:server:N:fence string */
char *orr_key_user_fence (const char *user);                       /* orr:{u:U}:fence          string (INCR) fencing tokens */
char *orr_key_node_starts (const char *node);                      /* orr:{n:N}:starts         list "user\nserver" handed to N */
char *orr_key_holder_stops (const char *holder);                   /* orr:{h:H}:stops          set "user\nserver" to stop, for lease holder H */
/* Servers' last activity: server name ("" = default) -> µs since the epoch. Written only
 * through orr_activity_record (lib/orr_activity.h), which keeps the newest. */
char *orr_key_user_activity (const char *user);                    /* orr:{u:U}:activity       hash */

/* --- scheduler ---------------------------------------------------------------------- */
char *orr_key_node (const char *node);                /* orr:{n:N}:node          hash */
char *orr_key_node_reservations (const char *node);   /* orr:{n:N}:reservations  hash id -> "cpu mem gpus expire_ms group" */
char *orr_key_node_expiry (const char *node);         /* orr:{n:N}:expiry        zset id -> expiry (ms) of unbound reservations */
char *orr_key_placement (const char *reservation);    /* orr:{p:ID}:placement    string: the node holding reservation ID */
char *orr_key_spread_group (const char *group);       /* orr:{sg:G}:spread       hash node -> servers of group G there */

/* --- proxyctl ----------------------------------------------------------------------- */
char *orr_key_routes (void);                          /* orr:{routes}:table      hash */

/* --- any service: idempotent requests ------------------------------------------------- */
char *orr_key_request_done (const char *request_id);  /* orr:{req:ID}:done       string */

/* --- global indexes: orr:{idx}:<name> --------------------------------------------------- */
typedef enum {
    ORR_INDEX_USERS,            /* orr:{idx}:users          zset  user name -> numeric id */
    ORR_INDEX_USER_SEQ,         /* orr:{idx}:user_seq       string counter (INCR) for ids */
    ORR_INDEX_GROUPS,           /* orr:{idx}:groups         zset  group name -> numeric id */
    ORR_INDEX_ROLES,            /* orr:{idx}:roles          set   role names */
    ORR_INDEX_OAUTH_CLIENTS,    /* orr:{idx}:oauth_clients  set   client ids */
    ORR_INDEX_NODES,            /* orr:{idx}:nodes          zset  node -> last heartbeat (ms) */
    ORR_INDEX_GROUP_SEQ,        /* orr:{idx}:group_seq      string counter (INCR) for group ids */
    ORR_INDEX_TOKEN_SEQ,        /* orr:{idx}:token_seq      string counter (INCR) for token ids */
    ORR_INDEX_SECRETS,          /* orr:{idx}:secrets        hash  name -> secret (cookie signing key) */
    ORR_INDEX_RESERVATION_EXPIRY, /* orr:{idx}:reservation_expiry zset "node\nid" -> expiry (ms): the sweep's to-do list */
    ORR_INDEX_SPAWN_QUEUE,      /* orr:{idx}:spawn_queue    zset  "user\nserver" -> arrival sequence */
    ORR_INDEX_SPAWN_SEQ,        /* orr:{idx}:spawn_seq      string counter (INCR) for the queue's order */
    ORR_INDEX_SPAWNING,         /* orr:{idx}:spawning       set   "user\nserver" in pending_spawn */
    ORR_INDEX_LEASES,           /* orr:{idx}:leases         zset  "user\nserver" -> lease expiry (ms) */
    ORR_INDEX_ACTIVE,           /* orr:{idx}:active         set   "user\nserver" neither stopped nor failed */
    ORR_INDEX_CULLER_LOCK,      /* orr:{idx}:culler_lock    string, PX: the replica running this culler round */
} orr_index_t;
char *orr_key_index (orr_index_t index);

/* The Redis Cluster slot (0..16383) of a key: CRC16-XMODEM of the hash tag's content
 * (the bytes between the first '{' and the first '}' after it, if non-empty), else of
 * the whole key, modulo 16384 -- as CLUSTER KEYSLOT computes it. */
int orr_key_hash_slot (const char *key);

#endif
