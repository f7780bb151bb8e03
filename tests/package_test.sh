#!/bin/bash
# The Debian package, installed and run as a node runs it: inside the systemd fixture
# (tests/systemd_host.sh: a real systemd as PID 1 of a private PID+mount+UTS namespace).
#
#   tests/package_test.sh [--counts] [--deb FILE]
#
#   1. the package: packaging/build-deb.sh (release build) unless --deb names one; its control
#      file (Depends on runc and the libraries, conffiles) is checked
#   2. the fixture, with private copy-on-write layers over /usr, /etc and /var/lib inside its
#      mount namespace (overlayfs, upper layers under $LAB) and crid's /var/lib/crid bound to a
#      directory under $LAB: `dpkg -i` installs for real, and nothing reaches the host's files
#   3. `dpkg -i`: postinst enables and starts crid.service with the package's unit and config
#      as shipped; the unit is active and running (Type=notify: READY=1 came), crictl answers
#      through the shipped /etc/crictl.yaml, and `crid check` passes
#   4. two pods sharing one PID namespace each (crid-pause) on the node's network, with a
#      busybox container (crid-shim) from the local registry of tests/k8s (127.0.0.1): "slice"
#      in a slice as kubelet gives with the systemd driver (crid-shim and crid-pause in scopes
#      of their own), "unit" with no cgroup parent (both stay in crid.service's cgroup, where
#      only KillMode=process spares them)
#   5. `systemctl stop crid.service`: crid is gone, crid-shim, crid-pause and the container
#      keep running (KillMode=process)
#   6. `systemctl start crid.service` again: the pods are SANDBOX_READY and the containers
#      running, served by the same shims; then the package installed once more (an upgrade):
#      postinst restarts crid, and the pods' processes keep running
#   7. the pods removed through the CRI (their processes end), `dpkg --purge` stops crid and
#      removes the files and the unit
#   8. the `make install` layout (packaging/install.sh --prefix /usr/local, the package's
#      binaries): systemd finds the unit in /usr/local/lib/systemd/system, crid starts from it
#      and runs a pod with /usr/local/bin/crid-shim and crid-pause; `--uninstall` removes it.
#      Stopping the fixture then leaves no process or cgroup
# Each numbered check prints one PASS or FAIL line; the run ends with "package: N passed,
# N failed, N skipped", and with --counts one more line "package P F S" (the form
# tools/run-tests.sh reads). A failure outside a check (a tool that cannot be built, the
# fixture not starting) counts as one failure.
#
# Needs tests/k8s/build.sh's crictl and tests/k8s/images.sh's busybox (both cached under
# /var/cache/crid-k8s; built here when missing). Network traffic stays on 127.0.0.1: the pods
# use the node's network (the loopback-only CNI config written for `crid check` serves none).
# Logs: $CRID_K8S_CACHE/results/package/. Environment: CRID_PACKAGE_LAB (/tmp/crid-package-test,
# the fixture's state and the layers), CRID_K8S_CACHE, CRID_K8S_REGISTRY_PORT.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
HERE=$REPO/tests/k8s
. "$HERE/lib.sh"
PROG=package_test.sh

COUNTS=0 DEB=""
while (($#)); do
  case "$1" in
    --counts) COUNTS=1 ;;
    --deb) DEB=${2:?}; shift ;;
    *) echo "usage: $0 [--counts] [--deb FILE]" >&2; exit 2 ;;
  esac
  shift
done

export LAB=${CRID_PACKAGE_LAB:-/tmp/crid-package-test}
unset SYSTEMD_HOST_DIR
FIXTURE=$REPO/tests/systemd_host.sh
FIXTURE_LOG=$LAB/logs/fixture.log
FIXTURE_STARTED=0 REGISTRY_STARTED_HERE=0
PASSED=0 FAILED=0 SKIPPED=0
T0=$(date +%s)

