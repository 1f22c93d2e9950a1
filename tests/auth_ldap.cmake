# The auth service's LDAP authenticator (services/auth/auth_ldap.c) against a real slapd
# started by tests/fixtures/slapd: escaping, template and search binds, groups, injection
# attempts, empty passwords, a directory that hangs, stops and comes back.
orrery_test(test_auth_ldap test_auth_ldap.c ${CMAKE_SOURCE_DIR}/services/auth/auth_ldap.c TIMEOUT 60)
target_include_directories(test_auth_ldap PRIVATE ${CMAKE_SOURCE_DIR}/services/auth)
target_link_libraries(test_auth_ldap PRIVATE ldap lber Threads::Threads)
target_compile_definitions(test_auth_ldap PRIVATE ORRERY_SLAPD_FIXTURE="${CMAKE_SOURCE_DIR}/tests/fixtures/slapd")
