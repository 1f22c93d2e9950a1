# Black-box tests of the REST API, pages and OAuth provider against a real stack
# (`orrery up`: redis-server, bus, services, configurable-http-proxy). Python 3 from
# Debian, standard library only.
find_program(DEBIAN_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
function(orrery_py_test name script)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "ORRERY_BIN_DIR=${CMAKE_BINARY_DIR}/bin;NODE_PATH=/usr/share/nodejs;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()
orrery_py_test(test_api api/test_api.py TIMEOUT 300)
orrery_py_test(test_replicas api/test_replicas.py TIMEOUT 120)
orrery_py_test(test_ab api/test_ab.py TIMEOUT 120)
orrery_py_test(test_ldap_login api/test_ldap_login.py TIMEOUT 180)
orrery_py_test(test_nodes api/test_nodes.py TIMEOUT 180)
orrery_py_test(test_spawner_kill api/test_spawner_kill.py TIMEOUT 400)
orrery_py_test(test_server_limits api/test_server_limits.py TIMEOUT 180)
orrery_py_test(test_culler api/test_culler.py TIMEOUT 120)
orrery_py_test(test_servers_api api/test_servers_api.py TIMEOUT 300)
orrery_py_test(test_k8s_servers api/test_k8s_servers.py TIMEOUT 180)
orrery_py_test(test_base_url api/test_base_url.py TIMEOUT 120)
