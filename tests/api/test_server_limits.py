"""A profile's memory limit is enforced on a real stack (issue 5's acceptance): a server
that allocates beyond it is killed by the kernel and reported failed with the reason.

The server is bench/spawn's stand-in (orrery-standin), which honours the single-user
environment, becomes ready, then allocates ORRERY_STANDIN_ALLOCATE_MB in steps. The
profile limits it to 128 MiB (cgroup v2 memory.max, or v1 memory.limit_in_bytes here;
RLIMIT_AS where no cgroup is writable). A second profile without a limit runs the same
allocation to the end, so the limit is what kills the first.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Checks, Stack  # noqa: E402

check = Checks()


def wait_state(s, user, states, timeout):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        r = s.record(user)
        if not seen or seen[-1] != r.get("state"):
            seen.append(r.get("state"))
        if r.get("state") in states:
            return r, seen
        time.sleep(0.05)
    return s.record(user), seen


def main():
    profiles = [
        {"slug": "small", "display_name": "Small", "default": True, "mem_limit": "128M", "pids_limit": 64},
        {"slug": "big", "display_name": "Big", "mem_limit": "1G"},
    ]
    env = {
        "ORRERY_SERVER_PROFILES": json.dumps(profiles),
        # the spawner gives servers a clean environment: the stand-in's own options go on its command line
        "ORRERY_SPAWNER_CMD": "env ORRERY_STANDIN_ALLOCATE_MB=400 " + os.path.abspath(os.path.join(BIN, "orrery-standin")),
    }
    s = Stack(env=env)
    try:
        s.token("hog")
        s.token("fine")
        s.publish("server.start.requested", {"user": "hog", "server": ""})
        s.publish("server.start.requested", {"user": "fine", "server": "", "user_options_json": '{"profile": "big"}'})
        rec, seen = wait_state(s, "hog", ("failed",), 60)
        print("hog: states %s; reason: %s" % (seen, rec.get("reason")), flush=True)
        check("ready" in seen, "the limited server became ready before it allocated (%s)" % seen)
        check(rec.get("state") == "failed", "the limited server is reported failed (%s)" % rec.get("state"))
        reason = rec.get("reason", "")
        check("memory limit" in reason or "MemoryError" in reason or "Cannot allocate" in reason,
              "the reason names the memory limit: %r" % reason)
        check(rec.get("profile", "small") == "small", "the default profile was used")
        rec2, seen2 = wait_state(s, "fine", ("ready", "failed"), 60)
        time.sleep(5)   # 400 MiB in 16 MiB steps every 100 ms: done after 2.5 s
        rec2 = s.record("fine")
        check(rec2.get("state") == "ready", "a server under a 1 GiB limit survives the same allocation (%s: %s)" % (
            rec2.get("state"), rec2.get("reason")))
        check(rec2.get("profile") == "big", "user_options chose the profile (%s)" % rec2.get("profile"))
        # no route is left for the failed server
        port = s.state_env()["ORRERY_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
        routes = subprocess.run(["redis-cli", "-p", port, "--raw", "HKEYS", "orr:{routes}:table"],
                                capture_output=True, text=True, timeout=10).stdout.split()
        check("/user/hog" not in routes and "/user/fine" in routes, "routes: %s" % routes)
    finally:
        reports = s.stop()
        check(not reports, "sanitizers: %s" % reports[:5])
    check.finish()


if __name__ == "__main__":
    main()
