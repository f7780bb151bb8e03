// A strict HTTP/1.1 request-head parser for the streaming server: request line
// and headers only (the server never reads a body), with size limits, and the
// helpers to answer with a plain status or a protocol switch.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid::streaming {

struct HttpRequest {
  std::string method;
  // The path without the query, and the raw query (after '?').
  std::string path;
  std::string query;
  std::string version;
  // Names lowercased, values trimmed, in order.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of `name` (lowercase), or "".
  std::string Header(absl::string_view name) const;
  // Every value of `name`, comma-separated lists split and trimmed.
  std::vector<std::string> HeaderList(absl::string_view name) const;
  // True when the comma-separated `name` header holds `token` (no case).
  bool HeaderHasToken(absl::string_view name, absl::string_view token) const;
  // Values of query parameter `key`, percent-decoded.
  std::vector<std::string> QueryValues(absl::string_view key) const;
};

inline constexpr size_t kMaxRequestHeadBytes = 16 * 1024;
inline constexpr size_t kMaxHeaderCount = 100;

// Parses the head at the start of `buffer`. Returns std::nullopt while the blank
// line ending the head has not arrived (and the limit is not reached yet);
// INVALID_ARGUMENT for malformed heads, RESOURCE_EXHAUSTED past the limits.
// On success `*head_size` is the number of bytes the head used.
absl::StatusOr<std::optional<HttpRequest>> ParseHttpRequest(absl::string_view buffer,
                                                            size_t* head_size);

// A complete response with a text body and "Connection: close".
std::string HttpResponse(
    int code, absl::string_view body,
    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

const char* HttpReason(int code);

}  // namespace crid::streaming
