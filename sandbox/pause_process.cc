#include "sandbox/pause_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"

namespace crid::sandbox {

uint64_t ProcessStartTime(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return 0;
  }
  // The command name may contain spaces: fields start after the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return 0;
  }
  if (fields[0] == "Z" || fields[0] == "X") {
    return 0;
  }
  return start;
}

bool PauseAlive(const PauseProcess& pause) {
  return pause.pid > 0 && ProcessStartTime(pause.pid) == pause.start_time;
}

absl::StatusOr<PauseProcess> StartPause(const std::string& binary,
                                        const std::vector<NamespacePath>& join) {
  if (access(binary.c_str(), X_OK) != 0) {
    return ErrnoError(errno, "crid-pause binary ", binary);
  }
  std::vector<UniqueFd> fds;
  std::vector<int> types;
  for (const NamespacePath& ns : join) {
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError(errno, "open ", ns.path);
    }
    fds.push_back(std::move(fd));
    types.push_back(NamespaceCloneFlag(ns.type));
  }
  // Reports the child's setns/exec failure (errno) to the parent; closed by
  // exec on success.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd rd(p[0]), wr(p[1]);
  std::string path = binary;
  char* argv[] = {path.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0));
  if (pid < 0) {
    return ErrnoError(errno, "clone crid-pause");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    int err = 0;
    for (size_t i = 0; i < fds.size() && err == 0; ++i) {
      if (setns(fds[i].get(), types[i]) != 0) {
        err = errno;
      }
    }
    if (err == 0) {
      setsid();
      int devnull = open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(path.c_str(), argv, envp);
      err = errno;
    }
    (void)!write(wr.get(), &err, sizeof(err));
    _exit(127);
  }
  wr.reset();
  int err = 0;
  ssize_t n = read(rd.get(), &err, sizeof(err));
  if (n == sizeof(err)) {
    waitpid(pid, nullptr, 0);
    return ErrnoError(err, "start crid-pause ", binary);
  }
  PauseProcess pause;
  pause.pid = pid;
  pause.start_time = ProcessStartTime(pid);
  if (pause.start_time == 0) {
    waitpid(pid, nullptr, 0);
    return absl::InternalError("crid-pause exited right after start");
  }
  return pause;
}

absl::Status StopPause(const PauseProcess& pause) {
  if (!PauseAlive(pause)) {
    // Reap it if it was our child and died on its own.
    waitpid(pause.pid, nullptr, WNOHANG);
    return absl::OkStatus();
  }
  kill(pause.pid, SIGTERM);
  const absl::Time kill_at = absl::Now() + absl::Seconds(2);
  bool killed = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    // Reaps it when crid started it; otherwise its parent (init) does.
    waitpid(pause.pid, nullptr, WNOHANG);
    if (!PauseAlive(pause)) {
      return absl::OkStatus();
    }
    if (!killed && absl::Now() > kill_at) {
      kill(pause.pid, SIGKILL);
      killed = true;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError(absl::StrCat("crid-pause ", pause.pid, " did not exit"));
}

}  // namespace crid::sandbox
