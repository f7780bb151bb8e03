#!/usr/bin/env python3
"""Assertions of tests/k8s/kubelet_test.sh against a running standalone kubelet and its crid.

Run by kubelet_test.sh once per kubelet mode (generic PLEG, Evented PLEG) with a JSON file
that says where everything is (see kubelet_test.sh). Prints one line per assertion,
"PASS: <mode>: <what>", "FAIL: <mode>: <what>: <why>" or "SKIP: <mode>: <what>: <why>",
and as its last line "counts P F S". With the systemd cgroup driver it runs inside the systemd
fixture's PID and mount namespaces (where crid and kubelet run), so the PIDs crid reports and
the mounts crid and kubelet make are the ones it sees; <mode> is then e.g. "generic/systemd".

The static pod has two containers:
  web     agnhost netexec on :8080; readiness: HTTP GET /readyz from kubelet to the pod IP;
          liveness: exec; its main process is killed with SIGKILL (restart, exit code 137)
  ticker  busybox printing "tick N" every second; liveness: exec `test -f /tmp/alive`, which
          is made to fail by removing the file (kubelet kills it: SIGTERM is ignored by a shell
          as PID 1, so SIGKILL after the 2 s grace period: exit code 137)
"""
import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CFG = json.load(open(sys.argv[1]))
MODE = CFG["mode"]
LABEL = CFG.get("label", MODE)
DRIVER = CFG["cgroup_driver"]
KUBELET = "https://127.0.0.1:%d" % CFG["port"]
NS = "default"
POD = "kt-" + CFG["node"]           # static pods are named <name>-<node name>
POD_FILE = os.path.join(CFG["manifests"], "kt.json")
CGROUP_ROOT = CFG["cgroup_root"]     # e.g. /crid-kubelet-test, or /crid_kubelet_test.slice (systemd)
STATE_DIR = CFG["state_dir"]
ROOT_DIR = CFG["root_dir"]
KUBELET_LOG = CFG["kubelet_log"]
CRID_LOG_START = os.path.getsize(CFG["crid_log"])

counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
RUNC_BEFORE = set()
SSL = ssl.create_default_context()
SSL.check_hostname = False
SSL.verify_mode = ssl.CERT_NONE   # kubelet's own self-signed serving certificate


def report(kind, what, why=""):
    counts[kind] += 1
    line = "%s: %s: %s" % (kind, LABEL, what)
    if why:
        line += ": " + why
    print(line, flush=True)


def check(ok, what, why=""):
    report("PASS" if ok else "FAIL", what, "" if ok else why)
    return ok


def few(items, n=3):
    items = list(items)
    return "%d: %s%s" % (len(items), ", ".join(str(i) for i in items[:n]), ", ..." if len(items) > n else "")


def runc_list():
    p = subprocess.run(["runc", "--root", os.path.join(STATE_DIR, "runtime", "runc"), "list", "-q"],
                       capture_output=True, text=True)
    return set(p.stdout.split()), p.stderr.strip()


def log(msg):
    print("  %s" % msg, file=sys.stderr, flush=True)


