/*  test_spawner_records: server records, the spawn queue and fenced leases
 *  (services/spawner/spawner_records.c) against a real redis-server.
 *
 *  Covers: (a) the Lua scripts build the same keys as lib/orr_keys.c for awkward names
 *  (braces, ':', '%', space, UTF-8, control bytes, DEL, a server "gpu:1"), and write no
 *  other per-user key; (b) the queue: positions, FIFO takes, an idempotent repeated spawn;
 *  (c) named-server and active-server limits; (d) spawn/stop in every state, cancel,
 *  404, remove; (e) fencing: a claim only after the lease expired, a new larger fence, the
 *  old fence refused by update/finish/renew without touching the record, renew's stop flag;
 *  (f) the concurrency limit of takes; (g) hand-over to a node and a claim that succeeds
 *  once; (h) expired leases, finish "stopped" clearing every index, and remove.
 */
#include "spawner_records.h"
#include "orr_keys.h"
#include "orr_log.h"
#include "orr_store.h"
#include "orr_util.h"
#include "testutil.h"

#include <string.h>
#include <unistd.h>

#define CHECK_TRUE(cond) CHECK (cond, "%s", "")

static orr_store_t *s_store;
static int s_checks;

#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        CHECK (cond, __VA_ARGS__);                                                                                     \
        s_checks++;                                                                                                    \
    } while (0)
#define EXPECT_INT(a, b)                                                                                               \
    do {                                                                                                               \
        CHECK_EQ_INT (a, b);                                                                                           \
        s_checks++;                                                                                                    \
    } while (0)
#define EXPECT_STR(a, b)                                                                                               \
    do {                                                                                                               \
        CHECK_EQ_STR (a, b);                                                                                           \
        s_checks++;                                                                                                    \
    } while (0)

static const srec_limits_t s_no_limits = { .allow_named = true, .named_limit = 0, .active_limit = 0 };

/* --- Redis helpers ------------------------------------------------------------------------ */

static redisReply *
s_cmdv (int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen (argv[i]);
    redisReply *r = orr_store_commandv (s_store, argc, argv, lens);
    CHECK (r != NULL, "%s: no reply: %s", argv[0], orr_store_error (s_store));
    CHECK (r->type != REDIS_REPLY_ERROR, "%s: %s", argv[0], r->str);
    return r;
}

static long long
s_int2 (const char *cmd, const char *key)
{
    const char *argv[] = { cmd, key };
    redisReply *r = s_cmdv (2, argv);
    CHECK (r->type == REDIS_REPLY_INTEGER, "%s %s: reply type %d", cmd, key, r->type);
    long long v = r->integer;
    freeReplyObject (r);
    return v;
}

static long long
s_int3 (const char *cmd, const char *key, const char *arg)
{
    const char *argv[] = { cmd, key, arg };
    redisReply *r = s_cmdv (3, argv);
    CHECK (r->type == REDIS_REPLY_INTEGER, "%s %s: reply type %d", cmd, key, r->type);
    long long v = r->integer;
    freeReplyObject (r);
    return v;
}

static void
s_flushall (void)
{
    const char *argv[] = { "FLUSHALL" };
    freeReplyObject (s_cmdv (1, argv));
}

static bool
s_exists (const char *key)
{
    return s_int2 ("EXISTS", key) == 1;
}

static bool
s_index_has (orr_index_t index, const char *user, const char *server)
{
    char *key = orr_key_index (index);
    char *m = srec_member (user, server);
    bool has;
    if (index == ORR_INDEX_SPAWNING || index == ORR_INDEX_ACTIVE)
        has = s_int3 ("SISMEMBER", key, m) == 1;
    else {
        const char *argv[] = { "ZSCORE", key, m };
        redisReply *r = s_cmdv (3, argv);
        CHECK (r->type == REDIS_REPLY_NIL || r->type == REDIS_REPLY_STRING,
               "ZSCORE reply type %d", r->type);
        has = r->type != REDIS_REPLY_NIL;
        freeReplyObject (r);
    }
    free (m);
    free (key);
    return has;
}

static long long
s_index_card (orr_index_t index)
{
    char *key = orr_key_index (index);
    long long n = (index == ORR_INDEX_SPAWNING || index == ORR_INDEX_ACTIVE) ? s_int2 ("SCARD", key)
                                                                               : s_int2 ("ZCARD", key);
    free (key);
    return n;
}

static bool
s_in_servers (const char *user, const char *server)
{
    char *key = orr_key_user_servers (user);
    bool has = s_int3 ("SISMEMBER", key, server) == 1;
    free (key);
    return has;
}

