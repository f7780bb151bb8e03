// ListImages and StreamImages: every stored image, or only the one the filter's
// reference names. StreamImages sends the same in batches (cri/batch_stream.h).
#include "base/errors.h"
#include "cri/batch_stream.h"
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
  out->mutable_spec()->mutable_annotations()->insert(record.annotations().begin(),
                                                     record.annotations().end());
  out->mutable_spec()->set_runtime_handler(record.runtime_handler());
  out->set_pinned(record.pinned());
}

namespace {

// The images `filter` selects (all of them, or the one its reference names),
// for ListImages and StreamImages alike.
absl::Status FillImages(ImageStore& images, const runtime::v1::ImageFilter& filter,
                        runtime::v1::ListImagesResponse* response) {
  const std::string& wanted = filter.image().image();
  if (!wanted.empty()) {
    absl::StatusOr<std::optional<image::ImageRecord>> record = images.Resolve(wanted);
    if (!record.ok()) {
      return Annotate(record.status(), "filter.image.image");
    }
    if (record->has_value()) {
      ToCriImage(**record, response->add_images());
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<image::ImageRecord>> records = images.List();
  if (!records.ok()) {
    return records.status();
  }
  for (const image::ImageRecord& r : *records) {
    ToCriImage(r, response->add_images());
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerWriteReactor<runtime::v1::StreamImagesResponse>* ImageService::StreamImages(
    grpc::CallbackServerContext* /*context*/, const runtime::v1::StreamImagesRequest* request) {
  if (images_ == nullptr) {
    return new BatchWriteReactor<runtime::v1::StreamImagesResponse>(
        {}, UnimplementedRpc("ImageService", "StreamImages"));
  }
  return StreamFromList<runtime::v1::StreamImagesResponse, runtime::v1::ListImagesResponse>(
      [&](runtime::v1::ListImagesResponse* list) {
        return FillImages(*images_, request->filter(), list);
      },
      &runtime::v1::ListImagesResponse::mutable_images,
      &runtime::v1::StreamImagesResponse::mutable_images);
}

grpc::ServerUnaryReactor* ImageService::ListImages(grpc::CallbackServerContext* context,
                                                   const runtime::v1::ListImagesRequest* request,
                                                   runtime::v1::ListImagesResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "ListImages"));
  }
  return FinishUnary(context, FillImages(*images_, request->filter(), response));
}

}  // namespace crid
