// Interactive sessions: ExecStream, Attach and Resize (proto/shim.proto). The
// descriptors come from crid, already connected to the client; the shim only
// copies where a terminal sits in between, and never buffers more than one
// chunk per direction, so a slow client slows the command as a terminal would.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "shim/console.h"
#include "shim/log.h"
#include "shim/service.h"

namespace crid::shim {

namespace {

// How long a terminal may still deliver output after its process exited.
constexpr absl::Duration kTerminalGrace = absl::Milliseconds(500);
// After the caller went away: how long to wait for the killed process.
constexpr absl::Duration kKillWait = absl::Seconds(5);
constexpr size_t kChunk = size_t{32} * 1024;
// Sizes sent for sessions that never started are forgotten after this long.
constexpr absl::Duration kPendingSizeLifetime = absl::Minutes(1);
constexpr size_t kMaxSessions = 1024;

void SetNonBlocking(int fd) {
  if (fd >= 0) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
}

absl::Status SetWindowSize(int terminal, uint16_t width, uint16_t height) {
  struct winsize size = {};
  size.ws_col = width;
  size.ws_row = height;
  if (::ioctl(terminal, TIOCSWINSZ, &size) != 0) {
    return ErrnoError(errno, "set terminal size");
  }
  return absl::OkStatus();
}

// Milliseconds until `deadline` for poll(2); -1 for none.
int PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    return -1;
  }
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()) + 1, 0, 60'000));
}

// Reads what `fd` has, up to the room left in `buffer`. False at EOF or error.
bool ReadInto(int fd, std::string* buffer) {
  char chunk[kChunk];
  size_t room = kChunk - std::min(kChunk, buffer->size());
  if (room == 0) {
    return true;
  }
  ssize_t n;
  do {
    n = ::read(fd, chunk, room);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && errno == EAGAIN;
}

// Writes what `fd` takes from the front of `buffer`. False on error.
bool WriteFrom(int fd, std::string* buffer) {
  ssize_t n;
  do {
    n = ::write(fd, buffer->data(), buffer->size());
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    buffer->erase(0, static_cast<size_t>(n));
    return true;
  }
  return errno == EAGAIN;
}

// Waits until the process exited, killing it first when `kill_first`.
void AwaitExit(pid_t pid, const ExitEvent& exit, bool kill_first) {
  if (kill_first) {
    ::kill(pid, SIGKILL);
  }
  struct pollfd p = {exit.fd(), POLLIN, 0};
  (void)::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kKillWait)));
}

// Copies between an exec session's terminal and the client's descriptors
// until the process has exited and the terminal delivered its last output.
// False when the caller went away first (the process is then killed).
bool RelayTerminal(pid_t pid, const ExitEvent& exit, int terminal, UniqueFd in, UniqueFd out,
                   int conn_fd) {
  SetNonBlocking(terminal);
  SetNonBlocking(in.get());
  SetNonBlocking(out.get());
  std::string to_terminal;
  std::string to_client;
  bool terminal_open = true;
  bool exited = false;
  absl::Time drain_deadline = absl::InfiniteFuture();
  for (;;) {
    if (!out.valid()) {
      to_client.clear();
    }
    bool drained = !terminal_open || absl::Now() >= drain_deadline;
    if (exited && drained && (to_client.empty() || absl::Now() >= drain_deadline + kKillWait)) {
      return true;
    }
    int16_t terminal_events = 0;
    if (terminal_open && !to_terminal.empty()) {
      terminal_events |= POLLOUT;
    }
    if (terminal_open && to_client.empty() && !drained) {
      terminal_events |= POLLIN;
    }
    struct pollfd fds[5] = {
        {in.valid() && to_terminal.empty() && terminal_open ? in.get() : -1, POLLIN, 0},
        {terminal_events != 0 ? terminal : -1, terminal_events, 0},
        {!to_client.empty() ? out.get() : -1, POLLOUT, 0},
        {exited ? -1 : exit.fd(), POLLIN, 0},
        {conn_fd, POLLIN, 0},
    };
    int n = ::poll(fds, 5, PollTimeout(drain_deadline));
    if (n < 0 && errno != EINTR) {
      log::Error("exec session: poll: {}", std::strerror(errno));
      AwaitExit(pid, exit, !exited);
      return false;
    }
    if (n <= 0) {
      continue;
    }
    if (fds[4].revents != 0) {
      // The caller sends nothing after the request: readable means gone.
      AwaitExit(pid, exit, !exited);
      return false;
    }
    if (fds[3].revents != 0) {
      exited = true;
      drain_deadline = absl::Now() + kTerminalGrace;
    }
    if (fds[0].revents != 0 && !ReadInto(in.get(), &to_terminal)) {
      // The client closed stdin: what a typed ^D does on a terminal.
      in.reset();
      to_terminal.push_back('\x04');
    }
    if ((fds[1].revents & POLLOUT) != 0 && !WriteFrom(terminal, &to_terminal)) {
      to_terminal.clear();
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      // EIO once the process side of the terminal is closed.
      if (!ReadInto(terminal, &to_client)) {
        terminal_open = false;
        to_terminal.clear();
        in.reset();
      }
    }
    if (fds[2].revents != 0 && !WriteFrom(out.get(), &to_client)) {
      out.reset();
    }
  }
}

