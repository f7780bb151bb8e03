#include "cni/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/unique_fd.h"
#include "cni/json.h"

extern char** environ;

namespace crid::cni {

namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The plugin's structured error ({"code","msg","details"}), or its raw output.
std::string PluginErrorMessage(const std::string& out, const std::string& err) {
  absl::StatusOr<JsonValue> doc = ParseJson(out);
  if (doc.ok() && doc->kind_case() == JsonValue::kStructValue) {
    std::string msg = StringField(doc->struct_value(), "msg");
    std::string details = StringField(doc->struct_value(), "details");
    if (!msg.empty()) {
      return details.empty() ? msg : absl::StrCat(msg, ": ", details);
    }
  }
  std::string text = out.empty() ? err : out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text.empty() ? "no output" : text;
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
  // Everything the child needs is built before fork: it only calls dup2/execve.
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
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  std::string argv0 = binary;
  char* argv[] = {argv0.data(), nullptr};

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
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

  pid_t pid = fork();
  if (pid < 0) {
    return ErrnoError(errno, "fork for CNI plugin ", binary);
  }
  if (pid == 0) {
    dup2(in_r.get(), 0);
    dup2(out_w.get(), 1);
    dup2(err_w.get(), 2);
    execve(argv0.c_str(), argv, envp.data());
    _exit(127);
  }
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
  while (out_r.valid() || err_r.valid()) {
    struct pollfd fds[3];
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
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    int r = poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno != EINTR) {
      break;
    }
    char buf[16384];
    auto drain = [&](int i, UniqueFd& fd, std::string& sink) {
      if (i >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t got = read(fd.get(), buf, sizeof(buf));
        if (got > 0) {
          sink.append(buf, static_cast<size_t>(got));
        } else if (got == 0 || errno != EINTR) {
          fd.reset();
        }
      }
    };
    drain(out_i, out_r, stdout_data);
    drain(err_i, err_r, stderr_data);
    if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      ssize_t put = write(in_w.get(), stdin_data.data() + written, stdin_data.size() - written);
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
  if (timed_out) {
    kill(pid, SIGKILL);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("CNI plugin ", binary, " ", inv.command,
                                                    " did not finish within ",
                                                    absl::FormatDuration(timeout), "; killed"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return stdout_data;
  }
  std::string how = WIFEXITED(status) ? absl::StrCat("exit code ", WEXITSTATUS(status))
                                      : absl::StrCat("signal ", WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && stdout_data.empty()) {
    return absl::InternalError(absl::StrCat("CNI plugin ", binary, " could not be executed"));
  }
  return absl::InternalError(absl::StrCat("CNI plugin ", binary, " ", inv.command, " failed (", how,
                                          "): ", PluginErrorMessage(stdout_data, stderr_data)));
}

}  // namespace crid::cni
