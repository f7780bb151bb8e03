#include "cri/streaming/spdy_frame.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/streaming/spdy_dictionary.h"

namespace crid::streaming::spdy {

namespace {

constexpr uint32_t kStreamIdMask = 0x7fffffff;
// More pairs than any Kubernetes client sends; bounds the work per block.
constexpr uint32_t kMaxHeaderPairs = 1024;

uint32_t Get32(absl::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void Put32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

absl::Status FrameError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("SPDY: ", what));
}

}  // namespace

absl::StatusOr<std::optional<std::pair<RawFrame, size_t>>> ParseFrame(absl::string_view buffer,
                                                                      size_t max_payload,
                                                                      size_t max_control_payload) {
  if (buffer.size() < kFrameHeaderSize) {
    return std::nullopt;
  }
  RawFrame frame;
  uint32_t first = Get32(buffer, 0);
  uint32_t second = Get32(buffer, 4);
  frame.control = (first & 0x80000000u) != 0;
  if (frame.control) {
    frame.version = static_cast<uint16_t>((first >> 16) & 0x7fff);
    frame.type = static_cast<uint16_t>(first & 0xffff);
    if (frame.version != kVersion) {
      return FrameError(absl::StrCat("unsupported version ", frame.version));
    }
  } else {
    frame.stream_id = first & kStreamIdMask;
    if (frame.stream_id == 0) {
      return FrameError("data frame on stream 0");
    }
  }
  frame.flags = static_cast<uint8_t>(second >> 24);
  size_t length = second & 0xffffff;
  if (frame.control) {
    max_payload = max_control_payload;
  }
  if (length > max_payload) {
    return FrameError(
        absl::StrCat("frame of ", length, " bytes exceeds the limit of ", max_payload));
  }
  if (buffer.size() < kFrameHeaderSize + length) {
    return std::nullopt;
  }
  frame.payload = buffer.substr(kFrameHeaderSize, length);
  return std::make_optional(std::make_pair(frame, kFrameHeaderSize + length));
}

std::string HeaderValue(const HeaderBlock& headers, absl::string_view name) {
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, name)) {
      return v.substr(0, v.find('\0'));
    }
  }
  return "";
}

