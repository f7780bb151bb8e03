// runtime.v1.ImageService. Pulling, listing and removing images land with the
// image store; until then every RPC answers UNIMPLEMENTED with its name.
#pragma once

#include <grpcpp/grpcpp.h>

#include "cri/reactors.h"
#include "proto/cri_api.grpc.pb.h"

namespace crid {

class ImageService final : public runtime::v1::ImageService::CallbackService {
 public:
  CRID_UNIMPLEMENTED_UNARY(ImageService, ListImages)
  CRID_UNIMPLEMENTED_STREAM(ImageService, StreamImages, StreamImagesRequest, StreamImagesResponse)
  CRID_UNIMPLEMENTED_UNARY(ImageService, ImageStatus)
  CRID_UNIMPLEMENTED_UNARY(ImageService, PullImage)
  CRID_UNIMPLEMENTED_UNARY(ImageService, RemoveImage)
  CRID_UNIMPLEMENTED_UNARY(ImageService, ImageFsInfo)
};

}  // namespace crid
