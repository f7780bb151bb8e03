#include "oci/oci_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/spawn.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace crid {

namespace {

constexpr size_t kMaxOutput = 1 << 20;

// Our environment without NOTIFY_SOCKET, which systemd sets when crid runs as
// a Type=notify unit. A runtime that finds it proxies the container's
// sd_notify through a socket in its state directory (runc: bind fails once
// that path passes the 108 bytes of a socket address, and every start fails);
// containers were never meant to notify crid's unit. go-runc filters it too.
std::vector<std::string> RuntimeEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "NOTIFY_SOCKET=")) {
      env.emplace_back(*e);
    }
  }
  return env;
}

// Reads both pipes until EOF (or the deadline), then reaps the child.
struct ChildOutput {
  std::string out;
  std::string err;
  bool timed_out = false;
};

ChildOutput Drain(int out_fd, int err_fd, absl::Time deadline) {
  ChildOutput result;
  struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open = 2;
  char buf[8192];
  while (open > 0) {
    int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      result.timed_out = n == 0;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
      if (r <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      std::string& dst = i == 0 ? result.out : result.err;
      if (dst.size() < kMaxOutput) {
        dst.append(buf, static_cast<size_t>(r));
      }
    }
  }
  return result;
}

absl::StatusOr<pid_t> ReadPidFile(const std::string& runtime, const char* what,
                                  const std::string& id, const std::string& path) {
  CRID_ASSIGN_OR_RETURN(std::string pid_text, ReadFile(path));
  pid_t pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(pid_text), &pid) || pid <= 0) {
    return absl::InternalError(absl::StrCat(runtime, " ", what, " ", id, ": bad pid file"));
  }
  return pid;
}

}  // namespace