/* One field of the record (read through the C key builder), "" when absent. Caller frees. */
static char *
s_field (const char *user, const char *server, const char *field)
{
    char *key = orr_key_server (user, server);
    const char *argv[] = { "HGET", key, field };
    redisReply *r = s_cmdv (3, argv);
    char *v = orr_strdup (r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject (r);
    free (key);
    return v;
}

static void
s_expect_field (const char *user, const char *server, const char *field, const char *value)
{
    char *v = s_field (user, server, field);
    CHECK (strcmp (v, value) == 0, "%s/%s %s = \"%s\", expected \"%s\"", user, server, field, v, value);
    s_checks++;
    free (v);
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The whole record as sorted "field=value" lines (for before/after comparisons). */
static char *
s_record_text (const char *user, const char *server)
{
    char *key = orr_key_server (user, server);
    const char *argv[] = { "HGETALL", key };
    redisReply *r = s_cmdv (2, argv);
    CHECK (r->type == REDIS_REPLY_ARRAY, "HGETALL type %d", r->type);
    size_t n = r->elements / 2;
    char **lines = orr_zalloc ((n + 1) * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        lines[i] = orr_sprintf ("%s=%s", r->element[2 * i]->str, r->element[2 * i + 1]->str);
    qsort (lines, n, sizeof (char *), s_cmp_str);
    char *text = orr_strdup ("");
    for (size_t i = 0; i < n; i++) {
        char *t = orr_sprintf ("%s%s\n", text, lines[i]);
        free (text);
        text = t;
    }
    orr_strv_free (&lines);
    freeReplyObject (r);
    free (key);
    return text;
}

/* Every key matching `pattern`, sorted, NULL-terminated; count in *n. */
static char **
s_scan (const char *pattern, size_t *n)
{
    size_t cap = 16;
    char **keys = orr_zalloc (cap * sizeof (char *));
    *n = 0;
    char cursor[32] = "0";
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
        redisReply *r = s_cmdv (6, argv);
        CHECK (r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN reply");
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            if (*n + 2 > cap) {
                cap *= 2;
                keys = orr_realloc (keys, cap * sizeof (char *));
            }
            keys[(*n)++] = orr_strndup (r->element[1]->element[i]->str, r->element[1]->element[i]->len);
            keys[*n] = NULL;
        }
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0);
    qsort (keys, *n, sizeof (char *), s_cmp_str);
    return keys;
}

/* --- srec helpers --------------------------------------------------------------------------- */

static srec_answer_t
s_spawn (const char *user, const char *server, const srec_limits_t *limits)
{
    char *url = orr_sprintf ("/user/%s/%s", user, server);
    srec_answer_t a;
    memset (&a, 0x5a, sizeof a);
    srec_status_t rc = srec_spawn (s_store, user, server, "", url, limits ? limits : &s_no_limits, &a);
    CHECK (rc == SREC_OK, "srec_spawn(%s, %s) = %d", user, server, rc);
    free (url);
    return a;
}

static void
s_spawn_queued (const char *user, const char *server, int position)
{
    srec_answer_t a = s_spawn (user, server, NULL);
    EXPECT (a.status == 200, "spawn %s/%s: %d %s", user, server, a.status, a.message);
    EXPECT_STR (a.state, "queued");
    EXPECT_INT (a.queue_position, position);
    EXPECT (a.changed, "spawn %s/%s: a new queue entry is a change", user, server);
}

static srec_answer_t
s_stop (const char *user, const char *server, bool remove)
{
    srec_answer_t a;
    memset (&a, 0x5a, sizeof a);
    srec_status_t rc = srec_stop (s_store, user, server, remove, &a);
    CHECK (rc == SREC_OK, "srec_stop(%s, %s) = %d", user, server, rc);
    return a;
}

/* Takes the queue's head, which must be user/server; returns its fence. */
static int64_t
s_take_expect (const char *replica, int64_t lease_ms, int64_t max, const char *user, const char *server)
{
    srec_t rec;
    memset (&rec, 0, sizeof rec);
    srec_status_t rc = srec_take (s_store, replica, lease_ms, max, &rec);
    EXPECT (rc == SREC_OK, "take: %d (expected %s/%s)", rc, user, server);
    EXPECT_STR (rec.user, user);
    EXPECT_STR (rec.server, server);
    EXPECT_STR (rec.state, "pending_spawn");
    EXPECT_STR (rec.holder, replica);
    EXPECT (rec.fence > 0, "fence %lld", (long long) rec.fence);
    int64_t fence = rec.fence;
    srec_clear (&rec);
    s_expect_field (user, server, "state", "pending_spawn");
    char *f = orr_sprintf ("%lld", (long long) fence);
    s_expect_field (user, server, "fence", f);
    free (f);
    return fence;
}

static void
s_take_nothing (int64_t max)
{
    srec_t rec;
    memset (&rec, 0, sizeof rec);
    srec_status_t rc = srec_take (s_store, "r-none", 30000, max, &rec);
    EXPECT (rc == SREC_FENCED, "take gave %d (%s/%s), expected nothing", rc, rec.user ? rec.user : "",
            rec.server ? rec.server : "");
    srec_clear (&rec);
}

static void
s_finish_ok (const char *user, const char *server, int64_t fence, const char *outcome)
{
    bool stop = true;
    srec_status_t rc = srec_finish (s_store, user, server, fence, outcome, "done", "", 30000, &stop);
    EXPECT (rc == SREC_OK, "finish %s/%s %s with fence %lld: %d", user, server, outcome, (long long) fence, rc);
}

/* --- (a) keys ------------------------------------------------------------------------------- */

static void
test_keys (void)
{
    s_flushall ();
    const char *users[] = { "a}b", "x:y", "p%q", "sp ace", "zo\xc3\xab", "c\x01" "d", "t\tab", "del\x7f", "{u:a}b",
                            "plain" };
    /* user names never hold control bytes (auth_username_ok) but server names may: a
     * member "user\nserver" splits at its first newline */
    const char *servers[] = { "", "gpu:1", "s}{%", "with space", "n\nl" };
    const size_t nu = sizeof users / sizeof users[0], ns = sizeof servers / sizeof servers[0];
    size_t nexpected = 0;
    char **expected = orr_zalloc ((3 * nu * ns + 1) * sizeof (char *));
    int position = 0;
    for (size_t i = 0; i < nu; i++)
        for (size_t j = 0; j < ns; j++) {
            s_spawn_queued (users[i], servers[j], ++position);
            char *key = orr_key_server (users[i], servers[j]);
            EXPECT (s_exists (key), "no record at %s", key);
            expected[nexpected++] = key;
            EXPECT (s_in_servers (users[i], servers[j]), "%s not in %s's servers", servers[j], users[i]);
            EXPECT (s_index_has (ORR_INDEX_SPAWN_QUEUE, users[i], servers[j]), "not queued");
            EXPECT (s_index_has (ORR_INDEX_ACTIVE, users[i], servers[j]), "not active");
            s_expect_field (users[i], servers[j], "user", users[i]);
            s_expect_field (users[i], servers[j], "name", servers[j]);
            s_expect_field (users[i], servers[j], "state", "queued");
            /* and the reader finds it */
            srec_t rec;
            EXPECT (srec_read (s_store, users[i], servers[j], &rec) == SREC_OK, "read");
            EXPECT_STR (rec.state, "queued");
            EXPECT_STR (rec.user, users[i]);
            EXPECT_STR (rec.server, servers[j]);
            EXPECT_STR (rec.user_options, "{}");
            srec_clear (&rec);
        }
    for (size_t i = 0; i < nu; i++)
        expected[nexpected++] = orr_key_user_servers (users[i]);
    qsort (expected, nexpected, sizeof (char *), s_cmp_str);
    size_t n;
    char **keys = s_scan ("orr:{u:*", &n);
    EXPECT_INT (n, nexpected);
    for (size_t i = 0; i < n; i++)
        EXPECT (strcmp (keys[i], expected[i]) == 0, "key %zu: \"%s\", expected \"%s\"", i, keys[i], expected[i]);
    orr_strv_free (&keys);

    /* taking them all (FIFO) makes the fence counters: under orr_key_user_fence, nowhere else */
    for (size_t i = 0; i < nu; i++)
        for (size_t j = 0; j < ns; j++)
            s_take_expect ("r1", 30000, 0, users[i], servers[j]);
    s_take_nothing (0);
    for (size_t i = 0; i < nu; i++) {
        char *key = orr_key_user_fence (users[i]);
        EXPECT (s_exists (key), "no fence counter at %s", key);
        EXPECT_INT (s_int2 ("STRLEN", key), 1);   /* 1..4 */
        expected[nexpected++] = key;
    }
    qsort (expected, nexpected, sizeof (char *), s_cmp_str);
    keys = s_scan ("orr:{u:*", &n);
    EXPECT_INT (n, nexpected);
    for (size_t i = 0; i < n; i++)
        EXPECT (strcmp (keys[i], expected[i]) == 0, "key %zu: \"%s\", expected \"%s\"", i, keys[i], expected[i]);
    orr_strv_free (&keys);
    orr_strv_free (&expected);

    /* the member format */
    char *m = srec_member ("a}b", "gpu:1");
    EXPECT_STR (m, "a}b\ngpu:1");
    char *u = NULL, *s = NULL;
    EXPECT (srec_member_split (m, &u, &s), "split");
    EXPECT_STR (u, "a}b");
    EXPECT_STR (s, "gpu:1");
    free (u);
    free (s);
    free (m);
    m = srec_member ("alice", NULL);
    EXPECT_STR (m, "alice\n");
    free (m);
    EXPECT (!srec_member_split ("no-newline", &u, &s), "split without a newline");

    size_t nactive;
    char **active = srec_active (s_store, &nactive);
    EXPECT_INT (nactive, nu * ns);
    orr_strv_free (&active);
}

/* --- (b) queue ------------------------------------------------------------------------------ */

static void
test_queue (void)
{
    s_flushall ();
    const char *users[] = { "q1", "q2", "q3", "q4", "q5" };
    for (int i = 0; i < 5; i++)
        s_spawn_queued (users[i], "", i + 1);
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 5);

    /* a repeated spawn answers the position and queues nothing */
    srec_answer_t a = s_spawn ("q3", "", NULL);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "queued");
    EXPECT_INT (a.queue_position, 3);
    EXPECT (!a.changed, "a repeated spawn of a queued server is no change (no second server.pending)");
    a = s_spawn ("q1", "", NULL);
    EXPECT_INT (a.queue_position, 1);
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 5);

    /* FIFO */
    s_take_expect ("r1", 30000, 0, "q1", "");
    a = s_spawn ("q5", "", NULL);
    EXPECT_INT (a.queue_position, 4);
    /* a pending one answers pending_spawn */
    a = s_spawn ("q1", "", NULL);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "pending_spawn");
    EXPECT (!a.changed, "pending spawn is no change");
    for (int i = 1; i < 5; i++)
        s_take_expect ("r1", 30000, 0, users[i], "");
    s_take_nothing (0);
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 0);
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWNING), 5);
    EXPECT_INT (s_index_card (ORR_INDEX_LEASES), 5);

    /* a cancelled entry leaves the queue; the others keep their order */
    s_flushall ();
    for (int i = 0; i < 5; i++)
        s_spawn_queued (users[i], "", i + 1);
    a = s_stop ("q2", "", false);
    EXPECT_STR (a.state, "stopped");
    a = s_spawn ("q4", "", NULL);
    EXPECT_INT (a.queue_position, 3);
    /* a respawn after cancelling goes to the end */
    s_spawn_queued ("q2", "", 5);
    s_take_expect ("r1", 30000, 0, "q1", "");
    s_take_expect ("r1", 30000, 0, "q3", "");
    s_take_expect ("r1", 30000, 0, "q4", "");
    s_take_expect ("r1", 30000, 0, "q5", "");
    s_take_expect ("r1", 30000, 0, "q2", "");
    s_take_nothing (0);
}

