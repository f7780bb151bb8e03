#include "oci/native_exec.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"
#include "oci/capability_names.h"

namespace crid {

namespace {

using json = nlohmann::json;

constexpr std::array<const char*, 16> kRlimits = {
    "RLIMIT_CPU",      "RLIMIT_FSIZE", "RLIMIT_DATA",   "RLIMIT_STACK",
    "RLIMIT_CORE",     "RLIMIT_RSS",   "RLIMIT_NPROC",  "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",  "RLIMIT_AS",    "RLIMIT_LOCKS",  "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE", "RLIMIT_NICE",  "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

absl::Status Unsupported(absl::string_view why) {
  return absl::UnimplementedError(absl::StrCat("native exec: ", why));
}

absl::StatusOr<uint64_t> CapabilityMask(const json& list, absl::string_view field) {
  if (list.is_null()) {
    return 0;
  }
  if (!list.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be an array"));
  }
  uint64_t mask = 0;
  for (const json& name : list) {
    if (!name.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": must hold strings"));
    }
    auto it = std::find_if(kCapabilityNames.begin(), kCapabilityNames.end(),
                           [&](const char* cap) { return name.get<std::string>() == cap; });
    if (it == kCapabilityNames.end()) {
      return Unsupported(absl::StrCat(field, ": unknown capability ", name.get<std::string>()));
    }
    mask |= uint64_t{1} << (it - kCapabilityNames.begin());
  }
  return mask;
}

absl::StatusOr<uint32_t> Id(const json& v, absl::string_view field) {
  if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be a 32-bit unsigned number"));
  }
  return v.get<uint32_t>();
}

// The keys of `object` outside `known`: the native path does not know what
// they would change, so the runtime must run the process.
absl::Status OnlyKnownKeys(const json& object, std::initializer_list<absl::string_view> known,
                           absl::string_view field) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Unsupported(absl::StrCat(field, ".", key, " is set"));
    }
  }
  return absl::OkStatus();
}

// The seccomp(2) flags runc 1.1 loads linux.seccomp's filter with; refuses
// profiles whose filter the native path cannot take over from the init.
absl::StatusOr<unsigned int> SeccompFlags(const json& seccomp) {
  if (!seccomp.is_object()) {
    return absl::InvalidArgumentError("linux.seccomp: must be an object");
  }
  // A user-notification filter hands its listener fd to an agent at load
  // time; a copy of the program would have none.
  if (!seccomp.value("listenerPath", "").empty()) {
    return Unsupported("linux.seccomp.listenerPath is set");
  }
  if (seccomp.value("defaultAction", "") == "SCMP_ACT_NOTIFY") {
    return Unsupported("linux.seccomp.defaultAction is SCMP_ACT_NOTIFY");
  }
  if (seccomp.contains("syscalls") && seccomp["syscalls"].is_array()) {
    for (const json& rule : seccomp["syscalls"]) {
      if (rule.is_object() && rule.value("action", "") == "SCMP_ACT_NOTIFY") {
        return Unsupported("linux.seccomp.syscalls has SCMP_ACT_NOTIFY");
      }
    }
  }
  unsigned int flags = 0;
  if (seccomp.contains("flags") && !seccomp["flags"].is_null()) {
    if (!seccomp["flags"].is_array()) {
      return absl::InvalidArgumentError("linux.seccomp.flags: must be an array");
    }
    for (const json& flag : seccomp["flags"]) {
      if (!flag.is_string()) {
        return absl::InvalidArgumentError("linux.seccomp.flags: must hold strings");
      }
      const std::string name = flag.get<std::string>();
      if (name == "SECCOMP_FILTER_FLAG_LOG") {
        flags |= SECCOMP_FILTER_FLAG_LOG;
      } else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") {
        flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
      } else if (name != "SECCOMP_FILTER_FLAG_TSYNC") {
        // runc 1.1 accepts TSYNC and ignores it (its process is single
        // threaded at exec, as ours is); it knows no other flag.
        return Unsupported(absl::StrCat("linux.seccomp.flags: unknown flag ", name));
      }
    }
  }
  return flags;
}

}  // namespace

