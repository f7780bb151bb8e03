// An exclusive advisory lock on a file, held for the life of the object. crid takes
// one on its root directory so that two daemons never share the same state.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace crid {

class LockFile {
 public:
  // Creates `path` if needed and locks it without waiting. When another process
  // holds it, the error is FAILED_PRECONDITION and names that process's pid.
  // The holder's pid is written into the file.
  static absl::StatusOr<LockFile> Acquire(const std::string& path);

  LockFile(LockFile&&) = default;
  LockFile& operator=(LockFile&&) = default;

  const std::string& path() const { return path_; }

 private:
  LockFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
};

}  // namespace crid
