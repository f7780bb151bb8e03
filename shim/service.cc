#include "shim/service.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "nlohmann/json.hpp"
#include "oci/native_start.h"
#include "shim/console.h"
#include "shim/frame.h"
#include "shim/log.h"
#include "shim/oom.h"

namespace crid::shim {

namespace {

// How long output may still arrive after a process exited (see IoPump::Drain).
constexpr absl::Duration kOutputGrace = absl::Milliseconds(500);
// Subscribe streams: how many exits are kept for a subscriber that is behind,
// and how long one may take to read an event before it is dropped.
constexpr size_t kEventBacklog = 1024;
constexpr absl::Duration kEventWriteTimeout = absl::Seconds(30);
// ExecSync output limit when the request names none: both streams together
// must fit in one response frame.
constexpr int64_t kDefaultExecOutputBytes = int64_t{4} << 20;
constexpr int64_t kMaxExecOutputBytes = (static_cast<int64_t>(kMaxFrameBytes) - 4096) / 2;

// The runtime binary is runc: the native exec and start reproduce runc's;
// crun and others may differ in details, so they keep their own.
bool IsRunc(const OciRuntimeConfig& runtime) {
  absl::string_view binary = runtime.binary;
  size_t slash = binary.rfind('/');
  return (slash == absl::string_view::npos ? binary : binary.substr(slash + 1)) == "runc";
}

absl::Status PipeCloexec(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return absl::OkStatus();
}

OciRuntimeConfig RuntimeConfig(const Runtime& runtime) {
  OciRuntimeConfig config;
  config.name = runtime.name().empty() ? "runtime" : runtime.name();
  config.binary = runtime.binary();
  config.root = runtime.root();
  config.systemd_cgroup = runtime.systemd_cgroup();
  return config;
}

absl::Status ValidateRuntime(const Runtime& runtime) {
  if (runtime.binary().empty() || runtime.binary()[0] != '/') {
    return absl::InvalidArgumentError("runtime.binary: must be an absolute path");
  }
  if (runtime.root().empty() || runtime.root()[0] != '/') {
    return absl::InvalidArgumentError("runtime.root: must be an absolute path");
  }
  return absl::OkStatus();
}

const char* StatusName(ContainerState::Status status) {
  switch (status) {
    case ContainerState::CREATED:
      return "created";
    case ContainerState::RUNNING:
      return "running";
    case ContainerState::EXITED:
      return "exited";
    default:
      return "being set up";
  }
}

}  // namespace

absl::Status ValidateContainerId(const std::string& id, absl::string_view field) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be 1 to 128 characters"));
  }
  if (id == "." || id == "..") {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", id, "\" is not a valid ID"));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only letters, digits, '_', '-' and '.' are allowed"));
    }
  }
  return absl::OkStatus();
}

std::string ShimService::Container::pump_key() const { return absl::StrCat(id, "/", generation); }

ShimService::ShimService(std::string dir, Reaper* reaper, IoPump* pump, CgroupLayout layout)
    : dir_(std::move(dir)), reaper_(reaper), pump_(pump), layout_(std::move(layout)) {}

std::string ShimService::ExitRecordPath(const std::string& id) const {
  return absl::StrCat(dir_, "/exits/", id, ".json");
}

bool ShimService::shutdown_requested() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

absl::StatusOr<ShimService::Container*> ShimService::Find(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return absl::NotFoundError(absl::StrCat("container ", id, " not found in the shim"));
  }
  return it->second.get();
}

void ShimService::FillState(const Container& c, ContainerState* state) {
  state->set_id(c.id);
  state->set_status(c.status);
  state->set_pid(c.pid);
  state->set_created_at_ns(c.created_ns);
  state->set_started_at_ns(c.started_ns);
  state->set_finished_at_ns(c.finished_ns);
  state->set_exit_code(c.exit_code);
  state->set_oom_killed(c.oom_killed);
  state->set_log_path(c.log_path);
}

