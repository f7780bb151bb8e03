// ImageStatus: the image by ID, any tag or any digest; no image (not an error)
// when absent. verbose adds the image config and layer chain under "info".
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/json.h"
#include "cri/image_service.h"

namespace crid {
namespace {

std::string JsonList(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& s : items) {
    quoted.push_back(JsonQuote(s));
  }
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

}  // namespace

grpc::ServerUnaryReactor* ImageService::ImageStatus(grpc::CallbackServerContext* context,
                                                    const runtime::v1::ImageStatusRequest* request,
                                                    runtime::v1::ImageStatusResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "ImageStatus"));
  }
  const std::string& name = request->image().image();
  if (name.empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("image.image: must not be empty"));
  }
  absl::StatusOr<std::optional<image::ImageRecord>> record = images_->Resolve(name);
  if (!record.ok()) {
    return FinishUnary(context, Annotate(record.status(), "image.image"));
  }
  if (!record->has_value()) {
    return FinishUnary(context, absl::OkStatus());
  }
  const image::ImageRecord& r = **record;
  ToCriImage(r, response->mutable_image());
  if (request->verbose()) {
    absl::StatusOr<std::string> config = images_->ConfigJson(r.id());
    if (!config.ok()) {
      return FinishUnary(context, Annotate(config.status(), "reading image config"));
    }
    (*response->mutable_info())["info"] = absl::StrCat(
        "{\"id\":", JsonQuote(r.id()), ",\"manifestDigest\":", JsonQuote(r.manifest_digest()),
        ",\"layers\":", JsonList(r.layer_digests()), ",\"diffIDs\":", JsonList(r.diff_ids()),
        ",\"chainIDs\":", JsonList(r.chain_ids()), ",\"imageSpec\":", *config, "}");
  }
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace crid
