"""Black-box test of identity across replicas (acceptance line of the identity issue):

  Three gateway replicas and two auth replicas on one Redis: a token created through one
  gateway works through another; after DELETE of the token, every gateway refuses it
  within 1 s; killing an auth replica under load loses no request.

It also checks the gateways' reply cache across replicas: A, B and C keep answers for 60 s
(ORRERY_GATEWAY_REPLY_CACHE_MS), so a change seen through another replica within 1 s was
seen through its event, not through the answer expiring.

`orrery up --replicas gateway=1,auth=2` runs Redis, the bus and two auth replicas; the test
starts three more orrery-gateway processes (A, B, C) itself, each on its own port, so that
each one can be addressed on its own (the shared SO_REUSEPORT port of `orrery up` cannot
target one replica). Standard library only; run with Debian's /usr/bin/python3.
"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Stack, free_port  # noqa: E402

LOAD_THREADS = 8
LOAD_SECONDS = 6.0
KILL_AFTER = 2.0
REVOKE_LIMIT = 1.0
REPLY_CACHE_MS = "60000"
POLL = 0.020

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what, detail)
        failures.append(what)
    return cond


class Gateway:
    """One orrery-gateway process of our own, on its own port, attached to the stack."""

    def __init__(self, stack, name):
        self.name = name
        self.port = free_port()
        self.log_path = os.path.join(stack.dir, "gateway-%s.log" % name)
        self.log = open(self.log_path, "w")
        env = dict(stack.env)
        env.update(stack.state_env())
        env.update({"ORRERY_GATEWAY_PORT": str(self.port), "ORRERY_GATEWAY_IP": "127.0.0.1",
                    "ORRERY_REPLICA_ID": "gateway-" + name, "ORRERY_STATE_DIR": stack.dir + "/state",
                    "ORRERY_PUBLIC_URL": "http://127.0.0.1:%d/" % stack.port,
                    "ORRERY_GATEWAY_REPLY_CACHE_MS": REPLY_CACHE_MS})
        self.proc = subprocess.Popen([os.path.join(BIN, "orrery-gateway")], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_healthy(self, stack, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if stack.request("GET", "/hub/health", port=self.port).status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        """SIGTERM; returns (exit status, sanitizer lines of its log)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            reports = [line.strip() for line in f if "Sanitizer" in line or "runtime error:" in line]
        return self.proc.returncode, reports

    def tail(self, n=20):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])


