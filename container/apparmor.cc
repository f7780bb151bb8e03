// AppArmor as containerd applies it, and crid's default profile: its text,
// the check whether it is loaded, and loading it with apparmor_parser.
#include "container/apparmor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/spawn.h"
#include "base/unique_fd.h"

namespace crid {

namespace {

namespace v1 = ::runtime::v1;

constexpr char kField[] = "linux.security_context.apparmor";
constexpr char kLocalhostPrefix[] = "localhost/";
constexpr char kPolicyDir[] = "/etc/apparmor.d";
constexpr char kLoadedProfiles[] = "/sys/kernel/security/apparmor/profiles";

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A profile name that can stand unquoted in a peer= rule; anything else
// (a name with spaces, say) is left out rather than breaking the profile.
bool PlainProfileName(absl::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '/') {
      return false;
    }
  }
  return true;
}

// The profile crid runs under: /proc/self/attr/current holds "name (mode)"
// or just "unconfined".
std::string OwnProfile() {
  std::string current = ReadFile("/proc/self/attr/current").value_or("");
  absl::string_view name = absl::StripAsciiWhitespace(current);
  name = name.substr(0, name.find(" ("));
  return name.empty() ? "unconfined" : std::string(name);
}

// Runs apparmor_parser: -K keeps the compiled policy out of the host's
// cache (crid regenerates the text anyway), -r replaces a loaded profile of
// the same name.
absl::Status RunAppArmorParser(const std::string& path) {
  std::string parser;
  for (const char* candidate : {"/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"}) {
    if (::access(candidate, X_OK) == 0) {
      parser = candidate;
      break;
    }
  }
  if (parser.empty()) {
    return absl::FailedPreconditionError(
        "linux.security_context.apparmor: apparmor_parser is not installed, cannot load the "
        "default profile");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2 for apparmor_parser");
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  SpawnOptions options;
  options.argv = {parser, "-Kr", path};
  options.stdout_fd = write_end.get();
  options.stderr_fd = write_end.get();
  absl::StatusOr<SpawnedProcess> child = Spawn(options);
  write_end.reset();
  if (!child.ok()) {
    return child.status();
  }
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    if (output.size() < size_t{64} << 10) {
      output.append(buf, static_cast<size_t>(n));
    }
  }
  int status = WaitForExit(child->pid);
  if (status == -1) {
    return ErrnoError(errno, "waitpid ", parser);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(parser, " -Kr ", path, " failed (status ", status,
                                            "): ", absl::StripAsciiWhitespace(output)));
  }
  return absl::OkStatus();
}

// The deprecated apparmor_profile string, read as kubelet wrote it before the
// structured field existed.
absl::StatusOr<v1::SecurityProfile> ProfileFromString(const std::string& value) {
  v1::SecurityProfile profile;
  if (value == "runtime/default" || value == "docker/default") {
    profile.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  } else if (value == "unconfined") {
    profile.set_profile_type(v1::SecurityProfile::Unconfined);
  } else if (absl::StartsWith(value, kLocalhostPrefix)) {
    profile.set_profile_type(v1::SecurityProfile::Localhost);
    profile.set_localhost_ref(std::string(absl::StripPrefix(value, kLocalhostPrefix)));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.security_context.apparmor_profile: unknown profile \"", value,
                     "\" (runtime/default, unconfined or localhost/<name>)"));
  }
  return profile;
}

}  // namespace

AppArmorHost DetectAppArmor(const std::string& state_dir) {
  AppArmorHost host;
  host.enabled =
      absl::StartsWith(ReadFile("/sys/module/apparmor/parameters/enabled").value_or("N"), "Y");
  host.profile_loaded = [](const std::string& name) {
    return AppArmorProfileListed(ReadFile(kLoadedProfiles).value_or(""), name);
  };
  host.load_profile = RunAppArmorParser;
  host.profile_dir = state_dir + "/apparmor";
  if (host.enabled) {
    const std::string dir = kPolicyDir;
    host.default_profile.abi_3_0 = Exists(dir + "/abi/3.0");
    host.default_profile.tunables_global = Exists(dir + "/tunables/global");
    host.default_profile.abstractions_base = Exists(dir + "/abstractions/base");
    host.default_profile.daemon_profile = OwnProfile();
  }
  return host;
}

