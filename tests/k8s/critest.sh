#!/bin/bash
# Runs critest's validation (conformance) suite, serially, against a real crid.
#
#   tests/k8s/critest.sh [--counts] [-- EXTRA CRITEST/GINKGO FLAGS]
#
# What it does, all on this machine and offline once the tools are built:
#   1. tests/k8s/build.sh: critest and crictl at the pinned cri-tools release (cached)
#   2. bazel build --config=release //:crid (or uses $CRID_BIN, with crid-shim and crid-pause beside it in
#      bazel-bin's layout: $CRID_BIN's dir/shim/crid-shim and /pause/crid-pause)
#   3. a docker-registry on 127.0.0.1:$CRID_K8S_REGISTRY_PORT (default 5100) filled by
#      tests/k8s/images.sh with the images critest pulls, under their upstream names
#   4. crid with its own root, state and socket, a registry mirror for each upstream registry
#      host, and a CNI bridge network (no masquerading, no route out of the pod's subnet; the
#      portmap plugin for host ports on 127.0.0.1)
#   5. critest, serial; specs listed in tests/k8s/critest-skips.txt are skipped (each with its
#      reason); any other failing spec fails the run
#   6. teardown of what this script started, by PID: crid, the registry, pods crid left behind
#      (removed through the CRI first; then runc containers, shims and processes in the pods'
#      network namespaces, each reported), mounts, the bridge, and the SysV segments critest's
#      host-IPC spec leaves
# Ends with one line "critest: N passed, N failed, N skipped"; with --counts one more line
# "critest P F S" follows (the form tools/run-tests.sh's count_into_summary reads).
# Output: $CRID_K8S_CACHE/results/ (critest.log, critest.json, critest-junit.xml, crid.log).
#
# Environment: CRID_K8S_CACHE (/var/cache/crid-k8s), CRID_K8S_REGISTRY_PORT (5100),
# CRID_K8S_POD_SUBNET (10.233.0.0/24), CRID_BIN, CRITEST_TIMEOUT (45m), CRITEST_SKIPS (the skip
# list; /dev/null runs every spec).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

COUNTS=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --counts) COUNTS=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "usage: $0 [--counts] [-- critest flags]" >&2; exit 2 ;;
  esac
  shift
done

T0=$(date +%s)
PROG=critest.sh
RESULTS=$CACHE/results
ROOT_DIR=/var/lib/crid-critest
STATE_DIR=/run/crid-critest
SUBNET=${CRID_K8S_POD_SUBNET:-10.233.0.0/24}
BRIDGE=cridk8s0
crid_paths   # SOCK, EP, NET_DIR, CRID_PID (lib.sh)
SKIPS=${CRITEST_SKIPS:-$HERE/critest-skips.txt}
SHM_BEFORE=
HAD_HOSTPORT_CHAINS=1   # until checked: leave portmap's shared chains alone

result_line() { # PASSED FAILED SKIPPED
  echo "critest: $1 passed, $2 failed, $3 skipped"
  [ "$COUNTS" = 1 ] && echo "critest $1 $2 $3"
}
die() { # MESSAGE -- a failure before critest could run counts as one failed spec
  echo "critest.sh: FAIL: $*" >&2
  teardown
  result_line 0 1 0
  exit 1
}

crictl() { crid_crictl "$@"; }

# ---- teardown: only what this script started (crid's part: crid_stop in lib.sh)
teardown() {
  trap - EXIT INT TERM
  # Whatever critest left behind is removed through the CRI like kubelet would, then crid
  # stops and what it left is reported and removed, and the bridge.
  crid_stop
  # portmap's top-level chains, when this run created them and no pod (of anyone) uses them.
  if [ "$HAD_HOSTPORT_CHAINS" = 0 ] && iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 &&
    ! iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A '; then
    iptables -t nat -S 2>/dev/null | grep -e '-j CNI-HOSTPORT-' | sed 's/^-A /-D /' |
      while read -r rule; do eval iptables -t nat "$rule" 2>/dev/null; done
    for c in $(iptables -t nat -S 2>/dev/null | sed -n 's/^-N \(CNI-HOSTPORT-[A-Z]*\)$/\1/p'); do
      iptables -t nat -F "$c" 2>/dev/null; iptables -t nat -X "$c" 2>/dev/null
    done
  fi
  # critest's host-IPC spec makes 1 MiB SysV segments on the host with ipcmk and never removes
  # them: remove the unattached 1 MiB segments that appeared during this run.
  if [ -n "$SHM_BEFORE" ]; then
    ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ && $5 == 1048576 && $6 == 0 {print $2}' | while read -r id; do
      grep -qx "$id" <<<"$SHM_BEFORE" || ipcrm -m "$id" 2>/dev/null
    done
  fi
  registry_down
}
[ "$(id -u)" = 0 ] || { echo "critest.sh: FAIL: must run as root (crid needs namespaces, mounts, cgroups)" >&2; result_line 0 1 0; exit 1; }
mkdir -p "$RESULTS" "$CACHE"
exec 9>"$CACHE/critest.lock"
flock -n 9 || { echo "critest.sh: FAIL: another tests/k8s/critest.sh run holds $CACHE/critest.lock" >&2; result_line 0 1 0; exit 1; }
# Only once the lock is ours: the teardown removes crid's leftovers, which while another run
# holds the lock are that run's live pods.
trap 'teardown; exit 130' INT TERM
trap teardown EXIT

