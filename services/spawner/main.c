/*  orrery-spawner: runs users' servers through a backend and is its host's node agent.
 *
 *  Owns server lifecycle state in Redis. In this revision it answers "ping" and is the node
 *  agent of its host (spawner_node_agent.c): it publishes node.heartbeat with the host's
 *  capacity, usage, labels and taints, which is how the scheduler learns of the node. The
 *  lifecycle and the backends are the subject of issue 5.
 */
#include "spawner_node_agent.h"

static const orr_setting_t s_settings[] = {
    NODE_AGENT_SETTINGS,
    { NULL, NULL, NULL },
};

static int
s_setup (orr_service_t *svc, orr_config_t *config, void **state)
{
    node_agent_t *agent = NULL;
    int rc = node_agent_start (svc, config, &agent);
    *state = agent;
    return rc;
}

static void
s_teardown (void *state)
{
    node_agent_t *agent = state;
    node_agent_destroy (&agent);
}

int
main (int argc, char **argv)
{
    return orr_service_main (argc, argv, "spawner", "Orrery spawner: starts, polls and stops servers.", s_settings,
                             s_setup, s_teardown);
}
