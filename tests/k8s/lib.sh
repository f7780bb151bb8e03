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
