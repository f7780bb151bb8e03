// Registry protocol edge cases the real docker-registry cannot be made to show:
// a scripted HTTP server on 127.0.0.1 answers with bearer challenges, redirects,
// transient failures, wrong content and dropped connections.
#include "image/registry.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "base/temp_dir.h"
#include "base/test_listener.h"
#include "config/config.h"
#include "image/digest.h"

namespace crid {
namespace {

using ::testing::HasSubstr;

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct HttpResponse {
  int status = 200;
  std::vector<std::string> headers;
  std::string body;
  size_t cut_after = std::string::npos;  // close the connection after this many body bytes
};

// One connection per request ("Connection: close"), handled in order.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<HttpResponse(const HttpRequest&)> handler)
      : handler_(std::move(handler)) {
    uint16_t port = 0;
    fd_ = ListenOnLoopback(&port);
    EXPECT_GE(fd_, 0) << "cannot listen on 127.0.0.1: " << strerror(errno);
    port_ = port;
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        return;
      }
      std::string data;
      char buf[4096];
      while (!absl::StrContains(data, "\r\n\r\n")) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) {
          break;
        }
        data.append(buf, static_cast<size_t>(n));
      }
      HttpRequest req;
      std::vector<std::string> lines =
          absl::StrSplit(data.substr(0, data.find("\r\n\r\n")), "\r\n");
      if (!lines.empty()) {
        std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
        if (first.size() >= 2) {
          req.method = first[0];
          req.path = first[1];
        }
        for (size_t i = 1; i < lines.size(); ++i) {
          size_t colon = lines[i].find(':');
          if (colon != std::string::npos) {
            std::string key = absl::AsciiStrToLower(lines[i].substr(0, colon));
            req.headers[key] = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
          }
        }
      }
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(req);
      }
      HttpResponse resp = handler_(req);
      std::string out =
          absl::StrCat("HTTP/1.1 ", resp.status, " X\r\nContent-Length: ", resp.body.size(),
                       "\r\nConnection: close\r\n");
      for (const std::string& h : resp.headers) {
        absl::StrAppend(&out, h, "\r\n");
      }
      absl::StrAppend(
          &out, "\r\n",
          resp.cut_after == std::string::npos ? resp.body : resp.body.substr(0, resp.cut_after));
      (void)!write(c, out.data(), out.size());
      close(c);
    }
  }

  std::function<HttpResponse(const HttpRequest&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

int CountFiles(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      n += e->d_name[0] != '.';
    }
    closedir(d);
  }
  return n;
}

class RegistryClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ContentStore::Open(tmp_.Sub("images"));
    ASSERT_TRUE(store.ok());
    content_ = std::move(*store);
  }
  std::unique_ptr<RegistryClient> Client(uint32_t attempts = 3) {
    config::ImageConfig config = DefaultConfig().image();
    config.set_pull_attempts(attempts);
    auto client = std::make_unique<RegistryClient>(config);
    client->set_initial_backoff(absl::Milliseconds(5));
    return client;
  }
  Reference Ref(const std::string& host) { return *ParseReference(host + "/team/app:1"); }

  TempDir tmp_;
  std::unique_ptr<ContentStore> content_;
  const std::string blob_ = std::string(100000, 'b');
  const std::string digest_ = DigestOf(std::string(100000, 'b'));
};

