#include "cri/streaming/http_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace crid::streaming {

namespace {

bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
    return true;
  }
  return absl::StrContains("!#$%&'*+-.^_`|~", absl::string_view(&c, 1));
}

bool IsToken(absl::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!IsTokenChar(c)) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed HTTP request: ", what));
}

}  // namespace

std::string HttpRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

std::vector<std::string> HttpRequest::HeaderList(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k != name) {
      continue;
    }
    for (absl::string_view part : absl::StrSplit(v, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!part.empty()) {
        out.emplace_back(part);
      }
    }
  }
  return out;
}

bool HttpRequest::HeaderHasToken(absl::string_view name, absl::string_view token) const {
  for (const std::string& v : HeaderList(name)) {
    if (absl::EqualsIgnoreCase(v, token)) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> HttpRequest::QueryValues(absl::string_view key) const {
  std::vector<std::string> out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (PercentDecode(kv.first) == key) {
      out.push_back(PercentDecode(kv.second));
    }
  }
  return out;
}

absl::StatusOr<std::optional<HttpRequest>> ParseHttpRequest(absl::string_view buffer,
                                                            size_t* head_size) {
  size_t end = buffer.find("\r\n\r\n");
  if (end == absl::string_view::npos) {
    if (buffer.size() >= kMaxRequestHeadBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("request head larger than ", kMaxRequestHeadBytes, " bytes"));
    }
    return std::nullopt;
  }
  if (end + 4 > kMaxRequestHeadBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request head larger than ", kMaxRequestHeadBytes, " bytes"));
  }
  absl::string_view head = buffer.substr(0, end);
  for (char c : head) {
    // Bare CR/LF are checked below; other control characters never belong in a head.
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\n' && c != '\t') ||
        c == 0x7f) {
      return Malformed("control character in the head");
    }
  }
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  HttpRequest req;
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3) {
    return Malformed("request line is not METHOD TARGET VERSION");
  }
  if (!IsToken(parts[0])) {
    return Malformed("bad method");
  }
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
    return Malformed("unsupported HTTP version");
  }
  absl::string_view target = parts[1];
  if (target.empty() || target[0] != '/') {
    return Malformed("request target is not an absolute path");
  }
  req.method = std::string(parts[0]);
  req.version = std::string(parts[2]);
  size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != absl::string_view::npos) {
    req.query = std::string(target.substr(q + 1));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    if (absl::StrContains(line, "\n") || absl::StrContains(line, "\r")) {
      return Malformed("bare CR or LF in a header");
    }
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      return Malformed("obsolete header line folding");
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Malformed("bad header line");
    }
    if (req.headers.size() >= kMaxHeaderCount) {
      return absl::ResourceExhaustedError(absl::StrCat("more than ", kMaxHeaderCount, " headers"));
    }
    req.headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                             std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  *head_size = end + 4;
  return std::make_optional(std::move(req));
}

const char* HttpReason(int code) {
  switch (code) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Request Entity Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string HttpResponse(int code, absl::string_view body,
                         const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  std::string out = absl::StrCat("HTTP/1.1 ", code, " ", HttpReason(code), "\r\n");
  for (const auto& [k, v] : extra_headers) {
    absl::StrAppend(&out, k, ": ", v, "\r\n");
  }
  std::string text = absl::StrCat(body, "\n");
  absl::StrAppend(&out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ", text.size(),
                  "\r\nConnection: close\r\n\r\n", text);
  return out;
}

}  // namespace crid::streaming