def http(path, method="GET", timeout=10):
    req = urllib.request.Request(KUBELET + path, method=method)
    try:
        with urllib.request.urlopen(req, context=SSL, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace").strip()
        raise IOError("%s %s: HTTP %d: %s" % (method, path, e.code, body[:400])) from None


def http_json(path):
    status, body = http(path)
    return json.loads(body)


def crictl(*args, timeout=60):
    p = subprocess.run([CFG["crictl"], "--config", CFG["crictl_config"]] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def wait_for(what, fn, timeout, interval=0.5):
    """Polls fn() until it returns a true value; returns (value, seconds) or (None, last error)."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            v = fn()
            if v:
                return v, time.time() - t0
        except Exception as e:  # noqa: BLE001 -- any error means "not yet"
            last = "%s: %s" % (type(e).__name__, e)
        time.sleep(interval)
    log("%s: gave up after %ds (%s)" % (what, timeout, last))
    return None, last


def kubelet_pod():
    for p in http_json("/pods").get("items") or []:
        if p["metadata"]["name"] == POD and p["metadata"].get("namespace") == NS:
            return p
    return None


def cstatus(pod, name):
    for c in (pod.get("status") or {}).get("containerStatuses") or []:
        if c["name"] == name:
            return c
    return None


def crid_container(name, state="running"):
    """ID and host PID of the pod's container NAME as crid reports it."""
    rc, out, err = crictl("ps", "-q", "--name", "^%s$" % name, "--label",
                          "io.kubernetes.pod.name=" + POD, "--state", state)
    ids = out.split()
    if rc != 0 or not ids:
        return None, None
    rc, out, err = crictl("inspect", ids[0])
    if rc != 0:
        return ids[0], None
    info = json.loads(out).get("info", {})
    return ids[0], info.get("pid")


def manifest():
    agnhost = "registry.k8s.io/e2e-test-images/agnhost:%s" % CFG["agnhost_version"]
    busybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kt", "namespace": NS, "labels": {"test": "crid-kubelet"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "restartPolicy": "Always",
            "containers": [
                {"name": "web", "image": agnhost, "imagePullPolicy": "IfNotPresent",
                 "args": ["netexec", "--http-port=8080"],
                 "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                    "periodSeconds": 1},
                 "livenessProbe": {"exec": {"command": ["cat", "/etc/hostname"]},
                                   "initialDelaySeconds": 1, "periodSeconds": 2},
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                               "limits": {"memory": "256Mi"}}},
                {"name": "ticker", "image": busybox, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c",
                             "touch /tmp/alive; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"],
                 "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]},
                                   "initialDelaySeconds": 2, "periodSeconds": 1,
                                   "failureThreshold": 1},
                 "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]},
                                    "initialDelaySeconds": 1, "periodSeconds": 1},
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                 # An image volume (kubelet's ImageVolume, GA in 1.36): agnhost's image,
                 # its bin/ directory only (bash, ...), read-only.
                 "volumeMounts": [{"name": "agnhost-image", "mountPath": "/agnhost",
                                   "subPath": "bin", "readOnly": True}]},
            ],
            "volumes": [{"name": "agnhost-image",
                         "image": {"reference": agnhost, "pullPolicy": "IfNotPresent"}}],
        },
    }


# ---- WebSocket client for kubelet's /exec (RFC 6455, channel.k8s.io framing)
class WebSocketExec:
    def __init__(self, path, protocol, timeout=30):
        self.protocol = protocol
        raw = socket.create_connection(("127.0.0.1", CFG["port"]), timeout=timeout)
        self.s = SSL.wrap_socket(raw, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: %s\r\n\r\n") % (path, CFG["port"], key, protocol)
        self.s.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise IOError("connection closed during the upgrade: %r" % self.buf[:300])
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}
        if " 101 " not in self.status_line + " ":
            body = self.buf
            try:
                self.s.settimeout(2)
                while len(body) < 2000:
                    c = self.s.recv(4096)
                    if not c:
                        break
                    body += c
            except Exception:  # noqa: BLE001
                pass
            raise IOError("upgrade refused: %s: %s" % (self.status_line, body[:300].decode("utf-8", "replace")))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        hdr = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def run(self):
        """Reads messages until the server closes; returns {channel: bytes}."""
        chans = {}
        msg = b""
        try:
            while True:
                b0, b1 = self._read(2)
                opcode, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(self._read(2), "big")
                elif n == 127:
                    n = int.from_bytes(self._read(8), "big")
                mask = self._read(4) if b1 & 0x80 else None
                data = self._read(n)
                if mask:
                    data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
                if opcode == 8:      # close
                    try:
                        self._send(8, data[:2])
                    except Exception:  # noqa: BLE001
                        pass
                    break
                if opcode == 9:      # ping
                    self._send(10, data)
                    continue
                if opcode in (0, 1, 2):
                    msg += data
                    if b0 & 0x80 and msg:
                        ch = msg[0]
                        payload = msg[1:]
                        if "base64" in self.protocol:
                            ch -= ord("0")
                            payload = base64.b64decode(payload)
                        chans[ch] = chans.get(ch, b"") + payload
                    if b0 & 0x80:
                        msg = b""
        except EOFError:
            pass
        finally:
            self.s.close()
        return chans


