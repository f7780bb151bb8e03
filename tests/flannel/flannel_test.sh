#!/bin/bash
# Two nodes on one machine, networked as a flannel cluster runs them, one crid per node:
#
#   node A netns                                 node B netns
#   ├─ etcd (127.0.0.1 and 10.99.0.1:2379)       │
#   ├─ flanneld --iface ul0, VXLAN (flannel.1,   ├─ flanneld --iface ul0, the same
#   │  flannel-v6.1)                             │
#   ├─ crid: flannel CNI -> bridge cni0 +        ├─ crid: the same conflist
#   │        host-local, then portmap            │
#   └─ ul0 10.99.0.1/24 fd00:99::1 ─── veth ──── └─ ul0 10.99.0.2/24 fd00:99::2
#
# The underlay has no route anywhere else and nothing is masqueraded. flanneld leases each
# node a /24 of 10.244.0.0/16 and a /64 of fd00:244::/56 from etcd and writes subnet.env; the
# flannel CNI plugin reads it. Checks: pod addresses (ip and additional_ips) inside the node's
# flannel subnets with the flannel MTU; ICMP, ICMPv6 and TCP between pods on the two nodes cross
# the VXLAN devices (their counters); a hostPort on node B reached from node A; a removed pod
# leaves no veth, IPAM reservation, netns, route or iptables rule; a restarted crid keeps its
# pods reachable. On node A alone: dual stack and bandwidth on a plain bridge, and CNI 1.1
# (STATUS gating, CHECK in verbose status, GC at start) with a small plugin of the test's own.
# Measures the round trip of a small TCP exchange across nodes (and on one node) and
# RunPodSandbox on a flannel node vs a plain bridge conflist.
#
#   tests/flannel/flannel_test.sh [--counts] [--keep]
#     --counts  end with "flannel PASSED FAILED SKIPPED" (tools/run-tests.sh's format)
#     --keep    leave the results directory (always printed) for a look afterwards
#
# Tools: flanneld, the flannel CNI plugin and etcd from tests/flannel/build.sh, crictl from
# tests/k8s/build.sh (both cached under /var/cache; offline once built); crid from Bazel or
# $CRID_BIN. The pod image is made here from Debian's busybox-static and imported into each
# node's root (the nodes reach no registry). Everything started is stopped by PID; the node
# network namespaces are pinned on plain files (not `ip netns add`) and removed at the end.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROG=flannel_test.sh
COUNTS=0
KEEP=0
for a in "$@"; do
  case "$a" in
    --counts) COUNTS=1 ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--counts] [--keep]" >&2; exit 2 ;;
  esac
done

# lib.sh (tests/k8s) gives crid_build, stop_pid, ensure_packages and crid_remove_leftovers.
K8S_HERE=$REPO/tests/k8s
# shellcheck source=../k8s/lib.sh
HERE=$K8S_HERE . "$K8S_HERE/lib.sh"

TOP=/run/crid-flannel-test          # node netns pins, crid state dirs (sockets, pod netns pins)
DATA=/var/lib/crid-flannel-test     # crid roots (overlay snapshots), etcd data
RESULTS=$DATA/results
NETWORK=10.244.0.0/16
IMAGE=crid.test/flannel/busybox:1
HOSTPORT=30080
NODES="a b"
declare -A UL_IP=([a]=10.99.0.1 [b]=10.99.0.2) UL_IP6=([a]=fd00:99::1 [b]=fd00:99::2)
NETWORK6=fd00:244::/56
declare -A CRID_PIDS=() FLANNEL_PIDS=()
ETCD_PID=
PASSED=0 FAILED=0 SKIPPED=0

