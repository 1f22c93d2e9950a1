# `orrery up`: the whole stack with real redis-server and configurable-http-proxy.
orrery_test(test_up test_up.c TIMEOUT 120)
add_dependencies(test_up orrery-cli orrery-bus orrery-auth orrery-scheduler orrery-spawner orrery-proxyctl orrery-gateway)
