#include "image/http_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errors.h"
#include "base/fs.h"

namespace crid {

namespace {

// Contexts are rebuilt after this long, so that a changed system CA store
// is seen without a restart.
constexpr absl::Duration kContextLifetime = absl::Hours(1);
constexpr size_t kMaxContexts = 16;

std::string OpenSslErrors() {
  std::string message;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    absl::StrAppend(&message, message.empty() ? "" : "; ", buf);
  }
  return message.empty() ? "unknown TLS error" : message;
}

absl::Status Unreachable(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("unreachable: ", what));
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// PEM input never prompts for a passphrase: an encrypted key is an error.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return 0; }

// Waits until `fd` is ready for `events`; false when `deadline` passed first.
absl::StatusOr<bool> WaitFor(int fd, int16_t events, absl::Time deadline) {
  for (;;) {
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
    if (rc > 0) {
      return true;  // readiness or an error: the next call says which
    }
    if (rc < 0 && errno != EINTR) {
      return ErrnoError(errno, "poll");
    }
  }
}

// A socket BIO whose writes never raise SIGPIPE: a registry that hangs up
// mid-request must not kill the process, whatever its signal disposition.
int SocketBioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* conn = static_cast<HttpConnection*>(BIO_get_data(bio));
  ssize_t n = send(conn->fd(), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int SocketBioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* conn = static_cast<HttpConnection*>(BIO_get_data(bio));
  ssize_t n = recv(conn->fd(), data, static_cast<size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

long SocketBioCtrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int SocketBioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static const BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "crid socket");
    BIO_meth_set_write(m, SocketBioWrite);
    BIO_meth_set_read(m, SocketBioRead);
    BIO_meth_set_ctrl(m, SocketBioCtrl);
    BIO_meth_set_create(m, SocketBioCreate);
    return m;
  }();
  return method;
}

// Loads PEM certificates into the context's trust store, besides the system's.
absl::Status AddTrustedCertificates(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  STACK_OF(X509_INFO)* infos =
      bio == nullptr ? nullptr : PEM_X509_INFO_read_bio(bio.get(), nullptr, NoPassphrase, nullptr);
  if (infos == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("registry CA certificates: ", OpenSslErrors()));
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509 != nullptr && X509_STORE_add_cert(store, info->x509) == 1) {
      ++added;
    }
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  if (added == 0) {
    return absl::FailedPreconditionError("registry CA certificates: no certificate in the PEM");
  }
  return absl::OkStatus();
}

absl::Status UseClientCertificate(SSL_CTX* ctx, const TlsSettings& tls, const std::string& cert,
                                  const std::string& key) {
  auto failed = [&](absl::string_view file) {
    return absl::FailedPreconditionError(
        absl::StrCat("client certificate ", file, ": ", OpenSslErrors()));
  };
  BioPtr cert_bio(BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size())));
  X509* leaf = PEM_read_bio_X509_AUX(cert_bio.get(), nullptr, NoPassphrase, nullptr);
  if (leaf == nullptr) {
    return failed(tls.client_cert_file);
  }
  int used = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (used != 1) {
    return failed(tls.client_cert_file);
  }
  // The rest of the file, if anything, is the chain up to the CA.
  while (X509* ca = PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      return failed(tls.client_cert_file);
    }
  }
  ERR_clear_error();  // the end of the PEM reads as an error
  BioPtr key_bio(BIO_new_mem_buf(key.data(), static_cast<int>(key.size())));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr);
  if (pkey == nullptr) {
    return failed(tls.client_key_file);
  }
  used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return failed(tls.client_key_file);
  }
  return absl::OkStatus();
}

absl::StatusOr<SslCtxPtr> BuildContext(const TlsSettings& tls, const std::string& cert,
                                       const std::string& key) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("TLS context: ", OpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE);
  // A server that closes without close_notify ends the stream; the HTTP
  // framing (and the digest of what was read) tells a truncated body.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (tls.skip_verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return absl::FailedPreconditionError(absl::StrCat("system CA store: ", OpenSslErrors()));
    }
    if (!tls.extra_ca_pem.empty()) {
      CRID_RETURN_IF_ERROR(AddTrustedCertificates(ctx.get(), tls.extra_ca_pem));
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  if (!tls.client_cert_file.empty()) {
    CRID_RETURN_IF_ERROR(UseClientCertificate(ctx.get(), tls, cert, key));
  }
  return ctx;
}

