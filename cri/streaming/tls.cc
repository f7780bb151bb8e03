#include "cri/streaming/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace crid::streaming {

namespace {

constexpr size_t kChunk = size_t{16} * 1024;  // one TLS record

std::string OpenSslError() {
  std::string message;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!message.empty()) {
      message += "; ";
    }
    message += buf;
  }
  return message.empty() ? "unknown TLS error" : message;
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// Copies between the TLS connection and the plaintext socket until either
// side closes or fails. Both sockets are non-blocking; OpenSSL says which
// readiness it needs next (a write may need to read, and the reverse).
void Pump(SslPtr ssl, UniqueFd tcp, UniqueFd plain) {
  std::string up;    // decrypted, for the server
  std::string down;  // from the server, to encrypt
  char buf[kChunk];
  bool client_done = false;
  for (;;) {
    bool progressed = false;
    int16_t tcp_events = 0;
    int16_t plain_events = 0;
    if (up.empty() && !client_done) {
      int n = SSL_read(ssl.get(), buf, sizeof(buf));
      if (n > 0) {
        up.assign(buf, static_cast<size_t>(n));
        progressed = true;
      } else {
        int err = SSL_get_error(ssl.get(), n);
        if (err == SSL_ERROR_WANT_READ) {
          tcp_events |= POLLIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
          tcp_events |= POLLOUT;
        } else {
          // close_notify or a dead connection: the server sees EOF.
          client_done = true;
          shutdown(plain.get(), SHUT_WR);
        }
      }
    }
    if (!up.empty()) {
      ssize_t n = write(plain.get(), up.data(), up.size());
      if (n > 0) {
        up.erase(0, static_cast<size_t>(n));
        progressed = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        plain_events |= POLLOUT;
      } else {
        return;  // the server closed the connection
      }
    }
    if (down.empty()) {
      ssize_t n = read(plain.get(), buf, sizeof(buf));
      if (n > 0) {
        down.assign(buf, static_cast<size_t>(n));
        progressed = true;
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        plain_events |= POLLIN;
      } else {
        // The server finished: tell the client, best effort.
        SSL_shutdown(ssl.get());
        return;
      }
    }
    if (!down.empty()) {
      int n = SSL_write(ssl.get(), down.data(), static_cast<int>(down.size()));
      if (n > 0) {
        down.erase(0, static_cast<size_t>(n));
        progressed = true;
      } else {
        int err = SSL_get_error(ssl.get(), n);
        if (err == SSL_ERROR_WANT_WRITE) {
          tcp_events |= POLLOUT;
        } else if (err == SSL_ERROR_WANT_READ) {
          tcp_events |= POLLIN;
        } else {
          return;  // the client is gone
        }
      }
    }
    if (progressed) {
      continue;
    }
    pollfd p[2] = {{tcp.get(), tcp_events, 0}, {plain.get(), plain_events, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) {
      return;
    }
    if ((p[0].revents & (POLLERR | POLLNVAL)) != 0 || (p[1].revents & (POLLERR | POLLNVAL)) != 0) {
      return;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Load(const TlsFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("TLS context: ", OpenSslError()));
  }
  std::unique_ptr<TlsContext> context(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert_file ", files.cert_file, ": ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key_file ", files.key_file, ": ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_key_file ", files.key_file, " does not match tls_cert_file ", files.cert_file));
  }
  if (!files.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, files.client_ca_file.c_str(), nullptr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_client_ca_file ", files.client_ca_file, ": ", OpenSslError()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

namespace {

// Handshakes `ssl` on the non-blocking `tcp`, then hands both to a pump.
absl::StatusOr<UniqueFd> Handshake(SslPtr ssl, UniqueFd tcp, absl::Time deadline, bool server,
                                   std::thread* pump) {
  for (;;) {
    int rc = server ? SSL_accept(ssl.get()) : SSL_connect(ssl.get());
    if (rc == 1) {
      break;
    }
    int err = SSL_get_error(ssl.get(), rc);
    int16_t events = err == SSL_ERROR_WANT_READ    ? POLLIN
                     : err == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                   : 0;
    if (events == 0) {
      return absl::UnauthenticatedError(absl::StrCat("TLS handshake: ", OpenSslError()));
    }
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{tcp.get(), events, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60'000))) == 0) {
      return absl::DeadlineExceededError("TLS handshake: timed out");
    }
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError(errno, "socketpair");
  }
  UniqueFd plain_end(pair[0]);
  UniqueFd pump_end(pair[1]);
  SetNonBlocking(pump_end.get());
  *pump = std::thread(Pump, std::move(ssl), std::move(tcp), std::move(pump_end));
  return plain_end;
}

}  // namespace

absl::StatusOr<UniqueFd> TlsContext::Wrap(UniqueFd tcp, absl::Time deadline,
                                          std::thread* pump) const {
  SslPtr ssl(SSL_new(ctx_));
  if (ssl == nullptr) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslError()));
  }
  SetNonBlocking(tcp.get());
  SSL_set_fd(ssl.get(), tcp.get());
  return Handshake(std::move(ssl), std::move(tcp), deadline, /*server=*/true, pump);
}

absl::StatusOr<UniqueFd> TlsClientWrap(UniqueFd tcp, const std::string& host, const TlsFiles& files,
                                       absl::Time deadline, std::thread* pump) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("TLS context: ", OpenSslError()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_load_verify_locations(ctx.get(), files.client_ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CA file ", files.client_ca_file, ": ", OpenSslError()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!files.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    return absl::InvalidArgumentError(absl::StrCat("client certificate: ", OpenSslError()));
  }
  SslPtr ssl(SSL_new(ctx.get()));  // holds its own reference to the context
  if (ssl == nullptr) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslError()));
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  SetNonBlocking(tcp.get());
  SSL_set_fd(ssl.get(), tcp.get());
  return Handshake(std::move(ssl), std::move(tcp), deadline, /*server=*/false, pump);
}

}  // namespace crid::streaming
