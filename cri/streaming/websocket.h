// RFC 6455 WebSocket framing and the opening handshake's accept key. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid::streaming::ws {

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xa,
};

struct Frame {
  bool fin = false;
  uint8_t opcode = 0;
  bool masked = false;
  // Unmasked payload.
  std::string payload;
};

// Cuts the next frame off `buffer`: the frame and its size, or std::nullopt
// while incomplete. INVALID_ARGUMENT for reserved bits, unknown opcodes,
// fragmented or oversized control frames, a missing mask when `require_mask`,
// and payloads over `max_payload`.
absl::StatusOr<std::optional<std::pair<Frame, size_t>>> ParseFrame(absl::string_view buffer,
                                                                   bool require_mask,
                                                                   size_t max_payload);

// Encodes one final frame; `mask_key` set for client frames.
std::string EncodeFrame(uint8_t opcode, absl::string_view payload,
                        std::optional<uint32_t> mask_key = std::nullopt, bool fin = true);

// Close frame payload: status code and reason.
std::string ClosePayload(uint16_t code, absl::string_view reason);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key.
std::string AcceptKey(absl::string_view client_key);

}  // namespace crid::streaming::ws
