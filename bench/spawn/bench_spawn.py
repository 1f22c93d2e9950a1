#!/usr/bin/python3
"""bench/spawn: how fast servers start and stop, through Orrery and through JupyterHub 3.0.

Three parts, each on a fresh system in a temporary directory (removed at the end), on
127.0.0.1 with ports chosen free in 20000..32000:

  storm            `orrery up` whose spawner runs bin/orrery-standin (a stand-in for
                   jupyterhub-singleuser that starts in about a millisecond) instead of a
                   real server: ORRERY_SPAWNER_CMD="<bin>/orrery-standin --times-file
                   <dir>/times/%u", ORRERY_MAX_CONCURRENT_SPAWNS=--max-concurrent (default
                   2: the rest wait in the spawn queue, the backpressure the storm is
                   about) and
                   ORRERY_NODE_MAX_SERVERS=the user count (at least 100, the default, which
                   would refuse the rest of the storm). --users users (default
                   500) are created through the API (POST /hub/api/users, admin token);
                   then one thread per user, released together by a barrier, POSTs
                   /hub/api/users/NAME/server and waits for ready: a 201 is ready at once;
                   a 202 is followed by the progress stream (.../server/progress, SSE)
                   until the event with "ready": true (--wait poll: GET the user model
                   every --poll-ms instead). Then all are DELETEd the same way (gone = no
                   "" in the user's servers). Reported: spawns/s (servers ready / time
                   from the first POST to the last ready), and per spawn the control
                   plane's overhead = (ready seen - POST sent) - (the stand-in's listening
                   time - its exec time, from its times file): p50, p99, max; plus the
                   parts before exec (POST -> exec) and after listening (listen -> ready
                   seen). Queueing dominates that figure, so N of the last line is the
                   control plane's own work per spawn: from leaving the queue (the
                   record's started_us) to ready (ready_us), minus the stand-in's start.
  orrery-real      --real users (default 20) start real jupyterhub-singleuser servers at
                   once through `orrery up` (the spawner's default command, classic
                   notebook: JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp),
                   measured exactly like the JupyterHub baseline: POST, then GET the user
                   model every 0.1 s until servers[""].ready; the figure is the time until
                   all are ready. Then DELETE, polled every 0.1 s until gone.
  jupyterhub-real  the same through Debian's JupyterHub 3.0 (`/usr/bin/python3 -m
                   jupyterhub`), configured as /work/shared/reference/jupyterhub-baseline.md
                   says (DummyAuthenticator, SimpleLocalProcessSpawner with homes in the
                   temporary directory, --allow-root, start/http timeouts 180 s, its own
                   CHP started by the hub with NODE_PATH=/usr/share/nodejs, sqlite), on
                   private ports; the one addition is a pre_spawn_hook that gives each
                   server a free port below 32768 (JupyterHub's own choice would come
                   from the ephemeral range). Requests go to the hub's port with a
                   hub-generated admin token (1-round hash, as bench/api does).

Orrery is driven at the gateway's own port, JupyterHub at the hub's, so both sides skip
their proxy for API calls. `--only` picks parts (comma list of storm, orrery-real,
jupyterhub-real; aliases: orrery = storm,orrery-real; jupyterhub = jupyterhub-real;
real = orrery-real,jupyterhub-real). The last line is always

  spawn overhead p99 ms: N; 20 real servers ready orrery/jupyterhub: R

N from the storm, R = Orrery's all-ready time / JupyterHub's (2 decimals); "n/a" where a
part did not run or failed.

Every process is stopped at the end, also on Ctrl-C or error: the stacks with SIGTERM,
then SIGKILL for anything of their process trees left; then any single-user server (or
stand-in) still running with this run's ports or directory in its environment is killed
by process group (SIGTERM, SIGKILL after 5 s), and the run says so.
Standard library only; run with Debian's /usr/bin/python3. Never part of ctest.
"""
import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "api"))
import bench_api as ba  # noqa: E402  (ports, HTTP, process trees: shared with bench/api)

say = ba.say
SYS_PATH = ba.SYS_PATH
SINGLEUSER_APP = "notebook.notebookapp.NotebookApp"
PARTS = ("storm", "orrery-real", "jupyterhub-real")
ALIASES = {"orrery": ["storm", "orrery-real"], "jupyterhub": ["jupyterhub-real"],
           "real": ["orrery-real", "jupyterhub-real"], "all": list(PARTS)}


