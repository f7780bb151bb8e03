#include "cri/streaming/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/logging.h"
#include "cri/streaming/http_request.h"
#include "cri/streaming/spdy_connection.h"
#include "cri/streaming/websocket.h"

namespace crid::streaming {

namespace {

absl::Status InvalidArgument(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status ValidateStreams(bool with_stdin, bool with_stdout, bool with_stderr, bool tty) {
  if (tty && with_stderr) {
    return InvalidArgument("tty and stderr cannot both be true");
  }
  if (!with_stdin && !with_stdout && !with_stderr) {
    return InvalidArgument("one of stdin, stdout, or stderr must be set");
  }
  return absl::OkStatus();
}

bool IsTokenText(absl::string_view token) {
  if (token.empty() || token.size() > 64) {
    return false;
  }
  return std::all_of(token.begin(), token.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Negotiation as in k8s.io/apimachinery httpstream.Handshake: the first
// protocol the client lists that the server supports.
std::string Negotiate(const std::vector<std::string>& client,
                      const std::vector<std::string>& server) {
  for (const std::string& c : client) {
    if (std::find(server.begin(), server.end(), c) != server.end()) {
      return c;
    }
  }
  return "";
}

void Respond(int fd, int code, absl::string_view body,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  SendAll(fd, HttpResponse(code, body, headers)).IgnoreError();
}

void TuneSocket(int fd, absl::Duration send_timeout) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  // A vanished client (no FIN, no RST) is noticed within about a minute.
  int idle = 30, interval = 10, count = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv = absl::ToTimeval(send_timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

absl::Status ValidateExecRequest(const runtime::v1::ExecRequest& request) {
  if (request.container_id().empty()) {
    return InvalidArgument("container_id: must not be empty");
  }
  if (request.cmd().empty()) {
    return InvalidArgument("cmd: must not be empty");
  }
  return ValidateStreams(request.stdin(), request.stdout(), request.stderr(), request.tty());
}

absl::Status ValidateAttachRequest(const runtime::v1::AttachRequest& request) {
  if (request.container_id().empty()) {
    return InvalidArgument("container_id: must not be empty");
  }
  return ValidateStreams(request.stdin(), request.stdout(), request.stderr(), request.tty());
}

absl::Status ValidatePortForwardRequest(const runtime::v1::PortForwardRequest& request) {
  if (request.pod_sandbox_id().empty()) {
    return InvalidArgument("pod_sandbox_id: must not be empty");
  }
  for (int32_t port : request.port()) {
    if (port <= 0 || port > 65535) {
      return InvalidArgument(absl::StrCat("port: ", port, " is not in 1-65535"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                                      StreamingRuntime* runtime) {
  if (runtime == nullptr) {
    return absl::InvalidArgumentError("streaming server needs a runtime");
  }
  std::unique_ptr<TlsContext> tls;
  if (!options.tls.cert_file.empty() || !options.tls.key_file.empty()) {
    absl::StatusOr<std::unique_ptr<TlsContext>> loaded = TlsContext::Load(options.tls);
    if (!loaded.ok()) {
      return loaded.status();
    }
    tls = std::move(*loaded);
  }
  std::string host = options.address;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  sockaddr_storage storage{};
  socklen_t len = 0;
  bool v6 = false;
  bool unspecified = false;
  auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(options.port);
    len = sizeof(*sin);
    unspecified = sin->sin_addr.s_addr == htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(options.port);
    len = sizeof(*sin6);
    v6 = true;
    unspecified = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming address \"", options.address, "\" is not an IP address"));
  }
  auto server = std::unique_ptr<Server>(new Server(std::move(options), runtime));
  server->tls_ = std::move(tls);
  server->listener_.reset(socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!server->listener_.valid()) {
    return ErrnoError(errno, "socket");
  }
  int one = 1;
  setsockopt(server->listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(server->listener_.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    return ErrnoError(errno, "bind streaming server to ", server->options_.address, ":",
                      server->options_.port);
  }
  if (listen(server->listener_.get(), 128) != 0) {
    return ErrnoError(errno, "listen");
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(server->listener_.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
  server->port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  // Kubelet runs on this host: an unspecified address is reached through the loopback.
  std::string url_host =
      unspecified ? (v6 ? "[::1]" : "127.0.0.1") : (v6 ? "[" + host + "]" : host);
  server->base_url_ =
      absl::StrCat(server->tls_ != nullptr ? "https://" : "http://", url_host, ":", server->port_);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe2");
  }
  server->wake_read_.reset(fds[0]);
  server->wake_write_.reset(fds[1]);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  wake_write_.reset();
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  absl::MutexLock lock(&mu_);
  for (auto& conn : connections_) {
    shutdown(conn->fd, SHUT_RDWR);
  }
  ReapLocked(true);
}

void Server::ReapLocked(bool all) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (all || (*it)->finished) {
      (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void Server::AcceptLoop() {
  while (true) {
    pollfd p[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int rc = poll(p, 2, -1);
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc < 0 || p[1].revents != 0) {
      return;
    }
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN) {
        spdlog::warn("streaming: accept: {}", std::strerror(errno));
        // Out of descriptors or memory: back off instead of spinning.
        usleep(100 * 1000);
      }
      continue;
    }
    absl::MutexLock lock(&mu_);
    ReapLocked(false);
    if (connections_.size() >= options_.max_connections) {
      Respond(fd, 503, "too many streaming connections");
      close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    Connection* raw = conn.get();
    raw->fd = fd;
    raw->thread = std::thread([this, raw] {
      if (tls_ == nullptr) {
        ServeConnection(raw->fd);
      } else {
        ServeTlsConnection(raw->fd);
      }
      raw->finished = true;
    });
    connections_.push_back(std::move(conn));
  }
}

void Server::ServeTlsConnection(int fd) {
  UniqueFd tcp(fd);  // shut down by Stop; closed once the pump is done with it
  TuneSocket(fd, options_.send_timeout);
  std::thread pump;
  absl::StatusOr<UniqueFd> plain = tls_->Wrap(UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0)),
                                              absl::Now() + options_.request_timeout, &pump);
  if (!plain.ok()) {
    spdlog::debug("streaming: {}", plain.status().message());
    return;
  }
  ServeConnection(plain->release());
  // The server closed its end: the pump finishes what it holds and ends.
  pump.join();
}

void Server::ServeConnection(int fd) {
  UniqueFd owned(fd);
  TuneSocket(fd, options_.send_timeout);
  std::string buffer;
  std::optional<HttpRequest> request;
  size_t head_size = 0;
  absl::Time deadline = absl::Now() + options_.request_timeout;
  while (!request.has_value()) {
    absl::StatusOr<std::optional<HttpRequest>> parsed = ParseHttpRequest(buffer, &head_size);
    if (!parsed.ok()) {
      Respond(fd, absl::IsResourceExhausted(parsed.status()) ? 431 : 400,
              parsed.status().message());
      return;
    }
    if (parsed->has_value()) {
      request = std::move(*parsed);
      break;
    }
    int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    pollfd p{fd, POLLIN, 0};
    if (wait_ms <= 0 || poll(&p, 1, wait_ms) <= 0) {
      Respond(fd, 408, "timed out waiting for the request");
      return;
    }
    char chunk[4096];
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      return;
    }
    buffer.append(chunk, static_cast<size_t>(n));
  }
  std::string initial = buffer.substr(head_size);
  if (request->method != "GET" && request->method != "POST") {
    Respond(fd, 405, "only GET and POST are served", {{"Allow", "GET, POST"}});
    return;
  }
  std::string kind, token;
  for (const char* prefix : {"/exec/", "/attach/", "/portforward/"}) {
    if (absl::StartsWith(request->path, prefix)) {
      kind = std::string(prefix).substr(1, std::string(prefix).size() - 2);
      token = request->path.substr(std::string(prefix).size());
    }
  }
  if (kind.empty() || !IsTokenText(token)) {
    Respond(fd, 404, "404 page not found");
    return;
  }
  std::optional<StreamRequest> cached = tokens_.Consume(token);
  if (!cached.has_value()) {
    Respond(fd, 404, "unknown or expired streaming token");
    return;
  }
  bool is_exec = std::holds_alternative<runtime::v1::ExecRequest>(*cached);
  bool is_attach = std::holds_alternative<runtime::v1::AttachRequest>(*cached);
  bool is_port_forward = std::holds_alternative<runtime::v1::PortForwardRequest>(*cached);
  if ((kind == "exec" && !is_exec) || (kind == "attach" && !is_attach) ||
      (kind == "portforward" && !is_port_forward)) {
    Respond(fd, 400, "the token was issued for another kind of request");
    return;
  }
  bool upgrade = request->HeaderHasToken("connection", "upgrade");
  std::string upgrade_to = absl::AsciiStrToLower(request->Header("upgrade"));
  RemoteCommand command;
  if (is_exec) {
    const auto& r = std::get<runtime::v1::ExecRequest>(*cached);
    command.container_id = r.container_id();
    command.cmd.assign(r.cmd().begin(), r.cmd().end());
    command.with_stdin = r.stdin();
    command.with_stdout = r.stdout();
    command.with_stderr = r.stderr();
    command.tty = r.tty();
  } else if (is_attach) {
    const auto& r = std::get<runtime::v1::AttachRequest>(*cached);
    command.attach = true;
    command.container_id = r.container_id();
    command.with_stdin = r.stdin();
    command.with_stdout = r.stdout();
    command.with_stderr = r.stderr();
    command.tty = r.tty();
  }

  if (upgrade && upgrade_to == "websocket") {
    if (is_port_forward) {
      Respond(fd, 400, "port forwarding is served over SPDY only");
      return;
    }
    std::string key = request->Header("sec-websocket-key");
    if (request->Header("sec-websocket-version") != "13" || key.empty()) {
      Respond(fd, 400, "bad WebSocket handshake", {{"Sec-WebSocket-Version", "13"}});
      return;
    }
    std::vector<std::string> offered = request->HeaderList("sec-websocket-protocol");
    std::string protocol = kChannelV1;
    if (!offered.empty()) {
      protocol = Negotiate(offered, WebSocketRemoteCommandProtocols());
      if (protocol.empty()) {
        Respond(fd, 400,
                absl::StrCat("requested protocol(s) are not supported: ",
                             absl::StrJoin(offered, ", ")));
        return;
      }
    }
    std::string response = absl::StrCat(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ",
        ws::AcceptKey(key), "\r\n",
        offered.empty() ? "" : absl::StrCat("Sec-WebSocket-Protocol: ", protocol, "\r\n"), "\r\n");
    if (!SendAll(fd, response).ok()) {
      return;
    }
    ServeWebSocketRemoteCommand(fd, std::move(initial), protocol, command, runtime_,
                                options_.session);
    return;
  }
  if (!upgrade || upgrade_to != "spdy/3.1") {
    Respond(fd, 400, "unable to upgrade: missing upgrade headers in request");
    return;
  }
  std::vector<std::string> offered = request->HeaderList("x-stream-protocol-version");
  if (offered.empty()) {
    Respond(fd, 400, "unable to upgrade: X-Stream-Protocol-Version is required");
    return;
  }
  const std::vector<std::string>& supported =
      is_port_forward ? SpdyPortForwardProtocols() : SpdyRemoteCommandProtocols();
  std::string protocol = Negotiate(offered, supported);
  if (protocol.empty()) {
    std::vector<std::pair<std::string, std::string>> headers;
    headers.reserve(supported.size());
    for (const std::string& p : supported) {
      headers.emplace_back("X-Accepted-Stream-Protocol-Versions", p);
    }
    Respond(fd, 403,
            absl::StrCat("unable to upgrade: unable to negotiate protocol: client supports [",
                         absl::StrJoin(offered, " "), "], server accepts [",
                         absl::StrJoin(supported, " "), "]"),
            headers);
    return;
  }
  std::string response = absl::StrCat(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
      "X-Stream-Protocol-Version: ",
      protocol, "\r\n\r\n");
  if (!SendAll(fd, response).ok()) {
    return;
  }
  if (is_port_forward) {
    ServeSpdyPortForward(fd, std::move(initial),
                         std::get<runtime::v1::PortForwardRequest>(*cached).pod_sandbox_id(),
                         runtime_, options_.session);
  } else {
    ServeSpdyRemoteCommand(fd, std::move(initial), protocol, command, runtime_, options_.session);
  }
}

absl::StatusOr<runtime::v1::ExecResponse> Server::GetExec(const runtime::v1::ExecRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateExecRequest(request));
  CRID_ASSIGN_OR_RETURN(std::string token, tokens_.Insert(request));
  runtime::v1::ExecResponse response;
  response.set_url(absl::StrCat(base_url_, "/exec/", token));
  return response;
}

absl::StatusOr<runtime::v1::AttachResponse> Server::GetAttach(
    const runtime::v1::AttachRequest& request) {
  CRID_RETURN_IF_ERROR(ValidateAttachRequest(request));
  CRID_ASSIGN_OR_RETURN(std::string token, tokens_.Insert(request));
  runtime::v1::AttachResponse response;
  response.set_url(absl::StrCat(base_url_, "/attach/", token));
  return response;
}

absl::StatusOr<runtime::v1::PortForwardResponse> Server::GetPortForward(
    const runtime::v1::PortForwardRequest& request) {
  CRID_RETURN_IF_ERROR(ValidatePortForwardRequest(request));
  CRID_ASSIGN_OR_RETURN(std::string token, tokens_.Insert(request));
  runtime::v1::PortForwardResponse response;
  response.set_url(absl::StrCat(base_url_, "/portforward/", token));
  return response;
}

}  // namespace crid::streaming
