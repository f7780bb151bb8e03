#include "container/oci_spec.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "base/fs.h"
#include "container/capabilities.h"
#include "container/seccomp.h"
#include "container/user.h"

namespace crid {

namespace {

using json = nlohmann::json;
namespace v1 = ::runtime::v1;

constexpr char kOciVersion[] = "1.0.2";
constexpr char kDefaultPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// containerd's defaults when kubelet sends no lists (privileged containers get none).
const std::vector<std::string>& DefaultMaskedPaths() {
  static const std::vector<std::string> paths = {"/proc/acpi",
                                                 "/proc/asound",
                                                 "/proc/kcore",
                                                 "/proc/keys",
                                                 "/proc/latency_stats",
                                                 "/proc/timer_list",
                                                 "/proc/timer_stats",
                                                 "/proc/sched_debug",
                                                 "/proc/scsi",
                                                 "/sys/firmware",
                                                 "/sys/devices/virtual/powercap"};
  return paths;
}

const std::vector<std::string>& DefaultReadonlyPaths() {
  static const std::vector<std::string> paths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};
  return paths;
}

json Mount(const std::string& destination, const std::string& type, const std::string& source,
           std::vector<std::string> options) {
  return json{{"destination", destination},
              {"type", type},
              {"source", source},
              {"options", std::move(options)}};
}

std::vector<json> DefaultMounts(bool privileged) {
  std::string sys_mode = privileged ? "rw" : "ro";
  return {
      Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      Mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", sys_mode}),
      Mount("/sys/fs/cgroup", "cgroup", "cgroup",
            {"nosuid", "noexec", "nodev", "relatime", sys_mode}),
  };
}

// The character devices every container may use (runc creates the nodes).
json DefaultDeviceRules() {
  json rules = json::array();
  rules.push_back({{"allow", false}, {"access", "rwm"}});
  struct {
    int64_t major;
    int64_t minor;  // -1: any
  } const allowed[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8},    {1, 9},
                       {5, 0}, {5, 1}, {5, 2}, {136, -1}, {10, 200}};
  for (const auto& d : allowed) {
    json rule = {{"allow", true}, {"type", "c"}, {"major", d.major}, {"access", "rwm"}};
    if (d.minor >= 0) {
      rule["minor"] = d.minor;
    }
    rules.push_back(rule);
  }
  return rules;
}

