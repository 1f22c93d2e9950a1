/*  test_sched_concurrent: three scheduler replicas place 5,000 servers of mixed sizes at
 *  once onto 50 nodes of mixed capacity until nothing more fits.
 *
 *  Checked, from Redis, by the clients themselves:
 *  - after every placement, the chosen node's reservations do not exceed its capacity;
 *  - every request is either placed or refused with Kubernetes-style counted reasons;
 *  - after every refusal, a fresh read of all 50 nodes finds none with room for the request
 *    (reservations only grow in this test, so "no room right after" is implied by "no room
 *    at that moment": a scheduler that gave up early after losing a race shows up here);
 *  - at the end, every node's reserved sums equal the sum of its reservation records, are
 *    within capacity, and no refused request would fit anywhere.
 */
#include "orr_signal.h"
#include "orr_store.h"
#include "orr_keys.h"
#include "orr_util.h"
#include "sched_fixture.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NODES 50
#define REQUESTS 5000
#define CLIENTS 6
#define REPLICAS 3

typedef struct {
    int64_t cpu, mem, gpus;
} size_t_;

static const size_t_ s_sizes[] = {
    { 100, 256 * TS_MiB, 0 }, { 250, 512 * TS_MiB, 0 }, { 500, TS_GiB, 0 },   { 1000, 2 * TS_GiB, 0 },
    { 50, 3 * TS_GiB, 0 },    { 1500, 256 * TS_MiB, 0 }, { 500, TS_GiB, 1 },
};
#define SIZES (sizeof s_sizes / sizeof s_sizes[0])

static ts_node_t s_nodes[NODES];
static char s_names[NODES][16];
static const char *s_bus;
static const char *s_redis;
static atomic_int s_next;
static atomic_int s_placed, s_refused;
static char s_refused_sizes[REQUESTS];   /* 1 + size index of each refused request, else 0 */

typedef struct {
    int64_t cap[4], res[4];
} node_state_t;

static void
s_read_nodes (orr_store_t *store, node_state_t *out)
{
    for (int i = 0; i < NODES; i++) {
        char *key = orr_key_node (s_names[i]);
        CHECK (orr_store_append (store, "HMGET %s cap_cpu cap_mem cap_gpus cap_servers res_cpu res_mem res_gpus res_servers",
                                 key) == 0, "append");
        free (key);
    }
    redisReply *r[NODES];
    CHECK (orr_store_flush_replies (store, r, NODES) == 0, "read nodes: %s", orr_store_error (store));
    for (int i = 0; i < NODES; i++) {
        CHECK (r[i]->type == REDIS_REPLY_ARRAY && r[i]->elements == 8, "node %s missing", s_names[i]);
        for (int k = 0; k < 4; k++) {
            out[i].cap[k] = r[i]->element[k]->str ? atoll (r[i]->element[k]->str) : 0;
            out[i].res[k] = r[i]->element[k + 4]->str ? atoll (r[i]->element[k + 4]->str) : 0;
        }
        freeReplyObject (r[i]);
    }
}

static void
s_check_within (const node_state_t *n, const char *name)
{
    for (int k = 0; k < 3; k++)
        CHECK (n->res[k] >= 0 && n->res[k] <= n->cap[k], "node %s over-committed: resource %d reserved %lld of %lld",
               name, k, (long long) n->res[k], (long long) n->cap[k]);
    CHECK (n->cap[3] == 0 || n->res[3] <= n->cap[3], "node %s holds %lld servers of %lld", name,
           (long long) n->res[3], (long long) n->cap[3]);
}

static bool
s_fits (const node_state_t *n, const size_t_ *s)
{
    return n->res[0] + s->cpu <= n->cap[0] && n->res[1] + s->mem <= n->cap[1] && n->res[2] + s->gpus <= n->cap[2]
           && (n->cap[3] == 0 || n->res[3] + 1 <= n->cap[3]);
}

