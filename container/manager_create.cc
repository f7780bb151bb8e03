// CreateContainer: the record in CREATING, the overlay rootfs, image volumes,
// the OCI spec and the runtime's create in the pod's shim; any failure undoes
// every earlier step. Retries of a create still running wait for it.
#include <signal.h>
#include <sys/random.h>

#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/logging.h"
#include "container/checkpoint.h"
#include "container/idmapped_mounts.h"
#include "container/image_volume.h"
#include "container/manager.h"
#include "container/manager_internal.h"
#include "container/oci_spec.h"
#include "container/rootfs.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;
using json = nlohmann::json;
using manager_internal::NowNs;
using manager_internal::ShortId;

std::string NewContainerId() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    }
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 0xf]);
  }
  return id;
}

std::vector<std::string> JsonStrings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it != j.end() && it->is_array()) {
    for (const json& v : *it) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      }
    }
  }
  return out;
}

std::string JsonString(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The parts of an image config (its "config" object) that shape a container.
struct ImageSettings {
  ImageProcessConfig process;
  std::string stop_signal;
};

absl::StatusOr<ImageSettings> ParseImageConfig(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::DataLossError("the image config is not a JSON object");
  }
  ImageSettings out;
  auto it = doc.find("config");
  if (it == doc.end() || !it->is_object()) {
    return out;
  }
  const json& c = *it;
  out.process.entrypoint = JsonStrings(c, "Entrypoint");
  out.process.cmd = JsonStrings(c, "Cmd");
  out.process.env = JsonStrings(c, "Env");
  out.process.working_dir = JsonString(c, "WorkingDir");
  out.process.user = JsonString(c, "User");
  out.stop_signal = JsonString(c, "StopSignal");
  return out;
}

int MinOomScoreAdj() {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/oom_score_adj");
  int value = 0;
  if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return value;
  }
  return 0;
}

// The image name ContainerStatus reports. kubelet creates containers by image
// ID and passes the name from the pod spec as user_specified_image: that name
// is reported, as users (and kubelet's pod status) expect. Without it, an image
// named by its ID is reported by its first tag, as containerd does; any other
// name as it was given.
std::string DisplayImageName(const v1::ImageSpec& spec, const image::ImageRecord& image) {
  if (!spec.user_specified_image().empty()) {
    return spec.user_specified_image();
  }
  const std::string& given = spec.image();
  const bool by_id = given == image.id() || absl::StrCat("sha256:", given) == image.id();
  if (by_id && !image.repo_tags().empty()) {
    return image.repo_tags(0);
  }
  return given;
}

}  // namespace

absl::StatusOr<std::string> ContainerManager::Create(const std::string& pod_id,
                                                     const v1::ContainerConfig& config,
                                                     const v1::PodSandboxConfig& sandbox_config) {
  CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(pod_id));
  const std::string key = ContainerKey(config.metadata(), pod.config().metadata());
  std::shared_ptr<InFlight> flight;
  bool owner = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = creates_.find(key);
    if (it != creates_.end()) {
      flight = it->second;
    } else {
      flight = std::make_shared<InFlight>();
      creates_[key] = flight;
      owner = true;
    }
  }
  if (!owner) {
    flight->done.WaitForNotification();
    if (flight->result.ok()) {
      absl::MutexLock lock(&mu_);
      if (containers_.count(*flight->result) != 0) {
        return flight->result;
      }
    }
    return flight->result.status().ok()
               ? absl::StatusOr<std::string>(absl::AlreadyExistsError(
                     absl::StrCat("container name \"", key, "\" is being reused; retry")))
               : flight->result;
  }
  // CRI-O's restore: the image names a checkpoint archive (checkpoint_container.cc).
  absl::StatusOr<RestoreSource> restore = RestoreSource{};
  if (IsCheckpointArchive(config.image().image())) {
    restore = PrepareRestore(config);
  }
  const bool restoring = restore.ok() && !restore->dir.empty();
  absl::StatusOr<std::string> result =
      !restore.ok() ? absl::StatusOr<std::string>(restore.status())
                    : CreateLocked(pod.id(), restoring ? restore->config : config, sandbox_config,
                                   restoring ? &*restore : nullptr);
  if (restoring) {
    (void)RemoveTree(restore->dir);  // adopted by the container, or not needed any more
  }
  flight->result = result;
  flight->done.Notify();
  if (!result.ok()) {
    absl::MutexLock lock(&mu_);
    auto it = creates_.find(key);
    if (it != creates_.end() && it->second == flight) {
      creates_.erase(it);
    }
  }
  return result;
}

