// A fixed set of threads for blocking sandbox work (CNI plugins, mounts,
// namespace setup), so gRPC's callback threads stay free for Status and List.
// The queue is bounded: when it is full, Submit refuses instead of piling up.
#pragma once

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace crid::sandbox {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queued);
  // Runs what is queued, then joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False when the queue is full (the caller answers RESOURCE_EXHAUSTED).
  bool Submit(absl::AnyInvocable<void() &&> work);

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

}  // namespace crid::sandbox
