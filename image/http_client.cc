#include "image/http_client.h"

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
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/unique_fd.h"

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
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
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

// The first address of `host` that accepts a connection by `deadline`, each
// but the last given at most half of the time left.
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

// A socket BIO whose writes never raise SIGPIPE: a registry that hangs up
// mid-request must not kill the process, whatever its signal disposition.
int SocketBioWrite(BIO* bio, const char* data, int size);
int SocketBioRead(BIO* bio, char* data, int size);

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

// One TCP connection, TLS on it once StartTls succeeded. Not movable: its
// BIO points at it.
class Connection {
 public:
  explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_.get(); }

  absl::Status StartTls(SSL_CTX* ctx, const HttpUrl& url, bool verify, absl::Time deadline);
  // Sends all of `data`, waiting at most `stall` for each step forward.
  absl::Status Write(absl::string_view data, absl::Duration stall);
  // Up to `size` bytes, 0 at the end of the stream; `timeout` is the error
  // message when nothing came by `deadline`.
  absl::StatusOr<size_t> Read(char* buf, size_t size, absl::Time deadline,
                              absl::string_view timeout);

 private:
  // What SSL_get_error's `err` means, for a message.
  std::string TlsError(int err, int saved_errno) const;

  UniqueFd fd_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

int SocketBioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* conn = static_cast<Connection*>(BIO_get_data(bio));
  ssize_t n = send(conn->fd(), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int SocketBioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  auto* conn = static_cast<Connection*>(BIO_get_data(bio));
  ssize_t n = recv(conn->fd(), data, static_cast<size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

std::string Connection::TlsError(int err, int saved_errno) const {
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return saved_errno != 0 ? std::strerror(saved_errno) : "connection closed";
  }
  return OpenSslErrors();
}

absl::Status Connection::StartTls(SSL_CTX* ctx, const HttpUrl& url, bool verify,
                                  absl::Time deadline) {
  ssl_.reset(SSL_new(ctx));
  BIO* bio = BIO_new(SocketBioMethod());
  if (ssl_ == nullptr || bio == nullptr) {
    BIO_free(bio);
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);
  if (IsIpAddress(url.host)) {
    // No SNI for addresses (RFC 6066); the certificate must name the address.
    if (verify &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), url.host.c_str()) != 1) {
      return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
    }
  } else if (SSL_set_tlsext_host_name(ssl_.get(), url.host.c_str()) != 1 ||
             (verify && SSL_set1_host(ssl_.get(), url.host.c_str()) != 1)) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  }
  std::string peer = url.HostPort();
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(ssl_.get());
    int saved_errno = errno;
    if (rc == 1) {
      return absl::OkStatus();
    }
    int err = SSL_get_error(ssl_.get(), rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      long result = SSL_get_verify_result(ssl_.get());
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

absl::Status Connection::Write(absl::string_view data, absl::Duration stall) {
  absl::Time deadline = absl::Now() + stall;
  while (!data.empty()) {
    int16_t events = POLLOUT;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = SSL_write_ex(ssl_.get(), data.data(), data.size(), &n);
      int saved_errno = errno;
      if (rc == 1) {
        data.remove_prefix(n);
        deadline = absl::Now() + stall;
        continue;
      }
      int err = SSL_get_error(ssl_.get(), rc);
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

absl::StatusOr<size_t> Connection::Read(char* buf, size_t size, absl::Time deadline,
                                        absl::string_view timeout) {
  for (;;) {
    int16_t events = POLLIN;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = SSL_read_ex(ssl_.get(), buf, size, &n);
      int saved_errno = errno;
      if (rc == 1) {
        return n;
      }
      int err = SSL_get_error(ssl_.get(), rc);
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

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// A redirect the client follows rather than hands to the caller.
bool Redirects(const HttpResponseParser& parser) {
  return parser.head_done() && IsRedirect(parser.status()) && !parser.location().empty();
}

std::string HeaderName(absl::string_view header) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.substr(0, header.find(':'))));
}

std::string BasicCredentials(const std::string& userinfo) {
  size_t colon = userinfo.find(':');
  std::string user = PercentDecode(userinfo.substr(0, colon));
  std::string password =
      colon == std::string::npos ? "" : PercentDecode(userinfo.substr(colon + 1));
  return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(user, ":", password)));
}

