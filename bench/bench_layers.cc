#include "bench/bench_layers.h"

#include <cstdint>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "image/test_layers.h"

namespace crid {

std::string BenchLayerTar(int layer, size_t bytes) {
  std::mt19937_64 rng(static_cast<uint64_t>(layer) + 1);
  TarBuilder tar;
  constexpr size_t kFile = size_t{4} << 20;
  for (size_t done = 0, i = 0; done < bytes; done += kFile, ++i) {
    std::string data(kFile, '\0');
    for (size_t j = 0; j + 8 <= kFile / 2; j += 8) {
      uint64_t v = rng();
      std::memcpy(&data[j], &v, 8);
    }
    for (size_t j = kFile / 2; j < kFile; ++j) {
      data[j] = "the quick brown fox jumps over the lazy dog\n"[j % 44];
    }
    tar.File(absl::StrCat("layer", layer, "/file", i), data);
  }
  return tar.Finish();
}

}  // namespace crid
