# The spawner's node agent (services/spawner/spawner_node_agent.c), compiled into its
# tests: its parsers and cgroup readers on hand-made input, the built spawner's settings
# and heartbeats on a real broker; then, with the built scheduler on a real Redis, a node
# that registers, is lost when its agent is SIGKILLed, and comes back.
orrery_test(test_node_agent test_node_agent.c ${CMAKE_SOURCE_DIR}/services/spawner/spawner_node_agent.c TIMEOUT 60)
target_include_directories(test_node_agent PRIVATE ${CMAKE_SOURCE_DIR}/services/spawner)
target_link_libraries(test_node_agent PRIVATE orrery_busfixture)
add_dependencies(test_node_agent orrery-spawner orrery-bus)

orrery_test(test_sched_node_agent test_sched_node_agent.c ${CMAKE_SOURCE_DIR}/services/spawner/spawner_node_agent.c
            TIMEOUT 120)
target_include_directories(test_sched_node_agent PRIVATE ${CMAKE_SOURCE_DIR}/services/spawner)
target_link_libraries(test_sched_node_agent PRIVATE orrery_busfixture)
add_dependencies(test_sched_node_agent orrery-spawner orrery-scheduler orrery-bus)
