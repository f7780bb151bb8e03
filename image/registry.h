// A client for the OCI distribution API over image/http_client: endpoint selection
// (mirrors first, then the registry), TLS with system and per-registry CAs,
// anonymous, Basic and Bearer-token authentication, redirects, and retries with
// backoff on transient errors. Blobs stream into the content store and are
// verified on the way.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "image/content_store.h"
#include "image/reference.h"
#include "proto/config.pb.h"

namespace crid {

class RegistryBody;

// Credentials for one pull, as CRI's AuthConfig carries them.
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string auth;            // base64("username:password")
  std::string identity_token;  // OAuth2 refresh token for the token endpoint
  std::string registry_token;  // a bearer token to send as is
  // The registry these credentials are for ("registry.example.com", "https://index.docker.io/v1/");
  // empty: the registry the image reference names. Mirrors of it get none.
  std::string server_address;
  bool empty() const {
    return username.empty() && password.empty() && auth.empty() && identity_token.empty() &&
           registry_token.empty();
  }
  // A digest of every credential field ("" for an anonymous pull): caches of
  // tokens and Authorization headers, and shared pulls, are keyed by it, so one
  // pull never sends or profits from another's credentials.
  std::string Identity() const;
  // Whether these credentials may be sent to `host` ("host[:port]") while
  // pulling from registry `domain`.
  bool IsFor(const std::string& host, const std::string& domain) const;
};

struct FetchedManifest {
  std::string body;
  std::string media_type;  // from Content-Type
  std::string digest;      // sha256 of body
  std::string endpoint;    // the base URL that answered
};

// One place to reach a registry's API: "http://127.0.0.1:5000", "https://registry-1.docker.io".
struct RegistryEndpoint {
  std::string base_url;
  bool skip_verify = false;
  std::string host;  // host[:port] of base_url, for the certs directory
  bool mirror = false;
};

class RegistryClient {
 public:
  explicit RegistryClient(config::ImageConfig config);

  // Endpoints for a registry host, in the order they are tried.
  std::vector<RegistryEndpoint> Endpoints(const std::string& domain) const;

  // GETs the manifest `tag_or_digest` of `ref`'s repository. When it is a digest,
  // the body must hash to it. `expected_size` (-1: unknown) is the size its
  // descriptor gives: a body of another size is DATA_LOSS, and the download
  // stops at the first byte past it.
  absl::StatusOr<FetchedManifest> FetchManifest(const Reference& ref,
                                                const std::string& tag_or_digest,
                                                const RegistryAuth& auth, uint64_t max_size,
                                                int64_t expected_size = -1);

  // Downloads blob `digest` of `size` bytes into `store` (verified). `progress`
  // counts bytes received, when not null.
  absl::Status FetchBlob(const Reference& ref, const std::string& digest, int64_t size,
                         const RegistryAuth& auth, ContentStore* store,
                         std::atomic<uint64_t>* progress);

  // Small blobs (image configs) into memory, verified against the digest and
  // `expected_size` (as FetchManifest).
  absl::StatusOr<std::string> FetchSmallBlob(const Reference& ref, const std::string& digest,
                                             const RegistryAuth& auth, uint64_t max_size,
                                             int64_t expected_size = -1);

  // Overrides the backoff between attempts (tests).
  void set_initial_backoff(absl::Duration d) { initial_backoff_ = d; }

 private:
  struct Response;
  class Request;

  // Runs `attempt` on every endpoint with retries, authentication and fallback.
  absl::Status Run(const Reference& ref, const std::string& what,
                   const std::function<absl::Status(const RegistryEndpoint&, Request&)>& attempt);
  // GET with authentication: the Authorization that worked last for this
  // endpoint, scope and credential identity, then the registry's challenge
  // (Bearer token or Basic) once. Credentials go only to the host they are for.
  absl::StatusOr<Response> GetWithAuth(const RegistryEndpoint& endpoint, Request& request,
                                       const Reference& ref, const std::string& url,
                                       std::vector<std::string> headers, const RegistryAuth& auth,
                                       RegistryBody* body);
  // A token from the challenge's realm, cached per realm, service, scope and
  // credential identity until shortly before it expires.
  absl::StatusOr<std::string> FetchToken(const RegistryEndpoint& endpoint,
                                         const std::map<std::string, std::string>& challenge,
                                         const std::string& scope, const RegistryAuth& auth);
  // Drops an Authorization header the registry refused, and its token if it is
  // a Bearer one, so neither is offered again.
  void ForgetAuthorization(const std::string& cache_key, const std::string& header);
  // The PEM certificates in certs_dir/HOST/*.crt, trusted besides the system's.
  std::string CaBundleFor(const std::string& host) const;

  const config::ImageConfig config_;
  absl::Duration initial_backoff_ = absl::Milliseconds(500);

  struct CachedToken {
    std::string token;
    absl::Time expires;
  };
  absl::Mutex mu_;
  std::map<std::string, CachedToken> tokens_ ABSL_GUARDED_BY(mu_);
  // "base_url|scope|identity" -> Authorization header that worked last.
  std::map<std::string, std::string> endpoint_auth_ ABSL_GUARDED_BY(mu_);
  // Mirrors that refused connections, and until when they are skipped.
  std::map<std::string, absl::Time> down_until_ ABSL_GUARDED_BY(mu_);
};

// Parses a WWW-Authenticate header: scheme ("bearer"/"basic", lower case) and params.
std::pair<std::string, std::map<std::string, std::string>> ParseAuthChallenge(
    const std::string& header);

// The challenge to answer among several WWW-Authenticate headers: Bearer over
// Basic, other schemes last; scheme "" when there is none.
std::pair<std::string, std::map<std::string, std::string>> StrongestChallenge(
    const std::vector<std::string>& headers);

}  // namespace crid
