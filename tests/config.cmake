# Settings, --help on every binary, JSON logs.
orrery_test(test_config test_config.c TIMEOUT 60)
add_dependencies(test_config orrery-cli orrery-bus orrery-auth orrery-scheduler orrery-spawner orrery-proxyctl orrery-gateway)
