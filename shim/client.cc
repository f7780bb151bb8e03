#include "shim/client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/spawn.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"
#include "shim/frame.h"
#include "shim/sealed_binary.h"

namespace crid::shim {

namespace {

// Ping when connecting, and any call that should be quick.
constexpr absl::Duration kPingTimeout = absl::Seconds(5);
// A Wait's connection lives this much longer than the wait itself, so the
// shim's DEADLINE_EXCEEDED answer arrives rather than a socket timeout.
constexpr absl::Duration kWaitSlack = absl::Seconds(30);
// Exec may take its timeout plus the runtime's own start-up.
constexpr absl::Duration kExecSlack = absl::Minutes(2);
constexpr absl::Duration kShutdownTimeout = absl::Minutes(2);

std::string SocketPath(const std::string& dir) { return dir + "/shim.sock"; }

absl::StatusOr<UniqueFd> Dial(const std::string& dir) {
  std::string path = SocketPath(dir);
  struct sockaddr_un addr = {};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("shim socket path ", path, " is too long"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return ErrnoError(errno, "socket");
  }
  if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return absl::UnavailableError(
        absl::StrCat("no shim answers on ", path, ": ", std::strerror(err)));
  }
  return fd;
}

// A pid counts as gone when no process has it or it is a zombie (its parent,
// init or a subreaper, just has not collected it yet).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) {
    return errno == ESRCH;
  }
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return true;
  }
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
}

absl::Status StatusOf(const Response& response) {
  if (response.code() == 0) {
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(response.code()), response.message());
}

// Starts the shim from the sealed memfd copy of its binary (see
// SealedBinary), in a new session with stdio on /dev/null, detached: init
// (or the nearest subreaper) adopts it at once, so it never becomes crid's
// zombie, survives crid's restart, and no signal sent to crid's process group
// reaches it. Returns the read end of its --ready-fd pipe: one byte arrives
// once the shim listens; end of file without it means the shim exited first
// (failed, or found another shim serving the pod).
absl::StatusOr<UniqueFd> StartShim(const LaunchOptions& options) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd ready_read(ends[0]);
  UniqueFd ready_write(ends[1]);
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<const UniqueFd> sealed,
                        SealedBinary::Shared().Get(options.binary));
  constexpr int kReadyFd = 3;
  SpawnOptions spawn;
  // argv[0] stays the configured path: `crid cleanup`, and whoever looks for
  // shims, know them by their command line.
  spawn.exec_fd = sealed != nullptr ? sealed->get() : -1;
  spawn.argv = {options.binary, "--pod-id",   options.pod_id,          "--dir",
                options.dir,    "--ready-fd", std::to_string(kReadyFd)};
  spawn.cwd = "/";
  spawn.new_session = true;
  spawn.detach = true;
  spawn.extra_fds = {{ready_write.get(), kReadyFd}};
  CRID_RETURN_IF_ERROR(Spawn(spawn).status());
  return ready_read;
}

// Waits until the shim started with `ready` has signalled (true) or exited
// without signalling (false), or `deadline` passes (false).
bool WaitUntilListening(int ready, absl::Time deadline) {
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return false;
    }
    struct pollfd p = {ready, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    char byte = 0;
    ssize_t got = ::read(ready, &byte, 1);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    return got == 1;
  }
}

