# proxyctl (services/proxyctl). test_proxyctl_units compiles the pure route rules straight
# into the test; test_proxyctl runs two real proxyctl replicas against two real
# configurable-http-proxy processes, a real redis-server and a broker.
set(PROXYCTL_DIR ${CMAKE_SOURCE_DIR}/services/proxyctl)
orrery_test(test_proxyctl_units test_proxyctl_units.c ${PROXYCTL_DIR}/route.c TIMEOUT 30)
target_include_directories(test_proxyctl_units PRIVATE ${PROXYCTL_DIR})

orrery_test(test_proxyctl test_proxyctl.c TIMEOUT 90)
target_link_libraries(test_proxyctl PRIVATE orrery_busfixture Threads::Threads)
add_dependencies(test_proxyctl orrery-proxyctl orrery-bus)