size_t PathDepth(const std::string& path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

std::string EnvKey(absl::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

// Image env, then the container's, a later key replacing an earlier one in place.
std::vector<std::string> MergeEnv(const ImageProcessConfig& image,
                                  const runtime::v1::ContainerConfig& config,
                                  const std::string& home) {
  std::vector<std::string> env;
  auto set = [&env](const std::string& key, const std::string& entry) {
    for (std::string& existing : env) {
      if (EnvKey(existing) == key) {
        existing = entry;
        return;
      }
    }
    env.push_back(entry);
  };
  for (const std::string& entry : image.env) {
    set(EnvKey(entry), entry);
  }
  for (const v1::KeyValue& kv : config.envs()) {
    set(kv.key(), absl::StrCat(kv.key(), "=", kv.value()));
  }
  bool has_path = false;
  bool has_home = false;
  for (const std::string& entry : env) {
    has_path = has_path || EnvKey(entry) == "PATH";
    has_home = has_home || EnvKey(entry) == "HOME";
  }
  if (!has_path) {
    env.insert(env.begin(), kDefaultPath);
  }
  if (!has_home) {
    env.push_back("HOME=" + home);
  }
  return env;
}

absl::StatusOr<std::string> PropagationOption(v1::MountPropagation propagation) {
  switch (propagation) {
    case v1::PROPAGATION_PRIVATE:
      return std::string("rprivate");
    case v1::PROPAGATION_HOST_TO_CONTAINER:
      return std::string("rslave");
    case v1::PROPAGATION_BIDIRECTIONAL:
      return std::string("rshared");
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("mounts.propagation: unknown value ", static_cast<int>(propagation)));
  }
}

json IdMappingsJson(const google::protobuf::RepeatedPtrField<v1::IDMapping>& mappings) {
  json out = json::array();
  for (const v1::IDMapping& m : mappings) {
    out.push_back(
        {{"containerID", m.container_id()}, {"hostID", m.host_id()}, {"size", m.length()}});
  }
  return out;
}

bool SameMappings(const google::protobuf::RepeatedPtrField<v1::IDMapping>& a,
                  const google::protobuf::RepeatedPtrField<v1::IDMapping>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (int i = 0; i < a.size(); ++i) {
    if (a[i].container_id() != b[i].container_id() || a[i].host_id() != b[i].host_id() ||
        a[i].length() != b[i].length()) {
      return false;
    }
  }
  return true;
}

// The uid/gid mappings of a container in its pod's user namespace. kubelet
// repeats the pod's user namespace on each container; one that differs
// cannot be honoured (a container cannot have its own), as containerd says.
absl::StatusOr<json> UserNamespaceSpec(const v1::NamespaceOption& ns,
                                       const v1::NamespaceOption& pod_ns) {
  const v1::UserNamespace& pod = pod_ns.userns_options();
  if (ns.has_userns_options()) {
    const v1::UserNamespace& own = ns.userns_options();
    if (own.mode() != v1::POD || !SameMappings(own.uids(), pod.uids()) ||
        !SameMappings(own.gids(), pod.gids())) {
      return absl::InvalidArgumentError(
          "linux.security_context.namespace_options.userns_options: must be the pod sandbox's "
          "(mode POD with the same mappings)");
    }
  }
  return json{{"uidMappings", IdMappingsJson(pod.uids())},
              {"gidMappings", IdMappingsJson(pod.gids())}};
}

// Host paths of volumes: missing ones are created as directories (Kubernetes
// hostPath semantics), symlinks are resolved so the bind mount sees the target.
absl::StatusOr<std::string> ResolveHostPath(const std::string& host_path) {
  struct stat st;
  if (::lstat(host_path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return ErrnoError(errno, "mounts.host_path: stat ", host_path);
    }
    CRID_RETURN_IF_ERROR(MakeDirs(host_path, 0755));
  }
  char resolved[PATH_MAX];
  if (::realpath(host_path.c_str(), resolved) == nullptr) {
    return ErrnoError(errno, "mounts.host_path: resolve ", host_path);
  }
  return std::string(resolved);
}

absl::Status AddCriMounts(const runtime::v1::ContainerConfig& config,
                          bool recursive_read_only_supported, json& mounts,
                          std::set<std::string>& destinations, std::string& rootfs_propagation) {
  std::vector<const v1::Mount*> sorted;
  for (const v1::Mount& m : config.mounts()) {
    sorted.push_back(&m);
  }
  // Parents before children, so a nested volume is not hidden by its parent's.
  std::stable_sort(sorted.begin(), sorted.end(), [](const v1::Mount* a, const v1::Mount* b) {
    return PathDepth(a->container_path()) < PathDepth(b->container_path());
  });
  for (const v1::Mount* m : sorted) {
    if (m->container_path().empty() || m->container_path()[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "mounts.container_path: must be an absolute path, got \"", m->container_path(), "\""));
    }
    if (m->has_image() && !m->image().image().empty()) {
      // Image volumes are mounted by the container manager first
      // (container/image_volume.h), which points host_path at the mount.
      if (m->host_path().empty() || m->image().image_ref().empty()) {
        return absl::InternalError(absl::StrCat("mounts.image: image volume at ",
                                                m->container_path(), " was not mounted"));
      }
      if (!m->readonly()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mounts.readonly: an image volume must be read-only (", m->container_path(), ")"));
      }
    }
    if (m->uidmappings_size() > 0 || m->gidmappings_size() > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("mounts.uidMappings/gidMappings: id-mapped mounts are not supported (",
                       m->container_path(), ")"));
    }
    // As kubelet and containerd: read-only submounts of a writable or
    // propagating volume would be meaningless (new submounts would arrive
    // writable), so both are refused.
    if (m->recursive_read_only()) {
      if (!m->readonly()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mounts.recursive_read_only: requires mounts.readonly (", m->container_path(), ")"));
      }
      if (m->propagation() != v1::PROPAGATION_PRIVATE) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mounts.recursive_read_only: requires mounts.propagation PROPAGATION_PRIVATE (",
            m->container_path(), ")"));
      }
      if (!recursive_read_only_supported) {
        return absl::InvalidArgumentError(
            absl::StrCat("mounts.recursive_read_only: not supported by the OCI runtime (",
                         m->container_path(), ")"));
      }
    }
    // cri-api v0.37's bind-mount options (RuntimeFeatures.mount_options):
    // only the three that restrict what the volume's files can do.
    for (const std::string& option : m->mount_options()) {
      if (option != "noexec" && option != "nodev" && option != "nosuid") {
        return absl::InvalidArgumentError(absl::StrCat("mounts.mount_options: \"", option,
                                                       "\" is not one of noexec, nodev, nosuid (",
                                                       m->container_path(), ")"));
      }
    }
    if (m->host_path().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mounts.host_path: empty for ", m->container_path()));
    }
    CRID_ASSIGN_OR_RETURN(std::string source, ResolveHostPath(m->host_path()));
    CRID_ASSIGN_OR_RETURN(std::string propagation, PropagationOption(m->propagation()));
    if (propagation == "rshared") {
      rootfs_propagation = "rshared";
    } else if (propagation == "rslave" && rootfs_propagation != "rshared") {
      rootfs_propagation = "rslave";
    }
    std::vector<std::string> options = {"rbind", propagation, m->readonly() ? "ro" : "rw"};
    if (m->recursive_read_only()) {
      options.emplace_back("rro");
    }
    options.insert(options.end(), m->mount_options().begin(), m->mount_options().end());
    // A later mount on the same destination replaces an earlier (default) one.
    mounts.erase(
        std::remove_if(mounts.begin(), mounts.end(),
                       [&](const json& j) { return j["destination"] == m->container_path(); }),
        mounts.end());
    mounts.push_back(Mount(m->container_path(), "bind", source, std::move(options)));
    destinations.insert(m->container_path());
  }
  return absl::OkStatus();
}

