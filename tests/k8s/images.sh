#!/bin/bash
# Builds, offline, the images critest asks for (and agnhost for the node e2e tests) and pushes
# them into the local docker-registry under their upstream repository paths and tags
# (tests/k8s/images.py lists them and says what each one holds). crid reaches them through its
# registry mirrors: registry.k8s.io, k8s.gcr.io, gcr.io, docker.io, public.ecr.aws and quay.io
# all mirror to http://127.0.0.1:$CRID_K8S_REGISTRY_PORT (default 5100).
#
# Starts the registry when it does not run yet and stops it again at exit in that case; a
# registry already started by tests/k8s/critest.sh is left running. Registry data lives in
# $CRID_K8S_CACHE/registry (default /var/cache/crid-k8s). Rerunning is cheap: images are
# reproducible, and blobs the registry holds are not sent again.
#   tests/k8s/images.sh [--critest-only]   --critest-only leaves out agnhost (saves its build)
#   IMAGE_PLAIN=1 tests/k8s/images.sh      push plain manifests instead of one-entry indexes
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CRITEST_ONLY=0
case "${1:-}" in
  --critest-only) CRITEST_ONLY=1 ;;
  "") ;;
  *) echo "usage: $0 [--critest-only]" >&2; exit 2 ;;
esac

ensure_packages gcc:/usr/bin/gcc libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a python3:/usr/bin/python3 \
  util-linux:/usr/bin/ipcs procps:/usr/bin/pgrep curl:/usr/bin/curl

# agnhost and nnp come from the pinned Kubernetes build (a no-op when it is cached).
if [ "$CRITEST_ONLY" = 1 ]; then "$HERE/build.sh" nnp >&2; else "$HERE/build.sh" nnp agnhost >&2; fi
BIN=$("$HERE/build.sh" --print-bin)
K8S_SRC=$CACHE/gopath/pkg/mod/k8s.io/kubernetes@$K8S_VERSION

WORK=$CACHE/images
IN=$WORK/inputs
mkdir -p "$IN" "$WORK/debs"

# Debian's dynamically linked busybox and nginx, unpacked, not installed (busybox conflicts
# with busybox-static, and nginx is not wanted as a host service).
deb_binary() { # PACKAGE PATH-IN-PACKAGE OUTPUT-NAME
  local pkg=$1 path=$2 out=$3 dir=$WORK/debs/$1
  if [ ! -x "$dir/root/$path" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && { apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null; }; } &&
      dpkg-deb -x ./*.deb root) ||
      { echo "images.sh: FAIL: cannot download Debian package $pkg" >&2; exit 1; }
  fi
  install -m 0755 "$dir/root/$path" "$IN/$out"
  dpkg-deb --showformat='${Package} ${Version}\n' -W "$dir"/*.deb >>"$IN/VERSIONS.new"
}
: >"$IN/VERSIONS.new"
deb_binary busybox bin/busybox busybox
deb_binary nginx usr/sbin/nginx nginx
install -m 0755 /usr/bin/ipcs "$IN/ipcs"
install -m 0755 /usr/bin/pgrep "$IN/pgrep"
# agnhost's image (Alpine upstream) has bash and curl, which the node e2e specs run in it.
install -m 0755 /usr/bin/bash "$IN/bash"
install -m 0755 /usr/bin/curl "$IN/curl"
# glibc-dns-testing (Debian upstream) answers `hostname -f` with glibc's resolver.
install -m 0755 /bin/hostname "$IN/hostname"
dpkg-query --showformat='${Package} ${Version}\n' -W util-linux procps libc6 bash curl hostname >>"$IN/VERSIONS.new"
# nmeter: Debian's busybox is built without the applet; the node e2e specs use its %Nt.
gcc -Os -Wall -Werror -static -o "$IN/nmeter" "$HERE/nmeter.c"
# Kubernetes' pause, as its build/pause/Makefile compiles it.
gcc -Os -Wall -Werror -static -DVERSION=v3.10.2-crid-test -o "$IN/pause" "$K8S_SRC/build/pause/linux/pause.c"
install -m 0755 "$BIN/nnp" "$IN/nnp"
# agnhost's image carries porter's self-signed localhost certificate and key (netexec --tls-*).
install -m 0644 "$K8S_SRC/test/images/agnhost/porter/localhost.crt" "$IN/localhost.crt"
install -m 0644 "$K8S_SRC/test/images/agnhost/porter/localhost.key" "$IN/localhost.key"
if [ "$CRITEST_ONLY" = 1 ]; then
  rm -f "$IN/agnhost"
  echo "kubernetes $K8S_VERSION (pause.c, nnp)" >>"$IN/VERSIONS.new"
else
  install -m 0755 "$BIN/agnhost" "$IN/agnhost"
  echo "kubernetes $K8S_VERSION (pause.c, nnp, agnhost $AGNHOST_VERSION)" >>"$IN/VERSIONS.new"
fi
mv "$IN/VERSIONS.new" "$IN/VERSIONS"

registry_up
trap registry_down EXIT

plain=()
[ "${IMAGE_PLAIN:-0}" = 1 ] && plain=(--plain)
AGNHOST_VERSION=$AGNHOST_VERSION python3 "$HERE/images.py" --registry "$REGISTRY_ADDR" --inputs "$IN" \
  --list "$WORK/pushed.txt" "${plain[@]}"
echo "images.sh: tag list in $WORK/pushed.txt; inputs: $(paste -sd';' "$IN/VERSIONS")"
