#!/bin/bash
# systemd_host.sh start|exec CMD...|status|stop   (used by tests/systemd_fixture.cc)
#
# Runs a real systemd (Debian 252) as PID 1 of a private PID+mount(+UTS) namespace on this host,
# so a CRI runtime can be tested with the systemd cgroup driver (kubepods.slice, cri-*.scope,
# StartTransientUnit over D-Bus) on a machine whose real PID 1 is not systemd.
#
#   start        start systemd (no-op if already running), wait until `is-system-running` = running
#   exec CMD...  run CMD inside the namespace (nsenter -m -p -u), e.g. `exec systemctl list-units`
#   status       print pid + is-system-running
#   stop         SIGKILL systemd by its recorded PID (takes every process of the namespace with it),
#                then rmdir the cgroup dirs it created: only dirs under /sys/fs/cgroup/* that were not
#                there at start, are empty, and whose every path component is a unit name
#                (*.slice/*.scope/*.service/*.mount/*.socket/*.swap); prints anything left over.
#
# Start a runtime inside (as a node's systemd would run it; its CRI socket must be on a host path
# so crictl outside can reach it):
#   ./systemd-host.sh exec systemd-run --unit=myruntime -p Delegate=yes \
#       -p StandardOutput=append:$LAB/logs/myruntime.log -p StandardError=append:$LAB/logs/myruntime.log \
#       /path/to/runtime --listen unix://$LAB/myruntime.sock ...
#   crictl --runtime-endpoint unix://$LAB/myruntime.sock ...          (from the host)
#
# What keeps this systemd away from the host (see `exec systemctl list-units --all`):
#  - env container=other: systemd runs in "container mode" (no clock/kmod/console/propagation setup,
#    does not own the root cgroup, no release_agent on the named systemd hierarchy)
#  - own PID, mount and UTS namespaces (hostname_setup() cannot rename the host); / made rprivate
#  - private tmpfs on /run (dbus, journal, /run/systemd, runtime units), /etc/systemd/system
#    (hides the host's enabled units: timesyncd, apt timers, containerd.service, ...),
#    /var/lib/systemd and /var/log/journal; journald Storage=volatile, no kmsg/syslog forwarding
#  - /dev/kmsg and /dev/console bind-mounted to /dev/null inside (no host kernel-log/console writes)
#  - /proc/sys read-only inside (systemd would raise fs.nr_open; sysctl units could change the
#    host); set SYSTEMD_HOST_RW_PROCSYS=1 if the runtime under test must write /proc/sys
#  - CAP_SYS_MODULE and CAP_SYS_TIME dropped from the bounding set (SYSTEMD_HOST_DROP_CAPS)
#  - a private tmpfs at /sys/fs/cgroup holding the host's hierarchy mounts, with read-only
#    placeholders where systemd would mount the unmounted v1 controllers (seen without it:
#    hugetlb/perf_event/net_cls,net_prio bound to new global v1 hierarchies while it ran, hugetlb
#    gone from cgroup2, and the host's /sys/fs/cgroup tmpfs superblock remounted read-only)
#  - -.slice drop-in putting every v1 controller in the root slice's mask (seen without it:
#    systemd's cg_trim() of the root removed empty host cgroups, e.g. cpu/k8s.io, blkio/k8s.io)
#  - all generators masked (fstab/getty/sysv/postgresql...), and every unit that would touch host
#    state masked (tmpfiles = would wipe /tmp, sysctl, modules-load, binfmt, random-seed, utmp,
#    journal-flush, remount-fs, fsck, pstore, timesyncd, getty, logind, udev, networkd, ...)
#  Left running: init.scope, dbus, systemd-journald (volatile, private). Cgroups it creates are
#  real host cgroups (shared cgroup namespace: /sys/fs/cgroup/<ctrl>/{init.scope,system.slice,...}).
#
# State: $LAB/systemd-host/ (pids, cgroup snapshot); log: $LAB/logs/systemd-host.log
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
LAB=${LAB:-/var/lib/crid-lab}
S=${SYSTEMD_HOST_DIR:-$LAB/systemd-host}
LOG=$LAB/logs/systemd-host.log
SYSTEMD=${SYSTEMD_BIN:-/lib/systemd/systemd}
DROP_CAPS=${SYSTEMD_HOST_DROP_CAPS:-sys_module,sys_time}
UNIT_RE='\.(slice|scope|service|mount|socket|swap)$'

