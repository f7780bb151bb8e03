// Starts the CRI services in-process on a temporary unix socket, with a fresh
// store, and gives tests generated stubs that talk to it over that socket.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "base/temp_dir.h"
#include "config/config.h"
#include "cri/image_service.h"
#include "cri/runtime_service.h"
#include "cri/server.h"
#include "proto/cri_api.grpc.pb.h"
#include "store/store.h"

namespace crid {

class TestCriServer {
 public:
  explicit TestCriServer(CgroupDriver driver = CgroupDriver::kCgroupfs);
  ~TestCriServer();

  runtime::v1::RuntimeService::Stub& runtime() { return *runtime_stub_; }
  runtime::v1::ImageService::Stub& image() { return *image_stub_; }
  const std::string& socket_path() const { return socket_path_; }
  Store& store() { return *store_; }

  // Stops serving and starts again on the same root (a crid restart).
  void Restart();

 private:
  void Start();

  TempDir tmp_;
  CgroupDriver driver_;
  std::string socket_path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RuntimeState> state_;
  std::unique_ptr<RuntimeService> runtime_service_;
  std::unique_ptr<ImageService> image_service_;
  std::unique_ptr<CriServer> server_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_stub_;
  std::unique_ptr<runtime::v1::ImageService::Stub> image_stub_;
};

}  // namespace crid
