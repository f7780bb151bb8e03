// ContainerManager::Checkpoint: a running container's processes dumped by CRIU
// through the OCI runtime (the container keeps running), with its spec and
// writable layer, into one archive (container/checkpoint.h).
#include <sys/stat.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "container/checkpoint.h"
#include "container/manager.h"
#include "spdlog/spdlog.h"

namespace crid::container {

namespace {

namespace v1 = ::runtime::v1;

// status.dump: the parts of the CRI ContainerStatus a restore or an
// inspection needs, as containerd writes it (Go's encoding/json of the CRI
// struct: the proto's field names, the state as its number).
std::string StatusDumpJson(const ContainerRecord& record) {
  Json labels = Json::object();
  for (const auto& [k, v] : record.config().labels()) {
    labels[k] = v;
  }
  Json annotations = Json::object();
  for (const auto& [k, v] : record.config().annotations()) {
    annotations[k] = v;
  }
  Json j = {
      {"id", record.id()},
      {"metadata",
       {{"name", record.config().metadata().name()},
        {"attempt", record.config().metadata().attempt()}}},
      {"state", static_cast<int>(v1::CONTAINER_RUNNING)},
      {"created_at", record.created_at_ns()},
      {"started_at", record.started_at_ns()},
      {"image", {{"image", record.image_name()}}},
      {"image_ref", record.image_ref()},
      {"image_id", record.image_id()},
      {"labels", labels},
      {"annotations", annotations},
      {"log_path", record.log_path()},
  };
  return j.dump(2);
}

}  // namespace

absl::Status ContainerManager::Checkpoint(const std::string& id, const std::string& location,
                                          absl::Duration timeout) {
  CRID_ASSIGN_OR_RETURN(ContainerRecord record, Get(id));
  // Held throughout: a stop or removal waits until the archive is written.
  std::shared_ptr<absl::Mutex> op = OpLock(record.id());
  absl::MutexLock op_lock(op.get());
  CRID_ASSIGN_OR_RETURN(record, Get(record.id()));
  if (record.state() != ContainerRecord::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container ", record.id(), " is ", v1::ContainerState_Name(CriState(record.state())),
        "; only running containers can be checkpointed"));
  }
  std::string parent = location.substr(0, location.rfind('/'));
  struct stat st;
  if (::stat(parent.empty() ? "/" : parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("location: directory \"", parent, "\" does not exist"));
  }
  CRID_RETURN_IF_ERROR(CheckCriu());
  CRID_ASSIGN_OR_RETURN(const OciRuntimeConfig* handler, Handler(record.runtime_handler()));

  // Everything of one checkpoint is put together here and removed afterwards,
  // whatever happened, so a failed checkpoint leaves nothing behind.
  const std::string work = absl::StrCat(record.dir(), "/checkpoint-work");
  CRID_RETURN_IF_ERROR(RemoveTree(work));
  CRID_RETURN_IF_ERROR(MakeDirs(absl::StrCat(work, "/", kCriuImageDir), 0700));
  absl::Cleanup remove_work = [&] {
    if (absl::Status removed = RemoveTree(work); !removed.ok()) {
      spdlog::warn("container {}: removing {}: {}", record.id().substr(0, 12), work,
                   std::string(removed.message()));
    }
  };

  OciRuntimeConfig config = *handler;
  if (timeout > absl::ZeroDuration()) {
    config.timeout = timeout;
  }
  OciRuntime runtime(config);
  const int64_t checkpointed_ns = absl::ToUnixNanos(absl::Now());
  if (absl::Status dumped =
          runtime.Checkpoint(record.id(), absl::StrCat(work, "/", kCriuImageDir), work);
      !dumped.ok()) {
    // runc only says "criu failed"; CRIU's log says why.
    std::string why = CriuLogErrors(ReadFile(absl::StrCat(work, "/", kDumpLogFile)).value_or(""));
    return absl::Status(
        dumped.code(), absl::StrCat("checkpointing container ", record.id(), ": ", dumped.message(),
                                    why.empty() ? "" : ": ", why));
  }

  CheckpointConfig dump;
  dump.id = record.id();
  dump.name = record.config().metadata().name();
  dump.rootfs_image = record.image_id();
  dump.rootfs_image_ref = record.image_ref();
  dump.rootfs_image_name = record.image_name();
  dump.runtime = record.runtime_handler();
  dump.created_ns = record.created_at_ns();
  dump.checkpointed_ns = checkpointed_ns;
  CRID_RETURN_IF_ERROR(
      WriteFileAtomic(absl::StrCat(work, "/", kConfigDumpFile), ConfigDumpJson(dump), 0600));
  CRID_ASSIGN_OR_RETURN(std::string spec, ReadFile(record.dir() + "/config.json"));
  CRID_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(work, "/", kSpecDumpFile), spec, 0600));
  CRID_RETURN_IF_ERROR(
      WriteFileAtomic(absl::StrCat(work, "/", kStatusDumpFile), StatusDumpJson(record), 0600));
  CRID_RETURN_IF_ERROR(WriteRootfsDiff(record.dir() + "/upper", work));
  CRID_RETURN_IF_ERROR(WriteCheckpointArchive(work, location));
  spdlog::info("container {} checkpointed to {}", record.id().substr(0, 12), location);
  return absl::OkStatus();
}

}  // namespace crid::container

