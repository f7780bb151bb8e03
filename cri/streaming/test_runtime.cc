#include "cri/streaming/test_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "base/errors.h"

namespace crid::streaming {

absl::StatusOr<int> HostProcessRuntime::Exec(const std::string& container_id,
                                             const std::vector<std::string>& cmd, StreamIo io) {
  std::thread resizer;
  if (io.resize != nullptr) {
    resizer = std::thread([this, queue = io.resize] {
      while (std::optional<TerminalSize> size = queue->Next()) {
        absl::MutexLock lock(&mu_);
        sizes_.push_back(*size);
      }
    });
  }
  std::vector<char*> argv;
  argv.reserve(cmd.size() + 1);
  std::vector<std::string> args = cmd;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  int in = io.stdin_fd.valid() ? io.stdin_fd.get() : -1;
  int out = io.stdout_fd.valid() ? io.stdout_fd.get() : -1;
  int err = io.stderr_fd.valid() ? io.stderr_fd.get() : out;
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : devnull, 0);
    dup2(out >= 0 ? out : devnull, 1);
    dup2(err >= 0 ? err : devnull, 2);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  // The child has its copies; the session sees EOF once it exits.
  io.stdin_fd.reset();
  io.stdout_fd.reset();
  io.stderr_fd.reset();
  absl::StatusOr<int> result = absl::InternalError("fork failed");
  bool cancelled = false;
  if (pid > 0) {
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      pollfd p{io.done_fd, POLLIN, 0};
      if (poll(&p, 1, 20) > 0) {
        cancelled = true;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
    }
    result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  if (resizer.joinable()) {
    // The queue closes when the session ends; stop waiting for it here.
    io.resize->Close();
    resizer.join();
  }
  last_exec_cancelled_ = cancelled;
  ++finished_execs_;
  return result;
}

absl::Status HostProcessRuntime::Attach(const std::string& container_id, StreamIo io) {
  if (!io.stdin_fd.valid() || !io.stdout_fd.valid()) {
    return absl::FailedPreconditionError("test attach echoes stdin to stdout");
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(io.stdin_fd.get(), buf, sizeof(buf))) > 0) {
    if (write(io.stdout_fd.get(), buf, static_cast<size_t>(n)) != n) {
      break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> HostProcessRuntime::PortForward(const std::string& pod_sandbox_id,
                                                         int32_t port) {
  if (pod_sandbox_id != "pod") {
    return absl::NotFoundError("pod sandbox " + pod_sandbox_id + " not found");
  }
  return DialLoopbackInNetns("", port, absl::Seconds(2));
}

std::vector<TerminalSize> HostProcessRuntime::sizes() {
  absl::MutexLock lock(&mu_);
  return sizes_;
}

}  // namespace crid::streaming
