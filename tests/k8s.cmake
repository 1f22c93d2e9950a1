# Server profiles and the Kubernetes backend (services/spawner/spawner_profile.c, k8s_*.c),
# compiled straight into their tests. test_spawner_profile is pure; test_k8s_backend runs
# the backend against tests/fixtures/k8s_fake_api (a FAKE Kubernetes API server in Python
# 3 stdlib: no cluster can run here) and compares the objects it builds with
# tests/k8s_expected/*.json.
set(SPAWNER_DIR ${CMAKE_SOURCE_DIR}/services/spawner)
orrery_test(test_spawner_profile test_spawner_profile.c ${SPAWNER_DIR}/spawner_profile.c TIMEOUT 30)
target_include_directories(test_spawner_profile PRIVATE ${SPAWNER_DIR})

orrery_test(test_k8s_backend test_k8s_backend.c ${SPAWNER_DIR}/spawner_profile.c ${SPAWNER_DIR}/k8s_config.c
            ${SPAWNER_DIR}/k8s_objects.c ${SPAWNER_DIR}/k8s_client.c ${SPAWNER_DIR}/k8s_watch.c TIMEOUT 120)
target_include_directories(test_k8s_backend PRIVATE ${SPAWNER_DIR})
target_compile_definitions(test_k8s_backend PRIVATE
  K8S_FAKE_API="${CMAKE_SOURCE_DIR}/tests/fixtures/k8s_fake_api/fake_k8s_api.py"
  K8S_EXPECTED_DIR="${CMAKE_SOURCE_DIR}/tests/k8s_expected")
target_link_libraries(test_k8s_backend PRIVATE Threads::Threads)

# Nodes from the Kubernetes API (services/spawner/k8s_nodes.c): test_k8s_nodes turns the
# hand-written Node objects of tests/k8s_expected/node_*.json (and malformed ones) into
# heartbeats; test_sched_k8s_nodes runs orrery-spawner with ORRERY_NODE_SOURCE=kubernetes
# against the fake API server serving those nodes, with the real scheduler on a real Redis
# and broker, and reads the scheduler's `nodes` and `place`.
orrery_test(test_k8s_nodes test_k8s_nodes.c ${SPAWNER_DIR}/k8s_nodes.c ${SPAWNER_DIR}/k8s_config.c
            ${SPAWNER_DIR}/k8s_client.c TIMEOUT 30)
target_include_directories(test_k8s_nodes PRIVATE ${SPAWNER_DIR})
target_compile_definitions(test_k8s_nodes PRIVATE K8S_EXPECTED_DIR="${CMAKE_SOURCE_DIR}/tests/k8s_expected")
target_link_libraries(test_k8s_nodes PRIVATE Threads::Threads)

orrery_test(test_sched_k8s_nodes test_sched_k8s_nodes.c TIMEOUT 120)
target_link_libraries(test_sched_k8s_nodes PRIVATE orrery_schedfixture)
target_compile_definitions(test_sched_k8s_nodes PRIVATE
  K8S_FAKE_API="${CMAKE_SOURCE_DIR}/tests/fixtures/k8s_fake_api/fake_k8s_api.py"
  K8S_EXPECTED_DIR="${CMAKE_SOURCE_DIR}/tests/k8s_expected")
add_dependencies(test_sched_k8s_nodes orrery-spawner orrery-scheduler orrery-bus)
