#include "cri/daemon_metrics.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "proto/cri_api.grpc.pb.h"

namespace crid {

namespace {

std::vector<const google::protobuf::ServiceDescriptor*> CriServices() {
  const google::protobuf::FileDescriptor* file = runtime::v1::VersionRequest::descriptor()->file();
  return {file->FindServiceByName("RuntimeService"), file->FindServiceByName("ImageService")};
}

// Series per state, every state present (at 0 too) so a state that empties
// reads 0 instead of vanishing.
template <typename Enum>
std::vector<metrics::ScrapeGauges::Sample> ByState(const google::protobuf::EnumDescriptor* states,
                                                   const std::vector<Enum>& seen) {
  std::vector<metrics::ScrapeGauges::Sample> samples;
  for (int i = 0; i < states->value_count(); ++i) {
    const google::protobuf::EnumValueDescriptor* state = states->value(i);
    double n = 0;
    for (Enum s : seen) {
      n += static_cast<int>(s) == state->number() ? 1 : 0;
    }
    samples.push_back({{{"state", absl::AsciiStrToLower(state->name())}}, n});
  }
  return samples;
}

}  // namespace

DaemonMetrics::DaemonMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_(*registry_, CriServices()),
      pulls_(*registry_),
      cni_(*registry_),
      shims_(*registry_),
      gauges_(std::make_shared<metrics::ScrapeGauges>()) {}

DaemonMetrics::~DaemonMetrics() = default;

absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> DaemonMetrics::Serve(
    const std::string& address, const MeteredParts& parts) {
  if (parts.cni != nullptr) {
    parts.cni->SetMetrics(&cni_);
  }
  if (parts.images != nullptr) {
    parts.images->SetMetrics(&pulls_);
  }
  if (sandbox::SandboxManager* sandboxes = parts.sandboxes; sandboxes != nullptr) {
    gauges_->Add("crid_pods", "Pod sandboxes crid holds, by state.", [sandboxes] {
      std::vector<sandbox::SandboxRecord::State> states;
      for (const sandbox::SandboxRecord& pod : sandboxes->List({})) {
        states.push_back(pod.state());
      }
      return ByState(sandbox::SandboxRecord::State_descriptor(), states);
    });
  }
  if (container::ContainerManager* containers = parts.containers; containers != nullptr) {
    containers->SetShimMetrics(&shims_);
    gauges_->Add("crid_containers", "Containers crid holds, by state.", [containers] {
      std::vector<container::ContainerRecord::State> states;
      for (const container::RecordSnapshot& c : containers->List({})) {
        states.push_back(c->state());
      }
      return ByState(container::ContainerRecord::State_descriptor(), states);
    });
    gauges_->Add("crid_shims", "crid-shim processes crid runs (one per pod with containers).",
                 [containers] {
                   return std::vector<metrics::ScrapeGauges::Sample>{
                       {{}, static_cast<double>(containers->ShimCount())}};
                 });
  }
  return metrics::MetricsEndpoint::Start(address, {registry_, gauges_});
}

}  // namespace crid