absl::StatusOr<NativeExecSpec> ParseNativeExecSpec(const std::string& config_json) {
  json config = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object() || !config.contains("process") || !config["process"].is_object()) {
    return absl::InvalidArgumentError("config.json: no process object");
  }
  const json& process = config["process"];
  NativeExecSpec spec;

  // What the native path does not reproduce: the runtime runs those execs.
  if (config.contains("linux") && config["linux"].is_object()) {
    const json& linux = config["linux"];
    if (linux.contains("seccomp") && !linux["seccomp"].is_null()) {
      CRID_ASSIGN_OR_RETURN(spec.seccomp_flags, SeccompFlags(linux["seccomp"]));
      spec.seccomp = true;
    }
    if (linux.contains("namespaces") && linux["namespaces"].is_array()) {
      for (const json& ns : linux["namespaces"]) {
        if (ns.is_object() && ns.value("type", "") == "user") {
          return Unsupported("the container has a user namespace");
        }
        if (ns.is_object() && ns.value("type", "") == "time") {
          return Unsupported("the container has a time namespace");
        }
      }
    }
    if (linux.contains("personality")) {
      return Unsupported("linux.personality is set");
    }
  }
  CRID_RETURN_IF_ERROR(OnlyKnownKeys(
      process,
      {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
       "noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel"},
      "process"));
  if (!process.value("apparmorProfile", "").empty()) {
    return Unsupported("process.apparmorProfile is set");
  }
  if (!process.value("selinuxLabel", "").empty()) {
    return Unsupported("process.selinuxLabel is set");
  }

  if (!process.contains("user") || !process["user"].is_object()) {
    return absl::InvalidArgumentError("process.user: missing");
  }
  const json& user = process["user"];
  CRID_RETURN_IF_ERROR(
      OnlyKnownKeys(user, {"uid", "gid", "additionalGids", "umask"}, "process.user"));
  CRID_ASSIGN_OR_RETURN(spec.uid, Id(user.value("uid", json(0U)), "process.user.uid"));
  CRID_ASSIGN_OR_RETURN(spec.gid, Id(user.value("gid", json(0U)), "process.user.gid"));
  if (user.contains("additionalGids") && !user["additionalGids"].is_null()) {
    if (!user["additionalGids"].is_array()) {
      return absl::InvalidArgumentError("process.user.additionalGids: must be an array");
    }
    for (const json& g : user["additionalGids"]) {
      CRID_ASSIGN_OR_RETURN(uint32_t gid, Id(g, "process.user.additionalGids"));
      spec.additional_gids.push_back(gid);
    }
  }
  if (user.contains("umask") && !user["umask"].is_null()) {
    CRID_ASSIGN_OR_RETURN(uint32_t umask, Id(user["umask"], "process.user.umask"));
    spec.umask = umask & 0777;
  }

  if (process.contains("env") && !process["env"].is_null()) {
    if (!process["env"].is_array()) {
      return absl::InvalidArgumentError("process.env: must be an array");
    }
    for (const json& e : process["env"]) {
      if (!e.is_string()) {
        return absl::InvalidArgumentError("process.env: must hold strings");
      }
      spec.env.push_back(e.get<std::string>());
    }
  }
  // runc fills a missing HOME from the container's /etc/passwd.
  if (std::none_of(spec.env.begin(), spec.env.end(),
                   [](const std::string& e) { return absl::StartsWith(e, "HOME="); })) {
    return Unsupported("process.env has no HOME");
  }
  spec.cwd = process.value("cwd", "");
  if (spec.cwd.empty() || spec.cwd[0] != '/') {
    return absl::InvalidArgumentError("process.cwd: must be an absolute path");
  }

  // Without a capabilities object runc leaves the capabilities alone.
  if (!process.contains("capabilities") || !process["capabilities"].is_object()) {
    return Unsupported("process.capabilities is not set");
  }
  const json& caps = process["capabilities"];
  CRID_RETURN_IF_ERROR(
      OnlyKnownKeys(caps, {"bounding", "effective", "inheritable", "permitted", "ambient"},
                    "process.capabilities"));
  CRID_ASSIGN_OR_RETURN(spec.bounding, CapabilityMask(caps.value("bounding", json()),
                                                      "process.capabilities.bounding"));
  CRID_ASSIGN_OR_RETURN(spec.effective, CapabilityMask(caps.value("effective", json()),
                                                       "process.capabilities.effective"));
  CRID_ASSIGN_OR_RETURN(spec.inheritable, CapabilityMask(caps.value("inheritable", json()),
                                                         "process.capabilities.inheritable"));
  CRID_ASSIGN_OR_RETURN(spec.permitted, CapabilityMask(caps.value("permitted", json()),
                                                       "process.capabilities.permitted"));
  CRID_ASSIGN_OR_RETURN(
      spec.ambient, CapabilityMask(caps.value("ambient", json()), "process.capabilities.ambient"));

  if (process.contains("rlimits") && !process["rlimits"].is_null()) {
    if (!process["rlimits"].is_array()) {
      return absl::InvalidArgumentError("process.rlimits: must be an array");
    }
    for (const json& r : process["rlimits"]) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string() ||
          !r.value("soft", json()).is_number_unsigned() ||
          !r.value("hard", json()).is_number_unsigned()) {
        return absl::InvalidArgumentError("process.rlimits: each needs type, soft and hard");
      }
      std::string type = r["type"].get<std::string>();
      auto it = std::find_if(kRlimits.begin(), kRlimits.end(),
                             [&](const char* name) { return type == name; });
      if (it == kRlimits.end()) {
        return Unsupported(absl::StrCat("process.rlimits: unknown type ", type));
      }
      spec.rlimits.push_back({static_cast<int>(it - kRlimits.begin()), r["soft"].get<uint64_t>(),
                              r["hard"].get<uint64_t>()});
    }
  }
  spec.no_new_privileges = process.value("noNewPrivileges", false);
  if (process.contains("oomScoreAdj") && !process["oomScoreAdj"].is_null()) {
    if (!process["oomScoreAdj"].is_number_integer()) {
      return absl::InvalidArgumentError("process.oomScoreAdj: must be an integer");
    }
    spec.oom_score_adj = process["oomScoreAdj"].get<int>();
  }
  return spec;
}