std::string SerializeHeaderBlock(const HeaderBlock& headers) {
  std::string out;
  Put32(&out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    Put32(&out, static_cast<uint32_t>(name.size()));
    out += absl::AsciiStrToLower(name);
    Put32(&out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

absl::StatusOr<HeaderBlock> ParseHeaderBlock(absl::string_view block) {
  if (block.size() < 4) {
    return FrameError("header block shorter than its count");
  }
  uint32_t count = Get32(block, 0);
  if (count > kMaxHeaderPairs) {
    return FrameError(absl::StrCat("header block with ", count, " pairs"));
  }
  size_t at = 4;
  auto take = [&](std::string* out) -> bool {
    if (block.size() - at < 4) {
      return false;
    }
    uint32_t len = Get32(block, at);
    at += 4;
    if (block.size() - at < len) {
      return false;
    }
    *out = std::string(block.substr(at, len));
    at += len;
    return true;
  };
  HeaderBlock headers;
  headers.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string name, value;
    if (!take(&name) || !take(&value)) {
      return FrameError("header block truncated");
    }
    if (name.empty()) {
      return FrameError("empty header name");
    }
    for (const auto& [other, unused] : headers) {
      if (absl::EqualsIgnoreCase(other, name)) {
        return FrameError(absl::StrCat("header \"", name, "\" repeated"));
      }
    }
    headers.emplace_back(absl::AsciiStrToLower(name), std::move(value));
  }
  if (at != block.size()) {
    return FrameError("bytes after the last header");
  }
  return headers;
}

HeaderDecompressor::HeaderDecompressor(size_t max_block_bytes) : max_block_bytes_(max_block_bytes) {
  zs_ = {};
  ok_ = inflateInit(&zs_) == Z_OK;
}

HeaderDecompressor::~HeaderDecompressor() {
  if (ok_) {
    inflateEnd(&zs_);
  }
}

absl::StatusOr<HeaderBlock> HeaderDecompressor::Decode(absl::string_view compressed) {
  if (!ok_) {
    return absl::InternalError("SPDY: header decompressor unusable after an earlier error");
  }
  std::string out;
  char chunk[4096];
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs_.avail_in = static_cast<uInt>(compressed.size());
  while (true) {
    zs_.next_out = reinterpret_cast<Bytef*>(chunk);
    zs_.avail_out = sizeof(chunk);
    int rc = inflate(&zs_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      rc = inflateSetDictionary(&zs_, kSpdy3Dictionary, kSpdy3DictionarySize);
      if (rc != Z_OK) {
        ok_ = false;
        inflateEnd(&zs_);
        return FrameError("header block uses an unknown dictionary");
      }
      continue;
    }
    size_t produced = sizeof(chunk) - zs_.avail_out;
    out.append(chunk, produced);
    if (out.size() > max_block_bytes_) {
      ok_ = false;
      inflateEnd(&zs_);
      return FrameError(absl::StrCat("header block larger than ", max_block_bytes_, " bytes"));
    }
    if (rc == Z_BUF_ERROR || (rc == Z_OK && zs_.avail_in == 0 && zs_.avail_out != 0)) {
      break;
    }
    if (rc != Z_OK) {
      ok_ = false;
      inflateEnd(&zs_);
      return FrameError(absl::StrCat("corrupt header compression (zlib ", rc, ")"));
    }
  }
  if (zs_.avail_in != 0) {
    ok_ = false;
    inflateEnd(&zs_);
    return FrameError("header block not fully consumed");
  }
  return ParseHeaderBlock(out);
}

HeaderCompressor::HeaderCompressor() {
  zs_ = {};
  ok_ = deflateInit(&zs_, Z_DEFAULT_COMPRESSION) == Z_OK &&
        deflateSetDictionary(&zs_, kSpdy3Dictionary, kSpdy3DictionarySize) == Z_OK;
}

HeaderCompressor::~HeaderCompressor() { deflateEnd(&zs_); }

absl::StatusOr<std::string> HeaderCompressor::Encode(const HeaderBlock& headers) {
  if (!ok_) {
    return absl::InternalError("SPDY: header compressor failed to initialize");
  }
  std::string block = SerializeHeaderBlock(headers);
  std::string out;
  char chunk[4096];
  zs_.next_in = reinterpret_cast<Bytef*>(block.data());
  zs_.avail_in = static_cast<uInt>(block.size());
  do {
    zs_.next_out = reinterpret_cast<Bytef*>(chunk);
    zs_.avail_out = sizeof(chunk);
    int rc = deflate(&zs_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      ok_ = false;
      return absl::InternalError(absl::StrCat("SPDY: deflate failed (zlib ", rc, ")"));
    }
    out.append(chunk, sizeof(chunk) - zs_.avail_out);
  } while (zs_.avail_out == 0);
  return out;
}

absl::StatusOr<SynStream> DecodeSynStream(const RawFrame& frame) {
  if (frame.payload.size() < 10) {
    return FrameError("SYN_STREAM shorter than 10 bytes");
  }
  SynStream s;
  s.stream_id = Get32(frame.payload, 0) & kStreamIdMask;
  s.associated_stream_id = Get32(frame.payload, 4) & kStreamIdMask;
  s.priority = static_cast<uint8_t>(static_cast<unsigned char>(frame.payload[8]) >> 5);
  s.flags = frame.flags;
  s.compressed_headers = frame.payload.substr(10);
  if (s.stream_id == 0) {
    return FrameError("SYN_STREAM for stream 0");
  }
  return s;
}

absl::StatusOr<SynReply> DecodeSynReply(const RawFrame& frame) {
  if (frame.payload.size() < 4) {
    return FrameError("SYN_REPLY/HEADERS shorter than 4 bytes");
  }
  SynReply r;
  r.stream_id = Get32(frame.payload, 0) & kStreamIdMask;
  r.flags = frame.flags;
  r.compressed_headers = frame.payload.substr(4);
  if (r.stream_id == 0) {
    return FrameError("SYN_REPLY/HEADERS for stream 0");
  }
  return r;
}

absl::StatusOr<RstStream> DecodeRstStream(const RawFrame& frame) {
  if (frame.payload.size() != 8 || frame.flags != 0) {
    return FrameError("malformed RST_STREAM");
  }
  RstStream r{Get32(frame.payload, 0) & kStreamIdMask, Get32(frame.payload, 4)};
  if (r.stream_id == 0) {
    return FrameError("RST_STREAM for stream 0");
  }
  return r;
}

absl::StatusOr<std::vector<Setting>> DecodeSettings(const RawFrame& frame) {
  if (frame.payload.size() < 4) {
    return FrameError("SETTINGS shorter than 4 bytes");
  }
  uint32_t count = Get32(frame.payload, 0);
  if ((frame.payload.size() - 4) / 8 != count || (frame.payload.size() - 4) % 8 != 0) {
    return FrameError("SETTINGS length does not match its entry count");
  }
  std::vector<Setting> settings;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t word = Get32(frame.payload, 4 + 8 * i);
    settings.push_back(
        {static_cast<uint8_t>(word >> 24), word & 0xffffff, Get32(frame.payload, 8 + 8 * i)});
  }
  return settings;
}

absl::StatusOr<uint32_t> DecodePing(const RawFrame& frame) {
  if (frame.payload.size() != 4 || frame.flags != 0) {
    return FrameError("malformed PING");
  }
  return Get32(frame.payload, 0);
}

absl::StatusOr<GoAway> DecodeGoAway(const RawFrame& frame) {
  if (frame.payload.size() != 8 || frame.flags != 0) {
    return FrameError("malformed GOAWAY");
  }
  return GoAway{Get32(frame.payload, 0) & kStreamIdMask, Get32(frame.payload, 4)};
}

absl::StatusOr<WindowUpdate> DecodeWindowUpdate(const RawFrame& frame) {
  if (frame.payload.size() != 8 || frame.flags != 0) {
    return FrameError("malformed WINDOW_UPDATE");
  }
  return WindowUpdate{Get32(frame.payload, 0) & kStreamIdMask,
                      Get32(frame.payload, 4) & kStreamIdMask};
}

std::string EncodeControlFrame(FrameType type, uint8_t flags, absl::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  Put32(&out, 0x80000000u | static_cast<uint32_t>(kVersion) << 16 | static_cast<uint16_t>(type));
  Put32(&out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(payload.size()));
  out.append(payload.data(), payload.size());
  return out;
}

std::string EncodeDataFrame(uint32_t stream_id, uint8_t flags, absl::string_view data) {
  std::string out;
  out.reserve(kFrameHeaderSize + data.size());
  Put32(&out, stream_id & kStreamIdMask);
  Put32(&out, static_cast<uint32_t>(flags) << 24 | static_cast<uint32_t>(data.size()));
  out.append(data.data(), data.size());
  return out;
}

std::string EncodeSynStream(uint32_t stream_id, uint32_t associated, uint8_t priority,
                            uint8_t flags, absl::string_view compressed_headers) {
  std::string payload;
  Put32(&payload, stream_id & kStreamIdMask);
  Put32(&payload, associated & kStreamIdMask);
  payload.push_back(static_cast<char>((priority & 0x7) << 5));
  payload.push_back(0);  // credential slot
  payload.append(compressed_headers.data(), compressed_headers.size());
  return EncodeControlFrame(FrameType::kSynStream, flags, payload);
}

std::string EncodeSynReply(uint32_t stream_id, uint8_t flags,
                           absl::string_view compressed_headers) {
  std::string payload;
  Put32(&payload, stream_id & kStreamIdMask);
  payload.append(compressed_headers.data(), compressed_headers.size());
  return EncodeControlFrame(FrameType::kSynReply, flags, payload);
}

std::string EncodeRstStream(uint32_t stream_id, RstStatus status) {
  std::string payload;
  Put32(&payload, stream_id & kStreamIdMask);
  Put32(&payload, static_cast<uint32_t>(status));
  return EncodeControlFrame(FrameType::kRstStream, 0, payload);
}

std::string EncodeSettings(const std::vector<Setting>& settings) {
  std::string payload;
  Put32(&payload, static_cast<uint32_t>(settings.size()));
  for (const Setting& s : settings) {
    Put32(&payload, static_cast<uint32_t>(s.flags) << 24 | (s.id & 0xffffff));
    Put32(&payload, s.value);
  }
  return EncodeControlFrame(FrameType::kSettings, 0, payload);
}

std::string EncodePing(uint32_t id) {
  std::string payload;
  Put32(&payload, id);
  return EncodeControlFrame(FrameType::kPing, 0, payload);
}

std::string EncodeGoAway(uint32_t last_good_stream_id, GoAwayStatus status) {
  std::string payload;
  Put32(&payload, last_good_stream_id & kStreamIdMask);
  Put32(&payload, static_cast<uint32_t>(status));
  return EncodeControlFrame(FrameType::kGoAway, 0, payload);
}

std::string EncodeWindowUpdate(uint32_t stream_id, uint32_t delta) {
  std::string payload;
  Put32(&payload, stream_id & kStreamIdMask);
  Put32(&payload, delta & kStreamIdMask);
  return EncodeControlFrame(FrameType::kWindowUpdate, 0, payload);
}

}  // namespace crid::streaming::spdy
