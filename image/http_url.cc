#include "image/http_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errors.h"

namespace crid {

namespace {

constexpr char kHexDigits[] = "0123456789ABCDEF";

uint16_t DefaultPort(absl::string_view scheme) { return scheme == "https" ? 443 : 80; }

bool IsIpv6(absl::string_view host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(host).c_str(), &addr) == 1;
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// "host[:port]" or "[v6][:port]" into `url`; `*has_port` says whether a port
// was written.
absl::Status ParseAuthority(absl::string_view authority, HttpUrl* url, bool* has_port) {
  absl::string_view host;
  absl::string_view port;
  if (absl::ConsumePrefix(&authority, "[")) {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("unclosed '[' in the host");
    }
    host = authority.substr(0, close);
    absl::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError("text after the IPv6 address");
    }
    port = rest;
    *has_port = !rest.empty();
    url->host = absl::AsciiStrToLower(host);
    if (!IsIpv6(url->host)) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 address [", url->host, "]"));
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    *has_port = colon != absl::string_view::npos;
    port = *has_port ? authority.substr(colon + 1) : "";
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostChar)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad host name \"", absl::CHexEscape(host), "\""));
    }
    url->host = absl::AsciiStrToLower(host);
  }
  if (port.empty()) {
    *has_port = false;
    return absl::OkStatus();
  }
  uint32_t value = 0;
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &value) || value == 0 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port \"", absl::CHexEscape(port), "\""));
  }
  url->port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

// The path and query as sent: spaces and non-ASCII bytes percent-encoded.
absl::StatusOr<std::string> NormalizeTarget(absl::string_view target) {
  std::string out;
  if (target.empty() || target[0] == '?') {
    out = "/";
  }
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u == ' ' || u >= 0x80) {
      out += '%';
      out += kHexDigits[u >> 4];
      out += kHexDigits[u & 15];
    } else if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError("control character in the path");
    } else {
      out += c;
    }
  }
  return out;
}

// Splits "scheme://rest"; false when there is no scheme.
bool SplitScheme(absl::string_view url, std::string* scheme, absl::string_view* rest) {
  size_t sep = url.find("://");
  if (sep == absl::string_view::npos || sep == 0) {
    return false;
  }
  absl::string_view s = url.substr(0, sep);
  if (!absl::ascii_isalpha(static_cast<unsigned char>(s[0])) ||
      !std::all_of(s.begin(), s.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' ||
               c == '.';
      })) {
    return false;
  }
  *scheme = absl::AsciiStrToLower(s);
  *rest = url.substr(sep + 3);
  return true;
}

// Parses what follows "scheme://"; `*has_port` as ParseAuthority.
absl::Status ParseAfterScheme(absl::string_view rest, HttpUrl* url, bool* has_port) {
  rest = rest.substr(0, rest.find('#'));
  size_t end = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, end);
  absl::string_view target = end == absl::string_view::npos ? "" : rest.substr(end);
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    url->userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
    if (!std::all_of(url->userinfo.begin(), url->userinfo.end(), [](char c) {
          auto u = static_cast<unsigned char>(c);
          return u > 0x20 && u < 0x7f;
        })) {
      return absl::InvalidArgumentError("bad characters in the user information");
    }
  }
  url->port = DefaultPort(url->scheme);
  CRID_RETURN_IF_ERROR(ParseAuthority(authority, url, has_port));
  CRID_ASSIGN_OR_RETURN(url->target, NormalizeTarget(target));
  return absl::OkStatus();
}

// RFC 3986 5.2.4 on an absolute path.
std::string RemoveDotSegments(absl::string_view path) {
  std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  std::vector<absl::string_view> out;
  for (size_t i = 0; i < segments.size(); ++i) {
    absl::string_view segment = segments[i];
    bool last = i + 1 == segments.size();
    if (segment == "." || segment == "..") {
      if (segment == ".." && out.size() > 1) {
        out.pop_back();
      }
      if (last) {
        out.emplace_back("");
      }
      continue;
    }
    out.push_back(segment);
  }
  std::string joined = absl::StrJoin(out, "/");
  return absl::StartsWith(joined, "/") ? joined : absl::StrCat("/", joined);
}

// "a.b.c.d[/bits]" or "v6[/bits]" as a network: address bytes and prefix length.
bool ParseNetwork(absl::string_view entry, std::string* bytes, int* bits) {
  absl::string_view address = entry.substr(0, entry.find('/'));
  absl::ConsumePrefix(&address, "[");
  absl::ConsumeSuffix(&address, "]");
  unsigned char buf[sizeof(in6_addr)];
  std::string text(address);
  int max_bits = 0;
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    max_bits = 32;
  } else if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    max_bits = 128;
  } else {
    return false;
  }
  *bytes = std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(max_bits / 8));
  *bits = max_bits;
  if (size_t slash = entry.find('/'); slash != absl::string_view::npos) {
    if (!absl::SimpleAtoi(entry.substr(slash + 1), bits) || *bits < 0 || *bits > max_bits) {
      return false;
    }
  }
  return true;
}

