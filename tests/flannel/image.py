#!/usr/bin/env python3
"""Writes the pod image of the two-node test as an OCI image-layout tar for `crid images import`.

The nodes' crids run in network namespaces that reach no registry, so each node's root gets the
image by import. One layer: Debian's busybox-static as /bin/busybox with the applets the test
runs (sh, sleep, nc, ping, ip, tc, cat, echo, ...) as symlinks. Reproducible: fixed timestamps.

  image.py BUSYBOX OUT.tar NAME
"""
import gzip
import hashlib
import io
import json
import sys
import tarfile

APPLETS = ["sh", "sleep", "nc", "ping", "ping6", "ip", "tc", "cat", "echo", "ls", "ifconfig", "wget",
           "httpd", "true", "hostname", "env", "date"]


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name, kind, mode=0o755, data=None, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    if data is not None:
        info.size = len(data)
    return info, data


def main():
    busybox_path, out, name = sys.argv[1:4]
    busybox = open(busybox_path, "rb").read()
    members = [entry("bin", tarfile.DIRTYPE), entry("etc", tarfile.DIRTYPE),
               entry("tmp", tarfile.DIRTYPE, 0o1777), entry("www", tarfile.DIRTYPE),
               entry("bin/busybox", tarfile.REGTYPE, data=busybox),
               entry("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/:/bin/sh\n"),
               entry("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n"),
               entry("www/index.html", tarfile.REGTYPE, 0o644, b"flannel pod\n")]
    members += [entry("bin/" + a, tarfile.SYMTYPE, 0o777, link="busybox") for a in APPLETS]
    layer = tar_bytes(members)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(layer)
    layer_gz = gz.getvalue()
    blobs = {}

    def blob(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": blob(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": blob(layer_gz), "size": len(layer_gz)}],
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": blob(manifest), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name}}],
    }, sort_keys=True).encode()
    files = [entry("oci-layout", tarfile.REGTYPE, 0o644, b'{"imageLayoutVersion":"1.0.0"}'),
             entry("index.json", tarfile.REGTYPE, 0o644, index),
             entry("blobs", tarfile.DIRTYPE), entry("blobs/sha256", tarfile.DIRTYPE)]
    files += [entry("blobs/sha256/" + d.split(":")[1], tarfile.REGTYPE, 0o644, data)
              for d, data in sorted(blobs.items())]
    with open(out, "wb") as f:
        f.write(tar_bytes(files))


if __name__ == "__main__":
    main()
