// The HTTP client against small servers in this process on 127.0.0.1: plain
// and TLS (certificates made here with OpenSSL), a proxy that forwards
// absolute-URI requests and CONNECT tunnels, and servers that misbehave.
// SIGPIPE keeps its default action here: a write to a server that hung up must
// come back as an error, not kill the test.
#include "image/http_client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/fs.h"
#include "base/temp_dir.h"
#include "base/test_listener.h"
#include "image/http_test_collect.h"

namespace crid {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---- certificates -------------------------------------------------------

struct Credential {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string cert_pem;
  std::string key_pem;
};

std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A P-256 key and a certificate for it, signed by `issuer` (self-signed when null).
Credential MakeCredential(const char* cn, const char* san, const Credential* issuer) {
  static std::atomic<long> serial{1};
  Credential out;
  out.key = EVP_EC_gen("P-256");
  out.cert = X509_new();
  X509_set_version(out.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(out.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(out.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(out.cert), 86400);
  X509_set_pubkey(out.cert, out.key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(out.cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer->cert : out.cert;
  X509_set_issuer_name(out.cert, X509_get_subject_name(signer));
  if (issuer == nullptr) {
    AddExtension(out.cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(out.cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(out.cert, signer, NID_basic_constraints, "CA:FALSE");
    AddExtension(out.cert, signer, NID_subject_alt_name, san);
  }
  AddExtension(out.cert, signer, NID_subject_key_identifier, "hash");
  X509_sign(out.cert, issuer != nullptr ? issuer->key : out.key, EVP_sha256());
  out.cert_pem = ToPem(out.cert);
  out.key_pem = ToPem(out.key);
  return out;
}

// A server context with `server`'s credential; with `client_ca`, clients must
// present a certificate it signed.
SSL_CTX* ServerContext(const Credential& server, const Credential* client_ca) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(ctx, server.cert);
  SSL_CTX_use_PrivateKey(ctx, server.key);
  if (client_ca != nullptr) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), client_ca->cert);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

// ---- servers ------------------------------------------------------------

// One accepted connection, blocking, plain or TLS.
class ServerConn {
 public:
  ServerConn(int fd, SSL* ssl, std::function<void(std::string)> record)
      : fd_(fd), ssl_(ssl), record_(std::move(record)) {}
  int fd() const { return fd_; }
  ssize_t ReadSome(char* buf, size_t size) {
    if (ssl_ != nullptr) {
      int n = SSL_read(ssl_, buf, static_cast<int>(size));
      return n > 0 ? n : 0;
    }
    return recv(fd_, buf, size, 0);
  }
  bool Write(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ssl_ != nullptr ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                                  : send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // The request head and, with a Content-Length, its body; recorded.
  std::string ReadRequest() {
    std::string data;
    char buf[4096];
    while (!absl::StrContains(data, "\r\n\r\n")) {
      ssize_t n = ReadSome(buf, sizeof(buf));
      if (n <= 0) {
        return data;
      }
      data.append(buf, static_cast<size_t>(n));
    }
    size_t head_end = data.find("\r\n\r\n") + 4;
    size_t length = 0;
    for (absl::string_view line : absl::StrSplit(data.substr(0, head_end), "\r\n")) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        (void)absl::SimpleAtoi(line.substr(15), &length);
      }
    }
    while (data.size() < head_end + length) {
      ssize_t n = ReadSome(buf, sizeof(buf));
      if (n <= 0) {
        break;
      }
      data.append(buf, static_cast<size_t>(n));
    }
    record_(data);
    return data;
  }
  // Until the client closes (or the socket's receive timeout).
  void AwaitClose() {
    char buf[4096];
    while (ReadSome(buf, sizeof(buf)) > 0) {
    }
  }

 private:
  int fd_;
  SSL* ssl_;
  std::function<void(std::string)> record_;
};

// Serves each connection to 127.0.0.1:port() with `serve`, one at a time.
// SIGPIPE is blocked on its thread only.
class TestServer {
 public:
  explicit TestServer(std::function<void(ServerConn&)> serve, SSL_CTX* tls = nullptr)
      : serve_(std::move(serve)), tls_(tls) {
    uint16_t port = 0;
    fd_ = ListenOnLoopback(&port);
    EXPECT_GE(fd_, 0) << "cannot listen on 127.0.0.1: " << strerror(errno);
    port_ = port;
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    if (tls_ != nullptr) {
      SSL_CTX_free(tls_);
    }
  }
  uint16_t port() const { return port_; }
  std::string Url(absl::string_view path, absl::string_view host = "127.0.0.1") const {
    return absl::StrCat(tls_ != nullptr ? "https" : "http", "://", host, ":", port_, path);
  }
  std::vector<std::string> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int connections() const { return connections_; }
  int failed_handshakes() const { return failed_handshakes_; }

 private:
  void Serve() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      ++connections_;
      timeval timeout{10, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      SSL* ssl = nullptr;
      if (tls_ != nullptr) {
        ssl = SSL_new(tls_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) != 1) {
          ++failed_handshakes_;
          ERR_clear_error();
          SSL_free(ssl);
          close(c);
          continue;
        }
      }
      ServerConn conn(c, ssl, [this](std::string request) {
        absl::MutexLock lock(&mu_);
        requests_.push_back(std::move(request));
      });
      serve_(conn);
      if (ssl != nullptr) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
        ERR_clear_error();
      }
      close(c);
    }
  }

  std::function<void(ServerConn&)> serve_;
  SSL_CTX* tls_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  std::atomic<int> failed_handshakes_{0};
  absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

// Reads the request, sends `answer`, closes.
std::function<void(ServerConn&)> Answer(const std::string& answer) {
  return [answer](ServerConn& c) {
    c.ReadRequest();
    c.Write(answer);
  };
}

// Reads the request, sends `answer`, and keeps the connection open until the
// client closes it.
std::function<void(ServerConn&)> AnswerAndHold(const std::string& answer) {
  return [answer](ServerConn& c) {
    c.ReadRequest();
    c.Write(answer);
    c.AwaitClose();
  };
}

int ConnectTo(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(host_port.substr(colon + 1), &port)) {
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Copies both ways until either side closes.
void Relay(int a, int b) {
  char buf[16384];
  for (;;) {
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (poll(p, 2, 10000) <= 0) {
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      ssize_t n = recv(p[i].fd, buf, sizeof(buf), 0);
      if (n <= 0 || send(p[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
        return;
      }
    }
  }
}

// A forward proxy: "GET http://host:port/..." is passed on as it came,
// "CONNECT host:port" opens a tunnel.
void Proxy(ServerConn& c) {
  std::string request = c.ReadRequest();
  std::vector<std::string> first = absl::StrSplit(request.substr(0, request.find("\r\n")), ' ');
  if (first.size() != 3) {
    return;
  }
  std::string target = first[1];
  bool tunnel = first[0] == "CONNECT";
  if (!tunnel) {
    absl::string_view rest = target;
    if (!absl::ConsumePrefix(&rest, "http://")) {
      c.Write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    target = std::string(rest.substr(0, rest.find('/')));
  }
  int upstream = ConnectTo(target);
  if (upstream < 0) {
    c.Write("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  if (tunnel) {
    c.Write("HTTP/1.1 200 Connection established\r\n\r\n");
  } else {
    send(upstream, request.data(), request.size(), MSG_NOSIGNAL);
  }
  Relay(c.fd(), upstream);
  close(upstream);
}

// ---- the client's side --------------------------------------------------

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new Credential(MakeCredential("crid test CA", nullptr, nullptr));
    server_ = new Credential(MakeCredential("server", "IP:127.0.0.1", ca_));
    client_ = new Credential(MakeCredential("client", "DNS:client", ca_));
  }

  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("client.crt"), client_->cert_pem, 0644).ok());
    ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("client.key"), client_->key_pem, 0600).ok());
  }

