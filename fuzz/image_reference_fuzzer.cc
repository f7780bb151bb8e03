// Fuzz target: image names as CRI requests and kubelet give them, digests, and
// a registry's WWW-Authenticate headers (one per line).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "image/digest.h"
#include "image/reference.h"
#include "image/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<crid::Reference> ref = crid::ParseReference(input); ref.ok()) {
    ref->String();
    ref->Name();
    ref->ManifestRef();
    ref->TaggedName();
  }
  crid::ValidateDigest(input).IgnoreError();
  std::vector<std::string> headers = absl::StrSplit(input, '\n');
  for (const std::string& header : headers) {
    crid::ParseAuthChallenge(header);
  }
  crid::StrongestChallenge(headers);
  return 0;
}
