# The scheduler (services/scheduler). test_sched_units compiles its pure parts (filters,
# scores, sampling, profiles) straight into the test; the others run the real service
# against a real redis-server and broker.
set(SCHED_DIR ${CMAKE_SOURCE_DIR}/services/scheduler)
orrery_test(test_sched_units test_sched_units.c ${SCHED_DIR}/sched_filter.c ${SCHED_DIR}/sched_score.c
            ${SCHED_DIR}/sched_sample.c ${SCHED_DIR}/sched_profile.c TIMEOUT 30)
target_include_directories(test_sched_units PRIVATE ${SCHED_DIR})

add_library(orrery_schedfixture STATIC sched_fixture.c)
target_link_libraries(orrery_schedfixture PUBLIC orrery_busfixture)

foreach(t test_sched_concurrent test_sched_balance)
  orrery_test(${t} ${t}.c TIMEOUT 240)
  target_link_libraries(${t} PRIVATE orrery_schedfixture Threads::Threads)
  add_dependencies(${t} orrery-scheduler orrery-bus)
endforeach()
