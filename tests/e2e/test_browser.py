#!/usr/bin/python3
"""End to end in a real browser: headless Chromium (selenium + chromedriver) against a
real stack (`orrery up` through tests/api/stack.py) with real jupyterhub-singleuser
servers (classic notebook UI: JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp).

Everything goes through configurable-http-proxy's public port, as a user's browser would:

  1. a built-in user with a password (POST /hub/api/users, PATCH password: admin token)
  2. /hub/login: sign in through the form -> /hub/home
  3. "Start My Server" -> /hub/spawn -> /hub/spawn-pending/<name> (progress bar fed by
     EventSource) -> /user/<name>/... -> OAuth with the hub (/hub/api/oauth2/authorize,
     /user/<name>/oauth_callback) -> /user/<name>/tree, the notebook's file list
  4. a screenshot of the tree page, checked to be a real PNG with content
     (${ORRERY_ARTIFACT_DIR:-build/artifacts}/e2e_tree.png)
  5. the OAuth round trip: both URLs in Chromium's performance (network) log, and the
     server's login cookie jupyterhub-user-<name>
  6. the progress stream read once with http.client: it ends with "ready": true
  7. "Stop My Server" on the home page -> the API shows no server, /hub/api/proxy has no
     /user/<name>/ route, and no process with JUPYTERHUB_USER=<name> is left (20 s)

Needs chromium, chromium-driver, python3-selenium, jupyterhub and python3-notebook
(scripts/install-deps); exits 77 (ctest: skipped) when they are missing.
Run: ctest -R test_browser (tests/e2e.cmake), or by hand:
  ORRERY_BIN_DIR=build/bin NODE_PATH=/usr/share/nodejs /usr/bin/python3 tests/e2e/test_browser.py
ORRERY_KEEP_TEST_DIRS=1 keeps the stack's directory (service and server logs).
"""
import http.client
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "api"))
from stack import Stack  # noqa: E402

SKIP = 77
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SPAWN_TIMEOUT = 120          # s: one real notebook server on a busy 2-core machine

failures = []


def check(cond, what, detail=""):
    if cond:
        print("ok   ", what, flush=True)
    else:
        print("FAIL ", what, detail, flush=True)
        failures.append(what)
    return cond


def wait_until(fn, timeout, interval=0.2):
    """fn()'s first truthy value within timeout s, else None."""
    end = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > end:
            return None
        time.sleep(interval)


def prerequisites():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER, "/usr/bin/jupyterhub-singleuser") if not os.path.exists(p)]
    import importlib.util
    if importlib.util.find_spec("selenium") is None:
        missing.append("python3-selenium")
    try:
        r = subprocess.run(["/usr/bin/python3", "-c", "import notebook.notebookapp"], capture_output=True, timeout=60)
        if r.returncode != 0:
            missing.append("python3-notebook")
    except OSError:
        missing.append("python3-notebook")
    return missing


# ---------------------------------------------------------------- browser

