#include "cri/streaming/websocket.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace crid::streaming::ws {

namespace {

// RFC 6455 section 1.3.
constexpr char kAcceptGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

absl::Status FrameError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("WebSocket: ", what));
}

}  // namespace

absl::StatusOr<std::optional<std::pair<Frame, size_t>>> ParseFrame(absl::string_view buffer,
                                                                   bool require_mask,
                                                                   size_t max_payload) {
  if (buffer.size() < 2) {
    return std::nullopt;
  }
  auto byte = [&](size_t i) { return static_cast<uint8_t>(buffer[i]); };
  Frame frame;
  frame.fin = (byte(0) & 0x80) != 0;
  if ((byte(0) & 0x70) != 0) {
    return FrameError("reserved bits set");
  }
  frame.opcode = byte(0) & 0x0f;
  bool control = (frame.opcode & 0x8) != 0;
  if (frame.opcode != kContinuation && frame.opcode != kText && frame.opcode != kBinary &&
      frame.opcode != kClose && frame.opcode != kPing && frame.opcode != kPong) {
    return FrameError(absl::StrCat("unknown opcode ", frame.opcode));
  }
  frame.masked = (byte(1) & 0x80) != 0;
  if (require_mask && !frame.masked) {
    return FrameError("client frame without a mask");
  }
  uint64_t length = byte(1) & 0x7f;
  size_t at = 2;
  if (length == 126) {
    if (buffer.size() < 4) {
      return std::nullopt;
    }
    length = static_cast<uint64_t>(byte(2)) << 8 | byte(3);
    at = 4;
  } else if (length == 127) {
    if (buffer.size() < 10) {
      return std::nullopt;
    }
    length = 0;
    for (size_t i = 2; i < 10; ++i) {
      length = length << 8 | byte(i);
    }
    if ((length >> 63) != 0) {
      return FrameError("payload length with the top bit set");
    }
    at = 10;
  }
  if (control && (length > 125 || !frame.fin)) {
    return FrameError("control frame fragmented or longer than 125 bytes");
  }
  if (length > max_payload) {
    return FrameError(
        absl::StrCat("frame of ", length, " bytes exceeds the limit of ", max_payload));
  }
  uint8_t mask[4] = {0, 0, 0, 0};
  if (frame.masked) {
    if (buffer.size() < at + 4) {
      return std::nullopt;
    }
    for (int i = 0; i < 4; ++i) {
      mask[i] = byte(at + i);
    }
    at += 4;
  }
  if (buffer.size() - at < length) {
    return std::nullopt;
  }
  frame.payload.assign(buffer.data() + at, static_cast<size_t>(length));
  if (frame.masked) {
    for (size_t i = 0; i < frame.payload.size(); ++i) {
      frame.payload[i] = static_cast<char>(frame.payload[i] ^ mask[i % 4]);
    }
  }
  return std::make_optional(std::make_pair(std::move(frame), at + static_cast<size_t>(length)));
}

std::string EncodeFrame(uint8_t opcode, absl::string_view payload, std::optional<uint32_t> mask_key,
                        bool fin) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (opcode & 0x0f)));
  uint8_t mask_bit = mask_key.has_value() ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size()));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>(static_cast<uint64_t>(payload.size()) >> shift));
    }
  }
  if (!mask_key.has_value()) {
    out.append(payload.data(), payload.size());
    return out;
  }
  uint8_t mask[4] = {static_cast<uint8_t>(*mask_key >> 24), static_cast<uint8_t>(*mask_key >> 16),
                     static_cast<uint8_t>(*mask_key >> 8), static_cast<uint8_t>(*mask_key)};
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  }
  return out;
}

std::string ClosePayload(uint16_t code, absl::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code));
  out.append(reason.data(), std::min<size_t>(reason.size(), 123));
  return out;
}

std::string AcceptKey(absl::string_view client_key) {
  std::string input = absl::StrCat(client_key, kAcceptGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace crid::streaming::ws
