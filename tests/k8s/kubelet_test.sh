#!/bin/bash
# Runs the pinned kubelet standalone (no API server: a static pod from a manifest directory)
# on crid, and checks what kubelet needs from its runtime.
#
#   tests/k8s/kubelet_test.sh [--counts] [--modes "generic evented"] [--driver cgroupfs|systemd]
#
# What it does, all on this machine and offline once the tools are built:
#   1. tests/k8s/build.sh: kubelet, crictl and agnhost at the pinned release (cached); when
#      they cannot be built the run fails with one line
#   2. bazel build --config=release //:crid //shim:crid-shim //pause:crid-pause (or $CRID_BIN, as critest.sh)
#   3. the local docker-registry (lib.sh) with agnhost and busybox under their upstream names
#      (tests/k8s/images.sh when the registry lacks them)
#   4. crid (lib.sh) with its own root, state, socket, registry mirrors and a CNI bridge
#      ($BRIDGE, subnet $CRID_K8S_KUBELET_SUBNET, nothing routed off the machine); the two
#      images pulled through crictl first
#   5. per mode ("generic": kubelet's default PLEG; "evented": --feature-gates=EventedPLEG=true)
#      kubelet with a KubeletConfiguration: its API on 127.0.0.1:10250 (anonymous, AlwaysAllow,
#      a self-signed serving certificate), healthz on 127.0.0.1:10248, a temporary root and pod
#      log directory, the cgroupfs driver (crid reports it through RuntimeConfig), its cgroup
#      tree under /$CGROUP_NAME (created here in each controller, removed at the end), no
#      iptables chains; then tests/k8s/kubelet_test.py writes the static pod manifest and
#      asserts (one PASS/FAIL/SKIP line each): see that file
#   6. teardown of what this script started, by PID: kubelet, crid (pods left in crid removed
#      through the CRI first), the registry when started here; then the kubelet root, the
#      cgroup tree, and everything lib.sh's crid_stop removes
# With --driver systemd, crid and kubelet run inside the systemd fixture (tests/systemd_host.sh:
# a real systemd as PID 1 of a private PID+mount+UTS namespace, host cgroups, host network), as
# a node's systemd runs them: crid as the unit $CRID_UNIT (systemd-run, Type=notify,
# Delegate=yes, KillMode=process, "cgroupDriver": "systemd"), kubelet as the unit $KUBELET_UNIT
# with the driver from crid's RuntimeConfig and the cgroup root /$SD_SLICE (kubepods become
# crid_kubelet_test-kubepods.slice/...-<qos>.slice/...-<qos>-pod<uid>.slice, crid's scopes in
# them), crid's state under /var/lib (the fixture's /run is its own), and kubelet_test.py inside
# the fixture's namespaces (PIDs, mounts). A fixture already running with this LAB is used and
# left running; otherwise one is started and stopped at the end. Teardown stops both units and
# the slice, removes crid's leftovers inside the fixture and on the host, and the slice's cgroups.
# Ends with one line "kubelet: N passed, N failed, N skipped"; with --counts one more line
# "kubelet P F S" follows (the form tools/run-tests.sh's count_into_summary reads).
# Output: $CRID_K8S_CACHE/results/kubelet/ (kubelet-systemd/ with --driver systemd):
# kubelet-<mode>.log, crid.log, configs.
#
# Environment: CRID_K8S_CACHE (/var/cache/crid-k8s), CRID_K8S_REGISTRY_PORT (5100),
# CRID_K8S_KUBELET_SUBNET (10.233.1.0/24), CRID_BIN, KUBELET_TEST_MODES ("generic evented"),
# KUBELET_TEST_DRIVER (cgroupfs), CRID_K8S_SYSTEMD_LAB (the fixture's LAB, $CACHE/systemd-lab).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