size_t ShimService::PassedFdCount(const Request& request) {
  auto count = [](bool in, bool out, bool err) {
    return static_cast<size_t>(in) + static_cast<size_t>(out) + static_cast<size_t>(err);
  };
  switch (request.kind_case()) {
    case Request::kExecStream:
      return count(request.exec_stream().stdin(), request.exec_stream().stdout(),
                   request.exec_stream().stderr());
    case Request::kAttach:
      return count(request.attach().stdin(), request.attach().stdout(), request.attach().stderr());
    default:
      return 0;
  }
}

Response ShimService::Handle(const Request& request, std::vector<UniqueFd> fds, int conn_fd) {
  Response response;
  absl::Status st;
  switch (request.kind_case()) {
    case Request::kCreate:
      st = Create(request.create(), response.mutable_create());
      break;
    case Request::kStart:
      st = Start(request.start());
      break;
    case Request::kKill:
      st = Kill(request.kill());
      break;
    case Request::kWait:
      st = Wait(request.wait(), response.mutable_state());
      break;
    case Request::kDelete:
      st = ValidateContainerId(request.delete_().id(), "id");
      if (st.ok()) {
        st = Delete(request.delete_().id());
      }
      break;
    case Request::kState:
      st = State(request.state(), &response);
      break;
    case Request::kExec:
      st = Exec(request.exec(), response.mutable_exec());
      break;
    case Request::kReopenLog:
      st = ReopenLog(request.reopen_log());
      break;
    case Request::kUpdate:
      st = Update(request.update());
      break;
    case Request::kShutdown: {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
    }
      DeleteAll();
      break;
    case Request::kExecStream:
      st = ExecStream(request.exec_stream(), std::move(fds), conn_fd,
                      response.mutable_exec_stream());
      break;
    case Request::kAttach:
      st = Attach(request.attach(), std::move(fds), conn_fd);
      break;
    case Request::kResize:
      st = Resize(request.resize());
      break;
    case Request::kPing:
      response.mutable_ping()->set_pid(::getpid());
      response.mutable_ping()->set_version(kShimVersion);
      break;
    default:
      st = absl::InvalidArgumentError("request: no known operation set");
  }
  if (!st.ok()) {
    response.Clear();
    response.set_code(static_cast<int>(st.code()));
    response.set_message(std::string(st.message()));
  }
  return response;
}

