// ListImages: every stored image, or only the one the filter's reference names.
#include "base/errors.h"
#include "cri/image_service.h"
#include "image/image_store.h"

namespace crid {

void ToCriImage(const image::ImageRecord& record, runtime::v1::Image* out) {
  out->set_id(record.id());
  out->mutable_repo_tags()->CopyFrom(record.repo_tags());
  out->mutable_repo_digests()->CopyFrom(record.repo_digests());
  out->set_size(record.size());
  ImageUser user = ParseImageUser(record.user());
  if (user.uid.has_value()) {
    out->mutable_uid()->set_value(*user.uid);
  }
  out->set_username(user.username);
  out->mutable_spec()->set_image(record.id());
  out->set_pinned(record.pinned());
}

grpc::ServerUnaryReactor* ImageService::ListImages(grpc::CallbackServerContext* context,
                                                   const runtime::v1::ListImagesRequest* request,
                                                   runtime::v1::ListImagesResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "ListImages"));
  }
  const std::string& wanted = request->filter().image().image();
  if (!wanted.empty()) {
    absl::StatusOr<std::optional<image::ImageRecord>> record = images_->Resolve(wanted);
    if (!record.ok()) {
      return FinishUnary(context, Annotate(record.status(), "filter.image.image"));
    }
    if (record->has_value()) {
      ToCriImage(**record, response->add_images());
    }
    return FinishUnary(context, absl::OkStatus());
  }
  absl::StatusOr<std::vector<image::ImageRecord>> records = images_->List();
  if (!records.ok()) {
    return FinishUnary(context, records.status());
  }
  for (const image::ImageRecord& r : *records) {
    ToCriImage(r, response->add_images());
  }
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace crid
