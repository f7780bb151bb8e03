// crid's streaming server: the HTTP endpoint behind the URLs that the CRI
// Exec, Attach and PortForward RPCs return. Each URL carries a one-time token
// for the validated request; the client upgrades the connection to SPDY/3.1 or
// WebSocket and the session runs on its own thread.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "cri/streaming/runtime.h"
#include "cri/streaming/sessions.h"
#include "cri/streaming/tls.h"
#include "cri/streaming/token_cache.h"
#include "proto/cri_api.pb.h"

namespace crid::streaming {

struct ServerOptions {
  // IPv4 or IPv6 address to listen on; port 0 picks a free one. The default
  // keeps the server off every network but the loopback.
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  // Connections served at once; more are answered 503.
  size_t max_connections = 256;
  absl::Duration token_ttl = TokenCache::kDefaultTtl;
  size_t max_tokens = TokenCache::kDefaultCapacity;
  // Time a client has to send its request head.
  absl::Duration request_timeout = absl::Seconds(10);
  // A client that reads nothing for this long is dropped.
  absl::Duration send_timeout = absl::Minutes(10);
  SessionOptions session;
  // HTTPS when a certificate and key are set; plain HTTP otherwise.
  TlsFiles tls;
};

// Request validation shared with the RPC layer (INVALID_ARGUMENT naming the field).
absl::Status ValidateExecRequest(const runtime::v1::ExecRequest& request);
absl::Status ValidateAttachRequest(const runtime::v1::AttachRequest& request);
absl::Status ValidatePortForwardRequest(const runtime::v1::PortForwardRequest& request);

class Server {
 public:
  // Listens and serves until Stop. `runtime` is not owned and must outlive the server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options,
                                                       StreamingRuntime* runtime);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, ends every session and joins their threads.
  void Stop();

  // "http://127.0.0.1:PORT" (https with TLS)
  const std::string& base_url() const { return base_url_; }
  uint16_t port() const { return port_; }

  // Validate, store under a new token, and return the URL to use once.
  absl::StatusOr<runtime::v1::ExecResponse> GetExec(const runtime::v1::ExecRequest& request);
  absl::StatusOr<runtime::v1::AttachResponse> GetAttach(const runtime::v1::AttachRequest& request);
  absl::StatusOr<runtime::v1::PortForwardResponse> GetPortForward(
      const runtime::v1::PortForwardRequest& request);

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  Server(ServerOptions options, StreamingRuntime* runtime)
      : options_(std::move(options)),
        runtime_(runtime),
        tokens_(options_.token_ttl, options_.max_tokens) {}

  void AcceptLoop();
  // Owns `fd`.
  void ServeConnection(int fd);
  // Owns `fd`: the TLS handshake, then ServeConnection on the plaintext.
  void ServeTlsConnection(int fd);
  void ReapLocked(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerOptions options_;
  StreamingRuntime* const runtime_;
  TokenCache tokens_;
  std::unique_ptr<TlsContext> tls_;
  UniqueFd listener_;
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  std::string base_url_;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crid::streaming