absl::Status ShimService::Create(const CreateRequest& request, CreateResponse* response) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  if (request.bundle().empty() || request.bundle()[0] != '/') {
    return absl::InvalidArgumentError("bundle: must be an absolute path");
  }
  CRID_RETURN_IF_ERROR(ValidateRuntime(request.runtime()));
  if (!request.log_path().empty() && request.log_path()[0] != '/') {
    return absl::InvalidArgumentError("log_path: must be an absolute path");
  }
  if (!request.checkpoint_dir().empty() && request.checkpoint_dir()[0] != '/') {
    return absl::InvalidArgumentError("checkpoint_dir: must be an absolute path");
  }
  const bool restore = !request.checkpoint_dir().empty();
  const std::string& id = request.id();
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) {
      return absl::FailedPreconditionError("the shim is shutting down");
    }
    if (containers_.count(id) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("container ", id, " already exists"));
    }
    // Reserved while the runtime works, so a second Create of the ID fails.
    auto c = std::make_unique<Container>();
    c->id = id;
    c->generation = generation = next_generation_++;
    c->busy = true;
    containers_[id] = std::move(c);
  }
  auto unreserve = [&] {
    absl::MutexLock lock(&mu_);
    containers_.erase(id);
    changed_.SignalAll();
  };

  std::shared_ptr<CriLogWriter> log;
  if (!request.log_path().empty()) {
    absl::StatusOr<std::unique_ptr<CriLogWriter>> writer =
        CriLogWriter::Open(request.log_path(), {});
    if (!writer.ok()) {
      unreserve();
      return Annotate(writer.status(), "log_path");
    }
    log = std::move(*writer);
  }

  OciStdio stdio;
  UniqueFd out_read, out_write, err_read, err_write, in_read, in_write;
  std::optional<ConsoleSocket> console;
  absl::Status st;
  if (request.tty()) {
    absl::StatusOr<ConsoleSocket> socket = ConsoleSocket::Listen(dir_);
    if (socket.ok()) {
      console.emplace(std::move(*socket));
      stdio.console_socket = console->path();
    }
    st = socket.status();
  } else {
    st = PipeCloexec(&out_read, &out_write);
    if (st.ok()) {
      st = PipeCloexec(&err_read, &err_write);
    }
    if (st.ok() && request.stdin()) {
      st = PipeCloexec(&in_read, &in_write);
    }
    stdio.in = in_read.get();
    stdio.out = out_write.get();
    stdio.err = err_write.get();
  }
  if (!st.ok()) {
    unreserve();
    return st;
  }

  OciRuntime runtime(RuntimeConfig(request.runtime()), reaper_);
  int64_t created_ns = absl::GetCurrentTimeNanos();
  const absl::Time runtime_started = absl::Now();
  absl::StatusOr<pid_t> pid =
      restore ? runtime.Restore(id, request.bundle(), request.checkpoint_dir() + "/checkpoint",
                                request.checkpoint_dir(), stdio)
              : runtime.Create(id, request.bundle(), stdio);
  const absl::Duration runtime_took = absl::Now() - runtime_started;
  // Only the container holds its ends now, so EOF means it (and every process
  // that inherited them) is gone.
  out_write.reset();
  err_write.reset();
  in_read.reset();
  std::vector<IoPump::Source> sources;
  UniqueFd console_fd;
  if (pid.ok() && console.has_value()) {
    absl::StatusOr<UniqueFd> master = console->ReceiveMaster();
    if (master.ok()) {
      // Stdin, when asked for, is written to the terminal too.
      if (request.stdin()) {
        in_write.reset(::fcntl(master->get(), F_DUPFD_CLOEXEC, 0));
      }
      // Kept for Resize.
      console_fd.reset(::fcntl(master->get(), F_DUPFD_CLOEXEC, 0));
      sources.push_back({std::move(*master), LogStream::kStdout});
    } else {
      pid = master.status();
    }
  } else if (pid.ok()) {
    sources.push_back({std::move(out_read), LogStream::kStdout});
    sources.push_back({std::move(err_read), LogStream::kStderr});
  }
  if (!pid.ok()) {
    // Leave nothing behind: a failed create may have left the runtime's record.
    (void)runtime.Delete(id, /*force=*/true);
    unreserve();
    return pid.status();
  }

  std::string memory_cgroup;
  if (absl::StatusOr<std::string> cgroups = ReadFile(absl::StrCat("/proc/", *pid, "/cgroup"));
      cgroups.ok()) {
    memory_cgroup = MemoryCgroupDir(layout_, *cgroups);
  }
  std::optional<uint64_t> oom_kills = ReadOomKills(memory_cgroup);
  std::string key;
  {
    absl::MutexLock lock(&mu_);
    Container* c = containers_[id].get();
    c->runtime = runtime.config();
    c->runtime_exec_only = request.runtime().runtime_exec_only();
    c->bundle = request.bundle();
    c->log_path = request.log_path();
    c->tty = request.tty();
    c->pid = *pid;
    c->status = restore ? ContainerState::RUNNING : ContainerState::CREATED;
    c->created_ns = created_ns;
    if (restore) {
      c->started_ns = absl::GetCurrentTimeNanos();
    }
    c->memory_cgroup = memory_cgroup;
    c->oom_kills_at_create = oom_kills;
    if (in_write.valid()) {
      ::fcntl(in_write.get(), F_SETFL, ::fcntl(in_write.get(), F_GETFL) | O_NONBLOCK);
      c->stdin_fd = std::make_shared<UniqueFd>(std::move(in_write));
    }
    c->stdin_once = request.stdin_once();
    c->console_fd = std::move(console_fd);
    c->exited = std::make_shared<UniqueFd>(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    // Taken before the reaper watches the pid, so it cannot name a reused pid.
    c->pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
    c->log = log;
    c->busy = false;
    key = c->pump_key();
  }
  pump_->Add(key, std::move(sources), std::move(log));
  reaper_->Watch(*pid, [this, id, generation](int status) { OnInitExit(id, generation, status); });
  log::Info("container {} {}, pid {} ({} {} took {:.1f} ms)", id, restore ? "restored" : "created",
            *pid, runtime.config().name, restore ? "restore" : "create",
            absl::ToDoubleMilliseconds(runtime_took));
  response->set_pid(*pid);
  return absl::OkStatus();
}

