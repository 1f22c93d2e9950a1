/*  Node objects into node.heartbeat (services/spawner/k8s_nodes.c), without a cluster.
 *
 *  - Kubernetes quantities against hand-computed values, rounding up as Kubernetes'
 *    MilliValue/Value do, and malformed ones refused;
 *  - the hand-written Node objects of tests/k8s_expected/node_*.json into the heartbeat
 *    each file states (capacity from allocatable, labels left out with a note, NoExecute
 *    as NoSchedule, a cordoned node's taint not doubled), or into "not ready";
 *  - malformed nodes (bad or missing quantities, bad taints, no name) refused with the
 *    reason, and a node of 81 labels cut to 64 with a note.
 */
#include "k8s_nodes.h"
#include "orr_util.h"
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_checks;

static void
test_quantities (void)
{
    static const struct {
        const char *text;
        int64_t scale;
        int rc;
        int64_t want;
    } cases[] = {
        { "4", 1000, 0, 4000 },
        { "3500m", 1000, 0, 3500 },
        { "0.5", 1000, 0, 500 },
        { ".5", 1000, 0, 500 },
        { "1.", 1000, 0, 1000 },
        { "+2", 1000, 0, 2000 },
        { "0.0005", 1000, 0, 1 },               /* rounds up, as MilliValue */
        { "100u", 1000, 0, 1 },
        { "1500000n", 1000, 0, 2 },
        { "3920m", 1000, 0, 3920 },
        { "0", 1000, 0, 0 },
        { "0.000", 1000, 0, 0 },
        { "2k", 1000, 0, 2000000 },
        { "16Gi", 1, 0, 17179869184LL },
        { "16G", 1, 0, 16000000000LL },
        { "123456Ki", 1, 0, 126418944LL },
        { "512Mi", 1, 0, 536870912LL },
        { "1Ti", 1, 0, 1099511627776LL },
        { "1Pi", 1, 0, 1125899906842624LL },
        { "2T", 1, 0, 2000000000000LL },
        { "1P", 1, 0, 1000000000000000LL },
        { "1k", 1, 0, 1000 },
        { "1M", 1, 0, 1000000 },
        { "1e9", 1, 0, 1000000000 },
        { "1E9", 1, 0, 1000000000 },
        { "1.5e3", 1, 0, 1500 },
        { "12e-1", 1, 0, 2 },
        { "128974848", 1, 0, 128974848 },
        { "1500m", 1, 0, 2 },                   /* milli-bytes round up to whole bytes */
        { "1.5Gi", 1, 0, 1610612736LL },
        { "0.1", 1000, 0, 100 },                /* exact: no binary fractions */
        { "7E", 1, 0, 7000000000000000000LL },
        { "9223372036854775807", 1, 0, INT64_MAX },
        { "8Ei", 1, -1, 0 },                    /* 2^63: does not fit */
        { "10E", 1, -1, 0 },
        { "9223372036854775808", 1, -1, 0 },
        { "9223372036854775807", 1000, -1, 0 },
        { "1234567890123456789", 1, 0, 1234567890123456789LL },
        { "12345678901234567890", 1, -1, 0 },   /* 20 significant digits */
        { "0.00000000000000000000000000001", 1000, 0, 1 },
        { "1.00000000000000000000000000000", 1000, 0, 1000 }, /* trailing zeros do not count */
        { "", 1, -1, 0 },
        { ".", 1, -1, 0 },
        { "-1", 1000, -1, 0 },
        { "1.2.3", 1, -1, 0 },
        { "16Gb", 1, -1, 0 },
        { "16gi", 1, -1, 0 },
        { "1K", 1, -1, 0 },                     /* decimal kilo is "k" */
        { " 1", 1, -1, 0 },
        { "1 ", 1, -1, 0 },
        { "1e", 1, -1, 0 },
        { "1e1000", 1, -1, 0 },
        { "abc", 1, -1, 0 },
        { "Gi", 1, -1, 0 },
        { "0x10", 1, -1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = -42;
        int rc = k8s_parse_quantity (cases[i].text, cases[i].scale, &got);
        CHECK (rc == cases[i].rc, "quantity \"%s\" (scale %lld): rc %d, expected %d (value %lld)", cases[i].text,
               (long long) cases[i].scale, rc, cases[i].rc, (long long) got);
        if (rc == 0)
            CHECK (got == cases[i].want, "quantity \"%s\" (scale %lld) = %lld, expected %lld", cases[i].text,
                   (long long) cases[i].scale, (long long) got, (long long) cases[i].want);
        s_checks++;
    }
    int64_t got;
    CHECK (k8s_parse_quantity (NULL, 1, &got) == -1);
    CHECK (k8s_parse_quantity ("1", 7, &got) == -1);
    printf ("quantities: %zu cases\n", sizeof cases / sizeof cases[0]);
}

/* The heartbeat as the JSON the golden files hold. */
static json_t *
s_hb_json (const Orrery__NodeHeartbeat *hb)
{
    json_t *labels = json_array ();
    for (size_t i = 0; i < hb->n_labels; i++)
        json_array_append_new (labels, json_pack ("{s:s, s:s}", "key", hb->labels[i]->key, "value",
                                                  hb->labels[i]->value));
    json_t *taints = json_array ();
    for (size_t i = 0; i < hb->n_taints; i++)
        json_array_append_new (taints, json_pack ("{s:s, s:s, s:s}", "key", hb->taints[i]->key, "value",
                                                  hb->taints[i]->value, "effect", hb->taints[i]->effect));
    return json_pack ("{s:s, s:{s:I, s:I, s:I, s:I}, s:o, s:o}", "node", hb->node, "capacity", "cpuMillis",
                      (json_int_t) hb->capacity->cpu_millis, "memoryBytes", (json_int_t) hb->capacity->memory_bytes,
                      "gpus", (json_int_t) hb->capacity->gpus, "servers", (json_int_t) hb->capacity->servers,
                      "labels", labels, "taints", taints);
}

static void
test_golden (const char *name)
{
    char *path = orr_sprintf ("%s/%s", K8S_EXPECTED_DIR, name);
    json_error_t jerr;
    json_t *doc = json_load_file (path, 0, &jerr);
    CHECK (doc, "%s: %s", path, jerr.text);
    const char *outcome = json_string_value (json_object_get (doc, "outcome"));
    char why[512], notes[1024];
    Orrery__NodeHeartbeat *hb = NULL;
    k8s_node_outcome_t o = k8s_node_heartbeat (json_object_get (doc, "node"), "spawner-x", 1234, &hb, why, sizeof why,
                                               notes, sizeof notes);
    if (strcmp (outcome, "publish") == 0) {
        CHECK (o == K8S_NODE_PUBLISH && hb, "%s: outcome %d: %s", name, o, why);
        json_t *got = s_hb_json (hb);
        json_t *want = json_object_get (doc, "heartbeat");
        if (!json_equal (got, want)) {
            char *g = json_dumps (got, JSON_INDENT (2) | JSON_SORT_KEYS);
            char *w = json_dumps (want, JSON_INDENT (2) | JSON_SORT_KEYS);
            CHECK (0, "%s: heartbeat\n%s\nexpected\n%s", name, g, w);
        }
        json_decref (got);
        CHECK_EQ_STR (hb->agent, "spawner-x");
        CHECK_EQ_INT (hb->time_us, 1234);
        CHECK (hb->usage && hb->usage->cpu_millis == 0 && hb->usage->memory_bytes == 0);
        CHECK_EQ_STR (notes, json_string_value (json_object_get (doc, "notes")));
        /* it packs, and unpacks to the same */
        size_t n = orrery__node_heartbeat__get_packed_size (hb);
        uint8_t *buf = malloc (n + 1);
        orrery__node_heartbeat__pack (hb, buf);
        Orrery__NodeHeartbeat *back = orrery__node_heartbeat__unpack (NULL, n, buf);
        CHECK (back);
        json_t *a = s_hb_json (hb), *b = s_hb_json (back);
        CHECK (json_equal (a, b), "%s: the packed heartbeat differs", name);
        json_decref (a);
        json_decref (b);
        orrery__node_heartbeat__free_unpacked (back, NULL);
        free (buf);
        k8s_node_heartbeat_free (&hb);
        CHECK (hb == NULL);
    }
    else {
        CHECK (o == K8S_NODE_NOT_READY && !hb, "%s: outcome %d, expected not ready", name, o);
        CHECK_EQ_STR (why, json_string_value (json_object_get (doc, "why")));
    }
    printf ("%s: %s%s%s\n", name, outcome, *why ? ": " : "", why);
    json_decref (doc);
    free (path);
    s_checks++;
}

/* A node from JSON text that must be refused with `expect` in the reason. */
static void
s_refused (const char *json_text, k8s_node_outcome_t want, const char *expect)
{
    json_error_t jerr;
    json_t *node = json_loads (json_text, 0, &jerr);
    CHECK (node, "bad test JSON: %s: %s", jerr.text, json_text);
    char why[512], notes[256];
    Orrery__NodeHeartbeat *hb = (Orrery__NodeHeartbeat *) 1;
    k8s_node_outcome_t o = k8s_node_heartbeat (node, "a", 1, &hb, why, sizeof why, notes, sizeof notes);
    CHECK (o == want && hb == NULL, "outcome %d (expected %d) for %s: %s", o, want, json_text, why);
    CHECK (strstr (why, expect), "reason '%s' does not hold '%s'", why, expect);
    printf ("refused: %s\n", why);
    json_decref (node);
    s_checks++;
}

#define READY "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]"
#define NODE_WITH(alloc) "{\"metadata\":{\"name\":\"n\"},\"status\":{\"allocatable\":" alloc "," READY "}}"

static void
test_malformed (void)
{
    s_refused (NODE_WITH ("{\"cpu\":\"4\",\"memory\":\"16Gb\",\"pods\":\"110\"}"), K8S_NODE_MALFORMED,
               "status.allocatable.memory: \"16Gb\" is not a quantity");
    s_refused (NODE_WITH ("{\"cpu\":\"-1\",\"memory\":\"1Gi\",\"pods\":\"110\"}"), K8S_NODE_MALFORMED,
               "status.allocatable.cpu: \"-1\"");
    s_refused (NODE_WITH ("{\"cpu\":4,\"memory\":\"1Gi\",\"pods\":\"110\"}"), K8S_NODE_MALFORMED,
               "status.allocatable.cpu: 4 is not");
    s_refused (NODE_WITH ("{\"memory\":\"1Gi\",\"pods\":\"110\"}"), K8S_NODE_MALFORMED,
               "status.allocatable has no \"cpu\"");
    s_refused (NODE_WITH ("{\"cpu\":\"1\",\"pods\":\"110\"}"), K8S_NODE_MALFORMED,
               "status.allocatable has no \"memory\"");
    s_refused (NODE_WITH ("{\"cpu\":\"1\",\"memory\":\"1Gi\"}"), K8S_NODE_MALFORMED,
               "status.allocatable has no \"pods\"");
    s_refused (NODE_WITH ("{\"cpu\":\"1\",\"memory\":\"1Gi\",\"pods\":\"1e12\"}"), K8S_NODE_MALFORMED,
               "status.allocatable.pods");
    s_refused (NODE_WITH ("{\"cpu\":\"1\",\"memory\":\"1Gi\",\"pods\":\"10\",\"nvidia.com/gpu\":\"two\"}"),
               K8S_NODE_MALFORMED, "status.allocatable.nvidia.com/gpu: \"two\"");
    s_refused (NODE_WITH ("{\"cpu\":\"1\",\"memory\":\"99999999999999999999\",\"pods\":\"10\"}"), K8S_NODE_MALFORMED,
               "status.allocatable.memory");
    s_refused ("{\"metadata\":{\"name\":\"n\"},\"status\":{" READY "}}", K8S_NODE_MALFORMED, "no status.allocatable");
    s_refused ("{\"metadata\":{},\"status\":{}}", K8S_NODE_MALFORMED, "metadata.name");
    s_refused ("{\"metadata\":{\"name\":\"bad name\"}}", K8S_NODE_MALFORMED, "metadata.name");
    s_refused ("[1]", K8S_NODE_MALFORMED, "not a JSON object");
    s_refused ("{\"metadata\":{\"name\":\"n\"},\"status\":{}}", K8S_NODE_NOT_READY, "no Ready condition");
    s_refused ("{\"metadata\":{\"name\":\"n\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
               "\"reason\":\"KubeletNotReady\"}]}}",
               K8S_NODE_NOT_READY, "Ready is \"False\": KubeletNotReady");
    const char *taint_node = "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"taints\":%s},\"status\":{\"allocatable\":"
                             "{\"cpu\":\"1\",\"memory\":\"1Gi\",\"pods\":\"10\"}," READY "}}";
    char text[1024];
    snprintf (text, sizeof text, taint_node, "[{\"key\":\"k\",\"effect\":\"Sometimes\"}]");
    s_refused (text, K8S_NODE_MALFORMED, "effect Sometimes is not");
    snprintf (text, sizeof text, taint_node, "[{\"key\":\"k\"}]");
    s_refused (text, K8S_NODE_MALFORMED, "effect (none)");
    snprintf (text, sizeof text, taint_node, "[{\"key\":\"a b\",\"effect\":\"NoSchedule\"}]");
    s_refused (text, K8S_NODE_MALFORMED, "spec.taints[0]: key or value");
    snprintf (text, sizeof text, taint_node, "{\"key\":\"k\"}");
    s_refused (text, K8S_NODE_MALFORMED, "spec.taints is not an array");
}

static void
test_many_labels (void)
{
    json_t *node = json_loads (NODE_WITH ("{\"cpu\":\"1\",\"memory\":\"1Gi\",\"pods\":\"10\"}"), 0, NULL);
    json_t *labels = json_object ();
    for (int i = 0; i < 80; i++) {
        char key[32];
        snprintf (key, sizeof key, "l%02d", i);
        json_object_set_new (labels, key, json_string ("v"));
    }
    json_object_set_new (labels, "example.org/ok", json_string (""));
    json_object_set_new (json_object_get (node, "metadata"), "labels", labels);
    char why[256], notes[2048];
    Orrery__NodeHeartbeat *hb;
    CHECK_EQ_INT (k8s_node_heartbeat (node, "a", 1, &hb, why, sizeof why, notes, sizeof notes), K8S_NODE_PUBLISH);
    CHECK_EQ_INT (hb->n_labels, 64);
    CHECK_EQ_STR (hb->labels[63]->key, "l63");
    CHECK (strstr (notes, "label \"l64\" left out: beyond the 64th label"), "notes: %s", notes);
    CHECK (strstr (notes, "; 9 more labels left out"), "notes: %s", notes); /* l64..l79 and one more: 8 named */
    printf ("80+1 labels: 64 kept; notes: %s\n", notes);
    k8s_node_heartbeat_free (&hb);
    json_decref (node);
    s_checks++;
}

int
main (void)
{
    test_quantities ();
    test_golden ("node_gpu.json");
    test_golden ("node_plain.json");
    test_golden ("node_cordoned.json");
    test_golden ("node_notready.json");
    test_malformed ();
    test_many_labels ();
    printf ("%d passed, 0 failed\n", s_checks);
    return 0;
}
