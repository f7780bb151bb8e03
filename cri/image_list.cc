// ListImages and StreamImages: every stored image, or only the one the filter's
// reference names. StreamImages sends them in batches of 100.
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
  out->mutable_spec()->mutable_annotations()->insert(record.annotations().begin(),
                                                     record.annotations().end());
  out->mutable_spec()->set_runtime_handler(record.runtime_handler());
  out->set_pinned(record.pinned());
}

namespace {

constexpr int kStreamBatch = 100;

// Sends prepared batches one after the other, then finishes.
class ImageBatchWriter final : public grpc::ServerWriteReactor<runtime::v1::StreamImagesResponse> {
 public:
  ImageBatchWriter(std::vector<runtime::v1::StreamImagesResponse> batches,
                   const absl::Status& status)
      : batches_(std::move(batches)) {
    if (!status.ok()) {
      Finish(ToGrpcStatus(status));
      return;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == batches_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    StartWrite(&batches_[next_++]);
  }

  std::vector<runtime::v1::StreamImagesResponse> batches_;
  size_t next_ = 0;
};

}  // namespace

grpc::ServerWriteReactor<runtime::v1::StreamImagesResponse>* ImageService::StreamImages(
    grpc::CallbackServerContext* context, const runtime::v1::StreamImagesRequest* request) {
  if (images_ == nullptr) {
    return new ImageBatchWriter({}, UnimplementedRpc("ImageService", "StreamImages"));
  }
  std::vector<image::ImageRecord> records;
  const std::string& wanted = request->filter().image().image();
  if (!wanted.empty()) {
    absl::StatusOr<std::optional<image::ImageRecord>> record = images_->Resolve(wanted);
    if (!record.ok()) {
      return new ImageBatchWriter({}, Annotate(record.status(), "filter.image.image"));
    }
    if (record->has_value()) {
      records.push_back(**record);
    }
  } else {
    absl::StatusOr<std::vector<image::ImageRecord>> all = images_->List();
    if (!all.ok()) {
      return new ImageBatchWriter({}, all.status());
    }
    records = std::move(*all);
  }
  std::vector<runtime::v1::StreamImagesResponse> batches;
  for (size_t i = 0; i < records.size(); ++i) {
    if (i % kStreamBatch == 0) {
      batches.emplace_back();
    }
    ToCriImage(records[i], batches.back().add_images());
  }
  return new ImageBatchWriter(std::move(batches), absl::OkStatus());
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
