#include "container/seccomp.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {

namespace {

using json = nlohmann::json;
namespace v1 = ::runtime::v1;

constexpr size_t kMaxProfileBytes = 1 << 20;

// Allowed for every container. Names unknown to the kernel or to libseccomp are
// skipped by the OCI runtime, so 32-bit and newer syscalls can be listed safely.
constexpr const char* kAllowed[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // Tracing one's own children is harmless since kernel 4.8's ptrace/seccomp fix.
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
};

struct CapabilityGroup {
  const char* capability;
  std::vector<const char*> syscalls;
};

const std::vector<CapabilityGroup>& CapabilityGroups() {
  static const std::vector<CapabilityGroup> groups = {
      {"CAP_SYS_ADMIN",
       {"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
        "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
        "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
        "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
        "umount",        "umount2",       "unshare"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_CHROOT", {"chroot"}},
      {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
      {"CAP_SYS_PACCT", {"acct"}},
      {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
      {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
      {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
      {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
      {"CAP_SYSLOG", {"syslog"}},
      {"CAP_BPF", {"bpf"}},
      {"CAP_PERFMON", {"perf_event_open"}},
  };
  return groups;
}

bool Has(const std::vector<std::string>& caps, const std::string& cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

json Allow(std::vector<std::string> names) {
  return json{{"names", std::move(names)}, {"action", "SCMP_ACT_ALLOW"}};
}

// Docker's archMap key -> the OCI architectures it stands for.
std::vector<std::string> ArchitecturesFromArchMap(const json& arch_map) {
  std::vector<std::string> out;
  for (const json& entry : arch_map) {
    if (entry.value("architecture", "") == "SCMP_ARCH_X86_64") {
      out.emplace_back("SCMP_ARCH_X86_64");
      for (const json& sub : entry.value("subArchitectures", json::array())) {
        out.push_back(sub.get<std::string>());
      }
    }
  }
  return out;
}

// Whether a Docker-format includes/excludes condition holds for this container.
bool ConditionHolds(const json& condition, const std::vector<std::string>& caps, bool include) {
  if (!condition.is_object() || condition.empty()) {
    return include;
  }
  bool caps_match = true;
  if (condition.contains("caps")) {
    caps_match = false;
    for (const json& c : condition["caps"]) {
      if (Has(caps, c.get<std::string>())) {
        caps_match = true;
      }
    }
  }
  bool arch_match = true;
  if (condition.contains("arches")) {
    arch_match = false;
    for (const json& a : condition["arches"]) {
      std::string arch = a.get<std::string>();
      if (arch == "amd64" || arch == "x86_64" || arch == "x86" || arch == "x32" || arch == "386") {
        arch_match = true;
      }
    }
  }
  return caps_match && arch_match;
}

}  // namespace

json DefaultSeccompProfile(const std::vector<std::string>& capabilities) {
  std::vector<std::string> allowed(std::begin(kAllowed), std::end(kAllowed));
  json syscalls = json::array();
  syscalls.push_back(Allow(allowed));
  // personality: only the harmless personas.
  for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
    syscalls.push_back({{"names", {"personality"}},
                        {"action", "SCMP_ACT_ALLOW"},
                        {"args", {{{"index", 0}, {"value", persona}, {"op", "SCMP_CMP_EQ"}}}}});
  }
  bool sys_admin = Has(capabilities, "CAP_SYS_ADMIN");
  for (const CapabilityGroup& group : CapabilityGroups()) {
    if (Has(capabilities, group.capability)) {
      syscalls.push_back(
          Allow(std::vector<std::string>(group.syscalls.begin(), group.syscalls.end())));
    }
  }
  if (!sys_admin) {
    // clone without namespace flags (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
    syscalls.push_back(
        {{"names", {"clone"}},
         {"action", "SCMP_ACT_ALLOW"},
         {"args",
          {{{"index", 0}, {"value", 0x7E020000}, {"valueTwo", 0}, {"op", "SCMP_CMP_MASKED_EQ"}}}}});
    // clone3's flags are behind a pointer: ENOSYS makes libc fall back to clone.
    syscalls.push_back({{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}});
  }
  return json{{"defaultAction", "SCMP_ACT_ERRNO"},
              {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
              {"syscalls", syscalls}};
}

absl::StatusOr<json> ConvertSeccompProfile(const std::string& text,
                                           const std::vector<std::string>& capabilities,
                                           const std::string& origin) {
  json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp profile ", origin, ": not a JSON object"));
  }
  if (!in.contains("defaultAction") || !in["defaultAction"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp profile ", origin, ": defaultAction is missing"));
  }
  json out = {{"defaultAction", in["defaultAction"]}};
  for (const char* key : {"defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"}) {
    if (in.contains(key)) {
      out[key] = in[key];
    }
  }
  if (in.contains("architectures")) {
    out["architectures"] = in["architectures"];
  } else if (in.contains("archMap")) {
    out["architectures"] = ArchitecturesFromArchMap(in["archMap"]);
  }
  json syscalls = json::array();
  for (const json& rule : in.value("syscalls", json::array())) {
    if (!rule.is_object() || !rule.contains("action")) {
      return absl::InvalidArgumentError(
          absl::StrCat("seccomp profile ", origin, ": a syscalls entry has no action"));
    }
    if (!ConditionHolds(rule.value("includes", json::object()), capabilities, true) ||
        (rule.contains("excludes") && !rule["excludes"].empty() &&
         ConditionHolds(rule["excludes"], capabilities, false))) {
      continue;
    }
    json names = rule.value("names", json::array());
    if (rule.contains("name")) {
      names.push_back(rule["name"]);
    }
    json converted = {{"names", names}, {"action", rule["action"]}};
    for (const char* key : {"args", "errnoRet"}) {
      if (rule.contains(key) && !rule[key].is_null()) {
        converted[key] = rule[key];
      }
    }
    syscalls.push_back(converted);
  }
  out["syscalls"] = syscalls;
  return out;
}

absl::StatusOr<json> SeccompForContainer(const v1::LinuxContainerSecurityContext& sc,
                                         const std::vector<std::string>& capabilities) {
  if (sc.privileged()) {
    return json();
  }
  std::string localhost_path;
  if (sc.has_seccomp()) {
    switch (sc.seccomp().profile_type()) {
      case v1::SecurityProfile::RuntimeDefault:
        return DefaultSeccompProfile(capabilities);
      case v1::SecurityProfile::Unconfined:
        return json();
      case v1::SecurityProfile::Localhost:
        localhost_path = sc.seccomp().localhost_ref();
        if (localhost_path.empty() || localhost_path[0] != '/') {
          return absl::InvalidArgumentError(absl::StrCat(
              "linux.security_context.seccomp.localhost_ref: must be an absolute path, got \"",
              localhost_path, "\""));
        }
        break;
      default:
        return absl::InvalidArgumentError(
            "linux.security_context.seccomp.profile_type: unknown type");
    }
  } else {
    // The deprecated string form, still sent by older kubelets and critest.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const std::string& path = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
    if (path.empty() || path == "unconfined") {
      return json();
    }
    if (path == "runtime/default" || path == "docker/default") {
      return DefaultSeccompProfile(capabilities);
    }
    if (!absl::StartsWith(path, "localhost/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "linux.security_context.seccomp_profile_path: \"", path,
          "\" must be runtime/default, docker/default, unconfined or localhost/<path>"));
    }
    localhost_path = path.substr(std::string("localhost").size());
  }
  absl::StatusOr<std::string> text = ReadFile(localhost_path);
  if (!text.ok()) {
    return Annotate(text.status(), "linux.security_context.seccomp: loading the localhost profile");
  }
  if (text->size() > kMaxProfileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp profile ", localhost_path, " is over 1 MiB"));
  }
  return ConvertSeccompProfile(*text, capabilities, localhost_path);
}

}  // namespace crid
