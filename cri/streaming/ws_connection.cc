#include "cri/streaming/ws_connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/logging.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/websocket.h"

namespace crid::streaming {

namespace {

// Clients send stdin and resize messages of a few KiB; 1 MiB bounds a message
// assembled from fragments.
constexpr size_t kMaxMessage = 1 << 20;

}  // namespace

absl::Status WsConnection::SendFrame(uint8_t opcode, absl::string_view payload) {
  absl::MutexLock lock(&write_mu_);
  if (closed_ || close_sent_) {
    return absl::CancelledError("the connection is closed");
  }
  absl::Status st = SendAll(fd_, ws::EncodeFrame(opcode, payload));
  if (!st.ok()) {
    closed_ = true;
    shutdown(fd_, SHUT_RDWR);
  }
  return st;
}

absl::Status WsConnection::Write(uint8_t channel, absl::string_view data) {
  if (base64_) {
    return SendFrame(ws::kText, absl::StrCat(std::string(1, static_cast<char>('0' + channel)),
                                             absl::Base64Escape(data)));
  }
  std::string message(1, static_cast<char>(channel));
  message.append(data.data(), data.size());
  return SendFrame(ws::kBinary, message);
}

void WsConnection::Shutdown(uint16_t code, absl::string_view reason) {
  {
    absl::MutexLock lock(&write_mu_);
    if (!closed_ && !close_sent_) {
      close_sent_ = true;
      SendAll(fd_, ws::EncodeFrame(ws::kClose, ws::ClosePayload(code, reason))).IgnoreError();
    }
    closed_ = true;
  }
  // Half-close; Serve drains until the client closes too.
  shutdown(fd_, SHUT_WR);
}

void WsConnection::Serve(const MessageHandler& on_message) {
  absl::Status result;
  std::string message;
  uint8_t message_opcode = 0;
  bool in_message = false;
  char chunk[64 * 1024];
  while (result.ok()) {
    absl::StatusOr<std::optional<std::pair<ws::Frame, size_t>>> parsed =
        ws::ParseFrame(buffer_, /*require_mask=*/true, kMaxMessage);
    if (!parsed.ok()) {
      result = parsed.status();
      break;
    }
    if (!parsed->has_value()) {
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    ws::Frame frame = std::move((*parsed)->first);
    buffer_.erase(0, (*parsed)->second);
    switch (frame.opcode) {
      case ws::kPing:
        SendFrame(ws::kPong, frame.payload).IgnoreError();
        continue;
      case ws::kPong:
        continue;
      case ws::kClose:
        Shutdown(1000, "");
        result = absl::OkStatus();
        break;
      case ws::kContinuation:
        if (!in_message) {
          result = absl::InvalidArgumentError("WebSocket: continuation without a message");
          break;
        }
        message += frame.payload;
        break;
      default:
        if (in_message) {
          result = absl::InvalidArgumentError("WebSocket: new message inside a fragmented one");
          break;
        }
        in_message = true;
        message_opcode = frame.opcode;
        message = std::move(frame.payload);
        break;
    }
    if (frame.opcode == ws::kClose) {
      break;
    }
    if (!result.ok()) {
      break;
    }
    if (message.size() > kMaxMessage) {
      result = absl::InvalidArgumentError("WebSocket: message too large");
      break;
    }
    if (!frame.fin) {
      continue;
    }
    in_message = false;
    std::string data = std::move(message);
    message.clear();
    if (data.empty()) {
      continue;
    }
    if (base64_ && message_opcode != ws::kText) {
      result = absl::InvalidArgumentError("WebSocket: binary message on a base64 protocol");
      break;
    }
    uint8_t channel = static_cast<uint8_t>(data[0]);
    if (close_signal_ && channel == kCloseChannelSignal) {
      if (data.size() != 2) {
        result = absl::InvalidArgumentError("WebSocket: close signal without one channel byte");
        break;
      }
      uint8_t closed = static_cast<uint8_t>(data[1]);
      on_message(static_cast<uint8_t>(base64_ ? closed - '0' : closed), "", true);
      continue;
    }
    if (base64_) {
      channel = static_cast<uint8_t>(channel - '0');
      std::string decoded;
      if (!absl::Base64Unescape(absl::string_view(data).substr(1), &decoded)) {
        result = absl::InvalidArgumentError("WebSocket: bad base64 payload");
        break;
      }
      on_message(channel, std::move(decoded), false);
    } else {
      on_message(channel, data.substr(1), false);
    }
  }
  if (!result.ok()) {
    spdlog::debug("streaming: ending WebSocket connection: {}", result.message());
    Shutdown(1002, "protocol error");
  }
  closed_ = true;
  shutdown(fd_, SHUT_RDWR);
}

}  // namespace crid::streaming