  static HttpOptions Options() {
    HttpOptions options;
    options.user_agent = "crid-test";
    options.connect_timeout = absl::Seconds(5);
    options.stall_timeout = absl::Seconds(5);
    return options;
  }
  static HttpOptions Trusting() {
    HttpOptions options = Options();
    options.tls.extra_ca_pem = ca_->cert_pem;
    return options;
  }
  static absl::StatusOr<int> Get(const std::string& url, Collect* out,
                                 const HttpOptions& options = Options(),
                                 std::vector<std::string> headers = {}) {
    HttpRequest request;
    request.url = url;
    request.headers = std::move(headers);
    return HttpFetch(request, options, out);
  }

  static SSL_CTX* TlsServer(const Credential* client_ca = nullptr) {
    return ServerContext(*server_, client_ca);
  }

  static Credential* ca_;
  static Credential* server_;
  static Credential* client_;
  TempDir tmp_;
};

Credential* HttpClientTest::ca_ = nullptr;
Credential* HttpClientTest::server_ = nullptr;
Credential* HttpClientTest::client_ = nullptr;

TEST_F(HttpClientTest, ContentLengthBodyWithoutWaitingForTheClose) {
  TestServer server(
      AnswerAndHold("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/x\r\n\r\nhello"));
  Collect got;
  auto status = Get(server.Url("/v2/a?x=1"), &got, Options(), {"Accept: text/x", "X-Custom: 1"});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(got.body, "hello");
  EXPECT_THAT(got.headers, Contains("Content-Type: text/x"));
  ASSERT_EQ(server.requests().size(), 1u);
  std::string request = server.requests()[0];
  EXPECT_THAT(request, StartsWith("GET /v2/a?x=1 HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr(absl::StrCat("\r\nHost: 127.0.0.1:", server.port(), "\r\n")));
  EXPECT_THAT(request, HasSubstr("\r\nUser-Agent: crid-test\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\nAccept: text/x\r\n"));
  EXPECT_THAT(request, Not(HasSubstr("*/*")));
  EXPECT_THAT(request, HasSubstr("\r\nX-Custom: 1\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\nConnection: close\r\n"));
}

TEST_F(HttpClientTest, ChunkedBodyArrivingInPieces) {
  TestServer server([](ServerConn& c) {
    c.ReadRequest();
    std::string answer =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\nhello\r\n1;a;b=\"c\"\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for (char ch : answer) {
      c.Write(std::string(1, ch));
    }
    c.AwaitClose();
  });
  Collect got;
  auto status = Get(server.Url("/"), &got);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "hello world");
  EXPECT_THAT(got.headers, Not(Contains("X-Trailer: 1")));
}

