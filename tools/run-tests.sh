#!/usr/bin/env bash
# The whole test suite: every Bazel test, again under ASan+UBSan, then the style
# checks. Ends with one line "N passed, N failed" counting test cases (a test
# binary that crashed or did not build counts as one failure).
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL="${BAZEL:-bazel}"
summary_file="$(mktemp)"
trap 'rm -f "$summary_file"' EXIT
overall=0

# Adds the results of the last `bazel test` run to the summary file.
collect() {
  local label="$1"
  python3 tools/count_results.py "$label" bazel-testlogs >>"$summary_file"
}

run_suite() {
  local label="$1"
  shift
  echo "=== tests: $label"
  # Test results are never taken from the cache: they depend on the machine
  # (kernel, packages, cgroups), which Bazel does not see.
  if ! "$BAZEL" test --cache_test_results=no "$@" //...; then
    overall=1
  fi
  collect "$label"
}

run_suite default
run_suite asan --config=asan

echo "=== lint"
if "$BAZEL" build //... >/dev/null 2>&1 && tools/lint.sh; then
  echo "lint passed" && echo "lint 1 0" >>"$summary_file"
else
  echo "lint failed" && echo "lint 0 1" >>"$summary_file"
  overall=1
fi

awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f}' "$summary_file"
exit $overall