// Passes heads on, and the body unless it is a redirect's.
class RedirectFilter final : public HttpResponseHandler {
 public:
  explicit RedirectFilter(HttpResponseHandler* handler) : handler_(handler) {}
  void set_parser(const HttpResponseParser* parser) { parser_ = parser; }
  void OnHeader(absl::string_view line) override { handler_->OnHeader(line); }
  absl::Status OnData(absl::string_view data) override {
    return Redirects(*parser_) ? absl::OkStatus() : handler_->OnData(data);
  }

 private:
  HttpResponseHandler* handler_;
  const HttpResponseParser* parser_ = nullptr;
};

class IgnoreAnswer final : public HttpResponseHandler {
 public:
  void OnHeader(absl::string_view /*line*/) override {}
  absl::Status OnData(absl::string_view /*data*/) override { return absl::OkStatus(); }
};

// CONNECT through `proxy` to `url`'s host and port.
absl::Status OpenTunnel(Connection& conn, const HttpUrl& url, const HttpUrl& proxy,
                        const HttpOptions& options, absl::Time deadline) {
  std::string head =
      absl::StrCat("CONNECT ", url.HostPort(), " HTTP/1.1\r\nHost: ", url.HostPort(), "\r\n");
  if (!options.user_agent.empty()) {
    absl::StrAppend(&head, "User-Agent: ", options.user_agent, "\r\n");
  }
  if (!proxy.userinfo.empty()) {
    absl::StrAppend(&head, "Proxy-Authorization: ", BasicCredentials(proxy.userinfo), "\r\n");
  }
  absl::StrAppend(&head, "\r\n");
  std::string context = absl::StrCat("proxy ", proxy.HostPort());
  CRID_RETURN_IF_ERROR(
      Annotate(conn.Write(head, std::max(deadline - absl::Now(), absl::ZeroDuration())), context));
  // Byte by byte: what follows the proxy's answer is the server's, for TLS.
  IgnoreAnswer ignore;
  HttpResponseParser parser(/*head_request=*/true, &ignore);
  std::string timeout = absl::StrCat(context, ": no answer to CONNECT in time");
  while (!parser.done()) {
    char c = 0;
    CRID_ASSIGN_OR_RETURN(size_t n, conn.Read(&c, 1, deadline, timeout));
    if (n == 0) {
      return Annotate(parser.Finish(), context);
    }
    CRID_RETURN_IF_ERROR(Annotate(parser.Feed(absl::string_view(&c, 1)), context));
  }
  if (parser.status() / 100 != 2) {
    return absl::UnavailableError(
        absl::StrCat(context, " refused CONNECT to ", url.HostPort(), ": HTTP ", parser.status()));
  }
  return absl::OkStatus();
}

struct Answer {
  int status = 0;
  std::string location;  // set when it is a redirect to follow
};

// One request on a connection of its own.
absl::StatusOr<Answer> Exchange(const HttpUrl& url, const std::string& method,
                                const std::vector<std::string>& headers, const std::string& body,
                                const HttpOptions& options, HttpResponseHandler* handler) {
  absl::Time deadline = absl::Now() + options.connect_timeout;
  const std::string& proxy_spec =
      url.https() ? options.proxy.https_proxy : options.proxy.http_proxy;
  std::optional<HttpUrl> proxy;
  if (!proxy_spec.empty() && !NoProxyMatches(options.proxy.no_proxy, url.host)) {
    CRID_ASSIGN_OR_RETURN(proxy, ParseProxyUrl(proxy_spec));
  }
  SslCtxPtr ctx;
  if (url.https()) {
    CRID_ASSIGN_OR_RETURN(ctx, Contexts().Get(options.tls));
  }
  const HttpUrl& peer = proxy.has_value() ? *proxy : url;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd,
                        ConnectTcp(peer.host, peer.port, deadline, proxy ? "proxy " : ""));
  Connection conn(std::move(fd));
  if (proxy.has_value() && url.https()) {
    CRID_RETURN_IF_ERROR(OpenTunnel(conn, url, *proxy, options, deadline));
  }
  if (url.https()) {
    CRID_RETURN_IF_ERROR(conn.StartTls(ctx.get(), url, !options.tls.skip_verify, deadline));
  }

  // Through a proxy without a tunnel, the target is the absolute URI.
  bool absolute = proxy.has_value() && !url.https();
  std::string request = absl::StrCat(method, " ", absolute ? url.String() : url.target,
                                     " HTTP/1.1\r\nHost: ", url.Authority(), "\r\n");
  if (!options.user_agent.empty()) {
    absl::StrAppend(&request, "User-Agent: ", options.user_agent, "\r\n");
  }
  bool has_accept = false;
  bool has_authorization = false;
  for (const std::string& header : headers) {
    std::string name = HeaderName(header);
    has_accept |= name == "accept";
    has_authorization |= name == "authorization";
  }
  if (!has_accept) {
    request += "Accept: */*\r\n";
  }
  for (const std::string& header : headers) {
    absl::StrAppend(&request, header, "\r\n");
  }
  if (!has_authorization && !url.userinfo.empty()) {
    absl::StrAppend(&request, "Authorization: ", BasicCredentials(url.userinfo), "\r\n");
  }
  if (absolute && !proxy->userinfo.empty()) {
    absl::StrAppend(&request, "Proxy-Authorization: ", BasicCredentials(proxy->userinfo), "\r\n");
  }
  if (method == "POST") {
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&request, "Connection: close\r\n\r\n", body);
  CRID_RETURN_IF_ERROR(conn.Write(request, options.stall_timeout));

  RedirectFilter filter(handler);
  HttpResponseParser parser(method == "HEAD", &filter);
  filter.set_parser(&parser);
  std::string stalled =
      absl::StrCat("no data received for ", absl::FormatDuration(options.stall_timeout));
  char buf[16384];
  while (!parser.done() && !Redirects(parser)) {
    CRID_ASSIGN_OR_RETURN(
        size_t n, conn.Read(buf, sizeof(buf), absl::Now() + options.stall_timeout, stalled));
    if (n == 0) {
      CRID_RETURN_IF_ERROR(parser.Finish());
      break;
    }
    CRID_RETURN_IF_ERROR(parser.Feed(absl::string_view(buf, n)));
  }
  Answer answer;
  answer.status = parser.status();
  if (Redirects(parser)) {
    answer.location = parser.location();
  }
  return answer;
}

}  // namespace