def children_named(stack, binary, replica):
    """pids of the stack's supervised children running `binary` with ORRERY_REPLICA_ID=replica."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != stack.proc.pid:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if os.path.basename(argv0) == binary and ("ORRERY_REPLICA_ID=" + replica).encode() in env:
            found.append(int(d))
    return found


def test_token_across_gateways(s, admin, gws):
    a, b, c = gws
    r = s.api("POST", "/users/alice", token=admin, port=a.port)
    check(r.status == 201, "POST /users/alice via gateway A -> 201", repr(r))
    r = s.api("POST", "/users/alice/tokens", {"note": "replicas"}, token=admin, port=a.port)
    check(r.status == 201, "POST /users/alice/tokens via gateway A -> 201", repr(r))
    if r.status != 201:
        return
    tok = r.json()
    alice, tid = tok["token"], tok["id"]
    for g in gws:
        r = s.api("GET", "/user", token=alice, port=g.port)
        check(r.status == 200 and r.json().get("name") == "alice",
              "alice's token (made via A) works via gateway %s" % g.name, repr(r))
    # every gateway has just validated (and cached) the token; now delete it via A
    t0 = time.time()
    r = s.api("DELETE", "/users/alice/tokens/" + tid, token=admin, port=a.port)
    t1 = time.time()
    check(r.status == 204, "DELETE the token via gateway A -> 204", repr(r))
    took = {}

    def poll(g):
        while time.time() - t1 < 5.0:
            try:
                if s.api("GET", "/user", token=alice, port=g.port).status == 403:
                    took[g.name] = time.time()
                    return
            except OSError:
                pass
            time.sleep(POLL)

    threads = [threading.Thread(target=poll, args=(g,)) for g in gws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("      DELETE took %.3f s" % (t1 - t0))
    for g in gws:
        if g.name in took:
            print("      gateway %s refuses the token %.3f s after the DELETE answered (%.3f s after it was sent)"
                  % (g.name, took[g.name] - t1, took[g.name] - t0))
        check(g.name in took and took[g.name] - t1 < REVOKE_LIMIT,
              "gateway %s refuses the deleted token within 1 s" % g.name,
              "took %s" % ("%.3f s" % (took[g.name] - t1) if g.name in took else "> 5 s"))
    for g in gws:
        r = s.api("GET", "/user", token=alice, port=g.port)
        check(r.status == 403, "gateway %s still refuses it" % g.name, repr(r))


def reply_cache_hits(s, admin, g):
    r = s.request("GET", "/hub/metrics", token=admin, port=g.port)
    for line in r.body.decode(errors="replace").splitlines():
        if line.startswith('orrery_gateway_reply_cache_total{outcome="hit"}'):
            return int(line.split()[-1])
    return -1


def seen_within(fn, limit):
    """Polls fn until it is true; the seconds it took, or None after `limit` (+ 1 s slack)."""
    t0 = time.time()
    while time.time() - t0 < limit + 1.0:
        if fn():
            return time.time() - t0
        time.sleep(POLL)
    return None


def test_reads_across_gateways(s, admin, gws):
    a, b, _ = gws

    def user_via(g, name="carol"):
        r = s.api("GET", "/users/" + name, token=admin, port=g.port)
        return r.json() if r.status == 200 else {}

    r = s.api("POST", "/users/carol", token=admin, port=a.port)
    check(r.status == 201, "POST /users/carol via A -> 201", repr(r))
    before = reply_cache_hits(s, admin, b)
    first, second = user_via(b), user_via(b)
    check(first == second and first.get("admin") is False, "B reads carol twice, the same", repr((first, second)))
    check(reply_cache_hits(s, admin, b) == before + 1, "B answered the second read from its reply cache",
          "hits %d -> %d" % (before, reply_cache_hits(s, admin, b)))

    # a change through A: B's cached answer goes with the event
    r = s.api("PATCH", "/users/carol", {"admin": True}, token=admin, port=a.port)
    check(r.status == 200, "PATCH carol admin via A -> 200", repr(r))
    took = seen_within(lambda: user_via(b).get("admin") is True, REVOKE_LIMIT)
    print("      B shows carol's new admin flag %s after the PATCH answered" % ("%.3f s" % took if took is not None else "never"))
    check(took is not None and took < REVOKE_LIMIT, "B shows a change made via A within 1 s (60 s cache)", repr(took))

    # a change through the same replica is there on its very next read
    user_via(a)
    r = s.api("PATCH", "/users/carol", {"admin": False}, token=admin, port=a.port)
    check(r.status == 200 and user_via(a).get("admin") is False, "A's next read shows its own change at once",
          repr(user_via(a)))

    # group membership through A
    s.api("POST", "/groups/physics", token=admin, port=a.port)
    user_via(b)
    r = s.api("POST", "/groups/physics/users", {"users": ["carol"]}, token=admin, port=a.port)
    check(r.status == 200, "add carol to physics via A -> 200", repr(r))
    took = seen_within(lambda: "physics" in user_via(b).get("groups", []), REVOKE_LIMIT)
    check(took is not None and took < REVOKE_LIMIT, "B shows the new group within 1 s", repr(took))

    # a server record written behind the gateways' back stays unseen until its event
    user_via(b)
    s.redis("HSET", "orr:{u:carol}:server:", "user", "carol", "name", "", "state", "ready", "url", "/user/carol/")
    s.redis("SADD", "orr:{u:carol}:servers", "")
    time.sleep(0.3)
    check(user_via(b).get("server") is None, "without an event, B keeps its answer (no server yet)",
          repr(user_via(b)))
    s.publish("server.ready", {"user": "carol", "server": "", "state": "ready", "url": "/user/carol/"})
    took = seen_within(lambda: user_via(b).get("server") == "/user/carol/", REVOKE_LIMIT)
    check(took is not None and took < REVOKE_LIMIT, "B shows the server within 1 s of server.ready", repr(took))
    s.redis("DEL", "orr:{u:carol}:server:", "orr:{u:carol}:servers")


def test_kill_auth_under_load(s, admin, gws):
    ports = [g.port for g in gws] + [s.port]     # A, B, C and the public port (proxy -> gateway-0)
    lock = threading.Lock()
    errors = []
    counts = {"POST": 0, "PATCH": 0, "GET user": 0, "GET self": 0}
    created = {}        # name -> admin flag last set
    slowest = [0.0, ""]
    slow = []           # requests that took over 1 s: the ones the dead replica held
    stop_at = time.time() + LOAD_SECONDS

    def call(what, method, path, body, port, expect, check_body=None):
        start = time.time()
        try:
            r = s.api(method, path, body, token=admin, port=port)
        except Exception as e:  # noqa: BLE001  (connection errors, timeouts)
            with lock:
                errors.append("%s %s via :%d: %r after %.3f s" % (method, path, port, e, time.time() - start))
            return False
        took = time.time() - start
        with lock:
            counts[what] += 1
            if took > 1.0:
                slow.append(took)
            if took > slowest[0]:
                slowest[:] = [took, "%s %s via :%d" % (method, path, port)]
            if r.status != expect or (check_body and not check_body(r)):
                errors.append("%s %s via :%d: expected %d, got %r after %.3f s" % (method, path, port, expect, r, took))
                return False
        return True

    def worker(t):
        i = 0
        while time.time() < stop_at:
            port = ports[(t + i) % len(ports)]
            name = "u-%d-%d" % (t, i)
            if call("POST", "POST", "/users/" + name, None, port, 201):
                with lock:
                    created[name] = False
                flag = True
                port = ports[(t + i + 1) % len(ports)]
                if call("PATCH", "PATCH", "/users/" + name, {"admin": flag}, port, 200,
                        lambda r, f=flag: r.json().get("admin") is f):
                    with lock:
                        created[name] = flag
                if i % 2 == 0:      # flip back every other user: a second write on the same key
                    port = ports[(t + i + 2) % len(ports)]
                    if call("PATCH", "PATCH", "/users/" + name, {"admin": False}, port, 200,
                            lambda r: r.json().get("admin") is False):
                        with lock:
                            created[name] = False
            port = ports[(t + i + 3) % len(ports)]
            call("GET user", "GET", "/users/" + name, None, port, 200)
            call("GET self", "GET", "/user", None, ports[(t + i + 4) % len(ports)], 200,
                 lambda r: r.json().get("name") == "admin")
            i += 1

    victims = children_named(s, "orrery-auth", "auth-0")
    check(len(victims) == 1, "found the auth-0 replica's pid", repr(victims))
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(LOAD_THREADS)]
    started = time.time()
    for t in threads:
        t.start()
    time.sleep(KILL_AFTER)
    with lock:
        before = sum(counts.values())
    if victims:
        os.kill(victims[0], signal.SIGKILL)
        print("      SIGKILL auth-0 (pid %d) %.1f s into the load, after %d requests" %
              (victims[0], time.time() - started, before))
    for t in threads:
        t.join()
    total = sum(counts.values())
    print("      load: %d requests in %.1f s by %d threads over 4 ports: %s; %d users created; "
          "%d request(s) over 1 s (held by the killed replica, then served by the other); slowest %.3f s (%s)"
          % (total, time.time() - started, LOAD_THREADS, counts, len(created), len(slow), slowest[0], slowest[1]))
    check(total - before > 0, "requests were served after the kill", "%d before, %d in all" % (before, total))
    check(not errors, "every request under load succeeded (no 5xx, no connection errors)",
          "%d error(s):\n        %s" % (len(errors), "\n        ".join(errors[:20])))
    missing, wrong = [], []
    for name, flag in sorted(created.items()):
        r = s.api("GET", "/users/" + name, token=admin, port=gws[0].port)
        if r.status != 200:
            missing.append("%s: %r" % (name, r))
        elif r.json().get("admin") is not flag:
            wrong.append("%s: admin %r, expected %r" % (name, r.json().get("admin"), flag))
    check(not missing, "every user created under load exists afterwards (%d users)" % len(created),
          "; ".join(missing[:20]))
    check(not wrong, "every user's admin flag is the last one written", "; ".join(wrong[:20]))
    # the supervisor restarts auth-0; the stack keeps serving
    again = None
    deadline = time.time() + 10
    while time.time() < deadline and not again:
        again = [p for p in children_named(s, "orrery-auth", "auth-0") if p not in victims]
        time.sleep(0.1)
    check(bool(again), "orrery up restarted auth-0", repr(again))
    if again:
        print("      auth-0 restarted as pid %d" % again[0])


def main():
    t_start = time.time()
    s = Stack(args=("--replicas", "gateway=1,auth=2"))
    gws = []
    try:
        admin = s.token("admin", admin=True)
        for name in "ABC":
            gws.append(Gateway(s, name))
        for g in gws:
            check(g.wait_healthy(s), "gateway %s (port %d) answers /hub/health" % (g.name, g.port), g.tail())
        if not failures:
            test_token_across_gateways(s, admin, gws)
            test_reads_across_gateways(s, admin, gws)
            test_kill_auth_under_load(s, admin, gws)
    finally:
        for g in gws:
            rc, reports = g.stop()
            check(rc == 0, "gateway %s exits 0 on SIGTERM" % g.name, "exit %r\n%s" % (rc, g.tail()))
            check(not reports, "no sanitizer reports from gateway %s" % g.name, "\n".join(reports[:20]))
        if failures:
            print(s.output()[-3000:])
            for name in ("auth-0", "auth-1", "bus-0", "gateway-0"):
                path = os.path.join(s.dir, "state", "logs", name + ".log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        print("--- %s (tail)\n%s" % (name, "".join(f.readlines()[-15:])))
        reports = s.stop()
        check(not reports, "no sanitizer reports in service logs", "\n".join(reports[:20]))
    print("%d failure(s) in %.1f s" % (len(failures), time.time() - t_start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