// A session's stdio: the descriptors passed with the request, in the order
// stdin, stdout, stderr, one for each stream the request asks for.
struct SessionStdio {
  UniqueFd in;
  UniqueFd out;
  UniqueFd err;
};

absl::StatusOr<SessionStdio> TakeStdio(bool in, bool out, bool err, std::vector<UniqueFd> fds) {
  size_t expected = static_cast<size_t>(in) + static_cast<size_t>(out) + static_cast<size_t>(err);
  if (fds.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", expected, " descriptors with the request, got ", fds.size()));
  }
  SessionStdio stdio;
  auto next = fds.begin();
  for (auto [wanted, into] :
       {std::pair{in, &stdio.in}, std::pair{out, &stdio.out}, std::pair{err, &stdio.err}}) {
    if (wanted) {
      *into = std::move(*next++);
    }
  }
  return stdio;
}

}  // namespace

absl::Status ShimService::ExecStream(const ExecStreamRequest& request, std::vector<UniqueFd> fds,
                                     int conn_fd, ExecStreamResponse* response) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.session_id(), "session_id"));
  if (request.args().empty() || request.args(0).empty()) {
    return absl::InvalidArgumentError("args: a command is required");
  }
  if (request.tty() && request.stderr()) {
    return absl::InvalidArgumentError(
        "stderr: must be false with tty (the terminal carries both streams)");
  }
  CRID_ASSIGN_OR_RETURN(SessionStdio stdio_fds, TakeStdio(request.stdin(), request.stdout(),
                                                          request.stderr(), std::move(fds)));
  UniqueFd in = std::move(stdio_fds.in);
  UniqueFd out = std::move(stdio_fds.out);
  UniqueFd err = std::move(stdio_fds.err);

  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status != ContainerState::RUNNING || c->finished_ns != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " is not running"));
    }
  }

  std::string session_key = absl::StrCat(request.id(), "/", request.session_id());
  if (request.tty()) {
    absl::MutexLock lock(&sessions_mu_);
    absl::Time now = absl::Now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      bool stale = !it->second.running && now - it->second.touched > kPendingSizeLifetime;
      it = stale ? sessions_.erase(it) : std::next(it);
    }
    Session& session = sessions_[session_key];
    if (session.running) {
      return absl::AlreadyExistsError(
          absl::StrCat("session_id: ", request.session_id(), " is already running"));
    }
    if (sessions_.size() > kMaxSessions) {
      sessions_.erase(session_key);
      return absl::ResourceExhaustedError("too many exec sessions with a terminal");
    }
    session.running = true;
    session.touched = now;
  }
  auto end_session = [&] {
    if (request.tty()) {
      absl::MutexLock lock(&sessions_mu_);
      sessions_.erase(session_key);
    }
  };

  OciStdio stdio;
  std::optional<ConsoleSocket> console;
  if (request.tty()) {
    absl::StatusOr<ConsoleSocket> socket = ConsoleSocket::Listen(dir_);
    if (!socket.ok()) {
      end_session();
      return socket.status();
    }
    console.emplace(std::move(*socket));
    stdio.console_socket = console->path();
  } else {
    stdio.in = in.get();
    stdio.out = out.get();
    stdio.err = err.get();
  }
  std::vector<std::string> args(request.args().begin(), request.args().end());
  absl::StatusOr<pid_t> pid = StartExec(request.id(), args, request.tty(), stdio);
  if (!pid.ok()) {
    end_session();
    return pid.status();
  }
  std::shared_ptr<ExitEvent> exit = ExitEvent::Watch(reaper_, *pid);
  bool completed = true;
  if (request.tty()) {
    absl::StatusOr<UniqueFd> master = console->ReceiveMaster();
    if (!master.ok()) {
      AwaitExit(*pid, *exit, /*kill_first=*/true);
      end_session();
      return master.status();
    }
    auto terminal = std::make_shared<UniqueFd>(std::move(*master));
    {
      absl::MutexLock lock(&sessions_mu_);
      Session& session = sessions_[session_key];
      session.terminal = terminal;
      if (session.width != 0 || session.height != 0) {
        (void)SetWindowSize(terminal->get(), session.width, session.height);
      }
    }
    completed = RelayTerminal(*pid, *exit, terminal->get(), std::move(in), std::move(out), conn_fd);
  } else {
    // The process holds the client's descriptors itself; drop ours so the
    // client sees EOF once the process (and whatever inherited them) is done.
    in.reset();
    out.reset();
    err.reset();
    struct pollfd fds_wait[2] = {{exit->fd(), POLLIN, 0}, {conn_fd, POLLIN, 0}};
    for (;;) {
      int n = ::poll(fds_wait, 2, -1);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n > 0 && fds_wait[0].revents != 0) {
        break;
      }
      AwaitExit(*pid, *exit, /*kill_first=*/true);
      completed = false;
      break;
    }
  }
  end_session();
  if (!completed) {
    return absl::CancelledError("the caller went away; the process was killed");
  }
  response->set_exit_code(Reaper::ExitCode(exit->status()));
  return absl::OkStatus();
}

