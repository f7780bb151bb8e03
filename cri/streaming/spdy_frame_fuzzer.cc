// Fuzz target: a byte stream as the SPDY connection's reader sees it, cut into
// frames, each decoded by type, header blocks through one shared zlib context.
#include <cstddef>
#include <cstdint>

#include "cri/streaming/spdy_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace spdy = crid::streaming::spdy;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  spdy::ParseHeaderBlock(input).IgnoreError();
  spdy::HeaderDecompressor decompressor(size_t{64} * 1024);
  while (!input.empty()) {
    auto parsed = spdy::ParseFrame(input, spdy::kMaxFramePayload, size_t{256} * 1024);
    if (!parsed.ok() || !parsed->has_value()) {
      break;
    }
    const spdy::RawFrame& frame = (*parsed)->first;
    input.remove_prefix((*parsed)->second);
    if (!frame.control) {
      continue;
    }
    switch (static_cast<spdy::FrameType>(frame.type)) {
      case spdy::FrameType::kSynStream:
        if (auto syn = spdy::DecodeSynStream(frame); syn.ok()) {
          decompressor.Decode(syn->compressed_headers).IgnoreError();
        }
        break;
      case spdy::FrameType::kSynReply:
      case spdy::FrameType::kHeaders:
        if (auto reply = spdy::DecodeSynReply(frame); reply.ok()) {
          decompressor.Decode(reply->compressed_headers).IgnoreError();
        }
        break;
      case spdy::FrameType::kRstStream:
        spdy::DecodeRstStream(frame).IgnoreError();
        break;
      case spdy::FrameType::kSettings:
        spdy::DecodeSettings(frame).IgnoreError();
        break;
      case spdy::FrameType::kPing:
        spdy::DecodePing(frame).IgnoreError();
        break;
      case spdy::FrameType::kGoAway:
        spdy::DecodeGoAway(frame).IgnoreError();
        break;
      case spdy::FrameType::kWindowUpdate:
        spdy::DecodeWindowUpdate(frame).IgnoreError();
        break;
    }
  }
  return 0;
}