static int
s_index_of (const char *name)
{
    for (int i = 0; i < NODES; i++)
        if (strcmp (s_names[i], name) == 0)
            return i;
    return -1;
}

static void *
s_client (void *arg)
{
    (void) arg;
    orr_bus_opts_t opts;
    tb_opts (&opts, s_bus, 5000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    orr_store_t *store = orr_store_new (s_redis);
    node_state_t state[NODES];
    for (int i; (i = atomic_fetch_add (&s_next, 1)) < REQUESTS;) {
        const size_t_ *sz = &s_sizes[i % SIZES];
        char rid[32], group[16];
        snprintf (rid, sizeof rid, "u%d/", i);
        snprintf (group, sizeof group, "u%d", i % 300);
        ts_place_t p = { rid, sz->cpu, sz->mem, sz->gpus, i % 3 == 0 ? "pack" : "", group, NULL, NULL };
        Orrery__PlaceResult *out = NULL;
        char err[256];
        int status = ts_place (client, &p, &out, err, sizeof err);
        CHECK (status == 200, "request %d: status %d (%s)", i, status, err);
        if (out->placed) {
            int k = s_index_of (out->node);
            CHECK (k >= 0, "placed on unknown node %s", out->node);
            char *key = orr_key_node (out->node);
            redisReply *r = orr_store_command (
                store, "HMGET %s cap_cpu cap_mem cap_gpus cap_servers res_cpu res_mem res_gpus res_servers", key);
            free (key);
            CHECK (r && r->type == REDIS_REPLY_ARRAY && r->elements == 8, "read %s", out->node);
            node_state_t one;
            for (int f = 0; f < 4; f++) {
                one.cap[f] = atoll (r->element[f]->str);
                one.res[f] = atoll (r->element[f + 4]->str);
            }
            freeReplyObject (r);
            s_check_within (&one, out->node);
            atomic_fetch_add (&s_placed, 1);
        }
        else {
            CHECK (out->reason && strncmp (out->reason, "0/50 nodes are available: ", 26) == 0,
                   "request %d refused without counted reasons: %s", i, out->reason);
            s_read_nodes (store, state);
            for (int k = 0; k < NODES; k++)
                CHECK (!s_fits (&state[k], sz),
                       "request %d (%lldm, %lld B, %lld gpus) refused (%s) although %s had room", i,
                       (long long) sz->cpu, (long long) sz->mem, (long long) sz->gpus, out->reason, s_names[k]);
            s_refused_sizes[i] = (char) (1 + i % SIZES);
            atomic_fetch_add (&s_refused, 1);
        }
        orrery__place_result__free_unpacked (out, NULL);
    }
    orr_store_destroy (&store);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    return NULL;
}

int
main (void)
{
    orr_signal_install ();
    char *dir = tu_tmpdir ("sched-concurrent");
    tu_redis_t redis = { 0 };
    CHECK (tu_redis_start (&redis) == 0, "redis");
    tb_broker_t b = { 0 };
    tb_broker_start (&b, dir, NULL);
    s_bus = b.addr;
    s_redis = redis.url;
    char *env[] = { "ORRERY_NODE_TIMEOUT_MS=600000", "ORRERY_LOG_LEVEL=warn", NULL };
    pid_t sched[REPLICAS];
    for (int i = 0; i < REPLICAS; i++) {
        char name[16];
        snprintf (name, sizeof name, "sched-%d", i);
        sched[i] = ts_scheduler_start (dir, b.addr, redis.url, name, env);
    }

    static const int64_t cpus[] = { 4000, 8000, 16000, 32000 };
    static const int64_t mems[] = { 8, 16, 32, 64 };
    for (int i = 0; i < NODES; i++) {
        snprintf (s_names[i], sizeof s_names[i], "node-%02d", i);
        s_nodes[i] = (ts_node_t) { s_names[i], cpus[i % 4], mems[(i / 4) % 4] * TS_GiB, i % 5 == 0 ? 2 : 0,
                                   i % 7 == 0 ? 12 : 0, NULL, NULL };
    }
    orr_bus_opts_t opts;
    tb_opts (&opts, b.addr, 5000, 3);
    orr_events_pub_t *pub = orr_events_pub_new (&opts);
    orr_events_pub_wait_ready (pub, 5000);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    ts_register_nodes (pub, client, s_nodes, NODES);

    int64_t t0 = orr_mono_ms ();
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        pthread_create (&threads[i], NULL, s_client, NULL);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join (threads[i], NULL);
    int64_t ms = orr_mono_ms () - t0;
    printf ("%d placed, %d refused, in %lld ms (%d clients, %d scheduler replicas)\n", s_placed, s_refused,
            (long long) ms, CLIENTS, REPLICAS);
    CHECK_EQ_INT (s_placed + s_refused, REQUESTS);
    CHECK (s_refused > 0, "the cluster never filled: the test must push past capacity");

    /* the end state: sums equal the records, within capacity, refused ones fit nowhere */
    orr_store_t *store = orr_store_new (redis.url);
    node_state_t state[NODES];
    s_read_nodes (store, state);
    int records = 0;
    for (int i = 0; i < NODES; i++) {
        s_check_within (&state[i], s_names[i]);
        char *key = orr_key_node_reservations (s_names[i]);
        redisReply *r = orr_store_command (store, "HVALS %s", key);
        free (key);
        CHECK (r && r->type == REDIS_REPLY_ARRAY, "reservations of %s", s_names[i]);
        int64_t sum[3] = { 0 };
        for (size_t k = 0; k < r->elements; k++) {
            long long c, m, g;
            CHECK (sscanf (r->element[k]->str, "%lld %lld %lld", &c, &m, &g) == 3, "record %s", r->element[k]->str);
            sum[0] += c;
            sum[1] += m;
            sum[2] += g;
        }
        for (int k = 0; k < 3; k++)
            CHECK (sum[k] == state[i].res[k], "node %s: resource %d sums to %lld, records say %lld", s_names[i], k,
                   (long long) state[i].res[k], (long long) sum[k]);
        CHECK (r->elements > 0, "node %s received nothing", s_names[i]);
        CHECK (state[i].res[3] == (int64_t) r->elements, "node %s: %lld servers counted, %zu records", s_names[i],
               (long long) state[i].res[3], r->elements);
        records += (int) r->elements;
        freeReplyObject (r);
    }
    CHECK_EQ_INT (records, s_placed);
    for (int i = 0; i < REQUESTS; i++)
        if (s_refused_sizes[i])
            for (int k = 0; k < NODES; k++)
                CHECK (!s_fits (&state[k], &s_sizes[s_refused_sizes[i] - 1]), "refused request %d fits on %s at the end",
                       i, s_names[k]);
    /* a repeat of a placed request gets the same node and reserves nothing more */
    Orrery__PlaceResult *again = NULL;
    ts_place_t p = { "u1/", s_sizes[1].cpu, s_sizes[1].mem, 0, "", "u1", NULL, NULL };
    CHECK (ts_place (client, &p, &again, NULL, 0) == 200, "repeat");
    node_state_t after[NODES];
    s_read_nodes (store, after);
    CHECK (memcmp (after, state, sizeof state) == 0, "a repeated place changed the reservations");
    printf ("repeat of u1/: %s on %s\n", again->placed ? "placed" : "refused", again->placed ? again->node : again->reason);
    orrery__place_result__free_unpacked (again, NULL);
    orr_store_destroy (&store);

    orr_events_pub_destroy (&pub);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    for (int i = 0; i < REPLICAS; i++) {
        int st = tu_stop (sched[i], SIGTERM, 10000);
        CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0, "scheduler %d exited badly (status %d)", i, st);
    }
    tb_broker_stop (&b, SIGTERM);
    tu_redis_stop (&redis);
    tu_tmpdir_remove (&dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
