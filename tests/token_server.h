// A registry token server for tests, as the distribution token-auth spec
// describes it: GET /token?service=..&scope=.. on 127.0.0.1 with optional Basic
// credentials answers {"token": JWT}, the JWT signed (RS256) with a key whose
// self-signed certificate travels in the x5c header and is the docker-registry's
// `rootcertbundle`. Holders of the password get the scopes they ask for,
// anonymous clients a token with no access, a wrong password 401.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/temp_dir.h"

namespace crid {

class TokenServer {
 public:
  static constexpr char kService[] = "crid-test-registry";
  static constexpr char kIssuer[] = "crid-test-issuer";

  TokenServer(std::string user, std::string password);
  ~TokenServer();
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  absl::Status Start();
  // "http://127.0.0.1:PORT/token"
  const std::string& realm() const { return realm_; }
  // The PEM certificate docker-registry trusts for tokens.
  std::string cert_path() const { return tmp_.Sub("token.crt"); }

  // A signed token for `actions` ("pull", "push") on `repository`, as the
  // server would hand out, expiring `lifetime_seconds` from now.
  std::string Mint(const std::string& subject, const std::string& repository,
                   const std::vector<std::string>& actions, int64_t lifetime_seconds = 300);

  // From now on the tokens handed out are already expired for the registry
  // while their answer still promises 300 s: the registry refuses them.
  void set_hand_out_expired(bool v) { hand_out_expired_ = v; }
  // Each answer waits this long first (a slow identity provider).
  void set_answer_delay_ms(int ms) { answer_delay_ms_ = ms; }

  // Token requests answered, and the user names they carried ("" when anonymous).
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve();
  void Answer(int fd);

  TempDir tmp_;
  std::string user_;
  std::string password_;
  std::string realm_;
  std::string cert_der_base64_;
  void* key_ = nullptr;  // EVP_PKEY
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> hand_out_expired_{false};
  std::atomic<int> answer_delay_ms_{0};
  mutable absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> serial_{0};
};

}  // namespace crid
