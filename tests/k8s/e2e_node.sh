#!/bin/bash
# Runs Kubernetes' node conformance suite (e2e_node.test, specs labelled [NodeConformance])
# against a real runtime: crid, or Debian's containerd for the side-by-side comparison.
#
#   tests/k8s/e2e_node.sh [--runtime crid|containerd] [--nodes N] [--focus RE] [--skip RE]
#
# What it does, all on this machine and offline once the tools are built:
#   1. tests/k8s/build.sh: kubelet, e2e_node.test, ginkgo, crictl, agnhost at the pinned release
#   2. crid (bazel build, or $CRID_BIN) or containerd (Debian's 1.6, installed when missing)
#   3. the test images (tests/k8s/images.sh) in the local registry's data directory
#   4. a network and a mount namespace of its own ($NETNS, $MNT_NS): loopback and a veth pair (both ends inside) holding the
#      node IP ($NODE_IP). Everything that speaks TCP runs inside it: a docker-registry on
#      127.0.0.1:$REGISTRY_PORT serving the same data, the runtime (its CNI bridge, pod subnet
#      $POD_CIDR, streaming server), and e2e_node.test, which starts etcd and kube-apiserver
#      (in-process, on 127.0.0.1) and kubelet. No address outside the namespace is reachable
#      from it, and nothing it sends leaves it.
#   5. ginkgo runs e2e_node.test with --nodes N in parallel (the upstream node e2e job's focus and
#      skips: [NodeConformance], not [Flaky] [Slow] [Serial] [Disruptive]); kubelet gets the
#      cgroupfs driver, cgroup root /, and the flags this machine needs (one note line each)
#   6. teardown of what this script started, by PID: ginkgo, e2e_node.test, kubelet, the runtime
#      (pods removed through the CRI first), the registry; then /var/lib/kubelet, the kubepods
#      cgroups, and the network namespace
# Ends with one line "e2e-node <runtime>: N passed, N failed, N skipped" (from ginkgo's JSON
# report, summarised by tests/k8s/e2e_node_report.py). The report of both runtimes side by side
# goes to docs/conformance.md through `tests/k8s/e2e_node_report.py --table`.
# Output: $CRID_K8S_CACHE/results/e2e-node-<runtime>/ (report.json, junit, kubelet.log, ...).
#
# Environment: CRID_K8S_CACHE (/var/cache/crid-k8s), CRID_K8S_REGISTRY_PORT (5100), CRID_BIN,
# E2E_NODE_TIMEOUT (3h).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

RUNTIME=crid
NODES=4
FOCUS='\[NodeConformance\]'
SKIP='\[Flaky\]|\[Slow\]|\[Serial\]|\[Disruptive\]'
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime) shift; RUNTIME=$1 ;;
    --nodes) shift; NODES=$1 ;;
    --focus) shift; FOCUS=$1 ;;
    --skip) shift; SKIP=$1 ;;
    *) echo "usage: $0 [--runtime crid|containerd] [--nodes N] [--focus RE] [--skip RE]" >&2; exit 2 ;;
  esac
  shift
done
case "$RUNTIME" in crid|containerd) ;; *) echo "e2e_node.sh: unknown runtime $RUNTIME" >&2; exit 2 ;; esac

T0=$(date +%s)
PROG=e2e_node.sh
RESULTS=$CACHE/results/e2e-node-$RUNTIME
ROOT_DIR=/var/lib/crid-e2e-node
STATE_DIR=/run/crid-e2e-node
NETNS=crid-e2e-node
NODE=crid-e2e-node
NODE_IP=10.233.8.1
# The pod CIDR e2e_node's kubelet configuration assigns to its node.
POD_CIDR=10.100.0.0/24
SUBNET=$POD_CIDR
BRIDGE=cride2e0
crid_paths   # SOCK, EP, NET_DIR, CRID_PID, RUN_IN (lib.sh)
# A mount namespace of its own too (a slave of the host's: host mounts show inside, none made
# inside show outside), where /var/lib/kubelet, a path kubelet always uses (device plugins),
# is a private directory: a kubelet running on the host is not disturbed.
MNT_DIR=/run/crid-e2e-node-ns
MNT_NS=$MNT_DIR/mnt
IN_NS=(nsenter --mount=$MNT_NS --net=/run/netns/$NETNS)
NS_REGISTRY_PID=
CTRD_PID=
GINKGO_PID=
WORK=
KUBELET_ROOT=/var/lib/kubelet
MADE_KUBELET_ROOT=0   # /var/lib/kubelet did not exist: the empty mount point is removed again

