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

struct UnpackLimits {
  uint64_t max_bytes = uint64_t{64} << 30;  // uncompressed tar stream
  uint64_t max_entries = 2'000'000;
};

struct UnpackResult {
  std::string diff_id;  // sha256 of the uncompressed tar stream
  uint64_t bytes = 0;   // uncompressed tar size
  uint64_t entries = 0;
};

// Unpacks blob file `blob_path` into `dest`, which must be an existing empty
// directory. On error `dest` may hold part of the layer: callers unpack into a
// temporary directory and remove it (base/fs.h RemoveTree) on failure.
absl::StatusOr<UnpackResult> UnpackLayer(const std::string& blob_path, const std::string& dest,
                                         const UnpackLimits& limits = {});

}  // namespace crid
