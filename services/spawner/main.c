/*  orrery-spawner: runs users' servers through a backend and tells the scheduler its nodes.
 *
 *  Owns server lifecycle state in Redis. In this revision it answers "ping" and is the
 *  scheduler's node source, chosen by NODE_SOURCE: "local" (the default) makes it the node
 *  agent of its host (spawner_node_agent.c), publishing node.heartbeat with the host's
 *  capacity, usage, labels and taints; "kubernetes" publishes one node.heartbeat per Ready
 *  Node object of the cluster, read from the API (k8s_nodes.c). The lifecycle and the
 *  backends are the subject of issue 5.
 */
#include "k8s_config.h"
#include "k8s_nodes.h"
#include "orr_log.h"
#include "spawner_node_agent.h"

#include <stdlib.h>
#include <string.h>

static const orr_setting_t s_settings[] = {
    K8S_NODES_SETTINGS,
    NODE_AGENT_SETTINGS,
    SPAWNER_K8S_SETTINGS,
    { NULL, NULL, NULL },
};

typedef struct {
    node_agent_t *agent;            /* NODE_SOURCE=local */
    k8s_nodes_source_t *k8s_nodes;  /* NODE_SOURCE=kubernetes */
} spawner_main_t;

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    spawner_main_t *self = calloc (1, sizeof *self);
    *state = self;
    if (!self)
        return 1;
    const char *source = orr_config_get (config, "NODE_SOURCE");
    if (!source || !*source || strcmp (source, "local") == 0)
        return node_agent_start (svc, config, &self->agent);
    if (strcmp (source, "kubernetes") == 0)
        return k8s_nodes_source_start (svc, config, &self->k8s_nodes);
    orr_error ("NODE_SOURCE: \"%s\" is not local or kubernetes", source);
    return 2;
}

static void
s_teardown (void *state)
{
    spawner_main_t *self = state;
    if (!self)
        return;
    node_agent_destroy (&self->agent);
    k8s_nodes_source_destroy (&self->k8s_nodes);
    free (self);
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "spawner", "Orrery spawner: starts, polls and stops servers.", s_settings,
                             s_setup, s_teardown);
}