def browser(profile_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile_dir,
              "--window-size=1280,900", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-extensions"):
        opts.add_argument(a)
    # Network.* events, to see every URL the browser went through (redirects included)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    return drv


class Network:
    """Every URL requested so far, from the performance log (which empties on read)."""

    def __init__(self, drv):
        self.drv = drv
        self.urls = []

    def read(self):
        for entry in self.drv.get_log("performance"):
            try:
                msg = json.loads(entry["message"])["message"]
            except (KeyError, ValueError):
                continue
            if msg.get("method") == "Network.requestWillBeSent":
                self.urls.append(msg["params"]["request"]["url"])
        return self.urls

    def seen(self, fragment):
        return [u for u in self.read() if fragment in urllib.parse.urlsplit(u).path]


def path_of(drv):
    return urllib.parse.urlsplit(drv.current_url).path


# ---------------------------------------------------------------- checks

def png_ok(path):
    """(ok, detail): a PNG of a real size whose pixels are not all alike."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return False, str(e)
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return False, "not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    try:
        distinct = len(set(zlib.decompress(idat)))
    except zlib.error as e:
        return False, "bad image data: %s" % e
    detail = "%dx%d, %d bytes, %d distinct byte values" % (w, h, len(data), distinct)
    return w >= 200 and h >= 200 and len(data) > 5000 and distinct >= 16, detail


def user_processes(name):
    """pid -> pgid of every process whose environment has JUPYTERHUB_USER=<name>."""
    want = b"JUPYTERHUB_USER=" + name.encode()
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
            if want in env:
                out[int(d)] = os.getpgid(int(d))
        except OSError:
            continue
    return out


def kill_user_processes(name):
    """Last resort after a failure: no server of this test may outlive it."""
    procs = user_processes(name)
    me = os.getpgrp()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pg in set(procs.values()):
            if pg != me:
                try:
                    os.killpg(pg, sig)
                except OSError:
                    pass
        if not wait_until(lambda: not user_processes(name), 5):
            continue
        break
    return sorted(procs)


def progress_events(s, name, token, timeout=30):
    """The events of one read of the progress stream (status, [event dicts])."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=timeout)
    try:
        conn.request("GET", "/hub/api/users/%s/server/progress" % name,
                     headers={"Authorization": "token " + token, "Accept": "text/event-stream"})
        r = conn.getresponse()
        if r.status != 200:
            return r.status, [r.read()[:300]]
        events = []
        while True:
            line = r.fp.readline()
            if not line:
                break
            line = line.strip()
            if line.startswith(b"data:"):
                ev = json.loads(line[5:].strip())
                events.append(ev)
                if ev.get("ready") or ev.get("failed"):
                    break
        return r.status, events
    finally:
        conn.close()


# ---------------------------------------------------------------- the test

def run(s, drv, name, password, admin, artifacts):
    from selenium.webdriver.common.by import By
    net = Network(drv)
    base = "http://127.0.0.1:%d" % s.port

    # 1. the user
    r = s.api("POST", "/users", {"usernames": [name]}, token=admin)
    check(r.status == 201, "user %s created" % name, repr(r))
    r = s.api("PATCH", "/users/" + name, {"password": password}, token=admin)
    if not check(r.status == 200, "password set", repr(r)):
        return

    # 2. sign in
    drv.get(base + "/hub/login")
    check("<form" in drv.page_source and drv.find_elements(By.NAME, "password"), "login page has the form")
    drv.find_element(By.NAME, "username").send_keys(name)
    drv.find_element(By.NAME, "password").send_keys(password)
    buttons = drv.find_elements(By.CSS_SELECTOR, "form [type=submit]")
    if buttons:
        buttons[0].click()
    else:
        drv.find_element(By.NAME, "password").submit()
    if not check(wait_until(lambda: path_of(drv) == "/hub/home", 20), "signed in: the browser is on /hub/home",
                 drv.current_url):
        return
    cookies = {c["name"] for c in drv.get_cookies()}
    check("jupyterhub-hub-login" in cookies, "hub login cookie set", sorted(cookies))
    check(name in drv.find_element(By.TAG_NAME, "body").text, "home page names the user")

    # 3. start the server from the home page
    start = drv.find_elements(By.ID, "start") or drv.find_elements(By.LINK_TEXT, "Start My Server")
    if not check(start and "Start My Server" in start[0].text, "home page has \"Start My Server\"",
                 drv.find_element(By.TAG_NAME, "body").text[:300]):
        return
    t0 = time.time()
    start[0].click()
    tree = "/user/%s/tree" % urllib.parse.quote(name)
    landed = wait_until(lambda: path_of(drv).startswith(tree), SPAWN_TIMEOUT, 0.5)
    if not check(landed, "the browser lands on %s (%.1f s after the click)" % (tree, time.time() - t0),
                 "%s; page: %s" % (drv.current_url, drv.find_element(By.TAG_NAME, "body").text[:400])):
        net.read()
        print("      URLs so far:", [u for u in net.urls if u.startswith(base)][-20:])
        return
    check(net.seen("/hub/spawn"), "went through /hub/spawn")
    check(net.seen("/hub/spawn-pending/" + name), "went through /hub/spawn-pending/%s (progress page)" % name,
          [u for u in net.urls if "/hub/" in u][-10:])

    # the notebook's tree page itself (classic UI), not an error page
    def tree_page():
        if drv.find_elements(By.ID, "notebook_list"):
            return "#notebook_list"
        if "Home Page" in drv.title:
            return "title %r" % drv.title
        return None
    what = wait_until(tree_page, 30, 0.5)
    check(what, "the notebook's file list is shown (%s)" % what, "title %r, url %s" % (drv.title, drv.current_url))

    # 4. screenshot
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "e2e_tree.png")
    drv.save_screenshot(shot)
    ok, detail = png_ok(shot)
    check(ok, "screenshot %s is a non-trivial PNG (%s)" % (shot, detail), detail)

    # 5. the OAuth round trip
    authorize = net.seen("/hub/api/oauth2/authorize")
    callback = net.seen("/user/%s/oauth_callback" % name)
    check(authorize, "the browser went through /hub/api/oauth2/authorize")
    check(authorize and "client_id=jupyterhub-user-" in authorize[0], "authorize asked for the server's client",
          authorize[:1])
    check(callback, "the browser went through /user/%s/oauth_callback" % name)
    check(callback and "code=" in callback[0], "the callback got a code", callback[:1])
    cookies = {c["name"] for c in drv.get_cookies()}
    check("jupyterhub-user-" + name in cookies, "the server's login cookie jupyterhub-user-%s is set" % name,
          sorted(cookies))

    # 6. the progress stream of a ready server: ends with ready
    st, events = progress_events(s, name, admin)
    check(st == 200 and events and events[-1].get("ready") is True, "progress stream ends with \"ready\": true",
          "%s %r" % (st, events[-3:]))
    check(events and events[-1].get("url") == "/user/%s/" % name, "its final event has the server's url",
          repr(events[-1:]))

    # 7. stop from the home page, then everything is gone
    drv.get(base + "/hub/home")
    stop = drv.find_elements(By.ID, "stop")
    if check(stop and "Stop My Server" in stop[0].text, "home page has \"Stop My Server\""):
        stop[0].click()
    else:  # still stop it, through the API, so the rest is checked
        s.api("DELETE", "/users/%s/server" % name, token=admin)

    def stopped():
        r = s.api("GET", "/users/" + name, token=admin)
        return r.status == 200 and "" not in (r.json().get("servers") or {})
    check(wait_until(stopped, 30), "the API shows no server after Stop")

    def route_gone():
        r = s.api("GET", "/proxy", token=admin)
        return r.status == 200 and not any(k.startswith("/user/%s/" % name) for k in r.json())
    check(wait_until(route_gone, 20), "GET /hub/api/proxy has no /user/%s/ route" % name)
    left = wait_until(lambda: not user_processes(name), 20)
    check(left, "no process with JUPYTERHUB_USER=%s is left" % name, sorted(user_processes(name)))
    drv.get(base + "/hub/home")
    check(wait_until(lambda: drv.find_elements(By.ID, "start") and "Start My Server" in
                     drv.find_element(By.ID, "start").text, 10),
          "home page offers \"Start My Server\" again")