absl::StatusOr<NativeExecSpec> LoadNativeExecSpec(const std::string& bundle) {
  CRID_ASSIGN_OR_RETURN(std::string text, ReadFile(bundle + "/config.json"));
  return ParseNativeExecSpec(text);
}

std::vector<std::string> ExecCandidates(const std::string& arg0,
                                        const std::vector<std::string>& env) {
  if (absl::StrContains(arg0, '/')) {
    return {arg0};
  }
  std::vector<std::string> candidates;
  for (const std::string& e : env) {
    absl::string_view path = e;
    if (!absl::ConsumePrefix(&path, "PATH=")) {
      continue;
    }
    // The process's own getenv would see the first PATH.
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      candidates.push_back(absl::StrCat(dir.empty() ? "." : dir, "/", arg0));
    }
    break;
  }
  return candidates;
}

std::vector<std::string> CgroupProcsFiles(const std::string& proc_cgroup,
                                          const std::map<std::string, std::string>& v1_mounts,
                                          const std::string& unified_mount) {
  std::vector<std::string> files;
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3 || parts[2].empty() || parts[2][0] != '/') {
      continue;
    }
    std::string mount;
    if (parts[0] == "0" && parts[1].empty()) {
      mount = unified_mount;
    } else {
      for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
        auto it = v1_mounts.find(std::string(controller));
        if (it != v1_mounts.end()) {
          mount = it->second;
          break;
        }
      }
    }
    if (mount.empty()) {
      continue;
    }
    std::string dir = absl::StrCat(mount, parts[2] == "/" ? "" : parts[2]);
    files.push_back(dir + "/cgroup.procs");
  }
  return files;
}

namespace {

// What the helper processes tell the caller over the report pipe: the pid of
// the process, or the step that failed with its errno. One write each, far
// below PIPE_BUF, so records never interleave.
enum class Step : int32_t {
  kPid = 0,
  kSetns,
  kClone,
  kSignals,
  kRlimit,
  kKeyring,
  kStdioOwner,
  kBounding,
  kKeepCaps,
  kGroups,
  kGid,
  kUid,
  kChdir,
  kCapset,
  kAmbient,
  kNoNewPrivs,
  kSeccomp,
  kStat,
  kNotFound,
  kExec,
};

struct Report {
  Step step = Step::kPid;
  int32_t err = 0;
  int32_t value = 0;  // the pid (kPid), or the candidate that failed
};

// Fixed descriptors in the helpers once they have put their own in place.
constexpr int kReportFd = 3;
constexpr int kGoFd = 4;
constexpr int kPidFd = 5;

// Everything the helpers need, made before fork: after it, in a child of a
// threaded process, only async-signal-safe calls are allowed (no allocation).
struct ChildPlan {
  const NativeExecSpec* spec = nullptr;
  int in = -1;
  int out = -1;
  int err = -1;
  int report = -1;
  int go = -1;
  int pidfd = -1;
  int last_cap = 40;
  const char* keyring = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* const* candidates = nullptr;
  size_t candidate_count = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  bool path_search = false;
  dev_t null_rdev = 0;
  const struct sock_fprog* seccomp = nullptr;  // null: no filter to load
};

[[noreturn]] void Fail(Step step, int err, int value = 0) {
  Report r{step, err, value};
  (void)!::write(kReportFd, &r, sizeof(r));
  ::_exit(127);
}

void LoadSeccomp(const ChildPlan& plan) {
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, plan.spec->seccomp_flags, plan.seccomp) !=
      0) {
    Fail(Step::kSeccomp, errno);
  }
}

