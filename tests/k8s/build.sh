#!/bin/bash
# Build the pinned Kubernetes test tools that the conformance runs use:
#   critest, crictl                                  from sigs.k8s.io/cri-tools ($CRI_TOOLS_VERSION)
#   kubelet, kubectl, e2e_node.test, agnhost, nnp    from k8s.io/kubernetes     ($K8S_VERSION)
#   ginkgo (runs e2e_node.test in parallel)          at the version k8s.io/kubernetes requires
# (agnhost and nnp, the nonewprivs test program, go into test images: tests/k8s/images.sh.)
# Versions come from tests/k8s/versions.env only. Sources come through the Go module proxy;
# outputs land in $CRID_K8S_CACHE/<K8S_VERSION>/bin (default /var/cache/crid-k8s) and each tool
# is reused while versions.env and the Go version match what it was built with (a stamp file
# per tool records them). Nothing is written into the repository.
#
#   tests/k8s/build.sh [TOOL...]         build the named tools (default: all) when missing or stale
#   tests/k8s/build.sh --force [TOOL...] rebuild them
#   tests/k8s/build.sh --print-bin       print the bin directory and exit
#
# Go builds run with -p 1 (one package at a time) so that one core of a 2-core machine stays free.
# The wall time of each build goes to <bin>/../build-times.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

CACHE=${CRID_K8S_CACHE:-/var/cache/crid-k8s}
OUT=$CACHE/$K8S_VERSION
BIN=$OUT/bin
ALL=(critest crictl nnp agnhost kubelet kubectl e2e_node.test ginkgo)

FORCE=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --print-bin) echo "$BIN"; exit 0 ;;
    -*) echo "usage: $0 [--force] [TOOL...] | --print-bin   (tools: ${ALL[*]})" >&2; exit 2 ;;
    *) [[ " ${ALL[*]} " == *" $a "* ]] || { echo "build.sh: unknown tool $a (tools: ${ALL[*]})" >&2; exit 2; }
       WANT+=("$a") ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=("${ALL[@]}")

export PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || { echo "build.sh: FAIL: no Go toolchain (expected /usr/local/go/bin/go)" >&2; exit 1; }
export GOPATH=$CACHE/gopath
export GOMODCACHE=$GOPATH/pkg/mod
export GOCACHE=$CACHE/gocache
export CGO_ENABLED=0
export GOFLAGS="-p=1 -trimpath"
mkdir -p "$BIN" "$GOCACHE"

