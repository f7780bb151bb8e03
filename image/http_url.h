// The URLs crid's HTTP client speaks to (http and https only): parsing,
// redirect targets resolved against the current URL, proxy URLs and no_proxy
// lists as libcurl reads them from the environment, and percent-encoding.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid {

struct HttpUrl {
  std::string scheme;    // "http" or "https"
  std::string host;      // lower-case name or IP address; IPv6 without brackets
  uint16_t port = 0;     // the scheme's default when the URL names none
  std::string target;    // path and query, "/" at least; no fragment
  std::string userinfo;  // "user:password" as written (percent-encoded), "" when none

  bool https() const { return scheme == "https"; }
  // For the Host header and absolute URIs: "host", "[::1]:8443" (the port only
  // when it is not the scheme's default).
  std::string Authority() const;
  // "host:port", IPv6 in brackets, port always: for CONNECT and messages.
  std::string HostPort() const;
  // "scheme://authority/target", without the userinfo.
  std::string String() const;
  // Same scheme, host and port: where credentials may go.
  bool SameOrigin(const HttpUrl& other) const;
};

// "http[s]://[userinfo@]host[:port][/path][?query][#fragment]". A scheme other
// than http and https is FAILED_PRECONDITION; anything malformed is
// INVALID_ARGUMENT. Spaces and bytes past ASCII in the path and query are
// percent-encoded; other control characters are refused.
absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url);

// A Location header (absolute, "//host/...", "/path", "path", "?query")
// resolved against `base` as RFC 3986 section 5.2 says.
absl::StatusOr<HttpUrl> ResolveLocation(const HttpUrl& base, absl::string_view location);

// A proxy as the *_proxy variables give it: "host[:port]" or
// "http://[user:password@]host[:port][/]"; the port defaults to 1080, as in
// libcurl. Other schemes (https://, socks5://) are FAILED_PRECONDITION.
absl::StatusOr<HttpUrl> ParseProxyUrl(absl::string_view proxy);

// Whether `host` (a name or IP address, no port, no brackets) is exempt from
// proxying by `no_proxy`: entries separated by commas or spaces; "*" exempts
// everything; a name matches itself and its subdomains (a leading dot is
// ignored); an IP address matches an address entry, "10.0.0.0/8" style
// prefixes included.
bool NoProxyMatches(absl::string_view no_proxy, absl::string_view host);

// RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~) kept, every other byte
// as %XX in upper case.
std::string PercentEncode(absl::string_view s);

// %XX sequences decoded; a malformed one is kept as it is.
std::string PercentDecode(absl::string_view s);

}  // namespace crid
