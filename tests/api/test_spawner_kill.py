"""Servers survive their spawner and their proxy (issue 5's acceptance), with the real
jupyterhub-singleuser from Debian on a real stack (`orrery up`: redis-server, bus,
services, configurable-http-proxy).

1. 20 spawns in flight, a second spawner replica running: SIGKILL one replica. Every
   server ends ready or failed with a reason, none stays pending, and every process of
   the stack is one a ready record claims (no orphan).
2. The same with one replica, restarted by `orrery up`'s supervisor.
3. SIGKILL configurable-http-proxy while the 20 run: `orrery up` restarts it and every
   route is back within 2 s of its start.
4. Stopping all 20 leaves no process and no route.

Spawns are asked with the server.start.requested intent (`orrery publish`), the way an
integrator would; the REST API's spawn endpoints have their own tests.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import Checks, Stack  # noqa: E402

N = 20
check = Checks()


def stack_processes(s):
    """pid -> JUPYTERHUB_USER of every session leader started by this stack's spawners."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            if os.getsid(int(pid)) != int(pid):
                continue
        except (OSError, ValueError):
            continue
        if env.get(b"JUPYTERHUB_SERVICE_PREFIX") and env.get(b"ORRERY_STACK") and \
                env.get(b"JUPYTERHUB_API_URL", b"").decode().startswith("http://127.0.0.1:%d" % s.gateway_port):
            found[int(pid)] = env[b"JUPYTERHUB_USER"].decode()
    return found