def main():
    missing = prerequisites()
    if missing:
        print("SKIPPED: missing %s (scripts/install-deps installs them)" % ", ".join(missing))
        return SKIP
    artifacts = os.environ.get("ORRERY_ARTIFACT_DIR") or os.path.join(HERE, "..", "..", "build", "artifacts")
    name = "e2e" + secrets.token_hex(4)          # unique: its processes are found by name
    password = "e2e-" + secrets.token_hex(8)
    profile = tempfile.mkdtemp(prefix="orrery-e2e-chromium-")
    s = drv = None
    try:
        s = Stack(env={"JUPYTERHUB_SINGLEUSER_APP": "notebook.notebookapp.NotebookApp", "PATH": SYS_PATH})
        admin = s.token("admin", admin=True)
        drv = browser(profile)
        run(s, drv, name, password, admin, artifacts)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        failures.append("exception")
        if drv is not None:
            try:
                shot = os.path.join(artifacts, "e2e_failure.png")
                os.makedirs(artifacts, exist_ok=True)
                drv.save_screenshot(shot)
                print("      at %s; screenshot %s" % (drv.current_url, shot))
            except Exception:  # noqa: BLE001
                pass
    finally:
        if drv is not None:
            try:
                drv.quit()
            except Exception:  # noqa: BLE001
                pass
        if s is not None:
            if failures:
                print("---- orrery up output (tail)\n" + s.output()[-3000:])
            reports = s.stop()
            check(not reports, "no sanitizer reports in the services' logs", "\n".join(reports[:20]))
        killed = kill_user_processes(name)
        if killed:
            check(False, "no server processes after the stack stopped", "killed %s" % killed)
        shutil.rmtree(profile, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
