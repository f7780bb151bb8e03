// The connections of crid's HTTP client: TCP to the first address that
// answers within a deadline, TLS on OpenSSL (the system CAs plus a registry's
// own, host or IP verification, client certificates), and reads and writes
// that wait a bounded time and never raise SIGPIPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "image/http_url.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace crid {

struct TlsSettings {
  // Neither the chain nor the name of the server's certificate is checked.
  bool skip_verify = false;
  // PEM certificates trusted besides the system's store.
  std::string extra_ca_pem;
  // A PEM client certificate (chain) and its key, presented when set.
  std::string client_cert_file;
  std::string client_key_file;
};

// An OpenSSL client context for some TlsSettings, shared with every
// connection that has the same ones: loading the system CA store takes
// milliseconds. Contexts are rebuilt after an hour, so that a changed store or
// client certificate is seen without a restart.
class TlsClientContext {
 public:
  // A bad extra CA, or a client certificate or key that is missing, unreadable
  // or mismatched, is FAILED_PRECONDITION.
  static absl::StatusOr<TlsClientContext> For(const TlsSettings& tls);
  TlsClientContext(TlsClientContext&& other) noexcept;
  TlsClientContext& operator=(TlsClientContext&& other) noexcept;
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ~TlsClientContext();

 private:
  friend class HttpConnection;
  TlsClientContext(SSL_CTX* ctx, bool verify) : ctx_(ctx), verify_(verify) {}

  SSL_CTX* ctx_;  // one reference
  bool verify_;
};

// Connects to `host`:`port`, trying its addresses in order, each but the last
// with half of the time left. Failures are "unreachable: cannot resolve ..."
// or "unreachable: cannot connect to [what]host:port ..." (UNAVAILABLE).
absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, absl::Time deadline,
                                    absl::string_view what);

// One connection, TLS on it once StartTls succeeded. Not movable: OpenSSL's
// side of it points at it.
class HttpConnection {
 public:
  explicit HttpConnection(UniqueFd fd);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection();

  int fd() const { return fd_.get(); }

  // The handshake for `url`'s host by `deadline`. A certificate that does not
  // verify is FAILED_PRECONDITION; other failures are UNAVAILABLE.
  absl::Status StartTls(const TlsClientContext& context, const HttpUrl& url, absl::Time deadline);
  // Sends all of `data`, waiting at most `stall` for each step forward.
  absl::Status Write(absl::string_view data, absl::Duration stall);
  // Up to `size` bytes, 0 at the end of the stream; UNAVAILABLE with the
  // message `timeout` when nothing came by `deadline`.
  absl::StatusOr<size_t> Read(char* buf, size_t size, absl::Time deadline,
                              absl::string_view timeout);

 private:
  // What SSL_get_error's `err` means, for a message.
  std::string TlsError(int err, int saved_errno) const;

  UniqueFd fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace crid
