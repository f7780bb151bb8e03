#include "base/net.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace crid {

absl::Status ValidateCidr(absl::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", cidr, "\" is not a CIDR: missing /prefix"));
  }
  std::string address(cidr.substr(0, slash));
  int prefix = -1;
  if (!absl::SimpleAtoi(cidr.substr(slash + 1), &prefix) || prefix < 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", cidr, "\" has a bad prefix length"));
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) {
    if (prefix > 32) {
      return absl::InvalidArgumentError(absl::StrCat("\"", cidr, "\": IPv4 prefix over 32"));
    }
    return absl::OkStatus();
  }
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) {
    if (prefix > 128) {
      return absl::InvalidArgumentError(absl::StrCat("\"", cidr, "\": IPv6 prefix over 128"));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", cidr, "\": \"", address, "\" is not an IP address"));
}

}  // namespace crid
