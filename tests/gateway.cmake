# Gateway parts testable without a stack: the reply cache, built from its one source file.
orrery_test(test_reply_cache test_reply_cache.c ${PROJECT_SOURCE_DIR}/services/gateway/gw_reply_cache.c TIMEOUT 30)
target_include_directories(test_reply_cache PRIVATE ${PROJECT_SOURCE_DIR}/services/gateway)
