// Small filesystem helpers shared by crid's subsystems.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

// Creates `path` and any missing parents with `mode`. Existing directories are fine;
// an existing non-directory is an error.
absl::Status MakeDirs(const std::string& path, mode_t mode);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// The names in directory `path`, without "." and "..", in no particular order.
// A missing directory is NOT_FOUND.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

// Replaces `path` with `data` so that a crash leaves either the old or the new
// content: write to a temporary file in the same directory, fsync, rename, fsync
// the directory.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode);

// Replaces `path` with `data` so that readers see the old or the new content,
// never part of it (a temporary file in the same directory, renamed), but
// syncs nothing: for files that need not survive a power loss, such as those
// in crid's state directory (tmpfs in production, rebuilt after a reboot).
absl::Status ReplaceFile(const std::string& path, absl::string_view data, mode_t mode);

// rm -rf that never follows a symlink and never descends into another mounted
// filesystem (a mount below `path` makes it fail with FAILED_PRECONDITION
// instead of deleting the mounted files). A missing `path` is success.
absl::Status RemoveTree(const std::string& path);

struct DiskUsage {
  uint64_t bytes = 0;   // allocated bytes (st_blocks * 512), each inode once
  uint64_t inodes = 0;  // distinct inodes, the root included
};

// Walks `path` without following symlinks or crossing mount points.
absl::StatusOr<DiskUsage> MeasureDiskUsage(const std::string& path);

}  // namespace crid