result_line() {
  echo "package: $PASSED passed, $FAILED failed, $SKIPPED skipped ($(($(date +%s) - T0)) s)"
  [ "$COUNTS" = 1 ] && echo "package $PASSED $FAILED $SKIPPED"
}
pass() { echo "PASS: $*" >&2; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
check() { # DESCRIPTION COMMAND...: one PASS or FAIL line
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
logged() { # LOG COMMAND...: the command's output goes to LOG
  local log=$1
  shift
  "$@" >"$log" 2>&1
}
die() {
  fail "$*"
  teardown
  result_line
  exit 1
}

# Runs a command inside the fixture's namespaces (where crid, its socket and mounts are).
in_fx() { timeout 180 "$FIXTURE" exec "$@" </dev/null; }
fx_crictl() { in_fx "$BIN/crictl" "$@"; }
unit_prop() { in_fx systemctl show -p "$1" --value crid.service; }
fx_alive() { in_fx kill -0 "$1" 2>/dev/null; }
fx_pids() { in_fx pgrep -x "$1" | paste -sd' '; }

# Another systemd managing this host's cgroups (another fixture) would share init.scope and
# system.slice with ours, and each one's cleanup would remove the other's cgroups.
other_systemd() {
  local d other=""
  for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ -e "$d/init.scope/cgroup.procs" ] && other+=$(paste -sd' ' "$d/init.scope/cgroup.procs" 2>/dev/null)
  done
  echo "$other"
}

fixture_stop() {
  [ "$FIXTURE_STARTED" = 1 ] || return 0
  FIXTURE_STARTED=0
  # crid's journal (volatile, inside the fixture) first.
  timeout 60 "$FIXTURE" exec journalctl --no-pager -u crid.service >"$RESULTS/crid.log" 2>&1 </dev/null
  # A second stop repeats the cleanup of cgroups that were still draining.
  "$FIXTURE" stop >>"$FIXTURE_LOG" 2>&1 </dev/null || "$FIXTURE" stop >>"$FIXTURE_LOG" 2>&1 </dev/null
}

teardown() {
  trap - EXIT INT TERM
  fixture_stop || echo "$PROG: warning: stopping the systemd fixture left: $(tail -3 "$FIXTURE_LOG")" >&2
  registry_down
  # The fixture's mounts went with its namespace; the layers and crid's root are plain files.
  # A fixture that could not be stopped keeps its state (its PID) for the next run.
  if [ -d "$LAB" ] && [ ! -e "$LAB/systemd-host/systemd.pid" ] && ! findmnt -rn -o TARGET | grep "^$LAB" >/dev/null; then
    [ -d "$LAB/logs" ] && cp -a "$LAB/logs/." "$RESULTS/" 2>/dev/null
    rm -rf --one-file-system "$LAB"
  fi
}

RESULTS=$CACHE/results/package
mkdir -p "$RESULTS"
ensure_packages runc:/usr/sbin/runc systemd:/lib/systemd/systemd dbus:/usr/bin/dbus-daemon \
  util-linux:/usr/bin/nsenter procps:/usr/bin/pgrep dpkg-dev:/usr/bin/dpkg-shlibdeps python3:/usr/bin/python3 ||
  die "cannot install runc, systemd, dbus, util-linux, procps, dpkg-dev, python3"

# A fixture an interrupted run left is stopped by its recorded PID before anything else.
if [ -f "$LAB/systemd-host/systemd.pid" ]; then
  echo "$PROG: stopping the systemd fixture an earlier run left in $LAB" >&2
  mkdir -p "$LAB/logs"
  FIXTURE_STARTED=1
  fixture_stop || die "the systemd fixture an earlier run left in $LAB cannot be stopped"
fi
if [ -d "$LAB" ]; then
  findmnt -rn -o TARGET | grep "^$LAB" >/dev/null && die "mounts under $LAB remain from an earlier run"
  rm -rf --one-file-system "$LAB"
fi
mkdir -p "$LAB/logs"
trap 'teardown; exit 1' INT TERM
trap teardown EXIT

# ---- tools and image
"$HERE/build.sh" crictl >"$RESULTS/build.log" 2>&1 ||
  die "crictl cannot be built: $(grep -m1 FAIL "$RESULTS/build.log" || tail -1 "$RESULTS/build.log")"
BIN=$("$HERE/build.sh" --print-bin)
IMAGE=$REGISTRY_ADDR/e2e-test-images/busybox:1.29-2
registry_up || die "docker-registry did not start"
if ! curl -fsS -o /dev/null --max-time 5 \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY_ADDR/v2/e2e-test-images/busybox/manifests/1.29-2"; then
  "$HERE/images.sh" --critest-only >"$RESULTS/images.log" 2>&1 ||
    die "tests/k8s/images.sh failed: $(tail -1 "$RESULTS/images.log")"
fi

# ---- 1. the package
if [ -z "$DEB" ]; then
  t=$(date +%s)
  DEB=$("$REPO/packaging/build-deb.sh" --out "$LAB/dist" 2>"$RESULTS/build-deb.log" | tail -1)
  [ -f "$DEB" ] || die "packaging/build-deb.sh made no package (log: $RESULTS/build-deb.log)"
  echo "$PROG: built $DEB in $(($(date +%s) - t)) s" >&2
fi
DEB=$(readlink -f "$DEB")
depends=$(dpkg-deb -f "$DEB" Depends)
# gRPC, protobuf, Abseil and SQLite are linked into the release crid, libcurl is not used:
# dpkg-shlibdeps must find neither among the shared objects it needs.
check "the package depends on runc and libsystemd, not on the libraries linked in ($depends)" \
  eval '[[ "$depends" == *"runc"* && "$depends" == *libsystemd0* && "$depends" != *libgrpc* &&
    "$depends" != *libprotobuf* && "$depends" != *libabsl* && "$depends" != *libcurl* ]]'