COUNTS=0
MODES=${KUBELET_TEST_MODES:-generic evented}
DRIVER=${KUBELET_TEST_DRIVER:-cgroupfs}
usage() { echo "usage: $0 [--counts] [--modes \"generic evented\"] [--driver cgroupfs|systemd]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --counts) COUNTS=1 ;;
    --modes) shift; MODES=$1 ;;
    --driver) shift; DRIVER=${1:-} ;;
    *) usage ;;
  esac
  shift
done
case "$DRIVER" in cgroupfs|systemd) ;; *) usage ;; esac

T0=$(date +%s)
PROG=kubelet_test.sh
RESULTS=$CACHE/results/kubelet
ROOT_DIR=/var/lib/crid-kubelet-test
STATE_DIR=/run/crid-kubelet-test
SUBNET=${CRID_K8S_KUBELET_SUBNET:-10.233.1.0/24}
BRIDGE=cridkubelet0
CGROUP_NAME=crid-kubelet-test   # kubelet's --cgroup-root: /sys/fs/cgroup/<controller>/crid-kubelet-test
KUBELET_CGROUP_ROOT=/$CGROUP_NAME
# The systemd driver (see the header). Both drivers share the lock, ports, bridge and subnet.
FIXTURE=$REPO/tests/systemd_host.sh
export LAB=${CRID_K8S_SYSTEMD_LAB:-$CACHE/systemd-lab}
unset SYSTEMD_HOST_DIR
SD_SLICE=crid_kubelet_test.slice
CRID_UNIT=crid-kubelet-test.service
KUBELET_UNIT=crid-kubelet-test-kubelet.service
FIXTURE_STARTED_HERE=0 CRID_UNIT_STARTED=0 KUBELET_UNIT_STARTED=0 SLICE_STARTED=0
IN_FIXTURE=()   # a command prefix that runs in the fixture's namespaces; empty: on the host
if [ "$DRIVER" = systemd ]; then
  RESULTS=$CACHE/results/kubelet-systemd
  ROOT_DIR=/var/lib/crid-kubelet-systemd
  STATE_DIR=/var/lib/crid-kubelet-systemd-state   # a host path: the fixture's /run is private
  CGROUP_NAME=$SD_SLICE
  # kubelet takes cgroupRoot in cgroupfs form and names it for systemd itself (/a -> a.slice)
  KUBELET_CGROUP_ROOT=/${SD_SLICE%.slice}
  IN_FIXTURE=("$FIXTURE" exec)
fi
crid_paths   # SOCK, EP, NET_DIR, CRID_PID (lib.sh)
NODE=crid-kubelet
KUBELET_PORT=10250
HEALTHZ_PORT=10248
KUBELET_PID=
KDIR=
PASSED=0 FAILED=0 SKIPPED=0

result_line() { # PASSED FAILED SKIPPED
  echo "kubelet: $1 passed, $2 failed, $3 skipped"
  [ "$COUNTS" = 1 ] && echo "kubelet $1 $2 $3"
}
die() { # MESSAGE -- a failure before or outside the assertions counts as one failure
  echo "kubelet_test.sh: FAIL: $*" >&2
  teardown
  result_line "$PASSED" $((FAILED + 1)) "$SKIPPED"
  exit 1
}

crictl() { crid_crictl "$@"; }

