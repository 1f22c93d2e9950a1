/*  Nodes from the Kubernetes API, end to end: the real scheduler (real Redis and broker)
 *  and orrery-spawner with ORRERY_NODE_SOURCE=kubernetes against the FAKE Kubernetes API
 *  server (tests/fixtures/k8s_fake_api), which serves the Node objects of
 *  tests/k8s_expected/node_{gpu,plain,cordoned}.json and a fourth node, first Ready.
 *
 *  - the scheduler's `nodes` lists the four, ready, with the allocatable capacity, the
 *    labels and the taints of the golden files, agent = the spawner's replica id;
 *  - the fourth node turns NotReady (POST /_fake/nodes): the spawner stops its heartbeat
 *    and the scheduler lists it not ready after NODE_TIMEOUT_MS, the others stay ready;
 *  - the cordoned node refuses a placement with "untolerated taint" (a selector picks it),
 *    the GPU node refuses one without the toleration of its NoExecute taint and takes one
 *    with it.
 */
#include "bus_fixture.h"
#include "orr_http.h"
#include "orr_signal.h"
#include "orr_util.h"
#include "sched_fixture.h"
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TOKEN "fake-token-nodes"

static char *s_dir;
static char s_fake_url[64];

static json_t *
s_golden_node (const char *file)
{
    char *path = orr_sprintf ("%s/%s", K8S_EXPECTED_DIR, file);
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    CHECK (doc, "%s: %s", path, jerr.text);
    free (path);
    return doc;
}

/* The fourth node: node_notready.json's object with Ready = `ready` and pool=spare. */
static json_t *
s_fourth (bool ready)
{
    json_t *doc = s_golden_node ("node_notready.json");
    json_t *node = json_deep_copy (json_object_get (doc, "node"));
    json_decref (doc);
    json_t *cond = json_array_get (json_object_get (json_object_get (node, "status"), "conditions"), 0);
    json_object_set_new (cond, "status", json_string (ready ? "True" : "Unknown"));
    json_object_set_new (json_object_get (node, "metadata"), "labels", json_pack ("{s:s}", "pool", "spare"));
    if (ready) {
        json_object_del (cond, "reason");
        json_object_del (cond, "message");
        json_object_del (json_object_get (node, "spec"), "taints");
    }
    return node;
}

static json_t *
s_items (bool fourth_ready)
{
    json_t *items = json_array ();
    const char *files[] = { "node_gpu.json", "node_plain.json", "node_cordoned.json" };
    for (size_t i = 0; i < 3; i++) {
        json_t *doc = s_golden_node (files[i]);
        json_array_append (items, json_object_get (doc, "node"));
        json_decref (doc);
    }
    json_array_append_new (items, s_fourth (fourth_ready));
    return items;
}

static void
s_fake_set_nodes (json_t *items)
{
    orr_http_t *http = orr_http_new ();
    char *url = orr_sprintf ("%s/_fake/nodes", s_fake_url);
    json_t *body = json_pack ("{s:O}", "items", items);
    char err[256];
    long status = 0;
    json_t *reply = orr_http_json (http, "POST", url, NULL, body, 5000, &status, err, sizeof err);
    CHECK (reply && status == 200, "POST /_fake/nodes: %ld %s", status, reply ? "" : err);
    json_decref (reply);
    json_decref (body);
    free (url);
    orr_http_destroy (&http);
}

static Orrery__NodeInfo *
s_find (Orrery__NodeList *list, const char *name)
{
    for (size_t i = 0; list && i < list->n_nodes; i++)
        if (strcmp (list->nodes[i]->name, name) == 0)
            return list->nodes[i];
    return NULL;
}

/* Polls `nodes` until `name`'s readiness is `ready`; ms taken or -1. */
static int64_t
s_wait_ready (orr_bus_client_t *client, const char *name, bool ready, int timeout_ms)
{
    int64_t start = orr_mono_ms ();
    while (orr_mono_ms () - start <= timeout_ms) {
        Orrery__NodeList *list = NULL;
        bool is = false;
        if (ts_nodes (client, NULL, &list) == 200) {
            Orrery__NodeInfo *n = s_find (list, name);
            is = n && n->ready;
        }
        if (list)
            orrery__node_list__free_unpacked (list, NULL);
        if (is == ready)
            return orr_mono_ms () - start;
        orr_sleep_ms (50);
    }
    return -1;
}

