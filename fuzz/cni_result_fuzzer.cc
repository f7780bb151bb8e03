// Fuzz target: what CNI plugins print (results of every spec version) and the
// network configs read from the CNI config directory.
#include <cstddef>
#include <cstdint>

#include "cni/config.h"
#include "cni/network.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  crid::cni::ParseResult(input).IgnoreError();
  crid::cni::ParseNetworkConfig(input, /*is_list=*/true, "fuzz.conflist").IgnoreError();
  crid::cni::ParseNetworkConfig(input, /*is_list=*/false, "fuzz.conf").IgnoreError();
  crid::cni::CniVersionAtLeast(input, 1, 1, 0);
  return 0;
}
