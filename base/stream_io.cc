#include "base/stream_io.h"

namespace crid::streaming {

void ResizeQueue::Push(TerminalSize size) {
  absl::MutexLock lock(&mu_);
  if (closed_) {
    return;
  }
  if (pending_.size() >= kMaxPending) {
    pending_.pop_front();
  }
  pending_.push_back(size);
}

void ResizeQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

std::optional<TerminalSize> ResizeQueue::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !pending_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (pending_.empty()) {
    return std::nullopt;
  }
  TerminalSize size = pending_.front();
  pending_.pop_front();
  return size;
}

}  // namespace crid::streaming
