# protobuf <-> JSON mapping, the event topic table, and the outbound HTTP client.
orrery_test(test_pbjson test_pbjson.c TIMEOUT 60)
orrery_test(test_http test_http.c TIMEOUT 60)
