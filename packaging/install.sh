#!/usr/bin/env bash
# Installs crid from built binaries: the layout `make install` and the Debian
# package (packaging/build-deb.sh) share.
#
#   packaging/install.sh --bin-dir DIR [--prefix /usr/local] [--destdir ROOT]
#                        [--unit-dir DIR] [--keep-config] [--uninstall]
#
#   --bin-dir     where crid, crid-shim and crid-pause were built (Bazel's
#                 layout: DIR/crid, DIR/shim/crid-shim, DIR/pause/crid-pause), or
#                 a directory holding the three side by side
#   --prefix      PREFIX/bin gets the three binaries side by side (crid finds
#                 crid-shim and crid-pause next to itself, so no config names
#                 them), PREFIX/share/doc/crid the docs and examples
#   --destdir     staging root prepended to every path (packaging)
#   --unit-dir    crid.service's directory (default PREFIX/lib/systemd/system,
#                 which systemd reads for /usr and /usr/local alike)
#   --keep-config /etc/crid/crid.json and /etc/crictl.yaml are written only
#                 when absent (an administrator's edits survive a reinstall)
#   --uninstall   removes what an install put under PREFIX and the unit; the
#                 files under /etc are left
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

bin_dir="" prefix=/usr/local destdir="" unit_dir="" keep_config=0 uninstall=0
usage() {
  echo "usage: $0 --bin-dir DIR [--prefix P] [--destdir D] [--unit-dir U] [--keep-config] [--uninstall]" >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir=${2:?}; shift ;;
    --prefix) prefix=${2:?}; shift ;;
    --destdir) destdir=${2?}; shift ;;
    --unit-dir) unit_dir=${2:?}; shift ;;
    --keep-config) keep_config=1 ;;
    --uninstall) uninstall=1 ;;
    *) usage ;;
  esac
  shift
done
[[ "$prefix" == /* ]] || { echo "install.sh: --prefix must be absolute: $prefix" >&2; exit 2; }
unit_dir=${unit_dir:-$prefix/lib/systemd/system}
bindir=$prefix/bin
docdir=$prefix/share/doc/crid
binaries=(crid crid-shim crid-pause)

if ((uninstall)); then
  for b in "${binaries[@]}"; do rm -f "$destdir$bindir/$b"; done
  rm -f "$destdir$unit_dir/crid.service"
  rm -rf "$destdir$docdir"
  echo "install.sh: removed crid from $destdir$prefix and $destdir$unit_dir (configs under /etc kept)"
  exit 0
fi

[[ -n "$bin_dir" ]] || usage
declare -A built=(
  [crid]=$bin_dir/crid
  [crid-shim]=$bin_dir/shim/crid-shim
  [crid-pause]=$bin_dir/pause/crid-pause
)
# Or side by side, as installed (an unpacked package).
for b in crid-shim crid-pause; do
  [[ -e "${built[$b]}" ]] || built[$b]=$bin_dir/$b
done
for b in "${binaries[@]}"; do
  [[ -x "${built[$b]}" ]] || { echo "install.sh: ${built[$b]} is missing (build it first)" >&2; exit 1; }
done

install -d -m 0755 "$destdir$bindir" "$destdir$unit_dir" "$destdir$docdir/docs" \
  "$destdir$docdir/examples" "$destdir/etc/crid"
for b in "${binaries[@]}"; do
  install -m 0755 "${built[$b]}" "$destdir$bindir/$b"
done
sed -e "s|@BINDIR@|$bindir|g" -e "s|@DOCDIR@|$docdir|g" "$HERE/crid.service.in" >"$destdir$unit_dir/crid.service"
chmod 0644 "$destdir$unit_dir/crid.service"

install_config() { # SOURCE TARGET
  if ((keep_config)) && [[ -e "$destdir$2" ]]; then
    echo "install.sh: $destdir$2 exists; left as it is (the shipped one is in $docdir/examples)"
    return
  fi
  install -m 0644 "$1" "$destdir$2"
}
install_config "$HERE/crid.json" /etc/crid/crid.json
install_config "$HERE/crictl.yaml" /etc/crictl.yaml
install -m 0644 "$HERE/crid.json" "$HERE/crictl.yaml" "$destdir$docdir/examples/"
install -m 0644 "$REPO/README.md" "$REPO/VERSION" "$destdir$docdir/"
install -m 0644 "$REPO"/docs/*.md "$destdir$docdir/docs/"
echo "install.sh: crid $(cat "$REPO/VERSION") installed in $destdir$prefix (unit $destdir$unit_dir/crid.service)"