absl::StatusOr<json> DeviceEntry(const std::string& host_path, const std::string& container_path,
                                 const std::string& permissions, json& rules) {
  struct stat st;
  if (::stat(host_path.c_str(), &st) != 0) {
    return ErrnoError(errno, "devices.host_path: stat ", host_path);
  }
  std::string type;
  if (S_ISCHR(st.st_mode)) {
    type = "c";
  } else if (S_ISBLK(st.st_mode)) {
    type = "b";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("devices.host_path: ", host_path, " is not a device"));
  }
  int64_t dev_major = major(st.st_rdev);
  int64_t dev_minor = minor(st.st_rdev);
  std::string access = permissions.empty() ? "rwm" : permissions;
  if (access.find_first_not_of("rwm") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("devices.permissions: \"", permissions, "\" is not a subset of rwm"));
  }
  rules.push_back({{"allow", true},
                   {"type", type},
                   {"major", dev_major},
                   {"minor", dev_minor},
                   {"access", access}});
  return json{{"path", container_path},
              {"type", type},
              {"major", dev_major},
              {"minor", dev_minor},
              {"fileMode", st.st_mode & 07777},
              {"uid", st.st_uid},
              {"gid", st.st_gid}};
}

// Every device node of the host, for privileged containers (as containerd does).
void AddHostDevices(const std::string& dir, json& devices) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    std::string path = absl::StrCat(dir, "/", name);
    if (dir == "/dev" &&
        (name == "pts" || name == "shm" || name == "mqueue" || name == "console" || name == "fd")) {
      continue;
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      AddHostDevices(path, devices);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      devices.push_back({{"path", path},
                         {"type", S_ISCHR(st.st_mode) ? "c" : "b"},
                         {"major", static_cast<int64_t>(major(st.st_rdev))},
                         {"minor", static_cast<int64_t>(minor(st.st_rdev))},
                         {"fileMode", st.st_mode & 07777},
                         {"uid", st.st_uid},
                         {"gid", st.st_gid}});
    }
  }
  ::closedir(d);
}