// Moves the fds the helpers keep to 0-5 and closes every other: nothing of
// the shim (other containers' pipes, its sockets) may enter the container.
void PlaceFds(const ChildPlan& plan) {
  int keep[] = {plan.in, plan.out, plan.err, plan.report, plan.go, plan.pidfd};
  int base = kPidFd + 1;
  for (int fd : keep) {
    base = std::max(base, fd + 1);
  }
  int high[6];
  for (int i = 0; i < 6; ++i) {
    high[i] = ::fcntl(keep[i], F_DUPFD_CLOEXEC, base);
    if (high[i] < 0) {
      ::_exit(126);
    }
  }
  for (int i = 0; i < 6; ++i) {
    // stdio loses O_CLOEXEC (dup2), the helpers' own fds keep it (dup3).
    int rc = i < 3 ? ::dup2(high[i], i) : ::dup3(high[i], i, O_CLOEXEC);
    if (rc < 0) {
      ::_exit(126);
    }
  }
  ::syscall(SYS_close_range, kPidFd + 1, ~0U, 0);
}

// The exec'd process, from the go signal on: the process spec of
// config.json in the order runc's setns init applies it.
[[noreturn]] void RunProcess(const ChildPlan& plan) {
  char go = 0;
  ssize_t n;
  do {
    n = ::read(kGoFd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    ::_exit(127);  // the caller gave up; it reaps us
  }
  ::close(kGoFd);
  const NativeExecSpec& spec = *plan.spec;

  // The shim blocks SIGCHLD and may ignore others; dispositions set to
  // SIG_IGN and the mask would survive execve.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::sigaction(sig, &dfl, nullptr);  // glibc's internal signals fail: fine
    }
  }
  uint64_t empty_mask = 0;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, sizeof(empty_mask)) != 0) {
    Fail(Step::kSignals, errno);
  }
  for (const NativeExecSpec::Rlimit& r : spec.rlimits) {
    struct rlimit limit = {r.soft, r.hard};
    if (::syscall(SYS_prlimit64, 0, r.resource, &limit, nullptr) != 0) {
      Fail(Step::kRlimit, errno, r.resource);
    }
  }
  // runc joins the container's session keyring instead of the shim's.
  if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, plan.keyring) < 0 && errno != ENOSYS) {
    Fail(Step::kKeyring, errno);
  }
  if (spec.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Fail(Step::kNoNewPrivs, errno);
  }
  // runc's setns init: without no_new_privs loading a filter takes
  // CAP_SYS_ADMIN, so it is loaded before the capabilities go; with it, as
  // late as possible (below), so the profile need not allow runc's own calls.
  if (plan.seccomp != nullptr && !spec.no_new_privileges) {
    LoadSeccomp(plan);
  }
  // As runc: the user may reopen its stdio (/dev/stdout) through /proc.
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || (S_ISCHR(st.st_mode) && st.st_rdev == plan.null_rdev) ||
        st.st_uid == spec.uid) {
      continue;
    }
    if (::fchown(fd, spec.uid, st.st_gid) != 0) {
      Fail(Step::kStdioOwner, errno, fd);
    }
  }
  for (int cap = 0; cap <= plan.last_cap && cap < 64; ++cap) {
    if ((spec.bounding & (uint64_t{1} << cap)) == 0 &&
        ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Fail(Step::kBounding, errno, cap);
    }
  }
  // A cwd only the container's user may enter is entered after the switch.
  bool chdir_done = ::chdir(spec.cwd.c_str()) == 0;
  if (!chdir_done && errno != EACCES && errno != EPERM) {
    Fail(Step::kChdir, errno);
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    Fail(Step::kKeepCaps, errno);
  }
  // Raw syscalls: glibc's wrappers would signal the shim's other threads,
  // which do not exist in this process.
  if (::syscall(SYS_setgroups, plan.group_count, plan.groups) != 0) {
    Fail(Step::kGroups, errno);
  }
  if (::syscall(SYS_setresgid, spec.gid, spec.gid, spec.gid) != 0) {
    Fail(Step::kGid, errno);
  }
  if (::syscall(SYS_setresuid, spec.uid, spec.uid, spec.uid) != 0) {
    Fail(Step::kUid, errno);
  }
  if (!chdir_done && ::chdir(spec.cwd.c_str()) != 0) {
    Fail(Step::kChdir, errno);
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    Fail(Step::kKeepCaps, errno);
  }
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  data[0].effective = static_cast<uint32_t>(spec.effective);
  data[1].effective = static_cast<uint32_t>(spec.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(spec.permitted);
  data[1].permitted = static_cast<uint32_t>(spec.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(spec.inheritable);
  data[1].inheritable = static_cast<uint32_t>(spec.inheritable >> 32);
  if (::syscall(SYS_capset, &header, data) != 0) {
    Fail(Step::kCapset, errno);
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int cap = 0; cap <= plan.last_cap && cap < 64; ++cap) {
    // EINVAL: not in permitted and inheritable, which runc ignores too.
    if ((spec.ambient & (uint64_t{1} << cap)) != 0 &&
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0 && errno != EINVAL) {
      Fail(Step::kAmbient, errno, cap);
    }
  }
  if (spec.umask.has_value()) {
    ::umask(static_cast<mode_t>(*spec.umask));
  }
  if (plan.seccomp != nullptr && spec.no_new_privileges) {
    LoadSeccomp(plan);
  }
  // Go's exec.LookPath: the first candidate that is a file with an execute bit.
  for (size_t i = 0; i < plan.candidate_count; ++i) {
    struct stat st;
    if (::stat(plan.candidates[i], &st) != 0) {
      if (!plan.path_search) {
        Fail(Step::kStat, errno, static_cast<int32_t>(i));
      }
      continue;
    }
    if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0) {
      if (!plan.path_search) {
        Fail(Step::kStat, EACCES, static_cast<int32_t>(i));
      }
      continue;
    }
    ::execve(plan.candidates[i], plan.argv, plan.envp);
    Fail(Step::kExec, errno, static_cast<int32_t>(i));
  }
  Fail(Step::kNotFound, ENOENT);
}