# The cgroup tree kubelet gets as its root, in every v1 controller (and the named and unified
# hierarchies), with cpuset's cpus and mems copied from the parent so that children can run.
cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/; do
    [ -e "$d/cgroup.procs" ] && echo "${d%/}/$CGROUP_NAME"
  done
}
cgroup_root_make() {
  local d
  for d in $(cgroup_dirs); do
    mkdir -p "$d" || return 1
    if [ -e "$d/cpuset.cpus" ]; then
      [ -n "$(cat "$d/cpuset.cpus")" ] || cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
      [ -n "$(cat "$d/cpuset.mems")" ] || cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
}
# Removes the tree, deepest first; a cgroup that still holds processes is reported, and the
# processes are killed only when they belong to this run (crid's leftovers are killed by
# crid_stop before this runs).
cgroup_root_remove() {
  local d c pids
  for d in $(cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d | while read -r c; do
      pids=$(cat "$c/cgroup.procs" 2>/dev/null | paste -sd' ')
      [ -n "$pids" ] && echo "$PROG: warning: cgroup $c still holds processes: $pids" >&2
      rmdir "$c" 2>/dev/null || echo "$PROG: warning: cannot remove cgroup $c" >&2
    done
  done
}

kubelet_stop() {
  if [ -n "$KUBELET_PID" ]; then
    stop_pid "$KUBELET_PID" kubelet
    KUBELET_PID=
  fi
  if [ "$KUBELET_UNIT_STARTED" = 1 ]; then
    "${IN_FIXTURE[@]}" systemctl stop "$KUBELET_UNIT" 2>/dev/null
    "${IN_FIXTURE[@]}" systemctl reset-failed "$KUBELET_UNIT" 2>/dev/null
    KUBELET_UNIT_STARTED=0
  fi
  if [ -n "$KDIR" ] && [ -d "$KDIR" ]; then
    # kubelet bind-mounts its root directory onto itself (to make it a shared mount); other
    # mounts are pods' and reported. With the systemd driver they are in the fixture's mount
    # namespace.
    { "${IN_FIXTURE[@]}" findmnt -rn -o TARGET 2>/dev/null; } | grep -E "^$KDIR(/|$)" | sort -r | while read -r m; do
      [ "$m" = "$KDIR/root" ] || echo "$PROG: warning: kubelet left mount $m; unmounting it" >&2
      "${IN_FIXTURE[@]}" umount -l "$m" 2>/dev/null
    done
    rm -rf --one-file-system "$KDIR"
  fi
  KDIR=
}

# ---- The systemd fixture and crid as its unit (--driver systemd)
fixture_alive() { "$FIXTURE" status >/dev/null 2>&1; }
# Uses the fixture running with this LAB, else starts one. Two systemds on one host would
# share the host's cgroups (init.scope, system.slice/dbus.service, ...): with another one
# running elsewhere (its PID 1 in the named hierarchy's init.scope), this run fails instead.
fixture_up() {
  if fixture_alive; then
    echo "$PROG: note: using the systemd fixture already running with LAB=$LAB; it is left running" >&2
    return 0
  fi
  local d other=""
  for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ -e "$d/init.scope/cgroup.procs" ] && other+=$(paste -sd' ' "$d/init.scope/cgroup.procs" 2>/dev/null)
  done
  if [ -n "$other" ]; then
    echo "$PROG: another systemd (pid ${other%% *}, in init.scope) manages this host's cgroups; two would share them (set CRID_K8S_SYSTEMD_LAB to the LAB of that fixture to use it)" >&2
    return 1
  fi
  FIXTURE_STARTED_HERE=1
  "$FIXTURE" start >"$RESULTS/fixture.log" 2>&1 </dev/null 9>&- || { tail -5 "$RESULTS/fixture.log" >&2; return 1; }
}
fixture_down() {
  [ "$FIXTURE_STARTED_HERE" = 1 ] || return 0
  # A second stop only repeats the cleanup of what the first left (cgroups still draining).
  "$FIXTURE" stop >>"$RESULTS/fixture.log" 2>&1 </dev/null 9>&- ||
    "$FIXTURE" stop >>"$RESULTS/fixture.log" 2>&1 </dev/null 9>&- ||
    { echo "$PROG: warning: stopping the systemd fixture left:" >&2; tail -5 "$RESULTS/fixture.log" >&2; }
  FIXTURE_STARTED_HERE=0
}

