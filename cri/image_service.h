// runtime.v1.ImageService over the image store: validates each request, runs
// blocking work (pulls, removals, disk usage walks) on the image worker pool
// so gRPC callback threads never wait on a registry or a disk, and maps
// results to gRPC codes. One .cc file per RPC family: image_pull.cc,
// image_list.cc, image_status.cc, image_remove.cc, image_fs_info.cc.
#pragma once

#include <grpcpp/grpcpp.h>

#include "base/worker_pool.h"
#include "cri/reactors.h"
#include "image/image_store.h"
#include "proto/cri_api.grpc.pb.h"
#include "store/store.h"

namespace crid {

class ImageService final : public runtime::v1::ImageService::CallbackService {
 public:
  // Threads for blocking image work (pulls of different images run side by side).
  static constexpr size_t kWorkers = 8;

  // Without an image store (in-process tests of the other services) every RPC
  // answers UNIMPLEMENTED.
  // With `store`, pulls are refused (RESOURCE_EXHAUSTED) when its filesystem
  // is short of space (Store::CheckRoom).
  explicit ImageService(ImageStore* images = nullptr, Store* store = nullptr)
      : images_(images), store_(store), pool_(kWorkers, WorkerPool::kUnbounded) {}

  // image_list.cc
  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* context,
                                       const runtime::v1::ListImagesRequest* request,
                                       runtime::v1::ListImagesResponse* response) override;
  grpc::ServerWriteReactor<runtime::v1::StreamImagesResponse>* StreamImages(
      grpc::CallbackServerContext* context,
      const runtime::v1::StreamImagesRequest* request) override;
  // image_status.cc
  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* context,
                                        const runtime::v1::ImageStatusRequest* request,
                                        runtime::v1::ImageStatusResponse* response) override;
  // image_pull.cc
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* context,
                                      const runtime::v1::PullImageRequest* request,
                                      runtime::v1::PullImageResponse* response) override;
  // image_remove.cc
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* context,
                                        const runtime::v1::RemoveImageRequest* request,
                                        runtime::v1::RemoveImageResponse* response) override;
  // image_fs_info.cc
  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* context,
                                        const runtime::v1::ImageFsInfoRequest* request,
                                        runtime::v1::ImageFsInfoResponse* response) override;

 private:
  ImageStore* const images_;
  Store* const store_;
  // Last member: its destructor finishes running work before the rest goes.
  // Its queue has no bound: pulls wait for a thread rather than being refused.
  WorkerPool pool_;
};

// The CRI view of a stored image.
void ToCriImage(const image::ImageRecord& record, runtime::v1::Image* out);

}  // namespace crid
