// The gRPC server on crid's unix socket: prepares the socket path (refusing to
// replace anything that is not a stale socket), serves the CRI services, and
// removes the socket when it stops.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crid {

struct ServerOptions {
  std::string socket_path;
  // Group owning the socket ("" keeps the process's group); the mode is 0660.
  std::string socket_group;
  int max_message_bytes = 16 * 1024 * 1024;
};

class CriServer {
 public:
  // Starts serving `services` (not owned; they must outlive the server).
  // `interceptor` (may be null) sees every call (cri/daemon_metrics.h).
  static absl::StatusOr<std::unique_ptr<CriServer>> Start(
      const ServerOptions& options, const std::vector<grpc::Service*>& services,
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor = nullptr);
  ~CriServer();

  // Stops accepting calls, lets running ones finish within `grace`, then cancels
  // the rest, and removes the socket.
  void Shutdown(absl::Duration grace);

 private:
  CriServer(std::string socket_path, std::unique_ptr<grpc::Server> server)
      : socket_path_(std::move(socket_path)), server_(std::move(server)) {}

  std::string socket_path_;
  std::unique_ptr<grpc::Server> server_;
};

// Makes `path` free for a new socket: creates its directory, removes a stale
// socket nobody listens on, and refuses when a live server owns it or when the
// path holds anything but a socket.
absl::Status PrepareSocketPath(const std::string& path);

}  // namespace crid