TEST_F(HttpClientTest, BodyUntilTheServerCloses) {
  TestServer server(
      Answer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(100000, 'z')));
  Collect got;
  auto status = Get(server.Url("/"), &got);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, std::string(100000, 'z'));
}

TEST_F(HttpClientTest, HeadNoContentAndNotModifiedEndWithTheirHead) {
  // The servers keep the connection open: a client that waited for a body
  // would stall.
  HttpOptions options = Options();
  options.stall_timeout = absl::Seconds(2);
  TestServer head(AnswerAndHold("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"));
  HttpRequest request;
  request.method = "HEAD";
  request.url = head.Url("/");
  Collect got;
  auto status = HttpFetch(request, options, &got);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_THAT(head.requests()[0], StartsWith("HEAD / HTTP/1.1"));
  for (int code : {204, 304}) {
    TestServer server(
        AnswerAndHold(absl::StrCat("HTTP/1.1 ", code, " X\r\nContent-Length: 3\r\n\r\n")));
    Collect empty;
    status = Get(server.Url("/"), &empty, options);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(*status, code);
    EXPECT_EQ(empty.body, "");
  }
}

TEST_F(HttpClientTest, PostSendsItsBodyWithItsLength) {
  TestServer server(Answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  HttpRequest request;
  request.method = "POST";
  request.url = server.Url("/token");
  request.body = "grant_type=refresh_token&x=1";
  request.headers = {"Content-Type: application/x-www-form-urlencoded"};
  Collect got;
  ASSERT_TRUE(HttpFetch(request, Options(), &got).ok());
  std::string sent = server.requests()[0];
  EXPECT_THAT(sent, StartsWith("POST /token HTTP/1.1\r\n"));
  EXPECT_THAT(sent, HasSubstr("\r\nContent-Length: 28\r\n"));
  EXPECT_THAT(sent, HasSubstr("\r\n\r\ngrant_type=refresh_token&x=1"));
}

TEST_F(HttpClientTest, RedirectsRelativeAndAbsoluteKeepAuthorizationOnItsOrigin) {
  TestServer storage(Answer("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nblob"));
  std::string storage_url = storage.Url("/bucket/blob?sig=1");
  TestServer registry([&](ServerConn& c) {
    std::string request = c.ReadRequest();
    if (absl::StartsWith(request, "GET /v2/start ")) {
      c.Write("HTTP/1.1 301 Moved\r\nLocation: ../v2/./next\r\nContent-Length: 7\r\n\r\nignored");
    } else if (absl::StartsWith(request, "GET /v2/next ")) {
      c.Write("HTTP/1.1 307 Temporary\r\nLocation: " + storage_url + "\r\n\r\n");
    }
  });
  Collect got;
  auto status = Get(registry.Url("/v2/start"), &got, Options(),
                    {"Authorization: Bearer secret", "Accept: application/x"});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(got.body, "blob");  // not the redirect's body
  EXPECT_THAT(got.headers, Contains(StartsWith("HTTP/1.1 301")));
  EXPECT_THAT(got.headers, Contains(StartsWith("HTTP/1.1 307")));
  EXPECT_EQ(got.headers.back(), "Content-Length: 4");
  ASSERT_EQ(registry.requests().size(), 2u);
  // The same origin gets the token again; the storage host does not.
  EXPECT_THAT(registry.requests()[1], HasSubstr("Authorization: Bearer secret"));
  ASSERT_EQ(storage.requests().size(), 1u);
  EXPECT_THAT(storage.requests()[0], StartsWith("GET /bucket/blob?sig=1 HTTP/1.1"));
  EXPECT_THAT(storage.requests()[0], Not(HasSubstr("Authorization")));
  EXPECT_THAT(storage.requests()[0], HasSubstr("Accept: application/x"));
}

TEST_F(HttpClientTest, SeeOtherTurnsAPostIntoAGet) {
  TestServer server([](ServerConn& c) {
    std::string request = c.ReadRequest();
    if (absl::StartsWith(request, "POST ")) {
      c.Write("HTTP/1.1 303 See Other\r\nLocation: /result\r\nContent-Length: 0\r\n\r\n");
    } else {
      c.Write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    }
  });
  HttpRequest request;
  request.method = "POST";
  request.url = server.Url("/form");
  request.body = "a=1";
  Collect got;
  auto status = HttpFetch(request, Options(), &got);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "done");
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_THAT(server.requests()[1], StartsWith("GET /result HTTP/1.1"));
  EXPECT_THAT(server.requests()[1], Not(HasSubstr("Content-Length")));
}

