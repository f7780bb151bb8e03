// ImageFsInfo: bytes and inodes used under the image directory. kubelet calls
// it at start to validate the image service, then for image GC and eviction.
#include "absl/time/clock.h"
#include "cri/image_service.h"

namespace crid {

grpc::ServerUnaryReactor* ImageService::ImageFsInfo(grpc::CallbackServerContext* context,
                                                    const runtime::v1::ImageFsInfoRequest* request,
                                                    runtime::v1::ImageFsInfoResponse* response) {
  if (images_ == nullptr) {
    return FinishUnary(context, UnimplementedRpc("ImageService", "ImageFsInfo"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = pool_.Submit([this, reactor, response] {
    absl::StatusOr<DiskUsage> usage = images_->Usage();
    if (!usage.ok()) {
      reactor->Finish(ToGrpcStatus(usage.status()));
      return;
    }
    runtime::v1::FilesystemUsage fs;
    fs.set_timestamp(absl::GetCurrentTimeNanos());
    fs.mutable_fs_id()->set_mountpoint(images_->dir());
    fs.mutable_used_bytes()->set_value(usage->bytes);
    fs.mutable_inodes_used()->set_value(usage->inodes);
    *response->add_image_filesystems() = fs;
    // Container layers live on the same filesystem: the same entry, so kubelet
    // sees no separate container filesystem.
    *response->add_container_filesystems() = fs;
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) {
    // Only while crid shuts down: the queue has no bound.
    reactor->Finish(ToGrpcStatus(absl::UnavailableError("crid is shutting down")));
  }
  return reactor;
}

}  // namespace crid
