#include "shim/reaper.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "base/errors.h"

namespace crid::shim {

namespace {

// Orphans' exits are never claimed; keep them long enough for any real
// waiter, and no more than this many, so a busy pod cannot grow the shim.
constexpr absl::Duration kUnclaimedTtl = absl::Minutes(5);
constexpr size_t kMaxUnclaimed = 4096;

}  // namespace

absl::StatusOr<std::unique_ptr<Reaper>> Reaper::Start() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  UniqueFd fd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) {
    return ErrnoError(errno, "signalfd");
  }
  std::unique_ptr<Reaper> reaper(new Reaper(std::move(fd)));
  if (!reaper->stop_fd_.valid()) {
    return ErrnoError(errno, "eventfd");
  }
  reaper->thread_ = std::thread([r = reaper.get()] { r->Loop(); });
  return reaper;
}

Reaper::Reaper(UniqueFd signal_fd)
    : signal_fd_(std::move(signal_fd)), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Reaper::~Reaper() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(stop_fd_.get(), &one, sizeof(one));
    thread_.join();
  }
}

int Reaper::ExitCode(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return 255;
}

void Reaper::Loop() {
  struct pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  // Children may have exited before the signalfd existed.
  ReapAll();
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      continue;
    }
    if (fds[1].revents != 0) {
      return;
    }
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof(info)) > 0) {
    }
    // SIGCHLD is coalesced: one signal may stand for many exits.
    ReapAll();
  }
}

void Reaper::ReapAll() {
  for (;;) {
    std::vector<std::pair<ExitCallback, int>> ready;
    {
      // Reaping under the lock: a waiter that finds no process with its pid
      // can then trust that the exit is already recorded (see WaitChild).
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < 64; ++i) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) {
          continue;
        }
        if (pid <= 0) {
          break;
        }
        auto it = watchers_.find(pid);
        if (it != watchers_.end()) {
          ready.emplace_back(std::move(it->second), status);
          watchers_.erase(it);
          continue;
        }
        absl::Time now = absl::Now();
        for (auto u = unclaimed_.begin(); u != unclaimed_.end();) {
          if (now - u->second.reaped > kUnclaimedTtl || unclaimed_.size() >= kMaxUnclaimed) {
            u = unclaimed_.erase(u);
          } else {
            ++u;
          }
        }
        unclaimed_[pid] = {status, now};
      }
    }
    if (ready.empty()) {
      return;
    }
    for (auto& [callback, status] : ready) {
      callback(status);
    }
  }
}

void Reaper::Watch(pid_t pid, ExitCallback on_exit) {
  std::optional<int> status;
  {
    absl::MutexLock lock(&mu_);
    auto it = unclaimed_.find(pid);
    if (it != unclaimed_.end()) {
      // A live process (or unreaped zombie) with this pid means the record is
      // from an earlier process that had the same pid.
      if (::kill(pid, 0) != 0) {
        status = it->second.status;
      }
      unclaimed_.erase(it);
    }
    if (!status.has_value()) {
      watchers_[pid] = std::move(on_exit);
      return;
    }
  }
  on_exit(*status);
}

int Reaper::WaitChild(pid_t pid) {
  // A Notification may be destroyed as soon as the wait returns, even while
  // Notify is still finishing on the reaper thread.
  absl::Notification done;
  int result = 0;
  Watch(pid, [&](int status) {
    result = status;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

ExitEvent::ExitEvent() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

std::shared_ptr<ExitEvent> ExitEvent::Watch(Reaper* reaper, pid_t pid) {
  std::shared_ptr<ExitEvent> event(new ExitEvent());
  reaper->Watch(pid, [event](int status) {
    {
      absl::MutexLock lock(&event->mu_);
      event->status_ = status;
    }
    uint64_t one = 1;
    (void)!::write(event->fd_.get(), &one, sizeof(one));
  });
  return event;
}

int ExitEvent::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace crid::shim
