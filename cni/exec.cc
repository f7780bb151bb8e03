#include "cni/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/json.h"
#include "base/spawn.h"
#include "base/unique_fd.h"

extern char** environ;

namespace crid::cni {

namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// crid's environment without CNI_* variables, PATH with the sbin directories,
// and the CNI_* variables of `inv`.
std::vector<std::string> PluginEnvironment(const PluginInvocation& inv) {
  std::vector<std::string> env;
  bool has_path = false;
  for (char** e = environ; *e != nullptr; ++e) {
    if (absl::StartsWith(*e, "CNI_")) {
      continue;
    }
    if (absl::StartsWith(*e, "PATH=")) {
      // Plugins run iptables, ip and friends from the sbin directories, which
      // service managers and build tools often leave out.
      has_path = true;
      std::string path = *e;
      for (const char* dir : {"/usr/sbin", "/sbin"}) {
        std::vector<absl::string_view> parts = absl::StrSplit(path.substr(5), ':');
        if (std::find(parts.begin(), parts.end(), dir) == parts.end()) {
          absl::StrAppend(&path, ":", dir);
        }
      }
      env.push_back(std::move(path));
      continue;
    }
    env.emplace_back(*e);
  }
  if (!has_path) {
    env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  }
  std::vector<std::string> args;
  for (const auto& [k, v] : inv.args) {
    args.push_back(absl::StrCat(k, "=", v));
  }
  env.push_back("CNI_COMMAND=" + inv.command);
  env.push_back("CNI_CONTAINERID=" + inv.container_id);
  env.push_back("CNI_NETNS=" + inv.netns);
  env.push_back("CNI_IFNAME=" + inv.ifname);
  env.push_back("CNI_ARGS=" + absl::StrJoin(args, ";"));
  env.push_back("CNI_PATH=" + absl::StrJoin(inv.bin_dirs, ":"));
  return env;
}

// CNI's well-known error codes (spec, "Error"), named in messages.
const char* CniErrorName(int code) {
  switch (code) {
    case 1:
      return "incompatible CNI version";
    case 2:
      return "unsupported field in network configuration";
    case 3:
      return "container unknown or does not exist";
    case 4:
      return "invalid necessary environment variables";
    case 5:
      return "I/O failure";
    case 6:
      return "failed to decode content";
    case 7:
      return "invalid network config";
    case kCniErrorTryAgainLater:
      return "try again later";
    case 50:
      return "plugin not available";
    case 51:
      return "plugin not available, limited connectivity";
    default:
      return nullptr;
  }
}

struct PluginFailure {
  int code = 0;  // the CNI error code, 0 when the plugin gave none
  std::string message;
};

// The plugin's structured error ({"code","msg","details"}), or its raw output.
PluginFailure ReadPluginFailure(const std::string& out, const std::string& err) {
  PluginFailure failure;
  absl::StatusOr<Json> doc = ParseJson(out, "plugin error");
  if (doc.ok() && doc->is_object()) {
    // CNI error codes are small; anything else is no code at all.
    if (int64_t code = JsonInt(*doc, "code"); code > 0 && code <= INT32_MAX) {
      failure.code = static_cast<int>(code);
    }
    std::string msg = JsonString(*doc, "msg");
    std::string details = JsonString(*doc, "details");
    if (!msg.empty()) {
      failure.message = details.empty() ? msg : absl::StrCat(msg, ": ", details);
      return failure;
    }
  }
  std::string text = out.empty() ? err : out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  failure.message = text.empty() ? "no output" : text;
  return failure;
}

// Whether `pid` (a child not yet reaped) has exited; it stays a zombie, so
// its PID, and with it the process group ID, cannot be reused.
bool HasExited(pid_t pid) {
  siginfo_t info = {};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

}  // namespace

absl::StatusOr<std::string> FindPlugin(const std::string& type,
                                       const std::vector<std::string>& bin_dirs) {
  if (type.empty() || absl::StrContains(type, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CNI plugin type \"", type, "\""));
  }
  for (const std::string& dir : bin_dirs) {
    std::string path = absl::StrCat(dir, "/", type);
    if (IsExecutableFile(path)) {
      return path;
    }
  }
  return absl::NotFoundError(absl::StrCat("failed to find CNI plugin \"", type, "\" in path [",
                                          absl::StrJoin(bin_dirs, ":"), "]"));
}

