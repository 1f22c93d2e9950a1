/*  The scheduler and the spawner's node agent together, as separate processes on a real
 *  Redis and broker: the agent's heartbeats make its node ready with the capacity
 *  detected on this host; when the agent is SIGKILLed the scheduler marks the node not
 *  ready and publishes node.lost within NODE_TIMEOUT_MS (1.5 s) and a tick (3 s allowed),
 *  and refuses to place on it; when the agent comes back, node.registered arrives, the
 *  node is ready again and a placement lands on it.
 */
#include "bus_fixture.h"
#include "orr_events.h"
#include "orr_rpc.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "orrery/events.pb-c.h"
#include "orrery/scheduler.pb-c.h"
#include "spawner_node_agent.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#define NODE "agent-node"
#define NODE_TIMEOUT_MS 1500
#define LOST_WITHIN_MS 3000

static char *s_dir;
static char s_bus[64];
static char s_redis_url[64];

static pid_t
s_start (const char *binary, const char *log_name, char *const *extra)
{
    char *path = tu_bin (binary);
    char *log = orr_sprintf ("%s/%s.log", s_dir, log_name);
    char *bus = orr_sprintf ("ORRERY_BUS=%s", s_bus);
    char *redis = orr_sprintf ("ORRERY_REDIS_URL=%s", s_redis_url);
    char *replica = orr_sprintf ("ORRERY_REPLICA_ID=%s", log_name);
    char *env[16] = { bus, redis, replica };
    size_t n = 3;
    for (char *const *e = extra; e && *e && n < 15; e++)
        env[n++] = *e;
    env[n] = NULL;
    char *argv[] = { path, NULL };
    pid_t pid = tu_spawn (argv, env, log);
    free (replica);
    free (redis);
    free (bus);
    free (log);
    free (path);
    return pid;
}

static pid_t
s_start_agent (const char *replica)
{
    char *env[] = { "ORRERY_NODE_NAME=" NODE, "ORRERY_NODE_HEARTBEAT_MS=200", NULL };
    return s_start ("orrery-spawner", replica, env);
}

/* The scheduler's view of NODE (NULL when it does not list it); *list_p to free.
 * Fails the test when the call itself fails. */
static Orrery__NodeInfo *
s_node (orr_bus_client_t *client, Orrery__NodeList **list_p)
{
    Orrery__NodesRequest req = ORRERY__NODES_REQUEST__INIT;
    req.node = NODE;
    size_t n = orrery__nodes_request__get_packed_size (&req);
    uint8_t *buf = orr_zalloc (n + 1);
    orrery__nodes_request__pack (&req, buf);
    orr_rpc_reply_t reply;
    int status = orr_rpc_call (client, "scheduler", "nodes", NULL, buf, n, &reply);
    free (buf);
    *list_p = NULL;
    /* a scheduler that answers one named node it does not know with 404 is fine too */
    if (status == 404) {
        orr_rpc_reply_clear (&reply);
        return NULL;
    }
    CHECK (status == 200, "scheduler.nodes: status %d: %s", status, reply.error);
    Orrery__NodeList *list = orrery__node_list__unpack (NULL, reply.len, reply.body);
    CHECK (list, "scheduler.nodes: the reply is not a NodeList (%zu bytes)", reply.len);
    orr_rpc_reply_clear (&reply);
    *list_p = list;
    for (size_t i = 0; i < list->n_nodes; i++)
        if (strcmp (list->nodes[i]->name, NODE) == 0)
            return list->nodes[i];
    return NULL;
}

/* Polls until NODE's readiness is `ready`; the time it took, or -1 after timeout_ms. */
static int64_t
s_wait_ready (orr_bus_client_t *client, bool ready, int timeout_ms)
{
    int64_t start = orr_mono_ms ();
    while (orr_mono_ms () - start <= timeout_ms) {
        Orrery__NodeList *list;
        Orrery__NodeInfo *node = s_node (client, &list);
        bool is = node && node->ready;
        if (list)
            orrery__node_list__free_unpacked (list, NULL);
        if (is == ready)
            return orr_mono_ms () - start;
        orr_sleep_ms (50);
    }
    return -1;
}