std::string RuntimeErrorMessage(const std::string& stderr_text) {
  std::string message;
  for (absl::string_view line : absl::StrSplit(stderr_text, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("msg")) {
      std::string level = j.value("level", "");
      if (level == "error" || level == "fatal" || message.empty()) {
        message = j["msg"].is_string() ? j["msg"].get<std::string>() : j["msg"].dump();
      }
    } else {
      message = std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return message;
}

absl::StatusOr<OciRuntime::Result> OciRuntime::Run(const std::vector<std::string>& args,
                                                   const OciStdio& stdio,
                                                   const std::string& stdin_data) const {
  std::vector<std::string> argv = {config_.binary, "--root", config_.root};
  if (config_.systemd_cgroup) {
    argv.emplace_back("--systemd-cgroup");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  UniqueFd in_read, in_write;
  if (!stdin_data.empty()) {
    // A socket, not a pipe: a runtime that exits without reading its input
    // costs an EPIPE from send(MSG_NOSIGNAL), never a SIGPIPE.
    int in_pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) {
      return ErrnoError(errno, "socketpair");
    }
    in_read.reset(in_pair[0]);
    in_write.reset(in_pair[1]);
  }
  // For create, the container inherits the runtime's stdio, so it gets what the
  // caller passed (never our pipes, which would stay open as long as the
  // container runs); the runtime's own messages come back through --log.
  SpawnOptions options;
  options.argv = std::move(argv);
  options.env = RuntimeEnvironment();
  options.stdin_fd = in_read.valid() ? in_read.get() : stdio.in;
  options.stdout_fd = stdio.for_container ? stdio.out : out_write.get();
  options.stderr_fd = stdio.for_container ? stdio.err : err_write.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  if (!child.ok()) {
    // Not the runtime's NOT_FOUND ("no such container"): its binary is missing.
    return absl::InternalError(absl::StrCat(config_.name, ": ", child.status().message()));
  }
  const pid_t pid = child->pid;
  out_write.reset();
  err_write.reset();
  in_read.reset();
  if (in_write.valid()) {
    absl::string_view rest = stdin_data;
    while (!rest.empty()) {
      ssize_t n = ::send(in_write.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      rest.remove_prefix(static_cast<size_t>(n));
    }
    in_write.reset();
  }
  ChildOutput output = Drain(out_read.get(), err_read.get(), absl::Now() + config_.timeout);
  if (output.timed_out) {
    ::kill(pid, SIGKILL);
  }
  int status = WaitChild(pid);
  if (output.timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(config_.name, " ", args.empty() ? "" : args[0],
                                                    " did not finish within ",
                                                    absl::FormatDuration(config_.timeout)));
  }
  Result result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = std::move(output.out);
  result.err = std::move(output.err);
  return result;
}

int OciRuntime::WaitChild(pid_t pid) const {
  if (waiter_ != nullptr) {
    return waiter_->WaitChild(pid);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

absl::Status OciRuntime::RunOk(const std::string& what, const std::string& id,
                               const std::vector<std::string>& args,
                               const std::string& stdin_data) const {
  CRID_ASSIGN_OR_RETURN(Result r, Run(args, {}, stdin_data));
  if (r.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(config_.name, " ", what, " ", id, ": ", RuntimeErrorMessage(r.err + r.out)));
  }
  return absl::OkStatus();
}

absl::StatusOr<pid_t> OciRuntime::RunInit(const std::string& verb,
                                          const std::vector<std::string>& verb_args,
                                          const std::string& id, const std::string& bundle,
                                          const OciStdio& stdio) const {
  std::string pid_file = bundle + "/init.pid";
  std::string log_file = bundle + "/runtime.log";
  ::unlink(log_file.c_str());
  ::unlink(pid_file.c_str());
  // The init gets the descriptors the runtime itself has (for restore, runc
  // maps the dumped pipes onto its own stdio).
  OciStdio container_stdio = stdio;
  container_stdio.for_container = true;
  std::vector<std::string> args = {"--log", log_file, "--log-format", "json", verb};
  args.insert(args.end(), verb_args.begin(), verb_args.end());
  args.insert(args.end(), {"--bundle", bundle, "--pid-file", pid_file});
  if (!stdio.console_socket.empty()) {
    args.emplace_back("--console-socket");
    args.push_back(stdio.console_socket);
  }
  args.push_back(id);
  CRID_ASSIGN_OR_RETURN(Result r, Run(args, container_stdio));
  if (r.exit_code != 0) {
    std::string log = ReadFile(log_file).value_or("");
    return absl::InternalError(
        absl::StrCat(config_.name, " ", verb, " ", id, ": ", RuntimeErrorMessage(log + r.err)));
  }
  return ReadPidFile(config_.name, verb.c_str(), id, pid_file);
}

absl::StatusOr<pid_t> OciRuntime::Create(const std::string& id, const std::string& bundle,
                                         const OciStdio& stdio) const {
  return RunInit("create", {}, id, bundle, stdio);
}

absl::StatusOr<pid_t> OciRuntime::Exec(const std::string& id, const std::vector<std::string>& args,
                                       bool tty, const OciStdio& stdio,
                                       const std::string& scratch) const {
  std::string pid_file = scratch + ".pid";
  std::string log_file = scratch + ".log";
  OciStdio process_stdio = stdio;
  process_stdio.for_container = true;
  std::vector<std::string> argv = {"--log", log_file,   "--log-format", "json",
                                   "exec",  "--detach", "--pid-file",   pid_file};
  if (tty) {
    argv.emplace_back("--tty");
  }
  if (!stdio.console_socket.empty()) {
    argv.emplace_back("--console-socket");
    argv.push_back(stdio.console_socket);
  }
  argv.push_back(id);
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Result> r = Run(argv, process_stdio);
  absl::StatusOr<pid_t> pid;
  if (!r.ok()) {
    pid = r.status();
  } else if (r->exit_code != 0) {
    std::string log = ReadFile(log_file).value_or("");
    pid = absl::InternalError(
        absl::StrCat(config_.name, " exec ", id, ": ", RuntimeErrorMessage(log + r->err)));
  } else {
    pid = ReadPidFile(config_.name, "exec", id, pid_file);
  }
  ::unlink(pid_file.c_str());
  ::unlink(log_file.c_str());
  return pid;
}

absl::Status OciRuntime::Start(const std::string& id) const {
  return RunOk("start", id, {"start", id});
}

absl::StatusOr<OciState> OciRuntime::State(const std::string& id) const {
  CRID_ASSIGN_OR_RETURN(Result r, Run({"state", id}, {}));
  if (r.exit_code != 0) {
    std::string message = RuntimeErrorMessage(r.err);
    if (absl::StrContains(message, "does not exist")) {
      return absl::NotFoundError(absl::StrCat(config_.name, ": container ", id, " does not exist"));
    }
    return absl::InternalError(absl::StrCat(config_.name, " state ", id, ": ", message));
  }
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InternalError(absl::StrCat(config_.name, " state ", id, ": unreadable answer"));
  }
  OciState state;
  state.status = j.value("status", "");
  state.pid = j.value("pid", 0);
  return state;
}

absl::Status OciRuntime::Kill(const std::string& id, int signal, bool all) const {
  std::vector<std::string> args = {"kill"};
  if (all) {
    args.emplace_back("--all");
  }
  args.push_back(id);
  args.push_back(absl::StrCat(signal));
  return RunOk("kill", id, args);
}

absl::Status OciRuntime::Delete(const std::string& id, bool force) const {
  std::vector<std::string> args = {"delete"};
  if (force) {
    args.emplace_back("--force");
  }
  args.push_back(id);
  CRID_ASSIGN_OR_RETURN(Result r, Run(args, {}));
  if (r.exit_code != 0) {
    std::string message = RuntimeErrorMessage(r.err);
    if (absl::StrContains(message, "does not exist") || absl::StrContains(message, "not found")) {
      return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat(config_.name, " delete ", id, ": ", message));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> OciRuntime::FeatureMountOptions() const {
  CRID_ASSIGN_OR_RETURN(Result r, Run({"features"}, {}));
  if (r.exit_code != 0) {
    return absl::UnimplementedError(
        absl::StrCat(config_.name, " features: ", RuntimeErrorMessage(r.err + r.out)));
  }
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("mountOptions") || !j["mountOptions"].is_array()) {
    return absl::InternalError(absl::StrCat(config_.name, " features: no mountOptions list"));
  }
  std::vector<std::string> options;
  for (const nlohmann::json& o : j["mountOptions"]) {
    if (o.is_string()) {
      options.push_back(o.get<std::string>());
    }
  }
  return options;
}

absl::Status OciRuntime::Update(const std::string& id, const std::string& resources_json) const {
  return RunOk("update", id, {"update", "--resources", "-", id}, resources_json);
}

absl::Status OciRuntime::Checkpoint(const std::string& id, const std::string& image_path,
                                    const std::string& work_path) const {
  return RunOk(
      "checkpoint", id,
      {"checkpoint", "--leave-running", "--image-path", image_path, "--work-path", work_path, id});
}

absl::StatusOr<pid_t> OciRuntime::Restore(const std::string& id, const std::string& bundle,
                                          const std::string& image_path,
                                          const std::string& work_path,
                                          const OciStdio& stdio) const {
  return RunInit("restore", {"--detach", "--image-path", image_path, "--work-path", work_path}, id,
                 bundle, stdio);
}

}  // namespace crid
