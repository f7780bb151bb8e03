// A tmpfs of fixed size mounted on a temporary directory, for tests that need
// a filesystem they can fill without touching the machine's real disks.
// Needs root (CAP_SYS_ADMIN).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/temp_dir.h"

namespace crid {

class SmallFilesystem {
 public:
  // Mounts; check ok() before use.
  explicit SmallFilesystem(uint64_t size_bytes);
  // Unmounts (lazily if something still holds it).
  ~SmallFilesystem();
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  const absl::Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

  // Writes `filler` (a file under the mount) until the filesystem has no
  // byte left; returns how much it wrote.
  absl::StatusOr<uint64_t> Fill(const std::string& filler = "filler");
  // Bytes still free (statvfs f_bavail).
  uint64_t Available() const;

 private:
  TempDir tmp_;
  std::string path_;
  absl::Status status_;
};

}  // namespace crid
