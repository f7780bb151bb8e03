#!/bin/bash
# Builds crid's libFuzzer targets (fuzz/BUILD.bazel) with clang-14, ASan and
# UBSan, and runs each for FUZZ_SECONDS (default 60) on its corpus.
#
#   fuzz/run.sh [--counts] [TARGET...]   (default: every target; e.g. tar_layer)
#
# The clang build has its own Bazel output base and server (FUZZ_OUTPUT_BASE,
# default /var/cache/crid-fuzz/ob; the server exits after 15 idle minutes), so
# the normal gcc build's cache and server are never touched or invalidated.
# Inputs libFuzzer finds interesting go to FUZZ_WORK/<target>/new (default
# /var/cache/crid-fuzz/work), crashes to FUZZ_WORK/<target>/crash-*; the
# committed corpus in fuzz/corpus/<target> is only read. A crash input that is
# fixed belongs in fuzz/corpus/<target>, where the replay test keeps it fixed.
#
# One line per target, then "fuzz: N passed, N failed, N skipped" (targets),
# with --counts one more line "fuzz N N N" for tools/run-tests.sh; exit status
# 1 when a target failed. Without clang-14 or its libFuzzer runtime
# (libclang-rt-14-dev) every target is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
output_base=${FUZZ_OUTPUT_BASE:-/var/cache/crid-fuzz/ob}
work=${FUZZ_WORK:-/var/cache/crid-fuzz/work}
all_targets=(image_manifest image_reference http_response tar_layer cni_result crid_config
  pod_sandbox_config container_config cdi_spec)
counts=0
if [[ "${1:-}" == "--counts" ]]; then
  counts=1
  shift
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=("${all_targets[@]}")
fi

summary() {
  echo "fuzz: $1 passed, $2 failed, $3 skipped"
  if [[ $counts -eq 1 ]]; then
    echo "fuzz $1 $2 $3"
  fi
}

if ! command -v clang-14 >/dev/null ||
  ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "clang-14 or libFuzzer (libclang-rt-14-dev) missing: tools/install-deps.sh test" >&2
  summary 0 0 ${#targets[@]}
  exit 0
fi

# -fsanitize=fuzzer-no-link instruments everything for coverage; only the fuzz
# binaries link libFuzzer's main (fuzz.bzl, --define=crid_fuzz=1). The system
# libraries (absl, protobuf, grpc) are Debian's and stay uninstrumented.
flags=(
  --repo_env=CC=clang-14
  --define=crid_fuzz=1
  --copt=-fsanitize=fuzzer-no-link,address,undefined
  --copt=-fno-sanitize-recover=all
  --copt=-fno-omit-frame-pointer
  --copt=-gline-tables-only
  --copt=-O1
  --linkopt=-fsanitize=address,undefined
  --linkopt=-fsanitize-link-c++-runtime
  # clang warns where gcc does not (thread-safety analysis); that is for
  # clang-tidy to report, not a reason to stop fuzzing.
  "--per_file_copt=.*@-Wno-error"
  --strip=never
  # No bazel-bin/bazel-out links in the workspace: they belong to the main
  # output base, and links into this one would make `bazel build //...` there
  # descend into this output base's external repositories.
  --symlink_prefix=/
)
labels=()
for t in "${targets[@]}"; do
  labels+=("//fuzz:${t}_fuzzer")
done
mkdir -p "$output_base" "$work"
if ! bazel --output_base="$output_base" --max_idle_secs=900 build "${flags[@]}" "${labels[@]}" \
  >"$work/build.log" 2>&1; then
  grep -v "Cannot export local symbol" "$work/build.log" | tail -30 >&2
  echo "fuzz targets did not build (log: $work/build.log)" >&2
  summary 0 ${#targets[@]} 0
  exit 1
fi
bin=$(bazel --output_base="$output_base" --max_idle_secs=900 info "${flags[@]}" bazel-bin 2>/dev/null)

passed=0
failed=0
for t in "${targets[@]}"; do
  dir="$work/$t"
  mkdir -p "$dir/new"
  log="$dir/last.log"
  # A fresh writable corpus directory first (new inputs land there), then the
  # committed one, read only.
  "$bin/fuzz/${t}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/new" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::total_time_s\?: *//p;s/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' \
    "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    echo "fuzz $t: ok, ${runs:-?} inputs in ${secs:-$seconds} s (${rate:-?} exec/s)"
  else
    failed=$((failed + 1))
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} inputs; log $log, inputs $dir/crash-*"
    grep -E "ERROR|SUMMARY|==[0-9]+==" "$log" | head -5
  fi
done
summary $passed $failed 0
[[ $failed -eq 0 ]]
