// SPDY/3.1 framing as spoken by Kubernetes streaming clients (moby/spdystream):
// splitting a byte stream into frames, decoding and encoding the control frames,
// and the zlib-compressed name/value header blocks. No I/O here.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crid::streaming::spdy {

inline constexpr uint16_t kVersion = 3;

enum class FrameType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;

// RST_STREAM status codes.
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum class GoAwayStatus : uint32_t { kOk = 0, kProtocolError = 1, kInternalError = 2 };

inline constexpr size_t kFrameHeaderSize = 8;
// The 24-bit length field's limit.
inline constexpr size_t kMaxFramePayload = (1u << 24) - 1;

// One frame cut from the byte stream; `payload` points into the parsed buffer.
struct RawFrame {
  bool control = false;
  // Control frames: version and type. Data frames: stream_id.
  uint16_t version = 0;
  uint16_t type = 0;
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  absl::string_view payload;
};

// Cuts the next frame off `buffer`. Returns the frame and the bytes it used, or
// std::nullopt while the frame is incomplete; INVALID_ARGUMENT when the header
// is malformed or the declared payload exceeds `max_payload` (data frames) or
// `max_control_payload` (control frames), checked as soon as the header is in.
absl::StatusOr<std::optional<std::pair<RawFrame, size_t>>> ParseFrame(
    absl::string_view buffer, size_t max_payload = kMaxFramePayload,
    size_t max_control_payload = kMaxFramePayload);

// Header names are lowercase on the wire; several values of one name are
// separated by NUL. Kept in wire order.
using HeaderBlock = std::vector<std::pair<std::string, std::string>>;

// First value of `name` (compared without case), or "" when absent.
std::string HeaderValue(const HeaderBlock& headers, absl::string_view name);

// Decompresses header blocks of one direction of a connection (the zlib
// stream spans every header block the peer sends).
class HeaderDecompressor {
 public:
  explicit HeaderDecompressor(size_t max_block_bytes = 64 * 1024);
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;

  // Inflates `compressed` (one frame's block) and parses the name/value pairs.
  absl::StatusOr<HeaderBlock> Decode(absl::string_view compressed);

 private:
  z_stream zs_;
  bool ok_ = false;
  size_t max_block_bytes_;
};

// Compresses the header blocks this side sends.
class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;

  absl::StatusOr<std::string> Encode(const HeaderBlock& headers);

 private:
  z_stream zs_;
  bool ok_ = false;
};

// The uncompressed name/value block and its parser (exposed for tests and fuzzing).
std::string SerializeHeaderBlock(const HeaderBlock& headers);
absl::StatusOr<HeaderBlock> ParseHeaderBlock(absl::string_view block);

// Decoded control frames.
struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated_stream_id = 0;
  uint8_t priority = 0;
  uint8_t flags = 0;
  absl::string_view compressed_headers;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;
  absl::string_view compressed_headers;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;
};
struct Setting {
  uint8_t flags = 0;
  uint32_t id = 0;
  uint32_t value = 0;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;
};
struct WindowUpdate {
  uint32_t stream_id = 0;
  uint32_t delta = 0;
};

// Each checks the payload length and reserved bits of its frame type.
absl::StatusOr<SynStream> DecodeSynStream(const RawFrame& frame);
absl::StatusOr<SynReply> DecodeSynReply(const RawFrame& frame);  // also HEADERS
absl::StatusOr<RstStream> DecodeRstStream(const RawFrame& frame);
absl::StatusOr<std::vector<Setting>> DecodeSettings(const RawFrame& frame);
absl::StatusOr<uint32_t> DecodePing(const RawFrame& frame);
absl::StatusOr<GoAway> DecodeGoAway(const RawFrame& frame);
absl::StatusOr<WindowUpdate> DecodeWindowUpdate(const RawFrame& frame);

// Encoders produce complete frames (header + payload).
std::string EncodeControlFrame(FrameType type, uint8_t flags, absl::string_view payload);
std::string EncodeDataFrame(uint32_t stream_id, uint8_t flags, absl::string_view data);
std::string EncodeSynStream(uint32_t stream_id, uint32_t associated, uint8_t priority,
                            uint8_t flags, absl::string_view compressed_headers);
std::string EncodeSynReply(uint32_t stream_id, uint8_t flags, absl::string_view compressed_headers);
std::string EncodeRstStream(uint32_t stream_id, RstStatus status);
std::string EncodeSettings(const std::vector<Setting>& settings);
std::string EncodePing(uint32_t id);
std::string EncodeGoAway(uint32_t last_good_stream_id, GoAwayStatus status);
std::string EncodeWindowUpdate(uint32_t stream_id, uint32_t delta);

}  // namespace crid::streaming::spdy