TEST_F(RegistryClientTest, BearerTokenFlowWithCredentialsAndCachedToken) {
  std::atomic<int> token_requests{0};
  std::string realm;
  ScriptedServer server([&](const HttpRequest& req) {
    HttpResponse r;
    if (absl::StartsWith(req.path, "/token")) {
      ++token_requests;
      // Basic crid:pw
      if (req.headers.count("authorization") == 0 ||
          req.headers.at("authorization") != "Basic Y3JpZDpwdw==" ||
          !absl::StrContains(req.path, "scope=repository%3Ateam%2Fapp%3Apull") ||
          !absl::StrContains(req.path, "service=reg")) {
        r.status = 401;
        return r;
      }
      r.body = "{\"token\":\"tok123\",\"expires_in\":300}";
      return r;
    }
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || auth->second != "Bearer tok123") {
      r.status = 401;
      r.headers.push_back("WWW-Authenticate: Bearer realm=\"" + realm +
                          "\",service=\"reg\",scope=\"repository:team/app:pull\"");
      return r;
    }
    r.body = blob_;
    return r;
  });
  realm = "http://" + server.host() + "/token";
  auto client = Client();
  RegistryAuth auth;
  auth.username = "crid";
  auth.password = "pw";
  ASSERT_TRUE(
      client->FetchBlob(Ref(server.host()), digest_, -1, auth, content_.get(), nullptr).ok());
  EXPECT_TRUE(content_->Has(digest_));
  // The second request reuses the token: no new challenge, no new token.
  auto small = client->FetchSmallBlob(Ref(server.host()), digest_, auth, 1 << 20);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(token_requests.load(), 1);

  RegistryAuth wrong;
  wrong.username = "crid";
  wrong.password = "nope";
  auto denied = Client()->FetchSmallBlob(Ref(server.host()), digest_, wrong, 1 << 20);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated) << denied.status();
}

// A registry that offers Basic and Bearer (two WWW-Authenticate headers, in
// either order) is answered with a token.
TEST_F(RegistryClientTest, StrongestOfSeveralChallengesIsAnswered) {
  for (bool bearer_first : {true, false}) {
    std::string realm;
    std::atomic<int> token_requests{0};
    ScriptedServer server([&](const HttpRequest& req) {
      HttpResponse r;
      if (absl::StartsWith(req.path, "/token")) {
        ++token_requests;
        r.body = "{\"token\":\"tok\"}";
        return r;
      }
      auto auth = req.headers.find("authorization");
      if (auth == req.headers.end() || auth->second != "Bearer tok") {
        r.status = 401;
        std::string bearer = "WWW-Authenticate: Bearer realm=\"" + realm + "\",service=\"reg\"";
        std::string basic = "WWW-Authenticate: Basic realm=\"reg\"";
        r.headers = bearer_first ? std::vector<std::string>{bearer, basic}
                                 : std::vector<std::string>{basic, bearer};
        return r;
      }
      r.body = blob_;
      return r;
    });
    realm = "http://" + server.host() + "/token";
    RegistryAuth auth;
    auth.username = "crid";
    auth.password = "pw";
    auto got = Client()->FetchSmallBlob(Ref(server.host()), digest_, auth, 1 << 20);
    EXPECT_TRUE(got.ok()) << got.status() << (bearer_first ? " (Bearer first)" : " (Basic first)");
    EXPECT_EQ(token_requests.load(), 1);
  }
  EXPECT_EQ(StrongestChallenge({"Basic realm=\"a\"", "Bearer realm=\"b\""}).first, "bearer");
  EXPECT_EQ(StrongestChallenge({"Negotiate", "Basic realm=\"a\""}).first, "basic");
  EXPECT_EQ(StrongestChallenge({}).first, "");
}

TEST_F(RegistryClientTest, RegistryTokenIsSentAsIs) {
  ScriptedServer server([&](const HttpRequest& req) {
    HttpResponse r;
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || auth->second != "Bearer given") {
      r.status = 403;
      return r;
    }
    r.body = blob_;
    return r;
  });
  RegistryAuth auth;
  auth.registry_token = "given";
  EXPECT_TRUE(Client()->FetchSmallBlob(Ref(server.host()), digest_, auth, 1 << 20).ok());
  auto denied = Client()->FetchSmallBlob(Ref(server.host()), digest_, {}, 1 << 20);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status().message()), HasSubstr("team/app"));
}

