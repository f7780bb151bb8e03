#include "image/reference.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "image/digest.h"

namespace crid {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool IsValidComponent(absl::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) {
    return false;
  }
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) {
      ++i;
    }
    absl::string_view sep = c.substr(start, i - start);
    bool dashes = sep.find_first_not_of('-') == absl::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) {
      return false;
    }
  }
  return true;
}

// host[:port], host being DNS labels joined by dots, or [IPv6].
bool IsValidDomain(absl::string_view d) {
  absl::string_view host = d;
  absl::string_view port;
  if (absl::StartsWith(d, "[")) {
    size_t close = d.find(']');
    if (close == absl::string_view::npos || close < 3) {
      return false;
    }
    for (char c : d.substr(1, close - 1)) {
      if (!(absl::ascii_isxdigit(c) || c == ':')) {
        return false;
      }
    }
    absl::string_view rest = d.substr(close + 1);
    if (rest.empty()) {
      return true;
    }
    if (rest[0] != ':') {
      return false;
    }
    port = rest.substr(1);
    host = "";
  } else if (size_t colon = d.rfind(':'); colon != absl::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    if (port.empty()) {
      return false;
    }
  }
  for (char c : port) {
    if (!absl::ascii_isdigit(c)) {
      return false;
    }
  }
  if (!absl::StartsWith(d, "[")) {
    if (host.empty()) {
      return false;
    }
    for (absl::string_view label : absl::StrSplit(host, '.')) {
      if (label.empty() || !absl::ascii_isalnum(label.front()) ||
          !absl::ascii_isalnum(label.back())) {
        return false;
      }
      for (char c : label) {
        if (!absl::ascii_isalnum(c) && c != '-') {
          return false;
        }
      }
    }
  }
  return true;
}

bool IsValidTag(absl::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength) {
    return false;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool word = absl::ascii_isalnum(c) || c == '_';
    if (!(word || (i > 0 && (c == '.' || c == '-')))) {
      return false;
    }
  }
  return true;
}

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid image reference \"", text, "\": ", why));
}

}  // namespace

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) {
    absl::StrAppend(&out, ":", tag);
  }
  if (!digest.empty()) {
    absl::StrAppend(&out, "@", digest);
  }
  return out;
}

bool LooksLikeImageId(absl::string_view text) {
  absl::ConsumePrefix(&text, "sha256:");
  return IsHex64(text);
}

absl::StatusOr<Reference> ParseReference(absl::string_view text) {
  if (text.empty()) {
    return Invalid(text, "empty");
  }
  if (IsHex64(text)) {
    return Invalid(text, "a 64-hex string is an image ID, not a repository name");
  }
  Reference ref;
  absl::string_view rest = text;
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    absl::string_view digest = rest.substr(at + 1);
    if (absl::Status st = ValidateDigest(digest); !st.ok()) {
      return Invalid(text, st.message());
    }
    ref.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' that comes after the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    absl::string_view tag = rest.substr(colon + 1);
    if (!IsValidTag(tag)) {
      return Invalid(text, absl::StrCat("invalid tag \"", tag,
                                        "\" (letters, digits, _ . -, at most 128, not "
                                        "starting with . or -)"));
    }
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) {
    return Invalid(text, "missing repository name");
  }
  // The first component is a registry host when it has a '.' or ':', is
  // "localhost", or has upper-case letters (docker's rule).
  size_t first_slash = rest.find('/');
  absl::string_view remainder = rest;
  ref.domain = kDefaultDomain;
  if (first_slash != absl::string_view::npos) {
    absl::string_view first = rest.substr(0, first_slash);
    if (absl::StrContains(first, '.') || absl::StrContains(first, ':') || first == "localhost" ||
        absl::AsciiStrToLower(first) != first) {
      if (!IsValidDomain(first)) {
        return Invalid(text, absl::StrCat("invalid registry host \"", first, "\""));
      }
      ref.domain = std::string(first);
      remainder = rest.substr(first_slash + 1);
    }
  }
  if (ref.domain == "index.docker.io") {
    ref.domain = kDefaultDomain;
  }
  if (remainder.empty()) {
    return Invalid(text, "missing repository name");
  }
  if (absl::AsciiStrToLower(remainder) != remainder) {
    return Invalid(text, "repository name must be lowercase");
  }
  for (absl::string_view component : absl::StrSplit(remainder, '/')) {
    if (!IsValidComponent(component)) {
      return Invalid(text, absl::StrCat("invalid repository path component \"", component,
                                        "\" (lowercase letters and digits, separated by . _ "
                                        "__ or dashes)"));
    }
  }
  ref.path = std::string(remainder);
  if (ref.domain == kDefaultDomain && !absl::StrContains(ref.path, '/')) {
    ref.path = absl::StrCat("library/", ref.path);
  }
  if (ref.Name().size() > kMaxNameLength) {
    return Invalid(text, "repository name longer than 255 characters");
  }
  // As containerd's ParseDockerRef: with a digest the tag says nothing more.
  if (!ref.digest.empty()) {
    ref.tag.clear();
  }
  if (ref.tag.empty() && ref.digest.empty()) {
    ref.tag = "latest";
  }
  return ref;
}

}  // namespace crid
