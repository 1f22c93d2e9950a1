/*  test_store: orr_store and orr_keys against real redis-servers.
 *
 *  Covers: URL parsing; set/get; error replies; binary-safe argv; a 10,000-command
 *  pipeline; a poisoned pipeline and a pipeline whose connection dies (never replayed);
 *  resend-once vs. once semantics when the connection dies mid-command; the command
 *  timeout (SIGSTOPped Redis, no resend); scripts by SHA1 with NOSCRIPT reload after SCRIPT
 *  FLUSH and after a restart; SIGKILL + restart on the same port with the same store; a
 *  stale idle connection replaced before sending; a unix socket with a db; per-thread
 *  stores; key escaping and hash slots checked against CLUSTER KEYSLOT of a
 *  cluster-enabled, password-protected redis-server.
 */
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_store.h"
#include "orr_util.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* CHECK with no message of its own (testutil's CHECK wants one: -Wformat-zero-length). */
#define CHECK_TRUE(cond) CHECK (cond, "%s", "")

/* Starts a redis-server on a given port (the restart needs the SAME port, which
 * tu_redis_start cannot choose), with extra arguments. Returns the pid once it listens. */
static pid_t
s_spawn_redis (int port, const char *dir, const char *const *extra)
{
    char port_text[16];
    snprintf (port_text, sizeof port_text, "%d", port);
    char *argv[32] = { "/usr/bin/redis-server", "--port", port_text, "--bind", "127.0.0.1",
                       "--dir", (char *) dir, "--save", "", "--appendonly", "no",
                       "--daemonize", "no" };
    int argc = 13;
    for (; extra && *extra; extra++)
        argv[argc++] = (char *) *extra;
    argv[argc] = NULL;
    char *log = orr_sprintf ("%s/redis-%d.log", dir, port);
    pid_t pid = tu_spawn (argv, NULL, log);
    free (log);
    CHECK (tu_wait_port (port, 5000) == 0, "redis-server on port %d did not start", port);
    return pid;
}

