// Version: the first call kubelet makes, and again with "0.1.0" to check the API.
#include <spdlog/spdlog.h>

#include "base/logging.h"
#include "cri/runtime_service.h"
#include "cri/version_info.h"

namespace crid {

grpc::ServerUnaryReactor* RuntimeService::Version(grpc::CallbackServerContext* context,
                                                  const runtime::v1::VersionRequest* request,
                                                  runtime::v1::VersionResponse* response) {
  // The request's version is the client's API version; crid answers with the one
  // it serves, and kubelet decides whether that is compatible.
  spdlog::debug("Version(version={})", request->version());
  response->set_version(kKubeletApiVersion);
  response->set_runtime_name(kRuntimeName);
  response->set_runtime_version(kCridVersion);
  response->set_runtime_api_version(kRuntimeApiVersion);
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace crid
