// Applies a layer blob (gzip, zstd or plain tar) to an empty directory so that
// it can serve as an overlayfs lower directory: OCI whiteouts become overlay
// whiteouts (0:0 character devices, trusted.overlay.opaque=y), and owners, modes,
// times, xattrs, hard links, symlinks and device nodes are kept.
//
// Layers are hostile. Every path is resolved component by component from the
// layer's directory fd with O_NOFOLLOW, so `..`, absolute names, writes through
// symlinks and hard links to anything outside the layer are refused, and nothing
// outside the directory is ever opened for writing.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace crid {

// A layer is refused (RESOURCE_EXHAUSTED) when its uncompressed tar stream
// passes max_bytes, or passes both ratio_floor_bytes and max_ratio times the
// blob's size: a small gzip blob holding gigabytes of zeros is stopped before it
// fills the disk, at its first header that claims too much or else as it streams.
struct UnpackLimits {
  uint64_t max_bytes = uint64_t{64} << 30;  // uncompressed tar stream
  uint64_t max_entries = 2'000'000;
  uint64_t max_ratio = 0;  // uncompressed / compressed; 0: no ratio limit
  uint64_t ratio_floor_bytes = 0;
};

struct UnpackResult {
  std::string diff_id;  // sha256 of the uncompressed tar stream
  uint64_t bytes = 0;   // uncompressed tar size
  uint64_t entries = 0;
};

// Unpacks blob file `blob_path` into `dest`, which must be an existing empty
// directory. Memory use is bounded by the layer's directory depth, not by its
// number of entries. On error `dest` may hold part of the layer: callers unpack into a
// temporary directory and remove it (base/fs.h RemoveTree) on failure.
absl::StatusOr<UnpackResult> UnpackLayer(const std::string& blob_path, const std::string& dest,
                                         const UnpackLimits& limits = {});

}  // namespace crid
