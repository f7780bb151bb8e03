#!/usr/bin/env bash
# Style checks: clang-format on every C++ file, clang-tidy on every .cc file
# (headers through the .cc files that include them, per .clang-tidy's
# HeaderFilterRegex). Needs generated headers: run after `bazel build //...`.
#
# A full clang-tidy pass takes many minutes on a small machine, so a file that
# passed is remembered under ~/.cache/crid-lint (CRID_LINT_CACHE to move it),
# keyed by a hash of the file, the project headers it includes (as the
# compiler's dependency list names them, generated ones included), .clang-tidy,
# the compiler flags and the clang-tidy and library versions: a warm run
# re-checks only the files a change can affect. Findings are never cached.
# --no-cache checks every file afresh.
set -uo pipefail
cd "$(dirname "$0")/.."

use_cache=1
if [[ "${1:-}" == "--no-cache" ]]; then
  use_cache=0
fi

mapfile -t all_files < <(git ls-files '*.cc' '*.h')
status=0

if ! clang-format --dry-run --Werror "${all_files[@]}"; then
  echo "lint: clang-format found unformatted code (run: clang-format -i FILE)" >&2
  status=1
fi

# Every .cc file in the work tree, committed or not.
mapfile -t tidy_files < <(git ls-files --cached --others --exclude-standard '*.cc' |
  grep -v '^bazel/' | sort -u | while read -r f; do [[ -f "$f" ]] && echo "$f"; done)

read -r -a pkg_flags <<<"$(pkg-config --cflags grpc++ spdlog gtest)"
flags=(-std=c++17 -I. -Ibazel-bin "${pkg_flags[@]}")

cache_dir="${CRID_LINT_CACHE:-$HOME/.cache/crid-lint}"
mkdir -p "$cache_dir"
# What every file's result depends on besides the file and its own headers.
shared_key="$(
  {
    sha256sum .clang-tidy
    printf '%s\n' "${flags[@]}"
    clang-tidy --version
    pkg-config --modversion grpc++ spdlog gtest
  } | sha256sum | cut -d' ' -f1
)"
# Results nobody used for a month go.
find "$cache_dir" -type f -mtime +30 -delete 2>/dev/null

# Checks one file; prints its findings; remembers a clean result.
tidy_one() {
  local file="$1" key=""
  if ((LINT_USE_CACHE)); then
    # The file and every non-system header it includes (-MM leaves out the
    # system ones, whose versions are in the shared key).
    local deps
    if ! deps="$(g++ -MM -MG "${LINT_FLAGS[@]}" "$file" 2>/dev/null)"; then
      deps="$file"
    fi
    key="$( (echo "$LINT_SHARED_KEY"
      tr ' \\' '\n\n' <<<"$deps" | grep -v ':$' | grep -v '^$' | sort -u |
        while read -r dep; do [[ -f "$dep" ]] && sha256sum "$dep"; echo "$dep"; done) |
      sha256sum | cut -d' ' -f1)"
    # A hit is touched so that the monthly clean-up keeps what is still used.
    if [[ -e "$LINT_CACHE_DIR/$key" ]] && touch "$LINT_CACHE_DIR/$key"; then
      return 0
    fi
  fi
  local out
  # "N warnings generated" counts what the header filter hid: noise.
  if out="$(clang-tidy --quiet "$file" -- "${LINT_FLAGS[@]}" 2>&1)"; then
    [[ -n "$key" ]] && touch "$LINT_CACHE_DIR/$key"
    return 0
  fi
  grep -Ev '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' <<<"$out"
  echo "lint: clang-tidy: $file has findings" >&2
  return 1
}
export -f tidy_one
export LINT_USE_CACHE="$use_cache" LINT_CACHE_DIR="$cache_dir" LINT_SHARED_KEY="$shared_key"
# Arrays do not cross exec: each worker rebuilds the flags from one string.
export LINT_FLAGS_STRING="${flags[*]}"

start=$SECONDS
echo "lint: clang-tidy on ${#tidy_files[@]} file(s)"
worker='read -r -a LINT_FLAGS <<<"$LINT_FLAGS_STRING"; tidy_one "$1"'
if ! printf '%s\0' "${tidy_files[@]}" | xargs -0 -P "$(nproc)" -n 1 bash -c "$worker" _; then
  echo "lint: clang-tidy found problems" >&2
  status=1
fi
echo "lint: clang-tidy took $((SECONDS - start))s"
exit $status
