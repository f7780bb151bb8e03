#!/bin/bash
# Builds the streaming fuzz targets with clang's libFuzzer (ASan + UBSan) and
# runs each for SECONDS (default 60) on its corpus in testdata/; new inputs
# worth keeping land in the corpus directory.
#   cri/streaming/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags="-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -I. $(pkg-config --cflags absl_strings zlib)"
libs="$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format zlib libcrypto)"
wire="cri/streaming/spdy_frame.cc cri/streaming/spdy_dictionary.cc cri/streaming/http_request.cc cri/streaming/websocket.cc"
for target in spdy_frame:spdy_corpus http_upgrade:http_corpus; do
  name=${target%%:*}
  corpus=cri/streaming/testdata/${target##*:}
  clang++ $flags "cri/streaming/${name}_fuzzer.cc" $wire $libs -o "$out/$name"
  "$out/$name" -max_total_time="$seconds" -max_len=65536 "$corpus"
done