absl::StatusOr<json> Resources(const v1::LinuxContainerResources& r) {
  json resources = json::object();
  json cpu = json::object();
  if (r.cpu_shares() < 0 || r.cpu_quota() < -1 || r.cpu_period() < 0) {
    return absl::InvalidArgumentError("linux.resources: cpu values must not be negative");
  }
  if (r.cpu_shares() > 0) {
    cpu["shares"] = r.cpu_shares();
  }
  if (r.cpu_quota() != 0) {
    cpu["quota"] = r.cpu_quota();
  }
  if (r.cpu_period() > 0) {
    cpu["period"] = r.cpu_period();
  }
  if (!r.cpuset_cpus().empty()) {
    cpu["cpus"] = r.cpuset_cpus();
  }
  if (!r.cpuset_mems().empty()) {
    cpu["mems"] = r.cpuset_mems();
  }
  if (!cpu.empty()) {
    resources["cpu"] = cpu;
  }
  json memory = json::object();
  if (r.memory_limit_in_bytes() < 0) {
    return absl::InvalidArgumentError(
        "linux.resources.memory_limit_in_bytes: must not be negative");
  }
  if (r.memory_limit_in_bytes() > 0) {
    memory["limit"] = r.memory_limit_in_bytes();
  }
  if (r.memory_swap_limit_in_bytes() != 0) {
    if (r.memory_swap_limit_in_bytes() > 0 && r.memory_limit_in_bytes() > 0 &&
        r.memory_swap_limit_in_bytes() < r.memory_limit_in_bytes()) {
      return absl::InvalidArgumentError(
          "linux.resources.memory_swap_limit_in_bytes: must be at least memory_limit_in_bytes");
    }
    memory["swap"] = r.memory_swap_limit_in_bytes();
  }
  if (!memory.empty()) {
    resources["memory"] = memory;
  }
  if (r.hugepage_limits_size() > 0) {
    json limits = json::array();
    for (const v1::HugepageLimit& h : r.hugepage_limits()) {
      limits.push_back({{"pageSize", h.page_size()}, {"limit", h.limit()}});
    }
    // kubelet lists every page size, with limit 0 for those the pod does not
    // request; the OCI runtime refuses any limit without the hugetlb
    // controller, so zero limits are left out there (as containerd does) and
    // only a real one is an error.
    if (!HugetlbControllerAvailable()) {
      for (const v1::HugepageLimit& h : r.hugepage_limits()) {
        if (h.limit() != 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("linux.resources.hugepage_limits: a ", h.page_size(),
                           " limit needs the hugetlb cgroup controller, which this host lacks"));
        }
      }
      limits = json::array();
    }
    if (!limits.empty()) {
      resources["hugepageLimits"] = limits;
    }
  }
  if (!r.unified().empty()) {
    json unified = json::object();
    for (const auto& [key, value] : r.unified()) {
      if (absl::StrContains(key, '/') || absl::StartsWith(key, ".")) {
        return absl::InvalidArgumentError(
            absl::StrCat("linux.resources.unified: bad cgroup file name \"", key, "\""));
      }
      unified[key] = value;
    }
    resources["unified"] = unified;
  }
  return resources;
}

json Namespace(const char* type, const std::string& path = "") {
  json ns = {{"type", type}};
  if (!path.empty()) {
    ns["path"] = path;
  }
  return ns;
}

}  // namespace

absl::StatusOr<json> OciResources(const runtime::v1::LinuxContainerResources& resources) {
  return Resources(resources);
}

std::vector<std::string> ContainerArgs(const runtime::v1::ContainerConfig& config,
                                       const ImageProcessConfig& image) {
  std::vector<std::string> args;
  if (config.command_size() > 0) {
    args.assign(config.command().begin(), config.command().end());
    args.insert(args.end(), config.args().begin(), config.args().end());
  } else {
    args = image.entrypoint;
    if (config.args_size() > 0) {
      args.insert(args.end(), config.args().begin(), config.args().end());
    } else {
      args.insert(args.end(), image.cmd.begin(), image.cmd.end());
    }
  }
  return args;
}