absl::StatusOr<std::string> ExecPlugin(const std::string& binary, const PluginInvocation& inv,
                                       const std::string& stdin_data, absl::Duration timeout) {
  int in[2], out[2], err[2];
  // stdin is a socket, not a pipe: a plugin that exits without reading it
  // (DEL of a plugin that needs no config) must cost crid an EPIPE from
  // send(MSG_NOSIGNAL), never a SIGPIPE.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
    return ErrnoError(errno, "socketpair");
  }
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd err_r(err[0]), err_w(err[1]);

  SpawnOptions options;
  options.argv = {binary};
  options.env = PluginEnvironment(inv);
  options.stdin_fd = in_r.get();
  options.stdout_fd = out_w.get();
  options.stderr_fd = err_w.get();
  // Its own process group, so the group can be killed with everything the
  // plugin started.
  options.new_process_group = true;
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  if (!child.ok()) {
    return Annotate(child.status(), absl::StrCat("CNI plugin ", inv.command));
  }
  const pid_t pid = child->pid;
  // Readable once the plugin exits.
  UniqueFd pidfd = std::move(child->pidfd);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  std::string stdout_data, stderr_data;
  size_t written = 0;
  if (stdin_data.empty()) {
    in_w.reset();
  }
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  bool too_much = false;
  bool exited = false;
  int poll_errno = 0;
  for (;;) {
    exited = exited || HasExited(pid);
    // Done when the plugin has exited and nothing (a process it started) holds
    // its output open any more; either one alone may take forever.
    if (exited && !out_r.valid() && !err_r.valid()) {
      break;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    struct pollfd fds[4];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_r.valid()) {
      out_i = n;
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_i = n;
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    if (in_w.valid()) {
      in_i = n;
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    int64_t wait_ms = absl::ToInt64Milliseconds(left) + 1;
    if (!exited) {
      if (pidfd.valid()) {
        fds[n++] = {pidfd.get(), POLLIN, 0};
      } else {
        wait_ms = std::min<int64_t>(wait_ms, 20);
      }
    }
    int r = poll(fds, n, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
    if (r < 0 && errno != EINTR) {
      poll_errno = errno;
      break;
    }
    if (r <= 0) {
      continue;
    }
    char buf[65536];
    auto drain = [&](int i, UniqueFd& fd, std::string& sink, size_t keep) {
      if (i < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        return;
      }
      ssize_t got = read(fd.get(), buf, sizeof(buf));
      if (got > 0) {
        sink.append(buf, std::min(static_cast<size_t>(got), keep - std::min(keep, sink.size())));
      } else if (got == 0 || errno != EINTR) {
        fd.reset();
      }
    };
    // One byte more than allowed is enough to know it is too much.
    drain(out_i, out_r, stdout_data, kMaxPluginOutputBytes + 1);
    // Diagnostics only: kept up to the cap, the rest read and dropped.
    drain(err_i, err_r, stderr_data, kMaxPluginOutputBytes);
    if (stdout_data.size() > kMaxPluginOutputBytes) {
      too_much = true;
      break;
    }
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      ssize_t put = send(in_w.get(), stdin_data.data() + written, stdin_data.size() - written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (put > 0) {
        written += static_cast<size_t>(put);
      }
      bool failed = put < 0 && errno != EAGAIN && errno != EINTR;
      if (failed || written == stdin_data.size()) {
        in_w.reset();
      }
    }
  }
  in_w.reset();
  out_r.reset();
  err_r.reset();
  if (timed_out || too_much || poll_errno != 0) {
    // The whole group: a plugin's children (iptables, a hung helper) die with
    // it. The plugin is not reaped yet, so the group ID is still its own.
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (poll_errno != 0) {
    return ErrnoError(poll_errno, "poll output of CNI plugin ", binary);
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("CNI plugin ", binary, " ", inv.command, " did not finish within ",
                     absl::FormatDuration(timeout),
                     exited ? " (it exited, but a process it started kept its output open)" : "",
                     "; killed with its process group"));
  }
  if (too_much) {
    return absl::ResourceExhaustedError(absl::StrCat("CNI plugin ", binary, " ", inv.command,
                                                     " wrote more than ", kMaxPluginOutputBytes,
                                                     " bytes to stdout; killed"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return stdout_data;
  }
  std::string how = WIFEXITED(status) ? absl::StrCat("exit code ", WEXITSTATUS(status))
                                      : absl::StrCat("signal ", WTERMSIG(status));
  PluginFailure failure = ReadPluginFailure(stdout_data, stderr_data);
  if (failure.code != 0) {
    const char* name = CniErrorName(failure.code);
    absl::StrAppend(&how, ", CNI error code ", failure.code, name != nullptr ? " \"" : "",
                    name != nullptr ? name : "", name != nullptr ? "\"" : "");
  }
  std::string message = absl::StrCat("CNI plugin ", binary, " ", inv.command, " failed (", how,
                                     "): ", failure.message);
  // "Try again later": the caller (kubelet) retries an UNAVAILABLE answer.
  if (failure.code == kCniErrorTryAgainLater) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace crid::cni