/* --- (c) limits ----------------------------------------------------------------------------- */

static void
test_limits (void)
{
    s_flushall ();
    srec_limits_t off = { .allow_named = false };
    srec_answer_t a = s_spawn ("alice", "gpu", &off);
    EXPECT_INT (a.status, 400);
    EXPECT_STR (a.message, "Named servers are not enabled.");
    EXPECT (!s_exists ("orr:{u:alice}:server:gpu"), "refused spawn wrote a record");
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 0);
    a = s_spawn ("alice", "", &off);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "queued");

    srec_limits_t two = { .allow_named = true, .named_limit = 2 };
    a = s_spawn ("bob", "n1", &two);
    EXPECT_INT (a.status, 200);
    a = s_spawn ("bob", "n2", &two);
    EXPECT_INT (a.status, 200);
    a = s_spawn ("bob", "n3", &two);
    EXPECT_INT (a.status, 400);
    EXPECT_STR (a.message, "User bob already has the maximum of named servers.");
    EXPECT (!s_in_servers ("bob", "n3"), "refused name recorded");
    /* the default server does not count and still works */
    a = s_spawn ("bob", "", &two);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "queued");
    /* existing names still answer */
    a = s_spawn ("bob", "n1", &two);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "queued");
    /* a stopped named server still counts; removed, it frees a place */
    a = s_stop ("bob", "n1", false);
    EXPECT_STR (a.state, "stopped");
    a = s_spawn ("bob", "n3", &two);
    EXPECT_INT (a.status, 400);
    a = s_stop ("bob", "n1", true);
    EXPECT_INT (a.status, 200);
    a = s_spawn ("bob", "n3", &two);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "queued");

    s_flushall ();
    srec_limits_t three = { .allow_named = true, .active_limit = 3 };
    for (int i = 1; i <= 3; i++) {
        char user[8];
        snprintf (user, sizeof user, "c%d", i);
        a = s_spawn (user, "", &three);
        EXPECT_INT (a.status, 200);
    }
    a = s_spawn ("c4", "", &three);
    EXPECT_INT (a.status, 429);
    EXPECT_STR (a.message, "Active user limit exceeded. Try again in a few minutes.");
    EXPECT (!s_exists ("orr:{u:c4}:server:"), "refused spawn wrote a record");
    /* a server already counted is not refused */
    a = s_spawn ("c1", "", &three);
    EXPECT_INT (a.status, 200);
    /* ready servers count too: take c1 and make it ready */
    int64_t f = s_take_expect ("r1", 30000, 0, "c1", "");
    s_finish_ok ("c1", "", f, "ready");
    a = s_spawn ("c4", "", &three);
    EXPECT_INT (a.status, 429);
    /* a cancelled one frees a place */
    a = s_stop ("c2", "", false);
    EXPECT_STR (a.state, "stopped");
    EXPECT_INT (s_index_card (ORR_INDEX_ACTIVE), 2);
    a = s_spawn ("c4", "", &three);
    EXPECT_INT (a.status, 200);
    a = s_spawn ("c5", "", &three);
    EXPECT_INT (a.status, 429);
}

