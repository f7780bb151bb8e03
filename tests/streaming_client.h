// Test clients for crid's streaming server: a SPDY/3.1 client that opens
// streams the way kubectl and crictl do (client-side stream ids, header
// compression, FIN and RST), a WebSocket client for the channel protocols,
// and a one-shot HTTP request helper.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "cri/streaming/spdy_frame.h"
#include "cri/streaming/tls.h"

namespace crid::streaming_test {

struct HttpReply {
  int code = 0;
  // Lowercased names; repeated headers in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string Header(const std::string& name) const;
};

// For https URLs: the CA that must have signed the server's certificate
// (client_ca_file) and the client's own certificate and key, if any.
void UseTlsClient(const crid::streaming::TlsFiles& files);

// "http(s)://host:port/path" -> connected socket (plaintext) and the path.
absl::StatusOr<UniqueFd> DialUrl(const std::string& url, std::string* path);

// Sends `method path` with `headers` and reads the reply head (and body until
// the server closes, unless it switched protocols). `rest` gets bytes after a 101 head.
absl::StatusOr<HttpReply> HttpRequestOn(
    int fd, const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string* rest = nullptr);
absl::StatusOr<HttpReply> HttpRequest(
    const std::string& method, const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& headers = {});

class SpdyClient {
 public:
  // Upgrades `url` offering `protocols`. A refused upgrade is an error carrying
  // the HTTP code and body.
  static absl::StatusOr<std::unique_ptr<SpdyClient>> Connect(
      const std::string& url, const std::vector<std::string>& protocols,
      const std::string& method = "POST");
  ~SpdyClient();

  const std::string& protocol() const { return protocol_; }

  // SYN_STREAM with `headers`; waits for SYN_REPLY. Fails when the server
  // resets the stream or the connection ends.
  absl::StatusOr<uint32_t> OpenStream(const crid::streaming::spdy::HeaderBlock& headers,
                                      absl::Duration timeout = absl::Seconds(10));
  absl::Status Write(uint32_t id, absl::string_view data);
  // Half-closes the stream from this side.
  absl::Status CloseStream(uint32_t id);
  absl::Status Reset(uint32_t id);
  // Everything the server sends on the stream until its FIN (or RST / end of
  // the connection, which are errors).
  absl::StatusOr<std::string> ReadAll(uint32_t id, absl::Duration timeout = absl::Seconds(30));
  // At least `min_bytes` more of the stream (or what came before FIN).
  absl::StatusOr<std::string> Read(uint32_t id, size_t min_bytes,
                                   absl::Duration timeout = absl::Seconds(30));
  bool StreamWasReset(uint32_t id);
  // Raw bytes on the connection (for garbage tests).
  absl::Status SendRaw(absl::string_view bytes);
  absl::Status Ping(uint32_t id, absl::Duration timeout = absl::Seconds(10));
  // Waits for the server's GOAWAY; returns its status code.
  absl::StatusOr<uint32_t> WaitGoAway(absl::Duration timeout = absl::Seconds(10));
  // Waits until the server closed the connection.
  bool WaitClosed(absl::Duration timeout = absl::Seconds(10));
  void Close();

 private:
  struct Stream {
    bool replied = false;
    bool fin = false;
    bool reset = false;
    std::string data;
  };
  SpdyClient() = default;
  void ReadLoop();
  absl::Status SendFrame(const std::string& frame);

  UniqueFd fd_;
  std::string protocol_;
  std::string pending_;
  std::thread reader_;
  absl::Mutex write_mu_;
  crid::streaming::spdy::HeaderCompressor compressor_ ABSL_GUARDED_BY(write_mu_);
  uint32_t next_id_ ABSL_GUARDED_BY(write_mu_) = 1;
  absl::Mutex mu_;
  std::map<uint32_t, Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> pongs_ ABSL_GUARDED_BY(mu_);
  bool goaway_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t goaway_status_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class WsClient {
 public:
  static absl::StatusOr<std::unique_ptr<WsClient>> Connect(
      const std::string& url, const std::vector<std::string>& protocols);
  ~WsClient();

  const std::string& protocol() const { return protocol_; }
  bool base64() const;
  // One message on `channel` (binary, or text with base64 for base64 protocols).
  absl::Status Send(uint8_t channel, absl::string_view data);
  // v5: tells the server `channel` is done.
  absl::Status SendCloseChannel(uint8_t channel);
  absl::Status SendRaw(absl::string_view bytes);
  // Everything received on `channel` once the server closed the connection.
  absl::StatusOr<std::map<uint8_t, std::string>> ReadUntilClosed(
      absl::Duration timeout = absl::Seconds(30));
  // Waits for at least `min_bytes` on `channel`.
  absl::StatusOr<std::string> Read(uint8_t channel, size_t min_bytes,
                                   absl::Duration timeout = absl::Seconds(30));
  // Number of messages received per channel (the greeting is an empty one).
  int MessageCount(uint8_t channel);
  // Channels the server closed with the v5 signal.
  std::vector<uint8_t> ClosedChannels();
  // The close code the server sent (0 when none).
  uint16_t close_code();

 private:
  WsClient() = default;
  void ReadLoop();

  UniqueFd fd_;
  std::string protocol_;
  std::string pending_;
  std::thread reader_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  std::map<uint8_t, std::string> data_ ABSL_GUARDED_BY(mu_);
  std::map<uint8_t, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<uint8_t> closed_channels_ ABSL_GUARDED_BY(mu_);
  uint16_t close_code_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace crid::streaming_test