result_line() {
  echo "flannel: $PASSED passed, $FAILED failed, $SKIPPED skipped"
  [ "$COUNTS" = 1 ] && echo "flannel $PASSED $FAILED $SKIPPED"
}
pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
check() { # NAME CMD... -- passes when CMD succeeds
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
note() { echo "$PROG: $*" >&2; }
die() {
  echo "$PROG: FAIL: $*" >&2
  FAILED=$((FAILED + 1))
  teardown
  result_line
  exit 1
}

ns() { echo "$TOP/ns/$1"; }                       # NODE -> netns pin
in_node() { local n=$1; shift; nsenter --net="$(ns "$n")" "$@"; }
state() { echo "$TOP/$1"; }
root() { echo "$DATA/$1"; }
# crictl runs inside the node's netns too: the streaming URLs crid hands out are on its loopback.
crictl_n() { local n=$1; shift; in_node "$n" "$CRICTL" --config "$(state "$n")/crictl.yaml" "$@"; }

# Processes whose network namespace is one of ours (a node's or a pod's under a node's state).
our_netns_pids() {
  local inos="" f p net
  for f in "$TOP"/ns/* "$TOP"/*/netns/*; do
    [ -e "$f" ] && inos+=" net:[$(stat -L -c %i "$f" 2>/dev/null)]"
  done
  [ -n "$inos" ] || return 0
  for p in /proc/[0-9]*; do
    net=$(readlink "$p/ns/net" 2>/dev/null) || continue
    [[ "$inos " == *" $net "* ]] && echo "${p#/proc/}"
  done
}

crid_start_node() { # NODE
  local n=$1 i
  # nsenter execs the program: $! is its PID, which teardown stops.
  nsenter --net="$(ns "$n")" "$(state "$n")/bin/crid" --config "$(state "$n")/crid.json" \
    >>"$RESULTS/crid-$n.log" 2>&1 </dev/null 9>&- &
  CRID_PIDS[$n]=$!
  for i in $(seq 1 200); do
    kill -0 "${CRID_PIDS[$n]}" 2>/dev/null || { tail -5 "$RESULTS/crid-$n.log" >&2; return 1; }
    crictl_n "$n" --timeout 2s version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

teardown() {
  trap - EXIT INT TERM
  local n pid
  for n in $NODES; do
    pid=${CRID_PIDS[$n]:-}
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      crictl_n "$n" --timeout 60s rmp -fa >/dev/null 2>&1
      stop_pid "$pid" "crid ($n)"
    fi
    CRID_PIDS[$n]=
  done
  for n in $NODES; do
    [ -n "${FLANNEL_PIDS[$n]:-}" ] && stop_pid "${FLANNEL_PIDS[$n]}" "flanneld ($n)"
    FLANNEL_PIDS[$n]=
  done
  [ -n "$ETCD_PID" ] && stop_pid "$ETCD_PID" etcd
  ETCD_PID=
  # What a failed run may leave: shims, pods and mounts of each node's crid (lib.sh).
  for n in $NODES; do
    STATE_DIR=$(state "$n") ROOT_DIR=$(root "$n") crid_remove_leftovers
  done
  for pid in $(our_netns_pids); do
    note "warning: leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)); killing it"
    kill -KILL "$pid" 2>/dev/null
  done
  for n in $NODES; do
    umount "$(ns "$n")" 2>/dev/null
  done
  # The underlay's ends go with the node namespaces; a run cut short before moving them left
  # them here.
  ip link del fltest-a 2>/dev/null
  if [ -d "$TOP" ]; then
    findmnt -rn -o TARGET | grep -E "^$TOP(/|$)" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$TOP"
  fi
  rm -rf --one-file-system "$DATA/a" "$DATA/b" "$DATA/etcd"
  if [ "$KEEP" = 0 ] && [ "$FAILED" = 0 ]; then rm -rf "$RESULTS"; rmdir "$DATA" 2>/dev/null; fi
}
trap 'FAILED=$((FAILED + 1)); note "interrupted"; teardown; result_line; exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "$PROG: must run as root" >&2; FAILED=1; result_line; exit 1; }
T0=$(date +%s)
# One run at a time: the directories, the node names and the veth are fixed. fd 9 holds the
# lock; nothing this script starts inherits it.
mkdir -p /var/cache/crid-flannel
exec 9>/var/cache/crid-flannel/flannel-test.lock
flock -n 9 || { echo "$PROG: FAIL: another flannel_test.sh run holds /var/cache/crid-flannel/flannel-test.lock" >&2; FAILED=1; result_line; exit 1; }

# ---- 1. tools
ensure_packages containernetworking-plugins:/usr/lib/cni/bridge iproute2:/usr/sbin/ip jq:/usr/bin/jq \
  iptables:/usr/sbin/iptables python3:/usr/bin/python3 curl:/usr/bin/curl util-linux:/usr/bin/nsenter \
  busybox-static:/bin/busybox || { FAILED=1; result_line; exit 1; }
"$HERE/build.sh" >&2 || { echo "$PROG: FAIL: tests/flannel/build.sh failed" >&2; FAILED=1; result_line; exit 1; }
FBIN=$("$HERE/build.sh" --print-bin)
"$K8S_HERE/build.sh" crictl >&2 || { echo "$PROG: FAIL: tests/k8s/build.sh crictl failed" >&2; FAILED=1; result_line; exit 1; }
CRICTL=$("$K8S_HERE/build.sh" --print-bin)/crictl
mkdir -p "$DATA"
# An interrupted earlier run: its processes, mounts and directories go first.
if [ -e "$TOP" ] || [ -e "$DATA/a" ]; then
  note "removing what an earlier run left in $TOP and $DATA"
  teardown
fi
trap 'FAILED=$((FAILED + 1)); note "interrupted"; teardown; result_line; exit 130' INT TERM
trap teardown EXIT
rm -rf "$RESULTS" && mkdir -p "$RESULTS" "$TOP/ns"
crid_build || die "cannot build crid"
note "results in $RESULTS"

# ---- 2. the nodes and their underlay
for n in $NODES; do
  touch "$(ns "$n")" && unshare --net="$(ns "$n")" true || die "cannot create the netns of node $n"
  in_node "$n" ip link set lo up
done
ip link del fltest-a 2>/dev/null && note "removed the underlay veth fltest-a an earlier run left"
ip link add fltest-a type veth peer name fltest-b || die "cannot create the underlay veth"
for n in $NODES; do
  ip link set "fltest-$n" netns "$(ns "$n")" &&
    in_node "$n" ip link set "fltest-$n" name ul0 &&
    in_node "$n" ip addr add "${UL_IP[$n]}/24" dev ul0 &&
    in_node "$n" ip addr add "${UL_IP6[$n]}/64" dev ul0 nodad &&
    in_node "$n" ip link set ul0 up &&
    in_node "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || die "cannot set up the underlay of node $n"
done
in_node a busybox ping -c1 -W2 "${UL_IP[b]}" >/dev/null || die "node a cannot reach node b on the underlay"

# ---- 3. etcd on node A, the flannel network config in it
mkdir -p "$DATA/etcd"
nsenter --net="$(ns a)" "$FBIN/etcd" --name flannel-test --data-dir "$DATA/etcd/data" \
  --listen-client-urls "http://127.0.0.1:2379,http://${UL_IP[a]}:2379" \
  --advertise-client-urls "http://${UL_IP[a]}:2379" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster flannel-test=http://127.0.0.1:2380 --log-level warn \
  >"$RESULTS/etcd.log" 2>&1 </dev/null 9>&- &
ETCD_PID=$!
for _ in $(seq 1 100); do
  in_node a curl -fsS --max-time 1 http://127.0.0.1:2379/health >/dev/null 2>&1 && break
  sleep 0.1
done
in_node a curl -fsS --max-time 2 http://127.0.0.1:2379/health >/dev/null || die "etcd does not answer (log: $RESULTS/etcd.log)"
# Dual stack: flanneld leases each node an IPv4 /24 and an IPv6 /64, with one VXLAN device per
# family (flannel.1 over the underlay's IPv4, flannel-v6.1 over its IPv6).
FLANNEL_CONFIG="{\"Network\": \"$NETWORK\", \"SubnetLen\": 24, \"EnableIPv6\": true, \"IPv6Network\": \"$NETWORK6\", \"IPv6SubnetLen\": 64, \"Backend\": {\"Type\": \"vxlan\", \"VNI\": 1, \"Port\": 8472}}"
b64() { printf '%s' "$1" | base64 -w0; }
in_node a curl -fsS --max-time 5 -X POST http://127.0.0.1:2379/v3/kv/put \
  -d "{\"key\": \"$(b64 /coreos.com/network/config)\", \"value\": \"$(b64 "$FLANNEL_CONFIG")\"}" >/dev/null ||
  die "cannot write /coreos.com/network/config to etcd"

# ---- 4. flanneld on each node
declare -A SUBNET=() SUBNET6=() FMTU=()
for n in $NODES; do
  mkdir -p "$(state "$n")"
  nsenter --net="$(ns "$n")" "$FBIN/flanneld" --etcd-endpoints "http://${UL_IP[a]}:2379" --etcd-prefix /coreos.com/network \
    --iface ul0 --subnet-file "$(state "$n")/subnet.env" --ip-masq=false \
    >"$RESULTS/flanneld-$n.log" 2>&1 </dev/null 9>&- &
  FLANNEL_PIDS[$n]=$!
done
for n in $NODES; do
  for _ in $(seq 1 200); do [ -s "$(state "$n")/subnet.env" ] && break; sleep 0.1; done
  [ -s "$(state "$n")/subnet.env" ] || die "flanneld on node $n wrote no subnet.env (log: $RESULTS/flanneld-$n.log)"
  SUBNET[$n]=$(sed -n 's/^FLANNEL_SUBNET=//p' "$(state "$n")/subnet.env")
  SUBNET6[$n]=$(sed -n 's/^FLANNEL_IPV6_SUBNET=//p' "$(state "$n")/subnet.env")
  FMTU[$n]=$(sed -n 's/^FLANNEL_MTU=//p' "$(state "$n")/subnet.env")
  cp "$(state "$n")/subnet.env" "$RESULTS/subnet-$n.env"
  note "node $n: flannel subnets ${SUBNET[$n]} and ${SUBNET6[$n]:-(no IPv6)}, MTU ${FMTU[$n]}"
done
# Each node routes the other's subnet through its VXLAN device once flanneld has seen its lease.
route_to() { in_node "$1" ip route get "${2%/*}" 2>/dev/null | grep -q 'dev flannel\.1'; }
for _ in $(seq 1 100); do route_to a "${SUBNET[b]}" && route_to b "${SUBNET[a]}" && break; sleep 0.1; done
check "each node routes the other's flannel subnet through flannel.1" \
  eval 'route_to a "${SUBNET[b]}" && route_to b "${SUBNET[a]}"'

# ---- 5. one crid per node
python3 "$HERE/image.py" /bin/busybox "$RESULTS/image.tar" "$IMAGE" || die "cannot make the pod image"
write_flannel_conflist() { # NODE
  local s; s=$(state "$1")
  cat >"$s/net.d/10-flannel.conflist" <<EOC
{
  "cniVersion": "0.4.0",
  "name": "cbr0",
  "plugins": [
    {"type": "flannel", "subnetFile": "$s/subnet.env", "dataDir": "$s/flannel-cni",
     "ipam": {"type": "host-local", "dataDir": "$s/ipam"},
     "delegate": {"bridge": "cni0", "hairpinMode": true, "isDefaultGateway": true, "ipMasq": false}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOC
}
for n in $NODES; do
  s=$(state "$n") r=$(root "$n")
  mkdir -p "$s/bin" "$s/net.d" "$s/netns" "$s/cni-bin" "$r"
  install -m 0755 "$CRID" "$s/bin/crid"
  install -m 0755 "$OUTDIR/shim/crid-shim" "$s/bin/crid-shim"
  install -m 0755 "$OUTDIR/pause/crid-pause" "$s/bin/crid-pause"
  write_flannel_conflist "$n"
  cat >"$s/crid.json" <<EOC
{
  "root": "$r",
  "state": "$s",
  "listen": "unix://$s/crid.sock",
  "logLevel": "info",
  "cgroupDriver": "cgroupfs",
  "cni": {"confDir": "$s/net.d", "binDirs": ["$FBIN", "/usr/lib/cni", "$s/cni-bin"]},
  "pod": {"pauseBinary": "$s/bin/crid-pause", "netnsDir": "$s/netns"},
  "container": {"shimBinary": "$s/bin/crid-shim"},
  "streaming": {"address": "127.0.0.1"}
}
EOC
  printf 'runtime-endpoint: unix://%s/crid.sock\nimage-endpoint: unix://%s/crid.sock\ntimeout: 30\n' "$s" "$s" >"$s/crictl.yaml"
  cp "$s/crid.json" "$RESULTS/crid-$n.json"
  cp "$s/net.d/10-flannel.conflist" "$RESULTS/flannel-$n.conflist"
  "$s/bin/crid" --config "$s/crid.json" images import "$RESULTS/image.tar" >>"$RESULTS/crid-$n.log" 2>&1 ||
    die "cannot import the pod image on node $n (log: $RESULTS/crid-$n.log)"
  crid_start_node "$n" || die "crid on node $n does not start (log: $RESULTS/crid-$n.log)"
done

# ---- 6. pods
# POD_ID[name], CTR_ID[name], POD_IP[name], POD_NS[name] (netns pin)
declare -A POD_ID=() CTR_ID=() POD_IP=() POD_IP6=() POD_NS=()
run_pod() { # NODE NAME [HOSTPORT]
  local n=$1 name=$2 hp=${3:-} d=$RESULTS/pods/$2 ports=""
  mkdir -p "$d/logs"   # kubelet makes the pod's log directory
  [ -n "$hp" ] && ports=", \"port_mappings\": [{\"protocol\": 0, \"container_port\": 8080, \"host_port\": $hp}]"
  cat >"$d/pod.json" <<EOC
{"metadata": {"name": "$name", "namespace": "flannel-test", "uid": "uid-$name", "attempt": 0},
 "hostname": "$name", "log_directory": "$d/logs", "linux": {}$ports}
EOC
  cat >"$d/ctr.json" <<EOC
{"metadata": {"name": "echo"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/nc", "-ll", "-p", "8080", "-e", "/bin/cat"], "log_path": "echo.log", "linux": {}}
EOC
  POD_ID[$name]=$(crictl_n "$n" runp "$d/pod.json" 2>"$d/runp.err") || { cat "$d/runp.err" >&2; return 1; }
  CTR_ID[$name]=$(crictl_n "$n" create "${POD_ID[$name]}" "$d/ctr.json" "$d/pod.json" 2>"$d/create.err") ||
    { cat "$d/create.err" >&2; return 1; }
  crictl_n "$n" start "${CTR_ID[$name]}" >/dev/null || return 1
  crictl_n "$n" inspectp -o json "${POD_ID[$name]}" >"$d/inspectp.json" || return 1
  POD_IP[$name]=$(jq -r '.status.network.ip' "$d/inspectp.json")
  POD_IP6[$name]=$(jq -r '.status.network.additionalIps[0].ip // ""' "$d/inspectp.json")
  POD_NS[$name]=$(state "$n")/netns/crid-${POD_ID[$name]:0:32}
}
in_subnet() { python3 -c 'import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2], strict=False))' "$1" "$2"; }
pod_mtu() { nsenter --net="${POD_NS[$1]}" ip -o link show eth0 2>/dev/null | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
vxlan_packets() { # NODE DIR(tx|rx) [DEVICE]
  in_node "$1" ip -s -j link show "${3:-flannel.1}" | jq -r ".[0].stats64.$2.packets"
}
# Waits until a TCP echo answers (the container's nc may take a moment to listen).
wait_echo() { # NETNS HOST PORT
  local i
  for i in $(seq 1 50); do
    nsenter --net="$1" python3 "$HERE/tcp_probe.py" "$2" "$3" 1 >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

run_pod a pa1 || die "cannot run pod pa1 on node a"
run_pod a pa2 || die "cannot run pod pa2 on node a"
run_pod b pb1 "$HOSTPORT" || die "cannot run pod pb1 (hostPort $HOSTPORT) on node b"
note "pods: pa1 ${POD_IP[pa1]}, pa2 ${POD_IP[pa2]} on node a; pb1 ${POD_IP[pb1]} on node b"
for p in pa1 pa2; do check "pod $p's IP ${POD_IP[$p]} is in node a's flannel subnet ${SUBNET[a]}" in_subnet "${POD_IP[$p]}" "${SUBNET[a]}"; done
check "pod pb1's IP ${POD_IP[pb1]} is in node b's flannel subnet ${SUBNET[b]}" in_subnet "${POD_IP[pb1]}" "${SUBNET[b]}"
for p in pa1 pb1; do
  mtu=$(pod_mtu "$p")
  check "pod $p's eth0 MTU ($mtu) is the flannel MTU (${FMTU[a]})" [ "$mtu" = "${FMTU[a]}" ]
done

# ICMP from pod pa1's container to pod pb1 on the other node, counted on both VXLAN devices.
tx_a=$(vxlan_packets a tx) rx_a=$(vxlan_packets a rx) rx_b=$(vxlan_packets b rx)
if crictl_n a exec -s --timeout 20 "${CTR_ID[pa1]}" ping -c 5 -i 0.2 -W 2 "${POD_IP[pb1]}" >"$RESULTS/ping.txt" 2>&1; then
  pass "ICMP from pod pa1 (node a) to pod pb1 (node b): $(grep -o 'min/avg/max = [0-9./]* ms' "$RESULTS/ping.txt")"
else
  fail "ICMP from pod pa1 (node a) to pod pb1 (node b): $(tail -2 "$RESULTS/ping.txt" | paste -sd' ')"
fi
d_tx=$(( $(vxlan_packets a tx) - tx_a )) d_rx=$(( $(vxlan_packets a rx) - rx_a )) d_rxb=$(( $(vxlan_packets b rx) - rx_b ))
check "the pings crossed flannel.1 (node a tx +$d_tx rx +$d_rx, node b rx +$d_rxb; 5 each way)" \
  eval '[ "$d_tx" -ge 5 ] && [ "$d_rx" -ge 5 ] && [ "$d_rxb" -ge 5 ]'

# IPv6: each pod's second address comes from its node's IPv6 lease, and ICMPv6 between the
# nodes' pods crosses flannel-v6.1.
for p in pa1 pb1; do
  n=${p:1:1}
  check "pod $p's additional IP ${POD_IP6[$p]:-none} is in node $n's flannel IPv6 subnet ${SUBNET6[$n]:-none}" \
    eval '[ -n "${POD_IP6[$p]}" ] && [ -n "${SUBNET6[$n]}" ] && in_subnet "${POD_IP6[$p]}" "${SUBNET6[$n]}"'
done
if [ -n "${POD_IP6[pb1]}" ]; then
  tx6=$(vxlan_packets a tx flannel-v6.1)
  if crictl_n a exec -s --timeout 20 "${CTR_ID[pa1]}" ping6 -c 5 -i 0.2 -W 2 "${POD_IP6[pb1]}" >"$RESULTS/ping6.txt" 2>&1; then
    pass "ICMPv6 from pod pa1 (node a) to pod pb1 (node b): $(grep -o 'min/avg/max = [0-9./]* ms' "$RESULTS/ping6.txt")"
  else
    fail "ICMPv6 from pod pa1 (node a) to pod pb1 (node b): $(tail -2 "$RESULTS/ping6.txt" | paste -sd' ')"
  fi
  d6=$(( $(vxlan_packets a tx flannel-v6.1) - tx6 ))
  check "the ICMPv6 pings crossed flannel-v6.1 (node a tx +$d6)" [ "$d6" -ge 5 ]
fi

# TCP: 200 round trips of 16 bytes from pod pa1's netns to pb1's echo server (node b), and to
# pa2's (same node, over the bridge only) for comparison.
ROUNDS=200
wait_echo "${POD_NS[pa1]}" "${POD_IP[pb1]}" 8080
tx_a=$(vxlan_packets a tx)
cross=$(nsenter --net="${POD_NS[pa1]}" python3 "$HERE/tcp_probe.py" "${POD_IP[pb1]}" 8080 $ROUNDS)
d_tx=$(( $(vxlan_packets a tx) - tx_a ))
read -r st c_conn c_med c_p90 <<<"$cross"
check "TCP echo, pod pa1 (node a) -> pod pb1 (node b): $cross" [ "$st" = ok ]
check "the TCP exchange crossed flannel.1 (node a tx +$d_tx for $ROUNDS round trips)" [ "$d_tx" -ge "$ROUNDS" ]
wait_echo "${POD_NS[pa1]}" "${POD_IP[pa2]}" 8080
local_rt=$(nsenter --net="${POD_NS[pa1]}" python3 "$HERE/tcp_probe.py" "${POD_IP[pa2]}" 8080 $ROUNDS)
read -r st l_conn l_med l_p90 <<<"$local_rt"
check "TCP echo, pod pa1 -> pod pa2 (both node a): $local_rt" [ "$st" = ok ]

# hostPort: node a's own address space reaches node b's 10.99.0.2:30080 (portmap DNAT).
wait_echo "$(ns a)" "${UL_IP[b]}" "$HOSTPORT"
hp=$(in_node a python3 "$HERE/tcp_probe.py" "${UL_IP[b]}" "$HOSTPORT" 5)
check "hostPort $HOSTPORT of pod pb1 reached from node a at ${UL_IP[b]}:$HOSTPORT: $hp" [ "${hp%% *}" = ok ]

# ---- 7. crid restarted on node b: pb1 stays reachable while it is down and after it is back
stop_pid "${CRID_PIDS[b]}" "crid (b)"
CRID_PIDS[b]=
r=$(nsenter --net="${POD_NS[pa1]}" python3 "$HERE/tcp_probe.py" "${POD_IP[pb1]}" 8080 10)
check "pod pb1 reachable from pa1 while node b's crid is stopped: $r" [ "${r%% *}" = ok ]
if crid_start_node b; then
  state_b=$(crictl_n b inspectp -o json "${POD_ID[pb1]}" | jq -r '.status.state + " " + .status.network.ip')
  check "after crid's restart node b lists pb1 ready with its IP ($state_b)" [ "$state_b" = "SANDBOX_READY ${POD_IP[pb1]}" ]
  r=$(nsenter --net="${POD_NS[pa1]}" python3 "$HERE/tcp_probe.py" "${POD_IP[pb1]}" 8080 10)
  check "pod pb1 reachable from pa1 after node b's crid restarted: $r" [ "${r%% *}" = ok ]
  hp=$(in_node a python3 "$HERE/tcp_probe.py" "${UL_IP[b]}" "$HOSTPORT" 2)
  check "hostPort $HOSTPORT still served after the restart: $hp" [ "${hp%% *}" = ok ]
else
  fail "crid on node b restarts (log: $RESULTS/crid-b.log)"
fi

# ---- 8. removing pb1 leaves nothing of it on node b
sb=$(state b)
cache=$(root b)/cni/results/${POD_ID[pb1]}-eth0.json
host_veth=$(jq -r '.result.interfaces[] | select((.sandbox // "") == "" and (.name | startswith("veth"))) | .name' "$cache" 2>/dev/null | head -1)
ipam_file=$sb/ipam/cbr0/${POD_IP[pb1]}
[ -n "$host_veth" ] && in_node b ip link show "$host_veth" >/dev/null 2>&1 &&
  [ -e "$ipam_file" ] && [ -e "${POD_NS[pb1]}" ] &&
  in_node b iptables-save | grep -q "${POD_ID[pb1]}" ||
  note "warning: before removal, one of veth $host_veth / $ipam_file / ${POD_NS[pb1]} / its iptables rules is missing"
crictl_n b stopp "${POD_ID[pb1]}" >/dev/null && crictl_n b rmp "${POD_ID[pb1]}" >/dev/null
check "pod pb1 removed through the CRI" eval '! crictl_n b inspectp "${POD_ID[pb1]}" >/dev/null 2>&1'
check "no host veth of pb1 ($host_veth) on node b" eval '[ -n "$host_veth" ] && ! in_node b ip link show "$host_veth" >/dev/null 2>&1'
check "no IPAM reservation of ${POD_IP[pb1]} ($ipam_file)" [ ! -e "$ipam_file" ]
check "no netns pin of pb1 and no CNI cache entry" eval '[ ! -e "${POD_NS[pb1]}" ] && [ ! -e "$cache" ] && [ ! -e "$sb/flannel-cni/${POD_ID[pb1]}" ]'
check "no route to ${POD_IP[pb1]} on node b" eval '! in_node b ip route show | grep -qw "${POD_IP[pb1]}"'
if [ -n "${POD_IP6[pb1]}" ]; then
  check "no IPAM reservation of ${POD_IP6[pb1]} and no IPv6 route naming it" \
    eval '[ ! -e "$sb/ipam/cbr0/${POD_IP6[pb1]}" ] && ! in_node b ip -6 route show | grep -qw "${POD_IP6[pb1]}"'
fi
rules=$( { in_node b iptables-save; in_node b ip6tables-save; } | grep -cE "${POD_ID[pb1]}|${POD_IP[pb1]}[/ ]${POD_IP6[pb1]:+|${POD_IP6[pb1]}[/ ]}")
check "no iptables rule naming pb1's ID or IP on node b ($rules)" [ "$rules" = 0 ]

# A config is written whole and renamed into place, as an operator should: crid's watcher
# would otherwise see (and skip, with a warning) a half-written file.
put_conf() { cat >"$1.tmp" && mv "$1.tmp" "$1"; }
# crid logs every network it loads; a conf-dir change is picked up within a moment.
net_loads() { grep -c "CNI network \"$2\" loaded" "$RESULTS/crid-$1.log"; }
wait_network() { # NODE NAME LOADS-BEFORE
  for _ in $(seq 1 50); do [ "$(net_loads "$1" "$2")" -gt "$3" ] && return 0; sleep 0.1; done
  note "warning: node $1 did not log loading network $2"
}

# ---- 9. dual stack and bandwidth on node a: a bridge conflist with an IPv4 and an IPv6 range and
# the bandwidth plugin takes over node a's conf dir (lexically first) for one pod.
n0=$(net_loads a dualnet)
put_conf "$(state a)/net.d/05-dual.conflist" <<EOC
{"cniVersion": "1.0.0", "name": "dualnet", "plugins": [
  {"type": "bridge", "bridge": "dualbr0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$(state a)/ipam",
            "ranges": [[{"subnet": "10.97.0.0/24"}], [{"subnet": "fd00:97::/64"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "bandwidth", "capabilities": {"bandwidth": true}}]}
EOC
wait_network a dualnet "$n0"
mkdir -p "$RESULTS/pods/dual"
cat >"$RESULTS/pods/dual/pod.json" <<EOC
{"metadata": {"name": "dual", "namespace": "flannel-test", "uid": "uid-dual", "attempt": 0}, "linux": {},
 "annotations": {"kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"}}
EOC
if dual_id=$(crictl_n a runp "$RESULTS/pods/dual/pod.json" 2>"$RESULTS/pods/dual/runp.err"); then
  crictl_n a inspectp -o json "$dual_id" >"$RESULTS/pods/dual/inspectp.json"
  ip4=$(jq -r '.status.network.ip' "$RESULTS/pods/dual/inspectp.json")
  ip6=$(jq -r '.status.network.additionalIps[0].ip // ""' "$RESULTS/pods/dual/inspectp.json")
  check "dual stack: PodSandboxStatus ip $ip4 is in 10.97.0.0/24" in_subnet "$ip4" 10.97.0.0/24
  check "dual stack: additional_ips[0] ${ip6:-none} is in fd00:97::/64" eval '[ -n "$ip6" ] && in_subnet "$ip6" fd00:97::/64'
  ok6=0
  for _ in $(seq 1 30); do  # the pod's IPv6 address leaves DAD (tentative) first
    in_node a busybox ping6 -c1 -W1 "$ip6" >/dev/null 2>&1 && { ok6=1; break; }
    sleep 0.2
  done
  check "node a reaches the pod's IPv6 address $ip6" [ "$ok6" = 1 ]
  dcache=$(root a)/cni/results/$dual_id-eth0.json
  dveth=$(jq -r '.result.interfaces[] | select((.sandbox // "") == "" and (.name | startswith("veth"))) | .name' "$dcache" 2>/dev/null | head -1)
  in_node a tc qdisc show >"$RESULTS/pods/dual/tc.txt" 2>&1
  # The bandwidth plugin shapes on the host side: a tbf on the pod's veth limits what the pod
  # receives (ingress 1M), a tbf on an ifb device fed from the veth limits what it sends (2M).
  check "ingress-bandwidth 1M: tbf rate 1Mbit on the pod's host veth $dveth" \
    eval 'grep -E "^qdisc tbf .* dev $dveth .*rate 1Mbit" "$RESULTS/pods/dual/tc.txt" >/dev/null'
  check "egress-bandwidth 2M: tbf rate 2Mbit on an ifb device" \
    eval 'grep -E "^qdisc tbf .* dev bwp[^ ]* .*rate 2Mbit" "$RESULTS/pods/dual/tc.txt" >/dev/null'
  crictl_n a rmp -f "$dual_id" >/dev/null
  left_tc=$(in_node a tc qdisc show | grep -cE "dev (bwp|$dveth)")
  check "removing the pod removes its shaping ($left_tc qdiscs left)" [ "$left_tc" = 0 ]
else
  fail "dual-stack pod with bandwidth annotations: $(cat "$RESULTS/pods/dual/runp.err")"
fi
n0=$(net_loads a cbr0)
rm -f "$(state a)/net.d/05-dual.conflist"
wait_network a cbr0 "$n0"

# ---- 9b. CNI 1.1 STATUS: a network at cniVersion 1.1.0 whose plugin says it is not available
# (code 50) keeps NetworkReady false and RunPodSandbox refused, with the plugin's message.
gate=$(state a)/cni-bin/statusgate
cat >"$gate" <<'EOP'
#!/bin/sh
dir=$(dirname "$0")
in=$(cat)
echo "$CNI_COMMAND $CNI_CONTAINERID" >>"$dir/calls.log"
[ "$CNI_COMMAND" = GC ] && printf '%s' "$in" >"$dir/gc-stdin.json"
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
  STATUS) if [ -e "$dir/down" ]; then
      echo '{"cniVersion":"1.1.0","code":50,"msg":"overlay down for maintenance"}'; exit 1
    fi ;;
  ADD) echo '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.96.0.5/24","interface":0}]}' ;;
  CHECK) if [ -e "$dir/broken" ]; then
      echo '{"cniVersion":"1.1.0","code":999,"msg":"eth0 has lost its address"}'; exit 1
    fi ;;
esac
exit 0
EOP
chmod 0755 "$gate"
touch "$(dirname "$gate")/down"
n0=$(net_loads a gated)
echo '{"cniVersion": "1.1.0", "name": "gated", "plugins": [{"type": "statusgate"}]}' | put_conf "$(state a)/net.d/04-gated.conflist"
wait_network a gated "$n0"
net_ready() { crictl_n a info 2>/dev/null | jq -r '.status.conditions[] | select(.type == "NetworkReady") | "\(.status) \(.message)"'; }
nr=$(net_ready)
check "CNI 1.1 STATUS failing: NetworkReady is '$nr'" eval '[[ "$nr" == "false "*"overlay down for maintenance"* ]]'
mkdir -p "$RESULTS/pods/gated"
echo '{"metadata": {"name": "gated", "namespace": "flannel-test", "uid": "uid-gated", "attempt": 0}, "linux": {}}' >"$RESULTS/pods/gated/pod.json"
if crictl_n a runp "$RESULTS/pods/gated/pod.json" >/dev/null 2>"$RESULTS/pods/gated/runp.err"; then
  fail "RunPodSandbox refused while the network's STATUS fails (it was accepted)"
else
  check "RunPodSandbox refused while STATUS fails: $(grep -o 'rpc error.*' "$RESULTS/pods/gated/runp.err" | head -1)" \
    grep -q "FailedPrecondition.*overlay down for maintenance" "$RESULTS/pods/gated/runp.err"
fi
rm -f "$(dirname "$gate")/down"
for _ in $(seq 1 80); do [[ "$(net_ready)" == true* ]] && break; sleep 0.1; done
nr=$(net_ready)
check "NetworkReady true again at the next STATUS round ($nr)" eval '[[ "$nr" == true* ]]'
# CHECK on PodSandboxStatus verbose (crictl inspectp), with what ADD cached.
cni_check() { crictl_n a inspectp -o json "$1" 2>/dev/null |
  jq -r '.info | if type == "object" and has("info") then .info else . end |
    if type == "string" then fromjson else . end | .cniCheck // "absent"'; }
if gid=$(crictl_n a runp "$RESULTS/pods/gated/pod.json" 2>"$RESULTS/pods/gated/runp2.err"); then
  c=$(cni_check "$gid")
  check "PodSandboxStatus verbose: info.cniCheck is '$c'" [ "$c" = ok ]
  touch "$(dirname "$gate")/broken"
  c=$(cni_check "$gid")
  check "PodSandboxStatus verbose with a failing CHECK: '$c'" eval '[[ "$c" == *"eth0 has lost its address"* ]]'
  rm -f "$(dirname "$gate")/broken"
  # GC at start: an attachment no pod holds (a copy of this pod's cache entry under another
  # ID, an hour old) is deleted, and the plugin gets GC with the pod crid knows as valid.
  rdir=$(root a)/cni/results
  stale=0000000000000000000000000000000000000000000000000000000000057a1e
  jq --arg id "$stale" '.containerId = $id' "$rdir/$gid-eth0.json" >"$rdir/$stale-eth0.json"
  touch -d '1 hour ago' "$rdir/$stale-eth0.json"
  stop_pid "${CRID_PIDS[a]}" "crid (a)"
  CRID_PIDS[a]=
  if crid_start_node a; then
    for _ in $(seq 1 50); do [ -e "$rdir/$stale-eth0.json" ] || break; sleep 0.1; done
    check "GC at crid's start: the unknown attachment was deleted (DEL $stale) and its cache entry removed" \
      eval '[ ! -e "$rdir/$stale-eth0.json" ] && grep -q "^DEL $stale" "$(dirname "$gate")/calls.log"'
    for _ in $(seq 1 50); do [ -s "$(dirname "$gate")/gc-stdin.json" ] && break; sleep 0.1; done
    valid=$(jq -c '."cni.dev/valid-attachments"' "$(dirname "$gate")/gc-stdin.json" 2>/dev/null)
    check "GC at crid's start: the plugin got GC with valid-attachments $valid" \
      eval '[[ "$valid" == *"\"containerID\":\"$gid\""* && "$valid" != *"$stale"* ]]'
    check "the pod crid knows kept its attachment through GC" [ -e "$rdir/$gid-eth0.json" ]
  else
    fail "crid on node a restarts (log: $RESULTS/crid-a.log)"
  fi
  crictl_n a rmp -f "$gid" >/dev/null
else
  fail "a pod on the CNI 1.1 network once it is ready: $(cat "$RESULTS/pods/gated/runp2.err")"
fi
n0=$(net_loads a cbr0)
rm -f "$(state a)/net.d/04-gated.conflist"
wait_network a cbr0 "$n0"

# ---- 10. RunPodSandbox on flannel vs plain bridge conflists (same node, same crid)
time_runp() { # NODE LABEL N -- prints the median milliseconds of N RunPodSandbox calls
  local n=$1 label=$2 count=$3 i t id ms=()
  for i in $(seq 1 "$count"); do
    mkdir -p "$RESULTS/pods/t-$label-$i"
    cat >"$RESULTS/pods/t-$label-$i/pod.json" <<EOC
{"metadata": {"name": "t-$label-$i", "namespace": "flannel-test", "uid": "uid-t-$label-$i", "attempt": 0}, "linux": {}}
EOC
    t=$(date +%s%N)
    id=$(crictl_n "$n" runp "$RESULTS/pods/t-$label-$i/pod.json" 2>/dev/null) || return 1
    ms+=($(( ($(date +%s%N) - t) / 1000000 )))
    crictl_n "$n" rmp -f "$id" >/dev/null || return 1
  done
  printf '%s\n' "${ms[@]}" | sort -n | sed -n "$(( (count + 1) / 2 ))p"
}
# The flannel network here is dual stack: it is compared with a plain bridge on IPv4 alone and
# on both families (the same two ranges), so the cost of flannel's own step shows apart from
# IPv6's (the bridge plugin waits for the pod's IPv6 address to leave DAD).
time_bridge() { # NAME RANGES -- RunPodSandbox median on a plain bridge conflist with these ranges
  local n0
  n0=$(net_loads a "$1")
  put_conf "$(state a)/net.d/05-$1.conflist" <<EOC
{"cniVersion": "1.0.0", "name": "$1", "plugins": [
  {"type": "bridge", "bridge": "${1}0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$(state a)/ipam", "ranges": $2}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOC
  wait_network a "$1" "$n0"
  time_runp a "$1" 9
  n0=$(net_loads a cbr0)
  rm -f "$(state a)/net.d/05-$1.conflist"
  wait_network a cbr0 "$n0"
}
flannel_ms=$(time_runp a flannel 9)
bridge_ms=$(time_bridge plainbr '[[{"subnet": "10.98.0.0/24"}]]')
bridge2_ms=$(time_bridge plainds '[[{"subnet": "10.98.1.0/24"}], [{"subnet": "fd00:98::/64"}]]')
if [ -n "$flannel_ms" ] && [ -n "$bridge_ms" ] && [ -n "$bridge2_ms" ]; then
  pass "RunPodSandbox median of 9 (crictl runp, wall): flannel dual stack ${flannel_ms} ms, bridge IPv4 ${bridge_ms} ms, bridge dual stack ${bridge2_ms} ms"
else
  fail "RunPodSandbox timing (flannel '${flannel_ms}', bridge '${bridge_ms}', bridge dual stack '${bridge2_ms}')"
fi

echo "measured: TCP round trip of 16 bytes across nodes (VXLAN) median ${c_med:-?} us, p90 ${c_p90:-?} us, connect ${c_conn:-?} us;" \
  "same node (bridge) median ${l_med:-?} us, p90 ${l_p90:-?} us;" \
  "RunPodSandbox flannel (dual stack) ${flannel_ms:-?} ms, bridge IPv4 ${bridge_ms:-?} ms, bridge dual stack ${bridge2_ms:-?} ms" |
  tee "$RESULTS/measurements.txt"

# ---- 11. teardown: everything this run started is stopped and nothing of it stays
started="$ETCD_PID ${FLANNEL_PIDS[*]} ${CRID_PIDS[*]}"
teardown
left=""
[ -e "$TOP" ] && left+=" $TOP"
for n in $NODES; do [ -e "$(root "$n")" ] && left+=" $(root "$n")"; done
ip link show fltest-a >/dev/null 2>&1 && left+=" veth fltest-a"
for pid in $started; do kill -0 "$pid" 2>/dev/null && left+=" pid $pid"; done
check "teardown leaves no process, netns, mount or directory of the run${left:+ (left:$left)}" [ -z "$left" ]
note "total $(( $(date +%s) - T0 ))s"
result_line
[ "$FAILED" = 0 ]
