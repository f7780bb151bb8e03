// A TCP listener on 127.0.0.1 for tests that serve HTTP or TLS in-process.
#pragma once

#include <cstdint>

namespace crid {

// A socket listening on 127.0.0.1 at a port the kernel picked, written to
// *port; -1 when that fails (errno says why).
int ListenOnLoopback(uint16_t* port);

}  // namespace crid
