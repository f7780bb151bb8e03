#!/usr/bin/env bash
# Style checks: clang-format on every C++ file, clang-tidy on the C++ files changed
# since LINT_BASE (default: the commits of the last 4 hours, or every file with --all).
# Needs generated headers: run after `bazel build //...`.
set -uo pipefail
cd "$(dirname "$0")/.."

mapfile -t all_files < <(git ls-files '*.cc' '*.h')
status=0

if ! clang-format --dry-run --Werror "${all_files[@]}"; then
  echo "lint: clang-format found unformatted code (run: clang-format -i FILE)" >&2
  status=1
fi

if [[ "${1:-}" == "--all" ]]; then
  tidy_files=("${all_files[@]}")
else
  base="${LINT_BASE:-$(git rev-list -1 --before='4 hours ago' HEAD 2>/dev/null)}"
  if [[ -z "$base" ]]; then
    base="$(git rev-list --max-parents=0 HEAD | tail -n 1)"
    mapfile -t tidy_files < <(git ls-files '*.cc')
  else
    mapfile -t tidy_files < <(git diff --name-only --diff-filter=AM "$base" -- '*.cc')
  fi
fi
# Headers are checked through the .cc files that include them.
mapfile -t tidy_files < <(printf '%s\n' "${tidy_files[@]}" | grep '\.cc$' | grep -v '^bazel/')

if ((${#tidy_files[@]})); then
  read -r -a defines <<<"$(pkg-config --cflags grpc++ spdlog gtest)"
  flags=(-std=c++17 -I. -Ibazel-bin "${defines[@]}")
  echo "lint: clang-tidy on ${#tidy_files[@]} file(s)"
  if ! printf '%s\n' "${tidy_files[@]}" |
      xargs -P 2 -I{} clang-tidy --quiet {} -- "${flags[@]}"; then
    echo "lint: clang-tidy found problems" >&2
    status=1
  fi
fi
exit $status