def service_pid(s, name):
    """The pid of a supervised child, from its command line and ORRERY_REPLICA_ID."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if name == "chp":
            if any(b"configurable-http-proxy" in c for c in cmd[:2]) and str(s.port).encode() in cmd:
                return int(pid)
            continue
        if ("ORRERY_STATE_DIR=%s/state" % s.dir).encode() not in env:
            continue
        if ("ORRERY_REPLICA_ID=%s" % name).encode() in env and cmd[0].endswith(b"orrery-spawner"):
            return int(pid)
    return None


def wait_settled(s, users, timeout):
    """Waits until every server is ready or failed; returns user -> record."""
    deadline = time.time() + timeout
    while True:
        recs = {u: s.record(u) for u in users}
        if all(r.get("state") in ("ready", "failed") for r in recs.values()) or time.time() > deadline:
            return recs
        time.sleep(0.25)


def scenario_kill(replicas, label):
    env = {"JUPYTERHUB_SINGLEUSER_APP": "notebook.notebookapp.NotebookApp", "ORRERY_SPAWN_LEASE_MS": "2000",
           "ORRERY_STOP_SIGINT_MS": "3000", "ORRERY_STOP_SIGTERM_MS": "2000"}
    s = Stack(env=env, args=("--replicas", "spawner=%d" % replicas))
    s.gateway_port = int(s.state_env().get("ORRERY_GATEWAY_PORT", "0") or 0)
    try:
        if not s.gateway_port:
            # the gateway port is in the services' environment, not orrery.env: read it from a child
            pid = service_pid(s, "spawner-0")
            with open("/proc/%d/environ" % pid, "rb") as f:
                env_items = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            s.gateway_port = int(env_items[b"ORRERY_GATEWAY_PORT"])
        users = ["k%s%02d" % (label, i) for i in range(N)]
        for u in users:
            s.token(u)   # creates the user
        t0 = time.time()
        for u in users:
            s.publish("server.start.requested", {"user": u, "server": ""})
        time.sleep(1.0)
        victim = service_pid(s, "spawner-0")
        states = [s.record(u).get("state") for u in users]
        in_flight = sum(1 for st in states if st in ("queued", "pending_spawn"))
        print("%s: killing spawner-0 (pid %s) with %d of %d spawns in flight (%s)" % (
            label, victim, in_flight, N, ",".join(sorted(set(filter(None, states))))), flush=True)
        check(victim is not None, "%s: spawner-0 found" % label)
        check(in_flight >= 10, "%s: at least 10 spawns in flight at the kill (%d)" % (label, in_flight))
        os.kill(victim, signal.SIGKILL)
        recs = wait_settled(s, users, 120)
        took = time.time() - t0
        ready = [u for u, r in recs.items() if r.get("state") == "ready"]
        failed = {u: r.get("reason") for u, r in recs.items() if r.get("state") == "failed"}
        print("%s: settled after %.1f s: %d ready, %d failed %s" % (label, took, len(ready), len(failed), failed),
              flush=True)
        check(all(r.get("state") in ("ready", "failed") for r in recs.values()),
              "%s: none stays pending: %s" % (label, {u: r.get("state") for u, r in recs.items()}))
        check(all(reason for reason in failed.values()), "%s: every failure has a reason" % label)
        logs = s.dir + "/state/logs"
        taken = 0
        for name in os.listdir(logs):
            if name.startswith("spawner-"):
                with open(os.path.join(logs, name), errors="replace") as f:
                    taken += sum(1 for line in f if "taken over" in line)
        print("%s: %d servers taken over by the surviving or restarted replica" % (label, taken), flush=True)
        check(taken >= 1, "%s: the killed replica's servers were taken over (log says so)" % label)
        check(len(ready) >= N - 2, "%s: nearly all servers come up after the kill (%d ready)" % (label, len(ready)))
        # orphans: within the scan's reach (process age 10 s + scan every 5 s), every process is a ready one's
        claimed = {int(recs[u]["pid"]): u for u in ready}
        deadline = time.time() + 25
        while True:
            procs = stack_processes(s)
            orphans = {p: u for p, u in procs.items() if p not in claimed}
            if not orphans or time.time() > deadline:
                break
            time.sleep(0.5)
        check(not orphans, "%s: no orphan process survives: %s" % (label, orphans))
        check(set(procs) == set(claimed), "%s: every ready server has its process (%s vs %s)" % (
            label, sorted(procs), sorted(claimed)))
        return s, ready
    except Exception:
        s.stop()
        raise


def scenario_proxy(s, ready):
    """SIGKILL CHP; orrery up restarts it; proxyctl refills it."""
    port = s.port
    chp = service_pid(s, "chp")
    check(chp is not None, "proxy: configurable-http-proxy found")
    os.kill(chp, signal.SIGKILL)
    t_kill = time.time()
    # wait for the new CHP to listen, then for every route through it
    new_pid = None
    while time.time() - t_kill < 30:
        new_pid = service_pid(s, "chp")
        if new_pid and new_pid != chp:
            break
        time.sleep(0.02)
    t_start = None
    while time.time() - t_kill < 30:
        try:
            r = s.request("GET", "/_chp_healthz", port=port)
            if r.status == 200:
                t_start = time.time()
                break
        except OSError:
            pass
        time.sleep(0.01)
    check(t_start is not None, "proxy: CHP restarted")
    missing = set(ready)
    while missing and time.time() - t_start < 10:
        for u in list(missing):
            try:
                r = s.request("GET", "/user/%s/api" % u, port=port)
                # the single-user server answers its own API path (200 JSON); the hub would 302/424
                if r.status == 200 and b"version" in r.body:
                    missing.discard(u)
            except OSError:
                pass
        if missing:
            time.sleep(0.02)
    back = time.time() - t_start
    print("proxy: CHP killed; new CHP answered %.2f s after the kill; all %d routes back %.2f s after its start" % (
        t_start - t_kill, len(ready), back), flush=True)
    check(not missing, "proxy: every route back (missing %s)" % sorted(missing))
    check(back <= 2.0, "proxy: routes back within 2 s of the proxy's start (%.2f s)" % back)


def scenario_stop_all(s, users):
    for u in users:
        s.publish("server.stop.requested", {"user": u, "server": ""})
    deadline = time.time() + 60
    while time.time() < deadline:
        states = [s.record(u).get("state") for u in users]
        if all(st in ("stopped", "failed") for st in states):
            break
        time.sleep(0.25)
    check(all(st in ("stopped", "failed") for st in states), "stop: all stopped (%s)" % states)
    deadline = time.time() + 10
    while stack_processes(s) and time.time() < deadline:
        time.sleep(0.2)
    check(not stack_processes(s), "stop: no server process left: %s" % stack_processes(s))
    routes = s.redis("HKEYS", "orr:{routes}:table")
    check("/user/" not in routes, "stop: no user route left: %s" % routes)


def main():
    # 1 + 3 + 4: two replicas
    s, ready = scenario_kill(2, "a")
    try:
        scenario_proxy(s, ready)
        scenario_stop_all(s, ["ka%02d" % i for i in range(N)])
    finally:
        reports = s.stop()
        check(not reports, "sanitizers: %s" % reports[:5])
    # 2: one replica, restarted by the supervisor; then `orrery up` stopping leaves nothing
    s, ready = scenario_kill(1, "b")
    users = ["kb%02d" % i for i in range(N)]
    reports = s.stop()
    check(not reports, "sanitizers: %s" % reports[:5])
    leftover = [p for p in os.listdir("/proc") if p.isdigit() and _is_server_of(p, users)]
    check(not leftover, "orrery up stopped: no server process left (%s)" % leftover)
    check.finish()


def _is_server_of(pid, users):
    try:
        with open("/proc/%s/environ" % pid, "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    except OSError:
        return False
    return env.get(b"JUPYTERHUB_USER", b"").decode() in users


if __name__ == "__main__":
    main()
