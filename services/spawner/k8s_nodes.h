/*  k8s_nodes: the scheduler's nodes read from the Kubernetes API (NODE_SOURCE=kubernetes).
 *
 *  k8s_node_heartbeat turns one Node object (an item of GET /api/v1/nodes) into the
 *  orrery.NodeHeartbeat a node agent would publish: capacity from status.allocatable,
 *  labels from metadata.labels, taints from spec.taints (+ spec.unschedulable). It is a
 *  pure function so that tests feed it hand-written Node JSON.
 *
 *  k8s_nodes_source_* is the spawner's node source that lists the nodes every
 *  NODE_HEARTBEAT_MS and publishes one node.heartbeat per Ready node (docs/kubernetes.md).
 */
#ifndef K8S_NODES_H
#define K8S_NODES_H

#include "orr_config.h"
#include "orr_service.h"
#include "orrery/events.pb-c.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The node source setting, for the spawner's settings table (docs/configuration.md). */
#define K8S_NODES_SETTINGS                                                                                             \
    { "NODE_SOURCE", "local",                                                                                          \
      "where the scheduler's nodes come from: local (this host's node agent) | kubernetes (the API's Node objects)" }

#define K8S_NODE_TAINT_UNSCHEDULABLE "node.kubernetes.io/unschedulable"

/* A Kubernetes quantity ("4", "3500m", "0.5", "16Gi", "1e9", "128974848") times `scale`
 * (1000 for millicores, 1 for bytes or counts), rounded up as Kubernetes' MilliValue and
 * Value do. Suffixes: Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent e/E±N (up to
 * 3 digits). At most 19 digits not counting leading zeros and the fraction's trailing
 * zeros. 0, or -1 when the text is not a quantity, is negative, or the result does not
 * fit an int64. */
int k8s_parse_quantity (const char *text, int64_t scale, int64_t *out);

/* The outcome of k8s_node_heartbeat. */
typedef enum {
    K8S_NODE_PUBLISH = 0,     /* *out holds the heartbeat */
    K8S_NODE_NOT_READY,       /* Ready is not "True": publish nothing, so the scheduler takes it for lost */
    K8S_NODE_MALFORMED,       /* the object cannot be turned into a heartbeat: publish nothing */
} k8s_node_outcome_t;

/* One Node object into a heartbeat (usage zero: the API has no live usage; agent =
 * `agent`; time_us = `time_us`). K8S_NODE_PUBLISH with *out (free it with
 * k8s_node_heartbeat_free), or another outcome with the reason in why. Labels the
 * scheduler could not take (key or value outside [A-Za-z0-9._-] ('/' allowed in keys),
 * over 253 bytes, beyond the 64th) are left out and named in notes ("" when none). */
k8s_node_outcome_t k8s_node_heartbeat (const json_t *node, const char *agent, int64_t time_us,
                                       Orrery__NodeHeartbeat **out, char *why, size_t whylen, char *notes,
                                       size_t noteslen);
void k8s_node_heartbeat_free (Orrery__NodeHeartbeat **hb_p);

/* --- the node source ------------------------------------------------------------------ */

typedef struct k8s_nodes_source_t k8s_nodes_source_t;

/* Reads NODE_HEARTBEAT_MS and the K8S_* settings, starts the listing thread and registers
 * the publishing timer on `svc`. 0 with *source_p set, or the exit code (2: a bad setting)
 * with the reason logged. */
int k8s_nodes_source_start (orr_service_t *svc, orr_config_t *config, k8s_nodes_source_t **source_p);
/* Stops the thread (waits for a list in flight, at most K8S_TIMEOUT_MS). */
void k8s_nodes_source_destroy (k8s_nodes_source_t **source_p);

#endif
