// Network address parsing shared by the runtime config and pod networking.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crid {

// Accepts "a.b.c.d/n" (n <= 32) and IPv6 "x::y/n" (n <= 128); the error says why not.
absl::Status ValidateCidr(absl::string_view cidr);

}  // namespace crid
