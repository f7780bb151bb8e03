#!/usr/bin/env bash
# Builds crid's Debian package with dpkg-deb: the release binaries, crid.service,
# /etc/crid/crid.json and /etc/crictl.yaml as conffiles, the docs, and a control
# file whose Depends are what dpkg-shlibdeps finds the binaries link, plus runc.
#
#   packaging/build-deb.sh [--bin-dir DIR] [--out DIR]
#
# Without --bin-dir the binaries are built first with $BAZEL build
# $CRID_RELEASE_FLAGS (default --config=release: optimised and stripped, see
# .bazelrc). The package is written to --out (default dist/) as
# crid_<VERSION>_<arch>.deb; its path is the last line of output.
# DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BAZEL=${BAZEL:-bazel}
read -r -a release_flags <<<"${CRID_RELEASE_FLAGS:---config=release}"

bin_dir="" out_dir=$REPO/dist
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir=${2:?}; shift ;;
    --out) out_dir=${2:?}; shift ;;
    *) echo "usage: $0 [--bin-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null ||
    { echo "build-deb.sh: $tool is missing (Debian package dpkg-dev)" >&2; exit 1; }
done

if [[ -z "$bin_dir" ]]; then
  (cd "$REPO" && "$BAZEL" build "${release_flags[@]}" //:crid //shim:crid-shim //pause:crid-pause) >&2
  bin_dir=$(cd "$REPO" && "$BAZEL" info "${release_flags[@]}" bazel-bin 2>/dev/null)
fi

version=$(tr -d '[:space:]' <"$REPO/VERSION")
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/crid
"$HERE/install.sh" --bin-dir "$bin_dir" --prefix /usr --destdir "$stage" \
  --unit-dir /lib/systemd/system >&2

# dpkg-shlibdeps reads debian/control from its working directory.
mkdir -p "$work/src/debian"
printf 'Source: crid\n\nPackage: crid\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$stage/usr/bin/crid" -e"$stage/usr/bin/crid-shim" \
  -e"$stage/usr/bin/crid-pause" 2>"$work/shlibdeps.err") ||
  { cat "$work/shlibdeps.err" >&2; exit 1; }
shlibs=${shlibs#shlibs:Depends=}
[[ -n "$shlibs" ]] || { echo "build-deb.sh: dpkg-shlibdeps found no libraries" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: crid
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-crid maintainers <maintainers@crid.invalid>}
Installed-Size: $installed_kb
Depends: $shlibs, runc, init-system-helpers (>= 1.54~)
Recommends: containernetworking-plugins, iptables
Suggests: crun
Section: admin
Priority: optional
Description: Kubernetes container runtime (CRI) in C++
 crid serves the CRI runtime.v1 RuntimeService and ImageService on
 /run/crid/crid.sock for kubelet and crictl. Pods are sandboxes sharing
 network, IPC and UTS namespaces, supervised by one crid-shim each, which
 outlives restarts of crid; containers run through runc (or crun).
EOF
printf '/etc/crid/crid.json\n/etc/crictl.yaml\n' >"$stage/DEBIAN/conffiles"
install -m 0755 "$HERE/debian/postinst" "$HERE/debian/prerm" "$HERE/debian/postrm" "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

mkdir -p "$out_dir"
deb=$out_dir/crid_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