TEST_F(HttpClientTest, RedirectLoopsAndOtherProtocolsAreRefused) {
  TestServer loop(Answer("HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n"));
  Collect got;
  auto status = Get(loop.Url("/"), &got);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("redirects"));
  EXPECT_EQ(loop.connections(), 6);  // the first request and five redirects
  TestServer elsewhere(Answer("HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\n\r\n"));
  status = Get(elsewhere.Url("/"), &got);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("unsupported protocol"));
  // A redirect without a Location is the answer.
  TestServer nowhere(Answer("HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"));
  status = Get(nowhere.Url("/"), &got);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 302);
}

TEST_F(HttpClientTest, MalformedAndTruncatedAnswersAreUnavailable) {
  for (const std::string& answer :
       {absl::StrCat("HTTP/1.1 200 OK\r\nX: ", std::string(70000, 'h'), "\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 1O\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        std::string("garbage\r\n\r\n"), std::string("")}) {
    TestServer server(Answer(answer));
    Collect got;
    auto status = Get(server.Url("/"), &got);
    EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << answer.substr(0, 60);
  }
}

TEST_F(HttpClientTest, StalledTransferFailsAfterTheStallTimeout) {
  TestServer server(AnswerAndHold("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  HttpOptions options = Options();
  options.stall_timeout = absl::Seconds(1);
  Collect got;
  absl::Time start = absl::Now();
  auto status = Get(server.Url("/"), &got, options);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("no data received for 1s"));
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(4));
  EXPECT_EQ(got.body, "abc");
}

TEST_F(HttpClientTest, RefusedConnectionIsUnreachable) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);  // nothing listens there now
  int port = ntohs(addr.sin_port);
  Collect got;
  auto status = Get(absl::StrCat("http://127.0.0.1:", port, "/"), &got);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(
      status.status().message(),
      absl::StrCat("unreachable: cannot connect to 127.0.0.1:", port, ": Connection refused"));
}