/* The scheduler's node as the golden files' JSON. */
static json_t *
s_info_json (const Orrery__NodeInfo *n)
{
    json_t *labels = json_array ();
    for (size_t i = 0; i < n->n_labels; i++)
        json_array_append_new (labels, json_pack ("{s:s, s:s}", "key", n->labels[i]->key, "value",
                                                  n->labels[i]->value));
    json_t *taints = json_array ();
    for (size_t i = 0; i < n->n_taints; i++)
        json_array_append_new (taints, json_pack ("{s:s, s:s, s:s}", "key", n->taints[i]->key, "value",
                                                  n->taints[i]->value, "effect", n->taints[i]->effect));
    return json_pack ("{s:s, s:{s:I, s:I, s:I, s:I}, s:o, s:o}", "node", n->name, "capacity", "cpuMillis",
                      (json_int_t) n->capacity->cpu_millis, "memoryBytes", (json_int_t) n->capacity->memory_bytes,
                      "gpus", (json_int_t) n->capacity->gpus, "servers", (json_int_t) n->capacity->servers, "labels",
                      labels, "taints", taints);
}

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

/* A copy with labels and taints sorted, compared as sets: the scheduler need not keep
 * their order. `doc` is borrowed. */
static json_t *
s_sorted (json_t *doc)
{
    char *text = json_dumps (doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_t *copy = json_loads (text, 0, NULL);
    free (text);
    const char *fields[] = { "labels", "taints" };
    for (size_t f = 0; f < 2; f++) {
        json_t *arr = json_object_get (copy, fields[f]);
        size_t n = json_array_size (arr);
        char **items = orr_zalloc ((n + 1) * sizeof *items);
        for (size_t i = 0; i < n; i++)
            items[i] = json_dumps (json_array_get (arr, i), JSON_SORT_KEYS | JSON_COMPACT);
        qsort (items, n, sizeof *items, s_strcmp_p);
        json_t *sorted = json_array ();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new (sorted, json_string (items[i]));
            free (items[i]);
        }
        free (items);
        json_object_set_new (copy, fields[f], sorted);
    }
    return copy;
}

/* place: 200 with placed, or the refusal's text (result reason or the call's error). */
static bool
s_place (orr_bus_client_t *client, const ts_place_t *p, char *node, char *reason, size_t size)
{
    Orrery__PlaceResult *r = NULL;
    char err[512] = "";
    int status = ts_place (client, p, &r, err, sizeof err);
    bool placed = status == 200 && r && r->placed;
    snprintf (node, size, "%s", placed ? r->node : "");
    snprintf (reason, size, "%s", r && r->reason && *r->reason ? r->reason : err);
    printf ("place %s: status %d, placed %s, node '%s', reason '%s'\n", p->reservation, status,
            placed ? "true" : "false", node, reason);
    if (r)
        orrery__place_result__free_unpacked (r, NULL);
    return placed;
}

