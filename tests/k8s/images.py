#!/usr/bin/env python3
"""Builds the container images that critest (and the node e2e tests) pull, offline, and pushes
them to a plain-HTTP registry (the CNCF distribution registry's API) under their upstream
repository paths and tags.

Upstream names keep their repository path; the registry host is dropped, because crid reaches
every upstream registry (registry.k8s.io, gcr.io, k8s.gcr.io, docker.io, public.ecr.aws,
quay.io) through a mirror that is this one registry:
    registry.k8s.io/e2e-test-images/busybox:1.29-2 -> http://REGISTRY/v2/e2e-test-images/busybox
    gcr.io/k8s-staging-cri-tools/test-image-1       -> http://REGISTRY/v2/k8s-staging-cri-tools/test-image-1
    docker.io/library/busybox                       -> http://REGISTRY/v2/library/busybox

Contents are real programs taken from Debian packages and from the Kubernetes release that
tests/k8s/build.sh builds:
  busybox       Debian's dynamically linked busybox with its glibc, applets as hard links (as in
                the upstream busybox image), plus ipcs (util-linux) and pgrep (procps), which
                Debian's busybox build lacks and critest runs
  nginx         Debian's nginx binary, configured like the upstream e2e image (port 80,
                pid file /var/run/nginx.pid, logs to stdout/stderr, SIGTERM to stop)
  httpd         busybox httpd on port 80 behind an httpd-foreground entrypoint
  nonewprivs    Kubernetes' test/images/nonewprivs program (nnp), setuid root
  pause         Kubernetes' build/pause/linux/pause.c, static, user 65535
  agnhost       Kubernetes' test/images/agnhost
Layers are reproducible (fixed times and owners, gzip without a timestamp): rebuilding with the
same inputs gives the same digests.

Each tag is pushed as an OCI image index with one linux/amd64 manifest (upstream test images
are multi-platform lists); --plain pushes the manifests alone.

usage: images.py --registry HOST:PORT --inputs DIR [--plain] [--list]
  DIR holds: busybox (binary), nginx (binary), ipcs, pgrep, pause, nnp, and agnhost (optional)
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request

EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"
ARCH = "amd64"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# The upstream busybox image's accounts (uid/gid numbers matter to critest's user tests:
# www-data is 33).
PASSWD = [
    "root:x:0:0:root:/root:/bin/sh",
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false",
    "bin:x:2:2:bin:/bin:/bin/false",
    "sys:x:3:3:sys:/dev:/bin/false",
    "sync:x:4:100:sync:/bin:/bin/sync",
    "mail:x:8:8:mail:/var/spool/mail:/bin/false",
    "www-data:x:33:33:www-data:/var/www:/bin/false",
    "operator:x:37:37:Operator:/var:/bin/false",
    "nobody:x:65534:65534:nobody:/home:/bin/false",
]
GROUPS = [
    "root:x:0:", "daemon:x:1:", "bin:x:2:", "sys:x:3:", "adm:x:4:", "tty:x:5:", "disk:x:6:",
    "lp:x:7:", "mail:x:8:", "kmem:x:9:", "wheel:x:10:root", "cdrom:x:11:", "dialout:x:18:",
    "floppy:x:19:", "video:x:28:", "audio:x:29:", "tape:x:32:", "www-data:x:33:",
    "operator:x:37:", "utmp:x:43:", "plugdev:x:46:", "staff:x:50:", "lock:x:54:",
    "netdev:x:82:", "users:x:100:", "nogroup:x:65534:",
]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    """A tar layer built in memory with fixed metadata."""

    def __init__(self):
        self._buf = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buf, mode="w", format=tarfile.PAX_FORMAT)
        self._dirs = set()

    def _entry(self, path, kind, mode):
        info = tarfile.TarInfo(path)
        info.type = kind
        info.mode = mode
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = EPOCH
        return info

    def mkdir(self, path, mode=0o755):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub in self._dirs:
                continue
            self._dirs.add(sub)
            self._tar.addfile(self._entry(sub + "/", tarfile.DIRTYPE, mode if i == len(parts) else 0o755))

    def _parents(self, path):
        parent = os.path.dirname(path)
        if parent:
            self.mkdir(parent)

    def add(self, path, data, mode=0o644):
        path = path.strip("/")
        self._parents(path)
        if isinstance(data, str):
            data = data.encode()
        info = self._entry(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def add_host_file(self, path, source, mode=0o755):
        with open(source, "rb") as f:
            self.add(path, f.read(), mode)

    def symlink(self, path, target):
        path = path.strip("/")
        self._parents(path)
        info = self._entry(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._tar.addfile(info)

    def hardlink(self, path, target):
        path = path.strip("/")
        self._parents(path)
        info = self._entry(path, tarfile.LNKTYPE, 0o755)
        info.linkname = target.strip("/")
        self._tar.addfile(info)

    def seal(self):
        """Returns (gzip blob, diff id)."""
        self._tar.close()
        raw = self._buf.getvalue()
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
            gz.write(raw)
        return out.getvalue(), sha256(raw)


def needed_libraries(binary):
    """The shared objects a dynamically linked binary loads, as (path in image, host file)."""
    res = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if res.returncode != 0 and "not a dynamic executable" in (res.stdout + res.stderr):
        return []
    libs = []
    for line in res.stdout.splitlines():
        words = line.split()
        if "=>" in words:
            i = words.index("=>")
            if i + 1 < len(words) and words[i + 1].startswith("/"):
                libs.append(words[i + 1])
            elif "not" in words[i + 1:]:
                sys.exit("images.py: %s needs %s, which is not installed" % (binary, words[0]))
        elif words and words[0].startswith("/"):
            libs.append(words[0])
    out = []
    for lib in libs:
        # Debian merges /lib into /usr/lib; the images keep libraries in /lib, like the upstream
        # busybox:glibc image, and the loader finds them there without a cache.
        image_path = lib[len("/usr"):] if lib.startswith("/usr/lib/") else lib
        out.append((image_path, os.path.realpath(lib)))
    return sorted(set(out))


class Builder:
    def __init__(self, inputs):
        self.inputs = inputs
        self.blobs = {}      # digest -> bytes
        self._layers = {}    # name -> descriptor dict
        self.images = {}     # name -> manifest digest
        self.tags = []       # (repository path, tag, image name)

    def input(self, name):
        path = os.path.join(self.inputs, name)
        if not os.path.isfile(path):
            sys.exit("images.py: missing input %s" % path)
        return path

    def blob(self, data):
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def layer(self, name, fill):
        if name not in self._layers:
            layer = Layer()
            fill(layer)
            gz, diff_id = layer.seal()
            self._layers[name] = {"digest": self.blob(gz), "size": len(gz), "diff_id": diff_id}
        return self._layers[name]

    def image(self, name, layers, cmd=None, entrypoint=None, user=None, env=None, ports=None,
              workdir=None, stop_signal=None):
        cfg = {"Env": env or [PATH_ENV]}
        if cmd is not None:
            cfg["Cmd"] = cmd
        if entrypoint is not None:
            cfg["Entrypoint"] = entrypoint
        if user is not None:
            cfg["User"] = user
        if ports:
            cfg["ExposedPorts"] = {p: {} for p in ports}
        if workdir:
            cfg["WorkingDir"] = workdir
        if stop_signal:
            cfg["StopSignal"] = stop_signal
        config = {
            "architecture": ARCH,
            "os": "linux",
            "created": CREATED,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
            "history": [{"created": CREATED, "created_by": "tests/k8s/images.py " + name} for _ in layers],
        }
        config_bytes = canonical(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": self.blob(config_bytes), "size": len(config_bytes)},
            "layers": [{"mediaType": MT_LAYER, "digest": l["digest"], "size": l["size"]} for l in layers],
        }
        manifest_bytes = canonical(manifest)
        self.images[name] = (self.blob(manifest_bytes), len(manifest_bytes))

    def tag(self, name, *refs):
        for ref in refs:
            repo, _, tag = ref.rpartition(":")
            self.tags.append((repo, tag, name))


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def busybox_base(b):
    busybox = b.input("busybox")

    def fill(l):
        for d in ["bin", "dev", "etc", "home", "proc", "sys", "sbin", "usr/bin", "usr/sbin",
                  "usr/local/bin", "var/spool/mail", "var/www", "var/run", "run"]:
            l.mkdir(d)
        l.mkdir("tmp", 0o1777)
        l.mkdir("root", 0o700)
        l.add_host_file("bin/busybox", busybox)
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        # Hard links, as in the upstream image: critest masks /bin/ls and expects `sh -c ls` to
        # fail, which a symlink to /bin/busybox would not show.
        for applet in sorted(set(applets) - {"busybox"}):
            l.hardlink("bin/" + applet, "bin/busybox")
        # Applets critest uses that Debian's busybox is built without.
        l.add_host_file("bin/ipcs", b.input("ipcs"))
        l.add_host_file("bin/pgrep", b.input("pgrep"))
        # busybox's nmeter applet, which Debian's busybox lacks (tests/k8s/nmeter.c: the part
        # the node e2e specs use).
        l.add_host_file("bin/nmeter", b.input("nmeter"))
        libs = set()
        for prog in ("busybox", "ipcs", "pgrep"):
            libs.update(needed_libraries(b.input(prog)))
        for image_path, host_path in sorted(libs):
            l.add_host_file(image_path, host_path)
        l.add("etc/passwd", "\n".join(PASSWD) + "\n")
        l.add("etc/group", "\n".join(GROUPS) + "\n")
        l.add("etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640)
        l.add("etc/os-release", 'NAME="crid test busybox"\nID=busybox\n')
        l.add("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    return b.layer("busybox", fill)


NGINX_CONF = """user nginx;
worker_processes 1;
error_log stderr warn;
pid /var/run/nginx.pid;
events { worker_connections 1024; }
http {
    types { text/html html htm; text/plain txt; application/json json; }
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    server {
        listen %(port)d;
        server_name localhost;
        location / { root /usr/share/nginx/html; index index.html index.htm; }
        error_page 500 502 503 504 /50x.html;
        location = /50x.html { root /usr/share/nginx/html; }
    }
}
"""
NGINX_INDEX = """<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
"""


def nginx_layer(b, port):
    nginx = b.input("nginx")

    def fill(l):
        l.add_host_file("usr/sbin/nginx", nginx)
        for image_path, host_path in needed_libraries(nginx):
            l.add_host_file(image_path, host_path)
        l.add("etc/nginx/nginx.conf", NGINX_CONF % {"port": port})
        l.add("usr/share/nginx/html/index.html", NGINX_INDEX)
        l.add("usr/share/nginx/html/50x.html", "<html><body><h1>An error occurred.</h1></body></html>\n")
        for d in ("var/log/nginx", "var/cache/nginx", "var/lib/nginx", "var/lock", "usr/lib/nginx/modules"):
            l.mkdir(d)
        l.add("etc/passwd", "\n".join(PASSWD + ["nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin"]) + "\n")
        l.add("etc/group", "\n".join(GROUPS + ["nginx:x:101:nginx"]) + "\n")
    return b.layer("nginx-%d" % port, fill)


def define_images(b):
    base = busybox_base(b)

    # ---- busybox: critest's default image, the e2e tests' busybox, docker.io's.
    b.image("busybox", [base], cmd=["sh"])
    b.tag("busybox",
          "e2e-test-images/busybox:1.29-2",
          "e2e-test-images/busybox:1.29-4",
          "e2e-test-images/busybox:1.37.0-1",
          "e2e-test-images/busybox:1.37.0-2",
          "e2e-test-images/busybox:1.36.1-1",
          "library/busybox:latest",
          "library/busybox:1.28",
          "library/busybox:1.29",
          "library/busybox:1.36",
          "library/busybox:1.37",
          "library/busybox:1.37.0",
          # critest -benchmark's image listing (public.ecr.aws/docker/library/busybox:*)
          "docker/library/busybox:1",
          "docker/library/busybox:1-glibc",
          "docker/library/busybox:1-musl",
          "docker/library/busybox:1-uclibc",
          "docker/library/busybox:1.35.0-glibc")

    # ---- pause: registry.k8s.io/pause and k8s.gcr.io/pause (one path on the mirror)
    pause = b.layer("pause", lambda l: l.add_host_file("pause", b.input("pause")))
    b.image("pause", [pause], entrypoint=["/pause"], user="65535:65535")
    b.tag("pause", "pause:3.9", "pause:3.10", "pause:3.10.1", "pause:3.10.2")

    # ---- nginx (e2e-test-images/nginx is nginx:alpine with its stock config)
    b.image("nginx", [base, nginx_layer(b, 80)], cmd=["nginx", "-g", "daemon off;"],
            ports=["80/tcp"], stop_signal="SIGTERM")
    b.tag("nginx", "e2e-test-images/nginx:1.14-2", "e2e-test-images/nginx:1.14-4",
          "e2e-test-images/nginx:1.15-4", "e2e-test-images/nginx:1.27.0-2",
          "e2e-test-images/nginx:1.28.0-2", "library/nginx:latest")
    # gcr.io/k8s-staging-cri-tools/hostnet-nginx-<arch>: nginx listening on 12003
    b.image("hostnet-nginx", [base, nginx_layer(b, 12003)], cmd=["nginx", "-g", "daemon off;"],
            ports=["80/tcp"], stop_signal="SIGTERM")
    b.tag("hostnet-nginx", "k8s-staging-cri-tools/hostnet-nginx-%s:latest" % ARCH)

    # ---- httpd (e2e-test-images/httpd): a web server on port 80 that logs its start
    def httpd(l):
        l.add("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n")
        # The shell stays PID 1 with a TERM trap: a PID 1 without a handler ignores SIGTERM.
        l.add("usr/local/bin/httpd-foreground",
              "#!/bin/sh\n"
              "echo \"httpd-foreground: httpd (busybox) serving /usr/local/apache2/htdocs on port 80\" >&2\n"
              "/bin/httpd -f -v -p 80 -h /usr/local/apache2/htdocs \"$@\" &\n"
              "child=$!\n"
              "trap 'kill -TERM $child; wait $child; exit 0' TERM INT\n"
              "wait $child\n", 0o755)
    b.image("httpd", [base, b.layer("httpd", httpd)], cmd=["httpd-foreground"], ports=["80/tcp"],
            workdir="/usr/local/apache2", stop_signal="SIGTERM")
    b.tag("httpd", "e2e-test-images/httpd:2.4.38-4", "e2e-test-images/httpd:2.4.39-4", "library/httpd:latest")

    # ---- nonewprivs: Kubernetes' nnp, setuid root
    nnp = b.layer("nnp", lambda l: l.add_host_file("usr/local/bin/nnp", b.input("nnp"), 0o4755))
    b.image("nonewprivs", [base, nnp], cmd=["nnp"])
    b.tag("nonewprivs", "e2e-test-images/nonewprivs:1.3", "e2e-test-images/nonewprivs:1.4")

    # ---- nonroot (test/images/nonroot): busybox with USER 1234
    b.image("nonroot", [base], cmd=["sh"], user="1234")
    b.tag("nonroot", "e2e-test-images/nonroot:1.4", "e2e-test-images/nonroot:1.5")

    # ---- ipc-utils (test/images/ipc-utils): busybox plus util-linux's ipcs, which the base has
    b.image("ipc-utils", [base], cmd=["sh"])
    b.tag("ipc-utils", "e2e-test-images/ipc-utils:1.4")

    # ---- glibc-dns-testing (test/images/glibc-dns-testing, Debian-based upstream): the specs
    # run `hostname` and `hostname -f`, answered here by Debian's glibc-linked hostname.
    def glibc_hostname(l):
        l.add_host_file("bin/hostname", b.input("hostname"))
        for image_path, host_path in needed_libraries(b.input("hostname")):
            l.add_host_file(image_path, host_path)
    b.image("glibc-dns-testing", [base, b.layer("glibc-hostname", glibc_hostname)], cmd=["sh"])
    b.tag("glibc-dns-testing", "e2e-test-images/glibc-dns-testing:2.1.1")

    # ---- agnhost: Kubernetes' test/images/agnhost (left out when not built)
    if os.path.isfile(os.path.join(b.inputs, "agnhost")):
        define_agnhost(b, base)

    define_cri_tools_images(b, base)


def define_agnhost(b, base):
    def agnhost(l):
        l.add_host_file("agnhost", b.input("agnhost"))
        for name in ("localhost.crt", "localhost.key"):
            with open(b.input(name)) as f:
                l.add(name, f.read())
        # Debian's bash and curl with the libraries they load (upstream: Alpine's packages).
        l.add_host_file("bin/bash", b.input("bash"))
        l.add_host_file("usr/bin/curl", b.input("curl"))
        libs = set(needed_libraries(b.input("bash"))) | set(needed_libraries(b.input("curl")))
        for image_path, host_path in sorted(libs):
            l.add_host_file(image_path, host_path)
        l.symlink("agnhost-2", "agnhost")
        l.mkdir("uploads")
        l.add("etc/passwd", "\n".join(PASSWD + ["user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh"]) + "\n")
        l.add("etc/group", "\n".join(GROUPS + ["user-defined-in-image:x:1000:",
                                                 "group-defined-in-image:x:50000:user-defined-in-image"]) + "\n")
        l.mkdir("home/user-defined-in-image")
    b.image("agnhost", [base, b.layer("agnhost", agnhost)], entrypoint=["/agnhost"], cmd=["pause"],
            ports=["80/tcp", "8080/tcp", "8081/tcp", "9376/tcp", "5000/tcp"])
    # The suite's "previous" agnhost (2.55) is the same build under the older tag: the tests
    # that use both only change a pod's image from one name to the other.
    b.tag("agnhost", "e2e-test-images/agnhost:%s" % os.environ.get("AGNHOST_VERSION", "2.66.1"),
          "e2e-test-images/agnhost:2.55")


def define_cri_tools_images(b, base):
    # ---- cri-tools' images (cri-tools images/: image-user, image-predefined-group, image-test)
    for name, user in [("test-image-user-uid", "1002"), ("test-image-user-username", "www-data"),
                       ("test-image-user-uid-group", "1003:1004"),
                       ("test-image-user-username-group", "www-data:1004")]:
        b.image(name, [base], cmd=["sh"], user=user)
        b.tag(name, "k8s-staging-cri-tools/%s:latest" % name)

    def predefined_group(l):
        l.add("etc/passwd", "\n".join(PASSWD + ["default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh"]) + "\n")
        l.add("etc/group", "\n".join(GROUPS + ["default-user:x:1000:", "group-defined-in-image:x:50000:default-user"]) + "\n")
        l.mkdir("home/default-user")
    b.image("test-image-predefined-group", [base, b.layer("predefined-group", predefined_group)],
            cmd=["sh"], user="1000")
    b.tag("test-image-predefined-group", "k8s-staging-cri-tools/test-image-predefined-group:latest")

    # image-test: busybox plus one empty file named after the image (ADD ${TEST} ${TEST})
    def marked(name, marker):
        b.image(name, [base, b.layer("marker-" + marker, lambda l: l.add(marker, ""))], cmd=["sh"])
    for name in ["test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"]:
        marked(name, name)
        b.tag(name, "k8s-staging-cri-tools/%s:latest" % name)
    marked("test-image-tags", "same-image")
    b.tag("test-image-tags", *["k8s-staging-cri-tools/test-image-tags:%d" % i for i in (1, 2, 3)])
    for tag in ("test", "all"):
        marked("test-image-tag-" + tag, tag)
        b.tag("test-image-tag-" + tag, "k8s-staging-cri-tools/test-image-tag:" + tag)


class Registry:
    """The distribution registry's HTTP API, plain HTTP, no auth."""

    def __init__(self, host):
        self.base = "http://" + host

    def _call(self, method, url, data=None, headers=None, ok=(200, 201, 202, 204)):
        req = urllib.request.Request(url if url.startswith("http") else self.base + url,
                                     data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code, e.headers, e.read()
            if method == "HEAD" and e.code == 404:
                return 404, e.headers, b""
            raise SystemExit("images.py: %s %s: HTTP %d %s" % (method, url, e.code, e.read()[:300]))

    def has_blob(self, repo, digest):
        return self._call("HEAD", "/v2/%s/blobs/%s" % (repo, digest))[0] == 200

    def put_blob(self, repo, digest, data, mount_from=None):
        if self.has_blob(repo, digest):
            return False
        if mount_from:
            status, headers, _ = self._call(
                "POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, digest, mount_from))
            if status == 201:
                return True
        else:
            status, headers, _ = self._call("POST", "/v2/%s/blobs/uploads/" % repo)
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        self._call("PUT", location + sep + "digest=" + urllib.parse.quote(digest), data=data,
                   headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        return True

    def put_manifest(self, repo, ref, media_type, data):
        self._call("PUT", "/v2/%s/manifests/%s" % (repo, ref), data=data,
                   headers={"Content-Type": media_type})

    def manifest_digest(self, repo, ref, media_type):
        status, headers, _ = self._call("HEAD", "/v2/%s/manifests/%s" % (repo, ref),
                                        headers={"Accept": media_type})
        return headers.get("Docker-Content-Digest") if status == 200 else None


def push(b, reg, plain):
    home = {}  # blob digest -> a repository that already holds it (for cross-repository mounts)
    uploaded = 0
    pushed = []
    for repo, tag, name in b.tags:
        mdigest, msize = b.images[name]
        manifest = json.loads(b.blobs[mdigest])
        for desc in [manifest["config"]] + manifest["layers"]:
            d = desc["digest"]
            if reg.put_blob(repo, d, b.blobs[d], home.get(d)):
                uploaded += 1
            home.setdefault(d, repo)
        reg.put_manifest(repo, mdigest, MT_MANIFEST, b.blobs[mdigest])
        if plain:
            reg.put_manifest(repo, tag, MT_MANIFEST, b.blobs[mdigest])
            top = mdigest
        else:
            index = canonical({
                "schemaVersion": 2,
                "mediaType": MT_INDEX,
                "manifests": [{"mediaType": MT_MANIFEST, "digest": mdigest, "size": msize,
                               "platform": {"architecture": ARCH, "os": "linux"}}],
            })
            reg.put_manifest(repo, tag, MT_INDEX, index)
            top = sha256(index)
        served = reg.manifest_digest(repo, tag, MT_INDEX if not plain else MT_MANIFEST)
        if served != top:
            sys.exit("images.py: %s:%s is served as %s, pushed %s" % (repo, tag, served, top))
        pushed.append((repo, tag, top, mdigest))
    return pushed, uploaded


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--plain", action="store_true", help="push manifests without an index")
    ap.add_argument("--list", metavar="FILE", help="write 'repo:tag digest' lines here")
    args = ap.parse_args()

    b = Builder(args.inputs)
    define_images(b)
    pushed, uploaded = push(b, Registry(args.registry), args.plain)
    lines = ["%s:%s %s" % (repo, tag, top) for repo, tag, top, _ in pushed]
    if args.list:
        with open(args.list, "w") as f:
            f.write("\n".join(lines) + "\n")
    print("images.py: %d tags of %d images pushed to http://%s (%d new blobs)"
          % (len(pushed), len(b.images), args.registry, uploaded))


if __name__ == "__main__":
    main()