conffiles=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | paste -sd' ')
check "the package's conffiles are /etc/crid/crid.json and /etc/crictl.yaml ($conffiles)" \
  test "$conffiles" = "/etc/crid/crid.json /etc/crictl.yaml"

# ---- 2. the fixture and its private layers
other=$(other_systemd)
[ -n "$other" ] && die "another systemd (pid ${other%% *}) manages this host's cgroups"
FIXTURE_STARTED=1
"$FIXTURE" start >"$FIXTURE_LOG" 2>&1 </dev/null ||
  die "the systemd fixture did not start: $(tail -3 "$FIXTURE_LOG")"
mkdir -p "$LAB/crid-root"
# Mounts the fixture already has below a layered directory (its private /etc/systemd/system
# and /var/lib/systemd) are moved aside and back on top, so systemd keeps them.
in_fx env LAYERS="$LAB/layers" CRID_ROOT="$LAB/crid-root" bash -euc '
  for dir in /usr /etc /var/lib; do
    layer=$LAYERS/${dir//\//_}
    mkdir -p "$layer/upper" "$layer/work" "$layer/held"
    held=()
    while read -r m; do
      for h in "${held[@]}"; do [[ "$m" == "$h"/* ]] && continue 2; done
      held+=("$m")
    done < <(findmnt -rn -o TARGET | grep "^$dir/" | sort)
    i=0
    for m in "${held[@]}"; do mkdir -p "$layer/held/$i" && mount --move "$m" "$layer/held/$i"; i=$((i + 1)); done
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"
    i=0
    for m in "${held[@]}"; do mount --move "$layer/held/$i" "$m"; i=$((i + 1)); done
  done
  mkdir -p /var/lib/crid
  mount --bind "$CRID_ROOT" /var/lib/crid
  # A node, not an image build: services start when their packages say so.
  rm -f /usr/sbin/policy-rc.d
' >"$RESULTS/layers.log" 2>&1 || die "cannot layer /usr, /etc, /var/lib in the fixture: $(tail -2 "$RESULTS/layers.log")"

# ---- 3. install and start
check "dpkg -i installs the package (Depends met by this Debian)" \
  logged "$RESULTS/dpkg-install.log" in_fx dpkg --log="$LAB/logs/dpkg.log" -i "$DEB"
check "postinst enabled and started crid.service ($(in_fx systemctl is-enabled crid.service), $(unit_prop ActiveState))" \
  eval '[ "$(in_fx systemctl is-enabled crid.service)" = enabled ] && [ "$(unit_prop ActiveState)" = active ]'
check "systemctl start crid.service succeeds" in_fx systemctl start crid.service
state=$(unit_prop ActiveState)/$(unit_prop SubState)
check "crid.service is active/running after READY=1 (Type=$(unit_prop Type), $state)" \
  test "$state/$(unit_prop Type)" = active/running/notify
check "crid's status line came through sd_notify ($(unit_prop StatusText))" \
  test "$(unit_prop StatusText)" = "serving CRI runtime.v1"
CRID_PID=$(unit_prop MainPID)
check "crictl reaches crid through the shipped /etc/crictl.yaml" \
  eval '[[ "$(fx_crictl version)" =~ RuntimeName:\ +crid ]]'
# crid's own check of the node, with the shipped config and a loopback-only CNI network (a
# node's network comes from its CNI plugin's installer; these pods use the node's network).
echo '{"cniVersion": "1.0.0", "name": "crid-package-test", "plugins": [{"type": "loopback"}]}' |
  timeout 60 "$FIXTURE" exec sh -c 'mkdir -p /etc/cni/net.d && cat >/etc/cni/net.d/00-crid-package-test.conflist'
check "crid check passes with the shipped config and finds /usr/bin/crid-shim and crid-pause" \
  eval 'logged "$RESULTS/crid-check.log" in_fx crid check --config /etc/crid/crid.json &&
    grep -q "/usr/bin/crid-shim" "$RESULTS/crid-check.log" && grep -q "/usr/bin/crid-pause" "$RESULTS/crid-check.log"'

# ---- 4. two pods, each with crid-pause and a container with crid-shim: "slice" as kubelet
# places pods (its shim and crid-pause then run in scopes of the slice), "unit" with no cgroup
# parent (they stay in crid.service's cgroup, where only KillMode=process spares them)
fx_crictl --timeout 120s pull "$IMAGE" >"$RESULTS/pull.log" 2>&1 || die "crictl pull $IMAGE: $(tail -1 "$RESULTS/pull.log")"
declare -A POD CTR SHIM PAUSE SLEEP
BINDIR=/usr/bin
PODS=(slice unit)
mkdir -p "$LAB/pod-logs"
# Starts pod NAME (cgroup parent PARENT, may be empty) with a container running `sleep SECONDS`.
run_pod() { # NAME PARENT SECONDS
  local name=$1 parent=$2 seconds=$3
  cat >"$LAB/pod-$name.json" <<EOP
{"metadata": {"name": "package-test-$name", "namespace": "default", "uid": "package-test-$name", "attempt": 0},
 "hostname": "package-test", "log_directory": "$LAB/pod-logs/$name",
 "linux": {"cgroup_parent": "$parent", "security_context": {"namespace_options": {"network": 2, "pid": 0}}}}
EOP
  cat >"$LAB/container-$name.json" <<EOC
{"metadata": {"name": "sleeper"}, "image": {"image": "$IMAGE"}, "command": ["sleep", "$seconds"],
 "log_path": "sleeper.log"}
EOC
  POD[$name]=$(fx_crictl runp "$LAB/pod-$name.json" 2>"$RESULTS/runp-$name.log")
  [ -n "${POD[$name]}" ] || die "crictl runp ($name): $(tail -1 "$RESULTS/runp-$name.log")"
  CTR[$name]=$(fx_crictl create "${POD[$name]}" "$LAB/container-$name.json" "$LAB/pod-$name.json" 2>"$RESULTS/create-$name.log")
  [ -n "${CTR[$name]}" ] || die "crictl create ($name): $(tail -1 "$RESULTS/create-$name.log")"
  fx_crictl start "${CTR[$name]}" >"$RESULTS/start-$name.log" 2>&1 || die "crictl start ($name): $(tail -1 "$RESULTS/start-$name.log")"
  SHIM[$name]=$(in_fx pgrep -f "^$BINDIR/crid-shim --pod-id ${POD[$name]} " | paste -sd' ')
  PAUSE[$name]=$(in_fx pgrep -f "^$BINDIR/crid-pause .*${POD[$name]}" | paste -sd' ')
  SLEEP[$name]=$(in_fx pgrep -f "^sleep $seconds\$" | paste -sd' ')
}
run_pod slice /crid_package_test.slice 3601
run_pod unit "" 3602
for p in "${PODS[@]}"; do
  check "pod \"$p\" runs crid-shim (${SHIM[$p]}), crid-pause (${PAUSE[$p]}) and its container (${SLEEP[$p]})" \
    eval '[[ "${SHIM[$p]}" =~ ^[0-9]+$ && "${PAUSE[$p]}" =~ ^[0-9]+$ && "${SLEEP[$p]}" =~ ^[0-9]+$ ]]'
done
# The name=systemd hierarchy's cgroup (cgroup v2: the only one) of a process in the fixture.
fx_cgroup() { in_fx cat "/proc/$1/cgroup" | awk -F: '$2 == "name=systemd" || $2 == "" {print $3; exit}'; }
check "pod \"slice\": crid-shim and crid-pause run in the pod's slice ($(fx_cgroup "${SHIM[slice]}"), $(fx_cgroup "${PAUSE[slice]}"))" \
  eval '[[ "$(fx_cgroup "${SHIM[slice]}")" == /crid_package_test.slice/* && "$(fx_cgroup "${PAUSE[slice]}")" == /crid_package_test.slice/* ]]'
check "pod \"unit\": crid-shim and crid-pause run in crid.service's cgroup ($(fx_cgroup "${SHIM[unit]}"), $(fx_cgroup "${PAUSE[unit]}"))" \
  eval '[[ "$(fx_cgroup "${SHIM[unit]}")" == */crid.service && "$(fx_cgroup "${PAUSE[unit]}")" == */crid.service ]]'

json_state() { python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])' 2>/dev/null; }
pod_state() { fx_crictl inspectp -o json "${POD[$1]}" | json_state; }
ctr_state() { fx_crictl inspect -o json "${CTR[$1]}" | json_state; }

