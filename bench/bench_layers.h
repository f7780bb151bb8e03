// Layers for the pull benchmarks: incompressible and repetitive halves, so
// gzip gets roughly 2:1, like real binaries.
#pragma once

#include <cstddef>
#include <string>

namespace crid {

// A tar of `bytes` in 4 MiB files under layer<layer>/; the same for the same
// arguments.
std::string BenchLayerTar(int layer, size_t bytes);

}  // namespace crid