result_line() { echo "e2e-node $RUNTIME: $1 passed, $2 failed, $3 skipped"; }
die() {
  echo "e2e_node.sh: FAIL: $*" >&2
  teardown
  result_line 0 1 0
  exit 1
}
note() { echo "e2e_node.sh: note: $*" >&2; }

# Processes inside our network namespace (all of them were started by this script or by what
# it started: registry, runtime, shims, pods, e2e_node.test, kubelet).
netns_pids() {
  local ino p
  [ -e "/run/netns/$NETNS" ] || return 0
  ino=$(stat -L -c %i "/run/netns/$NETNS" 2>/dev/null) || return 0
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "net:[$ino]" ] && echo "${p#/proc/}"
  done
}

containerd_stop() {
  [ -n "$CTRD_PID" ] || return 0
  crid_crictl --timeout 60s rmp -fa >/dev/null 2>&1
  stop_pid "$CTRD_PID" containerd
  CTRD_PID=
}

# The kubepods tree kubelet made under cgroup root / in each hierarchy, deepest first.
kubepods_remove() {
  local d c
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d | while read -r c; do
      rmdir "$c" 2>/dev/null || echo "$PROG: warning: cannot remove cgroup $c ($(cat "$c/cgroup.procs" 2>/dev/null | paste -sd' '))" >&2
    done
  done
}

teardown() {
  trap - EXIT INT TERM
  local p
  [ -n "$GINKGO_PID" ] && stop_pid "$GINKGO_PID" ginkgo
  GINKGO_PID=
  # kubelet (and the suite's services) outlive ginkgo when it is interrupted.
  for p in $(netns_pids); do
    case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
      "$BIN/kubelet"|"$BIN/e2e_node.test") echo "$PROG: stopping $(cat /proc/$p/comm) (pid $p)" >&2; stop_pid "$p" "$(cat /proc/$p/comm)" ;;
    esac
  done
  if [ "$RUNTIME" = crid ]; then crid_stop; else containerd_stop; fi
  [ -n "$NS_REGISTRY_PID" ] && stop_pid "$NS_REGISTRY_PID" registry
  NS_REGISTRY_PID=
  for p in $(netns_pids); do
    echo "$PROG: warning: leftover process $p ($(cat /proc/$p/comm 2>/dev/null)) in $NETNS; killing it" >&2
    kill -KILL "$p" 2>/dev/null
  done
  # With every process of it gone, the mount namespace ends when its pin is unmounted, and
  # with it every mount made inside (pod volumes, rootfs, netns pins, the kubelet root).
  if mountpoint -q "$MNT_DIR" 2>/dev/null; then
    umount "$MNT_NS" 2>/dev/null
    umount "$MNT_DIR" 2>/dev/null || umount -l "$MNT_DIR"
  fi
  rm -rf "$MNT_DIR"
  [ "$MADE_KUBELET_ROOT" = 1 ] && rmdir "$KUBELET_ROOT" 2>/dev/null
  [ "$RUNTIME" = containerd ] && rm -rf --one-file-system "$ROOT_DIR" "$STATE_DIR"
  kubepods_remove
  [ -n "$WORK" ] && rm -rf --one-file-system "$WORK"
  ip netns del "$NETNS" 2>/dev/null
}