/* Waits for `topic` about NODE (other nodes' and other topics' events are skipped); the
 * time it took from `since_ms`, or -1 when none came by then. */
static int64_t
s_wait_event (orr_events_sub_t *sub, const char *topic, int64_t since_ms, int timeout_ms, char *reason,
              size_t reason_size)
{
    int64_t deadline = orr_mono_ms () + timeout_ms;
    while (orr_mono_ms () < deadline) {
        orr_event_t ev;
        if (orr_events_recv (sub, &ev, 50) != 1)
            continue;
        bool match = false;
        if (strcmp (ev.topic, topic) == 0) {
            Orrery__NodeEvent *ne = orrery__node_event__unpack (NULL, zframe_size (ev.body), zframe_data (ev.body));
            CHECK (ne, "%s: body is not a NodeEvent", topic);
            match = strcmp (ne->node, NODE) == 0;
            if (match && reason)
                snprintf (reason, reason_size, "%s", ne->reason);
            orrery__node_event__free_unpacked (ne, NULL);
        }
        orr_event_clear (&ev);
        if (match)
            return orr_mono_ms () - since_ms;
    }
    return -1;
}

static Orrery__PlaceResult *
s_place (orr_bus_client_t *client, const char *reservation)
{
    Orrery__Resources guarantees = ORRERY__RESOURCES__INIT;
    guarantees.cpu_millis = 100;
    guarantees.memory_bytes = 1048576;
    Orrery__PlaceRequest req = ORRERY__PLACE_REQUEST__INIT;
    req.reservation = (char *) reservation;
    req.guarantees = &guarantees;
    size_t n = orrery__place_request__get_packed_size (&req);
    uint8_t *buf = orr_zalloc (n + 1);
    orrery__place_request__pack (&req, buf);
    orr_rpc_reply_t reply;
    int status = orr_rpc_call (client, "scheduler", "place", NULL, buf, n, &reply);
    free (buf);
    Orrery__PlaceResult *result = reply.len ? orrery__place_result__unpack (NULL, reply.len, reply.body) : NULL;
    CHECK (result, "scheduler.place: status %d, error '%s', and no PlaceResult in the reply (%zu bytes)", status,
           reply.error, reply.len);
    printf ("place %s: status %d, placed %s, node '%s', reason '%s'\n", reservation, status,
            result->placed ? "true" : "false", result->node, result->reason);
    orr_rpc_reply_clear (&reply);
    return result;
}

