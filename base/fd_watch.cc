#include "base/fd_watch.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace crid {
namespace {

// The epoll key of the wake-up eventfd; descriptors count from 1.
constexpr uint64_t kWakeKey = 0;

}  // namespace

FdWatch::FdWatch()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  if (!epoll_.valid() || !wake_.valid() ||
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    // Without it crid would never learn of exits: no way to go on.
    std::fprintf(stderr, "crid: epoll/eventfd: %s\n", std::strerror(errno));
    std::abort();
  }
  thread_ = std::thread([this] { Run(); });
}

FdWatch::~FdWatch() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

uint64_t FdWatch::Add(UniqueFd fd, Handler handler) {
  absl::MutexLock lock(&mu_);
  uint64_t key = next_key_++;
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = key;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    return 0;
  }
  auto entry = std::make_shared<Entry>();
  entry->fd = std::move(fd);
  entry->handler = std::move(handler);
  entries_[key] = std::move(entry);
  return key;
}

void FdWatch::Remove(uint64_t key) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      return;
    }
    entry = std::move(it->second);
    entries_.erase(it);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, entry->fd.get(), nullptr);
  }
  // The descriptor closes when a handler still running lets go of it.
}

void FdWatch::Run() {
  struct epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::fprintf(stderr, "crid: epoll_wait: %s\n", std::strerror(errno));
      std::abort();
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      std::shared_ptr<Entry> entry;
      {
        absl::MutexLock lock(&mu_);
        if (key == kWakeKey || stopping_) {
          if (stopping_) {
            return;
          }
          uint64_t count = 0;
          (void)!::read(wake_.get(), &count, sizeof(count));
          continue;
        }
        auto it = entries_.find(key);
        if (it == entries_.end()) {
          continue;  // removed after epoll_wait reported it
        }
        entry = it->second;
      }
      if (!entry->handler()) {
        Remove(key);
      }
    }
  }
}

}  // namespace crid
