#include "shim/io_pump.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/errors.h"
#include "shim/log.h"

namespace crid::shim {

absl::StatusOr<std::unique_ptr<IoPump>> IoPump::Start() {
  UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd.valid()) {
    return ErrnoError(errno, "epoll_create1");
  }
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.valid()) {
    return ErrnoError(errno, "eventfd");
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &ev) != 0) {
    return ErrnoError(errno, "epoll_ctl");
  }
  std::unique_ptr<IoPump> pump(new IoPump(std::move(epoll_fd), std::move(wake_fd)));
  pump->thread_ = std::thread([p = pump.get()] { p->Loop(); });
  return pump;
}

IoPump::~IoPump() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) {
    thread_.join();
  }
  // The thread is gone: write what is left of every stream's last line.
  for (auto& [key, container] : containers_) {
    CloseAll(container, /*copy_first=*/false);
  }
}

void IoPump::Post(std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void IoPump::Add(const std::string& key, std::vector<Source> sources,
                 std::shared_ptr<CriLogWriter> log) {
  // Shared so the task stays copyable for std::function.
  auto moved = std::make_shared<std::vector<Source>>(std::move(sources));
  Post([this, key, moved, log = std::move(log)]() mutable {
    Container& container = containers_[key];
    container.log = std::move(log);
    for (Source& s : *moved) {
      int flags = ::fcntl(s.fd.get(), F_GETFL);
      ::fcntl(s.fd.get(), F_SETFL, flags | O_NONBLOCK);
      auto open = std::make_unique<Open>(Open{std::move(s.fd), s.stream, key});
      struct epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.ptr = open.get();
      if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, open->fd.get(), &ev) != 0) {
        log::Error("container {}: epoll_ctl: {}", key, std::strerror(errno));
        continue;
      }
      container.sources.push_back(std::move(open));
    }
  });
}

void IoPump::Drain(const std::string& key, absl::Duration grace, std::function<void()> done) {
  Post([this, key, grace, done = std::move(done)]() mutable {
    drains_.push_back({key, absl::Now() + grace, std::move(done)});
  });
}

int IoPump::FinishDrains() {
  absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();
  std::vector<std::function<void()>> finished;
  for (auto it = drains_.begin(); it != drains_.end();) {
    auto c = containers_.find(it->key);
    bool open = c != containers_.end() && !c->second.sources.empty();
    if (open && now < it->deadline) {
      next = std::min(next, it->deadline);
      ++it;
      continue;
    }
    if (open) {
      // Copy the pointers: Pump may close (and erase) sources.
      std::vector<Open*> sources;
      for (auto& s : c->second.sources) {
        sources.push_back(s.get());
      }
      for (Open* s : sources) {
        Pump(c->second, s);
      }
    }
    finished.push_back(std::move(it->done));
    it = drains_.erase(it);
  }
  for (auto& done : finished) {
    done();
  }
  if (next == absl::InfiniteFuture()) {
    return -1;
  }
  return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(next - now) + 1));
}

void IoPump::Remove(const std::string& key) {
  Post([this, key] {
    auto it = containers_.find(key);
    if (it == containers_.end()) {
      return;
    }
    CloseAll(it->second, /*copy_first=*/true);
    containers_.erase(it);
  });
}

void IoPump::CloseAll(Container& container, bool copy_first) {
  // Copy the pointers: Pump and Close erase sources.
  std::vector<Open*> sources;
  for (auto& s : container.sources) {
    sources.push_back(s.get());
  }
  for (Open* s : sources) {
    // What is already in the pipe, then the stream's unterminated last line.
    if (!copy_first || Pump(container, s)) {
      Close(container, s);
    }
  }
  for (Subscriber& sub : container.subscribers) {
    CloseSubscriber(sub);
  }
  container.subscribers.clear();
}