void ShimService::OnInitExit(const std::string& id, uint64_t generation, int status) {
  int64_t now = absl::GetCurrentTimeNanos();
  std::string memory_cgroup;
  std::optional<uint64_t> before;
  std::string key;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second->generation != generation) {
      return;
    }
    Container& c = *it->second;
    c.finished_ns = now;
    c.exit_code = Reaper::ExitCode(status);
    memory_cgroup = c.memory_cgroup;
    before = c.oom_kills_at_create;
    key = c.pump_key();
  }
  // The cgroup stays until the runtime deletes the container, so the counter
  // is still there to read.
  std::optional<uint64_t> after = ReadOomKills(memory_cgroup);
  bool oom_killed = before.has_value() && after.has_value() && *after > *before;
  pump_->Drain(key, kOutputGrace,
               [this, id, generation, oom_killed] { Finish(id, generation, oom_killed); });
}

void ShimService::Finish(const std::string& id, uint64_t generation, bool oom_killed) {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end() || it->second->generation != generation) {
    return;
  }
  Container& c = *it->second;
  c.oom_killed = oom_killed;
  c.status = ContainerState::EXITED;
  WriteExitRecord(c);
  SignalExited(c);
  AppendEvent(c);
  log::Info("container {} exited with {}{}", id, c.exit_code, oom_killed ? " (OOM killed)" : "");
  changed_.SignalAll();
}

void ShimService::AppendEvent(const Container& c) {
  ContainerState state;
  FillState(c, &state);
  events_.emplace_back(++last_event_, std::move(state));
  while (events_.size() > kEventBacklog) {
    events_.pop_front();
  }
}

namespace {

// Whether the peer of a stream connection has closed it (or it broke).
bool PeerGone(int fd) {
  struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) {
    return false;
  }
  if ((p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) {
    return true;
  }
  char byte;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

}  // namespace

void ShimService::Subscribe(int conn_fd) {
  uint64_t seen = 0;
  bool snapshot = true;
  while (!PeerGone(conn_fd)) {
    std::vector<Response> batch;
    {
      absl::MutexLock lock(&mu_);
      if (!snapshot && last_event_ == seen && !shutdown_) {
        changed_.WaitWithTimeout(&mu_, absl::Seconds(1));
      }
      if (shutdown_) {
        return;
      }
      // Events the subscriber would miss: it gets the whole picture again.
      if (!snapshot && !events_.empty() && events_.front().first > seen + 1) {
        snapshot = true;
      }
      if (snapshot) {
        StateList* list = batch.emplace_back().mutable_states();
        for (const auto& [id, c] : containers_) {
          FillState(*c, list->add_containers());
        }
        seen = last_event_;
        snapshot = false;
      } else {
        for (const auto& [seq, state] : events_) {
          if (seq > seen) {
            *batch.emplace_back().mutable_event()->mutable_state() = state;
          }
        }
        seen = last_event_;
      }
    }
    for (const Response& r : batch) {
      if (!WriteFrame(conn_fd, r, absl::Now() + kEventWriteTimeout).ok()) {
        return;
      }
    }
  }
}

void ShimService::SignalExited(const Container& c) {
  if (c.exited != nullptr && c.exited->valid()) {
    uint64_t one = 1;
    (void)!::write(c.exited->get(), &one, sizeof(one));
  }
}

void ShimService::WriteExitRecord(const Container& c) {
  nlohmann::json record = {
      {"id", c.id},
      {"pid", c.pid},
      {"exit_code", c.exit_code},
      {"oom_killed", c.oom_killed},
      {"created_at_ns", c.created_ns},
      {"started_at_ns", c.started_ns},
      {"finished_at_ns", c.finished_ns},
      {"log_path", c.log_path},
  };
  absl::Status st = MakeDirs(dir_ + "/exits", 0700);
  if (st.ok()) {
    st = WriteFileAtomic(ExitRecordPath(c.id), record.dump(), 0600);
  }
  if (!st.ok()) {
    log::Error("container {}: exit record: {}", c.id, st);
  }
}

absl::Status ShimService::Start(const StartRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  OciRuntimeConfig config;
  uint64_t generation = 0;
  bool runtime_only = false;
  UniqueFd init;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->busy || c->status != ContainerState::CREATED) {
      return absl::FailedPreconditionError(absl::StrCat("container ", request.id(), " is ",
                                                        c->busy ? "busy" : StatusName(c->status),
                                                        ", not created"));
    }
    c->busy = true;
    // Set before the runtime starts it: the container may exit (and its exit
    // record be written) before Start returns.
    c->started_ns = absl::GetCurrentTimeNanos();
    config = c->runtime;
    generation = c->generation;
    runtime_only = c->runtime_exec_only;
    if (c->pidfd.valid()) {
      init.reset(::fcntl(c->pidfd.get(), F_DUPFD_CLOEXEC, 0));
    }
  }
  // runc containers are started as `runc start` starts them, without its
  // start-up (oci/native_start.h); other runtimes, or crid's
  // container.native_exec turned off, run the runtime's own start.
  const bool native = IsRunc(config) && !runtime_only && init.valid();
  absl::Status st = native ? NativeStart(config.root, request.id(), init.get(), config.timeout)
                           : absl::OkStatus();
  if (!native || absl::IsNotFound(st)) {
    // Also when runc's state is not where it was expected: the runtime
    // itself answers then.
    st = OciRuntime(config, reaper_).Start(request.id());
  }
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(request.id());
  if (it != containers_.end() && it->second->generation == generation) {
    Container& c = *it->second;
    c.busy = false;
    if (!st.ok() && c.status != ContainerState::EXITED) {
      c.started_ns = 0;
    } else if (st.ok() && c.status == ContainerState::CREATED) {
      c.status = ContainerState::RUNNING;
    }
  }
  return st;
}