def ws_exec(container, argv, protocol):
    # kubelet's query parameters: "output" and "error" ask for stdout and stderr.
    q = [("command", a) for a in argv] + [("output", "1"), ("error", "1")]
    path = "/exec/%s/%s/%s?%s" % (NS, POD, container, urllib.parse.urlencode(q))
    ws = WebSocketExec(path, protocol)
    chans = ws.run()
    return ws.headers.get("sec-websocket-protocol", ""), chans


def kubelet_log_text(start=0):
    with open(KUBELET_LOG, "rb") as f:
        f.seek(start)
        return f.read().decode("utf-8", "replace")


def main():
    t_start = time.time()

    # ---- 1. kubelet up, driver from crid, runtime and network ready
    v, why = wait_for("kubelet /healthz", lambda: http("/healthz")[1].strip() == "ok", 60)
    check(v, "kubelet /healthz on %s answers ok" % KUBELET, str(why))
    m = re.search(r'Using cgroup driver setting received from the CRI runtime.*cgroupDriver="([a-z]+)"',
                  kubelet_log_text())
    check(m and m.group(1) == CFG["cgroup_driver"],
          "kubelet takes the cgroup driver from crid's RuntimeConfig (%s)" % CFG["cgroup_driver"],
          "kubelet log says: %s" % (m.group(0) if m else "no 'received from the CRI runtime' line"))
    rc, out, err = crictl("info")
    conds = {}
    if rc == 0:
        conds = {c["type"]: c["status"] for c in json.loads(out).get("status", {}).get("conditions", [])}
    check(conds.get("RuntimeReady") is True and conds.get("NetworkReady") is True,
          "crictl info: RuntimeReady and NetworkReady", "conditions %s %s" % (conds, err.strip()))

    mounts_before = mounts_under()
    global RUNC_BEFORE
    RUNC_BEFORE = runc_list()[0]

    # ---- 2. the static pod runs, both containers ready
    tmp = os.path.join(CFG["manifests"], ".kt.json.tmp")   # kubelet skips hidden files
    with open(tmp, "w") as f:
        json.dump(manifest(), f, indent=1)
    os.rename(tmp, POD_FILE)   # the file source never sees half a file
    t0 = time.time()

    def pod_ready():
        p = kubelet_pod()
        if not p:
            return None
        cs = [cstatus(p, n) for n in ("web", "ticker")]
        if all(c and c.get("ready") for c in cs):
            return p
        return None
    pod, why = wait_for("pod ready", pod_ready, 120)
    if not check(pod, "static pod %s/%s: both containers running and ready (exec liveness, HTTP and exec readiness)" % (NS, POD),
                 "not ready within 120 s: %s; /pods says %s" % (why, summarize(kubelet_pod_safe()))):
        for what in NEED_A_READY_POD:
            report("SKIP", what, "the pod never became ready")
        if MODE == "evented":
            evented_checks(containers_ran=False)
        p = kubelet_pod_safe()
        if p:
            remove_pod_and_check(p["metadata"]["uid"], mounts_before)
        crid_log_check()
        cleanup_and_finish(t_start)
        return
    log("pod ready %.1f s after the manifest appeared" % (time.time() - t0))
    uid = pod["metadata"]["uid"]
    log_offset = os.path.getsize(KUBELET_LOG)

    # ---- 3. cgroups under kubelet's kubepods tree
    qos = ((pod.get("status") or {}).get("qosClass") or "").lower()
    where = pod_cgroup_dir(uid, qos)
    for name in ("web", "ticker"):
        cid, pid = crid_container(name)
        if not pid:
            check(False, "container %s's cgroups are under %s" % (name, where),
                  "crictl inspect gives no pid (id %s)" % cid)
            continue
        bad, seen = [], {}
        for line in open("/proc/%d/cgroup" % pid):
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            # cgroupfs: crid leaves systemd's named hierarchy alone; systemd: the scope is there too
            if hid == "0" or (ctrls.startswith("name=") and DRIVER != "systemd"):
                continue
            seen[ctrls] = path
            if DRIVER == "systemd":
                # kubelet's pod slice, and in it the scope crid names after the container
                ok = path == "%s/crid-%s.scope" % (where, cid)
            else:
                ok = path.startswith(CGROUP_ROOT + "/kubepods/") and ("/pod%s/" % uid) in path + "/"
            if not ok:
                bad.append("%s:%s" % (ctrls, path))
        check(seen and not bad,
              "container %s (pid %d): every v1 controller's cgroup is under %s%s" % (
                  name, pid, where, "/crid-<id>.scope" if DRIVER == "systemd" else ""),
              "outside: %s" % (", ".join(bad) or "no controllers"))
        if name == "web":
            log("web's memory cgroup: %s" % seen.get("memory"))

    # ---- 3b. the image volume: agnhost's bin/ read-only in ticker, reported with its image
    cid, _ = crid_container("ticker")
    rc, out, err = crictl("exec", cid, "sh", "-c",
                          "test -x /agnhost/bash && ! touch /agnhost/x 2>/dev/null && echo ok") \
        if cid else (1, "", "no ticker container")
    mounted = rc == 0 and out.strip() == "ok"
    reported = False
    if cid:
        rc2, js, _ = crictl("inspect", cid)
        if rc2 == 0:
            for m in json.loads(js).get("status", {}).get("mounts") or []:
                if m.get("containerPath") == "/agnhost":
                    reported = bool((m.get("image") or {}).get("imageRef"))
    check(mounted and reported,
          "image volume: agnhost's image (subPath bin) read-only at /agnhost in ticker, "
          "with its image_ref in the container status",
          "exec: rc %s out %r err %r; image_ref reported: %s" % (rc, out.strip(), err.strip()[:200], reported))

    # ---- 3c. kubelet's checkpoint API (ContainerCheckpoint) reaches CheckpointContainer: an
    # archive under kubelet's root, or where CRIU cannot run on this host, crid's reason for it
    try:
        status, body = http("/checkpoint/%s/%s/ticker" % (NS, POD), method="POST", timeout=120)
        items = json.loads(body).get("items") or []
        ok = status == 200 and len(items) == 1 and os.path.isfile(items[0])
        why = "HTTP %d: %s" % (status, body[:300])
        for item in items:
            if os.path.isfile(item):
                os.unlink(item)
    except IOError as e:
        ok = "CRIU" in str(e) and "FailedPrecondition" in str(e)
        why = str(e)
    check(ok, "kubelet /checkpoint of ticker: an archive, or FAILED_PRECONDITION with CRIU's reason", why)
    log("checkpoint: %s" % why[:300])

    # ---- 4. /pods and /stats/summary
    p = kubelet_pod()
    names = sorted(c["name"] for c in p["spec"]["containers"]) if p else []
    check(p and names == ["ticker", "web"] and (p.get("status") or {}).get("phase") == "Running",
          "kubelet /pods lists the pod Running with containers web and ticker", summarize(p))

    def stats_ok():
        s = http_json("/stats/summary")
        for ps in s.get("pods", []):
            if ps["podRef"]["name"] != POD:
                continue
            cs = {c["name"]: c for c in ps.get("containers", [])}
            if set(cs) != {"web", "ticker"}:
                return None
            for c in cs.values():
                if not ((c.get("cpu") or {}).get("usageCoreNanoSeconds", 0) > 0 and
                        (c.get("memory") or {}).get("workingSetBytes", 0) > 0):
                    return None
            return s, ps
        return None
    v, why = wait_for("stats", stats_ok, 90, 2)
    if v:
        s, ps = v
        c = {c["name"]: c for c in ps["containers"]}
        log("stats: web cpu %s ns, memory %s B; ticker cpu %s ns, memory %s B" % (
            c["web"]["cpu"]["usageCoreNanoSeconds"], c["web"]["memory"]["workingSetBytes"],
            c["ticker"]["cpu"]["usageCoreNanoSeconds"], c["ticker"]["memory"]["workingSetBytes"]))
    check(v, "kubelet /stats/summary: per-container CPU (usageCoreNanoSeconds) and memory (workingSetBytes) for web and ticker",
          "not within 90 s: %s" % why)
    try:
        s = http_json("/stats/summary")
        fs = ((s.get("node") or {}).get("runtime") or {}).get("imageFs") or {}
        check(fs.get("capacityBytes", 0) > 0 and fs.get("usedBytes", 0) > 0,
              "kubelet /stats/summary: node.runtime.imageFs has capacity and usage (crid's ImageFsInfo)",
              "imageFs = %s" % fs)
    except Exception as e:  # noqa: BLE001
        check(False, "kubelet /stats/summary: node.runtime.imageFs", str(e))

    # ---- 5. logs through kubelet
    v, why = wait_for("logs", lambda: "tick 2" in http("/containerLogs/%s/%s/ticker" % (NS, POD))[1], 30)
    check(v, "kubelet /containerLogs/%s/%s/ticker returns the container's output" % (NS, POD), str(why))

    # ---- 6. exec through kubelet's streaming proxy to crid's streaming server
    for proto, how in (("v5.channel.k8s.io", "WebSocket v5 (kubelet translates to SPDY)"),
                       ("v4.channel.k8s.io", "WebSocket v4 (kubelet proxies the WebSocket)")):
        word = "exec-%s-%d" % (proto[:2], os.getpid())
        try:
            got, ch = ws_exec("ticker", ["sh", "-c", "echo %s; echo to-stderr >&2" % word], proto)
            status = ch.get(3, b"").decode("utf-8", "replace")
            ok = (ch.get(1, b"").decode().strip() == word and b"to-stderr" in ch.get(2, b"") and
                  (status == "" or '"Success"' in status))
            check(ok, "exec through kubelet /exec over %s: stdout, stderr and status" % how,
                  "protocol %r, channels %r" % (got, ch))
        except Exception as e:  # noqa: BLE001
            check(False, "exec through kubelet /exec over %s" % how, "%s: %s" % (type(e).__name__, e))
        try:
            got, ch = ws_exec("ticker", ["sh", "-c", "exit 3"], proto)
            st = json.loads(ch.get(3, b"{}") or b"{}")
            codes = [c.get("message") for c in (st.get("details") or {}).get("causes", [])
                     if c.get("reason") == "ExitCode"]
            check(st.get("status") == "Failure" and codes == ["3"],
                  "exec through kubelet /exec over %s: exit code 3 comes back in the status" % how,
                  "status channel: %r" % ch.get(3))
        except Exception as e:  # noqa: BLE001
            check(False, "exec through kubelet /exec over %s: exit code" % how, "%s: %s" % (type(e).__name__, e))

    # ---- 7. SIGKILL of web's main process: kubelet restarts it
    cid, pid = crid_container("web")
    if pid:
        os.kill(pid, 9)
        log("killed web's main process %d (container %s)" % (pid, cid))

        def restarted():
            c = cstatus(kubelet_pod(), "web")
            term = ((c or {}).get("lastState") or {}).get("terminated") or {}
            return c if c and c.get("restartCount") == 1 and term.get("exitCode") == 137 and \
                (c.get("state") or {}).get("running") else None
        v, why = wait_for("web restarted", restarted, 60)
        check(v, "kill -9 of web's main process: kubelet restarts it (restartCount 1, lastState.terminated.exitCode 137, running)",
              "within 60 s: %s; web status %s" % (why, json.dumps(cstatus(kubelet_pod_safe(), "web"))))
    else:
        check(False, "kill -9 of web's main process", "crictl inspect gives no pid for web")

    # ---- 8. failing liveness probe: kubelet restarts ticker
    try:
        st, body = http("/run/%s/%s/ticker?cmd=%s" % (NS, POD, urllib.parse.quote("rm /tmp/alive")), "POST")
        log("kubelet /run rm /tmp/alive: %d %r" % (st, body[:100]))
    except Exception as e:  # noqa: BLE001
        log("kubelet /run failed: %s" % e)

    def probe_restarted():
        c = cstatus(kubelet_pod(), "ticker")
        term = ((c or {}).get("lastState") or {}).get("terminated") or {}
        return c if c and c.get("restartCount") == 1 and term.get("exitCode") == 137 and \
            (c.get("state") or {}).get("running") else None
    v, why = wait_for("ticker restarted", probe_restarted, 60)
    check(v, "failing exec liveness probe (file removed through kubelet /run): kubelet restarts ticker (restartCount 1, exitCode 137, running)",
          "within 60 s: %s; ticker status %s" % (why, json.dumps(cstatus(kubelet_pod_safe(), "ticker"))))
    v, why = wait_for("previous logs", lambda: "tick 0" in http("/containerLogs/%s/%s/ticker?previous=true" % (NS, POD))[1], 15)
    check(v, "kubelet /containerLogs ?previous=true returns the killed ticker's output", str(why))
    v, why = wait_for("pod ready again", pod_ready, 60)
    check(v, "both containers ready again after the restarts", str(why))

    # ---- 9. kubelet's log after start-up
    text = kubelet_log_text(log_offset)
    bad = [l for l in text.splitlines() if "container runtime is down" in l or "network not ready" in l.lower()]
    check(not bad, "kubelet log since the pod became ready: no 'container runtime is down' / 'network not ready'",
          "%d lines, first: %s" % (len(bad), bad[0][:300] if bad else ""))
    if MODE == "evented":
        evented_checks()

    # ---- 10. manifest removed: kubelet stops and removes the pod; nothing of it remains
    remove_pod_and_check(uid, mounts_before)
    crid_log_check()
    cleanup_and_finish(t_start)


