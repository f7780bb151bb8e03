// One thread that reads the event stream of every pod's crid-shim (proto/
// shim.proto, SubscribeRequest) with epoll: container exits reach crid as the
// shims push them, without a thread per container or per pod, and a stream
// that ends tells crid the shim died.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
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

  // Starts the thread. Handlers run on it, one at a time, with no lock held.
  explicit ShimEventLoop(Handlers handlers);
  // Stops and joins the thread; streams still watched are closed.
  ~ShimEventLoop();
  ShimEventLoop(const ShimEventLoop&) = delete;
  ShimEventLoop& operator=(const ShimEventLoop&) = delete;

  // Reads `stream` (a Subscribe connection) from now on, in place of an
  // earlier stream of the same pod.
  void Watch(const std::string& pod_id, UniqueFd stream);
  // Stops reading the pod's stream and closes it; on_closed is not called.
  void Unwatch(const std::string& pod_id);
  bool Watching(const std::string& pod_id) const;

 private:
  struct Stream {
    std::string pod_id;
    UniqueFd fd;
    shim::FrameReader reader;
  };
  void Run();
  // Reads what `key`'s stream has; false when it ended.
  bool Drain(uint64_t key, std::vector<shim::Response>* messages, std::string* pod_id);
  void RemoveLocked(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Handlers handlers_;
  UniqueFd epoll_;
  UniqueFd wake_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> by_pod_ ABSL_GUARDED_BY(mu_);
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace crid::container