int
main (void)
{
    orr_signal_install ();
    s_dir = tu_tmpdir ("sched-k8s-nodes");
    tu_redis_t redis = { 0 };
    CHECK (tu_redis_start (&redis) == 0, "redis-server did not start");
    tb_broker_t broker = { 0 };
    tb_broker_start (&broker, s_dir, NULL);

    /* the fake API server, serving the four nodes (all Ready) from a file */
    json_t *items = s_items (true);
    char *nodes_file = orr_sprintf ("%s/nodes.json", s_dir);
    CHECK (json_dump_file (items, nodes_file, JSON_INDENT (1)) == 0);
    json_decref (items);
    int port = orr_free_port ();
    char port_text[16];
    snprintf (port_text, sizeof port_text, "%d", port);
    char *fake_log = orr_sprintf ("%s/fake-k8s.log", s_dir);
    char *fake_argv[] = { "/usr/bin/python3", K8S_FAKE_API, "--port", port_text, "--token", TOKEN,
                          "--nodes",          nodes_file,   NULL };
    pid_t fake = tu_spawn (fake_argv, NULL, fake_log);
    CHECK (tu_wait_port (port, 10000) == 0, "the fake API server did not listen on %d", port);
    snprintf (s_fake_url, sizeof s_fake_url, "http://127.0.0.1:%d", port);
    char *token_file = orr_sprintf ("%s/token", s_dir);
    FILE *f = fopen (token_file, "w");
    CHECK (f);
    fputs (TOKEN "\n", f);
    fclose (f);

    orr_bus_opts_t opts;
    tb_opts (&opts, broker.addr, 2000, 3);
    orr_bus_client_t *client = orr_bus_client_new (&opts);

    char *sched_env[] = { "ORRERY_NODE_TIMEOUT_MS=1500", NULL };
    pid_t scheduler = ts_scheduler_start (s_dir, broker.addr, redis.url, "scheduler", sched_env);

    char *bus = orr_sprintf ("ORRERY_BUS=%s", broker.addr);
    char *redis_env = orr_sprintf ("ORRERY_REDIS_URL=%s", redis.url);
    char *api = orr_sprintf ("ORRERY_K8S_API_URL=%s", s_fake_url);
    char *token = orr_sprintf ("ORRERY_K8S_TOKEN_FILE=%s", token_file);
    char *spawner_env[] = { bus,
                            redis_env,
                            "ORRERY_REPLICA_ID=spawner-k8s",
                            "ORRERY_NODE_SOURCE=kubernetes",
                            "ORRERY_NODE_HEARTBEAT_MS=300",
                            api,
                            token,
                            "ORRERY_K8S_CA_FILE=",
                            "ORRERY_K8S_NAMESPACE=default",
                            NULL };
    char *bin = tu_bin ("orrery-spawner");
    char *spawner_argv[] = { bin, NULL };
    char *spawner_log = orr_sprintf ("%s/spawner-k8s.log", s_dir);
    int64_t t0 = orr_mono_ms ();
    pid_t spawner = tu_spawn (spawner_argv, spawner_env, spawner_log);

    /* 1. the four nodes, ready, as the golden files say */
    const char *names[] = { "gpu-node-1", "cpu-node-1", "cordoned-node", "lost-node" };
    for (size_t i = 0; i < 4; i++) {
        int64_t took = s_wait_ready (client, names[i], true, 10000);
        CHECK (took >= 0, "node %s not ready within 10 s (see %s)", names[i], s_dir);
    }
    printf ("4 nodes ready %lld ms after the spawner started\n", (long long) (orr_mono_ms () - t0));
    Orrery__NodeList *list = NULL;
    CHECK_EQ_INT (ts_nodes (client, NULL, &list), 200);
    CHECK_EQ_INT (list->n_nodes, 4);
    const char *files[] = { "node_gpu.json", "node_plain.json", "node_cordoned.json" };
    for (size_t i = 0; i < 3; i++) {
        json_t *doc = s_golden_node (files[i]);
        json_t *want_raw = json_object_get (doc, "heartbeat");
        Orrery__NodeInfo *n = s_find (list, json_string_value (json_object_get (want_raw, "node")));
        CHECK (n && n->capacity, "%s: not listed", files[i]);
        json_t *info = s_info_json (n);
        json_t *got = s_sorted (info);
        json_decref (info);
        json_t *want = s_sorted (want_raw);
        char *g = json_dumps (got, JSON_SORT_KEYS | JSON_COMPACT);
        printf ("%s: %s (agent '%s', ready %d)\n", n->name, g, n->agent, n->ready);
        if (!json_equal (got, want)) {
            char *w = json_dumps (want, JSON_SORT_KEYS | JSON_COMPACT);
            CHECK (0, "%s: the scheduler lists\n%s\nexpected\n%s", files[i], g, w);
        }
        free (g);
        CHECK_EQ_STR (n->agent, "spawner-k8s");
        CHECK (n->ready);
        json_decref (got);
        json_decref (want);
        json_decref (doc);
    }
    Orrery__NodeInfo *lost = s_find (list, "lost-node");
    CHECK (lost && lost->capacity->cpu_millis == 4000 && lost->capacity->memory_bytes == 8 * TS_GiB
           && lost->capacity->servers == 110);
    orrery__node_list__free_unpacked (list, NULL);

    /* 2. placements: the cordoned node refuses with "untolerated taint"; the GPU node
     * refuses without the toleration of its taint and takes a placement with it */
    char node[512], reason[512];
    ts_place_t to_cordoned = { .reservation = "k8s/cordoned", .cpu_millis = 100, .memory_bytes = 64 * TS_MiB,
                               .selector = "pool=general", .tolerations = "nvidia.com/gpu=present:NoSchedule" };
    /* pool=general is on cordoned-node only (the fourth node is pool=spare); the GPU
     * node's taint is tolerated, so the one untolerated taint is the cordon's */
    bool placed = s_place (client, &to_cordoned, node, reason, sizeof reason);
    CHECK (!placed, "placed on %s, a cordoned node", node);
    CHECK (strstr (reason, " 1 untolerated taint"), "the refusal does not say '1 untolerated taint': '%s'", reason);
    ts_place_t gpu_no_tol = { .reservation = "k8s/gpu-a", .cpu_millis = 500, .memory_bytes = TS_GiB, .gpus = 1 };
    placed = s_place (client, &gpu_no_tol, node, reason, sizeof reason);
    CHECK (!placed, "a GPU placement without the toleration landed on %s", node);
    CHECK (strstr (reason, "untolerated taint"), "reason '%s'", reason);
    ts_place_t gpu = { .reservation = "k8s/gpu-b", .cpu_millis = 500, .memory_bytes = TS_GiB, .gpus = 1,
                       .tolerations = "nvidia.com/gpu=present:NoSchedule" };
    placed = s_place (client, &gpu, node, reason, sizeof reason);
    CHECK (placed, "not placed with the toleration: '%s'", reason);
    CHECK_EQ_STR (node, "gpu-node-1");

    /* 3. lost-node turns NotReady: no more heartbeats for it, not ready after the timeout */
    int64_t flipped = orr_mono_ms ();
    json_t *changed = s_items (false);
    s_fake_set_nodes (changed);
    json_decref (changed);
    int64_t took = s_wait_ready (client, "lost-node", false, 6000);
    CHECK (took >= 0, "lost-node still ready 6 s after it turned NotReady");
    printf ("lost-node not ready %lld ms after it turned NotReady (scheduler NODE_TIMEOUT_MS 1500)\n",
            (long long) (orr_mono_ms () - flipped));
    CHECK (orr_mono_ms () - flipped >= 1000, "not ready too soon: a heartbeat timeout is 1.5 s");
    orr_sleep_ms (700);   /* two more heartbeat intervals: the others stay ready */
    for (size_t i = 0; i < 3; i++)
        CHECK (s_wait_ready (client, names[i], true, 0) >= 0, "%s is no longer ready", names[i]);
    CHECK (s_wait_ready (client, "lost-node", false, 0) >= 0, "lost-node is ready again");
    printf ("the other 3 nodes stay ready\n");

    int status = tu_stop (spawner, SIGTERM, 15000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the spawner exited with status %d (see %s)", status,
           spawner_log);
    status = tu_stop (scheduler, SIGTERM, 5000);
    CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "the scheduler exited with status %d", status);
    tu_stop (fake, SIGTERM, 3000);
    orr_bus_client_destroy (&client);
    orr_bus_opts_clear (&opts);
    tb_broker_stop (&broker, SIGTERM);
    tu_redis_stop (&redis);
    free (spawner_log);
    free (bin);
    free (token);
    free (api);
    free (redis_env);
    free (bus);
    free (token_file);
    free (fake_log);
    free (nodes_file);
    tu_tmpdir_remove (&s_dir);
    printf ("1 passed, 0 failed\n");
    return 0;
}