def crid_log_check():
    with open(CFG["crid_log"], "rb") as f:
        f.seek(CRID_LOG_START)
        lines = f.read().decode("utf-8", "replace").splitlines()
    errors = [l for l in lines if re.match(r"^\S+ (error|critical) ", l)]
    check(not errors, "crid logged no error while kubelet drove it",
          "%d error lines, first: %s" % (len(errors), errors[0][:300] if errors else ""))


# What the run cannot check when the pod never becomes ready (counted as skipped then).
NEED_A_READY_POD = [
    "container cgroups under kubepods (web, ticker)",
    "image volume in ticker",
    "kubelet /pods lists the pod Running",
    "kubelet /stats/summary per-container CPU and memory",
    "kubelet /stats/summary node.runtime.imageFs",
    "kubelet /containerLogs",
    "exec through kubelet /exec over WebSocket v5 (output, exit code)",
    "exec through kubelet /exec over WebSocket v4 (output, exit code)",
    "kill -9 restart (restartCount 1, exitCode 137)",
    "failing liveness probe restart (restartCount 1, exitCode 137)",
    "kubelet /containerLogs ?previous=true",
    "containers ready again after the restarts",
    "kubelet log after start-up",
]


def evented_checks(containers_ran=True):
    try:
        _, text = http("/metrics")
    except Exception as e:  # noqa: BLE001
        check(False, "Evented PLEG metrics", str(e))
        return

    def metric(name):
        m = re.search(r"^kubelet_%s(?:\{[^}]*\})? ([0-9.e+]+)$" % name, text, re.M)
        return float(m.group(1)) if m else None
    conn = metric("evented_pleg_connection_success_count")
    err = metric("evented_pleg_connection_error_count")
    events = metric("evented_pleg_connection_latency_seconds_count")
    log("evented PLEG metrics: connections %s, errors %s, events %s" % (conn, err, events))
    check(conn is not None and conn >= 1 and not err,
          "Evented PLEG: kubelet holds crid's GetContainerEvents stream (connections >= 1, errors 0)",
          "connections %s, errors %s" % (conn, err))
    what = "Evented PLEG: kubelet received container events from crid"
    if not containers_ran:
        report("SKIP", what, "no container ran")
    else:
        check(events is not None and events >= 4, what, "events %s" % events)