// A session request passes one descriptor per stream it asks for.
absl::Status CheckFdCount(bool in, bool out, bool err, size_t passed) {
  size_t expected = static_cast<size_t>(in) + static_cast<size_t>(out) + static_cast<size_t>(err);
  if (passed != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request asks for ", expected, " stdio descriptors, but ", passed, " were given"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShimClient>> ShimClient::Connect(const std::string& dir) {
  std::unique_ptr<ShimClient> client(new ShimClient(dir, 0));
  Request request;
  request.mutable_ping();
  CRID_ASSIGN_OR_RETURN(Response response, client->Call(request, kPingTimeout));
  client->pid_ = response.ping().pid();
  return client;
}

namespace {

absl::Status CheckLaunchOptions(const LaunchOptions& options) {
  if (options.binary.empty() || options.binary[0] != '/') {
    return absl::InvalidArgumentError("binary: must be an absolute path");
  }
  if (options.dir.empty() || options.dir[0] != '/') {
    return absl::InvalidArgumentError("dir: must be an absolute path");
  }
  if (options.pod_id.empty()) {
    return absl::InvalidArgumentError("pod_id: must not be empty");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShimClient>> ShimClient::Launch(const LaunchOptions& options) {
  CRID_RETURN_IF_ERROR(CheckLaunchOptions(options));
  absl::StatusOr<std::unique_ptr<ShimClient>> client = Connect(options.dir);
  if (client.ok()) {
    return client;
  }
  CRID_ASSIGN_OR_RETURN(PendingLaunch pending, BeginLaunch(options));
  return FinishLaunch(std::move(pending));
}

absl::StatusOr<PendingLaunch> ShimClient::BeginLaunch(const LaunchOptions& options) {
  CRID_RETURN_IF_ERROR(CheckLaunchOptions(options));
  CRID_RETURN_IF_ERROR(MakeDirs(options.dir, 0700));
  PendingLaunch pending;
  pending.options = options;
  CRID_ASSIGN_OR_RETURN(pending.ready, StartShim(options));
  return pending;
}

absl::StatusOr<std::unique_ptr<ShimClient>> ShimClient::FinishLaunch(PendingLaunch pending) {
  const LaunchOptions& options = pending.options;
  // No polling of the socket: the shim says when it listens. A shim that
  // exits first may have found another one serving the pod, so connect
  // either way.
  const bool listening =
      WaitUntilListening(pending.ready.get(), absl::Now() + options.start_timeout);
  absl::StatusOr<std::unique_ptr<ShimClient>> client = Connect(options.dir);
  if (client.ok()) {
    return client;
  }
  std::string log = ReadFile(options.dir + "/shim.log").value_or("");
  if (log.size() > 512) {
    log = log.substr(log.size() - 512);
  }
  return absl::UnavailableError(
      absl::StrCat("crid-shim for pod ", options.pod_id,
                   listening ? absl::StrCat(" does not answer: ", client.status().message())
                             : absl::StrCat(" exited or did not listen within ",
                                            absl::FormatDuration(options.start_timeout)),
                   log.empty() ? "" : "; its log ends: ", log));
}

absl::StatusOr<Response> ShimClient::Call(const Request& request, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, Dial(dir_));
  CRID_RETURN_IF_ERROR(WriteFrame(fd.get(), request, deadline));
  Response response;
  absl::Status st = ReadFrame(fd.get(), &response, deadline);
  if (!st.ok()) {
    return Annotate(st, "shim");
  }
  CRID_RETURN_IF_ERROR(StatusOf(response));
  return response;
}

absl::StatusOr<UniqueFd> ShimClient::Subscribe() {
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, Dial(dir_));
  Request request;
  request.mutable_subscribe();
  CRID_RETURN_IF_ERROR(WriteFrame(fd.get(), request, absl::Now() + kPingTimeout));
  return fd;
}

absl::StatusOr<Response> ShimClient::CallSession(const Request& request,
                                                 const std::vector<int>& fds, int cancel_fd) {
  CRID_ASSIGN_OR_RETURN(UniqueFd fd, Dial(dir_));
  CRID_RETURN_IF_ERROR(WriteFrame(fd.get(), request, absl::Now() + kPingTimeout));
  if (!fds.empty()) {
    CRID_RETURN_IF_ERROR(SendFds(fd.get(), fds, absl::Now() + kPingTimeout));
  }
  for (;;) {
    struct pollfd p[2] = {{fd.get(), POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno != EINTR) {
      return ErrnoError(errno, "poll shim connection");
    }
    if (n <= 0) {
      continue;
    }
    if (p[0].revents != 0) {
      break;
    }
    if (p[1].revents != 0) {
      return absl::CancelledError("the session was ended by its client");
    }
  }
  Response response;
  absl::Status st = ReadFrame(fd.get(), &response, absl::Now() + kPingTimeout);
  if (!st.ok()) {
    return Annotate(st, "shim");
  }
  CRID_RETURN_IF_ERROR(StatusOf(response));
  return response;
}

absl::StatusOr<int> ShimClient::ExecStream(const ExecStreamRequest& request,
                                           const std::vector<int>& fds, int cancel_fd) {
  CRID_RETURN_IF_ERROR(
      CheckFdCount(request.stdin(), request.stdout(), request.stderr(), fds.size()));
  Request r;
  *r.mutable_exec_stream() = request;
  CRID_ASSIGN_OR_RETURN(Response response, CallSession(r, fds, cancel_fd));
  return response.exec_stream().exit_code();
}

absl::Status ShimClient::Attach(const AttachRequest& request, const std::vector<int>& fds,
                                int cancel_fd) {
  CRID_RETURN_IF_ERROR(
      CheckFdCount(request.stdin(), request.stdout(), request.stderr(), fds.size()));
  Request r;
  *r.mutable_attach() = request;
  return CallSession(r, fds, cancel_fd).status();
}

absl::Status ShimClient::Resize(const std::string& id, const std::string& session_id,
                                uint16_t width, uint16_t height) {
  Request r;
  r.mutable_resize()->set_id(id);
  r.mutable_resize()->set_session_id(session_id);
  r.mutable_resize()->set_width(width);
  r.mutable_resize()->set_height(height);
  return Call(r, kPingTimeout).status();
}

absl::StatusOr<pid_t> ShimClient::Create(const CreateRequest& request) {
  Request r;
  *r.mutable_create() = request;
  CRID_ASSIGN_OR_RETURN(Response response, Call(r));
  return response.create().pid();
}

absl::Status ShimClient::Start(const std::string& id) {
  Request r;
  r.mutable_start()->set_id(id);
  return Call(r).status();
}

absl::Status ShimClient::Kill(const std::string& id, int signal, bool all) {
  Request r;
  r.mutable_kill()->set_id(id);
  r.mutable_kill()->set_signal(signal);
  r.mutable_kill()->set_all(all);
  return Call(r).status();
}

absl::StatusOr<ContainerState> ShimClient::Wait(const std::string& id, absl::Duration timeout) {
  Request r;
  r.mutable_wait()->set_id(id);
  int64_t ms = timeout == absl::InfiniteDuration() ? std::numeric_limits<int64_t>::max() / 2
                                                   : absl::ToInt64Milliseconds(timeout);
  r.mutable_wait()->set_timeout_ms(ms);
  CRID_ASSIGN_OR_RETURN(Response response, Call(r, timeout + kWaitSlack));
  return response.state();
}

absl::Status ShimClient::Delete(const std::string& id) {
  Request r;
  r.mutable_delete_()->set_id(id);
  return Call(r).status();
}

absl::StatusOr<ContainerState> ShimClient::State(const std::string& id) {
  Request r;
  r.mutable_state()->set_id(id);
  CRID_ASSIGN_OR_RETURN(Response response, Call(r, kPingTimeout));
  return response.state();
}

absl::StatusOr<std::vector<ContainerState>> ShimClient::List() {
  Request r;
  r.mutable_state();
  CRID_ASSIGN_OR_RETURN(Response response, Call(r, kPingTimeout));
  return std::vector<ContainerState>(response.states().containers().begin(),
                                     response.states().containers().end());
}

absl::StatusOr<ExecResponse> ShimClient::Exec(const ExecRequest& request) {
  Request r;
  *r.mutable_exec() = request;
  absl::Duration timeout = request.timeout_ms() > 0
                               ? absl::Milliseconds(request.timeout_ms()) + kExecSlack
                               : absl::InfiniteDuration();
  CRID_ASSIGN_OR_RETURN(Response response, Call(r, timeout));
  return response.exec();
}

absl::Status ShimClient::ReopenLog(const std::string& id) {
  Request r;
  r.mutable_reopen_log()->set_id(id);
  return Call(r).status();
}

absl::Status ShimClient::Update(const std::string& id, const std::string& resources_json) {
  Request r;
  r.mutable_update()->set_id(id);
  r.mutable_update()->set_resources_json(resources_json);
  return Call(r).status();
}

absl::Status ShimClient::Shutdown() {
  Request r;
  r.mutable_shutdown();
  absl::StatusOr<Response> response = Call(r, kShutdownTimeout);
  if (!response.ok() && !absl::IsUnavailable(response.status())) {
    return response.status();
  }
  if (pid_ <= 0) {
    return absl::OkStatus();
  }
  absl::Time deadline = absl::Now() + kShutdownTimeout;
  while (!ProcessGone(pid_)) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("crid-shim (pid ", pid_, ") still runs after shutdown"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerState> ShimClient::ReadExitRecord(const std::string& dir,
                                                          const std::string& id) {
  if (id.empty() || absl::StrContains(id, '/') || id == "." || id == "..") {
    return absl::InvalidArgumentError(absl::StrCat("id: \"", id, "\" is not a container ID"));
  }
  std::string path = absl::StrCat(dir, "/exits/", id, ".json");
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json record = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!record.is_object() || !record.contains("exit_code")) {
    return absl::DataLossError(absl::StrCat(path, ": not an exit record"));
  }
  ContainerState state;
  state.set_id(id);
  state.set_status(ContainerState::EXITED);
  state.set_pid(record.value("pid", 0));
  state.set_exit_code(record.value("exit_code", 0));
  state.set_oom_killed(record.value("oom_killed", false));
  state.set_created_at_ns(record.value("created_at_ns", int64_t{0}));
  state.set_started_at_ns(record.value("started_at_ns", int64_t{0}));
  state.set_finished_at_ns(record.value("finished_at_ns", int64_t{0}));
  state.set_log_path(record.value("log_path", ""));
  return state;
}

absl::StatusOr<PingResponse> ShimClient::Ping() {
  Request r;
  r.mutable_ping();
  CRID_ASSIGN_OR_RETURN(Response response, Call(r, kPingTimeout));
  pid_ = response.ping().pid();
  return response.ping();
}

}  // namespace crid::shim
