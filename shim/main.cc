// crid-shim: the per-pod process that runs containers through the OCI runtime,
// holds their stdio, writes their logs and keeps their exit statuses. crid
// starts it detached (its own session, stdio on /dev/null) so that it and the
// pod's containers outlive crid; crid talks to it over <dir>/shim.sock
// (proto/shim.proto).
//
//   crid-shim --pod-id ID --dir DIR [--ready-fd N]
//
// DIR holds shim.sock (0600), shim.pid (locked while the shim runs, so two
// shims never serve one pod), exits/<id>.json and shim.log. With --ready-fd,
// one byte is written to descriptor N (then closed) once shim.sock accepts
// connections, so the launcher waits for that instead of polling the socket.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/lock_file.h"
#include "base/unique_fd.h"
#include "cgroups/stats.h"
#include "shim/frame.h"
#include "shim/io_pump.h"
#include "shim/log.h"
#include "shim/reaper.h"
#include "shim/service.h"

namespace crid::shim {
namespace {

// A request must arrive promptly once connected; a peer that sends half a
// frame and stalls only costs its own thread this long.
constexpr absl::Duration kRequestTimeout = absl::Seconds(30);
constexpr absl::Duration kResponseTimeout = absl::Seconds(30);
// How often the shim checks that its socket is still there.
constexpr int kSocketCheckMs = 2000;

std::atomic<bool> shutting_down{false};

void Serve(ShimService* service, UniqueFd conn, int wake_fd) {
  Request request;
  absl::Status st = ReadFrame(conn.get(), &request, absl::Now() + kRequestTimeout);
  Response response;
  if (!st.ok()) {
    if (absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st)) {
      return;  // the peer went away; nobody to answer
    }
    log::Warn("bad request: {}", st);
    response.set_code(static_cast<int>(st.code()));
    response.set_message(std::string(st.message()));
  } else {
    std::vector<UniqueFd> fds;
    if (size_t count = ShimService::PassedFdCount(request); count > 0) {
      absl::StatusOr<std::vector<UniqueFd>> received =
          ReceiveFds(conn.get(), count, absl::Now() + kRequestTimeout);
      if (received.ok()) {
        fds = std::move(*received);
      } else {
        st = received.status();
      }
    }
    if (st.ok() && request.has_subscribe()) {
      service->Subscribe(conn.get());  // the connection is the stream
      return;
    }
    if (st.ok()) {
      response = service->Handle(request, std::move(fds), conn.get());
    } else if (absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st)) {
      return;
    } else {
      response.set_code(static_cast<int>(st.code()));
      response.set_message(std::string(st.message()));
    }
  }
  st = WriteFrame(conn.get(), response, absl::Now() + kResponseTimeout);
  if (!st.ok()) {
    log::Warn("answer {}: {}", request.kind_case(), st);
  }
  if (request.has_shutdown()) {
    shutting_down = true;
    char byte = 1;
    (void)!::write(wake_fd, &byte, 1);
  }
}

absl::StatusOr<UniqueFd> ListenOn(const std::string& path) {
  struct sockaddr_un addr = {};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("dir: socket path ", path, " is too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return ErrnoError(errno, "socket");
  }
  // We hold the pid file lock, so a socket file left here is a dead shim's.
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (rc != 0) {
    return ErrnoError(errno, "bind ", path);
  }
  if (::listen(fd.get(), 64) != 0) {
    return ErrnoError(errno, "listen ", path);
  }
  return fd;
}