absl::Status ShimService::Kill(const KillRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  if (request.signal() <= 0 || request.signal() >= NSIG) {
    return absl::InvalidArgumentError(absl::StrCat("signal: ", request.signal(), " is no signal"));
  }
  OciRuntimeConfig config;
  UniqueFd init;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status == ContainerState::UNKNOWN) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " is being created"));
    }
    if (c->status == ContainerState::EXITED) {
      return absl::OkStatus();
    }
    config = c->runtime;
    if (request.all() && request.signal() == SIGKILL && c->pidfd.valid()) {
      init.reset(::fcntl(c->pidfd.get(), F_DUPFD_CLOEXEC, 0));
    }
  }
  absl::Status st = OciRuntime(config, reaper_).Kill(request.id(), request.signal(), request.all());
  if (st.ok() && init.valid()) {
    // `kill --all` signals what the runtime finds in the container's cgroup;
    // the init is killed for certain, through its pidfd (no PID reuse race),
    // and with it its PID namespace. ESRCH: it is already gone.
    (void)::syscall(SYS_pidfd_send_signal, init.get(), SIGKILL, nullptr, 0);
  }
  if (!st.ok()) {
    // The init may have exited while the runtime ran: nothing left to signal.
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(request.id());
    if (it == containers_.end() || it->second->finished_ns != 0) {
      return absl::OkStatus();
    }
  }
  return st;
}

absl::Status ShimService::Wait(const WaitRequest& request, ContainerState* state) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  absl::Time deadline =
      absl::Now() + absl::Milliseconds(std::max<int64_t>(0, request.timeout_ms()));
  absl::MutexLock lock(&mu_);
  for (;;) {
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status == ContainerState::EXITED) {
      FillState(*c, state);
      return absl::OkStatus();
    }
    if (changed_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) {
      CRID_ASSIGN_OR_RETURN(c, Find(request.id()));
      if (c->status == ContainerState::EXITED) {
        FillState(*c, state);
        return absl::OkStatus();
      }
      return absl::DeadlineExceededError(
          absl::StrCat("container ", request.id(), " is still ", StatusName(c->status), " after ",
                       absl::FormatDuration(absl::Milliseconds(request.timeout_ms()))));
    }
  }
}

