"""Servers as Kubernetes pods, end to end, against a FAKE Kubernetes API server.

No cluster can run on the test machines, so the spawner's Kubernetes backend talks to
tests/fixtures/k8s_fake_api/fake_k8s_api.py, a small fake of the API that follows the
documented behaviour (201, 409, 404, list+watch with resourceVersion, ADDED / MODIFIED /
DELETED). With --run-pods the fake also plays a FAKE kubelet: it runs a pod's command as
a local process with the pod's environment on a loopback "pod IP". Everything else is
real: `orrery up` (redis-server, bus, services, configurable-http-proxy), with the
spawner's NODE_SOURCE=kubernetes, so nodes come from the fake's Node objects, the real
scheduler places the pod (nodeName), and the server (bench/spawn's stand-in) is reached
through the real proxy.

Checks: the pod the spawner creates carries the profile's requests/limits, nodeName and
the single-user environment; the server becomes ready and answers through the proxy; a
pod whose container dies (exit 3) fails its server with the reason; stop deletes the pod
(the watch sees it DELETED) and the route; a PVC profile creates the user's claim, which
outlives the server.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from stack import BIN, Checks, Stack, free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "..", "fixtures", "k8s_fake_api", "fake_k8s_api.py")
TOKEN = "fake-token-servers"
check = Checks()


def fake_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, (json.loads(body) if body else None)


def wait_state(s, user, states, timeout, server=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = s.record(user, server)
        if r.get("state") in states:
            return r
        time.sleep(0.1)
    return s.record(user, server)


def main():
    work = tempfile.mkdtemp(prefix="orrery-k8s-")
    nodes = [json.load(open(os.path.join(HERE, "..", "k8s_expected", "node_plain.json")))["node"]]
    with open(work + "/nodes.json", "w") as f:
        json.dump(nodes, f)
    with open(work + "/token", "w") as f:
        f.write(TOKEN + "\n")
    fport = free_port()
    fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--port", str(fport), "--token", TOKEN, "--nodes",
                             work + "/nodes.json", "--run-pods", "--pod-log-dir", work + "/pods", "--run-delay-ms", "200"],
                            stdout=open(work + "/fake.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if fake_get(fport, "/api/v1/namespaces/default/pods")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    profiles = [
        {"slug": "small", "default": True, "cpu_guarantee": 0.5, "cpu_limit": 1, "mem_guarantee": "256M",
         "mem_limit": "512M"},
        {"slug": "stored", "kubernetes": {"storage": {"type": "pvc", "capacity": "1Gi"}}},
    ]
    env = {
        "ORRERY_NODE_SOURCE": "kubernetes", "ORRERY_NODE_HEARTBEAT_MS": "300",
        "ORRERY_K8S_API_URL": "http://127.0.0.1:%d" % fport, "ORRERY_K8S_TOKEN_FILE": work + "/token",
        "ORRERY_K8S_CA_FILE": "", "ORRERY_K8S_NAMESPACE": "default", "ORRERY_K8S_IMAGE": "debian-jupyter:test",
        "ORRERY_SERVER_PROFILES": json.dumps(profiles),
        "ORRERY_SPAWNER_CMD": os.path.abspath(os.path.join(BIN, "orrery-standin")),
    }
    s = Stack(env=env)
    try:
        for u in ("kube", "crash", "keep"):
            s.token(u)
        # wait for the scheduler to know the fake's node
        time.sleep(1.0)
        s.publish("server.start.requested", {"user": "kube", "server": ""})
        rec = wait_state(s, "kube", ("ready", "failed"), 30)
        check(rec.get("state") == "ready", "kube's pod server is ready (%s: %s)" % (rec.get("state"), rec.get("reason")))
        pod_name = rec.get("pod", "")
        check(pod_name == "jupyter-kube", "the pod is named as KubeSpawner names it (%r)" % pod_name)
        st, pod = fake_get(fport, "/api/v1/namespaces/default/pods/" + pod_name)
        check(st == 200, "the pod exists in the API (%d)" % st)
        if st == 200:
            c = pod["spec"]["containers"][0]
            envs = {e["name"]: e.get("value") for e in c.get("env", [])}
            check(pod["spec"].get("nodeName") == "cpu-node-1", "nodeName is the scheduler's choice (%s)" % pod["spec"].get("nodeName"))
            check(c["resources"]["requests"].get("cpu") == "500m" and c["resources"]["limits"].get("memory") == "512Mi",
                  "requests and limits from the profile: %s" % c["resources"])
            check(envs.get("JUPYTERHUB_SERVICE_PREFIX") == "/user/kube/" and envs.get("JUPYTERHUB_USER") == "kube"
                  and envs.get("JUPYTERHUB_SERVICE_URL") == "http://0.0.0.0:8888/user/kube/"
                  and envs.get("JUPYTERHUB_CLIENT_ID") == "jupyterhub-user-kube" and envs.get("JUPYTERHUB_API_TOKEN"),
                  "the single-user environment is in the pod: %s" % sorted(envs))
            check(c.get("image") == "debian-jupyter:test", "the default image (%s)" % c.get("image"))
        check(rec.get("target", "").startswith("http://127.0.") and rec.get("target", "").endswith(":8888"),
              "the route's target is the pod IP (%s)" % rec.get("target"))
        r = s.request("GET", "/user/kube/tree")
        check(r.status == 200 and b"kube" in r.body, "the pod's server answers through the proxy (%d)" % r.status)

        # a container that dies: the server fails with the pod's reason
        s2 = dict(env)
        s.publish("server.start.requested", {"user": "crash", "server": ""})
        rec = wait_state(s, "crash", ("ready",), 30)
        st, _ = fake_get(fport, "/api/v1/namespaces/default/pods/jupyter-crash")
        subprocess.run(["curl", "-s", "-X", "POST", "-d", '{"exit_code": 3, "reason": "Error", "message": "boom"}',
                        "http://127.0.0.1:%d/_fake/terminate/default/jupyter-crash" % fport], capture_output=True)
        rec = wait_state(s, "crash", ("failed",), 20)
        check(rec.get("state") == "failed" and "jupyter-crash" in rec.get("reason", ""),
              "a pod that fails fails its server with the reason (%s: %s)" % (rec.get("state"), rec.get("reason")))
        del s2

        # a PVC profile: the claim is made and outlives the server
        s.publish("server.start.requested", {"user": "keep", "server": "", "user_options_json": '{"profile": "stored"}'})
        rec = wait_state(s, "keep", ("ready", "failed"), 30)
        check(rec.get("state") == "ready", "the stored profile's server is ready (%s)" % rec.get("reason"))
        st, pvc = fake_get(fport, "/api/v1/namespaces/default/persistentvolumeclaims/claim-keep")
        check(st == 200, "the user's PVC exists (%d)" % st)

        # stop: the pod is deleted, then the record says stopped; the route is gone
        for u in ("kube", "keep"):
            s.publish("server.stop.requested", {"user": u, "server": ""})
        for u in ("kube", "keep"):
            rec = wait_state(s, u, ("stopped",), 40)
            check(rec.get("state") == "stopped", "%s stopped (%s)" % (u, rec.get("state")))
            st, _ = fake_get(fport, "/api/v1/namespaces/default/pods/jupyter-" + u)
            check(st == 404, "%s's pod is deleted (%d)" % (u, st))
        st, _ = fake_get(fport, "/api/v1/namespaces/default/persistentvolumeclaims/claim-keep")
        check(st == 200, "the PVC outlives the server (%d)" % st)
        r = s.request("GET", "/user/kube/tree")
        check(r.status != 200 or b"stand-in" not in r.body, "no route to the stopped server")
        st, stats = fake_get(fport, "/_fake/stats")
        print("fake API stats: %s" % json.dumps(stats)[:400], flush=True)
    finally:
        reports = s.stop()
        check(not reports, "sanitizers: %s" % reports[:5])
        os.killpg(fake.pid, signal.SIGTERM)
        try:
            fake.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(fake.pid, signal.SIGKILL)
    if check.failures:
        print("fake log: %s" % open(work + "/fake.log").read()[-2000:])
    check.finish()


if __name__ == "__main__":
    main()
