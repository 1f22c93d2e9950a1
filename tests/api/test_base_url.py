"""Black-box test of a stack under a base URL (`ORRERY_BASE_URL=/jh/`, JupyterHub's
`base_url`): `orrery up` comes up and prints URLs under it, the API, pages, pagination's
next.url and server URLs carry it, paths outside it are 404, and a server started through
the API is reached through the real proxy at /jh/user/NAME/.

Runs the stand-in server (bench/spawn) for speed. Standard library only; run with
Debian's /usr/bin/python3.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Checks, Stack  # noqa: E402

STANDIN = os.path.abspath(os.path.join(BIN, "orrery-standin"))
BASE = "/jh/"


def main():
    check = Checks()
    s = Stack(env={"ORRERY_BASE_URL": BASE, "ORRERY_SPAWNER_CMD": STANDIN})
    try:
        out = s.output()
        check("Orrery is running at http://127.0.0.1:%d%s\n" % (s.port, BASE) in out,
              "orrery up prints the public URL with the base URL")
        check("hub/api" in out and ("%shub/api" % BASE) in out, "the printed REST API URL has the base URL")

        r = s.request("GET", BASE + "hub/api/")
        check(r.status == 200 and r.json().get("version") == "3.0.0", "GET %shub/api/ -> 200 with the version" % BASE)
        r = s.request("GET", BASE + "hub/health")
        check(r.status == 200, "GET %shub/health -> 200" % BASE)
        r = s.request("GET", "/hub/api/")
        check(r.status == 404 and r.json().get("status") == 404, "a path outside the base URL -> JSON 404")

        admin = s.token("admin", admin=True)
        r = s.request("POST", BASE + "hub/api/users", {"usernames": ["alice", "bob", "carol"]}, token=admin)
        check(r.status == 201, "POST users under the base URL -> 201")
        r = s.request("GET", BASE + "hub/api/users?limit=1", token=admin,
                      headers={"Accept": "application/jupyterhub-pagination+json"})
        nxt = (r.json().get("_pagination") or {}).get("next") or {} if r.status == 200 else {}
        check(nxt.get("url", "").startswith("http://127.0.0.1:%d%shub/api/users?" % (s.port, BASE)),
              "pagination's next.url has the base URL: %r" % nxt.get("url"))

        r = s.request("GET", BASE + "hub/login")
        check(r.status == 200 and ('action="%shub/login' % BASE).encode() in r.body,
              "the login page posts to the base URL's login")

        # a server: its url carries the base URL, and the proxy routes it there
        r = s.request("POST", BASE + "hub/api/users/alice/server", token=admin)
        check(r.status in (201, 202), "start alice's server -> 201/202 (%d)" % r.status)
        deadline, model = time.time() + 20, {}
        while time.time() < deadline:
            model = s.request("GET", BASE + "hub/api/users/alice", token=admin).json()
            if model.get("server"):
                break
            time.sleep(0.1)
        check(model.get("server") == BASE + "user/alice/", "alice's server url is %suser/alice/: %r"
              % (BASE, model.get("server")))
        deadline, r = time.time() + 5, None
        while time.time() < deadline:
            r = s.request("GET", BASE + "user/alice/tree")
            if r.status == 200:
                break
            time.sleep(0.1)
        check(r is not None and r.status == 200 and b"alice" in r.body,
              "the proxy routes %suser/alice/tree to her server" % BASE)
        rec = s.record("alice")
        check(rec.get("url") == BASE + "user/alice/", "the spawner's record has the base URL: %r" % rec.get("url"))
        r = s.request("DELETE", BASE + "hub/api/users/alice/server", token=admin)
        check(r.status in (202, 204), "stop alice's server -> 202/204 (%d)" % r.status)
    finally:
        if check.failures:
            print(s.output()[-3000:])
        reports = s.stop()
        check(not reports, "no sanitizer reports in service logs: %s" % json.dumps(reports[:10]))
    check.finish()


if __name__ == "__main__":
    main()
