#include "sandbox/pause_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/spawn.h"
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

namespace {

constexpr char kPodFlag[] = "--crid-pod=";
constexpr char kStateFlag[] = "--crid-state=";

bool IsPodId(absl::string_view id) {
  if (id.size() != 64) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Inode of a /proc/.../ns/<type> file; 0 when unreadable.
ino_t NamespaceInode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// True when the last NSpid of /proc/<pid>/status is 1 and there are two:
// PID 1 of a namespace one level below ours.
bool IsPidNamespaceInit(pid_t pid) {
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) {
    return false;
  }
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::ConsumePrefix(&line, "NSpid:")) {
      std::vector<absl::string_view> ids =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      return ids.size() == 2 && ids[1] == "1";
    }
  }
  return false;
}

}  // namespace

std::vector<FoundPause> FindPauseProcesses(const std::string& state_dir) {
  std::vector<FoundPause> found;
  const ino_t our_mnt = NamespaceInode("/proc/self/ns/mnt");
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr || our_mnt == 0) {
    if (proc != nullptr) {
      ::closedir(proc);
    }
    return found;
  }
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid <= 1) {
      continue;
    }
    absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    if (!cmdline.ok()) {
      continue;
    }
    std::vector<absl::string_view> argv = absl::StrSplit(*cmdline, '\0');
    // Arguments end with a NUL, which leaves one empty field.
    if (argv.size() != 4 || !argv[3].empty()) {
      continue;
    }
    absl::string_view pod = argv[1];
    absl::string_view state = argv[2];
    if (!absl::EndsWith(argv[0], "crid-pause") || !absl::ConsumePrefix(&pod, kPodFlag) ||
        !IsPodId(pod) || !absl::ConsumePrefix(&state, kStateFlag) || state != state_dir) {
      continue;
    }
    char exe[4096] = {};
    ssize_t n = ::readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
    absl::string_view exe_name = n > 0 ? absl::string_view(exe, static_cast<size_t>(n)) : "";
    // An upgrade may have replaced the binary under a running crid-pause.
    absl::ConsumeSuffix(&exe_name, " (deleted)");
    exe_name = exe_name.substr(exe_name.rfind('/') + 1);
    if (exe_name != "crid-pause") {
      continue;
    }
    if (NamespaceInode(absl::StrCat("/proc/", pid, "/ns/mnt")) != our_mnt ||
        !IsPidNamespaceInit(pid)) {
      continue;
    }
    uint64_t start = ProcessStartTime(pid);
    if (start == 0) {
      continue;
    }
    found.push_back({{pid, start}, std::string(pod)});
  }
  ::closedir(proc);
  return found;
}

absl::StatusOr<PauseProcess> StartPause(const std::string& binary,
                                        const std::vector<NamespacePath>& join,
                                        const PauseOwner& owner, bool new_user_namespace) {
  if (access(binary.c_str(), X_OK) != 0) {
    return ErrnoError(errno, "crid-pause binary ", binary);
  }
  std::vector<UniqueFd> fds;
  SpawnOptions options;
  options.argv = {binary, absl::StrCat(kPodFlag, owner.pod_id),
                  absl::StrCat(kStateFlag, owner.state_dir)};
  options.env = std::vector<std::string>();
  // Long-lived: it must hold no directory of crid's, nor crid's session.
  options.cwd = "/";
  options.new_session = true;
  options.new_pid_namespace = true;
  options.new_user_namespace = new_user_namespace;
  for (const NamespacePath& ns : join) {
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError(errno, "open ", ns.path);
    }
    options.join_namespaces.push_back({fd.get(), NamespaceCloneFlag(ns.type)});
    fds.push_back(std::move(fd));
  }
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  if (!child.ok()) {
    return Annotate(child.status(), "start crid-pause");
  }
  const pid_t pid = child->pid;
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
