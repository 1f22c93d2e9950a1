# The bus: broker, worker and client libraries, events, CURVE. Each acceptance line of
# the foundation issue is one test program; they share real brokers and echo workers.
add_executable(orrery-test-echo-worker echo_worker.c)
target_link_libraries(orrery-test-echo-worker PRIVATE orrery)
add_library(orrery_busfixture STATIC bus_fixture.c)
target_link_libraries(orrery_busfixture PUBLIC orrery_testutil)

foreach(t test_bus_lru test_bus_worker_kill test_bus_broker_restart test_bus_two_brokers
          test_bus_events test_bus_fuzz test_bus_curve test_bus_slow_handler)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c)
    orrery_test(${t} ${t}.c TIMEOUT 180)
    target_link_libraries(${t} PRIVATE orrery_busfixture)
    add_dependencies(${t} orrery-test-echo-worker orrery-bus)
  endif()
endforeach()

# The worker library alone, against brokers the test plays itself (no fixture needed).
orrery_test(test_bus_repeat_ids test_bus_repeat_ids.c TIMEOUT 60)