class Stop(BaseException):
    pass


def _on_signal(signum, frame):
    raise Stop("signal %d" % signum)


# ---------------------------------------------------------------- HTTP

def request(port, method, path, token=None, body=None, timeout=60):
    """(status, headers dict lower-cased, body bytes)."""
    return ba.http_req_headers(port, method, path, token, body, timeout)


def user_server(port, token, name):
    """The default server's model of a user, None when it has none, or raises."""
    st, _, body = request(port, "GET", "/hub/api/users/" + name, token, timeout=30)
    if st != 200:
        raise RuntimeError("GET /hub/api/users/%s gave %d %r" % (name, st, body[:200]))
    return (json.loads(body).get("servers") or {}).get("")


def read_progress(port, token, name, timeout=300):
    """Reads the progress stream until its final event; (time seen, event) or raises.
    None when the stream is not available (HTTP status other than 200)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/hub/api/users/%s/server/progress" % name,
                     headers={"Authorization": "token " + token, "Accept": "text/event-stream"})
        r = conn.getresponse()
        if r.status != 200:
            r.read()
            return None
        while True:
            line = r.fp.readline()
            if not line:
                raise RuntimeError("progress stream of %s ended without a final event" % name)
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            ev = json.loads(line[5:].strip() or b"{}")
            if ev.get("ready") or ev.get("failed"):
                return time.time(), ev
    finally:
        conn.close()


def pct(values, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def ms(x):
    return "n/a" if x is None else ("%.1f" % (x * 1000.0))


def secs(x):
    return "n/a" if x is None else "%.2f" % x


# ---------------------------------------------------------------- spawning and stopping

class Outcome:
    def __init__(self, name):
        self.name = name
        self.t_sent = None       # POST/DELETE sent
        self.status = None       # its HTTP status
        self.t_reply = None
        self.t_done = None       # ready seen / gone seen
        self.error = None
        self.retries = 0         # 429s


def _spawn_one(o, port, token, wait, poll_s, deadline, barrier):
    try:
        barrier.wait()
        o.t_sent = time.time()
        while True:
            st, hdrs, body = request(port, "POST", "/hub/api/users/%s/server" % o.name, token, timeout=120)
            if st != 429:
                break
            o.retries += 1
            time.sleep(min(5.0, float(hdrs.get("retry-after") or 1)))
            if time.time() > deadline:
                raise RuntimeError("still 429 at the deadline")
        o.t_reply = time.time()
        o.status = st
        if st not in (201, 202):
            raise RuntimeError("POST server gave %d %r" % (st, body[:200]))
        if wait == "progress":
            if st == 201:
                o.t_done = o.t_reply
                return
            got = read_progress(port, token, o.name, timeout=max(1.0, deadline - time.time()))
            if got is not None:
                t, ev = got
                if ev.get("failed"):
                    raise RuntimeError("spawn failed: %s" % ev.get("message"))
                o.t_done = t
                return
            # no stream (e.g. 400 because it became ready in between): poll
        while time.time() < deadline:
            srv = user_server(port, token, o.name)
            if srv and srv.get("ready"):
                o.t_done = time.time()
                return
            if srv is None and o.t_reply and time.time() - o.t_reply > 1.0:
                raise RuntimeError("server gone while waiting for ready (start failed?)")
            time.sleep(poll_s)
        raise RuntimeError("not ready by the deadline")
    except Exception as e:  # noqa: BLE001 - reported per user
        o.error = str(e)


def _stop_one(o, port, token, poll_s, deadline, barrier):
    try:
        barrier.wait()
        o.t_sent = time.time()
        st, _, body = request(port, "DELETE", "/hub/api/users/%s/server" % o.name, token, timeout=120)
        o.t_reply = time.time()
        o.status = st
        if st not in (202, 204):
            raise RuntimeError("DELETE server gave %d %r" % (st, body[:200]))
        while time.time() < deadline:
            if user_server(port, token, o.name) is None:
                o.t_done = time.time()
                return
            time.sleep(poll_s)
        raise RuntimeError("not stopped by the deadline")
    except Exception as e:  # noqa: BLE001
        o.error = str(e)


def run_all(names, target, *args, timeout=600):
    """Runs target(outcome, *args, deadline, barrier) in one thread per name, released
    together; returns the outcomes."""
    threading.stack_size(512 * 1024)
    outs = [Outcome(n) for n in names]
    barrier = threading.Barrier(len(names) + 1)
    deadline = time.time() + timeout
    threads = [threading.Thread(target=target, args=(o, *args, deadline, barrier), daemon=True) for o in outs]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join(max(0.0, deadline + 30 - time.time()))
    return outs


def summarize(what, outs):
    """Prints the per-user spread; returns (all-done time from the first send, ok count)."""
    ok = [o for o in outs if o.error is None and o.t_done is not None]
    bad = [o for o in outs if o not in ok]
    statuses = {}
    for o in outs:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    t0 = min(o.t_sent for o in outs if o.t_sent is not None)
    per = [o.t_done - o.t_sent for o in ok]
    reply = [o.t_reply - o.t_sent for o in outs if o.t_reply]
    total = (max(o.t_done for o in ok) - t0) if ok else None
    say("   %s: %d/%d done, all in %s s; per user min/median/max %s/%s/%s s; HTTP status %s; "
        "reply after median %s s, max %s s%s"
        % (what, len(ok), len(outs), secs(total), secs(min(per) if per else None), secs(pct(per, 50)),
           secs(max(per) if per else None),
           ", ".join("%s x%d" % (k, v) for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))),
           secs(pct(reply, 50)), secs(max(reply) if reply else None),
           ("; 429 retries %d" % sum(o.retries for o in outs)) if any(o.retries for o in outs) else ""))
    for o in bad[:5]:
        say("     %s: %s" % (o.name, o.error or "no result"))
    if len(bad) > 5:
        say("     ... and %d more failed" % (len(bad) - 5))
    return (total if not bad else None), len(ok)


# ---------------------------------------------------------------- leftovers

def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    except OSError:
        return None


def kill_leftovers(markers, label):
    """Kills, by process group, every process with JUPYTERHUB_USER in its environment whose
    environment, command line or working directory mentions one of `markers` (this run's
    ports as ":PORT/" and its directory). Returns the pids found."""
    found = {}
    me = os.getpgrp()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        pid = int(d)
        env = _environ(pid)
        if not env or b"JUPYTERHUB_USER" not in env:
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
            cwd = os.readlink("/proc/%d/cwd" % pid).encode()
        except OSError:
            continue
        hay = b"\0".join([env.get(b"JUPYTERHUB_API_URL", b""), env.get(b"JUPYTERHUB_SERVICE_URL", b""), cmd, cwd])
        if any(m.encode() in hay for m in markers):
            try:
                pg = os.getpgid(pid)
            except OSError:
                continue
            if pg != me:
                found[pid] = pg
    if not found:
        return []
    say("   %s: %d single-user process(es) still running after the stack stopped: %s; killing by process group"
        % (label, len(found), sorted(found)))
    groups = set(found.values())
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        for pg in groups:
            try:
                os.killpg(pg, sig)
            except OSError:
                pass
        end = time.time() + wait
        while time.time() < end and any(ba.proc_stat(p) for p in found):
            time.sleep(0.1)
    return sorted(found)


# ---------------------------------------------------------------- systems

class OrreryStack:
    name = "orrery"

    def __init__(self, bin_dir, root, extra_env):
        self.bin = bin_dir
        self.dir = tempfile.mkdtemp(prefix="orrery-", dir=root)
        self.state = self.dir + "/state"
        self.port = ba.free_port()
        self.api_port = ba.free_port()        # the gateway
        self.redis_port = ba.free_port()
        self.bus_port = ba.free_port(3)
        self.proxy_api_port = ba.free_port()
        self.extra_env = extra_env
        self.started = None

    def markers(self):
        return [":%d/" % p for p in (self.port, self.api_port)] + [self.dir]

    def token(self, user, admin=False):
        cmd = [os.path.join(self.bin, "orrery"), "token", "create", "--user", user, "--state-dir", self.state]
        if admin:
            cmd.append("--admin")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("orrery token create failed: " + out.stderr)
        return out.stdout.strip()

    def start(self):
        env = dict(os.environ)
        for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(k, None)
        env.update({"PATH": SYS_PATH, "NODE_PATH": "/usr/share/nodejs"})
        env.update(self.extra_env)
        argv = [os.path.join(self.bin, "orrery"), "up", "--port", str(self.port), "--gateway-port", str(self.api_port),
                "--redis-port", str(self.redis_port), "--bus-port", str(self.bus_port),
                "--proxy-api-port", str(self.proxy_api_port), "--state-dir", self.state]
        # the spawner stops the servers when asked to exit: give it the stop's full grace
        self.started = ba.spawn("orrery up", argv, self.dir + "/up.out", cwd=self.dir, env=env, term=signal.SIGTERM)
        self.started.grace = 60
        end = time.time() + 30
        while True:
            with open(self.dir + "/up.out", errors="replace") as f:
                if "Press Ctrl-C" in f.read():
                    break
            if self.started.proc.poll() is not None or time.time() > end:
                with open(self.dir + "/up.out", errors="replace") as f:
                    raise RuntimeError("orrery up did not come up:\n" + f.read()[-3000:])
            time.sleep(0.1)
        ba.wait_http(self.api_port, "/hub/api/", 15, self.started.proc, "orrery gateway")
        self.started.remember()
        self.admin = self.token("admin", admin=True)

    def create_users(self, names):
        for i in range(0, len(names), 200):
            st, _, body = request(self.api_port, "POST", "/hub/api/users", self.admin, {"usernames": names[i:i + 200]})
            if st != 201:
                raise RuntimeError("orrery: POST /hub/api/users gave %d %r" % (st, body[:300]))

    def stop(self):
        if self.started:
            self.started.remember()
        return self.started.stop() if self.started else []


class JupyterHubStack:
    name = "jupyterhub"

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="jupyterhub-", dir=root)
        self.port = ba.free_port()
        self.api_port = ba.free_port()        # the hub
        self.proxy_api_port = ba.free_port()
        self.started = None

    def markers(self):
        return [":%d/" % p for p in (self.port, self.api_port)] + [self.dir]

    def start(self):
        d = self.dir
        self.service_token = secrets.token_hex(32)
        proxy_token = secrets.token_hex(32)
        # /work/shared/reference/jupyterhub-baseline.md's configuration, on private ports
        # and paths, plus the pre_spawn_hook for server ports below 32768
        conf = """\