absl::Status ShimService::Delete(const std::string& id) {
  OciRuntimeConfig config;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) {
      return absl::OkStatus();
    }
    if (it->second->busy) {
      return absl::FailedPreconditionError(absl::StrCat("container ", id, " is busy"));
    }
    it->second->busy = true;
    config = it->second->runtime;
    generation = it->second->generation;
  }
  absl::Status st = OciRuntime(config, reaper_).Delete(id, /*force=*/true);
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end() || it->second->generation != generation) {
    return absl::OkStatus();
  }
  if (!st.ok()) {
    it->second->busy = false;
    return st;
  }
  pump_->Remove(it->second->pump_key());
  SignalExited(*it->second);
  ::unlink(ExitRecordPath(id).c_str());
  containers_.erase(it);
  changed_.SignalAll();
  log::Info("container {} deleted", id);
  return absl::OkStatus();
}

void ShimService::DeleteAll() {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, c] : containers_) {
      ids.push_back(id);
    }
  }
  for (const std::string& id : ids) {
    absl::Status st = Delete(id);
    if (!st.ok()) {
      log::Error("delete container {}: {}", id, st);
    }
  }
}

absl::Status ShimService::State(const StateRequest& request, Response* response) {
  absl::MutexLock lock(&mu_);
  if (request.id().empty()) {
    StateList* list = response->mutable_states();
    for (const auto& [id, c] : containers_) {
      if (c->status != ContainerState::UNKNOWN) {
        FillState(*c, list->add_containers());
      }
    }
    return absl::OkStatus();
  }
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
  FillState(*c, response->mutable_state());
  return absl::OkStatus();
}

absl::Status ShimService::ReopenLog(const ReopenLogRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  std::shared_ptr<CriLogWriter> log;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    log = c->log;
  }
  if (log == nullptr) {
    return absl::OkStatus();
  }
  return log->Reopen();
}

absl::Status ShimService::Update(const UpdateRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  nlohmann::json resources =
      nlohmann::json::parse(request.resources_json(), nullptr, /*allow_exceptions=*/false);
  if (!resources.is_object()) {
    return absl::InvalidArgumentError("resources_json: must be a JSON object");
  }
  OciRuntimeConfig config;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status == ContainerState::EXITED || c->status == ContainerState::UNKNOWN) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " is ", StatusName(c->status)));
    }
    config = c->runtime;
  }
  return OciRuntime(config, reaper_).Update(request.id(), resources.dump());
}

namespace {

// Collects one output stream of an exec'd process up to a limit.
struct ExecOutput {
  UniqueFd fd;
  std::string* data = nullptr;
  bool truncated = false;

  // Reads until the pipe would block; false at EOF (or EIO from a pty).
  bool Read(int64_t limit) {
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n > 0) {
        size_t room =
            static_cast<size_t>(limit) - std::min(data->size(), static_cast<size_t>(limit));
        size_t take = std::min(room, static_cast<size_t>(n));
        data->append(buf, take);
        truncated = truncated || take < static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        return true;
      }
      fd.reset();
      return false;
    }
  }
};

}  // namespace

