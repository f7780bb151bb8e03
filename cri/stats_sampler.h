// ListContainerStats answered from memory: each container's stats entry (its
// attributes, CPU and memory from the cgroup files, the writable layer) kept
// as wire bytes, refreshed by a background thread while someone keeps asking.
//
// Reading a v1 container's cgroup statistics costs 20-50 us in the kernel
// (memory.stat is generated on every read), so a node with 500 containers
// spends 10-25 ms per ListContainerStats on reads alone. Here the first call
// for a container measures it on the call path; from then on a thread
// re-measures every container asked about in the last `keep_alive`, every
// `interval`, and calls get the latest sample (its timestamps say when it was
// taken). Nobody asking for `keep_alive` stops the sampling: an idle node pays
// nothing.
#pragma once

#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "container/manager.h"

namespace crid {

class ContainerStatsSampler {
 public:
  // `measure` returns one serialised runtime.v1.ContainerStats per record, in
  // order; it is called on the caller's thread for misses and on the
  // sampler's thread for refreshes.
  using Measure = absl::AnyInvocable<std::vector<std::string>(
      const std::vector<container::RecordSnapshot>&) const>;

  ContainerStatsSampler(Measure measure, absl::Duration interval, absl::Duration keep_alive);
  ~ContainerStatsSampler();
  ContainerStatsSampler(const ContainerStatsSampler&) = delete;
  ContainerStatsSampler& operator=(const ContainerStatsSampler&) = delete;

  // Appends the entries of `listed` to `out` as ListContainerStatsResponse's
  // field `stats`: a sample of the same record at most 2 x interval old, or
  // one measured now.
  void Append(const std::vector<container::RecordSnapshot>& listed, std::string* out);

  // Samples kept (for tests).
  size_t size() const;
  // Refreshes done by the thread since start (for tests).
  size_t refreshes() const;

 private:
  struct Entry {
    container::RecordSnapshot record;  // the record version sampled
    std::string bytes;                 // field tag, length, ContainerStats
    absl::Time taken;
    absl::Time wanted;  // last asked for
  };

  void Run();

  const Measure measure_;
  const absl::Duration interval_;
  const absl::Duration keep_alive_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::Time last_asked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  size_t refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // asked after a quiet spell
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace crid