int Run(const std::string& pod_id, const std::string& dir, int ready_fd) {
  // Only the launcher's pipe: never inherited by the OCI runtime or containers.
  if (ready_fd >= 0 && ::fcntl(ready_fd, F_SETFD, FD_CLOEXEC) != 0) {
    ready_fd = -1;
  }
  absl::Status st = MakeDirs(dir, 0700);
  if (!st.ok()) {
    std::fprintf(stderr, "crid-shim: %s\n", st.ToString().c_str());
    return 1;
  }
  // The log is stderr, so whatever else reaches stderr (a sanitizer report,
  // an abort message) lands there too: the launcher gave us /dev/null.
  int log_fd = ::open((dir + "/shim.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    std::fprintf(stderr, "crid-shim: %s/shim.log: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  ::dup2(log_fd, STDERR_FILENO);
  ::close(log_fd);
  log::Init(STDERR_FILENO, pod_id);
  absl::StatusOr<LockFile> lock = LockFile::Acquire(dir + "/shim.pid");
  if (!lock.ok()) {
    // Another shim serves this pod already; the caller connects to it.
    log::Info("not starting: {}", lock.status());
    return 0;
  }
  // Orphans of the pod's containers (and the inits runc leaves behind) become
  // our children, so their exits reach us.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    log::Error("prctl(PR_SET_CHILD_SUBREAPER): {}", std::strerror(errno));
    return 1;
  }
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  if (!layout.ok()) {
    log::Warn("cgroup layout: {}; OOM kills will not be seen", layout.status());
    layout = CgroupLayout();
  }
  auto reaper = Reaper::Start();
  auto pump = IoPump::Start();
  if (!reaper.ok() || !pump.ok()) {
    log::Error("start: {} {}", reaper.status(), pump.status());
    return 1;
  }
  std::string socket_path = dir + "/shim.sock";
  absl::StatusOr<UniqueFd> listener = ListenOn(socket_path);
  if (!listener.ok()) {
    log::Error("{}", listener.status());
    return 1;
  }
  struct stat socket_stat = {};
  ::stat(socket_path.c_str(), &socket_stat);
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    log::Error("pipe: {}", std::strerror(errno));
    return 1;
  }
  UniqueFd wake_read(wake[0]), wake_write(wake[1]);
  // Outlives every connection thread: the process ends with _exit.
  auto* service = new ShimService(dir, reaper->get(), pump->get(), *layout);
  log::Info("serving pod {} on {} (pid {})", pod_id, socket_path, ::getpid());
  if (ready_fd >= 0) {
    char byte = 1;
    (void)!::write(ready_fd, &byte, 1);
    ::close(ready_fd);
  }

  bool socket_gone = false;
  while (!shutting_down) {
    struct pollfd fds[2] = {{listener->get(), POLLIN, 0}, {wake_read.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, kSocketCheckMs);
    if (n == 0) {
      struct stat now = {};
      if (::stat(socket_path.c_str(), &now) != 0 || now.st_ino != socket_stat.st_ino) {
        socket_gone = true;
        break;
      }
      continue;
    }
    if (n < 0 || fds[0].revents == 0) {
      continue;
    }
    UniqueFd conn(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      continue;
    }
    std::thread(Serve, service, std::move(conn), wake_write.get()).detach();
  }
  if (socket_gone) {
    // Nobody can reach the pod's containers any more: remove them rather than
    // leave them running unseen.
    log::Warn("{} is gone; deleting the pod's containers and exiting", socket_path);
    service->DeleteAll();
  }
  ::unlink(socket_path.c_str());
  log::Info("exiting");
  // Connection threads may still run; skip static destructors under them.
  std::fflush(nullptr);
  ::unlink((dir + "/shim.pid").c_str());
  ::_exit(0);
}

}  // namespace
}  // namespace crid::shim

int main(int argc, char** argv) {
  // The flags, spelled as crid passes them (--pod-id ID or --pod-id=ID).
  std::string pod_id;
  std::string dir;
  std::string ready;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string* target = nullptr;
    for (auto [name, value] : {std::pair{"--pod-id", &pod_id}, std::pair{"--dir", &dir},
                               std::pair{"--ready-fd", &ready}}) {
      if (arg == name && i + 1 < argc) {
        target = value;
        *target = argv[++i];
      } else if (absl::StartsWith(arg, absl::StrCat(name, "="))) {
        target = value;
        *target = std::string(arg.substr(std::strlen(name) + 1));
      }
    }
    if (target == nullptr) {
      std::fprintf(stderr,
                   "crid-shim: unknown argument %s\n"
                   "usage: crid-shim --pod-id ID --dir DIR [--ready-fd N]\n",
                   argv[i]);
      return 2;
    }
  }
  if (pod_id.empty() || dir.empty() || dir[0] != '/') {
    std::fprintf(stderr, "crid-shim: --pod-id and --dir (an absolute path) are required\n");
    return 2;
  }
  int ready_fd = -1;
  if (!ready.empty() && (!absl::SimpleAtoi(ready, &ready_fd) || ready_fd <= 2)) {
    std::fprintf(stderr, "crid-shim: --ready-fd %s: not a descriptor above 2\n", ready.c_str());
    return 2;
  }
  // Every thread inherits this mask: SIGCHLD is read from the reaper's
  // signalfd. SIGPIPE would kill the shim when a peer or a container's stdin
  // goes away; write errors say the same.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // One process per pod, so its footprint counts: one malloc arena for all
  // threads, and no lock-order graph (Abseil's deadlock detector allocates
  // one per process and checks it on every lock).
  ::mallopt(M_ARENA_MAX, 1);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return crid::shim::Run(pod_id, dir, ready_fd);
}
