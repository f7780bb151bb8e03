#include "tests/token_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/errors.h"

namespace crid {
namespace {

std::string UrlDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int value = 0;
    if (s[i] == '%' && i + 2 < s.size() && absl::SimpleHexAtoi(s.substr(i + 1, 2), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      return;
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace

TokenServer::TokenServer(std::string user, std::string password)
    : user_(std::move(user)), password_(std::move(password)) {}

TokenServer::~TokenServer() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
  }
  if (stop_fd_ >= 0) {
    close(stop_fd_);
  }
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

absl::Status TokenServer::Start() {
  std::string cmd = absl::StrCat("cd '", tmp_.path(),
                                 "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key "
                                 "-out token.crt -days 2 -subj '/CN=crid test token issuer' "
                                 "2>/dev/null");
  if (system(cmd.c_str()) != 0) {
    return absl::FailedPreconditionError("openssl could not make the token signing key");
  }
  FILE* f = fopen(tmp_.Sub("token.key").c_str(), "re");
  if (f == nullptr) {
    return ErrnoError(errno, "open token.key");
  }
  key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  f = fopen(cert_path().c_str(), "re");
  if (f == nullptr) {
    return ErrnoError(errno, "open token.crt");
  }
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (key_ == nullptr || cert == nullptr) {
    X509_free(cert);
    return absl::InternalError("cannot read the token key or certificate");
  }
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  X509_free(cert);
  if (len <= 0) {
    return absl::InternalError("i2d_X509 failed");
  }
  cert_der_base64_ = absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);

  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    return ErrnoError(errno, "socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t addr_len = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
    return ErrnoError(errno, "listen on 127.0.0.1");
  }
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    return ErrnoError(errno, "eventfd");
  }
  realm_ = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/token");
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

std::string TokenServer::Mint(const std::string& subject, const std::string& repository,
                              const std::vector<std::string>& actions, int64_t lifetime_seconds) {
  int64_t now = absl::ToUnixSeconds(absl::Now());
  std::string header =
      absl::StrCat("{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[\"", cert_der_base64_, "\"]}");
  std::string access;
  if (!repository.empty() && !actions.empty()) {
    access = absl::StrCat("{\"type\":\"repository\",\"name\":\"", repository, "\",\"actions\":[\"",
                          absl::StrJoin(actions, "\",\""), "\"]}");
  }
  std::string claims = absl::StrCat(
      "{\"iss\":\"", kIssuer, "\",\"sub\":\"", subject, "\",\"aud\":\"", kService,
      "\",\"exp\":", now + lifetime_seconds, ",\"nbf\":", now - 10, ",\"iat\":", now - 10,
      ",\"jti\":\"", serial_.fetch_add(1), "\",\"access\":[", access, "]}");
  std::string signing_input =
      absl::StrCat(absl::WebSafeBase64Escape(header), ".", absl::WebSafeBase64Escape(claims));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t sig_len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(key_)) == 1 &&
      EVP_DigestSign(ctx, nullptr, &sig_len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) == 1) {
    sig.resize(sig_len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1) {
      sig.clear();
    }
    sig.resize(sig_len);
  }
  EVP_MD_CTX_free(ctx);
  return absl::StrCat(signing_input, ".", absl::WebSafeBase64Escape(sig));
}

void TokenServer::Serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      Answer(fd);
      close(fd);
    }
  }
}

void TokenServer::Answer(int fd) {
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string request;
  char buf[4096];
  while (!absl::StrContains(request, "\r\n\r\n") && request.size() < 65536) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      return;
    }
    request.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> lines = absl::StrSplit(request, "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  std::string target = first.size() > 1 ? first[1] : "";
  std::string user;
  std::string password;
  for (const std::string& line : lines) {
    if (absl::StartsWithIgnoreCase(line, "authorization: basic ")) {
      std::string decoded;
      if (absl::Base64Unescape(line.substr(strlen("authorization: basic ")), &decoded)) {
        user = decoded.substr(0, decoded.find(':'));
        password = absl::StrContains(decoded, ':') ? decoded.substr(decoded.find(':') + 1) : "";
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(user);
  }
  absl::SleepFor(absl::Milliseconds(answer_delay_ms_.load()));
  if (!user.empty() && (user != user_ || password != password_)) {
    SendAll(fd, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  // scope=repository:NAME:pull[,push]
  std::string repository;
  std::vector<std::string> actions;
  absl::string_view query = absl::string_view(target).substr(
      absl::StrContains(target, '?') ? target.find('?') + 1 : target.size());
  for (absl::string_view param : absl::StrSplit(query, '&')) {
    if (!absl::ConsumePrefix(&param, "scope=")) {
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(UrlDecode(param), ':');
    if (parts.size() == 3 && parts[0] == "repository") {
      repository = parts[1];
      actions = absl::StrSplit(parts[2], ',');
    }
  }
  if (user.empty()) {
    actions.clear();  // anonymous clients may see nothing private
  }
  std::string token =
      Mint(user.empty() ? "anonymous" : user, repository, actions, hand_out_expired_ ? -600 : 300);
  std::string body = absl::StrCat("{\"token\":\"", token, "\",\"expires_in\":300}");
  SendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ",
                           body.size(), "\r\nConnection: close\r\n\r\n", body));
}

}  // namespace crid
