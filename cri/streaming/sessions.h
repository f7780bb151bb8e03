// The streaming sessions behind the upgraded connections: exec and attach over
// SPDY (v1-v4.channel.k8s.io) and WebSocket (channel.k8s.io, v4, v5 and the
// base64 variants), and port forwarding over SPDY (portforward.k8s.io). Each
// Serve* call runs one session on the calling thread and returns when it ended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cri/streaming/byte_queue.h"
#include "cri/streaming/runtime.h"

namespace crid::streaming {

// Subprotocol names (X-Stream-Protocol-Version / Sec-WebSocket-Protocol).
inline constexpr char kChannelV1[] = "channel.k8s.io";
inline constexpr char kChannelV2[] = "v2.channel.k8s.io";
inline constexpr char kChannelV3[] = "v3.channel.k8s.io";
inline constexpr char kChannelV4[] = "v4.channel.k8s.io";
inline constexpr char kChannelV5[] = "v5.channel.k8s.io";
inline constexpr char kBase64ChannelV1[] = "base64.channel.k8s.io";
inline constexpr char kBase64ChannelV4[] = "v4.base64.channel.k8s.io";
inline constexpr char kPortForwardV1[] = "portforward.k8s.io";

// The SPDY subprotocols, most preferred first.
const std::vector<std::string>& SpdyRemoteCommandProtocols();
const std::vector<std::string>& SpdyPortForwardProtocols();
// The WebSocket subprotocols for exec and attach.
const std::vector<std::string>& WebSocketRemoteCommandProtocols();

// metav1.Status objects written on the error stream by v4 and later.
std::string SuccessStatusJson();
std::string ExitCodeStatusJson(int exit_code);
std::string InternalErrorStatusJson(absl::string_view message);

// Cuts a byte stream of concatenated JSON objects ({"Width":80,"Height":24})
// into terminal sizes. Keys are matched without case, as Go's decoder does.
class ResizeDecoder {
 public:
  // Appends the sizes completed by `bytes` to `out`; an error for malformed or
  // oversized input (the stream is then unusable).
  absl::Status Feed(absl::string_view bytes, std::vector<TerminalSize>* out);

 private:
  static constexpr size_t kMaxObject = 4096;
  std::string pending_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

struct RemoteCommand {
  bool attach = false;
  std::string container_id;
  std::vector<std::string> cmd;
  bool with_stdin = false;
  bool with_stdout = false;
  bool with_stderr = false;
  bool tty = false;
};

struct SessionOptions {
  // How long a client has to open every stream (or both of a port pair).
  absl::Duration stream_creation_timeout = absl::Seconds(30);
  // How long output may keep flowing after the command exited (a background
  // child holding stdout open must not keep the session forever).
  absl::Duration output_drain_timeout = absl::Seconds(2);
  // How long to wait for the client to close after the session finished.
  absl::Duration close_linger = absl::Seconds(5);
};

// Each takes the upgraded socket (not owned; the caller closes it) and the
// bytes already read past the HTTP head.
void ServeSpdyRemoteCommand(int fd, std::string initial, const std::string& protocol,
                            const RemoteCommand& command, StreamingRuntime* runtime,
                            const SessionOptions& options);
void ServeSpdyPortForward(int fd, std::string initial, const std::string& pod_sandbox_id,
                          StreamingRuntime* runtime, const SessionOptions& options);
void ServeWebSocketRemoteCommand(int fd, std::string initial, const std::string& protocol,
                                 const RemoteCommand& command, StreamingRuntime* runtime,
                                 const SessionOptions& options);

}  // namespace crid::streaming
