// Content-addressed blob store under ROOT/images/blobs/sha256/<hex>. Blobs are
// written to ROOT/images/ingest, hashed while they stream, and renamed into place
// only when size and digest match, so a dead pull never leaves a visible blob.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace crid {

class ContentStore;

// One blob being written. Destroying it without Commit removes the temp file.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  absl::Status Write(absl::string_view data);
  uint64_t written() const { return written_; }
  // Verifies size and digest, fsyncs, and renames the blob into place.
  absl::Status Commit();

 private:
  friend class ContentStore;
  BlobWriter(std::string temp_path, std::string final_path, std::string digest, int64_t size,
             UniqueFd fd)
      : temp_path_(std::move(temp_path)),
        final_path_(std::move(final_path)),
        digest_(std::move(digest)),
        expected_size_(size),
        fd_(std::move(fd)) {}

  std::string temp_path_;
  std::string final_path_;
  std::string digest_;
  int64_t expected_size_;  // -1: unknown
  UniqueFd fd_;
  Sha256 hasher_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

class ContentStore {
 public:
  // `dir` is ROOT/images; created if missing. Leftover ingest files are removed.
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(const std::string& dir);

  bool Has(absl::string_view digest) const;
  std::string BlobPath(absl::string_view digest) const;
  absl::StatusOr<std::string> ReadBlob(absl::string_view digest, uint64_t max_size) const;
  // Starts writing blob `digest` of `size` bytes (-1 when unknown).
  absl::StatusOr<std::unique_ptr<BlobWriter>> Begin(absl::string_view digest, int64_t size);
  // Writes a small blob at once (manifests, configs).
  absl::Status Put(absl::string_view digest, absl::string_view data);
  absl::Status Remove(absl::string_view digest);
  absl::StatusOr<std::vector<std::string>> List() const;
  const std::string& dir() const { return dir_; }

 private:
  explicit ContentStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace crid
