// The server side of one WebSocket connection speaking the Kubernetes channel
// protocols: every message starts with a channel number (binary byte, or an
// ASCII digit followed by base64 in the base64 variants); v5 adds the
// close-channel message [255, channel].
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace crid::streaming {

inline constexpr uint8_t kCloseChannelSignal = 255;

class WsConnection {
 public:
  // Channel `channel` got `data` (false stops the connection), or was closed by
  // the client (v5; data is empty and `closed` true).
  using MessageHandler = std::function<void(uint8_t channel, std::string data, bool closed)>;

  WsConnection(int fd, std::string initial, bool base64, bool close_signal)
      : fd_(fd), buffer_(std::move(initial)), base64_(base64), close_signal_(close_signal) {}

  // Reads messages until the client closes, a protocol error, or Shutdown().
  void Serve(const MessageHandler& on_message);
  // One message on `channel`.
  absl::Status Write(uint8_t channel, absl::string_view data);
  // Close frame (1000 normal), then shuts the socket down so Serve returns.
  void Shutdown(uint16_t code = 1000, absl::string_view reason = "");
  bool closed() const { return closed_.load(); }

 private:
  absl::Status SendFrame(uint8_t opcode, absl::string_view payload);

  const int fd_;
  std::string buffer_;
  const bool base64_;
  const bool close_signal_;
  std::atomic<bool> closed_{false};
  absl::Mutex write_mu_;
  bool close_sent_ ABSL_GUARDED_BY(write_mu_) = false;
};

}  // namespace crid::streaming