absl::StatusOr<std::string> OciCgroupsPath(CgroupDriver driver, const std::string& cgroup_parent,
                                           const std::string& id) {
  if (driver == CgroupDriver::kSystemd) {
    // kubelet passes the expanded slice path; runc wants the slice's own name.
    std::string parent = cgroup_parent;
    while (!parent.empty() && parent.back() == '/') {
      parent.pop_back();
    }
    std::string slice = parent.substr(parent.find_last_of('/') + 1);
    if (slice.empty()) {
      slice = "system.slice";
    }
    if (!absl::EndsWith(slice, ".slice")) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.cgroup_parent: the systemd cgroup driver needs a slice, got \"",
                       cgroup_parent, "\""));
    }
    return absl::StrCat(slice, ":crid:", id);
  }
  std::string parent = cgroup_parent.empty() ? "/crid" : cgroup_parent;
  if (parent[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "linux.cgroup_parent: must be an absolute cgroup path, got \"", cgroup_parent, "\""));
  }
  if (absl::StrContains(parent, "..")) {
    return absl::InvalidArgumentError(
        absl::StrCat("linux.cgroup_parent: must not contain \"..\": \"", cgroup_parent, "\""));
  }
  while (parent.size() > 1 && parent.back() == '/') {
    parent.pop_back();
  }
  return absl::StrCat(parent == "/" ? "" : parent, "/crid-", id);
}

bool HugetlbControllerAvailable() {
  static const bool available = [] {
    struct stat st {};
    if (stat("/sys/fs/cgroup/hugetlb", &st) == 0) {
      return true;  // v1 (or hybrid) with the controller mounted
    }
    // Pure v2: the root's controllers (a hybrid host has no such file here).
    absl::StatusOr<std::string> controllers = ReadFile("/sys/fs/cgroup/cgroup.controllers");
    return controllers.ok() && absl::StrContains(*controllers, "hugetlb");
  }();
  return available;
}