TEST_F(HttpClientTest, TlsVerifiesTheChainAndTheName) {
  TestServer server(Answer("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"), TlsServer());
  Collect got;
  // Not in the system store.
  auto status = Get(server.Url("/"), &got);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("certificate verify failed"));
  // Trusted, and the certificate names 127.0.0.1.
  status = Get(server.Url("/"), &got, Trusting());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "secret");
  // Trusted, but it does not name "localhost".
  status = Get(server.Url("/", "localhost"), &got, Trusting());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("mismatch"));
  // Not checked at all.
  HttpOptions insecure = Options();
  insecure.tls.skip_verify = true;
  got.body.clear();
  status = Get(server.Url("/", "localhost"), &got, insecure);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "secret");
}

TEST_F(HttpClientTest, ExtraCaThatIsNotPemIsAFailedPrecondition) {
  HttpOptions options = Options();
  options.tls.extra_ca_pem = "not a certificate";
  Collect got;
  auto status = Get("https://127.0.0.1:1/", &got, options);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kFailedPrecondition) << status.status();
}

TEST_F(HttpClientTest, ClientCertificateForAServerThatRequiresOne) {
  TestServer server(Answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nin"), TlsServer(ca_));
  Collect got;
  auto status = Get(server.Url("/"), &got, Trusting());
  EXPECT_FALSE(status.ok());
  HttpOptions with_cert = Trusting();
  with_cert.tls.client_cert_file = tmp_.Sub("client.crt");
  with_cert.tls.client_key_file = tmp_.Sub("client.key");
  status = Get(server.Url("/"), &got, with_cert);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "in");
  // A key that is missing or does not match is the configuration's fault.
  HttpOptions missing = with_cert;
  missing.tls.client_key_file = tmp_.Sub("absent.key");
  EXPECT_EQ(Get(server.Url("/"), &got, missing).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Credential other = MakeCredential("other", "DNS:other", ca_);
  ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("other.key"), other.key_pem, 0600).ok());
  HttpOptions mismatched = with_cert;
  mismatched.tls.client_key_file = tmp_.Sub("other.key");
  EXPECT_EQ(Get(server.Url("/"), &got, mismatched).status().code(),
            absl::StatusCode::kFailedPrecondition);
  X509_free(other.cert);
  EVP_PKEY_free(other.key);
}

TEST_F(HttpClientTest, HttpGoesThroughTheProxyAsAnAbsoluteUri) {
  TestServer origin(Answer("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied"));
  TestServer proxy(Proxy);
  HttpOptions options = Options();
  options.proxy.http_proxy = absl::StrCat("http://user:p%40ss@127.0.0.1:", proxy.port());
  Collect got;
  auto status = Get(origin.Url("/v2/x?y=1"), &got, options);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "proxied");
  ASSERT_EQ(proxy.requests().size(), 1u);
  EXPECT_THAT(proxy.requests()[0],
              StartsWith(absl::StrCat("GET ", origin.Url("/v2/x?y=1"), " HTTP/1.1\r\n")));
  // "user:p@ss"
  EXPECT_THAT(proxy.requests()[0], HasSubstr("\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n"));
}

TEST_F(HttpClientTest, HttpsGoesThroughAConnectTunnel) {
  TestServer origin(Answer("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ntunneled"), TlsServer());
  TestServer proxy(Proxy);
  HttpOptions options = Trusting();
  options.proxy.https_proxy = absl::StrCat("127.0.0.1:", proxy.port());
  options.proxy.http_proxy = "http://127.0.0.1:1";  // for http only
  Collect got;
  auto status = Get(origin.Url("/"), &got, options);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "tunneled");
  ASSERT_EQ(proxy.requests().size(), 1u);
  EXPECT_THAT(proxy.requests()[0],
              StartsWith(absl::StrCat("CONNECT 127.0.0.1:", origin.port(), " HTTP/1.1\r\n")));
  // The proxy saw the handshake, not the request.
  EXPECT_EQ(origin.requests().size(), 1u);
}

TEST_F(HttpClientTest, ProxyThatRefusesTheTunnelIsAnError) {
  TestServer origin(Answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), TlsServer());
  TestServer proxy(Answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"));
  HttpOptions options = Trusting();
  options.proxy.https_proxy = absl::StrCat("127.0.0.1:", proxy.port());
  Collect got;
  auto status = Get(origin.Url("/"), &got, options);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
  EXPECT_THAT(std::string(status.status().message()), HasSubstr("refused CONNECT"));
  EXPECT_EQ(origin.connections(), 0);
}

