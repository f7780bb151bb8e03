#include "container/shim_events.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/logging.h"
#include "spdlog/spdlog.h"

namespace crid::container {
namespace {

// The epoll key of the wake-up eventfd; streams count from 1.
constexpr uint64_t kWakeKey = 0;

}  // namespace

ShimEventLoop::ShimEventLoop(Handlers handlers)
    : handlers_(std::move(handlers)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!epoll_.valid() || !wake_.valid()) {
    // Without them crid cannot learn of exits at all.
    spdlog::critical("shim events: epoll/eventfd: {}", std::strerror(errno));
    std::abort();
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  thread_ = std::thread([this] { Run(); });
}

ShimEventLoop::~ShimEventLoop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

void ShimEventLoop::Watch(const std::string& pod_id, UniqueFd stream) {
  int flags = ::fcntl(stream.get(), F_GETFL);
  ::fcntl(stream.get(), F_SETFL, flags | O_NONBLOCK);
  absl::MutexLock lock(&mu_);
  if (auto it = by_pod_.find(pod_id); it != by_pod_.end()) {
    RemoveLocked(it->second);
  }
  uint64_t key = next_key_++;
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = key;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stream.get(), &ev) != 0) {
    spdlog::error("shim events: watching pod {}: epoll_ctl: {}", pod_id, std::strerror(errno));
    return;
  }
  Stream& s = streams_[key];
  s.pod_id = pod_id;
  s.fd = std::move(stream);
  by_pod_[pod_id] = key;
}

void ShimEventLoop::Unwatch(const std::string& pod_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_pod_.find(pod_id); it != by_pod_.end()) {
    RemoveLocked(it->second);
  }
}

bool ShimEventLoop::Watching(const std::string& pod_id) const {
  absl::MutexLock lock(&mu_);
  return by_pod_.count(pod_id) != 0;
}

void ShimEventLoop::RemoveLocked(uint64_t key) {
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    return;
  }
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
  auto pod = by_pod_.find(it->second.pod_id);
  if (pod != by_pod_.end() && pod->second == key) {
    by_pod_.erase(pod);
  }
  streams_.erase(it);
}

bool ShimEventLoop::Drain(uint64_t key, std::vector<shim::Response>* messages,
                          std::string* pod_id) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    return true;  // unwatched meanwhile
  }
  Stream& s = it->second;
  *pod_id = s.pod_id;
  char buf[16384];
  bool open = true;
  for (;;) {
    ssize_t n = ::read(s.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      s.reader.Append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    open = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    break;
  }
  for (;;) {
    shim::Response message;
    absl::StatusOr<bool> next = s.reader.Next(&message);
    if (!next.ok()) {
      spdlog::error("shim events: pod {}: {}", s.pod_id, next.status().message());
      open = false;
      break;
    }
    if (!*next) {
      break;
    }
    messages->push_back(std::move(message));
  }
  if (!open) {
    RemoveLocked(key);
  }
  return open;
}

void ShimEventLoop::Run() {
  struct epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      spdlog::critical("shim events: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == kWakeKey) {
        uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof(count));
        absl::MutexLock lock(&mu_);
        if (stopping_) {
          return;
        }
        continue;
      }
      std::vector<shim::Response> messages;
      std::string pod_id;
      bool open = Drain(key, &messages, &pod_id);
      for (const shim::Response& m : messages) {
        handlers_.on_message(pod_id, m);
      }
      if (!open) {
        handlers_.on_closed(pod_id);
      }
    }
  }
}

}  // namespace crid::container
