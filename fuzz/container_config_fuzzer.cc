// Fuzz target: CreateContainer's config as kubelet sends it (protobuf wire
// format), through the checks made before anything is created.
#include <cstddef>
#include <cstdint>

#include "cri/container_validate.h"
#include "proto/cri_api.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  runtime::v1::ContainerConfig config;
  if (!config.ParseFromArray(data, static_cast<int>(size))) {
    return 0;
  }
  crid::ValidateContainerConfig(config).IgnoreError();
  return 0;
}