namespace crid::container {

namespace {

// The container's process as spec.dump has it: what the restored container
// is shown to run (its real state comes from CRIU's images).
absl::Status TakeProcessFromSpec(const std::string& spec_text, v1::ContainerConfig* config) {
  CRID_ASSIGN_OR_RETURN(Json spec, ParseJsonObject(spec_text, kSpecDumpFile));
  const Json process = spec.value("process", Json::object());
  if (config->command().empty() && config->args().empty()) {
    for (const Json& arg : process.value("args", Json::array())) {
      if (arg.is_string()) {
        config->add_command(arg.get<std::string>());
      }
    }
  }
  if (config->envs().empty()) {
    for (const Json& env : process.value("env", Json::array())) {
      if (!env.is_string()) {
        continue;
      }
      const std::string kv = env.get<std::string>();
      size_t eq = kv.find('=');
      if (eq == 0 || eq == std::string::npos) {
        continue;
      }
      v1::KeyValue* out = config->add_envs();
      out->set_key(kv.substr(0, eq));
      out->set_value(kv.substr(eq + 1));
    }
  }
  if (config->working_dir().empty()) {
    config->set_working_dir(JsonString(process, "cwd"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ContainerManager::RestoreSource> ContainerManager::PrepareRestore(
    const v1::ContainerConfig& config) {
  const std::string& archive = config.image().image();
  CRID_RETURN_IF_ERROR(MakeDirs(options_.root_dir, 0700));
  std::string tmpl = absl::StrCat(options_.root_dir, "/restore-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoError(errno, "mkdtemp ", tmpl);
  }
  RestoreSource restore;
  restore.dir = tmpl;
  absl::Cleanup remove = [&] { (void)RemoveTree(restore.dir); };
  if (absl::Status st = UnpackCheckpointArchive(archive, restore.dir); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("image.image: ", st.message()));
  }
  CRID_ASSIGN_OR_RETURN(std::string dump_text,
                        ReadFile(absl::StrCat(restore.dir, "/", kConfigDumpFile)));
  absl::StatusOr<CheckpointConfig> dump = ParseConfigDump(dump_text);
  if (!dump.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image.image: checkpoint archive ", archive, ": ", dump.status().message()));
  }
  struct stat st;
  if (::stat(absl::StrCat(restore.dir, "/", kCriuImageDir).c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("image.image: checkpoint archive ", archive,
                                                   " has no CRIU images (", kCriuImageDir, "/)"));
  }
  restore.config = config;
  // The container runs on the image the checkpointed one ran on; it must be
  // present (crid does not pull on its own).
  restore.config.mutable_image()->set_image(
      !dump->rootfs_image_name.empty()  ? dump->rootfs_image_name
      : !dump->rootfs_image_ref.empty() ? dump->rootfs_image_ref
                                        : dump->rootfs_image);
  (*restore.config.mutable_annotations())["io.crid.checkpoint.archive"] = archive;
  CRID_ASSIGN_OR_RETURN(std::string spec_text,
                        ReadFile(absl::StrCat(restore.dir, "/", kSpecDumpFile)));
  if (absl::Status taken = TakeProcessFromSpec(spec_text, &restore.config); !taken.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image.image: checkpoint archive ", archive, ": ", taken.message()));
  }
  std::move(remove).Cancel();
  return restore;
}

absl::Status ContainerManager::AdoptRestore(const RestoreSource& restore, ContainerRecord* record) {
  const std::string target = record->dir() + "/checkpoint-restore";
  if (::rename(restore.dir.c_str(), target.c_str()) != 0) {
    return ErrnoError(errno, "rename ", restore.dir, " to ", target);
  }
  record->set_restore_dir(target);
  const std::string upper = record->dir() + "/upper";
  CRID_RETURN_IF_ERROR(MakeDirs(upper, 0755));
  return ApplyRootfsDiff(target, upper);
}

absl::Status ContainerManager::RestoreInShim(ContainerRecord* record) {
  CRID_RETURN_IF_ERROR(CheckCriu());
  CRID_ASSIGN_OR_RETURN(const OciRuntimeConfig* runtime, Handler(record->runtime_handler()));
  CRID_ASSIGN_OR_RETURN(sandbox::SandboxRecord pod, sandboxes_->Get(record->pod_id()));
  if (absl::Status restored = CreateInShim(record, *runtime, pod.config().linux().cgroup_parent(),
                                           record->restore_dir());
      !restored.ok()) {
    std::string why = CriuLogErrors(ReadFile(record->restore_dir() + "/restore.log").value_or(""));
    return absl::Status(restored.code(),
                        absl::StrCat("restoring container ", record->id(), ": ", restored.message(),
                                     why.empty() ? "" : ": ", why));
  }
  // CRIU's images are not needed once the processes run again.
  if (absl::Status removed = RemoveTree(record->restore_dir()); !removed.ok()) {
    spdlog::warn("container {}: removing {}: {}", record->id().substr(0, 12), record->restore_dir(),
                 std::string(removed.message()));
  }
  record->clear_restore_dir();
  spdlog::info("container {} restored from its checkpoint", record->id().substr(0, 12));
  return absl::OkStatus();
}

}  // namespace crid::container