def mounts_under():
    prefixes = (ROOT_DIR, STATE_DIR, CFG["kubelet_root"])
    out = set()
    for line in open("/proc/self/mountinfo"):
        mp = line.split()[4]
        if any(mp == p or mp.startswith(p + "/") for p in prefixes):
            out.add(mp)
    return out


def pod_cgroup_dir(uid, qos):
    """The pod's cgroup as kubelet names it: <root>/kubepods/<qos>/pod<uid> (cgroupfs), or with
    systemd <root>/<p>kubepods.slice/<p>kubepods-<qos>.slice/<p>kubepods-<qos>-pod<uid, - as _>.slice,
    <p> being the root slice's name and a dash ("" for the root "/")."""
    qos = "" if qos == "guaranteed" else qos
    if DRIVER != "systemd":
        return "%s/kubepods%s/pod%s" % (CGROUP_ROOT, "/" + qos if qos else "", uid)
    root = CGROUP_ROOT.rstrip("/")
    prefix = os.path.basename(root)[:-len(".slice")] + "-" if root else ""
    parts = ["kubepods"] + ([qos] if qos else []) + ["pod" + uid.replace("-", "_")]
    path = root
    for i in range(len(parts)):
        path += "/%s%s.slice" % (prefix, "-".join(parts[:i + 1]))
    return path


