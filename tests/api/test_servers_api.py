"""Black-box test of the gateway's side of users' servers (jupyterhub-api.md §3-§6, §10)
against real stacks (`orrery up`, tests/api/stack.py):

  - POST/DELETE /hub/api/users/{n}/server and /servers/{s}: validation, scopes, the wait
    of up to SLOW_SPAWN_TIMEOUT_S (201/202/204/500), 429 with Retry-After
  - the server model inside the user model, users?state=active|ready|inactive
  - GET .../progress: the event stream (ready, failed, 400, queue positions, keep-alive,
    the stream limit), also driven by hand (records written to Redis, events published
    with `orrery publish`) so the gateway is tested apart from the spawner
  - POST /users/{n}/activity, /hub/api/proxy, .../logs
  - the pages: /hub/spawn, /hub/spawn-pending, /hub/home, /user/... reaching the hub and
    /hub/user/... (302/303/424)

Sections that need a working spawner are guarded by spawner_works(): when the spawner does
not answer `spawn` (503), they are reported as SKIPPED and the rest still runs. Servers
are bench/spawn's stand-in (orrery-standin): fast, slow (--start-delay-ms) or failing
(/bin/false as the command).
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Stack, cookie_header, login  # noqa: E402

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
PAGINATION = {"Accept": "application/jupyterhub-pagination+json"}
STANDIN = os.path.abspath(os.path.join(BIN, "orrery-standin"))

failures = []
skipped = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what, detail)
        failures.append(what)
    return cond


def status(resp, code, what):
    return check(resp.status == code, "%s -> %d" % (what, code), "got %r" % (resp,))


def error(resp, code, what, message=None):
    """Status, the JSON error shape, and optionally a message (substring)."""
    ok = status(resp, code, what)
    try:
        j = resp.json()
        shape = j.get("status") == resp.status and isinstance(j.get("message"), str)
        check(shape, what + ": JSON error body", repr(resp))
        if message is not None:
            check(message in j.get("message", ""), what + ": message has %r" % message, repr(j))
    except Exception as e:  # noqa: BLE001
        check(False, what + ": JSON error body", repr(e) + repr(resp))
    return ok


def empty_text(resp, code, what):
    status(resp, code, what)
    check(resp.body == b"" and (resp.header("Content-Type") or "").startswith("text/plain"),
          what + ": empty text/plain", repr((resp.headers, resp.body)))


def redis(s, *args):
    return s.redis(*args)


def publish(s, topic, body):
    try:
        s.publish(topic, body)
        check(True, "orrery publish %s" % topic)
    except subprocess.CalledProcessError as e:
        check(False, "orrery publish %s" % topic, e.stderr)


def fake_record(s, user, server="", **fields):
    """A server record as the spawner writes it (docs/spawner.md), for gateway-only tests."""
    key = "orr:{u:%s}:server:%s" % (user, server)
    args = ["user", user, "name", server, "url", "/user/%s/%s" % (user, server + "/" if server else "")]
    for k, v in fields.items():
        args += [k, str(v)]
    redis(s, "HSET", key, *args)
    redis(s, "SADD", "orr:{u:%s}:servers" % user, server)
    # the spawner's index of servers neither stopped nor failed (users?state= reads it)
    if fields.get("state") in ("queued", "pending_spawn", "ready", "pending_stop"):
        redis(s, "SADD", "orr:{idx}:active", "%s\n%s" % (user, server))
    else:
        redis(s, "SREM", "orr:{idx}:active", "%s\n%s" % (user, server))


def now_iso(offset_s=0.0, tz="Z"):
    t = time.time() + offset_s
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06d" % int((t % 1) * 1e6)
    return base + tz


def iso_us(text):
    """µs of an ISO time as the gateway writes it."""
    import calendar
    main, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) * 1000000 + int((frac or "0").ljust(6, "0"))


class Stream(threading.Thread):
    """Reads an event stream in the background: events (parsed JSON), keep-alives (blank
    lines that end no event), when the stream ended."""

    def __init__(self, s, path, token=None, headers=None):
        super().__init__(daemon=True)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "token " + token
        self.conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=40)
        self.conn.request("GET", "/hub/api" + path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.getheaders()
        self.events = []
        self.keepalives = 0
        self.ended = False
        self.body = b""
        if self.status == 200:
            self.start()
        else:
            self.body = self.resp.read()
            self.ended = True

    def header(self, name):
        return dict((k.lower(), v) for k, v in self.headers).get(name.lower())

    def run(self):
        after_data = False
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    self.events.append(json.loads(line[6:].decode()))
                    after_data = True
                elif line == b"\n":
                    if not after_data:
                        self.keepalives += 1
                    after_data = False
        except Exception:  # noqa: BLE001 (closed by close())
            pass
        self.ended = True

    def wait(self, pred, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self):
                return True
            time.sleep(0.02)
        return pred(self)

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except Exception:  # noqa: BLE001
            pass
        self.conn.close()


def whole_stream(s, path, token, **kw):
    """A stream that ends by itself: its events."""
    st = Stream(s, path, token, **kw)
    if st.status == 200:
        st.wait(lambda x: x.ended, 15)
        check(st.ended, "stream %s ended by itself" % path)
    return st


def spawner_works(s, admin):
    """Does the spawner answer `spawn`? (503 from the bus while it is not written yet.)"""
    s.api("POST", "/users/spawnprobe", token=admin)
    r = s.api("POST", "/users/spawnprobe/server", token=admin)
    if r.status == 503:
        print("SKIPPED: the spawner does not answer spawn (%r); the sections that need it are left out" % (r,))
        skipped.append("spawner")
        return False
    s.api("DELETE", "/users/spawnprobe/server", token=admin)
    return True


def wait_state(s, user, server, states, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = redis(s, "HGET", "orr:{u:%s}:server:%s" % (user, server), "state").strip()
        if st in states:
            return st
        time.sleep(0.05)
    return redis(s, "HGET", "orr:{u:%s}:server:%s" % (user, server), "state").strip()


# --- sections that need no spawner --------------------------------------------------------------

def test_validation(s, admin, alice, alice_narrow):
    # the logo single-user pages load from the hub: public, an image
    r = s.request("GET", "/hub/logo")
    check(r.status == 200 and (r.header("Content-Type") or "").startswith("image/") and b"<svg" in r.body,
          "GET /hub/logo without credentials is an image", repr(r))
    error(s.api("POST", "/users/nobody/server", token=admin), 404, "start for an unknown user")
    error(s.api("POST", "/users/nobody/servers/gpu", token=admin), 404, "start a named server of an unknown user")
    error(s.api("DELETE", "/users/nobody/server", token=admin), 404, "stop for an unknown user")
    error(s.api("GET", "/users/nobody/server/progress", token=admin), 404, "progress of an unknown user")
    error(s.api("POST", "/users/nobody/activity", {"last_activity": now_iso()}, token=admin), 404,
          "activity of an unknown user")
    error(s.api("POST", "/users/alice/server", raw=b"{nope", token=admin, headers={"Content-Type": "application/json"}),
          400, "start with bad JSON", "Invalid JSON")
    error(s.api("POST", "/users/alice/server", [1, 2], token=admin), 400, "start with a list body", "object")
    error(s.api("POST", "/users/alice/servers/gpu", "text", token=admin), 400, "start a named server with a string body")
    error(s.api("DELETE", "/users/alice/server", raw=b"{nope", token=admin), 400, "stop with bad JSON")
    error(s.api("DELETE", "/users/alice/server", {"remove": True}, token=admin), 400, "remove the default server",
          "Cannot delete the default server")
    error(s.api("DELETE", "/users/alice/server", {"remove": "yes"}, token=admin), 400, "remove not a boolean")
    error(s.api("DELETE", "/users/alice/servers/nope", token=admin), 404, "stop an unknown named server",
          "alice has no server named 'nope'")
    # credentials and scopes
    for method, path in (("POST", "/users/alice/server"), ("DELETE", "/users/alice/server"),
                         ("GET", "/users/alice/server/progress"), ("POST", "/users/alice/activity"),
                         ("GET", "/proxy"), ("POST", "/proxy"), ("GET", "/users/alice/server/logs")):
        error(s.api(method, path), 403, "%s %s without credentials" % (method, path))
    error(s.api("POST", "/users/bob/server", token=alice), 404, "alice starts bob's server (filter miss)",
          "No access to resources or resources not found")
    error(s.api("DELETE", "/users/bob/servers/x", token=alice), 404, "alice stops bob's named server")
    error(s.api("GET", "/users/bob/server/progress", token=alice), 404, "alice reads bob's progress")
    error(s.api("POST", "/users/bob/activity", {"last_activity": now_iso()}, token=alice), 404,
          "alice reports bob's activity")
    error(s.api("POST", "/users/alice/server", token=alice_narrow), 403, "a token without `servers`",
          "requires any of [servers]")
    error(s.api("GET", "/users/alice/server/logs", token=alice), 403, "logs need admin:servers",
          "requires any of [admin:servers]")
    error(s.api("GET", "/users/alice/server/logs?max_bytes=0", token=admin), 400, "logs: bad max_bytes")
    # nothing runs: stop is 204 without asking anyone; progress 400
    empty_text(s.api("DELETE", "/users/alice/server", token=alice), 204, "stop a server that is not running")
    error(s.api("GET", "/users/alice/server/progress", token=alice), 400, "progress of a server not starting",
          "alice is not starting")
    error(s.api("GET", "/users/alice/servers/nope/progress", token=admin), 404, "progress of an unknown named server")
    m = s.api("GET", "/users/alice", token=admin).json()
    check(m.get("servers") == {} and m.get("server") is None and m.get("pending") is None,
          "no servers: servers {}, server and pending null", repr(m))


def test_activity(s, admin):
    s.api("POST", "/users/erin", token=admin)
    post = lambda body, **kw: s.api("POST", "/users/erin/activity", body, token=admin, **kw)  # noqa: E731
    error(post(None), 400, "activity without a body", "body must be a json dict")
    error(post([1]), 400, "activity with a list", "body must be a json dict")
    error(post({}), 400, "activity with neither key", "at least one of")
    error(post({"last_activity": None, "servers": {}}), 400, "activity with falsy values", "at least one of")
    error(post({"last_activity": "yesterday"}), 400, "unparsable time", "Invalid last_activity timestamp")
    error(post({"last_activity": 12}), 400, "a number for a time")
    error(post({"last_activity": now_iso(2 * 3600)}), 400, "two hours in the future",
          "more than an hour in the future")
    error(post({"servers": "x"}), 400, "servers not a dict", "servers must be a dict")
    error(post({"servers": {"": "x"}}), 400, "server info not a dict", "servers must be a dict")
    error(post({"servers": {"": {}}}), 400, "server info without last_activity", "servers must be a dict")
    error(post({"servers": {"nope": {"last_activity": now_iso()}}}), 400, "unknown server",
          "No such server 'nope' for user erin")
    error(post({"servers": {"": {"last_activity": "bad"}}}), 400, "bad server time")
    # a bad part refuses the whole report: nothing was written
    error(post({"last_activity": now_iso(-60), "servers": {"nope": {"last_activity": now_iso()}}}), 400,
          "a report with one bad server")
    check(s.api("GET", "/users/erin", token=admin).json().get("last_activity") is None,
          "a refused report changes nothing")
    # recorded: the user's (tokens.touch) and the server's (orr:{u:erin}:activity)
    t1 = now_iso(-3600)
    status(post({"last_activity": t1, "servers": {"": {"last_activity": t1}}}), 200, "a valid report")
    check(s.api("GET", "/users/erin", token=admin).body != b"" and
          s.api("GET", "/users/erin", token=admin).json().get("last_activity") == t1,
          "the user's last_activity is the reported time", repr(s.api("GET", "/users/erin", token=admin).json()))
    check(redis(s, "HGET", "orr:{u:erin}:activity", "").strip() == str(iso_us(t1)),
          "the default server's activity is recorded", redis(s, "HGETALL", "orr:{u:erin}:activity"))
    status(post({"last_activity": now_iso(-7200), "servers": {"": {"last_activity": now_iso(-7200)}}}), 200,
           "an older report")
    check(s.api("GET", "/users/erin", token=admin).json().get("last_activity") == t1, "activity never moves back")
    check(redis(s, "HGET", "orr:{u:erin}:activity", "").strip() == str(iso_us(t1)), "server activity never moves back")
    # any UTC offset; 50 minutes ahead is accepted
    t2 = time.time() - 1800
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t2 + 5.5 * 3600)) + "+05:30"
    status(post({"last_activity": local}), 200, "a time with a +05:30 offset")
    got = s.api("GET", "/users/erin", token=admin).json().get("last_activity")
    check(got == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t2)), "the offset is applied", repr(got))
    status(post({"last_activity": now_iso(50 * 60)}), 200, "50 minutes ahead is accepted")
    # a named server with a record (written as the spawner would): its activity shows in the model
    fake_record(s, "erin", "gpu", state="stopped", started_us=0)
    t3 = now_iso(-600)
    status(post({"servers": {"gpu": {"last_activity": t3}}}), 200, "activity of a named server")
    m = s.api("GET", "/users/erin?include_stopped_servers", token=admin).json()
    gpu = m.get("servers", {}).get("gpu", {})
    check(gpu.get("last_activity") == t3 and gpu.get("stopped") is True and gpu.get("started") is None,
          "the stopped named server's model shows its activity", repr(m))
    check("gpu" not in s.api("GET", "/users/erin", token=admin).json().get("servers", {}),
          "stopped servers only with include_stopped_servers")
    check("gpu" in s.api("GET", "/users/erin?include_stopped_servers=", token=admin).json().get("servers", {}),
          "include_stopped_servers with an empty value counts as true")
    check("gpu" not in s.api("GET", "/users/erin?include_stopped_servers=false", token=admin).json().get("servers", {}),
          "include_stopped_servers=false")


def test_proxy(s, admin, alice):
    r = s.api("GET", "/proxy", token=admin)
    status(r, 200, "GET /proxy")
    routes = r.json()
    hub = routes.get("/", {})
    check(isinstance(routes, dict) and hub.get("routespec") == "/" and hub.get("data", {}).get("hub") is True
          and hub.get("target", "").startswith("http://127.0.0.1:"), "the hub route, as JupyterHub shows it", repr(routes))
    check(all(k.endswith("/") and v.get("routespec") == k for k, v in routes.items()), "routespecs end with /")
    r = s.api("GET", "/proxy", token=admin, headers=PAGINATION)
    j = r.json()
    check(r.status == 200 and isinstance(j.get("items"), dict) and j["_pagination"]["total"] == len(routes)
          and j["_pagination"]["offset"] == 0, "paginated /proxy", repr(j))
    check(len(s.api("GET", "/proxy?limit=1", token=admin).json()) == 1, "limit=1")
    error(s.api("GET", "/proxy?limit=x", token=admin), 400, "bad limit")
    error(s.api("GET", "/proxy", token=alice), 403, "a user without `proxy`", "requires any of [proxy]")
    r = s.api("POST", "/proxy", token=admin)
    check(r.status == 200 and r.body == b"", "POST /proxy reconciles: 200 empty", repr(r))
    error(s.api("PATCH", "/proxy", token=admin), 400, "PATCH /proxy without a body", "need JSON body")
    error(s.api("PATCH", "/proxy", raw=b"[", token=admin), 400, "PATCH /proxy with bad JSON")
    error(s.api("PATCH", "/proxy", {"api_url": 5}, token=admin), 400, "PATCH /proxy with a number for api_url")
    error(s.api("PATCH", "/proxy", ["x"], token=admin), 400, "PATCH /proxy with a list")
    status(s.api("PATCH", "/proxy", {"api_url": "http://127.0.0.1:1", "auth_token": "x"}, token=admin), 200,
           "PATCH /proxy")
    error(s.api("PATCH", "/proxy", {}, token=alice), 403, "PATCH /proxy without `proxy`")


def test_not_running(s, admin, alice):
    """/user/carol/... without a route reaches the hub (the proxy's route /)."""
    s.api("POST", "/users/carol", token=admin)
    r = s.request("GET", "/user/carol/api/contents?x=1", token=admin)
    check(r.status == 302 and r.header("Location") == "/hub/user/carol/api/contents?x=1",
          "/user/carol/... -> 302 /hub/user/carol/... (query kept)", repr((r, r.headers)))
    r = s.request("GET", "/user/carol", token=admin)
    check(r.status == 301 and r.header("Location") == "/user/carol/", "/user/carol gets its slash", repr(r.headers))
    r = s.request("GET", "/hub/user/carol/api/contents", token=admin)
    error(r, 424, "an API path of a stopped server")
    msg = r.json().get("message", "")
    check(msg.startswith("JupyterHub server no longer running at /user/carol/api/contents. Restart the server at http")
          and msg.endswith("/hub/spawn/carol"), "the 424 message", msg)
    r = s.request("GET", "/hub/user/carol/tree", token=admin, headers={"Accept": "application/json"})
    error(r, 424, "Accept: application/json")
    r = s.request("GET", "/hub/user/carol/tree", token=admin,
                  headers={"Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"})
    check(r.status == 424 and b"Launch server" in r.body and b"/hub/spawn/carol?next=" in r.body
          and (r.header("Content-Type") or "").startswith("text/html"), "a browser gets the 424 page", repr(r))
    error(s.request("POST", "/hub/user/carol/api/contents"), 424, "a POST to a stopped server (no login needed)")
    r = s.request("GET", "/hub/user/carol/tree")
    check(r.status == 302 and r.header("Location", ).startswith("/hub/login?next="), "anonymous GET: login",
          repr(r.headers))
    r = s.request("GET", "/hub/user/carol/tree", token=alice)
    check(r.status == 404, "alice may not look at carol's server", repr(r))
    r = s.request("GET", "/hub/user/nobody/tree", token=admin)
    check(r.status == 404, "unknown user", repr(r))


def test_progress_by_hand(s, admin):
    """The stream against records written to Redis and events published by hand."""
    for u in ("dave", "ed", "fay", "gus", "hal"):
        s.api("POST", "/users/" + u, token=admin)
    fake_record(s, "ed", state="pending_spawn", progress=0, message="")
    ed = Stream(s, "/users/ed/server/progress", admin)
    t_ed = time.time()
    check(ed.status == 200 and ed.header("Content-Type") == "text/event-stream"
          and ed.header("Cache-Control") == "no-cache", "stream headers", repr(ed.headers))
    fake_record(s, "fay", state="pending_spawn", progress=0, message="")
    fay = Stream(s, "/users/fay/server/progress", admin)
    fay.wait(lambda x: x.events)
    fay.close()                  # the client goes away: its slot is freed at the next keep-alive
    fake_record(s, "dave", state="pending_spawn", progress=10, message="Starting")
    dave = Stream(s, "/users/dave/server/progress", admin)
    dave.wait(lambda x: len(x.events) >= 2)
    check(dave.events[:2] == [{"progress": 0, "message": "Server requested"}, {"progress": 10, "message": "Starting"}],
          "Server requested, then where the start is", repr(dave.events))
    fake_record(s, "gus", state="pending_spawn")
    r = s.api("GET", "/users/gus/server/progress", token=admin)
    error(r, 503, "beyond PROGRESS_STREAMS_MAX (3) streams", "Too many progress streams")
    publish(s, "server.progress", {"user": "dave", "server": "", "state": "pending_spawn", "progress": 40,
                                   "message": "Placing"})
    check(dave.wait(lambda x: len(x.events) >= 3, 5) and dave.events[2] == {"progress": 40, "message": "Placing"},
          "server.progress becomes an event", repr(dave.events))
    publish(s, "server.scheduled", {"user": "dave", "server": "", "node": "n7"})
    check(dave.wait(lambda x: len(x.events) >= 4, 5)
          and dave.events[3] == {"progress": 40, "message": "Placed on node n7"}, "server.scheduled", repr(dave.events))
    # a late final event of an earlier start: the record is still pending, so it is ignored
    publish(s, "server.stopped", {"user": "dave", "server": "", "state": "stopped"})
    publish(s, "server.progress", {"user": "dave", "server": "", "state": "pending_spawn", "progress": 70,
                                   "message": "Probing"})
    check(dave.wait(lambda x: len(x.events) >= 5, 5) and dave.events[4]["message"] == "Probing" and not dave.ended,
          "a stale server.stopped does not end the stream", repr(dave.events))
    fake_record(s, "dave", state="ready")
    publish(s, "server.ready", {"user": "dave", "server": "", "state": "ready", "progress": 100, "url": "/user/dave/"})
    check(dave.wait(lambda x: x.ended, 5), "the stream ends after the ready event")
    check(dave.events[-1] == {"progress": 100, "ready": True, "message": "Server ready at /user/dave/",
                              "html_message": "Server ready at <a href=\"/user/dave/\">/user/dave/</a>",
                              "url": "/user/dave/"}, "the ready event", repr(dave.events[-1:]))
    # a final state whose event was lost: the watch reads watched records again every 5 s
    fake_record(s, "hal", state="pending_spawn")
    hal = Stream(s, "/users/hal/server/progress", admin)
    check(hal.status == 200, "a third stream", repr(hal.body))
    fake_record(s, "hal", state="ready")
    t_hal = time.time()
    check(hal.wait(lambda x: x.ended, 7) and hal.events[-1].get("ready") is True,
          "a lost server.ready: the stream still ends within 5 s (%.1f s)" % (time.time() - t_hal), repr(hal.events))
    # keep-alive: a bare blank line every 8 s
    time.sleep(max(0, t_ed + 9 - time.time()))
    check(ed.keepalives >= 1 and not ed.ended, "keep-alive within 9 s", "keepalives=%d" % ed.keepalives)
    fake_record(s, "ed", state="failed", reason="boom")
    publish(s, "server.failed", {"user": "ed", "server": "", "state": "failed", "reason": "boom"})
    check(ed.wait(lambda x: x.ended, 5) and ed.events[-1] == {"progress": 100, "failed": True,
                                                              "message": "Spawn failed: boom"},
          "the failed event ends the stream", repr(ed.events))
    st = whole_stream(s, "/users/ed/server/progress", admin)
    check(st.status == 200 and st.events == [{"progress": 100, "failed": True, "message": "Spawn failed: boom"}],
          "after a failed start: one failed event", repr(st.events))
    st = whole_stream(s, "/users/dave/server/progress", admin)
    check(st.status == 200 and len(st.events) == 1 and st.events[0].get("ready") is True,
          "a ready server: one ready event", repr(st.events))
    # fay's slot was given back (keep-alive found the client gone), dave's and ed's ended
    gus = Stream(s, "/users/gus/server/progress", admin)
    check(gus.status == 200, "slots come back when streams end or clients leave", repr(gus.body))
    gus.close()
    # the model of hand-written records
    m = s.api("GET", "/users/dave", token=admin).json()
    check(m.get("server") == "/user/dave/" and m["servers"][""]["ready"] is True, "dave's model: ready", repr(m))
    r = s.api("GET", "/users?state=ready", token=admin).json()
    check("dave" in [u["name"] for u in r] and "ed" not in [u["name"] for u in r], "state=ready", repr(r))
    names = [u["name"] for u in s.api("GET", "/users?state=active", token=admin).json()]
    check("dave" in names and "gus" in names and "ed" not in names, "state=active (ready or pending)", repr(names))
    names = [u["name"] for u in s.api("GET", "/users?state=inactive", token=admin).json()]
    check("ed" in names and "dave" not in names and "gus" not in names, "state=inactive", repr(names))
    m = s.api("GET", "/users/gus", token=admin).json()
    check(m.get("pending") == "spawn" and m.get("server") is None and m["servers"][""]["pending"] == "spawn"
          and m["servers"][""]["ready"] is False and m["servers"][""]["stopped"] is False,
          "a pending server's model", repr(m))
    for u in ("dave", "ed", "fay", "gus", "hal"):
        redis(s, "DEL", "orr:{u:%s}:server:" % u, "orr:{u:%s}:servers" % u)
        redis(s, "SREM", "orr:{idx}:active", "%s\n" % u)


# --- sections that need the spawner ---------------------------------------------------------------

def test_fast_spawns(s, admin, alice):
    t0 = time.time()
    r = s.api("POST", "/users/alice/server", {"x": 1}, token=alice)
    empty_text(r, 201, "start: ready within SLOW_SPAWN_TIMEOUT_S")
    print("      (201 after %.2f s)" % (time.time() - t0))
    error(s.api("POST", "/users/alice/server", token=alice), 400, "start a running server", "already running")
    m = s.api("GET", "/users/alice", token=alice).json()
    srv = m.get("servers", {}).get("", {})
    check(m.get("server") == "/user/alice/" and m.get("pending") is None, "user: server url, pending null", repr(m))
    check(set(srv) == {"name", "ready", "pending", "stopped", "url", "progress_url", "started", "last_activity",
                       "user_options"}, "server model keys (no state without admin:server_state)", repr(srv))
    check(srv.get("ready") is True and srv.get("stopped") is False and srv.get("url") == "/user/alice/"
          and srv.get("progress_url") == "/hub/api/users/alice/server/progress" and srv.get("user_options") == {"x": 1}
          and ISO.match(srv.get("started") or ""), "server model values", repr(srv))
    st = s.api("GET", "/users/alice", token=admin).json()["servers"][""].get("state", {})
    check(isinstance(st.get("pid"), int) and st["pid"] > 0, "admin:server_state shows the pid", repr(st))
    st = whole_stream(s, "/users/alice/server/progress", alice)
    check(st.status == 200 and len(st.events) == 1 and st.events[0]["ready"] is True
          and st.events[0]["url"] == "/user/alice/", "progress of a ready server: one ready event", repr(st.events))
    names = [u["name"] for u in s.api("GET", "/users?state=ready", token=admin).json()]
    check("alice" in names, "state=ready lists alice", repr(names))
    names = [u["name"] for u in s.api("GET", "/users?state=inactive", token=admin).json()]
    check("alice" not in names, "state=inactive does not", repr(names))
    routes = s.api("GET", "/proxy", token=admin).json()
    route = routes.get("/user/alice/", {})
    check(route.get("data", {}).get("user") == "alice" and route.get("data", {}).get("server_name") == ""
          and route.get("target", "").startswith("http://") and "last_activity" in route.get("data", {}),
          "the server's route in /proxy", repr(routes))
    # the hub sends a request back to the server while it runs, counting redirects
    r = s.request("GET", "/hub/user/alice/tree?a=b", token=alice)
    check(r.status == 302 and r.header("Location") == "/user/alice/tree?a=b&redirects=1", "ready: back to the server",
          repr(r.headers))
    r = s.request("GET", "/hub/user/alice/tree?redirects=2", token=alice)
    check(r.status == 302 and r.header("Location") == "/user/alice/tree?redirects=3", "redirects counted",
          repr(r.headers))
    r = s.request("GET", "/hub/user/alice/tree?redirects=4", token=alice)
    check(r.status == 500 and b"Redirect loop detected." in r.body, "a redirect loop ends", repr(r))
    r = s.api("GET", "/users/alice/server/logs", token=admin)
    check(r.status in (200, 404), "logs: 200 (or 404 before the first line)", repr(r))
    if r.status == 200:
        check((r.header("Content-Type") or "").startswith("text/plain"), "logs are text/plain")
    # named servers
    empty_text(s.api("POST", "/users/alice/servers/gpu", token=alice), 201, "start a named server")
    m = s.api("GET", "/users/alice", token=alice).json()
    gpu = m.get("servers", {}).get("gpu", {})
    check(gpu.get("url") == "/user/alice/gpu/" and gpu.get("progress_url") == "/hub/api/users/alice/servers/gpu/progress"
          and gpu.get("name") == "gpu", "the named server's model", repr(gpu))
    r = s.request("GET", "/hub/user/alice/gpu/tree", token=alice)
    check(r.status == 302 and r.header("Location") == "/user/alice/gpu/tree?redirects=1",
          "/hub/user/alice/gpu/... is the named server", repr(r.headers))
    empty_text(s.api("DELETE", "/users/alice/servers/gpu", {"remove": True}, token=alice), 204,
               "stop and remove the named server")
    check("gpu" not in s.api("GET", "/users/alice?include_stopped_servers", token=alice).json()["servers"],
          "removed: no record left")
    error(s.api("DELETE", "/users/alice/servers/gpu", token=alice), 404, "the removed server is unknown")
    # the active limit (ACTIVE_SERVER_LIMIT=2): 429 with Retry-After
    s.api("POST", "/users/bob", token=admin)
    s.api("POST", "/users/carol", token=admin)
    status(s.api("POST", "/users/bob/server", token=admin), 201, "a second server")
    r = s.api("POST", "/users/carol/server", token=admin)
    error(r, 429, "beyond the active server limit")
    check((r.header("Retry-After") or "").isdigit(), "429 carries Retry-After", repr(r.headers))
    empty_text(s.api("DELETE", "/users/bob/server", token=admin), 204, "stop bob")
    # stop
    t0 = time.time()
    empty_text(s.api("DELETE", "/users/alice/server", token=alice), 204, "stop: stopped within the timeout")
    print("      (204 after %.2f s)" % (time.time() - t0))
    m = s.api("GET", "/users/alice", token=alice).json()
    check(m.get("server") is None and m.get("servers") == {}, "stopped: server null, servers {}", repr(m))
    srv = s.api("GET", "/users/alice?include_stopped_servers", token=alice).json()["servers"].get("", {})
    check(srv.get("stopped") is True and srv.get("ready") is False and srv.get("pending") is None,
          "stopped server with include_stopped_servers", repr(srv))
    empty_text(s.api("DELETE", "/users/alice/server", token=alice), 204, "stop again")


def test_pages(s, admin):
    s.api("POST", "/users/hana", token=admin)
    status(s.api("PATCH", "/users/hana", {"password": "hana-secret-1"}, token=admin), 200, "hana's password")
    r, jar = login(s, "hana", "hana-secret-1")
    cookie = {"Cookie": cookie_header(jar)}
    r = s.request("GET", "/hub/home", headers=cookie)
    check(r.status == 200 and b"Start My Server" in r.body and b'href="/hub/spawn"' in r.body,
          "home: Start My Server", repr(r))
    r = s.request("GET", "/hub/spawn", headers=cookie)
    check(r.status == 302 and r.header("Location") in ("/hub/spawn-pending/hana", "/user/hana/"),
          "/hub/spawn starts and sends to spawn-pending", repr(r.headers))
    check(wait_state(s, "hana", "", ("ready",)) == "ready", "hana's server became ready")
    r = s.request("GET", "/hub/spawn-pending/hana", headers=cookie)
    check(r.status == 302 and r.header("Location") == "/user/hana/", "spawn-pending of a ready server: to it",
          repr(r.headers))
    r = s.request("GET", "/hub/spawn", headers=cookie)
    check(r.status == 302 and r.header("Location") == "/user/hana/", "/hub/spawn of a ready server: to it")
    r = s.request("GET", "/hub/home", headers=cookie)
    m = re.search(rb'data-xsrf="([0-9a-f]+)"', r.body)
    check(r.status == 200 and b"Stop My Server" in r.body and b'href="/user/hana/"' in r.body and m,
          "home: My Server and Stop My Server", repr(r))
    # what the page's script does: the progress stream and DELETE with the cookie
    here = "http://127.0.0.1:%d/hub/home" % s.port
    st = whole_stream(s, "/users/hana/server/progress", None, headers=dict(cookie, Referer=here))
    check(st.status == 200 and st.events and st.events[0].get("ready"), "progress with the login cookie", repr(st.body))
    st = Stream(s, "/users/hana/server/progress", None, headers=cookie)
    check(st.status == 403, "a cookie without Referer does not count on the API", repr(st.body))
    r = s.api("DELETE", "/users/hana/server", headers=dict(cookie, Referer=here))
    check(r.status == 403, "a cookie DELETE without the XSRF token is refused", repr(r))
    r = s.api("DELETE", "/users/hana/server", headers=dict(cookie, Referer=here, **{"X-XSRFToken": m.group(1).decode()
                                                                                  if m else ""}))
    empty_text(r, 204, "Stop My Server (cookie, Referer, XSRF)")
    # someone else's spawn page: 404 for a user without rights
    r = s.request("GET", "/hub/spawn/alice", headers=cookie)
    check(r.status == 404, "hana may not start alice's server", repr(r))
    r = s.request("GET", "/hub/spawn-pending/hana")
    check(r.status == 302 and r.header("Location").startswith("/hub/login?next="), "pages need a login")


def test_slow_spawns(s, admin):
    """SLOW_SPAWN_TIMEOUT_S=1, servers that take 3 s to listen, one spawn at a time."""
    for u in ("ivy", "jay", "kim"):
        s.api("POST", "/users/" + u, token=admin)
    t0 = time.time()
    r = s.api("POST", "/users/ivy/server", token=admin)
    took = time.time() - t0
    empty_text(r, 202, "start slower than SLOW_SPAWN_TIMEOUT_S")
    check(0.8 < took < 3.5, "202 after about the timeout (%.2f s)" % took)
    t0 = time.time()
    empty_text(s.api("POST", "/users/ivy/server", token=admin), 202, "start while one is pending")
    check(time.time() - t0 < 0.8, "a pending start answers 202 at once")
    m = s.api("GET", "/users/ivy", token=admin).json()
    check(m.get("pending") == "spawn" and m.get("server") is None and m["servers"][""]["pending"] == "spawn",
          "pending spawn in the model", repr(m))
    ivy = Stream(s, "/users/ivy/server/progress", admin)
    jay_start = threading.Thread(target=lambda: s.api("POST", "/users/jay/server", token=admin))
    jay_start.start()
    jay_start.join()
    check(wait_state(s, "jay", "", ("queued",), 5) == "queued", "jay waits in the queue (MAX_CONCURRENT_SPAWNS=1)")
    jay = Stream(s, "/users/jay/server/progress", admin)
    check(jay.wait(lambda x: len(x.events) >= 2, 5) and jay.events[0] == {"progress": 0, "message": "Server requested"}
          and jay.events[1].get("message") == "Waiting in queue: position 1 of 1", "a queued stream shows its position",
          repr(jay.events))
    # the spawn-pending page and /hub/user/jay/... while it waits
    s.api("PATCH", "/users/jay", {"password": "jay-secret-12"}, token=admin)
    _, jar = login(s, "jay", "jay-secret-12")
    cookie = {"Cookie": cookie_header(jar)}
    r = s.request("GET", "/hub/spawn-pending/jay", headers=cookie)
    check(r.status == 200 and b"EventSource" in r.body and b"/hub/api/users/jay/server/progress" in r.body,
          "spawn-pending: a progress page fed by the stream", repr(r))
    r = s.request("GET", "/hub/user/jay/tree", headers=cookie)
    check(r.status == 303 and r.header("Location").startswith("/hub/spawn-pending/jay?next="),
          "/hub/user/jay/... while pending: 303 spawn-pending", repr(r.headers))
    check(ivy.wait(lambda x: x.ended, 15) and ivy.events[-1].get("ready") is True, "ivy's stream ends ready",
          repr(ivy.events))
    check(jay.wait(lambda x: x.ended, 20) and jay.events[-1].get("ready") is True, "jay's stream ends ready",
          repr(jay.events))
    msgs = [e.get("message") for e in jay.events]
    check(any(m and not m.startswith("Waiting in queue") and m != "Server requested" for m in msgs[:-1]),
          "jay's stream shows the spawner's progress after the queue", repr(msgs))
    check(all(e.get("progress", 0) <= f.get("progress", 0) for e, f in zip(jay.events, jay.events[1:])),
          "progress never goes back", repr(jay.events))
    # a stop that takes no time is 204; cancel a queued start
    empty_text(s.api("POST", "/users/kim/server", token=admin), 202, "kim's start")
    r = s.api("DELETE", "/users/kim/server", token=admin)
    check(r.status in (202, 204), "cancel a pending start: 204 or 202", repr(r))
    check(wait_state(s, "kim", "", ("stopped", ""), 20) in ("stopped", ""), "the cancelled start ends stopped")
    for u in ("ivy", "jay"):
        s.api("DELETE", "/users/%s/server" % u, token=admin)


def test_failing_spawns(s, admin):
    """The server command exits at once: the start fails."""
    s.api("POST", "/users/lou", token=admin)
    r = s.api("POST", "/users/lou/server", token=admin)
    error(r, 500, "a start that fails within the timeout", "Spawn failed: ")
    st = whole_stream(s, "/users/lou/server/progress", admin)
    check(st.status == 200 and len(st.events) == 1 and st.events[0].get("failed") is True
          and st.events[0].get("progress") == 100 and st.events[0]["message"].startswith("Spawn failed: "),
          "progress after a failed start: the failed event", repr(st.events))
    m = s.api("GET", "/users/lou", token=admin).json()
    check(m.get("servers") == {} and m.get("server") is None, "a failed server is not listed", repr(m))
    srv = s.api("GET", "/users/lou?include_stopped_servers", token=admin).json()["servers"].get("", {})
    check(srv.get("stopped") is True and srv.get("ready") is False, "a failed server is stopped", repr(srv))
    s.api("PATCH", "/users/lou", {"password": "lou-secret-123"}, token=admin)
    _, jar = login(s, "lou", "lou-secret-123")
    cookie = {"Cookie": cookie_header(jar)}
    r = s.request("GET", "/hub/user/lou/tree", headers=cookie)
    check(r.status == 303 and r.header("Location").startswith("/hub/spawn-pending/lou?next="),
          "/hub/user/lou/... after a failure: spawn-pending", repr(r.headers))
    r = s.request("GET", "/hub/spawn-pending/lou", headers=cookie)
    check(r.status == 200 and b"Spawn failed: " in r.body and b"Relaunch server" in r.body,
          "spawn-pending shows the failure and a relaunch link", repr(r))


def run(env, sections, name):
    s = Stack(env=env)
    try:
        admin = s.token("admin", admin=True)
        for fn in sections:
            fn(s, admin)
    finally:
        if failures:
            print(s.output()[-3000:])
        reports = s.stop()
        check(not reports, "%s: no sanitizer reports in service logs" % name, "\n".join(reports[:20]))


def main():
    def main_sections(s, admin):
        alice = s.token("alice")
        alice_narrow = s.token("alice", scopes=["read:users!user=alice"])
        s.token("bob")
        test_validation(s, admin, alice, alice_narrow)
        test_activity(s, admin)
        test_proxy(s, admin, alice)
        test_not_running(s, admin, alice)
        test_progress_by_hand(s, admin)
        if spawner_works(s, admin):
            test_fast_spawns(s, admin, alice)
            test_pages(s, admin)

    # the main stack's sections write server records straight into Redis (fake_record), which
    # no event announces, so the gateway's reply cache is off there; the other stacks run
    # the real spawner with the cache on
    run({"ORRERY_SPAWNER_CMD": STANDIN, "ORRERY_SLOW_SPAWN_TIMEOUT_S": "5", "ORRERY_ACTIVE_SERVER_LIMIT": "2",
         "ORRERY_PROGRESS_STREAMS_MAX": "3", "ORRERY_GATEWAY_REPLY_CACHE_MS": "0"}, [main_sections], "main stack")

    def slow_sections(s, admin):
        if spawner_works(s, admin):
            test_slow_spawns(s, admin)

    run({"ORRERY_SPAWNER_CMD": STANDIN + " --start-delay-ms 3000", "ORRERY_SLOW_SPAWN_TIMEOUT_S": "1",
         "ORRERY_MAX_CONCURRENT_SPAWNS": "1"}, [slow_sections], "slow stack")

    def failing_sections(s, admin):
        s.api("POST", "/users/spawnprobe", token=admin)
        r = s.api("POST", "/users/spawnprobe/server", token=admin)
        if r.status == 503:
            print("SKIPPED: the spawner does not answer spawn")
            skipped.append("spawner")
            return
        test_failing_spawns(s, admin)

    run({"ORRERY_SPAWNER_CMD": "/bin/false", "ORRERY_SLOW_SPAWN_TIMEOUT_S": "5"}, [failing_sections], "failing stack")
    print("%d failure(s)%s" % (len(failures), ", spawner sections skipped" if skipped else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