/* --- (d) states ----------------------------------------------------------------------------- */

static void
test_states (void)
{
    s_flushall ();
    s_spawn_queued ("dora", "", 1);
    int64_t f = s_take_expect ("r1", 30000, 0, "dora", "");
    s_finish_ok ("dora", "", f, "ready");
    s_expect_field ("dora", "", "state", "ready");
    EXPECT (!s_index_has (ORR_INDEX_SPAWNING, "dora", ""), "ready but still spawning");
    EXPECT (s_index_has (ORR_INDEX_LEASES, "dora", ""), "ready keeps its lease");

    srec_answer_t a = s_spawn ("dora", "", NULL);
    EXPECT_INT (a.status, 400);
    EXPECT (strstr (a.message, "already running") != NULL, "message \"%s\"", a.message);
    s_expect_field ("dora", "", "state", "ready");

    /* stop of a ready server: pending_stop, flagged for its holder */
    a = s_stop ("dora", "", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "pending_stop");
    EXPECT (a.changed, "ready -> pending_stop is a change");
    s_expect_field ("dora", "", "state", "pending_stop");
    s_expect_field ("dora", "", "stop", "1");
    a = s_spawn ("dora", "", NULL);
    EXPECT_INT (a.status, 400);
    EXPECT (strstr (a.message, "pending stop") != NULL, "message \"%s\"", a.message);
    /* a second stop changes nothing */
    a = s_stop ("dora", "", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "pending_stop");
    EXPECT (!a.changed, "second stop is no change");
    /* remove on the default server */
    a = s_stop ("dora", "", true);
    EXPECT_INT (a.status, 400);
    EXPECT_STR (a.message, "Cannot remove the default server");
    s_expect_field ("dora", "", "remove", "");
    /* the holder ends it */
    s_finish_ok ("dora", "", f, "stopped");
    s_expect_field ("dora", "", "state", "stopped");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "dora", ""), "stopped but active");
    EXPECT (!s_index_has (ORR_INDEX_LEASES, "dora", ""), "stopped but leased");
    /* stop of a stopped server: nothing was running */
    a = s_stop ("dora", "", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "stopped");
    EXPECT (!a.changed, "stop of a stopped server is no change");
    /* and a stopped server can spawn again, with a new record */
    s_spawn_queued ("dora", "", 1);
    s_expect_field ("dora", "", "fence", "");
    s_expect_field ("dora", "", "stop", "");

    /* stop of a queued server: stopped, out of the queue and the active set */
    s_spawn_queued ("dora", "q", 2);
    a = s_stop ("dora", "q", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "stopped");
    EXPECT (a.changed, "cancel is a change");
    EXPECT (!s_index_has (ORR_INDEX_SPAWN_QUEUE, "dora", "q"), "cancelled but queued (ZSCORE not nil)");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "dora", "q"), "cancelled but active");
    s_expect_field ("dora", "q", "state", "stopped");
    EXPECT (s_in_servers ("dora", "q"), "cancel without remove keeps the name");
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 1);

    /* stop of a pending_spawn server: flagged, state kept */
    s_spawn_queued ("dora", "p", 2);
    s_take_expect ("r1", 30000, 0, "dora", "");
    int64_t fp = s_take_expect ("r1", 30000, 0, "dora", "p");
    a = s_stop ("dora", "p", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "pending_spawn");
    s_expect_field ("dora", "p", "stop", "1");
    s_expect_field ("dora", "p", "state", "pending_spawn");
    bool stop = false;
    EXPECT (srec_update (s_store, "dora", "p", fp, 0, &stop, NULL) == SREC_OK, "update");
    EXPECT (stop, "the holder sees the stop");

    /* unknown servers */
    a = s_stop ("dora", "nope", false);
    EXPECT_INT (a.status, 404);
    EXPECT (!s_exists ("orr:{u:dora}:server:nope"), "404 wrote a record");
    a = s_stop ("nobody", "", false);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "stopped");
    EXPECT (!a.changed, "nothing to stop");
    EXPECT (!s_exists ("orr:{u:nobody}:server:"), "stop wrote a record");

    /* remove of a stopped named server: record and name gone */
    EXPECT (s_exists ("orr:{u:dora}:server:q"), "record q");
    a = s_stop ("dora", "q", true);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "stopped");
    EXPECT (!s_exists ("orr:{u:dora}:server:q"), "removed record still there");
    EXPECT (!s_in_servers ("dora", "q"), "removed name still in servers");
    EXPECT (s_in_servers ("dora", "p"), "other names kept");
    EXPECT (s_in_servers ("dora", ""), "default kept");
    /* gone: now unknown */
    a = s_stop ("dora", "q", true);
    EXPECT_INT (a.status, 404);
    /* remove of a queued named server: deleted at once */
    s_spawn_queued ("dora", "r", 1);
    a = s_stop ("dora", "r", true);
    EXPECT_INT (a.status, 200);
    EXPECT_STR (a.state, "stopped");
    EXPECT (!s_exists ("orr:{u:dora}:server:r"), "removed queued record still there");
    EXPECT (!s_in_servers ("dora", "r"), "removed queued name still in servers");
    EXPECT (!s_index_has (ORR_INDEX_SPAWN_QUEUE, "dora", "r"), "removed but queued");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "dora", "r"), "removed but active");
    /* a failed server answers failed to a stop, and spawns again */
    s_spawn_queued ("fay", "", 1);
    int64_t ff = s_take_expect ("r1", 30000, 0, "fay", "");
    EXPECT (srec_finish (s_store, "fay", "", ff, "failed", "Spawn failed", "boom", 0, NULL) == SREC_OK, "fail");
    s_expect_field ("fay", "", "reason", "boom");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "fay", ""), "failed but active");
    a = s_stop ("fay", "", false);
    EXPECT_STR (a.state, "failed");
    s_spawn_queued ("fay", "", 1);
    s_expect_field ("fay", "", "reason", "");
}