# ---- 5. crid stopped, the pods keep running
check "systemctl stop crid.service succeeds" in_fx systemctl stop crid.service
check "crid.service is inactive and crid ($CRID_PID) has exited" \
  eval '[ "$(unit_prop ActiveState)" = inactive ] && ! fx_alive "$CRID_PID"'
for p in "${PODS[@]}"; do
  check "pod \"$p\": crid-shim, crid-pause and the container outlive crid (KillMode=process)" \
    eval 'fx_alive "${SHIM[$p]}" && fx_alive "${PAUSE[$p]}" && fx_alive "${SLEEP[$p]}"'
done

# ---- 6. crid started again finds the pods
check "systemctl start crid.service succeeds again" in_fx systemctl start crid.service
check "crid.service is active/running again" \
  test "$(unit_prop ActiveState)/$(unit_prop SubState)" = active/running
for p in "${PODS[@]}"; do
  check "pod \"$p\": PodSandboxStatus says SANDBOX_READY ($(pod_state "$p"))" test "$(pod_state "$p")" = SANDBOX_READY
  check "pod \"$p\": the container is CONTAINER_RUNNING ($(ctr_state "$p")) under the same shim" \
    eval '[ "$(ctr_state "$p")" = CONTAINER_RUNNING ] && fx_alive "${SHIM[$p]}" && fx_alive "${SLEEP[$p]}"'