bool SamePrefix(const std::string& a, const std::string& b, int bits) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    auto mask = static_cast<unsigned char>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((static_cast<unsigned char>(a[i]) & mask) != (static_cast<unsigned char>(b[i]) & mask)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string HttpUrl::Authority() const {
  std::string out = absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host;
  if (port != DefaultPort(scheme)) {
    absl::StrAppend(&out, ":", port);
  }
  return out;
}

std::string HttpUrl::HostPort() const {
  return absl::StrCat(absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host, ":",
                      port);
}

std::string HttpUrl::String() const { return absl::StrCat(scheme, "://", Authority(), target); }

bool HttpUrl::SameOrigin(const HttpUrl& other) const {
  return scheme == other.scheme && host == other.host && port == other.port;
}

absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url) {
  HttpUrl parsed;
  absl::string_view rest;
  if (!SplitScheme(url, &parsed.scheme, &rest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL \"", absl::CHexEscape(url.substr(0, 200)), "\" has no scheme"));
  }
  if (parsed.scheme != "http" && parsed.scheme != "https") {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported protocol \"", absl::CHexEscape(parsed.scheme), "\""));
  }
  bool has_port = false;
  absl::Status st = ParseAfterScheme(rest, &parsed, &has_port);
  if (!st.ok()) {
    return Annotate(st, absl::StrCat("URL \"", absl::CHexEscape(url.substr(0, 200)), "\""));
  }
  return parsed;
}

absl::StatusOr<HttpUrl> ResolveLocation(const HttpUrl& base, absl::string_view location) {
  std::string scheme;
  absl::string_view rest;
  if (SplitScheme(location, &scheme, &rest)) {
    return ParseHttpUrl(location);
  }
  std::string prefix = absl::StrCat(base.scheme, "://");
  if (absl::StartsWith(location, "//")) {
    return ParseHttpUrl(absl::StrCat(prefix, location.substr(2)));
  }
  if (!base.userinfo.empty()) {
    absl::StrAppend(&prefix, base.userinfo, "@");
  }
  absl::StrAppend(&prefix, base.Authority());
  location = location.substr(0, location.find('#'));
  absl::string_view base_path = absl::string_view(base.target).substr(0, base.target.find('?'));
  std::string target;
  if (location.empty()) {
    target = base.target;
  } else if (location[0] == '?') {
    target = absl::StrCat(base_path, location);
  } else {
    absl::string_view path = location.substr(0, location.find('?'));
    absl::string_view query = location.substr(path.size());
    std::string merged;
    if (absl::StartsWith(path, "/")) {
      merged = std::string(path);
    } else {
      merged = absl::StrCat(base_path.substr(0, base_path.rfind('/') + 1), path);
    }
    target = absl::StrCat(RemoveDotSegments(merged), query);
  }
  return ParseHttpUrl(absl::StrCat(prefix, target));
}

absl::StatusOr<HttpUrl> ParseProxyUrl(absl::string_view proxy) {
  HttpUrl url;
  absl::string_view rest = proxy;
  if (SplitScheme(proxy, &url.scheme, &rest) && url.scheme != "http") {
    return absl::FailedPreconditionError(absl::StrCat("proxy \"",
                                                      absl::CHexEscape(proxy.substr(0, 200)),
                                                      "\": only http:// proxies are supported"));
  }
  url.scheme = "http";
  bool has_port = false;
  absl::Status st = ParseAfterScheme(rest, &url, &has_port);
  if (!st.ok()) {
    return Annotate(st, absl::StrCat("proxy \"", absl::CHexEscape(proxy.substr(0, 200)), "\""));
  }
  if (!has_port) {
    url.port = 1080;
  }
  return url;
}

bool NoProxyMatches(absl::string_view no_proxy, absl::string_view host) {
  std::string name = absl::AsciiStrToLower(absl::StripSuffix(host, "."));
  std::string host_bytes;
  int host_bits = 0;
  bool is_ip = ParseNetwork(name, &host_bytes, &host_bits) && !absl::StrContains(name, '/');
  for (absl::string_view entry : absl::StrSplit(no_proxy, absl::ByAnyChar(", \t"))) {
    if (entry.empty()) {
      continue;
    }
    if (entry == "*") {
      return true;
    }
    if (is_ip) {
      std::string bytes;
      int bits = 0;
      if (ParseNetwork(entry, &bytes, &bits) && SamePrefix(bytes, host_bytes, bits)) {
        return true;
      }
      continue;
    }
    absl::ConsumePrefix(&entry, ".");
    absl::ConsumeSuffix(&entry, ".");
    std::string suffix = absl::AsciiStrToLower(entry);
    if (!suffix.empty() && (name == suffix || absl::EndsWith(name, absl::StrCat(".", suffix)))) {
      return true;
    }
  }
  return false;
}

std::string PercentEncode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHexDigits[u >> 4];
      out += kHexDigits[u & 15];
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view s) {
  auto hex = [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c))
               ? (absl::ascii_isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10)
               : -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace crid
