#include "base/spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/errors.h"

extern char** environ;

namespace crid {

namespace {

// Why clone(CLONE_VM | CLONE_VFORK) and not posix_spawn: posix_spawn cannot
// join namespaces, start a PID namespace or re-parent the child, and one way
// of starting processes is easier to trust than two. The child borrows crid's
// memory until it execs, so it runs only raw system calls, on its own stack,
// uninstrumented (sanitizer runtimes are not safe there), and reports a
// failure through the plan it shares with the parent.
#define CRID_SPAWN_CHILD __attribute__((no_sanitize("address", "undefined")))

constexpr size_t kChildStackSize = size_t{64} << 10;

// What the child was doing when it failed.
enum class Step : int { kNone = 0, kNamespace, kSession, kFds, kChdir, kDetach, kExec };

const char* StepName(Step step) {
  switch (step) {
    case Step::kNamespace:
      return "setns before executing";
    case Step::kSession:
      return "setsid/setpgid before executing";
    case Step::kFds:
      return "set up descriptors before executing";
    case Step::kChdir:
      return "chdir before executing";
    case Step::kDetach:
      return "fork to detach before executing";
    case Step::kExec:
    case Step::kNone:
      break;
  }
  return "execute";
}

// The kernel's struct sigaction (rt_sigaction(2)): libc's sigaction refuses
// the signals it keeps for itself (32 and 33 with glibc), which crid may have
// inherited ignored.
struct KernelSigaction {
  sighandler_t handler;
  unsigned long flags;  // NOLINT(runtime/int): the kernel's type
  void (*restorer)();
  uint64_t mask;
};

// Everything the child needs, prepared by the parent: the child allocates
// nothing.
struct ChildPlan {
  const char* path = nullptr;
  int exec_fd = -1;    // execveat this instead of path when >= 0
  int exec_high = -1;  // scratch: its copy above every target
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;  // null: stay
  // Parent descriptors and the numbers they get; [0..2] are stdio.
  const int* sources = nullptr;
  const int* targets = nullptr;
  int* high = nullptr;  // scratch: a copy of each source above every target
  int fd_count = 0;
  int max_target = 2;
  int nofile = 1024;  // close() loop bound when close_range is missing
  const NamespaceJoin* namespaces = nullptr;
  size_t namespace_count = 0;
  bool new_session = false;
  bool new_process_group = false;
  bool detach = false;
  char* grandchild_stack_top = nullptr;
  // Written by the child.
  int err = 0;
  Step step = Step::kNone;
  pid_t grandchild = 0;
};

[[noreturn]] CRID_SPAWN_CHILD void Fail(ChildPlan* plan, Step step) {
  plan->err = errno;
  plan->step = step;
  syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

CRID_SPAWN_CHILD bool IsTarget(const ChildPlan* plan, int fd) {
  for (int i = 0; i < plan->fd_count; ++i) {
    if (plan->targets[i] == fd) {
      return true;
    }
  }
  return false;
}

// Unblocks every signal and execs; returns only by failing.
[[noreturn]] CRID_SPAWN_CHILD void Exec(ChildPlan* plan) {
  const uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof(none));
  if (plan->exec_fd >= 0) {
    syscall(SYS_execveat, plan->exec_fd, "", plan->argv, plan->envp, AT_EMPTY_PATH);
  } else {
    syscall(SYS_execve, plan->path, plan->argv, plan->envp);
  }
  Fail(plan, Step::kExec);
}

CRID_SPAWN_CHILD int GrandchildMain(void* arg) { Exec(static_cast<ChildPlan*>(arg)); }

CRID_SPAWN_CHILD int ChildMain(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  // Every signal was blocked by the parent before clone; crid's handlers
  // must never run here, and ignored signals must not reach the program.
  KernelSigaction dfl = {};
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof(dfl.mask));
    }
  }
  for (size_t i = 0; i < plan->namespace_count; ++i) {
    if (syscall(SYS_setns, plan->namespaces[i].fd, plan->namespaces[i].nstype) != 0) {
      Fail(plan, Step::kNamespace);
    }
  }
  if (plan->new_session && syscall(SYS_setsid) < 0) {
    Fail(plan, Step::kSession);
  }
  if (plan->new_process_group && syscall(SYS_setpgid, 0, 0) != 0) {
    Fail(plan, Step::kSession);
  }
  // Every source is first copied above all targets, so no dup2 can overwrite
  // a source another mapping still needs.
  for (int i = 0; i < plan->fd_count; ++i) {
    long fd = syscall(SYS_fcntl, plan->sources[i], F_DUPFD_CLOEXEC, plan->max_target + 1);
    if (fd < 0) {
      Fail(plan, Step::kFds);
    }
    plan->high[i] = static_cast<int>(fd);
  }
  if (plan->exec_fd >= 0) {
    long fd = syscall(SYS_fcntl, plan->exec_fd, F_DUPFD_CLOEXEC, plan->max_target + 1);
    if (fd < 0) {
      Fail(plan, Step::kFds);
    }
    plan->exec_high = static_cast<int>(fd);
  }
  for (int i = 0; i < plan->fd_count; ++i) {
    // dup2 leaves the target without FD_CLOEXEC.
    if (syscall(SYS_dup2, plan->high[i], plan->targets[i]) < 0) {
      Fail(plan, Step::kFds);
    }
  }
  for (int fd = 3; fd <= plan->max_target; ++fd) {
    if (!IsTarget(plan, fd)) {
      syscall(SYS_close, fd);
    }
  }
  // The program's descriptor stays, close-on-exec, just above the targets;
  // everything from there up is closed.
  int first_closed = plan->max_target + 1;
  if (plan->exec_fd >= 0) {
    if (plan->exec_high != first_closed &&
        syscall(SYS_dup3, plan->exec_high, first_closed, O_CLOEXEC) < 0) {
      Fail(plan, Step::kFds);
    }
    plan->exec_fd = first_closed++;
  }
  if (syscall(SYS_close_range, static_cast<unsigned>(first_closed), ~0U, 0U) != 0) {
    for (int fd = first_closed; fd < plan->nofile; ++fd) {
      syscall(SYS_close, fd);
    }
  }
  if (plan->cwd != nullptr && syscall(SYS_chdir, plan->cwd) != 0) {
    Fail(plan, Step::kChdir);
  }
  if (plan->detach) {
    // The grandchild borrows the same memory; this process waits until it
    // has exec'd (or failed) and exits, which re-parents it.
    pid_t pid =
        clone(GrandchildMain, plan->grandchild_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, plan);
    if (pid < 0) {
      Fail(plan, Step::kDetach);
    }
    plan->grandchild = pid;
    syscall(SYS_exit_group, plan->step == Step::kNone ? 0 : 127);
  }
  Exec(plan);
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) {
    out.push_back(const_cast<char*>(s.c_str()));
  }
  out.push_back(nullptr);
  return out;
}

