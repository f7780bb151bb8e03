// Fuzz target: a registry's answer for a manifest (index, manifest list, image
// manifest) or an image config, through every parser that reads one.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  for (absl::string_view content_type :
       {absl::string_view(), absl::string_view(crid::kMediaTypeOciIndex),
        absl::string_view(crid::kMediaTypeDockerManifest)}) {
    crid::ClassifyManifest(content_type, body).IgnoreError();
  }
  if (auto entries = crid::ParseIndex(body); entries.ok()) {
    crid::SelectPlatform(*entries, crid::HostPlatform()).IgnoreError();
    crid::SelectPlatform(*entries, crid::Platform{"linux", "arm", "v7"}).IgnoreError();
    crid::SelectPlatform(*entries, crid::Platform{"linux", "arm64", ""}).IgnoreError();
  }
  crid::ParseImageManifest(body).IgnoreError();
  if (auto config = crid::ParseImageConfig(body); config.ok()) {
    crid::ChainIds(config->diff_ids);
  }
  return 0;
}