[ "$(id -u)" = 0 ] || { echo "e2e_node.sh: FAIL: must run as root" >&2; result_line 0 1 0; exit 1; }
mkdir -p "$CACHE/results"
exec 9>"$CACHE/e2e-node.lock"
flock -n 9 || { echo "e2e_node.sh: FAIL: another e2e_node.sh run holds $CACHE/e2e-node.lock" >&2; result_line 0 1 0; exit 1; }
# Only once the lock is ours: the teardown removes what a run left, which while another run
# holds the lock is that run's.
trap 'teardown; exit 130' INT TERM
trap teardown EXIT
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
ensure_packages runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/bridge iproute2:/usr/sbin/ip \
  python3:/usr/bin/python3 curl:/usr/bin/curl util-linux:/usr/bin/nsenter ||
  die "cannot install runc, containernetworking-plugins, iproute2, python3, curl, util-linux"

# ---- 1. tools: never pass without having run them
"$HERE/build.sh" kubelet e2e_node.test ginkgo crictl agnhost nnp >"$RESULTS/build.log" 2>&1 ||
  die "the pinned Kubernetes binaries cannot be built: $(grep -m1 'FAIL' "$RESULTS/build.log" || tail -1 "$RESULTS/build.log")"
BIN=$("$HERE/build.sh" --print-bin)

# ---- 2. the runtime's binaries
if [ "$RUNTIME" = crid ]; then
  crid_build || die "cannot build crid"
else
  ensure_packages containerd:/usr/bin/containerd || die "cannot install Debian's containerd"
fi

# ---- 3. images (the registry on the host is only needed to fill the data directory)
registry_up || die "docker-registry did not start"
# images.sh is cheap when the registry is current (reproducible images; held blobs are not sent).
"$HERE/images.sh" >"$RESULTS/images.log" 2>&1 || { tail -5 "$RESULTS/images.log" >&2; die "tests/k8s/images.sh failed"; }
registry_down

# ---- 4. the network namespace, and the registry inside it
ip netns del "$NETNS" 2>/dev/null && note "removed network namespace $NETNS left by an earlier run"
ip netns add "$NETNS" || die "cannot create network namespace $NETNS"
ip -n "$NETNS" link set lo up &&
  ip -n "$NETNS" link add node0 type veth peer name node1 &&
  ip -n "$NETNS" addr add "$NODE_IP/24" dev node0 &&
  ip -n "$NETNS" link set node1 up &&
  ip -n "$NETNS" link set node0 up &&
  ip -n "$NETNS" route add default dev node0 ||
  die "cannot set up $NETNS"
if mountpoint -q "$MNT_DIR" 2>/dev/null; then
  note "removing the mount namespace an earlier run left"
  umount "$MNT_NS" 2>/dev/null; umount -l "$MNT_DIR"
fi
if [ ! -e "$KUBELET_ROOT" ]; then mkdir -p "$KUBELET_ROOT" && MADE_KUBELET_ROOT=1; fi
WORK=$(mktemp -d /var/tmp/crid-e2e-node.XXXXXX)
mkdir -p "$MNT_DIR" "$WORK/kubelet-root" &&
  mount --bind "$MNT_DIR" "$MNT_DIR" && mount --make-private "$MNT_DIR" && touch "$MNT_NS" &&
  unshare --mount="$MNT_NS" --propagation slave true &&
  "${IN_NS[@]}" mount --bind "$WORK/kubelet-root" "$KUBELET_ROOT" ||
  die "cannot set up the mount namespace $MNT_NS"
sed "s#^  addr: .*#  addr: $REGISTRY_ADDR#" "$REGISTRY_DIR/config.yml" >"$RESULTS/registry.yml"
"${IN_NS[@]}" docker-registry serve "$RESULTS/registry.yml" >"$RESULTS/registry.log" 2>&1 </dev/null 9>&- &
NS_REGISTRY_PID=$!
for _ in $(seq 1 100); do
  "${IN_NS[@]}" curl -fsS --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
"${IN_NS[@]}" curl -fsS --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 || die "the registry in $NETNS does not answer"

