"""A real Orrery stack for black-box tests: `orrery up` on a free port in a temporary state
directory (real redis-server, bus, services and configurable-http-proxy), plus small HTTP
helpers. Standard library only; run with Debian's /usr/bin/python3.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

BIN = os.environ.get("ORRERY_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))


def free_port():
    """A port below the ephemeral range that nothing listens on now."""
    import random
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Stack:
    def __init__(self, env=None, args=()):
        self.dir = tempfile.mkdtemp(prefix="orrery-api-")
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.log = open(os.path.join(self.dir, "up.out"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "orrery"), "up", "--port", str(self.port), "--state-dir", self.dir + "/state", *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            self.log.seek(0)
            if "Press Ctrl-C" in self.log.read():
                break
            if self.proc.poll() is not None:
                raise RuntimeError("orrery up exited: " + self.output())
            time.sleep(0.1)
        else:
            raise RuntimeError("orrery up not ready in 30 s: " + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def state_env(self):
        """REDIS_URL and BUS of the running stack, from its orrery.env."""
        out = {}
        with open(self.dir + "/state/orrery.env") as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.strip().split("=", 1)
                    out[k] = v
        return out

    def redis(self, *args):
        """A command on the stack's Redis through redis-cli; its --raw output."""
        port = self.state_env()["ORRERY_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
        return subprocess.run(["redis-cli", "-p", port, "--raw", *args], capture_output=True, text=True,
                              timeout=10).stdout

    def record(self, user, server=""):
        """The spawner's record of a server (docs/spawner.md) as a dict; {} when none."""
        out = self.redis("HGETALL", "orr:{u:%s}:server:%s" % (user, server)).split("\n")
        return dict(zip(out[0::2], out[1::2]))

    def publish(self, topic, body):
        """Publishes one event on the stack's bus (`orrery publish`), e.g. an intent."""
        subprocess.run([os.path.join(BIN, "orrery"), "publish", topic, json.dumps(body), "--state-dir",
                        self.dir + "/state"], check=True, capture_output=True, timeout=20, env=self.env)

    def token(self, user, admin=False, scopes=()):
        cmd = [os.path.join(BIN, "orrery"), "token", "create", "--user", user, "--state-dir", self.dir + "/state"]
        if admin:
            cmd.append("--admin")
        for s in scopes:
            cmd += ["--scope", s]
        out = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("orrery token create failed: " + out.stderr)
        return out.stdout.strip()

    def request(self, method, path, body=None, token=None, headers=None, port=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=20)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "token " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        resp = Response(r.status, r.getheaders(), r.read())
        conn.close()
        return resp

    def api(self, method, path, body=None, token=None, **kw):
        return self.request(method, "/hub/api" + path, body=body, token=token, **kw)

    def sanitizer_reports(self):
        """Lines of service logs where AddressSanitizer/UBSan/LeakSanitizer reported."""
        found = []
        logs = os.path.join(self.dir, "state", "logs")
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            if not os.path.isfile(os.path.join(logs, name)):
                continue   # logs/servers: the single-user servers' own logs
            with open(os.path.join(logs, name), errors="replace") as f:
                for line in f:
                    if "Sanitizer" in line or "runtime error:" in line:
                        found.append("%s: %s" % (name, line.strip()))
        return found

    def stop(self):
        """Stops the stack; returns sanitizer reports found in its logs (empty = clean)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        reports = self.sanitizer_reports()
        if os.environ.get("ORRERY_KEEP_TEST_DIRS") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return reports


def form(fields):
    return urllib.parse.urlencode(fields).encode()


def cookies_from(resp):
    """name -> value of every Set-Cookie in a response."""
    jar = {}
    for c in resp.headers_all("Set-Cookie"):
        name, _, rest = c.partition("=")
        jar[name.strip()] = rest.split(";")[0]
    return jar


def cookie_header(jar):
    return "; ".join("%s=%s" % kv for kv in jar.items() if kv[1])


def login(s, user, password, nxt=None):
    """Signs in through the login form (GET for the XSRF cookie, then POST); returns the
    POST response and the cookie jar."""
    r = s.request("GET", "/hub/login")
    jar = cookies_from(r)
    xsrf = jar.get("_xsrf")
    fields = {"_xsrf": xsrf, "username": user, "password": password}
    if nxt:
        fields["next"] = nxt
    r = s.request("POST", "/hub/login", raw=form(fields),
                  headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(jar)})
    jar.update(cookies_from(r))
    return r, jar


class Checks:
    """Collects failed checks so a test reports all of them, then exits 1 if any."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        if not cond:
            self.failures.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def finish(self):
        import sys
        if self.failures:
            print("%d failure(s)" % len(self.failures))
            sys.exit(1)
        print("ok")
