"""Black-box load test (acceptance line of the identity issue):

  `ab -c 100 -n 20000 -H 'Authorization: token T' http://127.0.0.1:PORT/hub/api/users/alice`
  through the gateway: zero non-2xx responses.

A stack from `orrery up` (tests/api/stack.py); alice and her token T are made through the
REST API. ab (apache2-utils) runs once against the public port, through
configurable-http-proxy as a user's requests go, and once straight at the gateway port.
Standard library only; run with Debian's /usr/bin/python3.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import Stack, free_port  # noqa: E402

AB = "/usr/bin/ab"

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what, detail)
        failures.append(what)
    return cond


def field(out, name):
    m = re.search(r"^%s:\s+([0-9.]+)" % re.escape(name), out, re.M)
    return m.group(1) if m else None


def run_ab(token, port, what):
    url = "http://127.0.0.1:%d/hub/api/users/alice" % port
    cmd = [AB, "-c", "100", "-n", "20000", "-H", "Authorization: token " + token, url]
    start = time.time()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    except subprocess.TimeoutExpired as e:
        check(False, "ab %s finished within 100 s" % what, (e.stdout or b"")[-2000:])
        return
    took = time.time() - start
    text = out.stdout
    complete, failed = field(text, "Complete requests"), field(text, "Failed requests")
    kinds = re.search(r"\(Connect: \d+, Receive: \d+, Length: \d+, Exceptions: \d+\)", text)
    non2xx = field(text, "Non-2xx responses") or "0"      # ab prints this line only when there are some
    rps = field(text, "Requests per second")
    print("      ab %s: %s complete, %s failed%s, %s non-2xx, %s requests/s, %.1f s" %
          (what, complete, failed, " " + kinds.group(0) if kinds else "", non2xx, rps, took))
    detail = "exit %d\n%s\n%s" % (out.returncode, text[-2500:], out.stderr[-1000:])
    check(out.returncode == 0, "ab %s exits 0" % what, detail)
    check(complete == "20000", "ab %s: all 20000 requests complete" % what, detail)
    check(failed == "0", "ab %s: 0 failed requests" % what, detail)
    check(non2xx == "0", "ab %s: 0 non-2xx responses" % what, detail)


def main():
    t_start = time.time()
    gateway_port = free_port()
    s = Stack(args=("--gateway-port", str(gateway_port)))
    try:
        admin = s.token("admin", admin=True)
        r = s.api("POST", "/users/alice", token=admin)
        check(r.status == 201, "POST /users/alice -> 201", repr(r))
        r = s.api("POST", "/users/alice/tokens", {"note": "ab"}, token=admin)
        if not check(r.status == 201, "POST /users/alice/tokens -> 201", repr(r)):
            return 1
        token = r.json()["token"]
        r = s.api("GET", "/users/alice", token=token)
        check(r.status == 200 and r.json().get("name") == "alice", "alice reads herself with T", repr(r))
        # ab counts a body whose length differs from the first one as a failed request. alice's
        # model carries last_activity, null until the gateway's first activity flush after T is
        # used (ORRERY_ACTIVITY_FLUSH_MS, 5 s) and a fixed-width timestamp after that; wait for
        # it so every response ab sees has the same length.
        deadline = time.time() + 15
        while time.time() < deadline and s.api("GET", "/users/alice", token=token).json().get("last_activity") is None:
            time.sleep(0.2)
        r = s.api("GET", "/users/alice", token=token)
        check(r.json().get("last_activity") is not None, "alice's last_activity is recorded", repr(r))
        if not failures:
            run_ab(token, s.port, "through the proxy (port %d)" % s.port)
            r = s.api("GET", "/users/alice", token=token, port=gateway_port)
            check(r.status == 200, "the gateway port answers directly", repr(r))
            run_ab(token, gateway_port, "straight at the gateway (port %d)" % gateway_port)
            r = s.api("GET", "/users/alice", token=token)
            check(r.status == 200, "the stack still serves alice after the load", repr(r))
    finally:
        if failures:
            print(s.output()[-3000:])
            for name in ("gateway-0", "auth-0", "proxy"):
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