/* --- (e) fencing ---------------------------------------------------------------------------- */

static void
test_fencing (void)
{
    s_flushall ();
    s_spawn_queued ("eve", "gpu", 1);
    int64_t f1 = s_take_expect ("rA", 300, 0, "eve", "gpu");
    srec_t rec;
    memset (&rec, 0, sizeof rec);
    EXPECT (srec_claim (s_store, "eve", "gpu", "rB", NULL, 30000, &rec) == SREC_FENCED,
            "claim while the lease is valid");
    srec_clear (&rec);
    s_expect_field ("eve", "gpu", "holder", "rA");
    usleep (450 * 1000);
    EXPECT (srec_claim (s_store, "eve", "gpu", "rB", NULL, 30000, &rec) == SREC_OK, "claim after the lease expired");
    int64_t f2 = rec.fence;
    EXPECT (f2 > f1, "new fence %lld after %lld", (long long) f2, (long long) f1);
    EXPECT_STR (rec.holder, "rB");
    EXPECT_STR (rec.state, "pending_spawn");
    EXPECT_STR (rec.user, "eve");
    EXPECT_STR (rec.server, "gpu");
    srec_clear (&rec);
    /* a second claim by someone else fails: rB's new lease is valid */
    EXPECT (srec_claim (s_store, "eve", "gpu", "rC", NULL, 30000, &rec) == SREC_FENCED, "claim of a fresh lease");
    srec_clear (&rec);

    /* the old holder is refused and changes nothing */
    char *before = s_record_text ("eve", "gpu");
    const char *pairs[] = { "node", "evil", "target", "http://127.0.0.1:1", NULL };
    bool stop = true;
    EXPECT (srec_update (s_store, "eve", "gpu", f1, 30000, &stop, pairs) == SREC_FENCED, "update with old fence");
    EXPECT (srec_finish (s_store, "eve", "gpu", f1, "ready", "Server ready", "", 30000, &stop) == SREC_FENCED,
            "finish ready with old fence");
    EXPECT (srec_finish (s_store, "eve", "gpu", f1, "failed", "failed", "old", 0, &stop) == SREC_FENCED,
            "finish failed with old fence");
    EXPECT (srec_finish (s_store, "eve", "gpu", f1, "stopped", "stopped", "", 0, &stop) == SREC_FENCED,
            "finish stopped with old fence");
    char *users[] = { "eve" }, *servers[] = { "gpu" };
    int64_t fences[] = { f1 };
    int out[1] = { -1 };
    EXPECT (srec_renew (s_store, 1, users, servers, fences, 30000, out) == SREC_OK, "renew");
    EXPECT_INT (out[0], 0);
    char *after = s_record_text ("eve", "gpu");
    EXPECT (strcmp (before, after) == 0, "the stale holder changed the record:\n%s---\n%s", before, after);
    EXPECT (s_index_has (ORR_INDEX_SPAWNING, "eve", "gpu"), "still spawning");
    EXPECT (s_index_has (ORR_INDEX_ACTIVE, "eve", "gpu"), "still active");
    free (before);
    free (after);

    /* the current holder writes */
    stop = true;
    EXPECT (srec_update (s_store, "eve", "gpu", f2, 0, &stop, pairs) == SREC_OK, "update with the current fence");
    EXPECT (!stop, "no stop asked");
    s_expect_field ("eve", "gpu", "node", "evil");
    s_expect_field ("eve", "gpu", "target", "http://127.0.0.1:1");
    const char *del[] = { "target", "", NULL };
    EXPECT (srec_update (s_store, "eve", "gpu", f2, 0, NULL, del) == SREC_OK, "delete a field");
    s_expect_field ("eve", "gpu", "target", "");
    /* renewal: stale 0, current 1, after a stop 2 */
    char *lease_before = s_field ("eve", "gpu", "lease_ms");
    usleep (20 * 1000);
    char *users2[] = { "eve", "eve" }, *servers2[] = { "gpu", "gpu" };
    int64_t fences2[] = { f1, f2 };
    int out2[2] = { -1, -1 };
    EXPECT (srec_renew (s_store, 2, users2, servers2, fences2, 60000, out2) == SREC_OK, "renew");
    EXPECT_INT (out2[0], 0);
    EXPECT_INT (out2[1], 1);
    char *lease_after = s_field ("eve", "gpu", "lease_ms");
    EXPECT (strtoll (lease_after, NULL, 10) > strtoll (lease_before, NULL, 10), "lease %s not renewed past %s",
            lease_after, lease_before);
    free (lease_before);
    free (lease_after);
    srec_answer_t a = s_stop ("eve", "gpu", false);
    EXPECT_INT (a.status, 200);
    out2[0] = out2[1] = -1;
    EXPECT (srec_renew (s_store, 2, users2, servers2, fences2, 60000, out2) == SREC_OK, "renew");
    EXPECT_INT (out2[0], 0);
    EXPECT_INT (out2[1], 2);
    /* the holder finishes with its fence; the stop is reported */
    stop = false;
    EXPECT (srec_finish (s_store, "eve", "gpu", f2, "ready", "Server ready", "", 30000, &stop) == SREC_OK, "finish");
    EXPECT (stop, "finish reports the stop");
    s_expect_field ("eve", "gpu", "state", "ready");
    EXPECT (srec_finish (s_store, "eve", "gpu", f2, "stopped", "Server stopped", "", 0, &stop) == SREC_OK, "finish");
    s_expect_field ("eve", "gpu", "state", "stopped");
    s_expect_field ("eve", "gpu", "holder", "");
    s_expect_field ("eve", "gpu", "stop", "");
    /* a claim of a stopped server fails and cleans its indexes */
    EXPECT (srec_claim (s_store, "eve", "gpu", "rC", NULL, 30000, &rec) == SREC_FENCED, "claim of a stopped server");
    srec_clear (&rec);
    /* renew of many at once, with a missing record among them */
    char *users3[] = { "eve", "ghost" }, *servers3[] = { "gpu", "" };
    int64_t fences3[] = { f2, 1 };
    int out3[2] = { -1, -1 };
    EXPECT (srec_renew (s_store, 2, users3, servers3, fences3, 60000, out3) == SREC_OK, "renew");
    EXPECT_INT (out3[1], 0);
    EXPECT (srec_renew (s_store, 0, NULL, NULL, NULL, 60000, NULL) == SREC_OK, "renew of none");
    EXPECT (!s_exists ("orr:{u:ghost}:server:"), "renew created a record");
}

