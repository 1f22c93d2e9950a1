"""The built-in idle culler on a real stack (issue 5, deliverable 7): a server nobody
uses is stopped after CULL_IDLE_TIMEOUT_S; one reached through the proxy all along is
not (configurable-http-proxy's last_activity, copied by proxyctl, keeps it alive); with
CULL_USERS a user left without servers and idle is deleted, an active one is not. Two
spawner replicas run: the culler's round lock lets one act (the log shows each stop
once). Servers are bench/spawn's stand-in (orrery-standin) for speed.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Checks, Stack  # noqa: E402

check = Checks()


def state(s, user):
    return s.redis("HGET", "orr:{u:%s}:server:" % user, "state").strip()


def main():
    env = {"ORRERY_CULL_IDLE_TIMEOUT_S": "3", "ORRERY_CULL_EVERY_S": "1", "ORRERY_CULL_USERS": "true",
           "ORRERY_SPAWNER_CMD": os.path.abspath(os.path.join(BIN, "orrery-standin"))}
    s = Stack(env=env, args=("--replicas", "spawner=2"))
    try:
        for u in ("idle", "busy", "gone"):
            s.token(u)
        for u in ("idle", "busy"):
            s.publish("server.start.requested", {"user": u, "server": ""})
        deadline = time.time() + 30
        while time.time() < deadline and not (state(s, "idle") == "ready" and state(s, "busy") == "ready"):
            time.sleep(0.1)
        check(state(s, "idle") == "ready" and state(s, "busy") == "ready", "both servers ready")
        t_ready = time.time()
        # proxyctl pushes a route at once to every proxy it knows reachable, else its next
        # sync (500 ms) does: wait for the first
        while time.time() - t_ready < 2 and s.request("GET", "/user/busy/tree").status != 200:
            time.sleep(0.05)
        # "gone" was last seen an hour ago and has no server; "busy" is active now
        s.redis("HSET", "orr:{u:gone}:user", "last_activity", str(int((time.time() - 3600) * 1e6)))
        idle_stopped_at = None
        while time.time() - t_ready < 9:
            r = s.request("GET", "/user/busy/tree")
            check(r.status == 200, "busy reached through the proxy (%d)" % r.status)
            s.redis("HSET", "orr:{u:busy}:user", "last_activity", str(int(time.time() * 1e6)))
            if idle_stopped_at is None and state(s, "idle") in ("pending_stop", "stopped"):
                idle_stopped_at = time.time() - t_ready
            time.sleep(0.3)
        print("idle stopped %.1f s after ready (timeout 3 s, rounds every 1 s); busy: %s" % (
            idle_stopped_at or -1, state(s, "busy")), flush=True)
        check(idle_stopped_at is not None and 2.5 <= idle_stopped_at <= 6, "the idle server was culled after about 3 s")
        check(state(s, "idle") == "stopped", "idle ends stopped (%s)" % state(s, "idle"))
        check(state(s, "busy") == "ready", "the busy server was not culled (%s)" % state(s, "busy"))
        check(s.redis("EXISTS", "orr:{u:gone}:user").strip() == "0", "the idle user without servers was deleted")
        check(s.redis("EXISTS", "orr:{u:busy}:user").strip() == "1", "the busy user was kept")
        stops = 0
        logs = s.dir + "/state/logs"
        for name in os.listdir(logs):
            if name.startswith("spawner-"):
                with open(os.path.join(logs, name), errors="replace") as f:
                    stops += sum(1 for line in f if "culler: stopping idle/" in line)
        check(stops == 1, "one replica stopped the idle server, once (%d log lines)" % stops)
    finally:
        reports = s.stop()
        check(not reports, "sanitizers: %s" % reports[:5])
    check.finish()


if __name__ == "__main__":
    main()
