#!/bin/bash
# Runs critest's validation (conformance) suite, serially, against a real crid.
#
#   tests/k8s/critest.sh [--counts] [-- EXTRA CRITEST/GINKGO FLAGS]
#
# What it does, all on this machine and offline once the tools are built:
#   1. tests/k8s/build.sh: critest and crictl at the pinned cri-tools release (cached)
#   2. bazel build //:crid (or uses $CRID_BIN, with crid-shim and crid-pause beside it in
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
RESULTS=$CACHE/results
ROOT_DIR=/var/lib/crid-critest
STATE_DIR=/run/crid-critest
SOCK=$STATE_DIR/crid.sock
EP=unix://$SOCK
NET_DIR=$STATE_DIR/net.d
SUBNET=${CRID_K8S_POD_SUBNET:-10.233.0.0/24}
BRIDGE=cridk8s0
SKIPS=${CRITEST_SKIPS:-$HERE/critest-skips.txt}
CRID_PID=
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

crictl() { "$BIN/crictl" --config "$STATE_DIR/crictl.yaml" "$@"; }

# ---- teardown: only what this script started
stop_pid() { # PID NAME
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "critest.sh: $2 (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

# PIDs of processes this run's crid started and left: shims (their --dir is under our state
# directory) and anything inside one of our pods' network namespaces (crid-pause, containers).
leftover_pids() {
  local p cmd net pins=""
  for p in "$STATE_DIR"/netns/*; do
    [ -e "$p" ] && pins+=" net:[$(stat -L -c %i "$p" 2>/dev/null)]"
  done
  for p in /proc/[0-9]*; do
    cmd=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
    if [[ "$cmd" == *" --dir $STATE_DIR/"* ]]; then echo "${p#/proc/}"; continue; fi
    net=$(readlink "$p/ns/net" 2>/dev/null) || continue
    [[ -n "$pins" && "$pins " == *" $net "* ]] && echo "${p#/proc/}"
  done
}

# What crid should have removed but a failed or interrupted run may leave: runc containers
# under our runc root, our shims and the processes in our pods' network namespaces, mounts
# under our directories; then the directories. Each finding is reported.
remove_leftovers() {
  local pid cmd
  # A crid of an interrupted run (started with our config file): stopped first, like ours.
  for pid in $(pgrep -x crid 2>/dev/null); do
    cmd=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    if [[ "$cmd" == *" --config $STATE_DIR/crid.json"* ]]; then
      echo "critest.sh: warning: leftover crid pid $pid; stopping it" >&2
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [ -d "$STATE_DIR/runtime/runc" ]; then
    for c in $(runc --root "$STATE_DIR/runtime/runc" list -q 2>/dev/null); do
      echo "critest.sh: warning: leftover runc container $c; deleting it" >&2
      runc --root "$STATE_DIR/runtime/runc" delete -f "$c" >/dev/null 2>&1
    done
  fi
  # Shims and crid-pause outlive crid by design; end the ones this run left.
  for pid in $(leftover_pids); do
    echo "critest.sh: warning: leftover process $pid ($(cat /proc/$pid/comm 2>/dev/null)); killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  done
  # Mounts left under our directories (deepest first), then the directories.
  for d in "$STATE_DIR" "$ROOT_DIR"; do
    findmnt -rn -o TARGET 2>/dev/null | grep -E "^$d(/|$)" | sort -r | while read -r m; do
      echo "critest.sh: warning: leftover mount $m; unmounting it" >&2
      umount -l "$m" 2>/dev/null
    done
  done
  rm -rf --one-file-system "$STATE_DIR" "$ROOT_DIR" 2>/dev/null
}

teardown() {
  trap - EXIT INT TERM
  if [ -n "$CRID_PID" ] && [ -n "${BIN:-}" ] && kill -0 "$CRID_PID" 2>/dev/null; then
    # Whatever critest left behind, removed through the CRI like kubelet would.
    crictl --timeout 60s rmp -fa >/dev/null 2>&1
    left=$(crictl pods -q 2>/dev/null | wc -l)
    [ "$left" -gt 0 ] && echo "critest.sh: warning: $left pod(s) still listed after rmp -fa" >&2
    stop_pid "$CRID_PID" crid
  fi
  CRID_PID=
  remove_leftovers
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE" 2>/dev/null
  fi
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
trap 'teardown; exit 130' INT TERM
trap teardown EXIT

[ "$(id -u)" = 0 ] || { echo "critest.sh: FAIL: must run as root (crid needs namespaces, mounts, cgroups)" >&2; result_line 0 1 0; exit 1; }
mkdir -p "$RESULTS" "$CACHE"
exec 9>"$CACHE/critest.lock"
flock -n 9 || { echo "critest.sh: FAIL: another tests/k8s/critest.sh run holds $CACHE/critest.lock" >&2; result_line 0 1 0; exit 1; }

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
if [ -n "${CRID_BIN:-}" ]; then
  CRID=$CRID_BIN
  OUTDIR=$(dirname "$CRID_BIN")
else
  (cd "$REPO" && bazel build //:crid) >"$RESULTS/bazel-build.log" 2>&1 ||
    { tail -20 "$RESULTS/bazel-build.log" >&2; die "bazel build //:crid failed (log: $RESULTS/bazel-build.log)"; }
  OUTDIR=$(readlink -f "$REPO/bazel-bin")
  CRID=$OUTDIR/crid
fi
for f in "$CRID" "$OUTDIR/shim/crid-shim" "$OUTDIR/pause/crid-pause"; do [ -x "$f" ] || die "missing $f"; done
T_CRID=$(( $(date +%s) - t ))

# ---- 3. registry and images
t=$(date +%s)
registry_up adopt || die "docker-registry did not start"
"$HERE/images.sh" --critest-only >&2 || die "tests/k8s/images.sh failed"
T_IMAGES=$(( $(date +%s) - t ))

# ---- 4. crid with mirrors and a CNI network
if [ -e "$ROOT_DIR" ] || [ -e "$STATE_DIR" ]; then
  echo "critest.sh: removing what an earlier run left in $ROOT_DIR and $STATE_DIR" >&2
  remove_leftovers
  findmnt -rn -o TARGET | grep -qE "^($ROOT_DIR|$STATE_DIR)(/|$)" && die "mounts remain under $ROOT_DIR or $STATE_DIR from an earlier run"
fi
# The bridge is ours by name; an interrupted run leaves it (and its route) behind.
ip link del "$BRIDGE" 2>/dev/null && echo "critest.sh: warning: removed bridge $BRIDGE left by an earlier run" >&2
if ip -4 route show | grep -qE "^${SUBNET%%/*}[/ ]"; then
  die "the pod subnet $SUBNET is already routed on this host (set CRID_K8S_POD_SUBNET)"
fi
iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 && HAD_HOSTPORT_CHAINS=1 || HAD_HOSTPORT_CHAINS=0
SHM_BEFORE=$(ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ {print $2}'; echo none)
mkdir -p "$ROOT_DIR" "$STATE_DIR/netns" "$NET_DIR" "$STATE_DIR/bin"
# Copies, so that a rebuild in the work tree during the run cannot swap binaries under crid.
install -m 0755 "$CRID" "$STATE_DIR/bin/crid"
install -m 0755 "$OUTDIR/shim/crid-shim" "$STATE_DIR/bin/crid-shim"
install -m 0755 "$OUTDIR/pause/crid-pause" "$STATE_DIR/bin/crid-pause"
CRID=$STATE_DIR/bin/crid
SHIM_BIN=$STATE_DIR/bin/crid-shim
PAUSE_BIN=$STATE_DIR/bin/crid-pause
# isGateway gives the bridge an address in the subnet so the host reaches pod IPs; with no
# routes in the IPAM config, pods have no default route, and ipMasq is off: nothing leaves
# the machine. portmap's snat (on by default) only rewrites 127.0.0.1 -> hostPort traffic.
cat >"$NET_DIR/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "crid-critest",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE_DIR/ipam", "ranges": [[{"subnet": "$SUBNET"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
mirror="{\"mirrors\": [\"http://$REGISTRY_ADDR\"]}"
cat >"$STATE_DIR/crid.json" <<EOF
{
  "root": "$ROOT_DIR",
  "state": "$STATE_DIR",
  "listen": "$EP",
  "logLevel": "info",
  "cgroupDriver": "cgroupfs",
  "image": {"registries": {
    "registry.k8s.io": $mirror, "k8s.gcr.io": $mirror, "gcr.io": $mirror,
    "docker.io": $mirror, "public.ecr.aws": $mirror, "quay.io": $mirror}},
  "cni": {"confDir": "$NET_DIR", "binDirs": ["/usr/lib/cni", "/opt/cni/bin"]},
  "pod": {"pauseBinary": "$PAUSE_BIN", "netnsDir": "$STATE_DIR/netns"},
  "container": {"shimBinary": "$SHIM_BIN"},
  "streaming": {"address": "127.0.0.1"}
}
EOF
printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n' "$EP" "$EP" >"$STATE_DIR/crictl.yaml"
cp "$STATE_DIR/crid.json" "$NET_DIR/10-critest.conflist" "$RESULTS/"
# crid falls back from a mirror to the upstream registry when the mirror lacks an image. The
# proxy variables (libcurl honours them) send every such request to a closed port on the
# loopback, so not even a DNS query leaves the machine; the local registry is exempt.
http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost \
  "$CRID" --config "$STATE_DIR/crid.json" >"$RESULTS/crid.log" 2>&1 </dev/null 9>&- &
CRID_PID=$!
for i in $(seq 1 200); do
  kill -0 "$CRID_PID" 2>/dev/null || { tail -20 "$RESULTS/crid.log" >&2; CRID_PID=; die "crid exited at start (log: $RESULTS/crid.log)"; }
  crictl --timeout 2s version >/dev/null 2>&1 && break
  sleep 0.1
done
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
