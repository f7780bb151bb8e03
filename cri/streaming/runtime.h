// The StreamingRuntime interface (base/stream_io.h) and how a runtime reaches
// a port inside a pod's network namespace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/stream_io.h"
#include "base/unique_fd.h"

namespace crid::streaming {

// Connects to 127.0.0.1:`port`, then [::1]:`port`, from inside the network
// namespace at `netns_path` ("" = crid's own). The socket is created on a
// short-lived thread that joined the namespace; it stays bound to that
// namespace after the thread is gone.
absl::StatusOr<UniqueFd> DialLoopbackInNetns(const std::string& netns_path, int32_t port,
                                             absl::Duration timeout = absl::Seconds(10));

}  // namespace crid::streaming