MASK_UNITS="
 getty.target getty@.service serial-getty@.service console-getty.service container-getty@.service
 autovt@.service getty-static.service systemd-logind.service systemd-user-sessions.service
 user@.service user-runtime-dir@.service
 systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-clean.service
 systemd-tmpfiles-clean.timer systemd-sysctl.service procps.service systemd-modules-load.service
 kmod-static-nodes.service kmod.service modprobe@.service systemd-binfmt.service
 proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-random-seed.service
 systemd-journal-flush.service systemd-journald-audit.socket systemd-journal-catalog-update.service
 systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-update-done.service
 ldconfig.service systemd-hwdb-update.service systemd-firstboot.service
 systemd-machine-id-commit.service systemd-sysusers.service systemd-repart.service
 systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-pcrphase-initrd.service
 systemd-pstore.service systemd-timesyncd.service systemd-time-wait-sync.service
 systemd-timedated.service systemd-hostnamed.service systemd-localed.service hwclock.service
 systemd-remount-fs.service systemd-fsck-root.service systemd-fsck@.service systemd-fsckd.service
 systemd-fsckd.socket systemd-quotacheck.service quotaon.service systemd-growfs-root.service
 systemd-growfs@.service systemd-networkd.service systemd-networkd.socket
 systemd-network-generator.service systemd-networkd-wait-online.service systemd-resolved.service
 networking.service NetworkManager.service nftables.service systemd-udevd.service
 systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service
 systemd-udev-settle.service systemd-rfkill.service systemd-rfkill.socket systemd-backlight@.service
 systemd-ask-password-console.path systemd-ask-password-wall.path systemd-initctl.socket
 sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
 sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount tmp.mount
 cryptsetup.target integritysetup.target veritysetup.target remote-fs.target swap.target
 syslog.socket rsyslog.service cron.service apt-daily.timer apt-daily-upgrade.timer
 dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer
 containerd.service docker.service docker-registry.service postgresql.service cni-dhcp.socket
 cni-dhcp.service packagekit.service systemd-sysext.service systemd-oomd.service
 systemd-coredump.socket systemd-boot-check-no-failures.service rc-local.service
"