# crid as a node's systemd runs it (the unit of README.md, started transiently).
crid_start_unit() {
  : >"$RESULTS/crid.log"
  "${IN_FIXTURE[@]}" systemctl reset-failed "$CRID_UNIT" >/dev/null 2>&1
  CRID_UNIT_STARTED=1
  if ! "${IN_FIXTURE[@]}" systemd-run --unit="$CRID_UNIT" --description="crid for tests/k8s/kubelet_test.sh" \
      --service-type=notify -p Delegate=yes -p KillMode=process -p TimeoutStartSec=60 \
      -p StandardOutput="append:$RESULTS/crid.log" -p StandardError="append:$RESULTS/crid.log" \
      "$CRID" --config "$STATE_DIR/crid.json" >"$RESULTS/systemd-run.log" 2>&1 </dev/null 9>&-; then
    cat "$RESULTS/systemd-run.log" >&2
    tail -20 "$RESULTS/crid.log" >&2
    echo "$PROG: crid's unit $CRID_UNIT did not start (log: $RESULTS/crid.log)" >&2
    return 1
  fi
  local i
  for i in $(seq 1 100); do
    crid_crictl --timeout 2s version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$PROG: crid does not answer on $EP" >&2
  return 1
}

# As lib.sh's crid_stop, for crid's unit: pods removed through the CRI, the unit stopped, then
# what is left removed inside the fixture (its processes and mounts are only seen there) and on
# the host, and the bridge (the fixture shares the host's network).
crid_stop_unit() {
  if [ "$CRID_UNIT_STARTED" = 1 ] && [ -n "${BIN:-}" ] && crid_crictl --timeout 2s version >/dev/null 2>&1; then
    crid_crictl --timeout 60s rmp -fa >/dev/null 2>&1
    local left
    left=$(crid_crictl pods -q 2>/dev/null | wc -l)
    [ "$left" -gt 0 ] && echo "$PROG: warning: $left pod(s) still listed after rmp -fa" >&2
  fi
  if fixture_alive; then
    if [ "$CRID_UNIT_STARTED" = 1 ]; then
      "${IN_FIXTURE[@]}" systemctl stop "$CRID_UNIT" 2>/dev/null
      "${IN_FIXTURE[@]}" systemctl reset-failed "$CRID_UNIT" 2>/dev/null
    fi
    "${IN_FIXTURE[@]}" env HERE="$HERE" PROG="$PROG" STATE_DIR="$STATE_DIR" ROOT_DIR="$ROOT_DIR" \
      bash -c '. "$HERE/lib.sh"; crid_remove_leftovers' </dev/null 9>&-
  fi
  CRID_UNIT_STARTED=0
  crid_remove_leftovers
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE" 2>/dev/null
}

# kubelet's cgroup root: a slice of the fixture's systemd, with the controllers systemd does
# not manage on v1 (cpuset, freezer, ...) made by cgroup_root_make, as for cgroupfs.
slice_start() {
  SLICE_STARTED=1
  "${IN_FIXTURE[@]}" systemctl start "$SD_SLICE" || return 1
  cgroup_root_make
}
slice_stop() {
  [ "$SLICE_STARTED" = 1 ] || return 0
  fixture_alive && "${IN_FIXTURE[@]}" systemctl stop "$SD_SLICE" 2>/dev/null
  SLICE_STARTED=0
}

teardown() {
  trap - EXIT INT TERM
  kubelet_stop
  if [ "$DRIVER" = systemd ]; then
    crid_stop_unit
    slice_stop
    fixture_down
  else
    crid_stop
  fi
  cgroup_root_remove
  registry_down
}

