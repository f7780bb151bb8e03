// One thread that waits on many descriptors with epoll and runs each one's
// handler when it is readable or hung up: how crid waits for events (shim
// streams, pidfds of pod processes) without a thread per object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace crid {

class FdWatch {
 public:
  // Runs on the watch thread, one handler at a time, with no lock held.
  // Returning false stops watching the descriptor (and closes it).
  using Handler = absl::AnyInvocable<bool()>;

  // Starts the thread.
  FdWatch();
  // Stops and joins the thread and closes every watched descriptor. A handler
  // must not destroy its FdWatch.
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // Watches `fd` (level-triggered: the handler runs again while it stays
  // ready). Returns a key for Remove; 0 when epoll refused the descriptor.
  uint64_t Add(UniqueFd fd, Handler handler);
  // Stops watching and closes the descriptor; its handler is not started
  // again (a run in progress finishes). Unknown keys are ignored.
  void Remove(uint64_t key);

 private:
  struct Entry {
    UniqueFd fd;
    Handler handler;
  };
  void Run();

  UniqueFd epoll_;
  UniqueFd wake_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace crid
