#include "image/http_parser.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"

namespace crid {

namespace {

absl::Status Malformed(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("malformed answer: ", what));
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::StrContains(absl::string_view("!#$%&'*+-.^_`|~"), c);
}

// Field values and reason phrases: visible characters, spaces, tabs and
// obs-text; no other control characters.
bool IsFieldText(absl::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// Content-Length: digits only, within int64_t.
bool ParseLength(absl::string_view s, int64_t* out) {
  if (s.empty()) {
    return false;
  }
  int64_t value = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
    if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) {
      return false;
    }
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

}  // namespace

HttpResponseParser::HttpResponseParser(bool head_request, HttpResponseHandler* handler)
    : head_request_(head_request), handler_(handler) {}

absl::Status HttpResponseParser::TakeLine(absl::string_view* data, size_t limit, const char* what,
                                          bool* complete, absl::string_view* line) {
  size_t newline = data->find('\n');
  size_t take = newline == absl::string_view::npos ? data->size() : newline + 1;
  if (line_.size() + take > limit) {
    return Malformed(what);
  }
  line_.append(data->data(), take);
  data->remove_prefix(take);
  *complete = newline != absl::string_view::npos;
  if (!*complete) {
    return absl::OkStatus();
  }
  absl::string_view l = line_;
  l.remove_suffix(1);
  absl::ConsumeSuffix(&l, "\r");
  if (l.find_first_of(absl::string_view("\r\0", 2)) != absl::string_view::npos) {
    return Malformed("a line holds a stray CR or NUL");
  }
  *line = l;
  return absl::OkStatus();
}

absl::Status HttpResponseParser::Feed(absl::string_view data) {
  received_ += data.size();
  while (!data.empty() && state_ != State::kDone) {
    switch (state_) {
      case State::kStatusLine:
      case State::kHeaders:
      case State::kTrailers: {
        bool complete = false;
        absl::string_view line;
        CRID_RETURN_IF_ERROR(TakeLine(&data, kMaxHeadBytes - head_bytes_,
                                      "head or trailers larger than 64 KiB", &complete, &line));
        if (!complete) {
          break;
        }
        head_bytes_ += line_.size();
        absl::Status st;
        if (state_ == State::kStatusLine) {
          st = OnStatusLine(line);
        } else if (line.empty() && state_ == State::kTrailers) {
          state_ = State::kDone;
        } else if (line.empty()) {
          st = OnHeadEnd();
        } else {
          st = OnHeaderLine(line, state_ == State::kTrailers);
        }
        line_.clear();
        CRID_RETURN_IF_ERROR(st);
        break;
      }
      case State::kChunkSize: {
        bool complete = false;
        absl::string_view line;
        CRID_RETURN_IF_ERROR(
            TakeLine(&data, kMaxChunkLine, "chunk-size line too long", &complete, &line));
        if (complete) {
          absl::Status st = OnChunkSize(line);
          line_.clear();
          CRID_RETURN_IF_ERROR(st);
        }
        break;
      }
      case State::kChunkEnd: {
        bool complete = false;
        absl::string_view line;
        CRID_RETURN_IF_ERROR(
            TakeLine(&data, 2, "chunk data not followed by a line end", &complete, &line));
        if (complete) {
          bool empty = line.empty();
          line_.clear();
          if (!empty) {
            return Malformed("chunk data not followed by a line end");
          }
          state_ = State::kChunkSize;
        }
        break;
      }
      case State::kBody:
      case State::kChunkData:
        CRID_RETURN_IF_ERROR(Deliver(&data, remaining_));
        if (remaining_ == 0) {
          state_ = state_ == State::kBody ? State::kDone : State::kChunkEnd;
        }
        break;
      case State::kUntilClose:
        CRID_RETURN_IF_ERROR(Deliver(&data, data.size()));
        break;
      case State::kDone:
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status HttpResponseParser::Deliver(absl::string_view* data, uint64_t max) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(data->size(), max));
  absl::string_view piece = data->substr(0, n);
  data->remove_prefix(n);
  if (state_ != State::kUntilClose) {
    remaining_ -= n;
  }
  body_bytes_ += n;
  return handler_->OnData(piece);
}

absl::Status HttpResponseParser::OnStatusLine(absl::string_view line) {
  // HTTP-version SP 3DIGIT [SP reason-phrase]
  absl::string_view rest = line;
  if (!absl::ConsumePrefix(&rest, "HTTP/1.1 ") && !absl::ConsumePrefix(&rest, "HTTP/1.0 ")) {
    return Malformed(absl::StrCat("not an HTTP/1.x status line: \"",
                                  absl::CHexEscape(line.substr(0, 40)), "\""));
  }
  if (rest.size() < 3 || !std::all_of(rest.begin(), rest.begin() + 3, [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return Malformed("status line without a 3-digit status code");
  }
  int status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  rest.remove_prefix(3);
  if (status < 100 || status > 599) {
    return Malformed(absl::StrCat("status code ", status));
  }
  if (!rest.empty() && (rest[0] != ' ' || !IsFieldText(rest))) {
    return Malformed("status line with a bad reason phrase");
  }
  if (status == 101) {
    return Malformed("101 Switching Protocols, which was not asked for");
  }
  status_ = status;
  content_length_ = -1;
  transfer_codings_.clear();
  location_.clear();
  state_ = State::kHeaders;
  handler_->OnHeader(line);
  return absl::OkStatus();
}

absl::Status HttpResponseParser::OnHeaderLine(absl::string_view line, bool trailer) {
  if (++header_lines_ > kMaxHeaderLines) {
    return Malformed(absl::StrCat("more than ", kMaxHeaderLines, " header lines"));
  }
  if (line[0] == ' ' || line[0] == '\t') {
    return Malformed("obsolete header line folding");
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      !std::all_of(line.begin(), line.begin() + colon, IsTokenChar)) {
    return Malformed(
        absl::StrCat("bad header line \"", absl::CHexEscape(line.substr(0, 40)), "\""));
  }
  absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (!IsFieldText(value)) {
    return Malformed("control characters in a header value");
  }
  if (trailer) {
    return absl::OkStatus();  // trailers are not merged into the head
  }
  std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  if (name == "content-length") {
    int64_t length = 0;
    if (!ParseLength(value, &length)) {
      return Malformed(
          absl::StrCat("Content-Length \"", absl::CHexEscape(value.substr(0, 40)), "\""));
    }
    if (content_length_ >= 0 && content_length_ != length) {
      return Malformed(
          absl::StrCat("conflicting Content-Length ", content_length_, " and ", length));
    }
    content_length_ = length;
  } else if (name == "transfer-encoding") {
    for (absl::string_view coding : absl::StrSplit(value, ',')) {
      coding = absl::StripAsciiWhitespace(coding);
      if (!coding.empty()) {
        transfer_codings_.push_back(absl::AsciiStrToLower(coding));
      }
    }
  } else if (name == "location") {
    location_ = std::string(value);
  }
  handler_->OnHeader(line);
  return absl::OkStatus();
}

absl::Status HttpResponseParser::OnHeadEnd() {
  if (status_ < 200) {
    state_ = State::kStatusLine;  // an interim answer; the real one follows
    return absl::OkStatus();
  }
  head_done_ = true;
  bool chunked = false;
  if (!transfer_codings_.empty()) {
    // Nothing but chunked is asked for (no TE header): any other coding
    // would hand the caller bytes it cannot read.
    if (transfer_codings_.size() != 1 || transfer_codings_[0] != "chunked") {
      return Malformed(absl::StrCat("unsupported Transfer-Encoding \"",
                                    absl::CHexEscape(transfer_codings_.back().substr(0, 40)),
                                    "\""));
    }
    chunked = true;  // and any Content-Length is ignored (RFC 9112 6.3)
  }
  if (head_request_ || status_ == 204 || status_ == 304) {
    state_ = State::kDone;
  } else if (chunked) {
    state_ = State::kChunkSize;
  } else if (content_length_ >= 0) {
    remaining_ = static_cast<uint64_t>(content_length_);
    state_ = remaining_ == 0 ? State::kDone : State::kBody;
  } else {
    state_ = State::kUntilClose;
  }
  return absl::OkStatus();
}

absl::Status HttpResponseParser::OnChunkSize(absl::string_view line) {
  // chunk-size [BWS ";" chunk-ext]
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size() && HexValue(line[i]) >= 0; ++i) {
    if (size > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) >> 4)) {
      return Malformed("chunk size overflows");
    }
    size = size * 16 + static_cast<uint64_t>(HexValue(line[i]));
  }
  if (i == 0) {
    return Malformed(
        absl::StrCat("bad chunk-size line \"", absl::CHexEscape(line.substr(0, 40)), "\""));
  }
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(line.substr(i));
  if (!rest.empty() && (rest[0] != ';' || !IsFieldText(rest))) {
    return Malformed(
        absl::StrCat("bad chunk-size line \"", absl::CHexEscape(line.substr(0, 40)), "\""));
  }
  if (size == 0) {
    state_ = State::kTrailers;
  } else {
    remaining_ = size;
    state_ = State::kChunkData;
  }
  return absl::OkStatus();
}

absl::Status HttpResponseParser::Finish() {
  switch (state_) {
    case State::kDone:
      return absl::OkStatus();
    case State::kUntilClose:
      state_ = State::kDone;
      return absl::OkStatus();
    case State::kStatusLine:
      if (received_ == 0) {
        return absl::UnavailableError("connection closed without an answer");
      }
      [[fallthrough]];
    case State::kHeaders:
      return absl::UnavailableError("connection closed in the middle of the answer's head");
    case State::kBody:
      return absl::UnavailableError(absl::StrCat("connection closed after ", body_bytes_, " of ",
                                                 content_length_, " body bytes"));
    default:
      return absl::UnavailableError(absl::StrCat(
          "connection closed in the middle of the chunked body, after ", body_bytes_, " bytes"));
  }
}

}  // namespace crid
