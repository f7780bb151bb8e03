// The shim's only caller of wait(2). As a child subreaper the shim inherits
// every orphan of its containers, so one thread reads SIGCHLD from a signalfd,
// reaps with waitpid(-1) and hands each exit status to whoever waits for that
// pid: a runtime invocation, a container's init, an exec'd process.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "oci/oci_runtime.h"

namespace crid::shim {

class Reaper : public ChildWaiter {
 public:
  using ExitCallback = std::function<void(int status)>;

  // SIGCHLD must already be blocked in every thread (block it in main before
  // starting any thread), or it would be delivered instead of queued for the
  // signalfd.
  static absl::StatusOr<std::unique_ptr<Reaper>> Start();
  ~Reaper() override;

  // Calls `on_exit` with the wait(2) status once `pid` has exited: from the
  // reaper thread, or at once when the exit was already collected. Callbacks
  // must not wait for other children (they would block the reaper).
  void Watch(pid_t pid, ExitCallback on_exit);
  int WaitChild(pid_t pid) override;

  // Exit code as a shell reports it: the status, or 128+N for signal N.
  static int ExitCode(int status);

 private:
  struct Unclaimed {
    int status;
    absl::Time reaped;
  };

  explicit Reaper(UniqueFd signal_fd);
  void Loop();
  void ReapAll();

  UniqueFd signal_fd_;
  UniqueFd stop_fd_;  // eventfd: ends the loop
  absl::Mutex mu_;
  std::map<pid_t, ExitCallback> watchers_ ABSL_GUARDED_BY(mu_);
  // Exits nobody waited for yet: a container init that dies between `runc
  // create` and Watch, or a runtime child whose caller has not reached
  // WaitChild. Orphans of the containers land here too and are dropped after
  // a while.
  std::map<pid_t, Unclaimed> unclaimed_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// One process's exit as a readable eventfd, for threads that poll. Shared
// with the reaper, which may deliver after the waiter gave up.
class ExitEvent {
 public:
  // Watches `pid` on `reaper`.
  static std::shared_ptr<ExitEvent> Watch(Reaper* reaper, pid_t pid);

  // Readable once the process has exited.
  int fd() const { return fd_.get(); }
  // The wait(2) status, once fd() is readable.
  int status() const;

 private:
  ExitEvent();

  UniqueFd fd_;
  mutable absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace crid::shim