[ "$(id -u)" = 0 ] || { echo "kubelet_test.sh: FAIL: must run as root (crid and kubelet need namespaces, mounts, cgroups)" >&2; result_line 0 1 0; exit 1; }
mkdir -p "$RESULTS"
# Its own lock (e2e_node.sh holds kubelet-test.lock): the two use different network namespaces,
# kubelet roots and cgroup roots and can run at once.
exec 9>"$CACHE/kubelet-standalone.lock"
flock -n 9 || { echo "kubelet_test.sh: FAIL: another tests/k8s/kubelet_test.sh run holds $CACHE/kubelet-standalone.lock" >&2; result_line 0 1 0; exit 1; }
# Only once the lock is ours: the teardown removes what a run left, which while another run
# holds the lock is that run's.
trap 'teardown; exit 130' INT TERM
trap teardown EXIT
for port in $KUBELET_PORT $HEALTHZ_PORT; do
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    echo "kubelet_test.sh: FAIL: port $port on this host is taken (another kubelet?)" >&2; result_line 0 1 0; exit 1
  fi
done

ensure_packages runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge iproute2:/usr/sbin/ip \
  python3:/usr/bin/python3 curl:/usr/bin/curl ||
  die "cannot install runc, containernetworking-plugins, iproute2, python3, curl"
if [ "$DRIVER" = systemd ]; then
  ensure_packages systemd:/lib/systemd/systemd dbus:/usr/bin/dbus-daemon util-linux:/usr/bin/nsenter ||
    die "cannot install systemd, dbus, util-linux (the systemd fixture needs them)"
fi

# ---- 1. tools: never pass without having run them
t=$(date +%s)
"$HERE/build.sh" kubelet crictl agnhost >"$RESULTS/build.log" 2>&1 ||
  die "the pinned Kubernetes binaries cannot be built: $(grep -m1 'FAIL' "$RESULTS/build.log" || tail -1 "$RESULTS/build.log")"
BIN=$("$HERE/build.sh" --print-bin)
for f in kubelet crictl; do [ -x "$BIN/$f" ] || die "missing $BIN/$f after tests/k8s/build.sh"; done
T_TOOLS=$(( $(date +%s) - t ))

# ---- 2. crid
t=$(date +%s)
crid_build || die "cannot build crid"
T_CRID=$(( $(date +%s) - t ))

# ---- 3. registry and images
t=$(date +%s)
AGNHOST=registry.k8s.io/e2e-test-images/agnhost:$AGNHOST_VERSION
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
registry_up || die "docker-registry did not start"
has_tag() { # REPO-PATH TAG
  curl -fsS -o /dev/null --max-time 5 -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY_ADDR/v2/$1/manifests/$2" 2>/dev/null
}
if ! has_tag e2e-test-images/agnhost "$AGNHOST_VERSION" || ! has_tag e2e-test-images/busybox 1.29-2; then
  "$HERE/images.sh" >"$RESULTS/images.log" 2>&1 || { tail -5 "$RESULTS/images.log" >&2; die "tests/k8s/images.sh failed"; }
fi
T_IMAGES=$(( $(date +%s) - t ))

# ---- 4. crid, and the images pulled through it
crid_prepare "$DRIVER" || die "cannot prepare crid's directories and network"
if [ "$DRIVER" = systemd ]; then
  fixture_up || die "the systemd fixture (tests/systemd_host.sh, LAB=$LAB) did not start"
  crid_start_unit || die "crid did not start as $CRID_UNIT in the systemd fixture"
else
  crid_start || die "crid did not start"
fi
t=$(date +%s)
for img in "$AGNHOST" "$BUSYBOX"; do
  crictl --timeout 120s pull "$img" >/dev/null 2>"$RESULTS/pull.err" || die "crictl pull $img: $(tail -1 "$RESULTS/pull.err")"
done
T_PULL=$(( $(date +%s) - t ))
if [ "$DRIVER" = systemd ]; then
  slice_start || die "cannot start the slice $SD_SLICE in the systemd fixture"
else
  cgroup_root_make || die "cannot create the cgroup root /$CGROUP_NAME"
fi