import random, socket
c = get_config()  # noqa
HERE = %(d)r
c.JupyterHub.bind_url = "http://127.0.0.1:%(port)d"      # public proxy (CHP) port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = %(hub_port)d
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%(api_port)d"
c.ConfigurableHTTPProxy.pid_file = HERE + "/jupyterhub-proxy.pid"
c.JupyterHub.pid_file = HERE + "/jupyterhub.pid"
c.JupyterHub.db_url = "sqlite:///" + HERE + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = HERE + "/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.DummyAuthenticator.password = "bench-password"
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = HERE + "/home/{username}"
c.Spawner.args = ["--allow-root"]          # we run as root on this box
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.JupyterHub.services = [{"name": "bench", "api_token": %(token)r}]
c.JupyterHub.load_roles = [{
    "name": "bench-admin",
    "description": "all admin scopes for the benchmark service",
    "scopes": ["admin-ui", "admin:users", "admin:servers", "tokens", "admin:groups",
               "list:services", "read:services", "read:hub", "proxy", "shutdown",
               "access:services", "access:servers", "read:roles", "read:metrics"],
    "services": ["bench"],
}]

_given = set()
def _port_below_32768(spawner):
    # JupyterHub would pick a random ephemeral port (>= 32768); this run keeps below it
    for _ in range(500):
        p = random.randint(20000, 32000)
        if p in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        _given.add(p)
        spawner.port = p
        return