# ---- 5. the runtime, inside the namespace
RUN_IN=("${IN_NS[@]}")
# The RuntimeClass specs use a handler named test-handler, which upstream's node e2e runtime
# configuration defines as runc: so do both runtimes here.
CRID_CONTAINER_EXTRA=', "handlers": {"test-handler": {"binary": "/usr/sbin/runc"}}'
if [ "$RUNTIME" = crid ]; then
  crid_prepare cgroupfs || die "cannot prepare crid's directories and network"
  crid_start || die "crid did not start"
  RUNTIME_PID=$CRID_PID
  RUNTIME_NAME=crid
else
  for d in "$ROOT_DIR" "$STATE_DIR"; do
    findmnt -rn -o TARGET | grep -E "^$d(/|$)" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$d"
  done
  mkdir -p "$ROOT_DIR" "$STATE_DIR" "$NET_DIR"
  crid_write_conflist
  cri='plugins."io.containerd.grpc.v1.cri"'
  {
    echo "version = 2"
    echo "root = \"$ROOT_DIR\""
    echo "state = \"$STATE_DIR/state\""
    echo "[grpc]"
    echo "  address = \"$SOCK\""
    echo "[ttrpc]"
    echo "  address = \"$SOCK.ttrpc\""
    echo "[plugins.\"io.containerd.internal.v1.opt\"]"
    echo "  path = \"$STATE_DIR/opt\""
    echo "[$cri]"
    echo "  sandbox_image = \"registry.k8s.io/pause:3.10.2\""
    echo "  stream_server_address = \"127.0.0.1\""
    echo "  stream_server_port = \"0\""
    # Without CAP_SYS_RESOURCE the sandbox's oom_score_adj -998 is refused.
    echo "  restrict_oom_score_adj = true"
    echo "[$cri.containerd]"
    echo "  snapshotter = \"overlayfs\""
    echo "  default_runtime_name = \"runc\""
    echo "[$cri.containerd.runtimes.runc]"
    echo "  runtime_type = \"io.containerd.runc.v2\""
    echo "[$cri.containerd.runtimes.runc.options]"
    echo "  SystemdCgroup = false"
    echo "  Root = \"$STATE_DIR/runc\""
    echo "[$cri.containerd.runtimes.test-handler]"
    echo "  runtime_type = \"io.containerd.runc.v2\""
    echo "[$cri.containerd.runtimes.test-handler.options]"
    echo "  SystemdCgroup = false"
    echo "  Root = \"$STATE_DIR/runc-test-handler\""
    echo "[$cri.cni]"
    echo "  bin_dir = \"/usr/lib/cni\""
    echo "  conf_dir = \"$NET_DIR\""
    echo "  max_conf_num = 1"
    for h in registry.k8s.io k8s.gcr.io gcr.io docker.io public.ecr.aws quay.io; do
      echo "[$cri.registry.mirrors.\"$h\"]"
      echo "  endpoint = [\"http://$REGISTRY_ADDR\"]"
    done
  } >"$STATE_DIR/config.toml"
  cp "$STATE_DIR/config.toml" "$RESULTS/"
  printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n' "$EP" "$EP" >"$STATE_DIR/crictl.yaml"
  "${IN_NS[@]}" containerd --config "$STATE_DIR/config.toml" >"$RESULTS/containerd.log" 2>&1 </dev/null 9>&- &
  CTRD_PID=$!
  for _ in $(seq 1 300); do
    crid_crictl --timeout 2s info >/dev/null 2>&1 && break
    kill -0 "$CTRD_PID" 2>/dev/null || die "containerd exited at start (log: $RESULTS/containerd.log)"
    sleep 0.1
  done
  crid_crictl --timeout 2s info >/dev/null 2>&1 || die "containerd's CRI does not answer on $EP"
  RUNTIME_PID=$CTRD_PID
  RUNTIME_NAME=containerd