/* --- (f) concurrency limit -------------------------------------------------------------------- */

static void
test_concurrency (void)
{
    s_flushall ();
    s_spawn_queued ("f1", "", 1);
    s_spawn_queued ("f2", "", 2);
    s_spawn_queued ("f3", "", 3);
    int64_t fa = s_take_expect ("r1", 30000, 2, "f1", "");
    int64_t fb = s_take_expect ("r2", 30000, 2, "f2", "");
    s_take_nothing (2);
    s_take_nothing (2);
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWN_QUEUE), 1);
    EXPECT (s_index_has (ORR_INDEX_SPAWN_QUEUE, "f3", ""), "f3 left the queue without being taken");
    s_expect_field ("f3", "", "state", "queued");
    /* an update does not free a place; a finished spawn does */
    EXPECT (srec_update (s_store, "f1", "", fa, 30000, NULL, NULL) == SREC_OK, "update");
    s_take_nothing (2);
    s_finish_ok ("f1", "", fa, "ready");
    EXPECT_INT (s_index_card (ORR_INDEX_SPAWNING), 1);
    s_take_expect ("r1", 30000, 2, "f3", "");
    s_take_nothing (2);
    s_take_nothing (0);
    (void) fb;
}

/* --- (g) hand-over ------------------------------------------------------------------------------ */