c.Spawner.pre_spawn_hook = _port_below_32768
""" % {"port": self.port, "hub_port": self.api_port, "api_port": self.proxy_api_port, "d": d,
       "token": self.service_token}
        with open(d + "/jupyterhub_config.py", "w") as f:
            f.write(conf)
        env = dict(os.environ)
        for k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(k, None)
        env.update({"PATH": SYS_PATH, "CONFIGPROXY_AUTH_TOKEN": proxy_token, "NODE_PATH": "/usr/share/nodejs",
                    "JUPYTERHUB_SINGLEUSER_APP": SINGLEUSER_APP})
        self.started = ba.spawn("jupyterhub", ["/usr/bin/python3", "-m", "jupyterhub", "-f", d + "/jupyterhub_config.py"],
                                d + "/hub.log", cwd=d, env=env, term=signal.SIGTERM)
        self.started.grace = 60
        ba.wait_http(self.api_port, "/hub/api/", 90, self.started.proc, "jupyterhub")
        ba.wait_http(self.port, "/hub/api/", 30, self.started.proc, "jupyterhub's proxy")
        self.started.remember()
        st, _, body = request(self.api_port, "POST", "/hub/api/users/admin/tokens", self.service_token,
                              {"note": "bench-spawn"})
        if st not in (200, 201):
            raise RuntimeError("jupyterhub: POST /users/admin/tokens gave %d %r" % (st, body[:300]))
        self.admin = json.loads(body)["token"]

    def create_users(self, names):
        st, _, body = request(self.api_port, "POST", "/hub/api/users", self.admin, {"usernames": names})
        if st != 201:
            raise RuntimeError("jupyterhub: POST /hub/api/users gave %d %r" % (st, body[:300]))

    def stop(self):
        if self.started:
            self.started.remember()
        return self.started.stop() if self.started else []


def stop_system(s, label):
    left = s.stop()
    if left:
        say("   %s: killed leftover processes of its tree: %s" % (label, left))
    kill_leftovers(s.markers(), label)


def spawner_has_cmd(bin_dir):
    """None when orrery-spawner knows ORRERY_SPAWNER_CMD, else why not."""
    exe = os.path.join(bin_dir, "orrery-spawner")
    try:
        out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=20)
    except OSError as e:
        return "cannot run %s: %s" % (exe, e)
    if "SPAWNER_CMD" not in out.stdout + out.stderr:
        return ("%s --help lists no ORRERY_SPAWNER_CMD setting: this spawner cannot start servers yet "
                "(the spawner's server lifecycle has not landed)" % exe)
    return None


# ---------------------------------------------------------------- parts

def part_storm(args, root, results):
    say("")
    say("== storm: %d stand-in servers through orrery up (wait: %s)" % (args.users, args.wait))
    why = spawner_has_cmd(args.bin_dir)
    if why:
        say("   ERROR: " + why)
        return
    standin = os.path.join(args.bin_dir, "orrery-standin")
    if not os.access(standin, os.X_OK):
        say("   ERROR: no %s (build the orrery-standin target)" % standin)
        return
    times = tempfile.mkdtemp(prefix="times-", dir=root)
    if " " in standin + times:
        say("   ERROR: ORRERY_SPAWNER_CMD is split on spaces, and %s or %s has one" % (standin, times))
        return
    cmd = "%s --times-file %s/%%u" % (standin, times)
    if args.standin_delay_ms:
        cmd += " --start-delay-ms %d" % args.standin_delay_ms
    env = {"ORRERY_SPAWNER_CMD": cmd, "ORRERY_MAX_CONCURRENT_SPAWNS": str(args.max_concurrent or 2),
           # the node's server count limit (default 100) would refuse the rest of the storm
           "ORRERY_NODE_MAX_SERVERS": str(max(100, args.users))}
    s = OrreryStack(args.bin_dir, root, env)
    results["_current"].append(s)
    names = ["storm%04d" % i for i in range(args.users)]
    try:
        t = time.time()
        s.start()
        s.create_users(names)
        say("   stack up and %d users created in %.1f s (gateway :%d; %s)"
            % (len(names), time.time() - t, s.api_port, ", ".join("%s=%s" % kv for kv in sorted(env.items()))))
        outs = run_all(names, _spawn_one, s.api_port, s.admin, args.wait, args.poll_ms / 1000.0,
                       timeout=args.timeout)
        total, nok = summarize("spawn", outs)
        ok = [o for o in outs if o.error is None and o.t_done is not None]
        over, before, after, own = [], [], [], []
        missing = 0
        for o in ok:
            try:
                with open(os.path.join(times, o.name)) as f:
                    lines = [ln.split() for ln in f if ln.strip()]
                exec_us, listen_us = int(lines[-1][0]), int(lines[-1][1])
            except (OSError, IndexError, ValueError):
                missing += 1
                continue
            standin_s = (listen_us - exec_us) / 1e6
            own.append(standin_s)
            over.append((o.t_done - o.t_sent) - standin_s)
            before.append(exec_us / 1e6 - o.t_sent)
            after.append(o.t_done - listen_us / 1e6)
        if ok:
            span = max(o.t_done for o in ok) - min(o.t_sent for o in outs if o.t_sent)
            rate = len(ok) / span if span > 0 else None
            say("   spawns/s: %.1f (%d ready in %.2f s from the first POST)" % (rate or 0, len(ok), span))
            results["spawns_per_s"] = rate
        lat = [o.t_done - o.t_sent for o in ok]
        say("   POST -> ready seen: p50 %s ms, p99 %s ms, max %s ms" % (ms(pct(lat, 50)), ms(pct(lat, 99)),
                                                                       ms(max(lat) if lat else None)))
        say("   stand-in's own start (exec -> listening): p50 %s ms, p99 %s ms" % (ms(pct(own, 50)), ms(pct(own, 99))))
        say("   control plane overhead per spawn (POST -> ready seen, minus the stand-in's own start): "
            "p50 %s ms, p99 %s ms, max %s ms" % (ms(pct(over, 50)), ms(pct(over, 99)), ms(max(over) if over else None)))
        say("     of which POST -> exec: p50 %s ms, p99 %s ms; listening -> ready seen: p50 %s ms, p99 %s ms"
            % (ms(pct(before, 50)), ms(pct(before, 99)), ms(pct(after, 50)), ms(pct(after, 99))))
        # the control plane's own work per spawn, from leaving the queue (the record's
        # started_us) to ready (ready_us), minus the stand-in's own start: queueing is the
        # backpressure the storm asked for, reported above as POST -> ready
        own_by_name = {}
        for o in ok:
            try:
                with open(os.path.join(times, o.name)) as f:
                    ln = [x.split() for x in f if x.strip()][-1]
                own_by_name[o.name] = (int(ln[1]) - int(ln[0])) / 1e6
            except (OSError, IndexError, ValueError):
                pass
        work = []
        for o in ok:
            out = subprocess.run(["redis-cli", "-p", str(s.redis_port), "--raw", "HMGET",
                                  "orr:{u:%s}:server:" % o.name, "started_us", "ready_us"],
                                 capture_output=True, text=True, timeout=10).stdout.split()
            if len(out) == 2 and o.name in own_by_name:
                work.append((int(out[1]) - int(out[0])) / 1e6 - own_by_name[o.name])
        say("   control plane work per spawn (left the queue -> ready, minus the stand-in's own start): "
            "p50 %s ms, p99 %s ms, max %s ms (MAX_CONCURRENT_SPAWNS %s)"
            % (ms(pct(work, 50)), ms(pct(work, 99)), ms(max(work) if work else None),
               env["ORRERY_MAX_CONCURRENT_SPAWNS"]))
        if missing:
            say("   WARNING: %d ready servers left no line in their times file" % missing)
        if work and nok == len(outs) and not missing:
            results["overhead_p99"] = pct(work, 99)
            results["burst_p99"] = pct(over, 99)
        outs = run_all(names, _stop_one, s.api_port, s.admin, args.poll_ms / 1000.0, timeout=args.timeout)
        total, nok = summarize("stop", outs)
        if total:
            say("   stops/s: %.1f" % (nok / total))
    except Exception as e:  # noqa: BLE001
        say("   ERROR: %s" % e)
    finally:
        stop_system(s, "storm stack")
        results["_current"].remove(s)


def part_real(args, root, results, which):
    say("")
    names = ["real%02d" % i for i in range(1, args.real + 1)]
    if which == "orrery":
        say("== orrery-real: %d jupyterhub-singleuser servers at once through orrery up" % args.real)
        why = spawner_has_cmd(args.bin_dir)
        if why:
            say("   ERROR: " + why)
            return
        s = OrreryStack(args.bin_dir, root, {"JUPYTERHUB_SINGLEUSER_APP": SINGLEUSER_APP})
    else:
        say("== jupyterhub-real: %d jupyterhub-singleuser servers at once through JupyterHub 3.0" % args.real)
        if not os.path.exists("/usr/bin/jupyterhub-singleuser"):
            say("   ERROR: no /usr/bin/jupyterhub-singleuser (apt-get install jupyterhub python3-notebook)")
            return
        s = JupyterHubStack(root)
    results["_current"].append(s)
    try:
        t = time.time()
        s.start()
        s.create_users(names)
        say("   up and %d users created in %.1f s (API port %d)" % (len(names), time.time() - t, s.api_port))
        outs = run_all(names, _spawn_one, s.api_port, s.admin, "poll", 0.1, timeout=args.timeout)
        total, _ = summarize("start (POST, then GET the user every 0.1 s until ready)", outs)
        results[which + "_ready"] = total
        outs = run_all(names, _stop_one, s.api_port, s.admin, 0.1, timeout=args.timeout)
        total, _ = summarize("stop (DELETE, then GET the user every 0.1 s until gone)", outs)
        results[which + "_stopped"] = total
    except Exception as e:  # noqa: BLE001
        say("   ERROR: %s" % e)
    finally:
        stop_system(s, which)
        results["_current"].remove(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.environ.get("ORRERY_BIN_DIR", os.path.join(HERE, "../../build/bin")),
                    help="the build's bin directory (orrery, the services, orrery-standin)")
    ap.add_argument("--only", default="all",
                    help="parts, comma-separated: storm, orrery-real, jupyterhub-real (aliases orrery, jupyterhub, real, all)")
    ap.add_argument("--users", type=int, default=500, help="stand-in servers in the storm")
    ap.add_argument("--real", type=int, default=20, help="real servers per system")
    ap.add_argument("--wait", choices=("progress", "poll"), default="progress",
                    help="storm: wait for ready on the progress stream or by polling the user model")
    ap.add_argument("--poll-ms", type=int, default=20, help="storm: polling interval (also for stops)")
    ap.add_argument("--max-concurrent", type=int, default=0,
                    help="storm: ORRERY_MAX_CONCURRENT_SPAWNS (default 2: the engine's work per spawn is measured, "
                         "not its queueing; 64 gives more spawns/s and longer waits)")
    ap.add_argument("--standin-delay-ms", type=int, default=0, help="storm: the stand-in's own start-up delay")
    ap.add_argument("--timeout", type=float, default=600, help="deadline of each start or stop phase, s")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    args.bin_dir = os.path.abspath(args.bin_dir)
    parts = []
    for p in args.only.split(","):
        p = p.strip()
        for q in ALIASES.get(p, [p]):
            if q not in PARTS:
                ap.error("unknown part %r" % p)
            if q not in parts:
                parts.append(q)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    root = tempfile.mkdtemp(prefix="bench-spawn-")
    results = {"_current": []}
    say("bench/spawn: parts %s; bin %s; temporary directory %s" % (",".join(parts), args.bin_dir, root))
    say("machine: %d CPUs, %s; load average %s" % (os.cpu_count(), ba.cpu_model(),
                                                   " ".join(open("/proc/loadavg").read().split()[:3])))
    status = 0
    try:
        for p in PARTS:
            if p not in parts:
                continue
            if p == "storm":
                part_storm(args, root, results)
            elif p == "orrery-real":
                part_real(args, root, results, "orrery")
            else:
                part_real(args, root, results, "jupyterhub")
    except (KeyboardInterrupt, Stop) as e:
        say("\ninterrupted (%s); stopping everything" % (e or "Ctrl-C"))
        status = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for s in list(results["_current"]):
            stop_system(s, s.name)
        kill_leftovers([root], "this run")
        if args.keep:
            say("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

    o, j = results.get("orrery_ready"), results.get("jupyterhub_ready")
    say("")
    say("summary: %d real servers ready in orrery %s s, jupyterhub %s s; stopped in orrery %s s, jupyterhub %s s"
        % (args.real, secs(o), secs(j), secs(results.get("orrery_stopped")), secs(results.get("jupyterhub_stopped"))))
    if results.get("spawns_per_s"):
        say("storm: %.1f spawns/s" % results["spawns_per_s"])
    wanted = {"storm": "overhead_p99", "orrery-real": "orrery_ready", "jupyterhub-real": "jupyterhub_ready"}
    if status == 0 and any(results.get(wanted[p]) is None for p in parts):
        status = 1
    ov = results.get("overhead_p99")
    say("spawn overhead p99 ms: %s; %d real servers ready orrery/jupyterhub: %s"
        % ("n/a" if ov is None else "%.1f" % (ov * 1000.0), args.real,
           "%.2f" % (o / j) if o and j else "n/a"))
    return status


if __name__ == "__main__":
    sys.exit(main())