# ---- 5. kubelet, per mode
kubelet_start() { # MODE
  local mode=$1 gates=""
  KDIR=$(mktemp -d /var/lib/crid-kubelet-root.XXXXXX)
  mkdir -p "$KDIR/manifests" "$KDIR/root" "$KDIR/pod-logs"
  [ "$mode" = evented ] && gates=$'featureGates:\n  EventedPLEG: true'
  cat >"$KDIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
enableServer: true
enableDebuggingHandlers: true
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
staticPodPath: $KDIR/manifests
fileCheckFrequency: 1s
syncFrequency: 10s
containerRuntimeEndpoint: $EP
imageServiceEndpoint: $EP
podLogsDir: $KDIR/pod-logs
cgroupRoot: $KUBELET_CGROUP_ROOT
cgroupsPerQOS: true
failSwapOn: false
failCgroupV1: $FAIL_CGROUP_V1
makeIPTablesUtilChains: false
resolvConf: ""
registerNode: false
serializeImagePulls: true
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
$gates
EOF
  cp "$KDIR/config.yaml" "$RESULTS/kubelet-$mode.yaml"
  # --node-ip keeps every address kubelet reports on the loopback; there is no API server.
  local args=(--config="$KDIR/config.yaml" --root-dir="$KDIR/root" --cert-dir="$KDIR/pki"
    --hostname-override="$NODE" --node-ip=127.0.0.1 --v=2)
  local i log=$RESULTS/kubelet-$mode.log
  if [ "$DRIVER" = systemd ]; then
    : >"$log"
    "${IN_FIXTURE[@]}" systemctl reset-failed "$KUBELET_UNIT" >/dev/null 2>&1
    KUBELET_UNIT_STARTED=1
    "${IN_FIXTURE[@]}" systemd-run --unit="$KUBELET_UNIT" --description="kubelet for tests/k8s/kubelet_test.sh" \
      -p StandardOutput="append:$log" -p StandardError="append:$log" \
      "$BIN/kubelet" "${args[@]}" >>"$RESULTS/systemd-run.log" 2>&1 </dev/null 9>&- ||
      { tail -3 "$RESULTS/systemd-run.log" >&2; return 1; }
    for i in $(seq 1 150); do
      "${IN_FIXTURE[@]}" systemctl is-active --quiet "$KUBELET_UNIT" ||
        { echo "$PROG: $KUBELET_UNIT is $("${IN_FIXTURE[@]}" systemctl is-active "$KUBELET_UNIT")" >&2; tail -5 "$log" | cut -c1-400 >&2; return 1; }
      curl -fsS --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz" >/dev/null 2>&1 && return 0
      sleep 0.4
    done
    tail -5 "$log" | cut -c1-400 >&2
    return 1
  fi
  "$BIN/kubelet" "${args[@]}" >"$log" 2>&1 </dev/null 9>&- &
  KUBELET_PID=$!
  for i in $(seq 1 300); do
    kill -0 "$KUBELET_PID" 2>/dev/null || { KUBELET_PID=; tail -5 "$log" | cut -c1-400 >&2; return 1; }
    curl -fsS --max-time 2 "http://127.0.0.1:$HEALTHZ_PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  tail -5 "$RESULTS/kubelet-$mode.log" >&2
  return 1
}

# One line for each thing this machine stops kubelet from doing (kubelet adapts on its own or
# through the flags above).
machine_notes() { # LOG
  grep -q 'Failed to ApplyOOMScoreAdj' "$1" &&
    echo "kubelet_test.sh: note: kubelet cannot lower its oom_score_adj here (no CAP_SYS_RESOURCE); it runs on without it" >&2
  grep -qi 'swap' /proc/swaps 2>/dev/null && [ "$(wc -l </proc/swaps)" -gt 1 ] &&
    echo "kubelet_test.sh: note: swap is on and not accounted; kubelet runs with failSwapOn=false" >&2
  grep -q 'Failed to set rlimit on max file handles' "$1" &&
    echo "kubelet_test.sh: note: kubelet cannot raise its open-file limit here (no CAP_SYS_RESOURCE); it runs on with the current one" >&2
  grep -q "nodeIP can't be loopback" "$1" &&
    echo "kubelet_test.sh: note: kubelet rejects 127.0.0.1 as node IP for its node status; without an API server no node status is sent, so that is all it affects" >&2
  [ -d /sys/kernel/security/apparmor ] ||
    echo "kubelet_test.sh: note: no AppArmor on this kernel; kubelet admits pods without AppArmor profiles only" >&2
  true
}

