#include "container/shim_events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/logging.h"
#include "spdlog/spdlog.h"

namespace crid::container {

void ShimEventLoop::Watch(const std::string& pod_id, UniqueFd stream) {
  int fd = stream.get();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  Unwatch(pod_id);
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    generation = next_generation_++;
    streams_[pod_id].generation = generation;
  }
  uint64_t key = watch_.Add(std::move(stream), [this, pod_id, generation, fd] {
    return OnReadable(pod_id, generation, fd);
  });
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(pod_id);
  if (key == 0) {
    spdlog::error("shim events: cannot watch the stream of pod {}", pod_id);
    if (it != streams_.end() && it->second.generation == generation) {
      streams_.erase(it);
    }
  } else if (it != streams_.end() && it->second.generation == generation) {
    it->second.key = key;
  } else {
    watch_.Remove(key);  // unwatched meanwhile
  }
}

void ShimEventLoop::Unwatch(const std::string& pod_id) {
  uint64_t key = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(pod_id);
    if (it == streams_.end()) {
      return;
    }
    key = it->second.key;
    streams_.erase(it);
  }
  watch_.Remove(key);
}

bool ShimEventLoop::OnReadable(const std::string& pod_id, uint64_t generation, int fd) {
  std::vector<shim::Response> messages;
  bool open = true;
  {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(pod_id);
    if (it == streams_.end() || it->second.generation != generation) {
      return false;  // replaced or unwatched
    }
    shim::FrameReader& reader = it->second.reader;
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        reader.Append(buf, static_cast<size_t>(n));
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
      absl::StatusOr<bool> next = reader.Next(&message);
      if (!next.ok()) {
        spdlog::error("shim events: pod {}: {}", pod_id, next.status().message());
        open = false;
        break;
      }
      if (!*next) {
        break;
      }
      messages.push_back(std::move(message));
    }
    if (!open) {
      streams_.erase(it);
    }
  }
  for (const shim::Response& m : messages) {
    handlers_.on_message(pod_id, m);
  }
  if (!open) {
    handlers_.on_closed(pod_id);
  }
  return open;
}

}  // namespace crid::container