absl::Status ShimService::Attach(const AttachRequest& request, std::vector<UniqueFd> fds,
                                 int conn_fd) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  CRID_ASSIGN_OR_RETURN(SessionStdio stdio_fds, TakeStdio(request.stdin(), request.stdout(),
                                                          request.stderr(), std::move(fds)));
  UniqueFd in = std::move(stdio_fds.in);
  UniqueFd out = std::move(stdio_fds.out);
  UniqueFd err = std::move(stdio_fds.err);

  std::string key;
  uint64_t generation = 0;
  uint64_t subscriber = 0;
  std::shared_ptr<UniqueFd> target;  // the container's stdin
  std::shared_ptr<UniqueFd> exited;
  bool stdin_once = false;
  bool tty = false;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status == ContainerState::UNKNOWN) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " is being created"));
    }
    if (c->status == ContainerState::EXITED || c->finished_ns != 0) {
      return absl::FailedPreconditionError(absl::StrCat("container ", request.id(), " has exited"));
    }
    if (request.stdin() && c->stdin_fd == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("stdin: container ", request.id(),
                       " was not created with stdin (or its stdin was closed)"));
    }
    key = c->pump_key();
    generation = c->generation;
    subscriber = next_attach_++;
    if (request.stdin()) {
      target = c->stdin_fd;
    }
    exited = c->exited;
    stdin_once = c->stdin_once;
    tty = c->tty;
  }
  if (tty && err.valid()) {
    err.reset();  // a terminal has one output stream
  }
  auto closed = std::make_shared<UniqueFd>(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  pump_->Subscribe(key, subscriber, std::move(out), std::move(err), closed);
  SetNonBlocking(in.get());

  std::string to_container;
  for (;;) {
    struct pollfd fds_wait[5] = {
        {in.valid() && to_container.empty() ? in.get() : -1, POLLIN, 0},
        {target != nullptr && !to_container.empty() ? target->get() : -1, POLLOUT, 0},
        {exited != nullptr ? exited->get() : -1, POLLIN, 0},
        {closed->get(), POLLIN, 0},
        {conn_fd, POLLIN, 0},
    };
    int n = ::poll(fds_wait, 5, -1);
    if (n < 0 && errno != EINTR) {
      log::Error("attach to {}: poll: {}", request.id(), std::strerror(errno));
      break;
    }
    if (n <= 0) {
      continue;
    }
    if (fds_wait[2].revents != 0 || fds_wait[3].revents != 0 || fds_wait[4].revents != 0) {
      break;  // the container exited, its output ended, the client fell behind or left
    }
    if (fds_wait[0].revents != 0 && !ReadInto(in.get(), &to_container)) {
      in.reset();
      target.reset();
      if (stdin_once) {
        CloseStdin(request.id(), generation);
      }
    }
    if (fds_wait[1].revents != 0 && !WriteFrom(target->get(), &to_container)) {
      // The container closed its stdin.
      to_container.clear();
      target.reset();
      in.reset();
    }
  }
  pump_->Unsubscribe(key, subscriber);
  if (request.stdin() && stdin_once) {
    // stdin_once: the container's stdin ends with its first attach.
    target.reset();
    CloseStdin(request.id(), generation);
  }
  return absl::OkStatus();
}

void ShimService::CloseStdin(const std::string& id, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it != containers_.end() && it->second->generation == generation) {
    // Attaches still holding it let go as they end; then the container reads EOF.
    it->second->stdin_fd.reset();
  }
}

absl::Status ShimService::Resize(const ResizeRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  if (request.width() > 0xffff || request.height() > 0xffff) {
    return absl::InvalidArgumentError("width, height: must be at most 65535");
  }
  auto width = static_cast<uint16_t>(request.width());
  auto height = static_cast<uint16_t>(request.height());
  if (request.session_id().empty()) {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (!c->console_fd.valid()) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " has no terminal"));
    }
    return SetWindowSize(c->console_fd.get(), width, height);
  }
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.session_id(), "session_id"));
  absl::MutexLock lock(&sessions_mu_);
  std::string session_key = absl::StrCat(request.id(), "/", request.session_id());
  auto it = sessions_.find(session_key);
  if (it == sessions_.end()) {
    if (sessions_.size() >= kMaxSessions) {
      return absl::ResourceExhaustedError("too many exec sessions with a terminal");
    }
    it = sessions_.emplace(session_key, Session{}).first;
  }
  Session& session = it->second;
  session.width = width;
  session.height = height;
  session.touched = absl::Now();
  if (session.terminal != nullptr) {
    return SetWindowSize(session.terminal->get(), width, height);
  }
  return absl::OkStatus();
}

}  // namespace crid::shim
