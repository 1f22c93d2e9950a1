# The spawner's pure parts and its Redis state (services/spawner/spawner_env.c,
# spawner_records.c), compiled straight into their tests. test_spawner_env is pure: the
# URLs, OAuth client id, scopes and the single-user environment of reference §9.
# test_spawner_records runs the record scripts against a real redis-server: key building
# in Lua equal to lib/orr_keys.c, the queue, limits, states, fencing, leases, hand-over.
set(SPAWNER_SRC_DIR ${CMAKE_SOURCE_DIR}/services/spawner)
orrery_test(test_spawner_env test_spawner_env.c ${SPAWNER_SRC_DIR}/spawner_env.c ${SPAWNER_SRC_DIR}/spawner_profile.c
            TIMEOUT 30)
target_include_directories(test_spawner_env PRIVATE ${SPAWNER_SRC_DIR})

orrery_test(test_spawner_records test_spawner_records.c ${SPAWNER_SRC_DIR}/spawner_records.c TIMEOUT 60)
target_include_directories(test_spawner_records PRIVATE ${SPAWNER_SRC_DIR})
