# Shared by tests/k8s/*.sh (sourced, not run). Needs HERE set to tests/k8s.
# shellcheck shell=bash
# shellcheck source=versions.env
. "$HERE/versions.env"

CACHE=${CRID_K8S_CACHE:-/var/cache/crid-k8s}
REGISTRY_PORT=${CRID_K8S_REGISTRY_PORT:-5100}
REGISTRY_ADDR=127.0.0.1:$REGISTRY_PORT
REGISTRY_DIR=$CACHE/registry
REGISTRY_PIDFILE=$REGISTRY_DIR/registry.pid
REGISTRY_STARTED_HERE=0

# Installs the Debian packages named in "package:path" pairs whose path is missing.
ensure_packages() {
  local need=() p
  for p in "$@"; do
    [ -e "${p#*:}" ] || need+=("${p%%:*}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
}

registry_healthy() {
  curl -fsS --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1
}

# Starts Debian's docker-registry (CNCF distribution) on 127.0.0.1:$REGISTRY_PORT with its data
# under $REGISTRY_DIR, unless the one this script family started earlier still serves.
# Sets REGISTRY_STARTED_HERE=1 when it started one; registry_down stops only that one.
# With "adopt", a registry that an earlier run started and never stopped (its command line
# names our config file) is taken over, so that registry_down stops it.
registry_up() {
  ensure_packages docker-registry:/usr/bin/docker-registry curl:/usr/bin/curl
  mkdir -p "$REGISTRY_DIR/data"
  local old
  old=$(cat "$REGISTRY_PIDFILE" 2>/dev/null || true)
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null && registry_healthy; then
    if [ "${1:-}" = adopt ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -qF "$REGISTRY_DIR/config.yml"; then
      REGISTRY_STARTED_HERE=1
    fi
    return 0
  fi
  if registry_healthy; then
    echo "FAIL: something not started by tests/k8s already serves http://$REGISTRY_ADDR (set CRID_K8S_REGISTRY_PORT)" >&2
    return 1
  fi
  cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
EOF
  # fd 9 is critest.sh's lock; the registry must not hold it.
  docker-registry serve "$REGISTRY_DIR/config.yml" >>"$REGISTRY_DIR/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$REGISTRY_PIDFILE"
  REGISTRY_STARTED_HERE=1
  local i
  for i in $(seq 1 100); do
    registry_healthy && return 0
    kill -0 "$(cat "$REGISTRY_PIDFILE")" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: docker-registry did not start on $REGISTRY_ADDR; see $REGISTRY_DIR/registry.log" >&2
  tail -5 "$REGISTRY_DIR/registry.log" >&2
  return 1
}

registry_down() {
  [ "$REGISTRY_STARTED_HERE" = 1 ] || return 0
  local pid
  pid=$(cat "$REGISTRY_PIDFILE" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$REGISTRY_PIDFILE"
  REGISTRY_STARTED_HERE=0
}

# ---- A crid for a test run: its own root, state directory, socket, CNI bridge network and
# registry mirrors. critest.sh and kubelet_test.sh share these. The caller sets
#   PROG       prefix of messages ("critest.sh")
#   ROOT_DIR   crid's root (images, containers), removed at the end
#   STATE_DIR  crid's state (socket, shim dirs, netns pins, IPAM), removed at the end
#   BRIDGE     the CNI bridge's name; SUBNET the pod subnet
#   RESULTS    where crid.log, crid.json and the conflist go
# and calls crid_paths first. crid_build sets CRID and OUTDIR; crid_start sets CRID_PID.
# CRID_CONTAINER_EXTRA (optional) is JSON text appended inside crid.json's "container" object
# (e.g. ', "handlers": {...}').
crid_paths() {
  RUN_IN=()   # a command prefix for crid (e.g. nsenter into a network namespace); empty: none
  SOCK=$STATE_DIR/crid.sock
  EP=unix://$SOCK
  NET_DIR=$STATE_DIR/net.d
  NET_NAME=$(basename "$STATE_DIR")
  CRID_PID=
}

crid_crictl() { "$BIN/crictl" --config "$STATE_DIR/crictl.yaml" "$@"; }

# Stops one process this run started: SIGTERM, SIGKILL after 10 s.
stop_pid() { # PID NAME
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$PROG: $2 (pid $pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

# Builds crid, crid-shim and crid-pause with Bazel in the release configuration, what
# `make install` and the package ship (or takes $CRID_BIN, with crid-shim and crid-pause
# beside it in bazel-bin's layout). $CRID_BUILD_FLAGS replaces --config=release (e.g. empty
# for the debug build). Sets CRID and OUTDIR.
crid_build() {
  if [ -n "${CRID_BIN:-}" ]; then
    CRID=$CRID_BIN
    OUTDIR=$(dirname "$CRID_BIN")
  else
    local flags
    read -r -a flags <<<"${CRID_BUILD_FLAGS---config=release}"
    if ! (cd "$REPO" && bazel build "${flags[@]}" //:crid //shim:crid-shim //pause:crid-pause) >"$RESULTS/bazel-build.log" 2>&1; then
      tail -20 "$RESULTS/bazel-build.log" >&2
      echo "$PROG: bazel build //:crid failed (log: $RESULTS/bazel-build.log)" >&2
      return 1
    fi
    OUTDIR=$(cd "$REPO" && bazel info "${flags[@]}" bazel-bin 2>/dev/null)
    OUTDIR=$(readlink -f "$OUTDIR")
    CRID=$OUTDIR/crid
  fi
  local f
  for f in "$CRID" "$OUTDIR/shim/crid-shim" "$OUTDIR/pause/crid-pause"; do
    [ -x "$f" ] || { echo "$PROG: missing $f" >&2; return 1; }
  done
}

# PIDs of processes this run's crid started and left: shims (their --dir is under our state
# directory) and anything inside one of our pods' network namespaces (crid-pause, containers).
crid_leftover_pids() {
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

# What crid should have removed but a failed or interrupted run may leave: a crid started with
# our config file, runc containers under our runc root, our shims and the processes in our
# pods' network namespaces, mounts under our directories; then the directories. Each finding
# is reported.
crid_remove_leftovers() {
  local pid cmd c d
  for pid in $(pgrep -x crid 2>/dev/null); do
    cmd=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    if [[ "$cmd" == *" --config $STATE_DIR/crid.json"* ]]; then
      echo "$PROG: warning: leftover crid pid $pid; stopping it" >&2
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [ -d "$STATE_DIR/runtime/runc" ]; then
    for c in $(runc --root "$STATE_DIR/runtime/runc" list -q 2>/dev/null); do
      echo "$PROG: warning: leftover runc container $c; deleting it" >&2
      runc --root "$STATE_DIR/runtime/runc" delete -f "$c" >/dev/null 2>&1
    done
  fi
  # Shims and crid-pause outlive crid by design; end the ones this run left.
  for pid in $(crid_leftover_pids); do
    echo "$PROG: warning: leftover process $pid ($(cat /proc/$pid/comm 2>/dev/null)); killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  done
  # Mounts left under our directories (deepest first), then the directories.
  for d in "$STATE_DIR" "$ROOT_DIR"; do
    findmnt -rn -o TARGET 2>/dev/null | grep -E "^$d(/|$)" | sort -r | while read -r m; do
      echo "$PROG: warning: leftover mount $m; unmounting it" >&2
      umount -l "$m" 2>/dev/null
    done
  done
  rm -rf --one-file-system "$STATE_DIR" "$ROOT_DIR" 2>/dev/null
}

# The CNI conflist of a run: bridge with host-local IPAM on $SUBNET (isGateway, no ipMasq, no
# routes: nothing leaves the machine) and portmap. Written into $NET_DIR.
crid_write_conflist() {
  cat >"$NET_DIR/10-$NET_NAME.conflist" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "$NET_NAME",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE_DIR/ipam", "ranges": [[{"subnet": "$SUBNET"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOC
}

# Prepares the directories (removing what an interrupted run left), copies the binaries,
# writes the CNI conflist, crid.json and crictl.yaml. Needs CRID and OUTDIR (crid_build).
# isGateway gives the bridge an address in the subnet so the host reaches pod IPs; with no
# routes in the IPAM config, pods have no default route, and ipMasq is off: nothing leaves
# the machine. portmap's snat (on by default) only rewrites 127.0.0.1 -> hostPort traffic.
crid_prepare() { # CGROUP_DRIVER
  if [ -e "$ROOT_DIR" ] || [ -e "$STATE_DIR" ]; then
    echo "$PROG: removing what an earlier run left in $ROOT_DIR and $STATE_DIR" >&2
    crid_remove_leftovers
    if findmnt -rn -o TARGET | grep -qE "^($ROOT_DIR|$STATE_DIR)(/|$)"; then
      echo "$PROG: mounts remain under $ROOT_DIR or $STATE_DIR from an earlier run" >&2
      return 1
    fi
  fi
  # The bridge is ours by name; an interrupted run leaves it (and its route) behind.
  ip link del "$BRIDGE" 2>/dev/null && echo "$PROG: warning: removed bridge $BRIDGE left by an earlier run" >&2
  if ip -4 route show | grep -qE "^${SUBNET%%/*}[/ ]"; then
    echo "$PROG: the pod subnet $SUBNET is already routed on this host" >&2
    return 1
  fi
  mkdir -p "$ROOT_DIR" "$STATE_DIR/netns" "$NET_DIR" "$STATE_DIR/bin"
  # Copies, so that a rebuild in the work tree during the run cannot swap binaries under crid.
  install -m 0755 "$CRID" "$STATE_DIR/bin/crid"
  install -m 0755 "$OUTDIR/shim/crid-shim" "$STATE_DIR/bin/crid-shim"
  install -m 0755 "$OUTDIR/pause/crid-pause" "$STATE_DIR/bin/crid-pause"
  CRID=$STATE_DIR/bin/crid
  crid_write_conflist
  # mirrorsOnly: an image the local registry lacks fails at once; crid never
  # falls back to the upstream registry (not even a DNS query leaves the machine).
  local mirror="{\"mirrors\": [\"http://$REGISTRY_ADDR\"], \"mirrorsOnly\": true}"
  cat >"$STATE_DIR/crid.json" <<EOC
{
  "root": "$ROOT_DIR",
  "state": "$STATE_DIR",
  "listen": "$EP",
  "logLevel": "info",
  "cgroupDriver": "$1",
  "image": {"registries": {
    "registry.k8s.io": $mirror, "k8s.gcr.io": $mirror, "gcr.io": $mirror,
    "docker.io": $mirror, "public.ecr.aws": $mirror, "quay.io": $mirror}},
  "cni": {"confDir": "$NET_DIR", "binDirs": ["/usr/lib/cni", "/opt/cni/bin"]},
  "pod": {"pauseBinary": "$STATE_DIR/bin/crid-pause", "netnsDir": "$STATE_DIR/netns"},
  "container": {"shimBinary": "$STATE_DIR/bin/crid-shim"${CRID_CONTAINER_EXTRA:-}},
  "streaming": {"address": "127.0.0.1"}
}
EOC
  printf 'runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n' "$EP" "$EP" >"$STATE_DIR/crictl.yaml"
  cp "$STATE_DIR/crid.json" "$NET_DIR/10-$NET_NAME.conflist" "$RESULTS/"
}

# Starts crid (log: $RESULTS/crid.log) and waits until it answers. fd 9 (a caller's lock) is
# not passed.
crid_start() {
  "${RUN_IN[@]}" "$CRID" --config "$STATE_DIR/crid.json" >"$RESULTS/crid.log" 2>&1 </dev/null 9>&- &
  CRID_PID=$!
  local i
  for i in $(seq 1 200); do
    if ! kill -0 "$CRID_PID" 2>/dev/null; then
      tail -20 "$RESULTS/crid.log" >&2
      CRID_PID=
      echo "$PROG: crid exited at start (log: $RESULTS/crid.log)" >&2
      return 1
    fi
    crid_crictl --timeout 2s version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$PROG: crid does not answer on $EP" >&2
  return 1
}

# Removes the pods crid still holds through the CRI (as kubelet would), stops crid, then
# removes whatever is left and the bridge.
crid_stop() {
  if [ -n "$CRID_PID" ] && [ -n "${BIN:-}" ] && kill -0 "$CRID_PID" 2>/dev/null; then
    crid_crictl --timeout 60s rmp -fa >/dev/null 2>&1
    local left
    left=$(crid_crictl pods -q 2>/dev/null | wc -l)
    [ "$left" -gt 0 ] && echo "$PROG: warning: $left pod(s) still listed after rmp -fa" >&2
    stop_pid "$CRID_PID" crid
  fi
  CRID_PID=
  crid_remove_leftovers
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE" 2>/dev/null
  fi
}
