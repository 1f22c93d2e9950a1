# End-to-end test in a real browser: headless Chromium driven by selenium against a real
# stack (`orrery up`) with real jupyterhub-singleuser servers (tests/e2e/test_browser.py).
# Debian's /usr/bin/python3 with python3-selenium, chromium and chromium-driver
# (scripts/install-deps); without them the test exits 77 and ctest reports it skipped.
# Screenshots go to ${CMAKE_BINARY_DIR}/artifacts (e2e_tree.png; e2e_failure.png on failure).
find_program(E2E_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
add_test(NAME test_browser COMMAND ${E2E_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/test_browser.py)
set_tests_properties(test_browser PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "ORRERY_BIN_DIR=${CMAKE_BINARY_DIR}/bin;NODE_PATH=/usr/share/nodejs;ORRERY_ARTIFACT_DIR=${CMAKE_BINARY_DIR}/artifacts;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