fi
echo "$RUNTIME_PID" >"$STATE_DIR/runtime.pid"
VERSION_LINE=$(crid_crictl version 2>/dev/null | grep -E 'RuntimeName|RuntimeVersion' | awk '{print $2}' | paste -sd' ')
echo "e2e_node.sh: runtime: $VERSION_LINE (pid $RUNTIME_PID) on $EP, in network namespace $NETNS" >&2

# ---- 6. the suite
# e2e_node.test runs kubelet through systemd-run whenever that is in PATH; this machine's init
# is not systemd, so kubelet runs as the suite's child instead: PATH leaves systemd-run out.
mkdir -p "$WORK/path"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin; do
  for f in "$d"/*; do
    b=$(basename "$f")
    [ "$b" = systemd-run ] || [ -e "$WORK/path/$b" ] || ln -s "$f" "$WORK/path/$b"
  done
done
[ -d /run/systemd/system ] || note "init is not systemd: kubelet runs as the suite's child process, not as a systemd-run unit"
FAIL_CGROUP_V1=true
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  note "this host has cgroup v1 (hybrid), which kubelet refuses by default; kubelet runs with failCgroupV1=false"
  FAIL_CGROUP_V1=false
fi
[ -d /sys/kernel/security/apparmor ] || note "no AppArmor on this kernel: the AppArmor specs skip themselves"
cat >"$WORK/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /
podCIDR: "$POD_CIDR"
volumeStatsAggPeriod: 10s
fileCheckFrequency: 10s
evictionPressureTransitionPeriod: 30s
evictionHard:
  memory.available: 250Mi
  nodefs.available: 10%
  nodefs.inodesFree: 5%
evictionMinimumReclaim:
  nodefs.available: 5%
  nodefs.inodesFree: 5%
serializeImagePulls: false
failSwapOn: false
failCgroupV1: $FAIL_CGROUP_V1
makeIPTablesUtilChains: false
EOF
cp "$WORK/kubelet-config.yaml" "$RESULTS/"
# --node-ip: the namespace's own address. The cgroup flags undo the suite's non-systemd
# defaults (/kubelet, /system and /docker-daemon), which would move every process of this
# machine's root cgroup into /system.
KUBELET_FLAGS="--node-ip=$NODE_IP --kubelet-cgroups= --system-cgroups= --runtime-cgroups= --v=2"
echo "e2e_node.sh: ginkgo --nodes $NODES, focus '$FOCUS', skip '$SKIP' (log: $RESULTS/e2e.log)" >&2
(
  cd "$WORK" &&
  exec "${IN_NS[@]}" env PATH="$WORK/path" "$BIN/ginkgo" --nodes="$NODES" --timeout="${E2E_NODE_TIMEOUT:-3h}" \
    --focus="$FOCUS" --skip="$SKIP" --no-color --json-report=report.json --junit-report=junit.xml \
    --output-dir="$RESULTS" \
    "$BIN/e2e_node.test" -- \
    --container-runtime-endpoint="$EP" --image-service-endpoint="$EP" \
    --container-runtime-process-name="$RUNTIME_NAME" --container-runtime-pid-file="$STATE_DIR/runtime.pid" \
    --node-name="$NODE" --report-dir="$RESULTS" --prepull-images=false \
    --kubelet-config-file="$WORK/kubelet-config.yaml" --kubelet-flags="$KUBELET_FLAGS" \
    --v=2
) >"$RESULTS/e2e.log" 2>&1 9>&- &
GINKGO_PID=$!
wait "$GINKGO_PID"
RC=$?
GINKGO_PID=
echo "e2e_node.sh: ginkgo exited with $RC after $(( $(date +%s) - T0 ))s" >&2

# ---- 7. teardown, then the verdict
teardown
# The summary prints the verdict line itself; without a report the suite never ran.
[ -s "$RESULTS/report.json" ] || { echo "e2e_node.sh: FAIL: ginkgo wrote no report" >&2; result_line 0 1 0; exit 1; }
python3 "$HERE/e2e_node_report.py" --summary "$RUNTIME" "$RESULTS/report.json"
