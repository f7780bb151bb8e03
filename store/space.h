// Room on crid's data filesystem: how much is free (and on which filesystem),
// and a spare file kept allocated next to the store so that removals can still
// commit when a container has filled the disk. SQLite needs a few free pages
// for every commit, deletes included; releasing the spare gives them back.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

struct FilesystemSpace {
  uint64_t avail_bytes = 0;
  uint64_t avail_inodes = 0;
  // False on filesystems without an inode limit (f_files == 0).
  bool inodes_limited = false;
  // Where the filesystem holding the path is mounted, and its type ("tmpfs").
  std::string mount_point;
  std::string fs_type;
};

// statvfs(2) of `path`, plus (with `find_mount`) its mount point and type
// from /proc/self/mountinfo, which is long on a busy node: only for messages.
absl::StatusOr<FilesystemSpace> StatFilesystem(const std::string& path, bool find_mount = true);

// "12.0 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);

// A file of `bytes` allocated bytes at `path`. Not thread-safe: the store
// calls it under its own lock.
class SpaceReserve {
 public:
  SpaceReserve(std::string path, uint64_t bytes) : path_(std::move(path)), bytes_(bytes) {}

  // Makes sure the file exists with all its blocks allocated (fallocate, or
  // zeros where fallocate is not supported). Fails, leaving no partial file,
  // when the filesystem has no room for it. A no-op when bytes is 0.
  absl::Status Fill();
  // Deletes the file; true when that gave space back.
  bool Release();
  // Whether the file is in place (always true when bytes is 0).
  bool held() const { return held_ || bytes_ == 0; }
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  const uint64_t bytes_;
  bool held_ = false;
};

}  // namespace crid