die() { echo "systemd-host: $*" >&2; exit 1; }
sd_pid() { [ -f "$S/systemd.pid" ] && cat "$S/systemd.pid"; }
alive() {  # our systemd is alive: pid exists, is systemd, and is in the pid ns we recorded
  local p; p=$(sd_pid) || return 1; [ -n "$p" ] && [ -d "/proc/$p" ] || return 1
  [ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$(cat "$S/pidns" 2>/dev/null)" ] || return 1
  [[ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" == *systemd* ]]
}
in_ns() { nsenter -t "$(sd_pid)" -m -p -u -- "$@"; }
# find fails when a cgroup goes away under it (other runtimes on the host); with pipefail
# that would end start or stop half-way, without a word.
cgdirs() { { find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null || true; } | sort; }
is_unit_path() {  # /sys/fs/cgroup/<hierarchy>/a.slice/b.scope: every component a unit name
  local c rel=${1#/sys/fs/cgroup/*/}; local IFS=/
  for c in $rel; do [[ "$c" =~ $UNIT_RE ]] || return 1; done
}
ns_procs() {  # host pids of processes in our pid namespace
  local ns; ns=$(cat "$S/pidns" 2>/dev/null) || return 0; [ -n "$ns" ] || return 0
  for d in /proc/[0-9]*; do [ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$ns" ] && echo "${d#/proc/}"; done; return 0
}

private_cgroupfs_tmpfs() {
  # systemd's mount_cgroup_controllers() mkdirs in the /sys/fs/cgroup tmpfs, mounts every enabled but
  # unmounted v1 controller (hugetlb/perf_event/net_cls,net_prio: that rebinds them to new, global v1
  # hierarchies and takes hugetlb away from cgroup2) and remounts the tmpfs superblock read-only.
  # Give it a private tmpfs holding the same hierarchy mounts, plus read-only placeholder mounts
  # where it would mount the others.
  local old=/run/.cgroupfs-host n d c
  mkdir -p "$old"
  mount -n --move /sys/fs/cgroup "$old"
  mount -n -t tmpfs -o mode=755,nosuid,nodev,noexec,size=64k cgroup-tmpfs /sys/fs/cgroup
  for d in "$old"/*; do
    n=${d##*/}
    if [ -L "$d" ]; then ln -s "$(readlink "$d")" "/sys/fs/cgroup/$n"
    elif mountpoint -q "$d"; then mkdir "/sys/fs/cgroup/$n"; mount -n --move "$d" "/sys/fs/cgroup/$n"
    fi
  done
  umount -n "$old" && rmdir "$old"
  for c in $(awk 'NR>1 && $4==1 {print $1}' /proc/cgroups); do
    case $c in cpu|cpuacct) n="cpu,cpuacct $c" ;; net_cls|net_prio) n="net_cls,net_prio $c" ;; *) n=$c ;; esac
    for n in $n; do
      d=/sys/fs/cgroup/$n
      [ -L "$d" ] && continue
      mountpoint -q "$d" 2>/dev/null && continue
      mkdir -p "$d" && mount -n -t tmpfs -o ro,size=4k,mode=555 cgroup-placeholder "$d"
    done
  done
  mount -n -o remount,ro,nosuid,nodev,noexec,size=64k /sys/fs/cgroup
}

ns_init() {  # runs as PID 1 of the new namespaces, then becomes systemd
  mount -n --make-rprivate /
  mount -n -t proc -o nosuid,nodev,noexec proc /proc
  if [ -z "${SYSTEMD_HOST_RW_PROCSYS:-}" ]; then
    mount -n --bind /proc/sys /proc/sys && mount -n -o remount,bind,ro /proc/sys
  fi
  mount -n -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
  mkdir -p /run/systemd/system /run/systemd/system-generators /run/systemd/journald.conf.d /run/lock
  private_cgroupfs_tmpfs
  mount -n -t tmpfs -o mode=755 tmpfs /etc/systemd/system
  [ -d /var/lib/systemd ] && mount -n -t tmpfs -o mode=755 tmpfs /var/lib/systemd
  [ -d /var/log/journal ] && mount -n -t tmpfs -o mode=2755 tmpfs /var/log/journal
  mount -n --bind /dev/null /dev/kmsg
  [ -e /dev/console ] && mount -n --bind /dev/null /dev/console
  for g in /lib/systemd/system-generators/* /usr/lib/systemd/system-generators/* \
           /etc/systemd/system-generators/*; do
    [ -e "$g" ] && ln -sfn /dev/null "/run/systemd/system-generators/${g##*/}"
  done
  for u in $MASK_UNITS ${SYSTEMD_HOST_EXTRA_MASK:-}; do ln -sfn /dev/null "/run/systemd/system/$u"; done
  # -.slice is the host's root cgroup here. For every v1 controller NOT in its mask, systemd runs
  # cg_trim() on the root, i.e. rmdirs every empty cgroup dir of that hierarchy (seen: cpu/k8s.io and
  # blkio/k8s.io of the lab containerd vanished). Put all v1 controllers in -.slice's own mask; in
  # container mode systemd writes no attributes to its local root (is_local_root), so this is inert.
  mkdir -p /run/systemd/system/-.slice.d
  cat >/run/systemd/system/-.slice.d/50-systemd-host.conf <<'EOF'
[Slice]
CPUAccounting=yes
BlockIOAccounting=yes
MemoryAccounting=yes
TasksAccounting=yes
DeviceAllow=/dev/null rw
EOF
  cat >/run/systemd/journald.conf.d/50-systemd-host.conf <<'EOF'
[Journal]
Storage=volatile
RuntimeMaxUse=32M
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
ReadKMsg=no
EOF
  export container=other
  exec "$SYSTEMD" --system --unit=basic.target --show-status=no
}

start() {
  if alive; then echo "systemd-host already running (pid $(sd_pid))"; return 0; fi
  [ -x "$SYSTEMD" ] || die "no $SYSTEMD"
  [ -e /sys/fs/cgroup/systemd/cgroup.procs ] || [ -e /sys/fs/cgroup/cgroup.procs ] || die "no cgroupfs"
  mkdir -p "$S" "$LAB/logs"; rm -f "$S"/*.pid "$S/pidns"
  cgdirs >"$S/cgroups.before"
  for f in core fd stdin stdout stderr; do [ -e "/dev/$f" ] || [ -L "/dev/$f" ] || echo "$f"; done >"$S/dev.absent"
  local caps="" c
  for c in ${DROP_CAPS//,/ }; do caps+="${caps:+,}-$c"; done
  echo "=== start $(date -Is)" >>"$LOG"
  # setsid: own session; --kill-child: if unshare dies, systemd gets SIGKILL
  setsid setpriv ${caps:+--bounding-set "$caps"} \
    unshare --pid --fork --mount --uts --kill-child -- "$SELF" __init >>"$LOG" 2>&1 </dev/null &
  local up=$! p="" i
  echo "$up" >"$S/unshare.pid"
  for i in $(seq 1 100); do
    p=$(cat "/proc/$up/task/$up/children" 2>/dev/null | awk '{print $1}') || true
    [ -n "$p" ] && [ "$(readlink /proc/$p/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] && break
    p=""; kill -0 "$up" 2>/dev/null || break; sleep 0.1
  done
  [ -n "$p" ] || { tail -20 "$LOG" >&2; die "namespace init did not start"; }
  echo "$p" >"$S/systemd.pid"; readlink "/proc/$p/ns/pid" >"$S/pidns"
  # wait for systemd to exec and finish booting basic.target
  local st=""
  for i in $(seq 1 150); do
    if [ -S "/proc/$p/root/run/systemd/private" ]; then
      st=$(in_ns systemctl is-system-running 2>/dev/null) || true
      case "$st" in running|degraded) break ;; esac
    fi
    kill -0 "$p" 2>/dev/null || { tail -20 "$LOG" >&2; die "systemd exited"; }
    sleep 0.2
  done
  echo "systemd-host: pid $p (unshare $up) state=${st:-unknown}; log $LOG"
  if [ "$st" != running ]; then
    in_ns systemctl --no-pager --failed >&2 || true
    [ "$st" = degraded ] || die "systemd did not reach running"
  fi
}

stop() {
  local p up i rc=0
  p=$(sd_pid 2>/dev/null) || p=""
  up=$(cat "$S/unshare.pid" 2>/dev/null) || up=""
  if [ -n "$p" ] && alive; then kill -KILL "$p"; fi
  # unshare exits once its child is gone; it is only ever killed by its own recorded pid
  for i in $(seq 1 100); do
    [ -z "$(ns_procs)" ] && { [ -z "$up" ] || ! kill -0 "$up" 2>/dev/null; } && break
    sleep 0.1
  done
  if [ -n "$up" ] && kill -0 "$up" 2>/dev/null && [[ "$(tr '\0' ' ' </proc/$up/cmdline)" == *unshare* ]]; then
    kill -KILL "$up" || true
  fi
  [ -z "$(ns_procs)" ] || { echo "systemd-host: processes still in the namespace: $(ns_procs)" >&2; rc=1; }
  # remove cgroup dirs created since start (deepest first); retry while dying tasks drain
  if [ -f "$S/cgroups.before" ]; then
    local new d
    new_unit_dirs() { cgdirs | comm -13 "$S/cgroups.before" - | while read -r d; do ! is_unit_path "$d" || echo "$d"; done; }
    for i in $(seq 1 50); do
      new=$(new_unit_dirs)
      [ -z "$new" ] && break
      while read -r d; do
        [ -n "$(head -c1 "$d/cgroup.procs" 2>/dev/null)" ] && continue   # still has processes
        rmdir "$d" 2>/dev/null || true
      done < <(echo "$new" | awk -F/ '{print NF "\t" $0}' | sort -rn | cut -f2-)
      sleep 0.1
    done
    new=$(new_unit_dirs)
    if [ -n "$new" ]; then echo "systemd-host: cgroup dirs left:" >&2; echo "$new" >&2; rc=1; fi
  fi
  # dev_setup() symlinks systemd adds to the (shared) devtmpfs if missing
  if [ -f "$S/dev.absent" ]; then
    while read -r f; do [ -L "/dev/$f" ] && rm -f "/dev/$f"; done <"$S/dev.absent"
  fi
  echo "=== stop $(date -Is) rc=$rc" >>"$LOG"
  [ $rc = 0 ] && rm -rf "$S"
  [ $rc = 0 ] && echo "systemd-host: stopped, nothing left" || true
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if alive; then echo "pid $(sd_pid): $(in_ns systemctl is-system-running 2>/dev/null || true)"
    else echo "not running"; exit 3; fi ;;
  exec) shift; alive || die "not running (start it first)"; in_ns "$@" ;;
  __init) ns_init ;;
  *) echo "usage: $0 start|exec CMD...|status|stop" >&2; exit 2 ;;
esac
