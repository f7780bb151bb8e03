// Reads the event stream of every pod's crid-shim (proto/shim.proto,
// SubscribeRequest) on one FdWatch thread: container exits reach crid as the
// shims push them, without a thread per container or per pod, and a stream
// that ends tells crid the shim died.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "base/fd_watch.h"
#include "base/unique_fd.h"
#include "proto/shim.pb.h"
#include "shim/frame.h"

namespace crid::container {

class ShimEventLoop {
 public:
  struct Handlers {
    // A `states` snapshot or an `event` from the shim of pod `pod_id`.
    absl::AnyInvocable<void(const std::string& pod_id, const shim::Response& message)> on_message;
    // The stream of `pod_id` ended (or sent garbage) while it was watched.
    absl::AnyInvocable<void(const std::string& pod_id)> on_closed;
  };

  // Handlers run on the watch thread, one at a time, with no lock held.
  explicit ShimEventLoop(Handlers handlers) : handlers_(std::move(handlers)) {}
  ShimEventLoop(const ShimEventLoop&) = delete;
  ShimEventLoop& operator=(const ShimEventLoop&) = delete;

  // Reads `stream` (a Subscribe connection) from now on, in place of an
  // earlier stream of the same pod.
  void Watch(const std::string& pod_id, UniqueFd stream);
  // Stops reading the pod's stream and closes it; on_closed is not called.
  void Unwatch(const std::string& pod_id);

 private:
  // Reads what the stream has and hands over whole messages; false when it
  // ended.
  bool OnReadable(const std::string& pod_id, uint64_t generation, int fd);

  Handlers handlers_;
  absl::Mutex mu_;
  struct Stream {
    uint64_t key = 0;         // FdWatch key
    uint64_t generation = 0;  // tells a replaced stream from its successor
    shim::FrameReader reader;
  };
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  // Last: destroyed first, so no handler runs on a half-destroyed loop.
  FdWatch watch_;
};

}  // namespace crid::container