done

# An upgrade (the same package again): prerm leaves crid serving, postinst restarts it.
OLD_PID=$(unit_prop MainPID)
check "dpkg -i once more (an upgrade) succeeds" \
  logged "$RESULTS/dpkg-upgrade.log" in_fx dpkg --log="$LAB/logs/dpkg.log" -i "$DEB"
check "postinst restarted crid.service (pid $OLD_PID -> $(unit_prop MainPID), $(unit_prop ActiveState))" \
  eval '[ "$(unit_prop ActiveState)" = active ] && [ "$(unit_prop MainPID)" != "$OLD_PID" ] && ! fx_alive "$OLD_PID"'
for p in "${PODS[@]}"; do
  check "pod \"$p\" survives the upgrade: SANDBOX_READY, the same crid-shim, crid-pause and container" \
    eval '[ "$(pod_state "$p")" = SANDBOX_READY ] && fx_alive "${SHIM[$p]}" && fx_alive "${PAUSE[$p]}" && fx_alive "${SLEEP[$p]}"'
done

# ---- 7. clean up through the CRI and dpkg
for p in "${PODS[@]}"; do
  check "pod \"$p\": crictl rmp -f removes it" logged "$RESULTS/rmp-$p.log" fx_crictl rmp -f "${POD[$p]}"