TEST_F(RegistryClientTest, RetriesTransientErrorsThenSucceeds) {
  std::atomic<int> calls{0};
  ScriptedServer server([&](const HttpRequest&) {
    HttpResponse r;
    int n = ++calls;
    if (n == 1) {
      r.status = 503;
    } else if (n == 2) {
      r.status = 429;
    } else {
      r.body = blob_;
    }
    return r;
  });
  ASSERT_TRUE(
      Client(3)->FetchBlob(Ref(server.host()), digest_, 100000, {}, content_.get(), nullptr).ok());
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(RegistryClientTest, GivesUpAfterAttemptsNamingRegistryAndRepository) {
  ScriptedServer server([&](const HttpRequest&) {
    HttpResponse r;
    r.status = 429;
    return r;
  });
  absl::Status st =
      Client(2)->FetchBlob(Ref(server.host()), digest_, 100000, {}, content_.get(), nullptr);
  // 429 is retried like 503; RESOURCE_EXHAUSTED is kept for a full disk here.
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr("429"));
  EXPECT_THAT(std::string(st.message()), HasSubstr(server.host()));
  EXPECT_THAT(std::string(st.message()), HasSubstr("team/app"));
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RegistryClientTest, FollowsRedirectWithoutLeakingCredentials) {
  std::string storage;
  ScriptedServer blob_storage([&](const HttpRequest&) {
    HttpResponse r;
    r.body = blob_;
    return r;
  });
  ScriptedServer server([&](const HttpRequest& req) {
    HttpResponse r;
    if (req.headers.count("authorization") == 0) {
      r.status = 401;
      r.headers.emplace_back("WWW-Authenticate: Basic realm=\"x\"");
      return r;
    }
    r.status = 307;
    r.headers.push_back("Location: http://" + blob_storage.host() + "/bucket/blob?sig=1");
    return r;
  });
  RegistryAuth auth;
  auth.username = "u";
  auth.password = "p";
  ASSERT_TRUE(
      Client()->FetchBlob(Ref(server.host()), digest_, 100000, auth, content_.get(), nullptr).ok());
  ASSERT_EQ(blob_storage.requests().size(), 1u);
  EXPECT_EQ(blob_storage.requests()[0].headers.count("authorization"), 0u);
}

TEST_F(RegistryClientTest, WrongContentOrDroppedConnectionLeavesNoBlob) {
  ScriptedServer tampered([&](const HttpRequest&) {
    HttpResponse r;
    r.body = std::string(100000, 'X');
    return r;
  });
  absl::Status st =
      Client(1)->FetchBlob(Ref(tampered.host()), digest_, 100000, {}, content_.get(), nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  ScriptedServer dropping([&](const HttpRequest&) {
    HttpResponse r;
    r.body = blob_;
    r.cut_after = 50000;
    return r;
  });
  st = Client(2)->FetchBlob(Ref(dropping.host()), digest_, 100000, {}, content_.get(), nullptr);
  EXPECT_FALSE(st.ok());
  ScriptedServer oversized([&](const HttpRequest&) {
    HttpResponse r;
    r.body = blob_ + "more";
    return r;
  });
  st = Client(1)->FetchBlob(Ref(oversized.host()), digest_, 100000, {}, content_.get(), nullptr);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(content_->Has(digest_));
  EXPECT_EQ(CountFiles(tmp_.Sub("images/ingest")), 0);
  EXPECT_EQ(CountFiles(tmp_.Sub("images/blobs/sha256")), 0);
}

TEST_F(RegistryClientTest, ManifestByDigestMustMatchAndSizeIsLimited) {
  std::string manifest = "{\"schemaVersion\":2}";
  ScriptedServer server([&](const HttpRequest& req) {
    HttpResponse r;
    r.headers.emplace_back("Content-Type: application/vnd.oci.image.manifest.v1+json");
    r.body = absl::StrContains(req.path, "huge") ? std::string(10000, ' ') + manifest : manifest;
    return r;
  });
  auto ok = Client()->FetchManifest(Ref(server.host()), DigestOf(manifest), {}, 1 << 20);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->media_type, "application/vnd.oci.image.manifest.v1+json");
  auto wrong = Client(1)->FetchManifest(Ref(server.host()), DigestOf("other"), {}, 1 << 20);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  Reference huge = *ParseReference(server.host() + "/huge/app:1");
  auto big = Client(1)->FetchManifest(huge, "1", {}, 4096);
  EXPECT_FALSE(big.ok());
}

}  // namespace
}  // namespace crid