bool AppArmorProfileListed(absl::string_view profiles, absl::string_view name) {
  // One "name (mode)" line per profile; a name may itself hold spaces, so the
  // mode is what follows the last " (".
  for (absl::string_view line : absl::StrSplit(profiles, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    size_t mode = line.rfind(" (");
    if (mode != absl::string_view::npos && line.substr(0, mode) == name) {
      return true;
    }
  }
  return false;
}

std::string AppArmorDefaultProfileText(const AppArmorTemplate& t) {
  std::string text =
      "# Generated by crid: the profile of containers that ask for RuntimeDefault.\n";
  if (t.abi_3_0) {
    absl::StrAppend(&text, "abi <abi/3.0>,\n");
  }
  absl::StrAppend(&text, t.tunables_global ? "#include <tunables/global>\n" : "@{PROC}=/proc/\n",
                  "\nprofile ", t.name, " flags=(attach_disconnected,mediate_deleted) {\n");
  if (t.abstractions_base) {
    absl::StrAppend(&text, "  #include <abstractions/base>\n");
  }
  absl::StrAppend(&text,
                  "\n"
                  "  network,\n"
                  "  capability,\n"
                  "  file,\n"
                  "  umount,\n"
                  "\n"
                  "  # Host processes, the OCI runtimes and crid may signal the container;\n"
                  "  # its processes may signal each other.\n"
                  "  signal (receive) peer=unconfined,\n"
                  "  signal (receive) peer=runc,\n"
                  "  signal (receive) peer=crun,\n");
  if (t.daemon_profile != "unconfined" && PlainProfileName(t.daemon_profile)) {
    absl::StrAppend(&text, "  signal (receive) peer=", t.daemon_profile, ",\n");
  }
  absl::StrAppend(&text, "  signal (send,receive) peer=", t.name,
                  ",\n"
                  "\n"
                  "  # No writes to the host's kernel settings: files directly in /proc, and\n"
                  "  # anything outside /proc/<pid>/, /proc/sys/kernel/shm* (IPC namespaced).\n"
                  "  deny @{PROC}/* w,\n"
                  "  deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],"
                  "[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,\n"
                  "  deny @{PROC}/sys/[^k]** w,\n"
                  "  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,\n"
                  "  deny @{PROC}/sysrq-trigger rwklx,\n"
                  "  deny @{PROC}/kcore rwklx,\n"
                  "\n"
                  "  deny mount,\n"
                  "\n"
                  "  # /sys is read-only except the container's cgroup files; firmware, powercap\n"
                  "  # and the LSMs' own files are not even readable.\n"
                  "  deny /sys/[^f]*/** wklx,\n"
                  "  deny /sys/f[^s]*/** wklx,\n"
                  "  deny /sys/fs/[^c]*/** wklx,\n"
                  "  deny /sys/fs/c[^g]*/** wklx,\n"
                  "  deny /sys/fs/cg[^r]*/** wklx,\n"
                  "  deny /sys/firmware/** rwklx,\n"
                  "  deny /sys/devices/virtual/powercap/** rwklx,\n"
                  "  deny /sys/kernel/security/** rwklx,\n"
                  "\n"
                  "  # Tracing only among the container's own processes.\n"
                  "  ptrace (trace,tracedby,read,readby) peer=",
                  t.name,
                  ",\n"
                  "}\n");
  return text;
}

absl::Status EnsureAppArmorDefaultProfile(const AppArmorHost& host) {
  // One load at a time: concurrent creates would otherwise each run the
  // parser for the same profile.
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  const std::string& name = host.default_profile.name;
  if (host.profile_loaded && host.profile_loaded(name)) {
    return absl::OkStatus();
  }
  if (!host.load_profile || host.profile_dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(kField, ": the default profile ", name,
                                                      " is not loaded and crid cannot load it"));
  }
  CRID_RETURN_IF_ERROR(MakeDirs(host.profile_dir, 0700));
  const std::string path = absl::StrCat(host.profile_dir, "/", name);
  CRID_RETURN_IF_ERROR(
      WriteFileAtomic(path, AppArmorDefaultProfileText(host.default_profile), 0644));
  if (absl::Status st = host.load_profile(path); !st.ok()) {
    return Annotate(st, absl::StrCat(kField, ": load the default profile ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> AppArmorProfileFor(const v1::LinuxContainerSecurityContext& sc,
                                               const AppArmorHost& host) {
  v1::SecurityProfile profile;
  // The deprecated string form, still sent by older kubelets and critest.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& legacy = sc.apparmor_profile();
#pragma GCC diagnostic pop
  if (sc.has_apparmor()) {
    profile = sc.apparmor();
  } else if (!legacy.empty()) {
    auto parsed = ProfileFromString(legacy);
    if (!parsed.ok()) {
      return parsed.status();
    }
    profile = *parsed;
  } else if (!host.enabled) {
    return std::string();
  } else {
    // Nothing asked on an AppArmor host: the default profile, as containerd
    // does (kubernetes#51746).
    profile.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  }
  if (profile.profile_type() != v1::SecurityProfile::Localhost &&
      !profile.localhost_ref().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kField, ".localhost_ref: set only with profile_type Localhost"));
  }
  if (profile.profile_type() == v1::SecurityProfile::Unconfined) {
    return std::string();
  }
  if (!host.enabled) {
    // containerd's answer: confinement that cannot be given is an error.
    return absl::FailedPreconditionError(
        absl::StrCat(kField,
                     ": apparmor is not supported (AppArmor is not enabled on this host), "
                     "profile type ",
                     v1::SecurityProfile::ProfileType_Name(profile.profile_type())));
  }
  switch (profile.profile_type()) {
    case v1::SecurityProfile::RuntimeDefault:
      // As containerd: a privileged container is left unconfined.
      if (sc.privileged()) {
        return std::string();
      }
      CRID_RETURN_IF_ERROR(EnsureAppArmorDefaultProfile(host));
      return host.default_profile.name;
    case v1::SecurityProfile::Localhost: {
      std::string name(absl::StripPrefix(profile.localhost_ref(), kLocalhostPrefix));
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kField, ".localhost_ref: empty for profile type Localhost"));
      }
      if (!host.profile_loaded || !host.profile_loaded(name)) {
        return absl::FailedPreconditionError(
            absl::StrCat(kField, ".localhost_ref: apparmor profile not found: ", name));
      }
      return name;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(kField, ".profile_type: unknown value ",
                                                     static_cast<int>(profile.profile_type())));
  }
}

}  // namespace crid