static void
test_handover (void)
{
    s_flushall ();
    s_spawn_queued ("gus", "nb", 1);
    int64_t f = s_take_expect ("r1", 30000, 0, "gus", "nb");
    const char *pairs[] = { "holder", "node:n1", "node", "n1", NULL };
    EXPECT (srec_update (s_store, "gus", "nb", f, 0, NULL, pairs) == SREC_OK, "hand to node n1");
    char *m = srec_member ("gus", "nb");
    EXPECT (srec_handover_pop (s_store, "n1") == NULL, "empty list");
    EXPECT_INT (srec_handover_push (s_store, "n1", m), 0);
    char *key = orr_key_node_starts ("n1");
    EXPECT_INT (s_int2 ("LLEN", key), 1);
    free (key);
    EXPECT (srec_handover_pop (s_store, "n2") == NULL, "another node's list");
    char *popped = srec_handover_pop (s_store, "n1");
    EXPECT (popped != NULL, "pop");
    EXPECT_STR (popped, m);
    free (popped);
    EXPECT (srec_handover_pop (s_store, "n1") == NULL, "popped twice");

    srec_t rec;
    memset (&rec, 0, sizeof rec);
    /* the lease is valid: only the expected holder opens it */
    EXPECT (srec_claim (s_store, "gus", "nb", "agent1", "node:n2", 30000, &rec) == SREC_FENCED, "wrong holder");
    srec_clear (&rec);
    EXPECT (srec_claim (s_store, "gus", "nb", "agent1", "node:n1", 30000, &rec) == SREC_OK, "hand-over claim");
    EXPECT (rec.fence > f, "fence %lld after %lld", (long long) rec.fence, (long long) f);
    EXPECT_STR (rec.holder, "agent1");
    EXPECT_STR (rec.node, "n1");
    int64_t f2 = rec.fence;
    srec_clear (&rec);
    EXPECT (srec_claim (s_store, "gus", "nb", "agent2", "node:n1", 30000, &rec) == SREC_FENCED, "second claim");
    srec_clear (&rec);
    s_expect_field ("gus", "nb", "holder", "agent1");
    EXPECT (srec_update (s_store, "gus", "nb", f, 0, NULL, pairs) == SREC_FENCED, "the replica's old fence");
    s_expect_field ("gus", "nb", "holder", "agent1");
    s_finish_ok ("gus", "nb", f2, "ready");
    free (m);
}