// Contexts by what they were built from, shared by every connection with the
// same settings: loading the system CA store takes milliseconds.
class TlsContextCache {
 public:
  absl::StatusOr<SslCtxPtr> Get(const TlsSettings& tls) {
    std::string cert;
    std::string key;
    if (!tls.client_cert_file.empty()) {
      absl::StatusOr<std::string> read = ReadFile(tls.client_cert_file);
      if (!read.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("client certificate ", read.status().message()));
      }
      cert = std::move(*read);
      read = ReadFile(tls.client_key_file);
      if (!read.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("client key ", read.status().message()));
      }
      key = std::move(*read);
    }
    std::string material;
    for (const std::string* part : {&tls.extra_ca_pem, &std::as_const(cert), &std::as_const(key)}) {
      absl::StrAppend(&material, part->size(), ":", *part, ";");
    }
    absl::StrAppend(&material, tls.skip_verify ? "insecure" : "verify");
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
    std::string id(reinterpret_cast<const char*>(digest), sizeof(digest));
    OPENSSL_cleanse(material.data(), material.size());
    absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      if (auto it = contexts_.find(id);
          it != contexts_.end() && now - it->second.built < kContextLifetime) {
        return Share(it->second.ctx.get());
      }
    }
    absl::StatusOr<SslCtxPtr> built = BuildContext(tls, cert, key);
    OPENSSL_cleanse(key.data(), key.size());
    if (!built.ok()) {
      return built.status();
    }
    absl::MutexLock lock(&mu_);
    for (auto it = contexts_.begin(); it != contexts_.end();) {
      it = now - it->second.built >= kContextLifetime ? contexts_.erase(it) : std::next(it);
    }
    if (contexts_.size() >= kMaxContexts) {
      contexts_.erase(std::min_element(
          contexts_.begin(), contexts_.end(),
          [](const auto& a, const auto& b) { return a.second.built < b.second.built; }));
    }
    SslCtxPtr shared = Share(built->get());
    contexts_[id] = Entry{std::move(*built), now};
    return shared;
  }

 private:
  struct Entry {
    SslCtxPtr ctx;
    absl::Time built;
  };
  static SslCtxPtr Share(SSL_CTX* ctx) {
    SSL_CTX_up_ref(ctx);
    return SslCtxPtr(ctx);
  }

  absl::Mutex mu_;
  std::map<std::string, Entry> contexts_ ABSL_GUARDED_BY(mu_);
};

TlsContextCache& Contexts() {
  static auto* const cache = new TlsContextCache();
  return *cache;
}

}  // namespace

absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, absl::Time deadline,
                                    absl::string_view what) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string name = absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host;
  std::string host_port = absl::StrCat(name, ":", port);
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return Unreachable(absl::StrCat("cannot resolve ", what, host, ": ",
                                    rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    char numeric[NI_MAXHOST] = "?";
    getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric), nullptr, 0, NI_NUMERICHOST);
    std::string address = numeric == host ? "" : absl::StrCat(" (", numeric, ")");
    absl::Time now = absl::Now();
    absl::Time attempt_deadline = ai->ai_next == nullptr ? deadline : now + (deadline - now) / 2;
    UniqueFd fd(socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      last_error = absl::StrCat(address, ": socket: ", std::strerror(errno));
      continue;
    }
    if (connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      return fd;
    }
    if (errno != EINPROGRESS) {
      last_error = absl::StrCat(address, ": ", std::strerror(errno));
      continue;
    }
    CRID_ASSIGN_OR_RETURN(bool ready, WaitFor(fd.get(), POLLOUT, attempt_deadline));
    if (!ready) {
      last_error = absl::StrCat(address, ": timed out");
      continue;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err == 0) {
      return fd;
    }
    last_error = absl::StrCat(address, ": ", std::strerror(err));
  }
  return Unreachable(absl::StrCat("cannot connect to ", what, host_port, last_error));
}

absl::StatusOr<TlsClientContext> TlsClientContext::For(const TlsSettings& tls) {
  CRID_ASSIGN_OR_RETURN(SslCtxPtr ctx, Contexts().Get(tls));
  return TlsClientContext(ctx.release(), !tls.skip_verify);
}

