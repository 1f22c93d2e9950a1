"""Black-box test of the gateway's node endpoints (an Orrery extension, docs/api.md):
GET /hub/api/nodes (plain and paginated), GET /hub/api/nodes/{name}, POST
/hub/api/nodes/{name}/cordon and /uncordon, all behind scope admin:nodes, against a real
stack started by `orrery up` (tests/api/stack.py). Nodes are registered the way a node
agent does it: a node.heartbeat event (`orrery publish`), which the scheduler stores and
then serves over the bus.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Stack, free_port  # noqa: E402

ROLES = [{"name": "node-operator", "scopes": ["admin:nodes"], "users": ["nodeop"]}]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
ACCEPT = {"Accept": "application/jupyterhub-pagination+json"}
RESOURCE_KEYS = {"cpu_millis", "memory_bytes", "gpus", "servers"}
MODEL_KEYS = {"kind", "name", "ready", "cordoned", "cordon_reason", "capacity", "reserved", "usage", "labels",
              "taints", "last_heartbeat", "registered", "agent"}

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what, detail)
        failures.append(what)
    return cond


def status(resp, code, what):
    return check(resp.status == code, "%s -> %d" % (what, code), "got %r" % (resp,))


def error_shape(resp, what):
    try:
        j = resp.json()
        check(j.get("status") == resp.status and isinstance(j.get("message"), str), what + ": JSON error body",
              repr(resp))
    except Exception as e:  # noqa: BLE001
        check(False, what + ": JSON error body", repr(e) + repr(resp))


NODES = {
    "n2": {"capacity": {"cpuMillis": 2000, "memoryBytes": "4294967296", "servers": 4}},
    "n1": {"capacity": {"cpuMillis": 4000, "memoryBytes": "8589934592", "servers": 10},
           "labels": [{"key": "zone", "value": "a"}]},
    "n3": {"capacity": {"cpuMillis": 8000, "memoryBytes": "17179869184", "gpus": 2, "servers": 8},
           "labels": [{"key": "zone", "value": "b"}, {"key": "gpu", "value": "t4"}],
           "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]},
}


def publish_heartbeat(s, node):
    body = {"node": node, "timeUs": str(int(time.time() * 1e6)), "agent": "agent-" + node}
    body.update(NODES[node])
    out = subprocess.run([os.path.join(BIN, "orrery"), "publish", "node.heartbeat", json.dumps(body),
                          "--state-dir", s.dir + "/state"], capture_output=True, text=True, env=s.env, timeout=30)
    return out.returncode == 0, out.stderr


class Heartbeats(threading.Thread):
    """Keeps n1..n3 alive like their agents would, every second (the scheduler takes a node
    whose heartbeats stop for NODE_TIMEOUT_MS for lost)."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s = s
        self.done = threading.Event()
        self.errors = []

    def run(self):
        while not self.done.is_set():
            for node in NODES:  # published out of name order
                ok, err = publish_heartbeat(self.s, node)
                if not ok:
                    self.errors.append(err)
            self.done.wait(1.0)

    def stop(self):
        self.done.set()
        self.join(40)
        check(not self.errors, "every orrery publish node.heartbeat succeeded", "".join(self.errors[:3]))


def ours(nodes):
    """Our test nodes among the listed ones (the stack's own spawner is a node agent too)."""
    return [n for n in nodes if n.get("name") in NODES]


def register_nodes(s, admin):
    """Waits until the scheduler lists n1..n3."""
    deadline = time.time() + 15
    r = None
    while time.time() < deadline:
        r = s.api("GET", "/nodes", token=admin)
        if r.status == 200 and len(ours(r.json())) == 3:
            break
        time.sleep(0.2)
    return check(r is not None and r.status == 200 and len(ours(r.json())) == 3,
                 "the scheduler lists the 3 heartbeating nodes", repr(r))


