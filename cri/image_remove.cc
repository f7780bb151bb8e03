// RemoveImage: by ID, tag or digest; removes the image with all its tags.
// Idempotent: an absent image is success.
#include "base/errors.h"
#include "cri/image_service.h"

namespace crid {

grpc::ServerUnaryReactor* ImageService::RemoveImage(grpc::CallbackServerContext* context,
                                                    const runtime::v1::RemoveImageRequest* request,
                                                    runtime::v1::RemoveImageResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "RemoveImage"));
  }
  const std::string& name = request->image().image();
  if (name.empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("image.image: must not be empty"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = pool_.Submit([this, name, reactor] {
    absl::Status st = images_->Remove(name);
    reactor->Finish(ToGrpcStatus(st.ok() ? st : Annotate(st, "removing image " + name)));
  });
  if (!queued) {
    // Only while crid shuts down: the queue has no bound.
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("crid is shutting down")));
  }
  return reactor;
}

}  // namespace crid
