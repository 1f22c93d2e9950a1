"""Sign-in through the login page with the LDAP authenticator against a real slapd
(tests/fixtures/slapd) started by this test: right passwords sign in, wrong and empty
passwords, users outside allowed_groups and filter/DN injection attempts do not; slapd
stopped mid-test makes logins fail with a clear message within the configured timeout,
and logins work again once it is back.
"""
import os
import subprocess
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.dirname(__file__))
from stack import Stack, free_port, login  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "slapd")
failures = []


def check(cond, what, detail=""):
    print(("ok    " if cond else "FAIL  ") + what + ("" if cond else " " + str(detail)))
    if not cond:
        failures.append(what)


def slapd(cmd, d, port=None):
    args = [FIXTURE, cmd, d] + ([str(port)] if port else [])
    env = dict(os.environ, FIXTURE_OWNER_PID=str(os.getpid()))
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("slapd %s failed: %s" % (cmd, r.stderr))


def main():
    d = tempfile.mkdtemp(prefix="orrery-ldap-")
    port = free_port()
    slapd("start", d, port)
    s = None
    try:
        s = Stack(env={
            "ORRERY_AUTHENTICATOR": "ldap",
            "ORRERY_LDAP_URL": "ldap://127.0.0.1:%d" % port,
            "ORRERY_LDAP_BIND_DN_TEMPLATE": "uid={username},ou=people,dc=orrery,dc=test",
            "ORRERY_LDAP_ALLOWED_GROUPS": "cn=researchers,ou=groups,dc=orrery,dc=test",
            "ORRERY_LDAP_SEARCH_BIND_DN": "cn=reader,dc=orrery,dc=test",
            "ORRERY_LDAP_SEARCH_BIND_PASSWORD": "reader-pw",
            "ORRERY_LDAP_TIMEOUT_MS": "1000",
            "ORRERY_ADMIN_USERS": "alice",
            "ORRERY_LOGIN_FREE_FAILURES": "1000",
            "ORRERY_LOGIN_FREE_FAILURES_PER_ADDRESS": "1000",
        })
        check("LDAP" in s.output(), "orrery up says to sign in with the LDAP password")
        r, jar = login(s, "alice", "alice-pw")
        check(r.status == 302 and "jupyterhub-hub-login" in jar, "alice signs in with her LDAP password", repr(r))
        admin = s.token("alice")
        me = s.api("GET", "/user", token=admin).json()
        check(me["name"] == "alice" and me["admin"] is True, "alice is an admin from ADMIN_USERS", repr(me))
        r, _ = login(s, "BOB", "bob-pw")
        check(r.status == 302, "bob signs in (the directory ignores case)")
        check(s.api("GET", "/users/bob", token=admin).status == 200, "bob exists in Orrery after his first login")
        check(s.api("GET", "/users/BOB", token=admin).status == 404, "under his lower-case name only")
        for user, pw, what in [
            ("alice", "wrong", "wrong password"),
            ("alice", "", "empty password"),
            ("carol", "carol-pw", "user outside allowed_groups"),
            ("*", "alice-pw", "injection: *"),
            ("*)(uid=*", "alice-pw", "injection: *)(uid=*"),
            ("admin)(|(uid=*", "alice-pw", "injection: admin)(|(uid=*"),
            ("alice\x00x", "alice-pw", "injection: NUL byte"),
            ("alice,ou=people,dc=orrery,dc=test", "alice-pw", "injection: DN suffix"),
            ("nobody", "x", "unknown user"),
        ]:
            r, jar = login(s, user, pw)
            check(r.status == 403 and "jupyterhub-hub-login" not in jar, "refused: " + what, repr(r))
        # slapd goes away: a clear failure within the timeout, no hang, no crash
        slapd("stop", d)
        t0 = time.time()
        r, _ = login(s, "alice", "alice-pw")
        took = time.time() - t0
        check(r.status == 503 and b"unavailable" in r.body.lower(), "slapd down: login fails with a clear message",
              repr(r))
        check(took < 1.0 + 2.0, "slapd down: answer within the 1 s timeout (+ slack)", "took %.2f s" % took)
        print("      slapd down: answered in %.2f s" % took)
        check(s.request("GET", "/hub/health").status == 200, "the hub still answers")
        slapd("start", d, port)
        r, _ = login(s, "alice", "alice-pw")
        check(r.status == 302, "slapd back: alice signs in again", repr(r))
        reports = s.stop()
        s = None
        check(not reports, "no sanitizer reports", "\n".join(reports[:20]))
    finally:
        if s:
            s.stop()
        slapd("stop", d)
        shutil.rmtree(d, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
