"""Black-box test of the JupyterHub 3.0 REST API, the login pages and the OAuth2 provider,
against a real stack started by `orrery up` (tests/api/stack.py). Every request goes
through the real configurable-http-proxy to the gateway, as a user's would.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, __import__("os").path.dirname(__file__))
from stack import BIN, Stack, form, cookies_from, cookie_header, login  # noqa: E402

ROLES = [
    {"name": "group-reader", "scopes": ["list:users", "read:users"], "groups": ["readers"]},
    {"name": "culler", "scopes": ["list:users", "read:users:activity"], "services": ["cull"]},
]
SERVICES = [
    {"name": "cull", "api_token": "cull-token-0123456789", "url": "http://127.0.0.1:9/",
     "oauth_redirect_uri": "http://127.0.0.1:9/services/cull/oauth_callback"},
]

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what)
    else:
        print("FAIL ", what, detail)
        failures.append(what)


def status(resp, code, what):
    check(resp.status == code, "%s -> %d" % (what, code), "got %r" % (resp,))


def error_shape(resp, what):
    try:
        j = resp.json()
        check(j.get("status") == resp.status and isinstance(j.get("message"), str), what + ": JSON error body")
    except Exception as e:  # noqa: BLE001
        check(False, what + ": JSON error body", repr(e) + repr(resp))


def wait_until(fn, timeout=2.0):
    start = time.time()
    while time.time() - start < timeout:
        if fn():
            return time.time() - start
        time.sleep(0.05)
    return None


def test_root_and_conventions(s):
    for p in ("/hub/api", "/hub/api/"):
        r = s.request("GET", p)
        status(r, 200, "GET " + p)
        check(r.json() == {"version": "3.0.0"}, p + " version body")
        check(r.header("X-JupyterHub-Version") == "3.0.0", p + " version header")
        check(r.header("Access-Control-Allow-Headers") == "accept, content-type, authorization", "CORS header")
    r = s.api("GET", "/nonexistent")
    status(r, 404, "unknown API path")
    error_shape(r, "unknown API path")
    status(s.api("OPTIONS", "/users"), 200, "OPTIONS")
    status(s.request("GET", "/hub/health"), 200, "/hub/health")
    status(s.api("GET", "/health"), 200, "/hub/api/health")
    r = s.api("GET", "/users")
    status(r, 403, "no credentials")
    error_shape(r, "no credentials")
    status(s.api("GET", "/users", token="0" * 32), 403, "bad token")
    status(s.api("GET", "/user", token="0" * 32), 403, "whoami with bad token")
    status(s.api("GET", "/users", headers={"Authorization": "bearer " + "0" * 32}), 403, "bad bearer token")


def test_users(s, admin):
    r = s.api("POST", "/users", {"usernames": ["alice", "bob", "carol"]}, token=admin)
    status(r, 201, "POST /users")
    check(sorted(u["name"] for u in r.json()) == ["alice", "bob", "carol"], "created users listed")
    status(s.api("POST", "/users", {"usernames": ["alice", "bob"]}, token=admin), 409, "POST /users all exist")
    status(s.api("POST", "/users", {"usernames": []}, token=admin), 400, "POST /users empty")
    status(s.api("POST", "/users", {"usernames": ["x"], "bogus": 1}, token=admin), 400, "POST /users unknown key")
    status(s.api("POST", "/users", raw=b"{not json", token=admin,
                 headers={"Content-Type": "application/json"}), 400, "POST /users bad JSON")
    status(s.api("POST", "/users", {"usernames": ["bad/name"]}, token=admin), 400, "invalid user name")
    status(s.api("POST", "/users/dave", token=admin), 201, "POST /users/dave")
    status(s.api("POST", "/users/dave", token=admin), 409, "POST /users/dave again")
    r = s.api("GET", "/users/dave", token=admin)
    status(r, 200, "GET /users/dave")
    m = r.json()
    for key in ("kind", "name", "admin", "roles", "groups", "server", "pending", "created", "last_activity", "servers"):
        check(key in m, "user model has " + key)
    check(m["kind"] == "user" and m["servers"] == {} and m["roles"] == ["user"], "user model values", repr(m))
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$", m["created"]) is not None, "ISO timestamp")
    status(s.api("GET", "/users/nobody", token=admin), 404, "GET unknown user")
    status(s.api("GET", "/users/dave%00x", token=admin), 404, "an encoded NUL does not cut the name short")
    r = s.api("PATCH", "/users/dave", {"admin": True}, token=admin)
    status(r, 200, "PATCH admin")
    check(r.json()["admin"] is True and "admin" in r.json()["roles"], "PATCH made dave admin")
    status(s.api("PATCH", "/users/dave", {"bogus": True}, token=admin), 400, "PATCH unknown key")
    status(s.api("PATCH", "/users/dave", {"admin": "yes"}, token=admin), 400, "PATCH wrong type")
    status(s.api("PATCH", "/users/dave", {"name": "alice"}, token=admin), 400, "PATCH name taken")
    r = s.api("PATCH", "/users/dave", {"name": "dave2"}, token=admin)
    status(r, 200, "PATCH rename")
    status(s.api("GET", "/users/dave", token=admin), 404, "old name gone")
    status(s.api("GET", "/users/dave2", token=admin), 200, "new name there")
    status(s.api("PATCH", "/users/nobody", {"admin": True}, token=admin), 404, "PATCH unknown user")
    status(s.api("DELETE", "/users/dave2", token=admin), 204, "DELETE user")
    status(s.api("DELETE", "/users/dave2", token=admin), 404, "DELETE user again")
    status(s.api("DELETE", "/users/admin", token=admin), 400, "DELETE self")


def test_tokens(s, admin):
    r = s.api("POST", "/users/alice/tokens", {"note": "test"}, token=admin)
    status(r, 201, "admin creates a token for alice")
    t = r.json()
    check(re.match(r"^[0-9a-f]{32}$", t.get("token", "")) is not None, "token is 32 hex chars")
    check(re.match(r"^a\d+$", t["id"]) and t["kind"] == "api_token" and t["user"] == "alice" and t["roles"] == []
          and t["scopes"] == ["inherit"] and t["note"] == "test" and t["oauth_client"] == "JupyterHub",
          "token model", repr(t))
    alice = t["token"]
    r = s.api("GET", "/user", token=alice)
    status(r, 200, "whoami as alice")
    who = r.json()
    check(who["name"] == "alice" and who["kind"] == "user" and "scopes" in who and "session_id" in who,
          "whoami model", repr(who))
    check("read:users!user=alice" in who["scopes"] and "admin:users" not in who["scopes"], "alice's scopes")
    status(s.api("GET", "/info", token=alice), 403, "alice may not read hub info")
    status(s.api("GET", "/info", token=admin), 200, "admin reads hub info")
    status(s.api("GET", "/users/bob", token=alice), 404, "alice asking for bob: filtered 404")
    r = s.api("GET", "/users/alice/tokens", token=alice)
    status(r, 200, "alice lists her tokens")
    check(any(x["id"] == t["id"] for x in r.json()["api_tokens"]), "token listed")
    status(s.api("GET", "/users/alice/tokens/" + t["id"], token=alice), 200, "GET one token")
    status(s.api("GET", "/users/alice/tokens/a999999", token=alice), 404, "GET unknown token")
    status(s.api("POST", "/users/bob/tokens", {}, token=alice), 403, "alice may not make bob's tokens")
    status(s.api("POST", "/users/nobody/tokens", {}, token=admin), 403, "token for a missing user")
    status(s.api("POST", "/users/alice/tokens", {"scopes": ["admin:users"]}, token=alice), 400,
           "scopes beyond the owner's")
    status(s.api("POST", "/users/alice/tokens", {"scopes": ["read:users"], "roles": ["user"]}, token=alice), 400,
           "roles and scopes together")
    status(s.api("POST", "/users/alice/tokens", {"roles": ["no-such-role"]}, token=alice), 400, "unknown role")
    status(s.api("POST", "/users/alice/tokens", {"scopes": ["no:such:scope"]}, token=alice), 400, "unknown scope")
    status(s.api("POST", "/users/alice/tokens", {"expires_in": "soon"}, token=alice), 400, "bad expires_in")
    # a token that expires
    r = s.api("POST", "/users/alice/tokens", {"expires_in": 1}, token=alice)
    status(r, 201, "short-lived token")
    short = r.json()
    check(short["expires_at"] is not None, "expires_at set")
    check(wait_until(lambda: s.api("GET", "/user", token=short["token"]).status == 403, 4) is not None,
          "expired token refused")
    # a filtered token: read:users!user=alice asking for bob -> 404 (the acceptance line)
    r = s.api("POST", "/users/admin/tokens", {"scopes": ["read:users!user=alice"]}, token=admin)
    status(r, 201, "filtered token")
    filtered = r.json()["token"]
    status(s.api("GET", "/users/alice", token=filtered), 200, "filtered token reads alice")
    r = s.api("GET", "/users/bob", token=filtered)
    status(r, 404, "filtered token asking for bob")
    check(r.json()["message"] == "No access to resources or resources not found", "filtered 404 message")
    status(s.api("GET", "/users", token=filtered), 403, "filtered token cannot list users")
    # delete: refused within 1 s
    status(s.api("DELETE", "/users/alice/tokens/" + t["id"], token=admin), 204, "DELETE token")
    took = wait_until(lambda: s.api("GET", "/user", token=alice).status == 403, 1.0)
    check(took is not None, "deleted token refused within 1 s", "took %r" % took)
    status(s.api("DELETE", "/users/alice/tokens/" + t["id"], token=admin), 404, "DELETE token again")


def test_narrowing(s, admin):
    status(s.api("PATCH", "/users/bob", {"admin": True}, token=admin), 200, "bob made admin")
    r = s.api("POST", "/users/bob/tokens", {"scopes": ["admin:users"]}, token=admin)
    status(r, 201, "bob's admin:users token")
    bob = r.json()["token"]
    status(s.api("POST", "/users/eve", token=bob), 201, "bob's token creates a user")
    status(s.api("PATCH", "/users/bob", {"admin": False}, token=admin), 200, "bob loses admin")
    took = wait_until(lambda: s.api("POST", "/users/frank", token=bob).status == 403, 1.0)
    check(took is not None, "token narrowed within 1 s when the owner loses a role", "took %r" % took)
    r = s.api("GET", "/user", token=bob)
    check(r.status == 200 and "admin:users" not in r.json()["scopes"], "narrowed scopes in whoami")


def test_groups(s, admin):
    r = s.api("POST", "/groups", {"groups": ["g1", "readers"], "users": ["alice"]}, token=admin)
    status(r, 201, "POST /groups")
    check(sorted(g["name"] for g in r.json()) == ["g1", "readers"], "created groups")
    status(s.api("POST", "/groups", {"groups": ["g1"]}, token=admin), 409, "POST /groups exists")
    status(s.api("POST", "/groups", {"groups": ["g9"], "users": ["nobody"]}, token=admin), 400, "group with unknown user")
    status(s.api("POST", "/groups", {"groups": "g1"}, token=admin), 400, "groups not a list")
    r = s.api("GET", "/groups/g1", token=admin)
    status(r, 200, "GET /groups/g1")
    check(r.json() == {"kind": "group", "name": "g1", "users": ["alice"], "roles": []}, "group model", repr(r.json()))
    r = s.api("POST", "/groups/g1/users", {"users": ["bob"]}, token=admin)
    status(r, 200, "add member")
    check(sorted(r.json()["users"]) == ["alice", "bob"], "members after add")
    check("g1" in s.api("GET", "/users/bob", token=admin).json()["groups"], "user model lists the group")
    r = s.api("DELETE", "/groups/g1/users", {"users": ["alice"]}, token=admin)
    status(r, 200, "remove member")
    check(r.json()["users"] == ["bob"], "members after remove")
    status(s.api("POST", "/groups/g1/users", {"users": ["nobody"]}, token=admin), 400, "add unknown user")
    status(s.api("POST", "/groups/nogroup/users", {"users": ["bob"]}, token=admin), 404, "add to unknown group")
    status(s.api("POST", "/groups/g2", {"users": ["carol"]}, token=admin), 201, "POST /groups/g2")
    status(s.api("POST", "/groups/g2", token=admin), 409, "POST /groups/g2 again")
    r = s.api("GET", "/groups", token=admin)
    status(r, 200, "GET /groups")
    check([g["name"] for g in r.json()] == ["g1", "readers", "g2"], "groups in creation order", repr(r.json()))
    status(s.api("DELETE", "/groups/g2", token=admin), 204, "DELETE group")
    status(s.api("GET", "/groups/g2", token=admin), 404, "deleted group")
    status(s.api("DELETE", "/groups/g2", token=admin), 404, "DELETE group again")
    check("g2" not in s.api("GET", "/users/carol", token=admin).json()["groups"], "membership gone with the group")
    # group roles: carol joins readers and may list users
    carol = s.token("carol")
    status(s.api("GET", "/users", token=carol), 403, "carol cannot list users")
    status(s.api("POST", "/groups/readers/users", {"users": ["carol"]}, token=admin), 200, "carol joins readers")
    check(wait_until(lambda: s.api("GET", "/users", token=carol).status == 200, 1.5) is not None,
          "group role lets carol list users")
    r = s.api("GET", "/groups/readers", token=admin)
    check(r.json()["roles"] == ["group-reader"], "group model roles")


def test_pagination(s, admin):
    r = s.api("POST", "/users", {"usernames": ["page%02d" % i for i in range(60)]}, token=admin)
    status(r, 201, "60 users")
    accept = {"Accept": "application/jupyterhub-pagination+json"}
    r = s.api("GET", "/users?limit=20&name_filter=PAGE", token=admin, headers=accept)
    status(r, 200, "paginated list")
    j = r.json()
    check(len(j["items"]) == 20 and j["_pagination"]["total"] == 60 and j["_pagination"]["offset"] == 0,
          "first page", repr(j["_pagination"]))
    nxt = j["_pagination"]["next"]
    check(nxt and nxt["offset"] == 20 and nxt["limit"] == 20, "next offsets")
    url = urllib.parse.urlparse(nxt["url"])
    check(url.scheme == "http" and url.netloc == "127.0.0.1:%d" % s.port and url.path == "/hub/api/users"
          and "name_filter=PAGE" in url.query, "next.url absolute, args kept", nxt["url"])
    names = [u["name"] for u in j["items"]]
    while nxt:
        u = urllib.parse.urlparse(nxt["url"])
        j = s.request("GET", u.path + "?" + u.query, token=admin, headers=accept).json()
        names += [x["name"] for x in j["items"]]
        nxt = j["_pagination"]["next"]
    check(names == ["page%02d" % i for i in range(60)], "following next.url lists all, in id order")
    r = s.api("GET", "/users?limit=5", token=admin,
              headers=dict(accept, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.org"}))
    check(r.json()["_pagination"]["next"]["url"].startswith("https://hub.example.org/hub/api/users?"),
          "next.url honours X-Forwarded-*", r.json()["_pagination"]["next"]["url"])
    r = s.api("GET", "/users?name_filter=page", token=admin)
    check(isinstance(r.json(), list) and len(r.json()) == 60, "bare list without the media type")
    status(s.api("GET", "/users?limit=abc", token=admin), 400, "non-integer limit")
    r = s.api("GET", "/users?limit=1000", token=admin, headers=accept)
    check(r.json()["_pagination"]["limit"] == 200, "limit clamped to 200")
    status(s.api("GET", "/users?state=bogus", token=admin), 400, "bad state filter")
    r = s.api("GET", "/users?state=ready", token=admin)
    check(r.status == 200 and r.json() == [], "no ready servers yet")
    r = s.api("GET", "/groups?limit=1", token=admin, headers=accept)
    check(len(r.json()["items"]) == 1 and r.json()["_pagination"]["next"] is not None, "groups paginate")


def test_services_and_misc(s, admin):
    r = s.api("GET", "/services", token=admin)
    status(r, 200, "GET /services")
    svc = r.json().get("cull")
    check(svc and svc["kind"] == "service" and svc["roles"] == ["culler"] and svc["prefix"] == "/services/cull/"
          and svc["pid"] == 0, "service model", repr(r.json()))
    status(s.api("GET", "/services/cull", token=admin), 200, "GET /services/cull")
    status(s.api("GET", "/services/nope", token=admin), 404, "unknown service")
    cull = "cull-token-0123456789"
    r = s.api("GET", "/user", token=cull)
    check(r.status == 200 and r.json()["kind"] == "service" and r.json()["name"] == "cull", "service whoami",
          repr(r))
    status(s.api("GET", "/users", token=cull), 200, "service lists users (its role)")
    status(s.api("POST", "/users/zed", token=cull), 403, "service may not create users")
    alice = s.token("alice")
    r = s.api("GET", "/authorizations/token/" + alice, token=admin)
    check(r.status == 200 and r.json()["name"] == "alice", "authorizations/token", repr(r))
    status(s.api("GET", "/authorizations/token/" + "f" * 32, token=admin), 404, "authorizations unknown token")
    status(s.api("POST", "/authorizations/token", token=admin), 404, "POST /authorizations/token is gone")
    r = s.api("GET", "/metrics", token=admin)
    check(r.status == 200 and b"orrery_gateway_requests_total" in r.body, "metrics")
    status(s.api("GET", "/metrics", token=alice), 403, "metrics need read:metrics")
    status(s.api("POST", "/users/alice/admin-access", token=admin), 200, "admin-access no-op")


def test_login_pages(s, admin):
    status(s.api("PATCH", "/users/alice", {"password": "alice-secret-1"}, token=admin), 200, "admin sets a password")
    status(s.api("PATCH", "/users/alice", {"password": "short"}, token=admin), 400, "too short a password")
    r = s.request("GET", "/hub/login")
    check(r.status == 200 and b"<form" in r.body and b'name="password"' in r.body, "login page")
    r, jar = login(s, "alice", "wrong-password")
    status(r, 403, "wrong password")
    r, jar = login(s, "alice", "")
    status(r, 403, "empty password")
    r = s.request("POST", "/hub/login", raw=form({"username": "alice", "password": "alice-secret-1"}),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    status(r, 403, "login without the XSRF cookie")
    r, jar = login(s, "alice", "alice-secret-1", nxt="//evil.example.com/")
    status(r, 302, "right password")
    check(r.header("Location") == "/hub/home", "next to another host is ignored", r.header("Location"))
    sets = " ".join(r.headers_all("Set-Cookie"))
    check("HttpOnly" in sets and "SameSite=Lax" in sets and "jupyterhub-session-id=" in sets, "cookie flags", sets)
    cookie = {"Cookie": cookie_header(jar)}
    r = s.request("GET", "/hub/home", headers=cookie)
    check(r.status == 200 and b"alice" in r.body, "home page signed in")
    base = "http://127.0.0.1:%d/hub/" % s.port
    r = s.api("GET", "/user", headers=dict(cookie, Referer=base + "home"))
    check(r.status == 200 and r.json()["name"] == "alice" and r.json()["session_id"], "cookie on the API with Referer")
    status(s.api("GET", "/user", headers=cookie), 403, "cookie on the API without Referer")
    status(s.api("POST", "/users/alice/tokens", {}, headers=dict(cookie, Referer=base + "home")), 403,
           "cookie mutation without XSRF token")
    r, _ = login(s, "alice", "alice-secret-1", nxt="/hub/home?x=1")
    check(r.header("Location") == "/hub/home?x=1", "local next is followed")
    # anonymous token creation with credentials in the body
    r = s.api("POST", "/users/alice/tokens", {"auth": {"username": "alice", "password": "alice-secret-1"}})
    status(r, 201, "token from username and password")
    status(s.api("POST", "/users/alice/tokens", {"auth": {"username": "alice", "password": "nope"}}), 403,
           "token with a wrong password")
    # change password
    r = s.request("GET", "/hub/change-password", headers=cookie)
    m = re.search(rb'name="_xsrf" value="([0-9a-f]+)"', r.body)
    check(r.status == 200 and m, "change-password page")
    r = s.request("POST", "/hub/change-password", headers=dict(cookie, **{"Content-Type": "application/x-www-form-urlencoded"}),
                  raw=form({"_xsrf": m.group(1).decode(), "old_password": "alice-secret-1",
                            "new_password": "alice-secret-2", "new_password_confirm": "alice-secret-2"}))
    status(r, 200, "password changed")
    r, _ = login(s, "alice", "alice-secret-2")
    status(r, 302, "new password works")
    # the operator's way: orrery user passwd NAME, password on stdin
    out = subprocess.run([os.path.join(BIN, "orrery"), "user", "passwd", "carol", "--state-dir", s.dir + "/state"],
                         input="carol-secret-1\n", capture_output=True, text=True, env=s.env, timeout=30)
    check(out.returncode == 0, "orrery user passwd", out.stderr)
    r, _ = login(s, "carol", "carol-secret-1")
    status(r, 302, "password set by orrery user passwd works")
    # behind HTTPS (the proxy says so) the cookie is Secure
    r0 = s.request("GET", "/hub/login")
    jar0 = cookies_from(r0)
    r = s.request("POST", "/hub/login", raw=form({"_xsrf": jar0["_xsrf"], "username": "carol",
                                                  "password": "carol-secret-1"}),
                  headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(jar0),
                           "X-Forwarded-Proto": "https"})
    check(r.status == 302 and all("Secure" in v for v in r.headers_all("Set-Cookie")), "Secure cookies behind HTTPS",
          repr(r.headers_all("Set-Cookie")))
    # logout ends the session everywhere
    r = s.request("GET", "/hub/logout", headers=cookie)
    status(r, 302, "logout")
    r = s.request("GET", "/hub/home", headers=cookie)
    check(r.status == 302 and "/hub/login" in r.header("Location"), "session gone after logout")
    # throttling: repeated failures get 429 with Retry-After
    got = None
    for _ in range(8):
        r, _ = login(s, "throttled-user", "wrong")
        if r.status == 429:
            got = r
            break
    check(got is not None and int(got.header("Retry-After")) >= 1, "throttled with 429 and Retry-After", repr(r))


def test_oauth(s, admin):
    status(s.api("PATCH", "/users/admin", {"password": "admin-secret-1"}, token=admin), 200, "admin password")
    redirect = "http://127.0.0.1:9/services/cull/oauth_callback"
    q = urllib.parse.urlencode({"client_id": "service-cull", "redirect_uri": redirect, "response_type": "code",
                                "state": "st4te/x"})
    r = s.request("GET", "/hub/api/oauth2/authorize?" + q)
    check(r.status == 302 and r.header("Location").startswith("/hub/login?next="), "authorize sends to login")
    r, jar = login(s, "alice", "alice-secret-2")
    r = s.request("GET", "/hub/api/oauth2/authorize?" + q, headers={"Cookie": cookie_header(jar)})
    status(r, 403, "alice may not access the service")
    r, jar = login(s, "admin", "admin-secret-1")
    cookie = {"Cookie": cookie_header(jar)}
    bad = q.replace("oauth_callback", "elsewhere")
    status(s.request("GET", "/hub/api/oauth2/authorize?" + bad, headers=cookie), 400, "redirect_uri mismatch")
    r = s.request("GET", "/hub/api/oauth2/authorize?" + q, headers=cookie)
    m = re.search(rb'name="_xsrf" value="([0-9a-f]+)"', r.body)
    check(r.status == 200 and m, "confirmation page")
    r = s.request("POST", "/hub/api/oauth2/authorize?" + q, raw=form({"_xsrf": m.group(1).decode()}),
                  headers=dict(cookie, **{"Content-Type": "application/x-www-form-urlencoded"}))
    status(r, 302, "authorized")
    loc = urllib.parse.urlparse(r.header("Location"))
    args = urllib.parse.parse_qs(loc.query)
    check(loc.path == "/services/cull/oauth_callback" and args.get("state") == ["st4te/x"] and args.get("code"),
          "redirect with code and state", r.header("Location"))
    code = args["code"][0]
    tok = {"client_id": "service-cull", "client_secret": "cull-token-0123456789", "grant_type": "authorization_code",
           "code": code, "redirect_uri": redirect}
    r = s.api("POST", "/oauth2/token", raw=form(dict(tok, client_secret="wrong")),
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status in (400, 401) and r.json().get("error") == "invalid_client", "wrong client secret", repr(r))
    r = s.api("POST", "/oauth2/token", raw=form(tok), headers={"Content-Type": "application/x-www-form-urlencoded"})
    status(r, 200, "code exchanged")
    j = r.json()
    check(j["token_type"] == "Bearer" and j["expires_in"] == 1209600 and "access:services!service=cull" in j["scope"],
          "token response", repr(j))
    who = s.api("GET", "/user", token=j["access_token"]).json()
    check(who["name"] == "admin" and "access:services!service=cull" in who["scopes"]
          and "admin:users" not in who["scopes"], "OAuth token identifies, narrowly", repr(who))
    r = s.api("POST", "/oauth2/token", raw=form(tok), headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 400 and r.json().get("error") == "invalid_grant", "a code works once")
    # consent remembered: no confirmation the second time
    r = s.request("GET", "/hub/api/oauth2/authorize?" + q, headers=cookie)
    status(r, 302, "consent remembered")


def test_shutdown(s, admin):
    alice = s.token("alice")
    status(s.api("POST", "/shutdown", token=alice), 403, "alice may not shut down")
    status(s.api("POST", "/shutdown", {"servers": "yes"}, token=admin), 400, "shutdown bad body")
    r = s.api("POST", "/shutdown", {"servers": False}, token=admin)
    status(r, 202, "shutdown")
    check(r.json() == {"message": "Shutting down Hub"}, "shutdown body")
    try:
        s.proc.wait(20)
        check(s.proc.returncode == 0, "orrery up exited 0 after shutdown")
    except Exception:  # noqa: BLE001
        check(False, "orrery up exited after shutdown")


def test_demo_refuses_public_ip():
    """The demo authenticator lets anyone in: it must refuse to run on a public address."""
    env = dict(os.environ, ORRERY_AUTHENTICATOR="demo", ORRERY_DEMO_PASSWORD="pw", ORRERY_PUBLIC_IP="0.0.0.0",
               ORRERY_REDIS_URL="redis://127.0.0.1:1/0", ORRERY_BUS="tcp://127.0.0.1:2")
    out = subprocess.run([os.path.join(BIN, "orrery-auth")], capture_output=True, text=True, env=env, timeout=30)
    check(out.returncode != 0 and "refuses to run" in out.stderr, "demo authenticator refuses a public address",
          out.stderr[-500:])


def main():
    test_demo_refuses_public_ip()
    s = Stack(env={"ORRERY_LOAD_ROLES": json.dumps(ROLES), "ORRERY_SERVICES": json.dumps(SERVICES)})
    try:
        check("sign in:" in s.output() and "as admin with password" in s.output(), "orrery up prints the first admin")
        admin = s.token("admin", admin=True)
        test_root_and_conventions(s)
        test_users(s, admin)
        test_tokens(s, admin)
        test_narrowing(s, admin)
        test_groups(s, admin)
        test_pagination(s, admin)
        test_services_and_misc(s, admin)
        test_login_pages(s, admin)
        test_oauth(s, admin)
        test_shutdown(s, admin)
    finally:
        if failures:
            print(s.output()[-3000:])
        reports = s.stop()
        check(not reports, "no sanitizer reports in service logs", "\n".join(reports[:20]))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
