# The local backend's processes (services/spawner/spawner_local.c), compiled straight into
# its test: real servers (sh, sleep, python3) started in a private directory, with their
# environment, process group, identity, memory/pids limits (cgroups when writable, else
# SKIP), the rlimit fallback, exec failures and cleanup.
orrery_test(test_spawner_local test_spawner_local.c ${CMAKE_SOURCE_DIR}/services/spawner/spawner_local.c TIMEOUT 120)
target_include_directories(test_spawner_local PRIVATE ${CMAKE_SOURCE_DIR}/services/spawner)
target_link_libraries(test_spawner_local PRIVATE Threads::Threads)