# kubelet 1.35+ refuses cgroup v1 unless told otherwise; this machine is v1 (hybrid).
FAIL_CGROUP_V1=true
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  echo "kubelet_test.sh: note: this host has cgroup v1 (hybrid), which kubelet refuses by default; kubelet runs with failCgroupV1=false" >&2
  FAIL_CGROUP_V1=false
fi
declare -A T_MODE
for mode in $MODES; do
  case "$mode" in generic|evented) ;; *) die "unknown mode $mode (generic, evented)" ;; esac
  t=$(date +%s)
  label=$mode
  [ "$DRIVER" = systemd ] && label=$mode/systemd
  echo "kubelet_test.sh: kubelet $K8S_VERSION ($mode PLEG, $DRIVER driver${IN_FIXTURE:+, in the systemd fixture}) -> $EP (log: $RESULTS/kubelet-$mode.log)" >&2
  if ! kubelet_start "$mode"; then
    FAILED=$((FAILED + 1))
    echo "FAIL: $label: kubelet starts and serves healthz on 127.0.0.1:$HEALTHZ_PORT"
    kubelet_stop
    continue
  fi
  cat >"$RESULTS/test-$mode.json" <<EOF
{"mode": "$mode", "label": "$label", "port": $KUBELET_PORT, "node": "$NODE", "manifests": "$KDIR/manifests",
 "cgroup_root": "/$CGROUP_NAME", "cgroup_driver": "$DRIVER", "state_dir": "$STATE_DIR",
 "root_dir": "$ROOT_DIR", "kubelet_root": "$KDIR", "kubelet_log": "$RESULTS/kubelet-$mode.log",
 "crid_log": "$RESULTS/crid.log", "crictl": "$BIN/crictl", "crictl_config": "$STATE_DIR/crictl.yaml", "agnhost_version": "$AGNHOST_VERSION"}
EOF
  # With the systemd driver inside the fixture, where crid's PIDs and mounts are.
  out=$("${IN_FIXTURE[@]}" python3 "$HERE/kubelet_test.py" "$RESULTS/test-$mode.json" </dev/null 9>&- \
    2> >(tee "$RESULTS/test-$mode.err" >&2))
  sed '$d' <<<"$out"
  last=$(tail -n1 <<<"$out")
  if [[ "$last" =~ ^counts\ ([0-9]+)\ ([0-9]+)\ ([0-9]+)$ ]]; then
    PASSED=$((PASSED + BASH_REMATCH[1])) FAILED=$((FAILED + BASH_REMATCH[2])) SKIPPED=$((SKIPPED + BASH_REMATCH[3]))
  else
    echo "FAIL: $label: kubelet_test.py ended without its counts"
    FAILED=$((FAILED + 1))
  fi
  machine_notes "$RESULTS/kubelet-$mode.log"
  kubelet_stop
  T_MODE[$mode]=$(( $(date +%s) - t ))
done

# ---- 6. teardown, then the verdict
teardown
times=""
for mode in $MODES; do times+=", $mode ${T_MODE[$mode]:-?}s"; done
echo "kubelet_test.sh: times: tools ${T_TOOLS}s, crid ${T_CRID}s, images ${T_IMAGES}s, pulls ${T_PULL}s$times, total $(( $(date +%s) - T0 ))s" >&2
result_line "$PASSED" "$FAILED" "$SKIPPED"
[ "$FAILED" = 0 ]