absl::StatusOr<std::string> ContainerManager::CreateLocked(
    const std::string& pod_id, const v1::ContainerConfig& config,
    const v1::PodSandboxConfig& sandbox_config, const RestoreSource* restore) {
  // A container's writable layer and logs grow; a full disk keeps its last
  // room for removals.
  CRID_RETURN_IF_ERROR(store_->CheckRoom("create a container"));
  CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(pod_id));
  if (pod.state() != sandbox::SandboxRecord::READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id: pod sandbox ", pod_id, " is not ready"));
  }
  CRID_ASSIGN_OR_RETURN(const OciRuntimeConfig* runtime, Handler(pod.runtime_handler()));
  const std::string& image_name = config.image().image();
  // The lease keeps the image's layers on disk until this container is
  // published, from when LayersInUse reports them.
  absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> leased = images_->Acquire(image_name);
  if (!leased.ok()) {
    if (leased.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("image.image: image \"", image_name, "\" is not present; pull it first"));
    }
    return leased.status();
  }
  const image::ImageRecord* image = &leased->first;
  CRID_ASSIGN_OR_RETURN(std::string image_config_text, images_->ConfigJson(image->id()));
  CRID_ASSIGN_OR_RETURN(ImageSettings image_settings, ParseImageConfig(image_config_text));

  const std::string id = NewContainerId();
  ContainerRecord record;
  record.set_id(id);
  record.set_pod_id(pod_id);
  *record.mutable_config() = config;
  record.set_state(ContainerRecord::CREATING);
  record.set_created_at_ns(NowNs());
  record.set_image_name(DisplayImageName(config.image(), *image));
  record.set_image_id(image->id());
  record.set_image_ref(image->repo_digests().empty() ? image->id() : image->repo_digests(0));
  for (const std::string& chain : image->chain_ids()) {
    record.add_chain_ids(chain);
  }
  record.set_dir(absl::StrCat(options_.root_dir, "/", id));
  record.set_runtime_handler(runtime->name);
  int stop_signal = 0;
  if (config.stop_signal() != v1::SIGNAL_RUNTIME_DEFAULT) {
    stop_signal = SignalNumber(v1::Signal_Name(config.stop_signal()));
  } else if (!image_settings.stop_signal.empty()) {
    stop_signal = SignalNumber(image_settings.stop_signal);
    if (stop_signal == 0) {
      spdlog::warn("image {}: unknown StopSignal \"{}\"; using SIGTERM", image_name,
                   image_settings.stop_signal);
    }
  }
  record.set_stop_signal(stop_signal != 0 ? stop_signal : SIGTERM);
  const std::string& log_dir = pod.config().log_directory();
  if (!log_dir.empty() && !config.log_path().empty()) {
    record.set_log_path(absl::StrCat(log_dir, "/", config.log_path()));
  }

  // Persisted first: a crash from here on is cleaned up on the next start.
  CRID_RETURN_IF_ERROR(Persist(record));
  bool created = false;
  absl::Cleanup undo = [&] {
    if (!created) {
      if (absl::Status st = Destroy(record); !st.ok()) {
        spdlog::error("container {}: undoing a failed create: {}", ShortId(id), st.message());
      }
    }
  };

  CRID_RETURN_IF_ERROR(MakeDirs(record.dir(), 0700));
  if (restore != nullptr) {
    CRID_RETURN_IF_ERROR(AdoptRestore(*restore, &record));
  }
  // In a pod with its own user namespace the layers are seen through
  // idmapped mounts, so the image's files are the pod's root's.
  OverlayOptions overlay;
  if (!pod.userns_path().empty()) {
    if (!Features(pod.runtime_handler()).user_namespaces) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pod sandbox ", pod_id, " has a user namespace, but runtime handler \"", runtime->name,
          "\" cannot give a container one here (no idmapped overlay layers)"));
    }
    const v1::UserNamespace& userns =
        pod.config().linux().security_context().namespace_options().userns_options();
    overlay.userns_path = pod.userns_path();
    overlay.host_uid = userns.uids(0).host_id();
    overlay.host_gid = userns.gids(0).host_id();
  }
  CRID_ASSIGN_OR_RETURN(
      OverlayRootfs rootfs,
      MountOverlayRootfs(record.dir(), ImageStore::LowerDirs(*images_, *image), overlay));

  // Image volumes: mounted now, bound into the container by the spec.
  std::vector<ImageLease> volume_leases;
  v1::ContainerConfig with_volumes;
  CRID_ASSIGN_OR_RETURN(const v1::ContainerConfig* spec_config,
                        MountImageVolumes(config, &record, &with_volumes, &volume_leases));

  SandboxSpecInfo info;
  info.id = pod.id();
  info.name = pod.config().metadata().name();
  info.namespace_ = pod.config().metadata().namespace_();
  info.uid = pod.config().metadata().uid();
  info.netns_path = pod.netns_path();
  info.ipc_ns_path = pod.ipc_ns_path();
  info.uts_ns_path = pod.uts_ns_path();
  info.userns_path = pod.userns_path();
  if (pod.pause_pid() > 0) {
    info.pid_ns_path = absl::StrCat("/proc/", pod.pause_pid(), "/ns/pid");
  }
  if (!pod.pod_dir().empty()) {
    info.hostname_file = pod.pod_dir() + "/hostname";
    info.hosts_file = pod.pod_dir() + "/hosts";
    info.resolv_conf_file = pod.pod_dir() + "/resolv.conf";
  }
  info.shm_path = pod.shm_path();
  info.cgroup_parent = pod.config().linux().cgroup_parent();
  info.linux = pod.config().linux();
  (void)sandbox_config;

  SpecOptions spec_options;
  spec_options.container_id = id;
  spec_options.rootfs = rootfs.rootfs;
  spec_options.image_name = image_name;
  spec_options.cgroup_driver = options_.cgroup_driver;
  spec_options.min_oom_score_adj = MinOomScoreAdj();
  spec_options.recursive_read_only_mounts =
      Features(pod.runtime_handler()).recursive_read_only_mounts;
  spec_options.apparmor = apparmor_;
  spec_options.selinux = selinux_;
  CgroupManager* cgroups = cgroups_.load();
  spec_options.cgroup_unified = cgroups != nullptr && cgroups->layout().unified;
  spec_options.cdi = &cdi_;
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  if (ns.pid() == v1::TARGET) {
    absl::StatusOr<ContainerRecord> target = Get(ns.target_id());
    if (target.ok() && target->pod_id() == pod_id && target->state() == ContainerRecord::RUNNING &&
        target->pid() > 0) {
      spec_options.target_pid_ns_path = absl::StrCat("/proc/", target->pid(), "/ns/pid");
    }
  }
  CRID_ASSIGN_OR_RETURN(json spec,
                        BuildOciSpec(*spec_config, image_settings.process, info, spec_options));
  if (!pod.userns_path().empty()) {
    // runc 1.1 cannot idmap a bind mount: it binds crid's idmapped clones.
    CRID_RETURN_IF_ERROR(IdmapBindMounts(record.dir(), pod.userns_path(),
                                         record.dir() + "/image-volumes/", spec["mounts"]));
  }
  const json& user = spec["process"]["user"];
  record.set_uid(user.value("uid", int64_t{0}));
  record.set_gid(user.value("gid", int64_t{0}));
  for (const json& g : user.value("additionalGids", json::array())) {
    record.add_additional_gids(g.get<int64_t>());
  }
  // Replaced atomically but not synced: only a container that runs reads it
  // (runc, the shim's native exec, checkpoints), and after a crash of the
  // host none does; ContainerStatus's verbose info skips a file it cannot
  // parse.
  CRID_RETURN_IF_ERROR(ReplaceFile(record.dir() + "/config.json", spec.dump(), 0600));
  if (!record.log_path().empty()) {
    std::string parent = record.log_path().substr(0, record.log_path().rfind('/'));
    if (!parent.empty()) {
      CRID_RETURN_IF_ERROR(MakeDirs(parent, 0755));
    }
  }

  // A restored container gets its process from the checkpoint when it starts.
  if (restore == nullptr) {
    CRID_RETURN_IF_ERROR(CreateInShim(&record, *runtime, info.cgroup_parent, ""));
  }
  record.set_state(ContainerRecord::CREATED);
  CRID_RETURN_IF_ERROR(Persist(record));
  created = true;
  {
    // Published and reported together: a StartContainer of the new record
    // reports its start after this.
    absl::MutexLock events_lock(&events_mu_);
    Publish(record);
    Notify(record, ContainerEventKind::kCreated);
  }
  spdlog::info("container {} ({}) created in pod {}", ShortId(id), config.metadata().name(),
               ShortId(pod_id));
  return id;
}