/* --- (h) expiry --------------------------------------------------------------------------------- */

static bool
s_list_has (char **v, size_t n, const char *m)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp (v[i], m) == 0)
            return true;
    return false;
}

static void
test_expiry (void)
{
    s_flushall ();
    s_spawn_queued ("hal", "", 1);
    s_spawn_queued ("ian", "", 2);
    int64_t f = s_take_expect ("r1", 200, 0, "hal", "");
    s_take_expect ("r1", 60000, 0, "ian", "");
    size_t n;
    char **v = srec_expired (s_store, 0, 10, &n);
    EXPECT_INT (n, 0);
    orr_strv_free (&v);
    usleep (350 * 1000);
    v = srec_expired (s_store, 0, 10, &n);
    EXPECT_INT (n, 1);
    EXPECT (s_list_has (v, n, "hal\n"), "hal expired");
    orr_strv_free (&v);
    v = srec_expired (s_store, 60000, 10, &n);   /* within the grace */
    EXPECT_INT (n, 0);
    orr_strv_free (&v);
    v = srec_expired (s_store, 0, 0, &n);        /* max 0 */
    EXPECT_INT (n, 0);
    orr_strv_free (&v);

    s_finish_ok ("hal", "", f, "stopped");
    s_expect_field ("hal", "", "state", "stopped");
    s_expect_field ("hal", "", "lease_ms", "");
    EXPECT (!s_index_has (ORR_INDEX_LEASES, "hal", ""), "stopped but in leases");
    EXPECT (!s_index_has (ORR_INDEX_SPAWNING, "hal", ""), "stopped but spawning");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "hal", ""), "stopped but active");
    EXPECT (s_index_has (ORR_INDEX_ACTIVE, "ian", ""), "ian active");
    v = srec_expired (s_store, 0, 10, &n);
    EXPECT_INT (n, 0);
    orr_strv_free (&v);

    /* remove=1 set by a stop while the holder works: the record goes at the end */
    s_spawn_queued ("jo", "gpu", 1);
    int64_t fj = s_take_expect ("r1", 200, 0, "jo", "gpu");
    srec_answer_t a = s_stop ("jo", "gpu", true);
    EXPECT_INT (a.status, 200);
    s_expect_field ("jo", "gpu", "remove", "1");
    s_expect_field ("jo", "gpu", "stop", "1");
    usleep (350 * 1000);
    v = srec_expired (s_store, 0, 10, &n);
    EXPECT_INT (n, 1);
    EXPECT (s_list_has (v, n, "jo\ngpu"), "jo/gpu expired");
    orr_strv_free (&v);
    s_finish_ok ("jo", "gpu", fj, "stopped");
    EXPECT (!s_exists ("orr:{u:jo}:server:gpu"), "removed record still there");
    EXPECT (!s_in_servers ("jo", "gpu"), "removed name still in servers");
    EXPECT (!s_index_has (ORR_INDEX_LEASES, "jo", "gpu"), "removed but in leases");
    EXPECT (!s_index_has (ORR_INDEX_SPAWNING, "jo", "gpu"), "removed but spawning");
    EXPECT (!s_index_has (ORR_INDEX_ACTIVE, "jo", "gpu"), "removed but active");
    v = srec_expired (s_store, 0, 10, &n);
    EXPECT_INT (n, 0);
    orr_strv_free (&v);
}

int
main (void)
{
    orr_log_init ("test_spawner_records", "test");
    tu_redis_t redis;
    CHECK (tu_redis_start (&redis) == 0, "redis-server did not start");
    s_store = orr_store_new (redis.url);
    CHECK_TRUE (s_store != NULL);
    srec_init ();
    srec_init ();   /* idempotent */

    test_keys ();
    test_queue ();
    test_limits ();
    test_states ();
    test_fencing ();
    test_concurrency ();
    test_handover ();
    test_expiry ();

    srec_shutdown ();
    orr_store_destroy (&s_store);
    tu_redis_stop (&redis);
    printf ("test_spawner_records: OK (%d checks)\n", s_checks);
    return 0;
}
