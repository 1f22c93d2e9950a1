# The identity library: scopes, roles, timestamps, crypto helpers (no servers needed).
orrery_test(test_scopes test_scopes.c TIMEOUT 30)