absl::StatusOr<const v1::ContainerConfig*> ContainerManager::MountImageVolumes(
    const v1::ContainerConfig& config, ContainerRecord* record, v1::ContainerConfig* with_volumes,
    std::vector<ImageLease>* leases) {
  bool any = false;
  for (const v1::Mount& m : config.mounts()) {
    if (m.has_image() && !m.image().image().empty()) {
      CRID_RETURN_IF_ERROR(ValidateImageVolume(m));
      any = true;
    }
  }
  if (!any) {
    return &config;
  }
  *with_volumes = config;
  // In a pod with its own user namespace the volumes are idmapped into it.
  std::string userns_path;
  if (absl::StatusOr<sandbox::SandboxRecord> pod = sandboxes_->Get(record->pod_id()); pod.ok()) {
    userns_path = pod->userns_path();
  }
  for (int i = 0; i < with_volumes->mounts_size(); ++i) {
    v1::Mount* m = with_volumes->mutable_mounts(i);
    if (!m->has_image() || m->image().image().empty()) {
      continue;
    }
    const std::string& name = m->image().image();
    absl::StatusOr<std::pair<image::ImageRecord, ImageLease>> leased = images_->Acquire(name);
    if (!leased.ok()) {
      if (leased.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("mounts.image: image \"", name,
                                                "\" is not present; pull it first (",
                                                m->container_path(), ")"));
      }
      return Annotate(leased.status(), "mounts.image");
    }
    const image::ImageRecord& image = leased->first;
    CRID_ASSIGN_OR_RETURN(
        std::string source,
        MountImageVolume(ImageVolumeDir(record->dir(), i), ImageStore::LowerDirs(*images_, image),
                         m->image_sub_path(), userns_path));
    leases->push_back(std::move(leased->second));
    for (const std::string& chain : image.chain_ids()) {
      record->add_volume_chain_ids(chain);
    }
    // The spec binds what was mounted; ContainerStatus reports which image
    // it is (ImageSpec.image_ref, as PullImage named it).
    m->set_host_path(source);
    m->mutable_image()->set_image_ref(image.id());
    record->mutable_config()->mutable_mounts(i)->mutable_image()->set_image_ref(image.id());
  }
  return with_volumes;
}