// The first helper: enters the container's namespaces, whose PID namespace
// only its children join, so it clones the process (a child of the caller,
// CLONE_PARENT), reports its pid and exits.
[[noreturn]] void RunHelper(const ChildPlan& plan) {
  // Until execve nothing in the container may open /proc/<pid>/mem, exe or
  // fd of this process (it still holds the shim's memory image).
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    ::_exit(126);
  }
  PlaceFds(plan);
  if (::setns(kPidFd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
                          CLONE_NEWCGROUP) != 0) {
    Fail(Step::kSetns, errno);
  }
  ::close(kPidFd);
  long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) {
    Fail(Step::kClone, errno);
  }
  if (pid == 0) {
    RunProcess(plan);
  }
  Report r{Step::kPid, 0, static_cast<int32_t>(pid)};
  (void)!::write(kReportFd, &r, sizeof(r));
  ::_exit(0);
}

int WaitFor(ChildWaiter* waiter, pid_t pid) {
  if (waiter != nullptr) {
    return waiter->WaitChild(pid);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Reads one report; false at EOF.
absl::StatusOr<bool> ReadReport(int fd, Report* r) {
  size_t got = 0;
  auto* p = reinterpret_cast<char*>(r);
  while (got < sizeof(*r)) {
    ssize_t n = ::read(fd, p + got, sizeof(*r) - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return ErrnoError(errno, "read the exec helper's report");
    }
    if (n == 0) {
      return false;
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

const char* StepName(Step step) {
  switch (step) {
    case Step::kSetns:
      return "setns into the container's namespaces";
    case Step::kClone:
      return "clone";
    case Step::kSignals:
      return "rt_sigprocmask";
    case Step::kRlimit:
      return "setrlimit";
    case Step::kKeyring:
      return "join session keyring";
    case Step::kStdioOwner:
      return "fchown stdio";
    case Step::kBounding:
      return "drop from the capability bounding set";
    case Step::kKeepCaps:
      return "prctl PR_SET_KEEPCAPS";
    case Step::kGroups:
      return "setgroups";
    case Step::kGid:
      return "setresgid";
    case Step::kUid:
      return "setresuid";
    case Step::kChdir:
      return "chdir to cwd";
    case Step::kCapset:
      return "capset";
    case Step::kAmbient:
      return "raise ambient capability";
    case Step::kNoNewPrivs:
      return "prctl PR_SET_NO_NEW_PRIVS";
    case Step::kSeccomp:
      return "load the seccomp filter";
    default:
      return "exec";
  }
}

// The error a failed report stands for, worded as runc's for the same failure.
absl::Status ReportError(const Report& r, const NativeExecRequest& request,
                         const std::vector<std::string>& candidates) {
  std::string prefix = absl::StrCat(request.runtime_name, " exec ", request.container_id,
                                    ": exec failed: unable to start container process: ");
  const std::string& arg0 = request.args[0];
  auto candidate = [&]() -> std::string {
    return r.value >= 0 && static_cast<size_t>(r.value) < candidates.size()
               ? candidates[static_cast<size_t>(r.value)]
               : arg0;
  };
  switch (r.step) {
    case Step::kNotFound:
      return absl::InternalError(
          absl::StrCat(prefix, "exec: \"", arg0, "\": executable file not found in $PATH"));
    case Step::kStat:
      return absl::InternalError(absl::StrCat(prefix, "exec: \"", arg0, "\": stat ", candidate(),
                                              ": ", absl::AsciiStrToLower(std::strerror(r.err))));
    case Step::kExec:
      return absl::InternalError(absl::StrCat(prefix, "exec ", candidate(), ": ",
                                              absl::AsciiStrToLower(std::strerror(r.err))));
    default:
      return absl::InternalError(
          absl::StrCat(prefix, StepName(r.step), ": ", std::strerror(r.err)));
  }
}

// One write(2) of `text` to a kernel file (cgroup.procs, oom_score_adj).
absl::Status WriteKernelFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return ErrnoError(errno, "open ", path);
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError(errno, "write ", path);
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// What the filter-copying helper reports before the program's instructions.
struct FilterReport {
  int32_t err = 0;          // errno of the failed call, 0 when the copy worked
  int32_t call = 0;         // which call failed (FilterCall)
  int32_t count = 0;        // instructions that follow
  int32_t stop_signal = 0;  // the signal the init was stopped with, given back
};

enum FilterCall : int32_t {
  kSeize = 1,
  kInterrupt,
  kWait,
  kGone,
  kCount,
  kGet,
  kNoFilter,
  kTooLong,
  kDetach,
};

// The "Seccomp_filters:" count of a /proc/<pid>/status text; -1 if absent.
int SeccompFilterCount(const std::string& status) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    int count = 0;
    if (absl::ConsumePrefix(&line, "Seccomp_filters:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &count)) {
      return count;
    }
  }
  return -1;
}

// ptrace(2) without glibc's wrapper, whose PEEK handling and void* address
// and data get in the way of the integer arguments used here.
long Ptrace(long request, pid_t pid, long addr, long data) {
  return ::syscall(SYS_ptrace, request, pid, addr, data);
}

// The helper: seizes the init, stops it, copies the filter `skip` places
// above the oldest and lets it go. A tracee is released when its tracer dies,
// so however this process ends the init is neither left stopped nor traced.
[[noreturn]] void CopyFilter(pid_t pid, int pidfd, int skip, int out, struct sock_filter* buf) {
  FilterReport r;
  auto finish = [&](FilterCall call, int err) {
    r.call = call;
    r.err = err;
    (void)!::write(out, &r, sizeof(r));
    if (err == 0) {
      (void)!::write(out, buf, sizeof(*buf) * static_cast<size_t>(r.count));
    }
    ::_exit(0);
  };
  if (Ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) {
    finish(kSeize, errno);
  }
  // The pid may have been reused since the caller looked: the pidfd tells.
  if (::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0) {
    Ptrace(PTRACE_DETACH, pid, 0, 0);
    finish(kGone, errno);
  }
  if (Ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) {
    int err = errno;
    Ptrace(PTRACE_DETACH, pid, 0, 0);
    finish(kInterrupt, err);
  }
  int status = 0;
  pid_t got;
  do {
    got = ::waitpid(pid, &status, __WALL);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    finish(kWait, errno);  // our exit detaches
  }
  if (!WIFSTOPPED(status)) {
    finish(kGone, ESRCH);  // it died; its parent still gets the exit
  }
  // A signal-delivery stop (no event in the high bits) took the signal from
  // the init: it is handed back at detach. A group stop or our interrupt
  // passes none; a group stop resumes as such once we are gone.
  if ((status >> 16) == 0) {
    r.stop_signal = WSTOPSIG(status);
  }
  auto detach = [&]() {
    if (Ptrace(PTRACE_DETACH, pid, 0, r.stop_signal) != 0) {
      finish(kDetach, errno);
    }
  };
  // Index 0 is the newest filter; count them.
  long total = 0;
  for (; total < BPF_MAXINSNS; ++total) {
    if (Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, total, 0) < 0) {
      if (errno == ENOENT) {
        break;
      }
      int err = errno;
      detach();
      finish(kCount, err);
    }
  }
  // The oldest filters are the ones inherited from us (the init descends
  // from this process through runc, and so will the exec'd process); the one
  // above them is what runc loaded before exec'ing the entrypoint. Filters
  // the entrypoint added later are not the profile: runc exec loads the
  // profile from the container's state, not from the init.
  long index = total - 1 - skip;
  if (index < 0) {
    detach();
    finish(kNoFilter, ENOENT);
  }
  long n = Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, 0);
  if (n > BPF_MAXINSNS) {
    detach();
    finish(kTooLong, E2BIG);
  }
  n = n < 0 ? n : Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, reinterpret_cast<long>(buf));
  int err = errno;
  detach();
  if (n <= 0 || n > BPF_MAXINSNS) {
    finish(kGet, n < 0 ? err : EINVAL);
  }
  r.count = static_cast<int32_t>(n);
  finish(static_cast<FilterCall>(0), 0);
  ::_exit(0);  // not reached: finish exits
}

const char* FilterCallName(int32_t call) {
  switch (call) {
    case kSeize:
      return "ptrace PTRACE_SEIZE of the container's init";
    case kInterrupt:
      return "ptrace PTRACE_INTERRUPT";
    case kWait:
      return "waitpid for the init's ptrace stop";
    case kGone:
      return "the container's init is gone";
    case kCount:
    case kGet:
      return "ptrace PTRACE_SECCOMP_GET_FILTER";
    case kNoFilter:
      return "the container's init has no seccomp filter of its own";
    case kTooLong:
      return "the init's seccomp filter is longer than BPF_MAXINSNS";
    case kDetach:
      return "ptrace PTRACE_DETACH";
    default:
      return "copy of the seccomp filter";
  }
}

// How long the init may take to reach its ptrace stop: a frozen (paused)
// container would not, and the exec is not worth waiting for it.
constexpr int kFilterCopyTimeoutMs = 2000;

}  // namespace