TlsClientContext::TlsClientContext(TlsClientContext&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), verify_(other.verify_) {}

TlsClientContext& TlsClientContext::operator=(TlsClientContext&& other) noexcept {
  if (this != &other) {
    SSL_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    verify_ = other.verify_;
  }
  return *this;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

HttpConnection::HttpConnection(UniqueFd fd) : fd_(std::move(fd)) {}

HttpConnection::~HttpConnection() { SSL_free(ssl_); }

std::string HttpConnection::TlsError(int err, int saved_errno) const {
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return saved_errno != 0 ? std::strerror(saved_errno) : "connection closed";
  }
  return OpenSslErrors();
}

absl::Status HttpConnection::StartTls(const TlsClientContext& context, const HttpUrl& url,
                                      absl::Time deadline) {
  bool verify = context.verify_;
  ssl_ = SSL_new(context.ctx_);
  BIO* bio = BIO_new(SocketBioMethod());
  if (ssl_ == nullptr || bio == nullptr) {
    BIO_free(bio);
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  if (IsIpAddress(url.host)) {
    // No SNI for addresses (RFC 6066); the certificate must name the address.
    if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), url.host.c_str()) != 1) {
      return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
    }
  } else if (SSL_set_tlsext_host_name(ssl_, url.host.c_str()) != 1 ||
             (verify && SSL_set1_host(ssl_, url.host.c_str()) != 1)) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  }
  std::string peer = url.HostPort();
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(ssl_);
    int saved_errno = errno;
    if (rc == 1) {
      return absl::OkStatus();
    }
    int err = SSL_get_error(ssl_, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      long result = SSL_get_verify_result(ssl_);
      if (verify && result != X509_V_OK) {
        ERR_clear_error();
        return absl::FailedPreconditionError(
            absl::StrCat("TLS handshake with ", peer,
                         ": certificate verify failed: ", X509_verify_cert_error_string(result)));
      }
      return absl::UnavailableError(
          absl::StrCat("TLS handshake with ", peer, ": ", TlsError(err, saved_errno)));
    }
    CRID_ASSIGN_OR_RETURN(bool ready,
                          WaitFor(fd(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
    if (!ready) {
      return absl::UnavailableError(absl::StrCat("TLS handshake with ", peer, ": timed out"));
    }
  }
}

absl::Status HttpConnection::Write(absl::string_view data, absl::Duration stall) {
  absl::Time deadline = absl::Now() + stall;
  while (!data.empty()) {
    int16_t events = POLLOUT;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = SSL_write_ex(ssl_, data.data(), data.size(), &n);
      int saved_errno = errno;
      if (rc == 1) {
        data.remove_prefix(n);
        deadline = absl::Now() + stall;
        continue;
      }
      int err = SSL_get_error(ssl_, rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return absl::UnavailableError(absl::StrCat("TLS send: ", TlsError(err, saved_errno)));
      }
      events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    } else {
      ssize_t n = send(fd(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data.remove_prefix(static_cast<size_t>(n));
        deadline = absl::Now() + stall;
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
      }
    }
    CRID_ASSIGN_OR_RETURN(bool ready, WaitFor(fd(), events, deadline));
    if (!ready) {
      return absl::UnavailableError(
          absl::StrCat("could not send for ", absl::FormatDuration(stall)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> HttpConnection::Read(char* buf, size_t size, absl::Time deadline,
                                            absl::string_view timeout) {
  for (;;) {
    int16_t events = POLLIN;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = SSL_read_ex(ssl_, buf, size, &n);
      int saved_errno = errno;
      if (rc == 1) {
        return n;
      }
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_ZERO_RETURN) {
        return 0;
      }
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return absl::UnavailableError(absl::StrCat("TLS receive: ", TlsError(err, saved_errno)));
      }
      events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    } else {
      ssize_t n = recv(fd(), buf, size, 0);
      if (n >= 0) {
        return static_cast<size_t>(n);
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return absl::UnavailableError(absl::StrCat("receive: ", std::strerror(errno)));
      }
    }
    CRID_ASSIGN_OR_RETURN(bool ready, WaitFor(fd(), events, deadline));
    if (!ready) {
      return absl::UnavailableError(timeout);
    }
  }
}

}  // namespace crid
