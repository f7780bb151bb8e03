// PullImage: runs on the image worker pool (kubelet sets no deadline on pulls);
// answers with the image ID, which ListImages and ImageStatus report as Image.id.
#include "absl/strings/str_cat.h"
#include "cri/image_service.h"

namespace crid {

grpc::ServerUnaryReactor* ImageService::PullImage(grpc::CallbackServerContext* context,
                                                  const runtime::v1::PullImageRequest* request,
                                                  runtime::v1::PullImageResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "PullImage"));
  }
  const std::string& name = request->image().image();
  if (name.empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("image.image: must not be empty"));
  }
  RegistryAuth auth;
  auth.username = request->auth().username();
  auth.password = request->auth().password();
  auth.auth = request->auth().auth();
  auth.identity_token = request->auth().identity_token();
  auth.registry_token = request->auth().registry_token();
  auth.server_address = request->auth().server_address();
  PullOptions options;
  options.annotations.insert(request->image().annotations().begin(),
                             request->image().annotations().end());
  options.runtime_handler = request->image().runtime_handler();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = pool_.Submit([this, name, auth, options, reactor, response] {
    // Layers take space; on a short disk the last of it is kept for removals.
    if (store_ != nullptr) {
      if (absl::Status room = store_->CheckRoom(absl::StrCat("pull image \"", name, "\""));
          !room.ok()) {
        reactor->Finish(ToGrpcStatus(room));
        return;
      }
    }
    absl::StatusOr<std::string> id = images_->Pull(name, auth, options);
    if (!id.ok()) {
      reactor->Finish(ToGrpcStatus(
          absl::Status(id.status().code(),
                       absl::StrCat("pulling image \"", name, "\": ", id.status().message()))));
      return;
    }
    response->set_image_ref(*id);
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) {
    // Only while crid shuts down: the queue has no bound.
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("crid is shutting down")));
  }
  return reactor;
}

}  // namespace crid