STAMP_TEXT="$(grep -E '^[A-Z_]+=' "$HERE/versions.env"; echo "GO=$(go env GOVERSION)")"
stale() { # TOOL
  [ "$FORCE" = 1 ] || [ ! -x "$BIN/$1" ] || [ ! -f "$BIN/.stamp-$1" ] || [ "$(cat "$BIN/.stamp-$1")" != "$STAMP_TEXT" ]
}
TODO=()
for t in "${WANT[@]}"; do stale "$t" && TODO+=("$t"); done
if [ ${#TODO[@]} -eq 0 ]; then
  echo "build.sh: up to date in $BIN: ${WANT[*]} ($(grep -E '^(K8S|CRI_TOOLS)_VERSION=' "$HERE/versions.env" | paste -sd' '))"
  exit 0
fi

# Fetch the two source modules first: the one step that needs the module proxy, and the one
# that fails clearly when it cannot be reached (a populated module cache needs no network).
dl_log=$OUT/download.log
if ! go mod download -json "k8s.io/kubernetes@$K8S_VERSION" "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" >"$dl_log" 2>&1; then
  why=$(grep -m1 -E '"Error"|error|dial|timeout' "$dl_log" | sed 's/^[[:space:]]*//' | cut -c1-200)
  echo "build.sh: FAIL: cannot fetch k8s.io/kubernetes@$K8S_VERSION / sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION from the Go module proxy ($(go env GOPROXY)): ${why:-see $dl_log}" >&2
  exit 1
fi
K8S_SRC=$GOMODCACHE/k8s.io/kubernetes@$K8S_VERSION
CRI_SRC=$GOMODCACHE/sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION

TIMES=$OUT/build-times.txt
timed() { # TOOL CMD...  -- runs CMD in the current directory, records its wall time
  local name=$1; shift
  local t0
  t0=$(date +%s)
  echo "build.sh: building $name ..." >&2
  rm -f "$BIN/.stamp-$name"
  if ! "$@" >"$OUT/build-$name.log" 2>&1; then
    echo "build.sh: FAIL: building $name failed; last lines of $OUT/build-$name.log:" >&2
    tail -20 "$OUT/build-$name.log" >&2
    if grep -qE 'dial tcp|no such host|proxyconnect|i/o timeout|connection refused' "$OUT/build-$name.log"; then
      echo "build.sh: FAIL: the Go module proxy ($(go env GOPROXY)) cannot be reached" >&2
    fi
    exit 1
  fi
  echo "$STAMP_TEXT" >"$BIN/.stamp-$name"
  echo "$(date -u +%FT%TZ) $name $(( $(date +%s) - t0 ))s" | tee -a "$TIMES" >&2
}

# ---- cri-tools: built as its own main module, from its release (read-only) in the module
# cache, with the dependency versions of its own go.mod/go.sum. critest is a test binary of
# ./cmd/critest (its Makefile: go test -c ./cmd/critest); crictl is a main package.
CRI_LDFLAGS="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRI_TOOLS_VERSION#v}"
build_critest() { cd "$CRI_SRC" && timed critest go test -c -mod=readonly -ldflags "$CRI_LDFLAGS" -o "$BIN/critest" ./cmd/critest; }
build_crictl() { cd "$CRI_SRC" && timed crictl go build -mod=readonly -ldflags "$CRI_LDFLAGS" -o "$BIN/crictl" ./cmd/crictl; }

# ---- Kubernetes: a throwaway module that requires k8s.io/kubernetes and replaces every staging
# module (listed as "=> ./staging/..." in Kubernetes' own go.mod) by its published release.
MOD=$OUT/src/kubernetes
k8s_module() {
  [ -n "${K8S_LDFLAGS:-}" ] && return 0
  mkdir -p "$MOD"
  local staging goline m
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[A-Za-z0-9._/-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$K8S_SRC/go.mod")
  [ -n "$staging" ] || { echo "build.sh: FAIL: no staging replace lines found in $K8S_SRC/go.mod" >&2; exit 1; }
  goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$K8S_SRC/go.mod")
  {
    echo "// Generated by tests/k8s/build.sh; not part of the repository."
    echo "module crid.test/k8s-tools"
    echo
    echo "go $goline"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $K8S_STAGING_VERSION"; done
    echo ")"
  } >"$MOD/go.mod.new"
  if ! cmp -s "$MOD/go.mod.new" "$MOD/go.mod"; then
    mv "$MOD/go.mod.new" "$MOD/go.mod"; rm -f "$MOD/go.sum"
  else
    rm -f "$MOD/go.mod.new"
  fi
  local major minor kv="" pkg
  major=${K8S_VERSION#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    kv+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    kv+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  K8S_LDFLAGS="-s -w$kv"
}
# -mod=mod lets the go command complete go.sum for the generated module from the proxy.
k8s_build() { # TOOL go-subcommand-args...
  k8s_module
  cd "$MOD" && timed "$@"
}
build_kubelet() { k8s_build kubelet go build -mod=mod -ldflags "$K8S_LDFLAGS" -o "$BIN/kubelet" k8s.io/kubernetes/cmd/kubelet; }
build_kubectl() { k8s_build kubectl go build -mod=mod -ldflags "$K8S_LDFLAGS" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl; }
build_agnhost() { k8s_build agnhost go build -mod=mod -ldflags "-s -w -X main.Version=$AGNHOST_VERSION" -o "$BIN/agnhost" k8s.io/kubernetes/test/images/agnhost; }
build_nnp() { k8s_build nnp go build -mod=mod -ldflags "-s -w" -o "$BIN/nnp" k8s.io/kubernetes/test/images/nonewprivs; }
# ginkgo's CLI at the version Kubernetes' go.mod requires (so it matches e2e_node.test's library).
build_ginkgo() { k8s_build ginkgo go build -mod=mod -ldflags "-s -w" -o "$BIN/ginkgo" github.com/onsi/ginkgo/v2/ginkgo; }
build_e2e_node_test() { k8s_build e2e_node.test go test -c -mod=mod -ldflags "$K8S_LDFLAGS" -o "$BIN/e2e_node.test" k8s.io/kubernetes/test/e2e_node; }

for t in "${TODO[@]}"; do
  "build_${t//./_}"
  [ -x "$BIN/$t" ] || { echo "build.sh: FAIL: $BIN/$t missing after its build" >&2; exit 1; }
done
echo "build.sh: built ${TODO[*]} in $BIN" >&2
