// TLS for the streaming server. Each accepted connection is handshaken here
// and then carried as plaintext over a socketpair, so the HTTP, SPDY and
// WebSocket code serves TLS and plain clients alike: a pump thread per
// connection decrypts what the client sends and encrypts what the server
// answers, with at most one record in flight per direction.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace crid::streaming {

struct TlsFiles {
  // PEM certificate chain and its private key.
  std::string cert_file;
  std::string key_file;
  // PEM CA bundle: when set, clients must present a certificate it signed.
  std::string client_ca_file;
};

class TlsContext {
 public:
  // TLS 1.2 or newer. A missing or mismatched file is INVALID_ARGUMENT naming it.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Load(const TlsFiles& files);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Completes the handshake on `tcp` (a connected socket) by `deadline`, then
  // returns the plaintext end of a socketpair and starts `*pump`, which
  // copies until either side closes. The caller joins `*pump` after closing
  // the returned end. A failed handshake closes `tcp`.
  absl::StatusOr<UniqueFd> Wrap(UniqueFd tcp, absl::Time deadline, std::thread* pump) const;

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// The client side, for tests and tools: handshakes on `tcp` trusting only
// `ca_file` (the server certificate must verify against it and name
// `host`, an IP address or DNS name), presenting `cert_file`/`key_file` when
// set. Returns the plaintext end; `*pump` runs until either side closes.
absl::StatusOr<UniqueFd> TlsClientWrap(UniqueFd tcp, const std::string& host, const TlsFiles& files,
                                       absl::Time deadline, std::thread* pump);

}  // namespace crid::streaming
