# Shared by the scripts that build pinned Go tools from the Go module proxy
# (tests/k8s/build.sh, tests/flannel/build.sh). Sourced after the caller set
#   HERE  its directory (with versions.env)   CACHE  where sources and builds go
#   OUT   the build directory                  BIN    OUT/bin
#   ALL   every tool it can build
# and called as go_tools_main "$@": parses [--force] [TOOL...] | --print-bin,
# sets up Go under CACHE and leaves in TODO the tools that are missing or were
# built from other versions (a stamp file per tool records versions.env and the
# Go version). Returns 1 when there is nothing to do.

go_tools_main() {
  FORCE=0
  WANT=()
  local a
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
  # -p 1: one package at a time, so that one core of a 2-core machine stays free.
  export GOFLAGS="-p=1 -trimpath"
  mkdir -p "$BIN" "$GOCACHE"

  STAMP_TEXT="$(grep -E '^[A-Z_]+=' "$HERE/versions.env"; echo "GO=$(go env GOVERSION)")"
  TODO=()
  local t
  for t in "${WANT[@]}"; do
    if [ "$FORCE" = 1 ] || [ ! -x "$BIN/$t" ] || [ ! -f "$BIN/.stamp-$t" ] ||
      [ "$(cat "$BIN/.stamp-$t")" != "$STAMP_TEXT" ]; then
      TODO+=("$t")
    fi
  done
  [ ${#TODO[@]} -gt 0 ]
}

# go_tools_download WHAT MODULE@VERSION...: fetches the source modules, the one step that needs
# the module proxy and the one that fails clearly when it cannot be reached.
go_tools_download() {
  local what=$1; shift
  local log=$OUT/download.log why
  if ! go mod download -json "$@" >"$log" 2>&1; then
    why=$(grep -m1 -E '"Error"|error|dial|timeout' "$log" | sed 's/^[[:space:]]*//' | cut -c1-200)
    echo "build.sh: FAIL: cannot fetch $what from the Go module proxy ($(go env GOPROXY)): ${why:-see $log}" >&2
    exit 1
  fi
}

# timed TOOL CMD...: runs CMD in the current directory, stamps the tool and records its wall
# time in OUT/build-times.txt.
timed() {
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
  echo "$(date -u +%FT%TZ) $name $(( $(date +%s) - t0 ))s" | tee -a "$OUT/build-times.txt" >&2
}
