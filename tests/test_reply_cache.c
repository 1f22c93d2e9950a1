/*  test_reply_cache: the gateway's reply cache (services/gateway/gw_reply_cache.c) on its
 *  own -- hits and copies, expiry, invalidation, the generation check that keeps an answer
 *  computed across a change out of the cache, the memory bound, and "off". The behaviour
 *  through real gateways (events from other replicas) is tested in tests/api/test_replicas.py.
 */
#include "gw_reply_cache.h"
#include "orr_util.h"
#include "testutil.h"

#include <string.h>

static void
test_hit_is_a_copy (void)
{
    gw_reply_cache_t *c = gw_reply_cache_new (10000, 1 << 20);
    CHECK (gw_reply_cache_enabled (c));
    size_t len = 99;
    CHECK (gw_reply_cache_get (c, "t:a\n/hub/api/users", &len) == NULL, "empty cache misses");
    uint64_t g = gw_reply_cache_generation (c);
    gw_reply_cache_put (c, "t:a\n/hub/api/users", g, "[1,2,3]", 7);
    char *body = gw_reply_cache_get (c, "t:a\n/hub/api/users", &len);
    CHECK (body && len == 7 && memcmp (body, "[1,2,3]", 7) == 0 && body[7] == '\0', "stored answer comes back");
    body[0] = 'X';   /* the caller's copy, not the cache's */
    free (body);
    body = gw_reply_cache_get (c, "t:a\n/hub/api/users", &len);
    CHECK (body && body[0] == '[', "a caller's change to its copy does not reach the cache");
    free (body);
    CHECK (gw_reply_cache_get (c, "t:b\n/hub/api/users", &len) == NULL, "another credential misses");
    uint64_t hits, misses, inval;
    gw_reply_cache_stats (c, &hits, &misses, &inval);
    CHECK_EQ_INT (hits, 2);
    CHECK_EQ_INT (misses, 2);
    CHECK_EQ_INT (inval, 0);
    gw_reply_cache_destroy (&c);
    CHECK (c == NULL);
}

static void
test_expiry (void)
{
    gw_reply_cache_t *c = gw_reply_cache_new (50, 1 << 20);
    gw_reply_cache_put (c, "k", gw_reply_cache_generation (c), "{}", 2);
    size_t len;
    char *body = gw_reply_cache_get (c, "k", &len);
    CHECK (body != NULL, "fresh answer hits");
    free (body);
    orr_sleep_ms (80);
    CHECK (gw_reply_cache_get (c, "k", &len) == NULL, "an answer older than ttl_ms misses");
    gw_reply_cache_destroy (&c);
}

static void
test_invalidation_and_generation (void)
{
    gw_reply_cache_t *c = gw_reply_cache_new (10000, 1 << 20);
    size_t len;
    gw_reply_cache_put (c, "k", gw_reply_cache_generation (c), "old", 3);
    gw_reply_cache_invalidate (c);
    CHECK (gw_reply_cache_get (c, "k", &len) == NULL, "invalidate forgets every answer");
    /* a request read the generation, then a change happened while it read Redis: its
     * (possibly stale) answer must not be kept */
    uint64_t g = gw_reply_cache_generation (c);
    gw_reply_cache_invalidate (c);
    gw_reply_cache_put (c, "k", g, "stale", 5);
    CHECK (gw_reply_cache_get (c, "k", &len) == NULL, "an answer computed across a change is not stored");
    g = gw_reply_cache_generation (c);
    gw_reply_cache_put (c, "k", g, "fresh", 5);
    char *body = gw_reply_cache_get (c, "k", &len);
    CHECK (body && len == 5 && memcmp (body, "fresh", 5) == 0, "an answer computed after it is stored");
    free (body);
    gw_reply_cache_destroy (&c);
}

static void
test_bounds_and_off (void)
{
    /* room for about two 1000-byte answers */
    gw_reply_cache_t *c = gw_reply_cache_new (10000, 2600);
    char big[1000];
    memset (big, 'x', sizeof big);
    size_t len;
    gw_reply_cache_put (c, "a", gw_reply_cache_generation (c), big, sizeof big);
    gw_reply_cache_put (c, "b", gw_reply_cache_generation (c), big, sizeof big);
    char *body = gw_reply_cache_get (c, "a", &len);
    CHECK (body != NULL, "two answers fit");
    free (body);
    gw_reply_cache_put (c, "c", gw_reply_cache_generation (c), big, sizeof big);
    CHECK (gw_reply_cache_get (c, "a", &len) == NULL, "over the byte bound the cache starts over");
    body = gw_reply_cache_get (c, "c", &len);
    CHECK (body != NULL, "and keeps the newest answer");
    free (body);
    /* replacing an answer does not count it twice */
    for (int i = 0; i < 100; i++)
        gw_reply_cache_put (c, "c", gw_reply_cache_generation (c), big, sizeof big);
    gw_reply_cache_put (c, "d", gw_reply_cache_generation (c), big, sizeof big);
    body = gw_reply_cache_get (c, "c", &len);
    CHECK (body != NULL, "rewriting one key 100 times leaves room for another");
    free (body);
    char *huge = orr_zalloc (GW_REPLY_CACHE_MAX_BODY + 1);
    gw_reply_cache_t *roomy = gw_reply_cache_new (10000, 64u << 20);
    gw_reply_cache_put (roomy, "h", gw_reply_cache_generation (roomy), huge, GW_REPLY_CACHE_MAX_BODY + 1);
    CHECK (gw_reply_cache_get (roomy, "h", &len) == NULL, "an answer over GW_REPLY_CACHE_MAX_BODY is not kept");
    free (huge);
    gw_reply_cache_destroy (&roomy);
    gw_reply_cache_destroy (&c);

    gw_reply_cache_t *off = gw_reply_cache_new (0, 1 << 20);
    CHECK (!gw_reply_cache_enabled (off));
    gw_reply_cache_put (off, "k", gw_reply_cache_generation (off), "{}", 2);
    CHECK (gw_reply_cache_get (off, "k", &len) == NULL, "ttl 0 keeps nothing");
    gw_reply_cache_destroy (&off);
}

int
main (void)
{
    test_hit_is_a_copy ();
    test_expiry ();
    test_invalidation_and_generation ();
    test_bounds_and_off ();
    printf ("test_reply_cache: ok\n");
    return 0;
}