int
main (void)
{
    orr_signal_install ();
    s_dir = tu_tmpdir ("sched-agent");
    tu_redis_t redis = { 0 };
    CHECK (tu_redis_start (&redis) == 0, "redis-server did not start");
    snprintf (s_redis_url, sizeof s_redis_url, "%s", redis.url);
    tb_broker_t broker = { 0 };
    tb_broker_start (&broker, s_dir, NULL);
    snprintf (s_bus, sizeof s_bus, "%s", broker.addr);

    orr_bus_opts_t opts;
    tb_opts (&opts, s_bus, 2000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);
    const char *topics[] = { "node.registered", "node.lost", NULL };
    orr_events_sub_t *sub = orr_events_sub_new (&opts, topics);
    CHECK (orr_events_sub_wait_ready (sub, 5000) == 0, "no bus.tick from the broker");

    /* what the agent detects on this host: its own code, the same rules */
    node_resources_t detected = { 0 };
    char how[512];
    CHECK (node_agent_detect_capacity (&detected, how, sizeof how) == 0);
    printf ("detected here: %s\n", how);

    char *sched_env[] = { "ORRERY_NODE_TIMEOUT_MS=1500", NULL };
    pid_t scheduler = s_start ("orrery-scheduler", "scheduler", sched_env);
    int64_t t0 = orr_mono_ms ();
    pid_t agent = s_start_agent ("spawner-a");

    /* 1. ready, with the detected capacity */
    char reason[256] = "";
    int64_t took = s_wait_event (sub, "node.registered", t0, 10000, reason, sizeof reason);
    printf ("node.registered %s %lld ms after the agent started (reason '%s')\n", took >= 0 ? "arrived" : "missing",
            (long long) took, reason);
    took = s_wait_ready (client, true, 10000);
    CHECK (took >= 0, "node %s not ready within 10 s of the agent's start (see %s/scheduler.log)", NODE, s_dir);
    Orrery__NodeList *list;
    Orrery__NodeInfo *node = s_node (client, &list);
    CHECK (node && node->capacity && node->usage);
    printf ("ready: capacity cpu %lldm memory %lld gpus %d servers %d; usage cpu %lldm memory %lld; agent '%s'\n",
            (long long) node->capacity->cpu_millis, (long long) node->capacity->memory_bytes, node->capacity->gpus,
            node->capacity->servers, (long long) node->usage->cpu_millis, (long long) node->usage->memory_bytes,
            node->agent);
    CHECK_EQ_INT (node->capacity->cpu_millis, detected.cpu_millis);
    CHECK_EQ_INT (node->capacity->memory_bytes, detected.memory_bytes);
    CHECK_EQ_INT (node->capacity->gpus, detected.gpus);
    CHECK_EQ_INT (node->capacity->servers, 100);
    CHECK (node->usage->memory_bytes > 0, "usage memory %lld", (long long) node->usage->memory_bytes);
    orrery__node_list__free_unpacked (list, NULL);

    /* 2. SIGKILL the agent: not ready and node.lost within 1.5 s + a tick */
    int64_t killed = orr_mono_ms ();
    tu_stop (agent, SIGKILL, 1000);
    took = s_wait_event (sub, "node.lost", killed, LOST_WITHIN_MS + 2000, reason, sizeof reason);
    printf ("node.lost %lld ms after SIGKILL (reason '%s')\n", (long long) took, reason);
    CHECK (took >= 0, "no node.lost within %d ms of SIGKILL", LOST_WITHIN_MS + 2000);
    CHECK (took <= LOST_WITHIN_MS, "node.lost came %lld ms after SIGKILL (at most %d)", (long long) took,
           LOST_WITHIN_MS);
    CHECK (took >= NODE_TIMEOUT_MS - 250, "node.lost came %lld ms after SIGKILL, before the timeout", (long long) took);
    took = s_wait_ready (client, false, 1000);
    CHECK (took >= 0, "the scheduler still lists %s as ready after node.lost", NODE);
    took = orr_mono_ms () - killed;
    printf ("not ready %lld ms after SIGKILL\n", (long long) took);
    CHECK (took <= LOST_WITHIN_MS + 500, "not ready only %lld ms after SIGKILL", (long long) took);

    /* 3. nothing to place on */
    Orrery__PlaceResult *placed = s_place (client, "t/");
    CHECK (!placed->placed, "placed on %s while its node is lost", placed->node);
    CHECK (strstr (placed->reason, "not ready"), "the refusal does not say 'not ready': '%s'", placed->reason);
    orrery__place_result__free_unpacked (placed, NULL);

    /* 4. the agent comes back: registered, ready, and a placement lands on it */
    int64_t restarted = orr_mono_ms ();
    agent = s_start_agent ("spawner-b");
    took = s_wait_event (sub, "node.registered", restarted, 10000, reason, sizeof reason);
    printf ("node.registered %lld ms after the restart (reason '%s')\n", (long long) took, reason);
    CHECK (took >= 0, "no node.registered within 10 s of the agent's restart");
    took = s_wait_ready (client, true, 5000);
    CHECK (took >= 0, "node %s not ready again within 5 s of node.registered", NODE);
    node = s_node (client, &list);
    CHECK (node);
    printf ("ready again %lld ms after the restart; agent '%s'\n", (long long) (orr_mono_ms () - restarted),
            node->agent);
    orrery__node_list__free_unpacked (list, NULL);
    placed = s_place (client, "t/");
    CHECK (placed->placed, "not placed: '%s'", placed->reason);
    CHECK_EQ_STR (placed->node, NODE);
    orrery__place_result__free_unpacked (placed, NULL);

    int status = tu_stop (agent, SIGTERM, 5000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the agent exited with status %d", status);
    status = tu_stop (scheduler, SIGTERM, 5000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the scheduler exited with status %d", status);
    orr_events_sub_destroy (&sub);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    tb_broker_stop (&broker, SIGTERM);
    tu_redis_stop (&redis);
    tu_tmpdir_remove (&s_dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