absl::Status ContainerManager::CreateInShim(ContainerRecord* record,
                                            const OciRuntimeConfig& runtime,
                                            const std::string& cgroup_parent,
                                            const std::string& checkpoint_dir) {
  CRID_ASSIGN_OR_RETURN(std::shared_ptr<shim::ShimClient> client, ShimFor(record->pod_id(), true));
  shim::CreateRequest request;
  request.set_id(record->id());
  request.set_bundle(record->dir());
  request.mutable_runtime()->set_name(runtime.name);
  request.mutable_runtime()->set_binary(runtime.binary);
  request.mutable_runtime()->set_root(runtime.root);
  request.mutable_runtime()->set_systemd_cgroup(runtime.systemd_cgroup);
  request.mutable_runtime()->set_runtime_exec_only(!options_.native_exec);
  request.set_log_path(record->log_path());
  request.set_checkpoint_dir(checkpoint_dir);
  request.set_stdin(record->config().stdin());
  request.set_stdin_once(record->config().stdin_once());
  request.set_tty(record->config().tty());
  CRID_ASSIGN_OR_RETURN(pid_t pid, client->Create(request));
  record->set_pid(pid);
  if (CgroupManager* cgroups = cgroups_.load(); cgroups != nullptr) {
    // Before the container runs anything: where systemd moved its init (see
    // KeepContainerInItsCgroups) it would not be confined by its own limits.
    absl::StatusOr<std::vector<std::string>> moved =
        cgroups->KeepContainerInItsCgroups(cgroup_parent, record->id(), pid);
    if (!moved.ok()) {
      return Annotate(moved.status(), "keeping the container's init in its cgroups");
    }
    if (!moved->empty()) {
      spdlog::info("container {}: its init was moved back into its own cgroup: {}",
                   ShortId(record->id()), absl::StrJoin(*moved, ", "));
    }
  }
  return absl::OkStatus();
}

}  // namespace crid::container
