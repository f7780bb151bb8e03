#include "oci/capability_names.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "base/fs.h"

namespace crid {

int KernelLastCapability() {
  static const int last = [] {
    int value = 0;
    absl::StatusOr<std::string> text = ReadFile("/proc/sys/kernel/cap_last_cap");
    if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value) || value < 0) {
      value = static_cast<int>(kCapabilityNames.size()) - 1;
    }
    return value;
  }();
  return last;
}

}  // namespace crid