// Unmaps the child's stacks on every return path.
struct Stacks {
  void* base = MAP_FAILED;
  size_t size = 0;
  ~Stacks() {
    if (base != MAP_FAILED) {
      munmap(base, size);
    }
  }
};

}  // namespace

int WaitForExit(pid_t pid) {
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, 0) == pid) {
      return status;
    }
    if (errno != EINTR) {
      return -1;
    }
  }
}

absl::StatusOr<SpawnedProcess> Spawn(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return absl::InvalidArgumentError("spawn: no program given");
  }
  const std::string& binary = options.argv[0];
  if (options.detach && options.new_pid_namespace) {
    return absl::InvalidArgumentError(
        absl::StrCat("spawn ", binary, ": a detached process cannot start a PID namespace"));
  }
  if (options.new_user_namespace && !options.join_namespaces.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spawn ", binary, ": namespaces cannot be joined from a new user namespace"));
  }
  if (options.exec_fd >= 0 && ::fcntl(options.exec_fd, F_GETFD) < 0) {
    return ErrnoError(errno, "spawn ", binary, ": exec_fd ", options.exec_fd);
  }
  std::vector<int> sources = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  std::vector<int> targets = {0, 1, 2};
  for (const FdMapping& m : options.extra_fds) {
    if (m.parent_fd < 0 || m.child_fd <= 2 ||
        std::find(targets.begin(), targets.end(), m.child_fd) != targets.end()) {
      return absl::InvalidArgumentError(absl::StrCat("spawn ", binary, ": descriptor ", m.parent_fd,
                                                     " cannot become ", m.child_fd));
    }
    sources.push_back(m.parent_fd);
    targets.push_back(m.child_fd);
  }
  UniqueFd devnull;
  for (int i = 0; i < 3; ++i) {
    if (sources[i] >= 0) {
      continue;
    }
    if (!devnull.valid()) {
      devnull.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!devnull.valid()) {
        return ErrnoError(errno, "open /dev/null for ", binary);
      }
    }
    sources[i] = devnull.get();
  }
  std::vector<int> high(sources.size(), -1);
  std::vector<char*> argv = CStrings(options.argv);
  std::vector<char*> env_storage;
  char* const* envp = environ;
  if (options.env.has_value()) {
    env_storage = CStrings(*options.env);
    envp = env_storage.data();
  }
  struct rlimit nofile = {};
  getrlimit(RLIMIT_NOFILE, &nofile);

  ChildPlan plan;
  plan.path = binary.c_str();
  plan.exec_fd = options.exec_fd;
  plan.argv = argv.data();
  plan.envp = envp;
  plan.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  plan.sources = sources.data();
  plan.targets = targets.data();
  plan.high = high.data();
  plan.fd_count = static_cast<int>(sources.size());
  plan.max_target = *std::max_element(targets.begin(), targets.end());
  plan.nofile = nofile.rlim_cur == RLIM_INFINITY
                    ? 65536
                    : static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20));
  plan.namespaces = options.join_namespaces.data();
  plan.namespace_count = options.join_namespaces.size();
  plan.new_session = options.new_session;
  plan.new_process_group = options.new_process_group;
  plan.detach = options.detach;

  Stacks stacks;
  stacks.size = 2 * kChildStackSize;
  stacks.base = mmap(nullptr, stacks.size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stacks.base == MAP_FAILED) {
    return ErrnoError(errno, "mmap a stack to start ", binary);
  }
  // Stacks grow down: each starts at the top of its half.
  char* child_stack_top = static_cast<char*>(stacks.base) + kChildStackSize;
  plan.grandchild_stack_top = static_cast<char*>(stacks.base) + stacks.size;

  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  if (options.new_pid_namespace) {
    flags |= CLONE_NEWPID;
  }
  if (options.new_user_namespace) {
    flags |= CLONE_NEWUSER;
  }
  int pidfd = -1;
  if (!options.detach) {
    flags |= CLONE_PIDFD;
  }
  // All signals blocked, glibc's own included, so no handler of crid's runs
  // in the child before it has reset them.
  const uint64_t all = ~uint64_t{0};
  uint64_t saved = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, sizeof(all));
  pid_t pid = clone(ChildMain, child_stack_top, flags, &plan, &pidfd);
  const int clone_errno = errno;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &saved, nullptr, sizeof(saved));
  if (pid < 0) {
    return ErrnoError(clone_errno, "clone to start ", binary);
  }
  SpawnedProcess process;
  process.pidfd.reset(pidfd);
  if (plan.step != Step::kNone || options.detach) {
    // The child has exited or is about to: reap it (the intermediate one of a
    // detached start always; a failed one always).
    WaitForExit(pid);
  }
  if (plan.step != Step::kNone) {
    return ErrnoError(plan.err, StepName(plan.step), " ", binary);
  }
  if (options.detach) {
    process.pid = plan.grandchild;
    return process;
  }
  process.pid = pid;
  return process;
}

}  // namespace crid
