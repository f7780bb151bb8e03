// Bytes a client sent on one stream or channel, waiting for their consumer.
// Bounded: Push blocks while the queue is full, which stops the connection's
// reader and pushes back on the client instead of buffering without limit.
#pragma once

#include <sys/types.h>

#include <cstring>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace crid::streaming {

class ByteQueue {
 public:
  explicit ByteQueue(size_t capacity = 256 * 1024) : capacity_(capacity) {}

  // Appends `data`, waiting for room. False when the queue was aborted (the
  // bytes are dropped) or already finished.
  bool Push(absl::string_view data) {
    absl::MutexLock lock(&mu_);
    while (!data.empty()) {
      mu_.Await(absl::Condition(this, &ByteQueue::HasRoomOrStopped));
      if (aborted_ || finished_) {
        return false;
      }
      size_t n = std::min(data.size(), capacity_ - buffer_.size());
      buffer_.append(data.data(), n);
      data.remove_prefix(n);
    }
    return !aborted_;
  }
  // No more bytes will come; readers see EOF after the buffered ones.
  void Finish() {
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }
  // Drops everything; readers and writers return at once.
  void Abort() {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
    buffer_.clear();
  }
  // Waits for bytes: their count, 0 at EOF, -1 when aborted.
  ssize_t Read(char* out, size_t size) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &ByteQueue::Readable));
    if (aborted_) {
      return -1;
    }
    size_t n = std::min(size, buffer_.size());
    std::memcpy(out, buffer_.data(), n);
    buffer_.erase(0, n);
    return static_cast<ssize_t>(n);
  }
  bool finished() const {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  bool HasRoomOrStopped() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return aborted_ || finished_ || buffer_.size() < capacity_;
  }
  bool Readable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return aborted_ || finished_ || !buffer_.empty();
  }

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crid::streaming
