// Fuzz target: an HTTP upgrade request head as the streaming server reads it,
// then the WebSocket frames that may follow it.
#include <cstddef>
#include <cstdint>

#include "cri/streaming/http_request.h"
#include "cri/streaming/websocket.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace streaming = crid::streaming;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  size_t head_size = 0;
  auto parsed = streaming::ParseHttpRequest(input, &head_size);
  if (parsed.ok() && parsed->has_value()) {
    const streaming::HttpRequest& request = **parsed;
    request.HeaderHasToken("connection", "upgrade");
    request.HeaderList("x-stream-protocol-version");
    request.HeaderList("sec-websocket-protocol");
    request.QueryValues("port");
    streaming::ws::AcceptKey(request.Header("sec-websocket-key"));
    input.remove_prefix(head_size);
  }
  while (!input.empty()) {
    auto frame = streaming::ws::ParseFrame(input, /*require_mask=*/true, 1 << 20);
    if (!frame.ok() || !frame->has_value()) {
      break;
    }
    input.remove_prefix((*frame)->second);
  }
  return 0;
}