def pod_cgroups(uid):
    found = []
    key = uid.replace("-", "_") if DRIVER == "systemd" else uid
    for ctrl in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", ctrl, CGROUP_ROOT.lstrip("/"))
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                if key in d:
                    found.append(os.path.join(dirpath, d))
    return found


def remove_pod_and_check(uid, mounts_before):
    os.unlink(POD_FILE)
    t0 = time.time()
    v, why = wait_for("pod gone from kubelet", lambda: kubelet_pod() is None, 60)
    check(v is not None, "manifest removed: kubelet /pods no longer lists the pod", str(why))

    def crid_empty():
        rc1, pods, _ = crictl("pods", "-q")
        rc2, ctrs, _ = crictl("ps", "-a", "-q")
        return rc1 == 0 and rc2 == 0 and not pods.split() and not ctrs.split()
    v, why = wait_for("crid empty", crid_empty, 180, 2)
    rc, pods, _ = crictl("pods")
    rc, ctrs, _ = crictl("ps", "-a")
    check(v, "manifest removed: crid holds no pod and no container (crictl pods, crictl ps -a)",
          "after 180 s: pods:\n%s\ncontainers:\n%s" % (pods, ctrs))
    log("kubelet removed the pod from crid %.0f s after the manifest went" % (time.time() - t0))

    netns = os.listdir(os.path.join(STATE_DIR, "netns")) if os.path.isdir(os.path.join(STATE_DIR, "netns")) else []
    check(not netns, "no network namespace pin of the pod remains (%s/netns)" % STATE_DIR, "left %s" % few(netns))
    extra = sorted(mounts_under() - mounts_before)
    check(not extra, "no mount of the pod remains under crid's and kubelet's directories", "left %s" % few(extra))
    v, why = wait_for("pod cgroups gone", lambda: not pod_cgroups(uid), 30, 1)
    check(v, "no cgroup of the pod remains under %s (any controller)" % CGROUP_ROOT, "left %s" % few(pod_cgroups(uid)))
    ids, err = runc_list()
    left = sorted(ids - RUNC_BEFORE)
    check(not left and not err, "no runc container of the pod remains (runc --root %s/runtime/runc list)" % STATE_DIR,
          "left %s %s" % (few(left), err))
    shims = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "crid-shim" in cmd and (" %s/" % STATE_DIR) in cmd:
            shims.append("%s: %s" % (p, cmd[:150]))
    check(not shims, "no crid-shim process of the pod remains", "left %s" % few(shims))
    ipam = []
    ipam_dir = os.path.join(STATE_DIR, "ipam")
    for dirpath, _, files in os.walk(ipam_dir):
        ipam += [os.path.join(dirpath, f) for f in files if re.fullmatch(r"[0-9.]+|[0-9a-f:]+", f)]
    check(not ipam, "no IPAM reservation of the pod remains (%s)" % ipam_dir, "left %s" % few(ipam))


def kubelet_pod_safe():
    try:
        return kubelet_pod()
    except Exception:  # noqa: BLE001
        return None


def summarize(p):
    if not p:
        return "no such pod"
    st = p.get("status") or {}
    return json.dumps({"phase": st.get("phase"), "reason": st.get("reason"), "message": st.get("message"),
                       "containers": [{k: c.get(k) for k in ("name", "ready", "restartCount", "state", "lastState")}
                                      for c in st.get("containerStatuses") or []]})[:1500]


def cleanup_and_finish(t_start):
    if os.path.exists(POD_FILE):
        os.unlink(POD_FILE)
    log("%s mode took %.0f s" % (MODE, time.time() - t_start))
    print("counts %d %d %d" % (counts["PASS"], counts["FAIL"], counts["SKIP"]), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        check(False, "test program", "%s: %s" % (type(e).__name__, e))
        print("counts %d %d %d" % (counts["PASS"], counts["FAIL"], counts["SKIP"]), flush=True)