TEST_F(HttpClientTest, NoProxyHostsGoDirectAndOthersFailFast) {
  // As docs/conformance.md runs crid: proxies on a closed loopback port and
  // no_proxy=127.0.0.1.
  TestServer origin(Answer("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ndirect"));
  HttpOptions options = Options();
  options.proxy.http_proxy = "http://127.0.0.1:1";
  options.proxy.https_proxy = "http://127.0.0.1:1";
  options.proxy.no_proxy = "127.0.0.1";
  Collect got;
  auto status = Get(origin.Url("/"), &got, options);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(got.body, "direct");
  status = Get(origin.Url("/", "localhost"), &got, options);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.status().message()),
              StartsWith("unreachable: cannot connect to proxy 127.0.0.1:1: Connection refused"));
}

TEST_F(HttpClientTest, ProxiesComeFromTheEnvironmentAsLibcurlReadsIt) {
  const char* names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                         "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  std::vector<std::optional<std::string>> saved;
  for (const char* name : names) {
    const char* value = getenv(name);
    saved.push_back(value != nullptr ? std::optional<std::string>(value) : std::nullopt);
    unsetenv(name);
  }
  setenv("HTTP_PROXY", "http://upper:1", 1);
  setenv("HTTPS_PROXY", "http://secure:2", 1);
  setenv("NO_PROXY", "internal", 1);
  ProxySettings upper = ProxySettings::FromEnvironment();
  EXPECT_EQ(upper.http_proxy, "");  // HTTP_PROXY is never read
  EXPECT_EQ(upper.https_proxy, "http://secure:2");
  EXPECT_EQ(upper.no_proxy, "internal");
  setenv("http_proxy", "http://lower:3", 1);
  setenv("https_proxy", "http://lower:4", 1);
  setenv("no_proxy", "127.0.0.1", 1);
  ProxySettings lower = ProxySettings::FromEnvironment();
  EXPECT_EQ(lower.http_proxy, "http://lower:3");
  EXPECT_EQ(lower.https_proxy, "http://lower:4");
  EXPECT_EQ(lower.no_proxy, "127.0.0.1");
  for (const char* name : names) {
    unsetenv(name);
  }
  setenv("ALL_PROXY", "http://all:5", 1);
  ProxySettings all = ProxySettings::FromEnvironment();
  EXPECT_EQ(all.http_proxy, "http://all:5");
  EXPECT_EQ(all.https_proxy, "http://all:5");
  for (size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].has_value()) {
      setenv(names[i], saved[i]->c_str(), 1);
    } else {
      unsetenv(names[i]);
    }
  }
}

TEST_F(HttpClientTest, WritingToAServerThatHungUpIsAnErrorNotASignal) {
  // The servers close at once; the client keeps sending a large body into a
  // closed connection, where a plain write() would raise SIGPIPE.
  TestServer plain([](ServerConn&) {});
  TestServer tls([](ServerConn&) {}, TlsServer());
  for (const std::string& url : {plain.Url("/"), tls.Url("/")}) {
    HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.body = std::string(size_t{32} << 20, 'p');
    Collect got;
    auto status = HttpFetch(request, Trusting(), &got);
    EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << url << status.status();
  }
}

TEST_F(HttpClientTest, ConcurrentTlsExchangesShareContextsSafely) {
  TestServer server(Answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), TlsServer());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        HttpOptions options = Trusting();
        options.tls.skip_verify = (t % 2) == 1;
        Collect got;
        if (Get(server.Url("/"), &got, options).ok() && got.body == "ok") {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok, 20);
}

TEST_F(HttpClientTest, BadRequestsAreRefusedBeforeConnecting) {
  Collect got;
  EXPECT_EQ(Get("http://127.0.0.1:1/", &got, Options(), {"X: a\r\nInjected: b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("http://127.0.0.1:1/", &got, Options(), {"no colon"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("gopher://127.0.0.1:1/", &got).status().code(),
            absl::StatusCode::kFailedPrecondition);
  HttpRequest request;
  request.method = "DELETE";
  request.url = "http://127.0.0.1:1/";
  EXPECT_EQ(HttpFetch(request, Options(), &got).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crid