ProxySettings ProxySettings::FromEnvironment() {
  auto env = [](std::initializer_list<const char*> names) -> std::string {
    for (const char* name : names) {
      if (const char* value = std::getenv(name); value != nullptr && value[0] != '\0') {
        return value;
      }
    }
    return "";
  };
  ProxySettings proxy;
  proxy.http_proxy = env({"http_proxy", "all_proxy", "ALL_PROXY"});
  proxy.https_proxy = env({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
  proxy.no_proxy = env({"no_proxy", "NO_PROXY"});
  return proxy;
}

absl::StatusOr<int> HttpFetch(const HttpRequest& request, const HttpOptions& options,
                              HttpResponseHandler* handler) {
  if (request.method != "GET" && request.method != "HEAD" && request.method != "POST") {
    return absl::InvalidArgumentError(absl::StrCat("HTTP method ", request.method));
  }
  for (const std::string& header : request.headers) {
    std::string name = HeaderName(header);
    if (name.empty() || !absl::StrContains(header, ':') ||
        absl::string_view(header).find_first_of(absl::string_view("\r\n\0", 3)) !=
            absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad request header \"", absl::CHexEscape(header), "\""));
    }
  }
  CRID_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(request.url));
  const HttpUrl origin = url;
  std::string method = request.method;
  std::string body = method == "POST" ? request.body : "";
  for (int redirects = 0;; ++redirects) {
    // Credentials stay with the origin they were given for: a registry's
    // redirect to blob storage does not take its token along.
    std::vector<std::string> headers;
    for (const std::string& header : request.headers) {
      if (url.SameOrigin(origin) || HeaderName(header) != "authorization") {
        headers.push_back(header);
      }
    }
    CRID_ASSIGN_OR_RETURN(Answer answer, Exchange(url, method, headers, body, options, handler));
    if (answer.location.empty()) {
      return answer.status;
    }
    if (redirects >= options.max_redirects) {
      return absl::FailedPreconditionError(
          absl::StrCat("more than ", options.max_redirects, " redirects"));
    }
    absl::StatusOr<HttpUrl> next = ResolveLocation(url, answer.location);
    if (!next.ok()) {
      std::string message = absl::StrCat("redirect: ", next.status().message());
      return next.status().code() == absl::StatusCode::kFailedPrecondition
                 ? absl::FailedPreconditionError(message)
                 : absl::UnavailableError(message);
    }
    if ((answer.status == 303 && method != "HEAD") ||
        ((answer.status == 301 || answer.status == 302) && method == "POST")) {
      method = "GET";  // as browsers and libcurl do
      body.clear();
    }
    url = std::move(*next);
  }
}

}  // namespace crid