def test_list(s, admin):
    r = s.api("GET", "/nodes", token=admin)
    status(r, 200, "GET /nodes")
    nodes = r.json()
    check(isinstance(nodes, list), "bare list without the pagination media type", repr(r))
    names = [n.get("name") for n in nodes]
    check(names == sorted(names) and len(set(names)) == len(names), "sorted by name, each once", repr(names))
    mine = ours(nodes)
    check([n["name"] for n in mine] == ["n1", "n2", "n3"], "n1, n2, n3 listed", repr(names))
    for n in nodes:
        check(set(n) == MODEL_KEYS, "node model keys of " + n.get("name", "?"), repr(sorted(n)))
    n1, n3 = mine[0], mine[2]
    check(n1["kind"] == "node" and n1["ready"] is True and n1["cordoned"] is False and n1["cordon_reason"] is None,
          "n1 ready, not cordoned", repr(n1))
    check(n1["capacity"] == {"cpu_millis": 4000, "memory_bytes": 8589934592, "gpus": 0, "servers": 10},
          "n1 capacity", repr(n1["capacity"]))
    check(set(n1["reserved"]) == RESOURCE_KEYS and set(n1["usage"]) == RESOURCE_KEYS, "reserved and usage keys",
          repr(n1))
    check(n1["labels"] == {"zone": "a"} and n1["taints"] == [], "n1 labels and taints", repr(n1))
    check(isinstance(n1["last_heartbeat"], str) and ISO.match(n1["last_heartbeat"]) is not None,
          "last_heartbeat is an ISO timestamp", repr(n1["last_heartbeat"]))
    check(isinstance(n1["registered"], str) and ISO.match(n1["registered"]) is not None,
          "registered is an ISO timestamp", repr(n1["registered"]))
    check(n1["agent"] == "agent-n1", "agent", repr(n1["agent"]))
    check(n3["taints"] == [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
          and n3["labels"] == {"zone": "b", "gpu": "t4"} and n3["capacity"]["gpus"] == 2, "n3 taints and labels",
          repr(n3))

    r = s.api("GET", "/nodes?limit=2", token=admin, headers=ACCEPT)
    status(r, 200, "paginated GET /nodes")
    j = r.json()
    check([n["name"] for n in j.get("items", [])] == names[:2], "first page", repr(j))
    p = j.get("_pagination", {})
    check(p.get("offset") == 0 and p.get("limit") == 2 and p.get("total") == len(names), "_pagination", repr(p))
    nxt = p.get("next") or {}
    check(nxt.get("offset") == 2 and nxt.get("limit") == 2, "next offsets", repr(nxt))
    url = urllib.parse.urlparse(nxt.get("url", ""))
    check(url.scheme == "http" and url.netloc == "127.0.0.1:%d" % s.port and url.path == "/hub/api/nodes",
          "next.url absolute", repr(nxt))
    paged = [n["name"] for n in j.get("items", [])]
    pages = 1
    while nxt and pages < 10:
        u = urllib.parse.urlparse(nxt["url"])
        j = s.request("GET", u.path + "?" + u.query, token=admin, headers=ACCEPT).json()
        paged += [n["name"] for n in j["items"]]
        nxt = j["_pagination"]["next"]
        pages += 1
    check(paged == names, "following next.url lists all, in order", repr(paged))
    r = s.api("GET", "/nodes?offset=1&limit=1", token=admin)
    check(r.status == 200 and [n["name"] for n in r.json()] == names[1:2], "offset and limit without the media type",
          repr(r))
    r = s.api("GET", "/nodes?offset=%d" % len(names), token=admin, headers=ACCEPT)
    check(r.status == 200 and r.json()["items"] == [] and r.json()["_pagination"]["total"] == len(names),
          "offset past the end", repr(r))
    r = s.api("GET", "/nodes?limit=abc", token=admin)
    status(r, 400, "non-integer limit")
    error_shape(r, "non-integer limit")


def test_get(s, admin):
    r = s.api("GET", "/nodes/n1", token=admin)
    status(r, 200, "GET /nodes/n1")
    check(r.json().get("name") == "n1" and set(r.json()) == MODEL_KEYS, "one node's model", repr(r))
    r = s.api("GET", "/nodes/nope", token=admin)
    status(r, 404, "GET unknown node")
    error_shape(r, "GET unknown node")
    r = s.api("GET", "/nodes/n1/cordon", token=admin)
    status(r, 405, "GET on the cordon path")


def test_cordon(s, admin):
    r = s.api("POST", "/nodes/n1/cordon", {"reason": "disk replacement"}, token=admin)
    status(r, 200, "cordon n1 with a reason")
    m = r.json()
    check(m.get("name") == "n1" and m.get("cordoned") is True and m.get("cordon_reason") == "disk replacement",
          "cordon answers the cordoned model", repr(m))
    m = s.api("GET", "/nodes/n1", token=admin).json()
    check(m.get("cordoned") is True and m.get("cordon_reason") == "disk replacement", "GET shows cordon and reason",
          repr(m))
    listed = {n["name"]: n for n in ours(s.api("GET", "/nodes", token=admin).json())}
    check(listed["n1"]["cordoned"] is True and listed["n2"]["cordoned"] is False, "the list shows the cordon")

    r = s.api("POST", "/nodes/n1/uncordon", token=admin)
    status(r, 200, "uncordon n1")
    check(r.json().get("cordoned") is False and r.json().get("cordon_reason") is None, "uncordon answers the model",
          repr(r))
    m = s.api("GET", "/nodes/n1", token=admin).json()
    check(m.get("cordoned") is False and m.get("cordon_reason") is None, "GET shows n1 uncordoned", repr(m))

    r = s.api("POST", "/nodes/n2/cordon", token=admin)
    status(r, 200, "cordon n2 without a body")
    check(r.json().get("cordoned") is True and r.json().get("cordon_reason") is None, "no reason -> null", repr(r))
    status(s.api("POST", "/nodes/n2/cordon", {"reason": None}, token=admin), 200, "reason null")
    status(s.api("POST", "/nodes/n2/cordon", {"reason": "r" * 256}, token=admin), 200, "reason of 256 bytes")
    status(s.api("POST", "/nodes/n2/uncordon", {}, token=admin), 200, "uncordon n2 with {}")

    for what, kw in (("bad JSON", {"raw": b"{not json", "headers": {"Content-Type": "application/json"}}),
                     ("reason not a string", {"body": {"reason": 5}}),
                     ("reason of 257 bytes", {"body": {"reason": "r" * 257}}),
                     ("unknown key", {"body": {"reason": "x", "bogus": 1}}),
                     ("body not an object", {"body": ["reason"]})):
        r = s.api("POST", "/nodes/n1/cordon", token=admin, **kw)
        status(r, 400, "cordon with " + what)
        error_shape(r, "cordon with " + what)
    status(s.api("POST", "/nodes/n1/uncordon", {"reason": "x"}, token=admin), 400, "uncordon takes no reason")
    check(s.api("GET", "/nodes/n1", token=admin).json().get("cordoned") is False, "refused bodies changed nothing")

    r = s.api("POST", "/nodes/nope/cordon", {"reason": "x"}, token=admin)
    status(r, 404, "cordon unknown node")
    error_shape(r, "cordon unknown node")
    status(s.api("POST", "/nodes/nope/uncordon", token=admin), 404, "uncordon unknown node")


def test_scopes(s, admin):
    alice = s.token("alice")
    for method, path in (("GET", "/nodes"), ("GET", "/nodes/n1"), ("POST", "/nodes/n1/cordon"),
                         ("POST", "/nodes/n1/uncordon")):
        r = s.api(method, path, token=alice)
        status(r, 403, "non-admin %s %s" % (method, path))
        error_shape(r, "non-admin %s %s" % (method, path))
        check("admin:nodes" in r.json().get("message", ""), "403 names admin:nodes", repr(r))
        status(s.api(method, path), 403, "no credentials %s %s" % (method, path))
    check(s.api("GET", "/nodes/n1", token=admin).json().get("cordoned") is False, "refused cordon changed nothing")

    only = s.token("admin", scopes=["admin:nodes"])
    status(s.api("GET", "/users", token=only), 403, "an admin:nodes-only token cannot list users")
    status(s.api("GET", "/nodes", token=only), 200, "an admin:nodes-only token lists nodes")
    status(s.api("GET", "/nodes/n3", token=only), 200, "an admin:nodes-only token reads a node")
    r = s.api("POST", "/nodes/n3/cordon", {"reason": "scoped"}, token=only)
    status(r, 200, "an admin:nodes-only token cordons")
    check(r.json().get("cordon_reason") == "scoped", "scoped cordon took effect", repr(r))
    status(s.api("POST", "/nodes/n3/uncordon", token=only), 200, "an admin:nodes-only token uncordons")

    nodeop = s.token("nodeop")
    status(s.api("GET", "/nodes", token=nodeop), 200, "a non-admin with a role holding admin:nodes lists nodes")
    status(s.api("GET", "/users", token=nodeop), 403, "... and still cannot list users")


def test_no_scheduler(s, admin):
    """A gateway of this stack that reaches no bus broker (so no scheduler) answers 503."""
    port = free_port()
    env = dict(s.env)
    env.update(s.state_env())
    env.update({"ORRERY_BUS": "tcp://127.0.0.1:%d" % free_port(), "ORRERY_BUS_TIMEOUT_MS": "200",
                "ORRERY_BUS_RETRIES": "1", "ORRERY_GATEWAY_PORT": str(port), "ORRERY_GATEWAY_IP": "127.0.0.1",
                "ORRERY_REPLICA_ID": "gateway-nobus", "ORRERY_STATE_DIR": s.dir + "/state",
                "ORRERY_PUBLIC_URL": "http://127.0.0.1:%d/" % s.port})
    log_path = os.path.join(s.dir, "gateway-nobus.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([os.path.join(BIN, "orrery-gateway")], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:
            try:
                if s.request("GET", "/hub/health", port=port).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        for method, path in (("GET", "/nodes"), ("GET", "/nodes/n1"), ("POST", "/nodes/n1/cordon")):
            r = s.api(method, path, token=admin, port=port)
            check(r.status == 503 and r.json() == {"status": 503, "message": "scheduler unavailable"},
                  "no scheduler: %s %s -> 503 scheduler unavailable" % (method, path), repr(r))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with open(log_path, errors="replace") as f:
            reports = [line.strip() for line in f if "Sanitizer" in line or "runtime error:" in line]
        check(proc.returncode == 0 and not reports, "bus-less gateway stopped cleanly", "\n".join(reports[:20]))


def main():
    s = Stack(env={"ORRERY_LOAD_ROLES": json.dumps(ROLES)})
    try:
        admin = s.token("admin", admin=True)
        beats = Heartbeats(s)
        beats.start()
        try:
            if register_nodes(s, admin):
                test_list(s, admin)
                test_get(s, admin)
                test_cordon(s, admin)
                test_scopes(s, admin)
        finally:
            beats.stop()
        test_no_scheduler(s, admin)
    finally:
        if failures:
            print(s.output()[-3000:])
        reports = s.stop()
        check(not reports, "no sanitizer reports in service logs", "\n".join(reports[:20]))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
