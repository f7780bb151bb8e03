// Copies the output of every container of the pod into its CRI log file from
// one epoll thread, so a pod with many containers costs one thread, not one
// per pipe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "shim/cri_log.h"

namespace crid::shim {

class IoPump {
 public:
  struct Source {
    UniqueFd fd;  // read end of a pipe, or a pty master
    LogStream stream;
  };

  static absl::StatusOr<std::unique_ptr<IoPump>> Start();
  ~IoPump();

  // Starts copying `sources` (made non-blocking here) of container `key` into
  // `log`; a null log discards the output (it must still be read, or the
  // container blocks on a full pipe).
  void Add(const std::string& key, std::vector<Source> sources, std::shared_ptr<CriLogWriter> log);
  // The container's init has exited: copies what is left, until its sources
  // reach EOF or `grace` passes (an orphan may hold a pipe open forever; a
  // pty hands over its last bytes asynchronously), then calls `done` on the
  // pump thread.
  void Drain(const std::string& key, absl::Duration grace, std::function<void()> done);
  // Copies what is already in `key`'s sources, writes each stream's
  // unterminated last line to the log, and closes the sources.
  void Remove(const std::string& key);

  // Also copies `key`'s output, from now on, to an attached client: stdout
  // and stderr are pipe write ends (either may be invalid; with a terminal
  // all output is stdout). The client's pipes are enlarged, but a client that
  // still falls behind is dropped rather than let it slow the container: its
  // descriptors are closed, as they are when the container's output ends.
  // Either way `closed` (an eventfd) is then written.
  void Subscribe(const std::string& key, uint64_t id, UniqueFd stdout_fd, UniqueFd stderr_fd,
                 std::shared_ptr<UniqueFd> closed);
  // Drops subscriber `id` of `key` (no-op when it is already gone).
  void Unsubscribe(const std::string& key, uint64_t id);

 private:
  struct Open {
    UniqueFd fd;
    LogStream stream;
    std::string key;
  };
  struct Subscriber {
    uint64_t id = 0;
    UniqueFd out;
    UniqueFd err;
    std::shared_ptr<UniqueFd> closed;
  };
  struct Container {
    std::vector<std::unique_ptr<Open>> sources;
    std::vector<Subscriber> subscribers;
    std::shared_ptr<CriLogWriter> log;
    // A full disk fails every write; say so once per container, not per read.
    bool write_failed = false;
  };
  struct PendingDrain {
    std::string key;
    absl::Time deadline;
    std::function<void()> done;
  };

  IoPump(UniqueFd epoll_fd, UniqueFd wake_fd)
      : epoll_fd_(std::move(epoll_fd)), wake_fd_(std::move(wake_fd)) {}
  void Post(std::function<void()> task);
  void Loop();
  // Reads `source` until it would block; false once it reached EOF and was closed.
  bool Pump(Container& container, Open* source);
  void Close(Container& container, Open* source);
  // Closes every source of `container` (after copying what they hold when
  // `copy_first`) and every subscriber.
  void CloseAll(Container& container, bool copy_first);
  // Hands a chunk to every subscriber; drops those that cannot take it whole.
  static void Publish(Container& container, LogStream stream, absl::string_view data);
  static void CloseSubscriber(Subscriber& subscriber);
  // Finishes the drains whose sources are closed or whose grace has passed;
  // returns the epoll timeout until the next deadline.
  int FinishDrains();

  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;  // eventfd: tasks are queued
  absl::Mutex mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Owned by the pump thread alone.
  std::map<std::string, Container> containers_;
  std::vector<PendingDrain> drains_;
  std::thread thread_;
};

}  // namespace crid::shim
