// A plain-socket HTTP/1.0 GET against 127.0.0.1 for tests of crid's HTTP
// endpoints, and a free loopback port to give them.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crid {

// The body of GET `path` on 127.0.0.1:`port`; an error unless the answer is 200.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path,
                                    absl::Duration timeout = absl::Seconds(10));

// A TCP port on 127.0.0.1 nothing listened on a moment ago.
int FreeLoopbackPort();

}  // namespace crid
