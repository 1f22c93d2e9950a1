# orr_store (hiredis wrapper: reconnects, pipelines, scripts, per-thread stores) and
# orr_keys (key names, escaping, cluster slots), against real redis-servers.
orrery_test(test_store test_store.c TIMEOUT 60)
