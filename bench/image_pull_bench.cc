// Pull+unpack time of a multi-layer image (~200 MB uncompressed, 8 gzip layers)
// from a local docker-registry: cold (empty image store) and warm (everything
// already present), in process. The comparison with containerd, both as
// daemons over CRI, is `bazel run //bench:container_bench -- --pull_layers 8`.
//
//   bazel run //bench:image_pull_bench [-- LAYERS MB_PER_LAYER]
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/temp_dir.h"
#include "bench/bench_layers.h"
#include "config/config.h"
#include "image/image_store.h"
#include "image/test_layers.h"
#include "store/store.h"
#include "tests/image_registry_fixture.h"

namespace crid {
namespace {

int Run(int argc, char** argv) {
  int layers = 8;
  int mb_per_layer = 25;
  if (argc > 2) {
    (void)absl::SimpleAtoi(argv[1], &layers);
    (void)absl::SimpleAtoi(argv[2], &mb_per_layer);
  }
  TestRegistry registry;
  if (absl::Status st = registry.Start(); !st.ok()) {
    std::fprintf(stderr, "registry: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  TestImageSpec spec;
  uint64_t total = 0;
  for (int i = 0; i < layers; ++i) {
    spec.layers.push_back({BenchLayerTar(i, size_t(mb_per_layer) << 20), LayerCompression::kGzip});
    total += spec.layers.back().tar.size();
  }
  auto pushed = registry.PushImage("bench/big", "1", spec);
  if (!pushed.ok()) {
    std::fprintf(stderr, "push: %s\n", std::string(pushed.status().message()).c_str());
    return 1;
  }
  std::string ref = registry.host() + "/bench/big:1";
  TempDir tmp;
  auto store = Store::Open(tmp.Sub("crid.db"));
  auto images = ImageStore::Open(tmp.Sub("images"), DefaultConfig().image(), store->get());
  if (!images.ok()) {
    return 1;
  }
  absl::Time start = absl::Now();
  auto id = (*images)->Pull(ref, {});
  double cold = absl::ToDoubleSeconds(absl::Now() - start);
  start = absl::Now();
  auto again = (*images)->Pull(ref, {});
  double warm = absl::ToDoubleSeconds(absl::Now() - start);
  if (!id.ok() || !again.ok()) {
    std::fprintf(stderr, "pull failed\n");
    return 1;
  }
  std::printf("image: %d gzip layers, %.1f MB uncompressed\n", layers, total / 1e6);
  std::printf("crid cold pull+unpack: %.2f s (%.1f MB/s uncompressed)\n", cold, total / 1e6 / cold);
  std::printf("crid warm pull:        %.3f s\n", warm);
  return 0;
}

}  // namespace
}  // namespace crid

int main(int argc, char** argv) { return crid::Run(argc, argv); }
