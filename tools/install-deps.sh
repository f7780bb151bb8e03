#!/usr/bin/env bash
# Installs the Debian packages crid builds, runs and tests with, when missing.
# Usage: tools/install-deps.sh [build|test|bench]   (test adds the test-only tools;
# bench adds containerd too, the baseline bench/ compares crid with; nothing else needs it)
set -euo pipefail

build_packages=(
  bazel-bootstrap bazel-rules-java g++ pkg-config git ca-certificates
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libspdlog-dev libfmt-dev libseccomp-dev libsystemd-dev libsqlite3-dev nlohmann-json3-dev
  # CDI spec files may be YAML.
  libyaml-dev
  libgtest-dev libgmock-dev
  # make deb: dpkg-shlibdeps computes the package's Depends.
  dpkg-dev
  libssl-dev zlib1g-dev libzstd-dev
  # libcurl: only the registry test fixture (tests/image_registry_fixture.cc)
  # links it, crid does not; it is listed here because WORKSPACE's @system
  # repository resolves every pkg-config module it names before any build.
  libcurl4-openssl-dev
  # The metrics endpoint (metrics.address): prometheus-cpp's core and pull
  # (civetweb) libraries; the -dev package brings both runtime libraries.
  prometheus-cpp-dev libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  # What crid runs at run time: the OCI runtime and the CNI plugins.
  runc containernetworking-plugins iproute2 iptables
)
test_packages=(python3 openssl clang-format clang-tidy docker-registry apache2-utils busybox-static crun
  systemd clang-14 libclang-rt-14-dev jq criu)
bench_packages=(containerd)

wanted=("${build_packages[@]}")
if [[ "${1:-build}" == "test" || "${1:-build}" == "bench" ]]; then
  wanted+=("${test_packages[@]}")
fi
if [[ "${1:-build}" == "bench" ]]; then
  wanted+=("${bench_packages[@]}")
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