absl::StatusOr<std::vector<struct sock_filter>> ReadInitSeccompFilter(pid_t pid, int pidfd,
                                                                      ChildWaiter* waiter) {
  CRID_ASSIGN_OR_RETURN(std::string own_status, ReadFile("/proc/self/status"));
  int own = SeccompFilterCount(own_status);
  if (own < 0) {
    return Unsupported("the kernel reports no Seccomp_filters in /proc/<pid>/status");
  }
  CRID_ASSIGN_OR_RETURN(std::string init_status, ReadFile(absl::StrCat("/proc/", pid, "/status")));
  if (SeccompFilterCount(init_status) <= own) {
    return Unsupported("the container's init has no seccomp filter");
  }
  std::vector<struct sock_filter> buf(BPF_MAXINSNS);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  pid_t helper = ::fork();
  if (helper < 0) {
    return ErrnoError(errno, "fork");
  }
  if (helper == 0) {
    CopyFilter(pid, pidfd, own, write_end.get(), buf.data());
  }
  write_end.reset();
  // Reads the report and the program; a helper that hangs (the init never
  // stops) is killed, which releases the init.
  std::vector<char> data;
  absl::Time deadline = absl::Now() + absl::Milliseconds(kFilterCopyTimeoutMs);
  bool timed_out = false;
  for (;;) {
    struct pollfd p = {read_end.get(), POLLIN, 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    int rc = left > 0 ? ::poll(&p, 1, left) : 0;
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc == 0) {
      timed_out = true;
      break;
    }
    char chunk[8192];
    ssize_t n = ::read(read_end.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    data.insert(data.end(), chunk, chunk + n);
  }
  if (timed_out) {
    ::kill(helper, SIGKILL);
  }
  WaitFor(waiter, helper);
  if (timed_out) {
    return Unsupported("the container's init did not reach a ptrace stop in time");
  }
  FilterReport r;
  if (data.size() < sizeof(r)) {
    return Unsupported("the seccomp filter copying helper died");
  }
  std::memcpy(&r, data.data(), sizeof(r));
  if (r.err != 0) {
    return Unsupported(absl::StrCat(FilterCallName(r.call), ": ", std::strerror(r.err)));
  }
  if (r.count <= 0 || data.size() != sizeof(r) + sizeof(struct sock_filter) * r.count) {
    return Unsupported("the seccomp filter copying helper sent a short program");
  }
  std::vector<struct sock_filter> program(static_cast<size_t>(r.count));
  std::memcpy(program.data(), data.data() + sizeof(r), sizeof(struct sock_filter) * r.count);
  return program;
}

absl::StatusOr<pid_t> NativeExec(const NativeExecSpec& spec, const NativeExecRequest& request,
                                 ChildWaiter* waiter) {
  if (request.args.empty() || request.args[0].empty()) {
    return absl::InvalidArgumentError("args: a command is required");
  }
  if (request.init_pidfd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", request.container_id, ": no pidfd of its init"));
  }
  // Everything the children use, made now (see ChildPlan).
  std::vector<std::string> candidates = ExecCandidates(request.args[0], spec.env);
  std::vector<char*> argv;
  for (const std::string& a : request.args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : spec.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  std::vector<const char*> candidate_ptrs;
  candidate_ptrs.reserve(candidates.size());
  for (const std::string& c : candidates) {
    candidate_ptrs.push_back(c.c_str());
  }
  std::vector<gid_t> groups(spec.additional_gids.begin(), spec.additional_gids.end());
  std::string keyring = absl::StrCat("_ses.", request.container_id);
  const int last_cap = KernelLastCapability();

  UniqueFd dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!dev_null.valid()) {
    return ErrnoError(errno, "open /dev/null");
  }
  struct stat null_st;
  if (::fstat(dev_null.get(), &null_st) != 0) {
    return ErrnoError(errno, "fstat /dev/null");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd report_read(pipe_fds[0]);
  UniqueFd report_write(pipe_fds[1]);
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  UniqueFd go_read(pipe_fds[0]);
  UniqueFd go_write(pipe_fds[1]);

  ChildPlan plan;
  plan.spec = &spec;
  plan.in = request.stdio.in >= 0 ? request.stdio.in : dev_null.get();
  plan.out = request.stdio.out >= 0 ? request.stdio.out : dev_null.get();
  plan.err = request.stdio.err >= 0 ? request.stdio.err : dev_null.get();
  plan.report = report_write.get();
  plan.go = go_read.get();
  plan.pidfd = request.init_pidfd;
  plan.last_cap = last_cap;
  plan.keyring = keyring.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.candidates = candidate_ptrs.data();
  plan.candidate_count = candidate_ptrs.size();
  plan.groups = groups.data();
  plan.group_count = groups.size();
  plan.path_search = !absl::StrContains(request.args[0], '/');
  plan.null_rdev = null_st.st_rdev;
  struct sock_fprog seccomp_prog = {};
  if (spec.seccomp) {
    if (spec.seccomp_filter.empty() || spec.seccomp_filter.size() > BPF_MAXINSNS) {
      return absl::FailedPreconditionError(absl::StrCat(
          "container ", request.container_id, ": linux.seccomp is set but no filter is known"));
    }
    seccomp_prog.len = static_cast<unsigned short>(spec.seccomp_filter.size());
    seccomp_prog.filter = const_cast<struct sock_filter*>(spec.seccomp_filter.data());
    plan.seccomp = &seccomp_prog;
  }

  pid_t helper = ::fork();
  if (helper < 0) {
    return ErrnoError(errno, "fork");
  }
  if (helper == 0) {
    RunHelper(plan);
  }
  report_write.reset();
  go_read.reset();
  Report report;
  absl::StatusOr<bool> got = ReadReport(report_read.get(), &report);
  int helper_status = WaitFor(waiter, helper);
  if (!got.ok()) {
    return got.status();
  }
  if (!*got) {
    return absl::InternalError(absl::StrCat(request.runtime_name, " exec ", request.container_id,
                                            ": the exec helper died (wait status ", helper_status,
                                            ")"));
  }
  if (report.step != Step::kPid) {
    return ReportError(report, request, candidates);
  }
  const pid_t pid = report.value;
  // Stops the process before it ran anything of the container's.
  auto abandon = [&](absl::Status st) {
    ::kill(pid, SIGKILL);
    go_write.reset();
    WaitFor(waiter, pid);
    return st;
  };
  // Into the init's cgroups (from the shim's view of cgroupfs) and its OOM
  // score, before the process runs: it is charged and limited from its start.
  for (const std::string& file : request.cgroup_procs) {
    if (absl::Status st = WriteKernelFile(file, absl::StrCat(pid)); !st.ok()) {
      return abandon(Annotate(st, "joining the container's cgroups"));
    }
  }
  if (spec.oom_score_adj.has_value()) {
    if (absl::Status st = WriteKernelFile(absl::StrCat("/proc/", pid, "/oom_score_adj"),
                                          absl::StrCat(*spec.oom_score_adj));
        !st.ok()) {
      return abandon(st);
    }
  }
  char go = 1;
  if (::write(go_write.get(), &go, 1) != 1) {
    return abandon(ErrnoError(errno, "write to the exec helper"));
  }
  go_write.reset();
  got = ReadReport(report_read.get(), &report);
  if (!got.ok()) {
    return abandon(got.status());
  }
  if (*got) {
    WaitFor(waiter, pid);
    return ReportError(report, request, candidates);
  }
  return pid;  // execve closed the report pipe
}

}  // namespace crid
