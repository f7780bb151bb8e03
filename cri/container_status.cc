// ContainerStatus and ListContainers: answered from the container manager's
// in-memory index on the callback thread.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "base/fs.h"
#include "cri/batch_stream.h"
#include "cri/runtime_service.h"
#include "nlohmann/json.hpp"

namespace crid {

namespace {

using container::ContainerRecord;

// The verbose "info" entry: where the container lives and what the runtime got.
std::string VerboseInfo(const ContainerRecord& r) {
  nlohmann::json info = {
      {"sandboxID", r.pod_id()},
      {"pid", r.pid()},
      {"runtimeHandler", r.runtime_handler()},
      {"bundle", r.dir()},
      {"logPath", r.log_path()},
      {"imageID", r.image_id()},
      {"layers", std::vector<std::string>(r.chain_ids().begin(), r.chain_ids().end())},
  };
  absl::StatusOr<std::string> spec = ReadFile(r.dir() + "/config.json");
  if (spec.ok()) {
    nlohmann::json parsed = nlohmann::json::parse(*spec, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) {
      info["runtimeSpec"] = std::move(parsed);
    }
  }
  return info.dump();
}

}  // namespace

void ToCriContainerStatus(const ContainerRecord& r, runtime::v1::ContainerStatus* status) {
  const runtime::v1::ContainerConfig& config = r.config();
  status->set_id(r.id());
  *status->mutable_metadata() = config.metadata();
  status->set_state(container::CriState(r.state()));
  status->set_created_at(r.created_at_ns());
  status->set_started_at(r.started_at_ns());
  status->set_finished_at(r.finished_at_ns());
  status->set_exit_code(r.exit_code());
  *status->mutable_image() = config.image();
  status->mutable_image()->set_image(r.image_name());
  status->set_image_ref(r.image_ref());
  status->set_image_id(r.image_id());
  status->set_reason(r.reason());
  status->set_message(r.message());
  *status->mutable_labels() = config.labels();
  *status->mutable_annotations() = config.annotations();
  *status->mutable_mounts() = config.mounts();
  status->set_log_path(r.log_path());
  *status->mutable_resources()->mutable_linux() = config.linux().resources();
  runtime::v1::LinuxContainerUser* user = status->mutable_user()->mutable_linux();
  user->set_uid(r.uid());
  user->set_gid(r.gid());
  // The process's whole group list, as `id -G` shows it: the primary group first.
  user->add_supplemental_groups(r.gid());
  for (int64_t gid : r.additional_gids()) {
    if (gid != r.gid()) {
      user->add_supplemental_groups(gid);
    }
  }
  status->set_stop_signal(config.stop_signal());
}

grpc::ServerUnaryReactor* RuntimeService::ContainerStatus(
    grpc::CallbackServerContext* context, const runtime::v1::ContainerStatusRequest* request,
    runtime::v1::ContainerStatusResponse* response) {
  if (containers_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("containers are not available"));
  }
  if (request->container_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("container_id: must not be empty"));
  }
  absl::StatusOr<container::RecordSnapshot> r = containers_->Find(request->container_id());
  if (!r.ok()) {
    return FinishUnary(context, r.status());
  }
  ToCriContainerStatus(**r, response->mutable_status());
  if (request->verbose()) {
    (*response->mutable_info())["info"] = VerboseInfo(**r);
  }
  return FinishUnary(context, absl::OkStatus());
}

void AddPodContainerStatuses(
    const container::ContainerManager& containers, const std::string& pod_id,
    google::protobuf::RepeatedPtrField<runtime::v1::ContainerStatus>* statuses) {
  runtime::v1::ContainerFilter filter;
  filter.set_pod_sandbox_id(pod_id);
  std::vector<container::RecordSnapshot> mine;
  for (container::RecordSnapshot& c : containers.List(filter)) {
    if (c->pod_id() == pod_id) {  // the filter matches ID prefixes
      mine.push_back(std::move(c));
    }
  }
  // In ID order, a restarted container whose ID sorted after the exited one's
  // was never seen running: kubelet kept "restarting" it.
  std::sort(mine.begin(), mine.end(),
            [](const container::RecordSnapshot& a, const container::RecordSnapshot& b) {
              return a->created_at_ns() != b->created_at_ns()
                         ? a->created_at_ns() > b->created_at_ns()
                         : a->id() < b->id();
            });
  for (const container::RecordSnapshot& c : mine) {
    ToCriContainerStatus(*c, statuses->Add());
  }
}

void ToCriContainer(const ContainerRecord& r, runtime::v1::Container* c) {
  c->set_id(r.id());
  c->set_pod_sandbox_id(r.pod_id());
  *c->mutable_metadata() = r.config().metadata();
  *c->mutable_image() = r.config().image();
  c->mutable_image()->set_image(r.image_name());
  c->set_image_ref(r.image_ref());
  c->set_image_id(r.image_id());
  c->set_state(container::CriState(r.state()));
  c->set_created_at(r.created_at_ns());
  *c->mutable_labels() = r.config().labels();
  *c->mutable_annotations() = r.config().annotations();
}

absl::Status RuntimeService::FillContainers(const runtime::v1::ContainerFilter& filter,
                                            runtime::v1::ListContainersResponse* response) const {
  if (containers_ == nullptr) {
    return absl::UnavailableError("containers are not available");
  }
  for (const container::RecordSnapshot& snapshot : containers_->List(filter)) {
    ToCriContainer(*snapshot, response->add_containers());
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* RuntimeService::ListContainers(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request,
                                                         grpc::ByteBuffer* response) {
  runtime::v1::ListContainersRequest parsed;
  if (!FromByteBuffer(*request, &parsed)) {
    return FinishUnary(context,
                       absl::InvalidArgumentError("request: not a ListContainersRequest message"));
  }
  if (containers_ == nullptr) {
    return FinishUnary(context, absl::UnavailableError("containers are not available"));
  }
  const std::vector<container::RecordSnapshot> listed = containers_->List(parsed.filter());
  std::string bytes;
  bytes.reserve(listed.size() * 512);
  for (const container::RecordSnapshot& snapshot : listed) {
    container_entries_.Append(
        snapshot,
        [&snapshot] {
          runtime::v1::Container c;
          ToCriContainer(*snapshot, &c);
          return c.SerializeAsString();
        },
        &bytes);
  }
  container_entries_.Trim(listed.size());
  *response = ToByteBuffer(bytes);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerWriteReactor<runtime::v1::StreamContainersResponse>* RuntimeService::StreamContainers(
    grpc::CallbackServerContext* /*context*/, const runtime::v1::StreamContainersRequest* request) {
  return StreamFromList<runtime::v1::StreamContainersResponse, runtime::v1::ListContainersResponse>(
      [&](runtime::v1::ListContainersResponse* list) {
        return FillContainers(request->filter(), list);
      },
      &runtime::v1::ListContainersResponse::mutable_containers,
      &runtime::v1::StreamContainersResponse::mutable_containers);
}

}  // namespace crid