absl::Status ShimService::Exec(const ExecRequest& request, ExecResponse* response) {
  CRID_RETURN_IF_ERROR(ValidateContainerId(request.id(), "id"));
  if (request.args().empty() || request.args(0).empty()) {
    return absl::InvalidArgumentError("args: a command is required");
  }
  if (request.timeout_ms() < 0) {
    return absl::InvalidArgumentError("timeout_ms: must not be negative");
  }
  if (request.max_output_bytes() < 0) {
    return absl::InvalidArgumentError("max_output_bytes: must not be negative");
  }
  int64_t limit = request.max_output_bytes() == 0
                      ? kDefaultExecOutputBytes
                      : std::min(request.max_output_bytes(), kMaxExecOutputBytes);
  absl::Time start = absl::Now();
  absl::Time deadline = request.timeout_ms() > 0 ? start + absl::Milliseconds(request.timeout_ms())
                                                 : absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(request.id()));
    if (c->status != ContainerState::RUNNING || c->finished_ns != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", request.id(), " is ",
                       c->finished_ns != 0 ? "exited" : StatusName(c->status), ", not running"));
    }
  }

  OciStdio stdio;
  UniqueFd out_write, err_write, in_read;
  ExecOutput out{{}, response->mutable_stdout()};
  ExecOutput err{{}, response->mutable_stderr()};
  UniqueFd stdin_fd;
  std::optional<ConsoleSocket> console;
  if (request.tty()) {
    CRID_ASSIGN_OR_RETURN(ConsoleSocket socket, ConsoleSocket::Listen(dir_));
    console.emplace(std::move(socket));
    stdio.console_socket = console->path();
  } else {
    CRID_RETURN_IF_ERROR(PipeCloexec(&out.fd, &out_write));
    CRID_RETURN_IF_ERROR(PipeCloexec(&err.fd, &err_write));
    if (!request.stdin().empty()) {
      CRID_RETURN_IF_ERROR(PipeCloexec(&in_read, &stdin_fd));
    }
    stdio.in = in_read.get();
    stdio.out = out_write.get();
    stdio.err = err_write.get();
  }
  std::vector<std::string> args(request.args().begin(), request.args().end());
  CRID_ASSIGN_OR_RETURN(pid_t pid, StartExec(request.id(), args, request.tty(), stdio));
  out_write.reset();
  err_write.reset();
  in_read.reset();
  std::shared_ptr<ExitEvent> exit = ExitEvent::Watch(reaper_, pid);
  bool exited = false;
  if (console.has_value()) {
    absl::StatusOr<UniqueFd> master = console->ReceiveMaster();
    if (!master.ok()) {
      ::kill(pid, SIGKILL);
      return master.status();
    }
    out.fd = std::move(*master);
    if (!request.stdin().empty()) {
      stdin_fd.reset(::fcntl(out.fd.get(), F_DUPFD_CLOEXEC, 0));
    }
  }
  for (int fd : {out.fd.get(), err.fd.get(), stdin_fd.get()}) {
    if (fd >= 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
  }

  absl::string_view input = request.stdin();
  bool killed = false;
  absl::Time output_deadline = absl::InfiniteFuture();
  for (;;) {
    if (exited && (absl::Now() >= output_deadline || (!out.fd.valid() && !err.fd.valid()))) {
      break;
    }
    absl::Time now = absl::Now();
    if (!killed && now >= deadline) {
      // The timeout covers the process, not its orphans: they may keep running,
      // as they would under any other runtime.
      ::kill(pid, SIGKILL);
      killed = true;
      response->set_timed_out(true);
    }
    absl::Time wake = std::min(exited ? output_deadline : absl::InfiniteFuture(),
                               killed ? absl::InfiniteFuture() : deadline);
    int timeout_ms =
        wake == absl::InfiniteFuture()
            ? -1
            : static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - now) + 1));
    struct pollfd fds[4] = {{out.fd.get(), POLLIN, 0},
                            {err.fd.get(), POLLIN, 0},
                            {exit->fd(), POLLIN, 0},
                            {input.empty() ? -1 : stdin_fd.get(), POLLOUT, 0}};
    int n = ::poll(fds, 4, timeout_ms);
    if (n < 0 && errno != EINTR) {
      return ErrnoError(errno, "poll");
    }
    if (n <= 0) {
      continue;
    }
    if (fds[0].revents != 0) {
      out.Read(limit);
    }
    if (fds[1].revents != 0) {
      err.Read(limit);
    }
    if (fds[3].revents != 0) {
      ssize_t w = ::write(stdin_fd.get(), input.data(), input.size());
      if (w > 0) {
        input.remove_prefix(static_cast<size_t>(w));
      }
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        input = {};
      }
      if (input.empty() && !request.tty()) {
        stdin_fd.reset();  // EOF for the process
      }
    }
    if (fds[2].revents != 0 && !exited) {
      exited = true;
      output_deadline = absl::Now() + kOutputGrace;
    }
  }
  // Whatever is still buffered was written before the exit.
  if (out.fd.valid()) {
    out.Read(limit);
  }
  if (err.fd.valid()) {
    err.Read(limit);
  }
  response->set_exit_code(Reaper::ExitCode(exit->status()));
  response->set_truncated(out.truncated || err.truncated);
  return absl::OkStatus();
}