void IoPump::Subscribe(const std::string& key, uint64_t id, UniqueFd stdout_fd, UniqueFd stderr_fd,
                       std::shared_ptr<UniqueFd> closed) {
  auto sub = std::make_shared<Subscriber>();
  sub->id = id;
  sub->out = std::move(stdout_fd);
  sub->err = std::move(stderr_fd);
  sub->closed = std::move(closed);
  for (int fd : {sub->out.get(), sub->err.get()}) {
    if (fd >= 0) {
      // Room for bursts (the kernel caps this at fs.pipe-max-size).
      ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
  }
  Post([this, key, sub] {
    auto it = containers_.find(key);
    if (it == containers_.end() || it->second.sources.empty()) {
      // Its output has already ended.
      CloseSubscriber(*sub);
      return;
    }
    it->second.subscribers.push_back(std::move(*sub));
  });
}

void IoPump::Unsubscribe(const std::string& key, uint64_t id) {
  Post([this, key, id] {
    auto it = containers_.find(key);
    if (it == containers_.end()) {
      return;
    }
    auto& subs = it->second.subscribers;
    for (auto sub = subs.begin(); sub != subs.end(); ++sub) {
      if (sub->id == id) {
        CloseSubscriber(*sub);
        subs.erase(sub);
        return;
      }
    }
  });
}

void IoPump::CloseSubscriber(Subscriber& subscriber) {
  subscriber.out.reset();
  subscriber.err.reset();
  if (subscriber.closed != nullptr && subscriber.closed->valid()) {
    uint64_t one = 1;
    (void)!::write(subscriber.closed->get(), &one, sizeof(one));
  }
}

void IoPump::Publish(Container& container, LogStream stream, absl::string_view data) {
  auto& subs = container.subscribers;
  for (auto sub = subs.begin(); sub != subs.end();) {
    int fd = stream == LogStream::kStderr ? sub->err.get() : sub->out.get();
    if (fd < 0) {
      ++sub;
      continue;
    }
    ssize_t n;
    do {
      n = ::write(fd, data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(data.size())) {
      ++sub;
      continue;
    }
    // Gone, or so far behind that a 1 MiB pipe is full: part of this chunk
    // would be lost, so the client's stream ends here instead.
    if (n >= 0 || errno == EAGAIN) {
      log::Warn("attached client fell behind; detaching it");
    }
    CloseSubscriber(*sub);
    sub = subs.erase(sub);
  }
}

bool IoPump::Pump(Container& container, Open* source) {
  char buf[32 * 1024];
  for (;;) {
    ssize_t n = ::read(source->fd.get(), buf, sizeof(buf));
    if (n > 0) {
      if (!container.subscribers.empty()) {
        Publish(container, source->stream, absl::string_view(buf, static_cast<size_t>(n)));
      }
      if (container.log != nullptr) {
        absl::Status st =
            container.log->Write(source->stream, absl::string_view(buf, static_cast<size_t>(n)));
        if (!st.ok() && !container.write_failed) {
          log::Warn("container {}: {}; output is lost until a write succeeds", source->key, st);
        }
        if (st.ok() && container.write_failed) {
          CriLogWriter::Losses lost = container.log->losses();
          log::Warn(
              "container {}: log writes succeed again ({} records dropped, {} cut short in all)",
              source->key, lost.dropped, lost.cut);
        }
        container.write_failed = !st.ok();
      }
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      return true;
    }
    // EOF, or EIO from a pty master once the terminal's last holder is gone.
    Close(container, source);
    return false;
  }
}

void IoPump::Close(Container& container, Open* source) {
  if (container.log != nullptr) {
    (void)container.log->Close(source->stream);
  }
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, source->fd.get(), nullptr);
  for (auto it = container.sources.begin(); it != container.sources.end(); ++it) {
    if (it->get() == source) {
      container.sources.erase(it);
      break;
    }
  }
  if (container.sources.empty()) {
    // The container's output has ended, and with it every attach.
    for (Subscriber& sub : container.subscribers) {
      CloseSubscriber(sub);
    }
    container.subscribers.clear();
  }
}

void IoPump::Loop() {
  struct epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_fd_.get(), events, 16, FinishDrains());
    if (n < 0) {
      continue;
    }
    // A source closed while handling this batch must not be touched again.
    std::vector<Open*> closed;
    for (int i = 0; i < n; ++i) {
      auto* source = static_cast<Open*>(events[i].data.ptr);
      if (source == nullptr) {
        uint64_t count;
        (void)!::read(wake_fd_.get(), &count, sizeof(count));
        std::vector<std::function<void()>> tasks;
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) {
            return;
          }
          tasks.swap(tasks_);
        }
        for (auto& task : tasks) {
          task();
        }
        // Tasks may have removed sources that appear later in this batch.
        break;
      }
      if (std::find(closed.begin(), closed.end(), source) != closed.end()) {
        continue;
      }
      auto it = containers_.find(source->key);
      if (it != containers_.end() && !Pump(it->second, source)) {
        closed.push_back(source);
      }
    }
  }
}

}  // namespace crid::shim
