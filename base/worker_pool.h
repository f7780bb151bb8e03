// The one pool of threads for blocking work (OCI runtime calls, CNI plugins,
// mounts, registry pulls), so gRPC's callback threads stay free for Status and
// List. Each subsystem owns one with its own size. The queue may be bounded:
// when it is full, Submit refuses instead of piling up.
#pragma once

#include <cstddef>
#include <deque>
#include <limits>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace crid {

class WorkerPool {
 public:
  // A queue that never fills up.
  static constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

  // `threads` threads; at most `max_queued` pieces of work waiting for one.
  WorkerPool(size_t threads, size_t max_queued);
  // Runs what is queued, then joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full (the caller answers RESOURCE_EXHAUSTED) or
  // the pool is being destroyed; `work` is then dropped without running.
  [[nodiscard]] bool Submit(absl::AnyInvocable<void() &&> work);

 private:
  void Loop();
  // Await condition; runs with mu_ held.
  static bool HasWork(WorkerPool* pool) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace crid
