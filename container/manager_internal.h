// Helpers shared by the files of ContainerManager (manager*.cc); nothing else
// includes this header.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace crid::container::manager_internal {

// Now, in the unit the records keep times in.
inline int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// The ID as the logs show it.
inline std::string ShortId(const std::string& id) { return id.substr(0, 12); }

}  // namespace crid::container::manager_internal