ensure_packages runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge iptables:/usr/sbin/iptables \
  iproute2:/usr/sbin/ip util-linux:/usr/bin/ipcmk python3:/usr/bin/python3 ||
  die "cannot install runc, containernetworking-plugins, iptables, iproute2"

# ---- 1. tools
t=$(date +%s)
"$HERE/build.sh" critest crictl >&2 || die "tests/k8s/build.sh failed"
BIN=$("$HERE/build.sh" --print-bin)
T_TOOLS=$(( $(date +%s) - t ))

# ---- 2. crid
t=$(date +%s)
crid_build || die "cannot build crid"
T_CRID=$(( $(date +%s) - t ))

# ---- 3. registry and images
t=$(date +%s)
registry_up adopt || die "docker-registry did not start"
"$HERE/images.sh" --critest-only >&2 || die "tests/k8s/images.sh failed"
T_IMAGES=$(( $(date +%s) - t ))

# ---- 4. crid with mirrors and a CNI network
iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 && HAD_HOSTPORT_CHAINS=1 || HAD_HOSTPORT_CHAINS=0
SHM_BEFORE=$(ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ {print $2}'; echo none)
crid_prepare cgroupfs || die "cannot prepare crid's directories and network"
crid_start || die "crid did not start"
crictl version >&2 || die "crid does not answer on $EP"

# ---- 5. critest
SKIP_ARGS=()
while IFS= read -r name; do
  SKIP_ARGS+=("--ginkgo.skip=$(sed 's/[][\\.^$*+?(){}|]/\\&/g' <<<"$name")")
done < <(grep -vE '^[[:space:]]*(#|$)' "$SKIPS" | sed 's/ | .*//')
rm -f "$RESULTS/critest.json" "$RESULTS/critest-junit.xml"
echo "critest.sh: critest $CRI_TOOLS_VERSION -> $EP (log: $RESULTS/critest.log)" >&2
t=$(date +%s)
timeout --signal=INT --kill-after=2m "${CRITEST_TIMEOUT:-45m}" \
  "$BIN/critest" --config "$STATE_DIR/crictl.yaml" --runtime-endpoint "$EP" --image-endpoint "$EP" \
  --ginkgo.no-color --ginkgo.timeout=40m \
  --ginkgo.json-report="$RESULTS/critest.json" --ginkgo.junit-report="$RESULTS/critest-junit.xml" \
  "${SKIP_ARGS[@]}" "${EXTRA[@]}" >"$RESULTS/critest.log" 2>&1 9>&-
rc=$?
T_CRITEST=$(( $(date +%s) - t ))
grep -E '^(Ran [0-9]+ of [0-9]+ Specs|(SUCCESS|FAIL)! )' "$RESULTS/critest.log" >&2

# ---- 6. teardown (crid first: its log is complete after it), then the verdict
teardown
report=$(python3 "$HERE/critest_report.py" "$RESULTS/critest.json" "$SKIPS")
rep_rc=$?
[ "$rc" -ne 0 ] && [ "$rep_rc" -eq 0 ] && { echo "critest exited $rc although no spec failed" >&2; rep_rc=1; }
echo "critest.sh: times: tools ${T_TOOLS}s, crid ${T_CRID}s, images ${T_IMAGES}s, critest ${T_CRITEST}s, total $(( $(date +%s) - T0 ))s" >&2
last=$(tail -n1 <<<"$report")
sed '$d' <<<"$report"
if [[ "$last" =~ ^critest:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
  f=${BASH_REMATCH[2]}
  [ "$rep_rc" -ne 0 ] && [ "$f" = 0 ] && f=1
  result_line "${BASH_REMATCH[1]}" "$f" "${BASH_REMATCH[3]}"
else
  result_line 0 1 0
  rep_rc=1
fi
exit "$rep_rc"