done
gone() { # PID...: none of them runs after 5 s
  local pid i
  for pid in "$@"; do
    for i in $(seq 1 50); do fx_alive "$pid" || break; sleep 0.1; done
    fx_alive "$pid" && return 1
  done
  return 0
}
check "no crid-shim, crid-pause or container of the pods is left" \
  gone "${SHIM[@]}" "${PAUSE[@]}" "${SLEEP[@]}"
check "crictl lists no pod" eval '[ -z "$(fx_crictl pods -q)" ]'
check "dpkg --purge removes the package (prerm stops crid)" \
  logged "$RESULTS/dpkg-purge.log" in_fx dpkg --log="$LAB/logs/dpkg.log" --purge crid
check "the unit, the binaries and /etc/crid are gone; crid no longer runs" \
  eval '[ "$(unit_prop LoadState)" = not-found ] && [ "$(unit_prop ActiveState)" = inactive ] &&
    ! in_fx test -e /usr/bin/crid && ! in_fx test -e /usr/bin/crid-shim && ! in_fx test -e /etc/crid/crid.json &&
    [ -z "$(in_fx pgrep -x crid)" ]'

# ---- 8. the make install layout under /usr/local, with the package's binaries
dpkg-deb -x "$DEB" "$LAB/unpacked" || die "cannot unpack $DEB"
check "packaging/install.sh --prefix /usr/local installs" logged "$RESULTS/make-install.log" \
  in_fx "$REPO/packaging/install.sh" --keep-config --prefix /usr/local --bin-dir "$LAB/unpacked/usr/bin"
in_fx systemctl daemon-reload
check "systemd runs crid.service from /usr/local ($(unit_prop FragmentPath), $(unit_prop ExecStart | grep -o 'path=[^ ;]*'))" \
  eval 'in_fx systemctl start crid.service && [ "$(unit_prop ActiveState)" = active ] &&
    [ "$(unit_prop FragmentPath)" = /usr/local/lib/systemd/system/crid.service ] &&
    [ "$(in_fx readlink "/proc/$(unit_prop MainPID)/exe")" = /usr/local/bin/crid ]'
BINDIR=/usr/local/bin
run_pod local "" 3603
check "pod \"local\" runs /usr/local/bin/crid-shim (${SHIM[local]}), crid-pause (${PAUSE[local]}) and its container (${SLEEP[local]})" \
  eval '[[ "${SHIM[local]}" =~ ^[0-9]+$ && "${PAUSE[local]}" =~ ^[0-9]+$ && "${SLEEP[local]}" =~ ^[0-9]+$ ]]'
check "pod \"local\": crictl rmp -f removes it and its processes" \
  eval 'logged "$RESULTS/rmp-local.log" fx_crictl rmp -f "${POD[local]}" && gone "${SHIM[local]}" "${PAUSE[local]}" "${SLEEP[local]}"'
in_fx systemctl stop crid.service
check "packaging/install.sh --uninstall removes the binaries and the unit" \
  eval 'logged "$RESULTS/make-uninstall.log" in_fx "$REPO/packaging/install.sh" --uninstall --prefix /usr/local &&
    in_fx systemctl daemon-reload && [ "$(unit_prop LoadState)" = not-found ] &&
    ! in_fx test -e /usr/local/bin/crid && ! in_fx test -e /usr/local/share/doc/crid'
check "stopping the systemd fixture leaves no process and no cgroup" fixture_stop
result_line
[ "$FAILED" = 0 ]