absl::StatusOr<pid_t> ShimService::StartExec(const std::string& id,
                                             const std::vector<std::string>& args, bool tty,
                                             const OciStdio& stdio) {
  OciRuntimeConfig config;
  std::string scratch;
  std::shared_ptr<const NativeExecSpec> native;
  std::vector<std::string> cgroup_procs;
  UniqueFd init;
  bool decided = false;
  bool runtime_exec_only = false;
  std::string bundle;
  pid_t init_pid = 0;
  {
    absl::MutexLock lock(&mu_);
    CRID_ASSIGN_OR_RETURN(Container * c, Find(id));
    config = c->runtime;
    scratch = absl::StrCat(dir_, "/exec-", next_exec_++);
    decided = c->exec_path_decided;
    native = c->native_exec;
    cgroup_procs = c->exec_cgroup_procs;
    runtime_exec_only = c->runtime_exec_only;
    bundle = c->bundle;
    init_pid = c->pid;
    if (c->pidfd.valid()) {
      init.reset(::fcntl(c->pidfd.get(), F_DUPFD_CLOEXEC, 0));
    }
  }
  // Which path a container's execs take, decided once from its config:
  // natively for runc containers whose process spec the native path
  // reproduces (oci/native_exec.h lists what it leaves out: seccomp user
  // notification, user namespaces, AppArmor, SELinux, unknown fields) and
  // whose seccomp filter could be copied from the init, unless crid turned it
  // off (container.native_exec); through `runc exec` otherwise. A terminal
  // always goes through the runtime, which makes it.
  std::optional<absl::MutexLock> decide_lock;
  if (!decided) {
    // One decision at a time: two first execs would both seize the init to
    // copy its filter, and the one that found it traced would fall back.
    decide_lock.emplace(&exec_decide_mu_);
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it != containers_.end() && it->second->exec_path_decided) {
      decided = true;
      native = it->second->native_exec;
      cgroup_procs = it->second->exec_cgroup_procs;
    }
  }
  if (!decided) {
    std::string reason;
    if (runtime_exec_only) {
      reason = "container.native_exec is off";
    } else if (!IsRunc(config)) {
      reason = absl::StrCat("the runtime is ", config.binary, ", not runc");
    } else if (!init.valid()) {
      reason = "no pidfd of the container's init";
    } else {
      absl::StatusOr<NativeExecSpec> spec = LoadNativeExecSpec(bundle);
      absl::StatusOr<std::string> proc_cgroup =
          ReadFile(absl::StrCat("/proc/", init_pid, "/cgroup"));
      if (!spec.ok()) {
        reason = std::string(spec.status().message());
      } else if (!proc_cgroup.ok()) {
        reason = std::string(proc_cgroup.status().message());
      } else if (spec->seccomp) {
        // The profile's program as the init runs it, copied once and kept.
        absl::StatusOr<std::vector<struct sock_filter>> filter =
            ReadInitSeccompFilter(init_pid, init.get(), reaper_);
        if (filter.ok()) {
          spec->seccomp_filter = std::move(*filter);
        } else {
          reason = std::string(filter.status().message());
        }
      }
      if (reason.empty() && spec.ok() && proc_cgroup.ok()) {
        std::map<std::string, std::string> v1_mounts = layout_.controllers;
        v1_mounts.insert(layout_.named.begin(), layout_.named.end());
        cgroup_procs = CgroupProcsFiles(*proc_cgroup, v1_mounts, layout_.unified_mount);
        native = std::make_shared<const NativeExecSpec>(std::move(*spec));
      }
    }
    if (!reason.empty()) {
      log::Info("container {}: execs run through {} exec: {}", id, config.name, reason);
    }
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it != containers_.end() && !it->second->exec_path_decided) {
      it->second->exec_path_decided = true;
      it->second->native_exec = native;
      it->second->exec_cgroup_procs = cgroup_procs;
    }
  }
  decide_lock.reset();
  if (native == nullptr || tty) {
    return OciRuntime(config, reaper_).Exec(id, args, tty, stdio, scratch);
  }
  NativeExecRequest request;
  request.container_id = id;
  request.runtime_name = config.name;
  request.init_pidfd = init.get();
  request.args = args;
  request.cgroup_procs = std::move(cgroup_procs);
  request.stdio = stdio;
  return NativeExec(*native, request, reaper_);
}

}  // namespace crid::shim