static redisReply *
s_cmd_ok (orr_store_t *store, redisReply *reply, int type)
{
    CHECK (reply != NULL, "no reply: %s", orr_store_error (store));
    CHECK (reply->type == type, "reply type %d, expected %d (%s)", reply->type, type,
           reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    return reply;
}

static void
s_expect_string (orr_store_t *store, const char *key, const char *value)
{
    redisReply *reply = orr_store_command (store, "GET %s", key);
    s_cmd_ok (store, reply, value ? REDIS_REPLY_STRING : REDIS_REPLY_NIL);
    if (value)
        CHECK_EQ_STR (reply->str, value);
    freeReplyObject (reply);
}

static long long
s_integer (orr_store_t *store, redisReply *reply)
{
    s_cmd_ok (store, reply, REDIS_REPLY_INTEGER);
    long long v = reply->integer;
    freeReplyObject (reply);
    return v;
}

static long long
s_client_id (orr_store_t *store)
{
    return s_integer (store, orr_store_command (store, "CLIENT ID"));
}

/* ------------------------------------------------------------------------------------ */

static void
test_urls (void)
{
    const char *bad[] = { "http://127.0.0.1:6379", "redis://", "redis://:6379/0",
                          "redis://127.0.0.1:99999/0", "redis://127.0.0.1:12/x",
                          "redis://127.0.0.1:12/0?bogus=1", "redis://onlyuser@127.0.0.1/0",
                          "redis://:bad%zzescape@127.0.0.1/0", "unix://relative/path",
                          "unix:///tmp/x.sock?db=notanumber", "rediss://127.0.0.1", "", NULL };
    for (const char **u = bad; *u; u++) {
        orr_store_t *store = orr_store_new (*u);
        CHECK (store == NULL, "bad URL \"%s\" was accepted", *u);
    }
    CHECK_TRUE (orr_store_new (NULL) == NULL);

    orr_store_t *store = orr_store_new ("redis://:s3cret@127.0.0.1:1/2?timeout_ms=250");
    CHECK_TRUE (store != NULL);
    CHECK_EQ_STR (orr_store_url (store), "redis://:***@127.0.0.1:1/2");
    CHECK_EQ_INT (orr_store_connects (store), 0);
    orr_store_destroy (&store);
    CHECK_TRUE (store == NULL);
    orr_store_destroy (&store);   /* NULL-safe */
    orr_store_destroy (NULL);

    store = orr_store_new ("redis://bob:p%40ss@[::1]:7000");
    CHECK_TRUE (store != NULL);
    CHECK_EQ_STR (orr_store_url (store), "redis://bob:***@[::1]:7000/0");
    orr_store_destroy (&store);

    store = orr_store_new ("unix:///run/redis.sock?db=3&password=x&connect_timeout_ms=50");
    CHECK_TRUE (store != NULL);
    CHECK_EQ_STR (orr_store_url (store), "unix:///run/redis.sock?db=3&password=***");
    orr_store_destroy (&store);
}

static void
test_keys (void)
{
    char *k;
    /* Known layout. */
    k = orr_key_user ("alice");
    CHECK_EQ_STR (k, "orr:{u:alice}:user");
    free (k);
    k = orr_key_server ("alice", "");
    CHECK_EQ_STR (k, "orr:{u:alice}:server:");
    free (k);
    k = orr_key_server_lock ("alice", "gpu");
    CHECK_EQ_STR (k, "orr:{u:alice}:server:gpu:lock");
    free (k);
    k = orr_key_token ("abc123");
    CHECK_EQ_STR (k, "orr:{t:abc123}:token");
    free (k);
    k = orr_key_routes ();
    CHECK_EQ_STR (k, "orr:{routes}:table");
    free (k);
    k = orr_key_index (ORR_INDEX_USERS);
    CHECK_EQ_STR (k, "orr:{idx}:users");
    free (k);
    k = orr_key_request_done ("r-1");
    CHECK_EQ_STR (k, "orr:{req:r-1}:done");
    free (k);

    /* Escaping: a '}' in a name cannot close the tag; ':' cannot forge a suffix. */
    k = orr_key_user ("a}b");
    CHECK_EQ_STR (k, "orr:{u:a%7Db}:user");
    CHECK_EQ_INT (orr_key_hash_slot (k), orr_key_hash_slot ("{u:a%7Db}"));
    free (k);
    char *lock = orr_key_server_lock ("alice", "x");
    char *forged = orr_key_server ("alice", "x:lock");
    CHECK (strcmp (lock, forged) != 0, "server \"x:lock\" aliases the lock of server \"x\"");
    CHECK_EQ_STR (forged, "orr:{u:alice}:server:x%3Alock");
    free (lock);
    free (forged);
    k = orr_key_escape ("{%: \t\n\x7f}zoë");
    CHECK_EQ_STR (k, "%7B%25%3A%20%09%0A%7F%7Dzoë");
    char *back = orr_key_unescape (k);
    CHECK_EQ_STR (back, "{%: \t\n\x7f}zoë");
    free (back);
    free (k);
    /* Only the escaper's own output unescapes. */
    CHECK_TRUE (orr_key_unescape ("a%41") == NULL);
    CHECK_TRUE (orr_key_unescape ("a%7d") == NULL);
    CHECK_TRUE (orr_key_unescape ("a%7") == NULL);
    CHECK_TRUE (orr_key_unescape ("a%00") == NULL);
    CHECK_TRUE (orr_key_unescape ("a:b") == NULL);
    /* Names differing only in escapable bytes stay distinct. */
    char *k1 = orr_key_user ("a%7Db"), *k2 = orr_key_user ("a}b");
    CHECK_TRUE (strcmp (k1, k2) != 0);
    free (k1);
    free (k2);

    /* Slots: the spec's CRC16 check value and values Redis itself reports. */
    CHECK_EQ_INT (orr_key_hash_slot ("123456789"), 0x31C3);
    CHECK_EQ_INT (orr_key_hash_slot ("foo"), 12182);
    CHECK_EQ_INT (orr_key_hash_slot ("orr:{u:alice}:user"), 5797);
    CHECK_EQ_INT (orr_key_hash_slot ("{}foo"), orr_key_hash_slot ("{}foo"));
    CHECK_TRUE (orr_key_hash_slot ("{}foo") != orr_key_hash_slot ("foo"));   /* empty tag: whole key */

    /* Every key of one user, whatever the server name, shares the user's slot. */
    const char *users[] = { "alice", "a}b", "{evil}", "", "bob:smith", "zoë \n", NULL };
    for (const char **u = users; *u; u++) {
        char *keys[] = { orr_key_user (*u),
                         orr_key_user_tokens (*u),
                         orr_key_user_groups (*u),
                         orr_key_user_servers (*u),
                         orr_key_server (*u, ""),
                         orr_key_server (*u, "}{"),
                         orr_key_server_lock (*u, "gpu"),
                         orr_key_server_fence (*u, "gpu"),
                         NULL };
        int slot = orr_key_hash_slot (keys[0]);
        for (char **key = keys; *key; key++) {
            CHECK_EQ_INT (orr_key_hash_slot (*key), slot);
            free (*key);
        }
    }
}

/* The same slots as Redis computes them, asked of a cluster-enabled server (non-cluster
 * servers refuse CLUSTER KEYSLOT), which also requires a password: covers AUTH. */
static void
test_keys_against_redis (const char *dir)
{
    int port = orr_free_port ();
    CHECK_TRUE (port > 0);
    char *conf = orr_sprintf ("%s/nodes-%d.conf", dir, port);
    const char *extra[] = { "--cluster-enabled", "yes", "--cluster-config-file", conf,
                            "--requirepass", "s3 cret@", NULL };
    pid_t pid = s_spawn_redis (port, dir, extra);

    char *wrong_url = orr_sprintf ("redis://:nope@127.0.0.1:%d/0", port);
    orr_store_t *wrong = orr_store_new (wrong_url);
    CHECK_TRUE (wrong);
    CHECK (orr_store_command (wrong, "PING") == NULL, "AUTH with a wrong password succeeded");
    CHECK (strstr (orr_store_error (wrong), "AUTH"), "error: %s", orr_store_error (wrong));
    orr_store_destroy (&wrong);
    free (wrong_url);

    char *url = orr_sprintf ("redis://:s3%%20cret%%40@127.0.0.1:%d/0", port);
    orr_store_t *store = orr_store_new (url);
    CHECK_TRUE (store);
    char *keys[] = { orr_key_user ("alice"), orr_key_user ("a}b"), orr_key_user ("{evil}"),
                     orr_key_user (""), orr_key_server ("zoë", "x:y"),
                     orr_key_token ("deadbeef"), orr_key_group ("staff"),
                     orr_key_node ("node-7"), orr_key_routes (),
                     orr_key_index (ORR_INDEX_NODES), orr_key_request_done ("req 1"),
                     orr_strdup ("{}plain"), orr_strdup ("no tag at all"), NULL };
    for (char **key = keys; *key; key++) {
        long long redis_slot = s_integer (store, orr_store_command (store, "CLUSTER KEYSLOT %s", *key));
        CHECK (redis_slot == orr_key_hash_slot (*key), "%s: redis says %lld, we say %d", *key,
               redis_slot, orr_key_hash_slot (*key));
        free (*key);
    }
    orr_store_destroy (&store);
    free (url);
    tu_stop (pid, SIGKILL, 2000);
    free (conf);
}

/* ------------------------------------------------------------------------------------ */

static void
test_basic (orr_store_t *store)
{
    redisReply *reply = orr_store_command (store, "SET %s %s", "greeting", "hello world");
    s_cmd_ok (store, reply, REDIS_REPLY_STATUS);
    CHECK_EQ_STR (reply->str, "OK");
    freeReplyObject (reply);
    s_expect_string (store, "greeting", "hello world");
    s_expect_string (store, "missing", NULL);
    CHECK_EQ_STR (orr_store_error (store), "");

    /* A Redis error is a reply, not a connection failure. */
    reply = orr_store_command (store, "LPUSH greeting x");
    s_cmd_ok (store, reply, REDIS_REPLY_ERROR);
    CHECK (strncmp (reply->str, "WRONGTYPE", 9) == 0, "%s", reply->str);
    freeReplyObject (reply);
    CHECK_EQ_INT (orr_store_connects (store), 1);

    /* A bad format string is refused without touching the connection. */
    CHECK_TRUE (orr_store_command (store, "GET %q") == NULL);
    CHECK (strstr (orr_store_error (store), "format"), "%s", orr_store_error (store));
    s_expect_string (store, "greeting", "hello world");
    CHECK_EQ_INT (orr_store_connects (store), 1);

    /* Binary-safe argv: NUL bytes in key and value. */
    const char key[] = "bin\0key";
    const char value[] = "a\0b\0\xff\r\nc";
    const char *argv[] = { "SET", key, value };
    size_t lens[] = { 3, sizeof key - 1, sizeof value - 1 };
    reply = orr_store_commandv (store, 3, argv, lens);
    s_cmd_ok (store, reply, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    const char *get_argv[] = { "GET", key };
    size_t get_lens[] = { 3, sizeof key - 1 };
    reply = orr_store_commandv_once (store, 2, get_argv, get_lens);
    s_cmd_ok (store, reply, REDIS_REPLY_STRING);
    CHECK_EQ_INT (reply->len, sizeof value - 1);
    CHECK_TRUE (memcmp (reply->str, value, sizeof value - 1) == 0);
    freeReplyObject (reply);
    /* "bin" alone is a different key. */
    s_expect_string (store, "bin", NULL);
    const char *strlen_argv[] = { "STRLEN", key };
    size_t strlen_lens[] = { 6, sizeof key - 1 };
    CHECK_EQ_INT (s_integer (store, orr_store_commandv (store, 2, strlen_argv, strlen_lens)),
                  sizeof value - 1);
}

#define PIPELINE_N 10000

static void
test_pipeline (orr_store_t *store, orr_store_t *killer)
{
    redisReply **replies = orr_zalloc (PIPELINE_N * sizeof *replies);
    for (int i = 0; i < PIPELINE_N; i++)
        CHECK (orr_store_append (store, "INCR %s", "counter") == 0, "%s", orr_store_error (store));
    CHECK_EQ_INT (orr_store_pending (store), PIPELINE_N);
    /* No plain command while replies are due. */
    CHECK_TRUE (orr_store_command (store, "PING") == NULL);
    CHECK (strstr (orr_store_error (store), "flush"), "%s", orr_store_error (store));
    CHECK (orr_store_flush_replies (store, replies, PIPELINE_N) == 0, "%s", orr_store_error (store));
    CHECK_EQ_INT (orr_store_pending (store), 0);
    for (int i = 0; i < PIPELINE_N; i++) {
        CHECK_TRUE (replies[i] && replies[i]->type == REDIS_REPLY_INTEGER);
        CHECK_EQ_INT (replies[i]->integer, i + 1);
        freeReplyObject (replies[i]);
    }
    s_expect_string (store, "counter", "10000");

    /* argv appends, an error reply inside a pipeline, replies discarded with NULL. */
    const char *set_argv[] = { "SET", "p1", "v1" };
    CHECK_TRUE (orr_store_appendv (store, 3, set_argv, NULL) == 0);
    CHECK_TRUE (orr_store_append (store, "LPUSH greeting x") == 0);
    CHECK_TRUE (orr_store_append (store, "GET p1") == 0);
    CHECK_TRUE (orr_store_flush_replies (store, replies, 3) == 0);
    CHECK_TRUE (replies[0]->type == REDIS_REPLY_STATUS);
    CHECK_TRUE (replies[1]->type == REDIS_REPLY_ERROR);
    CHECK_TRUE (replies[2]->type == REDIS_REPLY_STRING && strcmp (replies[2]->str, "v1") == 0);
    for (int i = 0; i < 3; i++)
        freeReplyObject (replies[i]);
    CHECK_TRUE (orr_store_append (store, "SET p2 v2") == 0);
    CHECK_TRUE (orr_store_flush_replies (store, NULL, 1) == 0);
    s_expect_string (store, "p2", "v2");
    CHECK_EQ_INT (orr_store_flush_replies (store, NULL, 0), 0);   /* empty flush */

    /* Count mismatch: error, queue discarded. */
    CHECK_TRUE (orr_store_append (store, "SET p3 v3") == 0);
    CHECK_TRUE (orr_store_flush_replies (store, replies, 2) == -1);
    CHECK_TRUE (replies[0] == NULL && replies[1] == NULL);
    s_expect_string (store, "p3", NULL);

    /* Poisoned pipeline: a bad append fails the flush and nothing of it runs. */
    CHECK_TRUE (orr_store_append (store, "SET p4 v4") == 0);
    CHECK_TRUE (orr_store_append (store, "GET %q") == -1);
    CHECK_TRUE (orr_store_append (store, "SET p5 v5") == -1);   /* stays poisoned */
    CHECK_EQ_INT (orr_store_pending (store), 3);
    CHECK_TRUE (orr_store_flush_replies (store, replies, 3) == -1);
    CHECK_TRUE (replies[0] == NULL && replies[1] == NULL && replies[2] == NULL);
    s_expect_string (store, "p4", NULL);
    s_expect_string (store, "p5", NULL);

    /* Connection killed between queueing and flushing: error, not replayed. */
    long long id = s_client_id (store);
    uint64_t connects = orr_store_connects (store);
    for (int i = 0; i < PIPELINE_N; i++)
        CHECK_TRUE (orr_store_append (store, "INCR %s", "lost_counter") == 0);
    CHECK_EQ_INT (s_integer (killer, orr_store_command (killer, "CLIENT KILL ID %lld", id)), 1);
    CHECK (orr_store_flush_replies (store, replies, PIPELINE_N) == -1, "flush on a killed connection succeeded");
    for (int i = 0; i < PIPELINE_N; i++)
        CHECK_TRUE (replies[i] == NULL);
    CHECK (strstr (orr_store_error (store), "pipeline"), "%s", orr_store_error (store));
    s_expect_string (store, "lost_counter", NULL);   /* nothing ran, nothing was replayed */
    CHECK_EQ_INT (orr_store_connects (store), connects + 1);
    free (replies);
}

/* A helper thread that kills `victim_id`'s connection once it is blocked in BLPOP, then
 * pushes a value to `list`. */
typedef struct {
    const char *url;
    long long victim_id;
    const char *list;
} killer_args_t;

static void *
s_killer_thread (void *arg)
{
    killer_args_t *args = arg;
    orr_store_t *store = orr_store_thread (args->url);
    CHECK_TRUE (store);
    for (int i = 0; i < 500; i++) {
        redisReply *reply = orr_store_command (store, "CLIENT LIST ID %lld", args->victim_id);
        s_cmd_ok (store, reply, REDIS_REPLY_STRING);
        bool blocked = strstr (reply->str, "cmd=blpop") != NULL;
        freeReplyObject (reply);
        if (blocked)
            break;
        orr_sleep_ms (10);
    }
    CHECK_EQ_INT (s_integer (store, orr_store_command (store, "CLIENT KILL ID %lld", args->victim_id)), 1);
    orr_sleep_ms (50);
    CHECK_EQ_INT (s_integer (store, orr_store_command (store, "RPUSH %s %s", args->list, "item")), 1);
    orr_store_thread_release ();
    return NULL;
}

static void
test_resend (orr_store_t *store, const char *url)
{
    /* orr_store_command: the connection dies while BLPOP waits; it reconnects, resends,
     * and the resent BLPOP gets the item. */
    uint64_t connects = orr_store_connects (store);
    killer_args_t args = { url, s_client_id (store), "resend_q" };
    pthread_t thread;
    CHECK_TRUE (pthread_create (&thread, NULL, s_killer_thread, &args) == 0);
    redisReply *reply = orr_store_command (store, "BLPOP %s 4", "resend_q");
    pthread_join (thread, NULL);
    s_cmd_ok (store, reply, REDIS_REPLY_ARRAY);
    CHECK_EQ_INT (reply->elements, 2);
    CHECK_EQ_STR (reply->element[1]->str, "item");
    freeReplyObject (reply);
    CHECK_EQ_INT (orr_store_connects (store), connects + 1);

    /* orr_store_command_once: same loss, reported, not resent: the item stays queued. */
    connects = orr_store_connects (store);
    args = (killer_args_t) { url, s_client_id (store), "once_q" };
    CHECK_TRUE (pthread_create (&thread, NULL, s_killer_thread, &args) == 0);
    reply = orr_store_command_once (store, "BLPOP %s 4", "once_q");
    pthread_join (thread, NULL);
    CHECK (reply == NULL, "command_once came back with a reply after its connection died");
    CHECK_TRUE (orr_store_error (store)[0] != '\0');
    CHECK_EQ_INT (orr_store_connects (store), connects);
    CHECK_EQ_INT (s_integer (store, orr_store_command (store, "LLEN once_q")), 1);
    CHECK_EQ_INT (orr_store_connects (store), connects + 1);
}

static void
test_timeout (orr_store_t *store, pid_t redis_pid)
{
    s_expect_string (store, "greeting", "hello world");
    uint64_t connects = orr_store_connects (store);
    orr_store_set_timeouts (store, 0, 300);
    kill (redis_pid, SIGSTOP);
    int64_t start = orr_mono_ms ();
    redisReply *reply = orr_store_command (store, "GET greeting");
    int64_t elapsed = orr_mono_ms () - start;
    kill (redis_pid, SIGCONT);
    CHECK (reply == NULL, "a stopped Redis answered");
    CHECK (strstr (orr_store_error (store), "timed out"), "%s", orr_store_error (store));
    CHECK (elapsed >= 250 && elapsed < 3000, "timeout took %lld ms", (long long) elapsed);
    /* Not resent: no second connection was opened to wait another 300 ms. */
    CHECK_EQ_INT (orr_store_connects (store), connects);
    orr_store_set_timeouts (store, 0, ORR_STORE_COMMAND_TIMEOUT_MS);
    s_expect_string (store, "greeting", "hello world");
    CHECK_EQ_INT (orr_store_connects (store), connects + 1);
}

static const char *DOUBLE_LUA =
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "return tonumber(ARGV[1]) * 2\n";

static void
s_expect_double (orr_store_t *store, orr_script_t *script, const char *key, const char *n,
                 long long expected)
{
    const char *argv[] = { key, n };
    redisReply *reply = orr_store_eval (store, script, 1, 2, argv, NULL);
    CHECK_EQ_INT (s_integer (store, reply), expected);
    s_expect_string (store, key, n);
}

static long long
s_script_exists (orr_store_t *store, orr_script_t *script)
{
    redisReply *reply = orr_store_command (store, "SCRIPT EXISTS %s", orr_script_sha (script));
    s_cmd_ok (store, reply, REDIS_REPLY_ARRAY);
    CHECK_EQ_INT (reply->elements, 1);
    long long exists = reply->element[0]->integer;
    freeReplyObject (reply);
    return exists;
}

static void
test_scripts (orr_store_t *store, orr_script_t *script)
{
    /* The locally computed SHA1 is Redis's (the documented SHA of "return 1"). */
    orr_script_t *one = orr_script_new ("one", "return 1");
    CHECK_EQ_STR (orr_script_sha (one), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    CHECK_EQ_STR (orr_script_name (one), "one");
    orr_script_destroy (&one);
    CHECK_TRUE (one == NULL);
    orr_script_destroy (&one);

    CHECK_EQ_INT (s_script_exists (store, script), 0);
    s_expect_double (store, script, "doubled", "21", 42);   /* NOSCRIPT -> load -> call */
    CHECK_EQ_INT (s_script_exists (store, script), 1);      /* loaded under our SHA1 */
    s_expect_double (store, script, "doubled", "5", 10);    /* plain EVALSHA */

    redisReply *reply = orr_store_command (store, "SCRIPT FLUSH");
    s_cmd_ok (store, reply, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    CHECK_EQ_INT (s_script_exists (store, script), 0);
    s_expect_double (store, script, "doubled", "7", 14);    /* reloaded after the flush */
    CHECK_EQ_INT (s_script_exists (store, script), 1);

    /* Binary arguments with lengths; no keys. */
    orr_script_t *len_script = orr_script_new ("len", "return string.len(ARGV[1])");
    const char *argv[] = { "a\0b" };
    size_t lens[] = { 3 };
    CHECK_EQ_INT (s_integer (store, orr_store_eval (store, len_script, 0, 1, argv, lens)), 3);
    orr_script_destroy (&len_script);

    /* A Lua error and a Lua syntax error are error replies. */
    orr_script_t *boom = orr_script_new ("boom", "return redis.error_reply('boom')");
    reply = orr_store_eval (store, boom, 0, 0, NULL, NULL);
    s_cmd_ok (store, reply, REDIS_REPLY_ERROR);
    CHECK (strstr (reply->str, "boom"), "%s", reply->str);   /* Redis 7 says "ERR boom" */
    freeReplyObject (reply);
    orr_script_destroy (&boom);
    orr_script_t *broken = orr_script_new ("broken", "return +");
    reply = orr_store_eval (store, broken, 0, 0, NULL, NULL);
    s_cmd_ok (store, reply, REDIS_REPLY_ERROR);
    freeReplyObject (reply);
    orr_script_destroy (&broken);
}

/* SIGKILL Redis, check calls fail fast while it is down, restart it on the same port and
 * check the very same stores work again. */
static void
test_restart (tu_redis_t *redis, orr_store_t *store, orr_store_t *idle, orr_script_t *script)
{
    /* `idle` holds a connection that will be dead when it is next used. */
    s_expect_string (idle, "greeting", "hello world");
    uint64_t idle_connects = orr_store_connects (idle);
    uint64_t connects = orr_store_connects (store);

    tu_stop (redis->pid, SIGKILL, 2000);
    redis->pid = 0;

    orr_store_set_timeouts (store, 500, 0);
    int64_t start = orr_mono_ms ();
    CHECK (orr_store_command (store, "GET greeting") == NULL, "a dead Redis answered");
    int64_t elapsed = orr_mono_ms () - start;
    CHECK (elapsed < 2000, "failing took %lld ms", (long long) elapsed);
    CHECK (strstr (orr_store_error (store), "connect"), "%s", orr_store_error (store));
    const char *argv[] = { "k", "1" };
    CHECK_TRUE (orr_store_eval (store, script, 1, 2, argv, NULL) == NULL);
    CHECK_TRUE (orr_store_append (store, "PING") == -1);
    CHECK_TRUE (orr_store_flush_replies (store, NULL, 1) == -1);
    CHECK_EQ_INT (orr_store_connects (store), connects);

    char *sock = orr_sprintf ("%s/redis.sock", redis->dir);
    const char *extra[] = { "--unixsocket", sock, "--unixsocketperm", "700", NULL };
    redis->pid = s_spawn_redis (redis->port, redis->dir, extra);

    /* Same store object, new server (empty: the old data died with the old one). */
    s_expect_string (store, "greeting", NULL);
    redisReply *reply = orr_store_command (store, "SET greeting again");
    s_cmd_ok (store, reply, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    CHECK_EQ_INT (orr_store_connects (store), connects + 1);
    CHECK_EQ_STR (orr_store_error (store), "");
    /* The new server has no scripts: NOSCRIPT reload again. */
    s_expect_double (store, script, "doubled", "50", 100);

    /* The idle store's dead connection is noticed BEFORE sending, so even the never-
     * resending variant succeeds. */
    reply = orr_store_command_once (idle, "GET greeting");
    s_cmd_ok (idle, reply, REDIS_REPLY_STRING);
    CHECK_EQ_STR (reply->str, "again");
    freeReplyObject (reply);
    CHECK_EQ_INT (orr_store_connects (idle), idle_connects + 1);

    /* Unix socket, db 2. */
    char *unix_url = orr_sprintf ("unix://%s?db=2", sock);
    orr_store_t *via_unix = orr_store_new (unix_url);
    CHECK_TRUE (via_unix);
    reply = orr_store_command (via_unix, "SET where unix-db2");
    s_cmd_ok (via_unix, reply, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    char *db2_url = orr_sprintf ("redis://127.0.0.1:%d/2", redis->port);
    orr_store_t *db2 = orr_store_new (db2_url);
    CHECK_TRUE (db2);
    s_expect_string (db2, "where", "unix-db2");
    s_expect_string (store, "where", NULL);   /* db 0 */
    orr_store_destroy (&db2);
    orr_store_destroy (&via_unix);
    free (db2_url);
    free (unix_url);
    free (sock);
}

/* Two threads hold their own store at the same time (a barrier keeps both alive, so a
 * reused address cannot fake distinctness). Thread 0 releases explicitly, thread 1 relies
 * on the thread-exit destructor (the leak checker of the sanitizer build checks it). */
typedef struct {
    const char *url;
    int index;
    pthread_barrier_t *barrier;
    orr_store_t *store;
} thread_args_t;

static void *
s_store_thread (void *arg)
{
    thread_args_t *args = arg;
    orr_store_t *store = orr_store_thread (args->url);
    CHECK_TRUE (store);
    CHECK (orr_store_thread (args->url) == store, "same thread, same URL, different store");
    CHECK_TRUE (orr_store_thread ("not a url") == NULL);
    redisReply *reply = orr_store_command (store, "SET thread:%d %d", args->index, args->index);
    s_cmd_ok (store, reply, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    args->store = store;
    pthread_barrier_wait (args->barrier);   /* both stores exist now */
    pthread_barrier_wait (args->barrier);   /* main has compared them */
    if (args->index == 0)
        orr_store_thread_release ();
    return NULL;
}

static void
test_threads (const char *url)
{
    pthread_barrier_t barrier;
    pthread_barrier_init (&barrier, NULL, 3);
    thread_args_t args[2] = { { url, 0, &barrier, NULL }, { url, 1, &barrier, NULL } };
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        CHECK_TRUE (pthread_create (&threads[i], NULL, s_store_thread, &args[i]) == 0);
    pthread_barrier_wait (&barrier);
    orr_store_t *mine = orr_store_thread (url);
    CHECK_TRUE (args[0].store && args[1].store && mine);
    CHECK (args[0].store != args[1].store, "two threads got the same store");
    CHECK_TRUE (mine != args[0].store && mine != args[1].store);
    pthread_barrier_wait (&barrier);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    pthread_barrier_destroy (&barrier);
    /* destroy() must not free a per-thread store (the thread still lists it). */
    orr_store_t *alias = mine;
    orr_store_destroy (&alias);
    CHECK_TRUE (alias == NULL);
    CHECK_TRUE (orr_store_thread (url) == mine);
    s_expect_string (mine, "thread:0", "0");
    s_expect_string (mine, "thread:1", "1");
    orr_store_thread_release ();
    orr_store_thread_release ();   /* twice is fine */
}

int
main (void)
{
    orr_log_init ("test_store", "test");
    test_urls ();
    test_keys ();

    tu_redis_t redis;
    CHECK (tu_redis_start (&redis) == 0, "cannot start redis-server");
    test_keys_against_redis (redis.dir);

    orr_store_t *store = orr_store_new (redis.url);
    orr_store_t *killer = orr_store_new (redis.url);
    orr_store_t *idle = orr_store_new (redis.url);
    CHECK_TRUE (store && killer && idle);
    orr_script_t *script = orr_script_new ("double", DOUBLE_LUA);

    test_basic (store);
    test_pipeline (store, killer);
    test_resend (store, redis.url);
    test_scripts (store, script);
    test_timeout (store, redis.pid);
    test_restart (&redis, store, idle, script);
    test_threads (redis.url);

    orr_script_destroy (&script);
    orr_store_destroy (&idle);
    orr_store_destroy (&killer);
    orr_store_destroy (&store);
    tu_redis_stop (&redis);
    printf ("test_store: ok\n");
    return 0;
}