absl::StatusOr<json> BuildOciSpec(const runtime::v1::ContainerConfig& config,
                                  const ImageProcessConfig& image, const SandboxSpecInfo& sandbox,
                                  const SpecOptions& options) {
  const v1::LinuxContainerConfig& linux_config = config.linux();
  const v1::LinuxContainerSecurityContext& sc = linux_config.security_context();
  const bool privileged = sc.privileged();
  if (privileged && !sandbox.linux.security_context().privileged()) {
    return absl::InvalidArgumentError(
        "linux.security_context.privileged: a privileged container needs a privileged pod");
  }
  // CDI devices are resolved before anything is built and applied last, over
  // everything else, as containerd and CRI-O do.
  CRID_ASSIGN_OR_RETURN(CdiEdits cdi_edits, ResolveCdiDevices(config, options.cdi));

  CRID_ASSIGN_OR_RETURN(std::string apparmor_profile, AppArmorProfileFor(sc, options.apparmor));
  CRID_ASSIGN_OR_RETURN(SELinuxLabels selinux,
                        SELinuxLabelsFor(sandbox.linux.security_context().selinux_options(),
                                         sc.selinux_options(), sandbox.id, options.selinux));

  // Process.
  std::vector<std::string> args = ContainerArgs(config, image);
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "command: no command given and the image has no Entrypoint or Cmd");
  }
  UserRequest user_request;
  if (sc.has_run_as_user()) {
    user_request.run_as_user = sc.run_as_user().value();
  }
  user_request.run_as_username = sc.run_as_username();
  if (sc.has_run_as_group()) {
    user_request.run_as_group = sc.run_as_group().value();
  }
  const v1::LinuxSandboxSecurityContext& pod_sc = sandbox.linux.security_context();
  user_request.supplemental_groups.assign(pod_sc.supplemental_groups().begin(),
                                          pod_sc.supplemental_groups().end());
  user_request.supplemental_groups.insert(user_request.supplemental_groups.end(),
                                          sc.supplemental_groups().begin(),
                                          sc.supplemental_groups().end());
  user_request.strict_supplemental_groups = sc.supplemental_groups_policy() == v1::Strict ||
                                            pod_sc.supplemental_groups_policy() == v1::Strict;
  user_request.image_user = image.user;
  CRID_ASSIGN_OR_RETURN(UserDatabase db, UserDatabase::FromRootfs(options.rootfs));
  absl::StatusOr<ResolvedUser> user = ResolveUser(user_request, db);
  if (!user.ok()) {
    return Annotate(user.status(), "linux.security_context");
  }

  std::vector<std::string> caps;
  if (privileged) {
    caps = AllCapabilities();
  } else {
    std::vector<std::string> add(sc.capabilities().add_capabilities().begin(),
                                 sc.capabilities().add_capabilities().end());
    std::vector<std::string> drop(sc.capabilities().drop_capabilities().begin(),
                                  sc.capabilities().drop_capabilities().end());
    absl::StatusOr<std::vector<std::string>> applied =
        ApplyCapabilityChanges(DefaultCapabilities(), add, drop);
    if (!applied.ok()) {
      return Annotate(applied.status(), "linux.security_context");
    }
    caps = std::move(*applied);
  }
  std::vector<std::string> ambient;
  for (const std::string& name : sc.capabilities().add_ambient_capabilities()) {
    absl::StatusOr<std::string> cap = NormalizeCapability(name);
    if (!cap.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("linux.security_context.capabilities.add_ambient_capabilities: ",
                       cap.status().message()));
    }
    ambient.push_back(*cap);
    if (std::find(caps.begin(), caps.end(), *cap) == caps.end()) {
      caps.push_back(*cap);
    }
  }

  int64_t oom_score_adj = linux_config.resources().oom_score_adj();
  if (oom_score_adj < -1000 || oom_score_adj > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "linux.resources.oom_score_adj: must be within [-1000, 1000], got ", oom_score_adj));
  }
  oom_score_adj = std::max<int64_t>(oom_score_adj, options.min_oom_score_adj);

  json process = {
      {"terminal", config.tty()},
      {"user", {{"uid", user->uid}, {"gid", user->gid}, {"additionalGids", user->additional_gids}}},
      {"args", args},
      {"env", MergeEnv(image, config, user->home)},
      {"cwd", !config.working_dir().empty() ? config.working_dir()
              : !image.working_dir.empty()  ? image.working_dir
                                            : "/"},
      {"capabilities",
       {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"ambient", ambient}}},
      {"noNewPrivileges", sc.no_new_privs()},
      {"oomScoreAdj", oom_score_adj},
  };
  if (!ambient.empty()) {
    process["capabilities"]["inheritable"] = ambient;
  }
  if (!apparmor_profile.empty()) {
    process["apparmorProfile"] = apparmor_profile;
  }
  if (!selinux.process_label.empty()) {
    process["selinuxLabel"] = selinux.process_label;
  }
  if (process["cwd"].get<std::string>()[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("working_dir: must be an absolute path, got \"",
                                                   process["cwd"].get<std::string>(), "\""));
  }

  // Mounts: defaults, the pod's files, then the container's volumes.
  json mounts = json::array();
  for (json& m : DefaultMounts(privileged)) {
    mounts.push_back(std::move(m));
  }
  // A user namespace on the host network: sysfs may only be mounted by the
  // owner of the network namespace, so the host's /sys is bound instead (as
  // runc 1.2 and crun fall back to), read-only unless privileged. Its files
  // stay the host's (sysfs cannot be idmapped; IdmapBindMounts leaves it).
  if (!sandbox.userns_path.empty() &&
      (sc.namespace_options().network() == v1::NODE ||
       sandbox.linux.security_context().namespace_options().network() == v1::NODE)) {
    for (json& m : mounts) {
      if (m["destination"] == "/sys") {
        m = Mount("/sys", "bind", "/sys",
                  {"rbind", "nosuid", "noexec", "nodev", privileged ? "rw" : "ro"});
      }
    }
  }
  std::set<std::string> destinations;
  std::string rootfs_propagation;
  json cri_mounts = json::array();
  CRID_RETURN_IF_ERROR(AddCriMounts(config, options.recursive_read_only_mounts, cri_mounts,
                                    destinations, rootfs_propagation));
  struct PodFile {
    const std::string& source;
    const char* destination;
  } const pod_files[] = {{sandbox.hostname_file, "/etc/hostname"},
                         {sandbox.hosts_file, "/etc/hosts"},
                         {sandbox.resolv_conf_file, "/etc/resolv.conf"}};
  for (const PodFile& f : pod_files) {
    if (!f.source.empty() && destinations.count(f.destination) == 0) {
      mounts.push_back(Mount(f.destination, "bind", f.source,
                             {"rbind", "rprivate", sc.readonly_rootfs() ? "ro" : "rw"}));
    }
  }
  // A pod in the host's IPC namespace has no /dev/shm of its own: its
  // containers see the host's, as with containerd.
  const bool host_ipc_shm = sc.namespace_options().ipc() == v1::NODE ||
                            sandbox.linux.security_context().namespace_options().ipc() == v1::NODE;
  if (destinations.count("/dev/shm") == 0) {
    if (host_ipc_shm) {
      mounts.push_back(Mount("/dev/shm", "bind", "/dev/shm", {"rbind", "rprivate", "rw"}));
    } else if (!sandbox.shm_path.empty()) {
      mounts.push_back(Mount("/dev/shm", "bind", sandbox.shm_path, {"rbind", "rprivate", "rw"}));
    } else {
      mounts.push_back(Mount("/dev/shm", "tmpfs", "shm",
                             {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
    }
  }
  for (json& m : cri_mounts) {
    mounts.push_back(std::move(m));
  }

  // Namespaces.
  // Network and IPC belong to the pod: a container shares the host's when the
  // pod does (kubelet repeats the pod's modes on each container, other clients
  // only set them on the pod).
  const v1::NamespaceOption& ns = sc.namespace_options();
  const v1::NamespaceOption& pod_ns = sandbox.linux.security_context().namespace_options();
  const bool host_network = ns.network() == v1::NODE || pod_ns.network() == v1::NODE;
  const bool host_ipc = ns.ipc() == v1::NODE || pod_ns.ipc() == v1::NODE;
  json namespaces = json::array({Namespace("mount")});
  json userns_mappings;
  if (!host_network) {
    namespaces.push_back(Namespace("network", sandbox.netns_path));
  }
  if (!host_ipc) {
    namespaces.push_back(Namespace("ipc", sandbox.ipc_ns_path));
  }
  if (!host_network || !sandbox.uts_ns_path.empty()) {
    namespaces.push_back(Namespace("uts", sandbox.uts_ns_path));
  }
  // The user namespace is the pod's: the container joins it (runc enters it
  // before the others, which the pod created inside it) and the mappings are
  // repeated because runc needs them to know the host IDs of root.
  if (!sandbox.userns_path.empty()) {
    CRID_ASSIGN_OR_RETURN(json userns, UserNamespaceSpec(ns, pod_ns));
    namespaces.insert(namespaces.begin(), Namespace("user", sandbox.userns_path));
    userns_mappings = std::move(userns);
  } else if (ns.has_userns_options() && ns.userns_options().mode() != v1::NODE) {
    return absl::InvalidArgumentError(
        "linux.security_context.namespace_options.userns_options: the pod sandbox has no user "
        "namespace");
  }
  switch (ns.pid()) {
    case v1::POD:
      if (sandbox.pid_ns_path.empty()) {
        return absl::FailedPreconditionError(
            "linux.security_context.namespace_options.pid: POD, but the sandbox has no "
            "shared PID namespace");
      }
      namespaces.push_back(Namespace("pid", sandbox.pid_ns_path));
      break;
    case v1::CONTAINER:
      namespaces.push_back(Namespace("pid"));
      break;
    case v1::NODE:
      break;
    case v1::TARGET:
      if (options.target_pid_ns_path.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "linux.security_context.namespace_options.target_id: no running container \"",
            ns.target_id(), "\" in the pod"));
      }
      namespaces.push_back(Namespace("pid", options.target_pid_ns_path));
      break;
    default:
      return absl::InvalidArgumentError(
          "linux.security_context.namespace_options.pid: unknown mode");
  }
  // On cgroup v2 a container sees its own cgroup as the root; a privileged
  // one keeps the host's view. (On v1 neither runc's default spec nor
  // containerd asks for one.)
  if (options.cgroup_unified && !privileged) {
    namespaces.push_back(Namespace("cgroup"));
  }

  // Resources and devices.
  CRID_ASSIGN_OR_RETURN(json resources, Resources(linux_config.resources()));
  json device_rules = DefaultDeviceRules();
  json devices = json::array();
  if (privileged) {
    device_rules = json::array({{{"allow", true}, {"access", "rwm"}}});
    AddHostDevices("/dev", devices);
  }
  for (const v1::Device& d : config.devices()) {
    if (d.container_path().empty() || d.container_path()[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "devices.container_path: must be an absolute path, got \"", d.container_path(), "\""));
    }
    json ignored_rules = json::array();
    CRID_ASSIGN_OR_RETURN(json entry,
                          DeviceEntry(d.host_path(), d.container_path(), d.permissions(),
                                      privileged ? ignored_rules : device_rules));
    devices.push_back(std::move(entry));
  }
  resources["devices"] = device_rules;

  CRID_ASSIGN_OR_RETURN(
      std::string cgroups_path,
      OciCgroupsPath(options.cgroup_driver, sandbox.cgroup_parent, options.container_id));
  json linux_spec = {
      {"namespaces", namespaces},
      {"resources", resources},
      {"cgroupsPath", cgroups_path},
      {"devices", devices},
  };
  if (!rootfs_propagation.empty()) {
    linux_spec["rootfsPropagation"] = rootfs_propagation;
  }
  if (!selinux.mount_label.empty()) {
    linux_spec["mountLabel"] = selinux.mount_label;
  }
  if (!userns_mappings.is_null()) {
    linux_spec["uidMappings"] = userns_mappings["uidMappings"];
    linux_spec["gidMappings"] = userns_mappings["gidMappings"];
  }
  if (!privileged) {
    std::vector<std::string> masked(sc.masked_paths().begin(), sc.masked_paths().end());
    std::vector<std::string> readonly(sc.readonly_paths().begin(), sc.readonly_paths().end());
    linux_spec["maskedPaths"] = masked.empty() ? DefaultMaskedPaths() : masked;
    linux_spec["readonlyPaths"] = readonly.empty() ? DefaultReadonlyPaths() : readonly;
  }
  if (!sandbox.linux.sysctls().empty()) {
    json sysctl = json::object();
    for (const auto& [key, value] : sandbox.linux.sysctls()) {
      sysctl[key] = value;
    }
    linux_spec["sysctl"] = sysctl;
  }
  CRID_ASSIGN_OR_RETURN(json seccomp, SeccompForContainer(sc, caps));
  if (!seccomp.is_null()) {
    linux_spec["seccomp"] = std::move(seccomp);
  }

  json annotations = json::object();
  for (const auto& [key, value] : config.annotations()) {
    annotations[key] = value;
  }
  annotations["io.kubernetes.cri.container-type"] = "container";
  annotations["io.kubernetes.cri.container-name"] = config.metadata().name();
  annotations["io.kubernetes.cri.sandbox-id"] = sandbox.id;
  annotations["io.kubernetes.cri.sandbox-name"] = sandbox.name;
  annotations["io.kubernetes.cri.sandbox-namespace"] = sandbox.namespace_;
  annotations["io.kubernetes.cri.sandbox-uid"] = sandbox.uid;
  annotations["io.kubernetes.cri.image-name"] = options.image_name;

  json spec = {{"ociVersion", kOciVersion},
               {"process", process},
               {"root", {{"path", options.rootfs}, {"readonly", sc.readonly_rootfs()}}},
               {"mounts", mounts},
               {"linux", linux_spec},
               {"annotations", annotations}};
  CRID_RETURN_IF_ERROR(ApplyCdiEdits(cdi_edits, spec));
  return spec;
}

}  // namespace crid
