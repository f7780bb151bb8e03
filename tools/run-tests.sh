#!/usr/bin/env bash
# The whole test suite: the result counter's own tests, every Bazel test, again
# under ASan+UBSan, critest (the CRI conformance suite) and a real kubelet
# against crid (cgroupfs and systemd drivers), flannel across two nodes, the
# fuzz targets, the Debian package installed and run under systemd, then the
# style checks. Ends
# with exactly one line "N passed, N failed, N skipped" counting test cases; everything else goes to
# stderr or comes before it. Only what each `bazel test` reports in its build
# events is counted (tools/count_results.py): a target that did not build, or a
# test binary that exited non-zero, counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

BAZEL="${BAZEL:-bazel}"
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
summary_file="$work_dir/summary"
: >"$summary_file"
overall=0

# Runs a command that prints "LABEL PASSED FAILED SKIPPED" as its last stdout
# line and adds that line to the summary; no such line counts as one failure.
count_into_summary() {
  local label="$1"
  shift
  local out
  out="$("$@")"
  local status=$?
  [[ -n "$out" ]] && echo "$out"
  local last
  last="$(tail -n 1 <<<"$out")"
  if [[ "$last" =~ ^"$label "[0-9]+\ [0-9]+\ [0-9]+$ ]]; then
    echo "$last" >>"$summary_file"
  else
    echo "$label: no result line (exit status $status)" >&2
    echo "$label 0 1 0" >>"$summary_file"
    status=1
  fi
  return $status
}

echo "=== tests: count_results"
if ! count_into_summary count_results_test python3 tools/count_results_test.py; then
  overall=1
fi

run_suite() {
  local label="$1"
  shift
  local events="$work_dir/$label.bep.json"
  echo "=== tests: $label"
  # Test results are never taken from the cache: they depend on the machine
  # (kernel, packages, cgroups), which Bazel does not see. --keep_going: one
  # target that does not build must not hide the results of the others.
  if ! "$BAZEL" test --cache_test_results=no --keep_going \
      --build_event_json_file="$events" "$@" //...; then
    overall=1
  fi
  # Counted before the next run: both configurations write the same testlogs.
  if ! count_into_summary "$label" python3 tools/count_results.py "$label" "$events"; then
    overall=1
  fi
}

run_suite default
run_suite asan --config=asan

# The release configuration (.bazelrc's --config=release: -c opt, stripped)
# must build too: -O2 with glibc's _FORTIFY_SOURCE warns (unused results,
# format truncation) where the debug build does not, and -Werror makes those
# errors. Build only, no tests: the package stage below reuses its outputs.
# What ships and the benchmarks (which docs/benchmarks.md runs in this
# configuration); the tests build in the two configurations above, and the
# whole tree in -O2 costs a cold CI run about ten more minutes.
echo "=== build: release"
if "$BAZEL" build --config=release --keep_going //:crid //shim:crid-shim //pause:crid-pause \
    //bench/... >&2; then
  echo "release build passed" && echo "release 1 0 0" >>"$summary_file"
else
  echo "release build failed" && echo "release 0 1 0" >>"$summary_file"
  overall=1
fi

# Kubernetes' own clients against the real crid (tests/k8s: pinned builds from
# the Go module proxy, cached under /var/cache/crid-k8s; images built offline).
echo "=== tests: critest"
if ! count_into_summary critest tests/k8s/critest.sh --counts; then
  overall=1
fi

# kubelet's default PLEG. Its alpha Evented PLEG (`--modes "generic evented"`)
# lost restarted containers until PodSandboxStatus listed them newest first
# (docs/conformance.md); it runs by hand until it has a longer record.
echo "=== tests: kubelet"
if ! count_into_summary kubelet tests/k8s/kubelet_test.sh --counts --modes generic; then
  overall=1
fi
# The same with the systemd cgroup driver: crid and kubelet as units of the
# systemd fixture (tests/systemd_host.sh), about a minute and a half.
echo "=== tests: kubelet (systemd driver)"
if ! count_into_summary kubelet tests/k8s/kubelet_test.sh --counts --modes generic --driver systemd; then
  overall=1
fi

# Two nodes (network namespaces joined by a veth underlay) networked by flannel's
# VXLAN, dual stack: etcd, flanneld and the flannel CNI plugin built pinned by
# tests/flannel/build.sh and cached under /var/cache/crid-flannel; one crid per
# node. About 30 s once the tools are cached (their first build ~9 min).
echo "=== tests: flannel"
if ! count_into_summary flannel tests/flannel/flannel_test.sh --counts; then
  overall=1
fi

# The libFuzzer targets (fuzz/): built with clang-14, ASan and UBSan in their own
# output base (/var/cache/crid-fuzz/ob), each fuzzed 10 s from its corpus. The gcc
# replays of the same corpora run with every bazel test above. About 2 min once
# built (the first clang build about 15 min).
echo "=== tests: fuzz"
if ! count_into_summary fuzz env FUZZ_SECONDS=10 fuzz/run.sh --counts; then
  overall=1
fi

# The Debian package (make deb's release build) installed with dpkg in the systemd
# fixture, crid.service started, stopped under running pods and started again,
# then purged (tests/package_test.sh; about 20 s after the release build).
echo "=== tests: package"
if ! count_into_summary package tests/package_test.sh --counts; then
  overall=1
fi

echo "=== lint"
if "$BAZEL" build //... >/dev/null 2>&1 && tools/lint.sh; then
  echo "lint passed" && echo "lint 1 0 0" >>"$summary_file"
else
  echo "lint failed" && echo "lint 0 1 0" >>"$summary_file"
  overall=1
fi

awk '{p += $2; f += $3; s += $4} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}' \
  "$summary_file"
exit $overall
