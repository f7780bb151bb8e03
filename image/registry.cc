#include "image/registry.h"

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/errors.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/logging.h"
#include "image/digest.h"
#include "image/http_client.h"

namespace crid {

// Receives the body of a 200 answer; other answers are kept for the error message.
class RegistryBody {
 public:
  virtual ~RegistryBody() = default;
  virtual absl::Status Begin() = 0;
  virtual absl::Status Write(absl::string_view data) = 0;
};

namespace {

constexpr uint64_t kMaxErrorBody = uint64_t{64} << 10;
constexpr uint64_t kMaxTokenBody = uint64_t{1} << 20;
constexpr char kUserAgent[] = "crid";
constexpr char kManifestAccept[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, "
    "application/vnd.docker.distribution.manifest.v1+json;q=0.1";
constexpr absl::Duration kEndpointDownFor = absl::Seconds(30);

bool IsLoopbackHost(absl::string_view domain) {
  absl::string_view host = domain;
  if (absl::StartsWith(host, "[")) {
    host = host.substr(1, host.find(']') - 1);
    return host == "::1";
  }
  host = host.substr(0, host.find(':'));
  return host == "localhost" || absl::StartsWith(host, "127.");
}

std::string HostOfUrl(absl::string_view url) {
  absl::ConsumePrefix(&url, "http://");
  absl::ConsumePrefix(&url, "https://");
  return std::string(url.substr(0, url.find('/')));
}

// Worth another attempt at the same endpoint. RESOURCE_EXHAUSTED is final: it is
// a full disk here or an answer over its size limit, neither of which a retry mends
// (a registry's 429 is UNAVAILABLE).
bool IsTransient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded;
}

// Docker Hub answers under several names; credentials saved for one are for all.
std::string CanonicalRegistryHost(absl::string_view host) {
  if (host == kDefaultDomain || host == "index.docker.io" || host == "registry-1.docker.io") {
    return kDefaultDomain;
  }
  return std::string(host);
}

// A whole answer in memory. With `expected` >= 0 (the descriptor's size) a byte
// past it is an error at once, and a shorter answer one at Check.
class StringBody final : public RegistryBody {
 public:
  explicit StringBody(uint64_t max, int64_t expected = -1) : max_(max), expected_(expected) {}
  absl::Status Begin() override {
    data_.clear();
    return absl::OkStatus();
  }
  absl::Status Write(absl::string_view data) override {
    if (expected_ >= 0 && data_.size() + data.size() > static_cast<uint64_t>(expected_)) {
      return absl::DataLossError(
          absl::StrCat("answer larger than the ", expected_, " bytes its descriptor gives"));
    }
    if (data_.size() + data.size() > max_) {
      return absl::ResourceExhaustedError(absl::StrCat("answer larger than ", max_, " bytes"));
    }
    data_.append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Check(absl::string_view url) const {
    if (expected_ >= 0 && data_.size() != static_cast<uint64_t>(expected_)) {
      return absl::DataLossError(
          absl::StrCat(url, ": got ", data_.size(), " bytes, its descriptor gives ", expected_));
    }
    return absl::OkStatus();
  }
  std::string& data() { return data_; }

 private:
  uint64_t max_;
  int64_t expected_;
  std::string data_;
};

}  // namespace

std::string RegistryAuth::Identity() const {
  if (empty()) {
    return "";
  }
  // Length-prefixed so that no two different field lists hash alike.
  std::string all;
  for (const std::string* field :
       {&username, &password, &auth, &identity_token, &registry_token, &server_address}) {
    absl::StrAppend(&all, field->size(), ":", *field, ";");
  }
  return DigestOf(all);
}

bool RegistryAuth::IsFor(const std::string& host, const std::string& domain) const {
  std::string target = domain;
  if (!server_address.empty()) {
    absl::string_view address = server_address;
    absl::ConsumePrefix(&address, "https://");
    absl::ConsumePrefix(&address, "http://");
    target = std::string(address.substr(0, address.find('/')));
  }
  return CanonicalRegistryHost(target) == CanonicalRegistryHost(host);
}

std::pair<std::string, std::map<std::string, std::string>> StrongestChallenge(
    const std::vector<std::string>& headers) {
  std::pair<std::string, std::map<std::string, std::string>> best;
  auto rank = [](const std::string& scheme) {
    return scheme == "bearer" ? 2 : scheme == "basic" ? 1 : 0;
  };
  for (const std::string& h : headers) {
    auto challenge = ParseAuthChallenge(h);
    if (best.first.empty() || rank(challenge.first) > rank(best.first)) {
      best = std::move(challenge);
    }
  }
  return best;
}

std::pair<std::string, std::map<std::string, std::string>> ParseAuthChallenge(
    const std::string& header) {
  absl::string_view rest = absl::StripAsciiWhitespace(header);
  size_t space = rest.find(' ');
  std::string scheme = absl::AsciiStrToLower(rest.substr(0, space));
  std::map<std::string, std::string> params;
  rest = space == absl::string_view::npos ? "" : rest.substr(space + 1);
  while (!rest.empty()) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    size_t eq = rest.find('=');
    if (eq == absl::string_view::npos) {
      break;
    }
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(0, eq)));
    rest = rest.substr(eq + 1);
    std::string value;
    if (absl::StartsWith(rest, "\"")) {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) {
          ++i;
        }
        value.push_back(rest[i]);
      }
      rest = i < rest.size() ? rest.substr(i + 1) : "";
    } else {
      size_t comma = rest.find(',');
      value = std::string(absl::StripAsciiWhitespace(rest.substr(0, comma)));
      rest = comma == absl::string_view::npos ? "" : rest.substr(comma);
    }
    params[key] = value;
    rest = absl::StripLeadingAsciiWhitespace(rest);
    absl::ConsumePrefix(&rest, ",");
  }
  return {scheme, params};
}

struct RegistryClient::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last answer only
  std::vector<std::string> challenges;         // every WWW-Authenticate of the last answer
  std::string error_body;
};

// One HTTP exchange (with its redirects) through crid's HTTP client.
class RegistryClient::Request final : public HttpResponseHandler {
 public:
  Request(const RegistryEndpoint& endpoint, std::string ca_bundle)
      : endpoint_(endpoint), ca_bundle_(std::move(ca_bundle)) {}

  absl::StatusOr<Response> Perform(const std::string& url, const std::vector<std::string>& headers,
                                   const std::string* post_body, RegistryBody* body) {
    response_ = Response();
    body_ = body;
    began_ = false;
    body_status_ = absl::OkStatus();
    last_status_ = 0;
    HttpRequest request;
    request.url = url;
    request.headers = headers;
    if (post_body != nullptr) {
      request.method = "POST";
      request.body = *post_body;
    }
    HttpOptions options;
    options.user_agent = kUserAgent;
    options.proxy = ProxySettings::FromEnvironment();
    options.tls.skip_verify = endpoint_.skip_verify;
    options.tls.extra_ca_pem = ca_bundle_;
    options.tls.client_cert_file = client_cert_;
    options.tls.client_key_file = client_key_;
    absl::StatusOr<int> status = HttpFetch(request, options, this);
    if (!body_status_.ok()) {
      return body_status_;
    }
    if (!status.ok()) {
      return Annotate(status.status(), url);
    }
    response_.status = *status;
    if (response_.status == 200 && body_ != nullptr && !began_) {
      CRID_RETURN_IF_ERROR(body_->Begin());  // empty body
    }
    return std::move(response_);
  }

  void SetClientCert(std::string cert, std::string key) {
    client_cert_ = std::move(cert);
    client_key_ = std::move(key);
  }

  void OnHeader(absl::string_view line) override {
    if (absl::StartsWith(line, "HTTP/")) {
      response_.headers.clear();  // a new answer (after a redirect)
      response_.challenges.clear();
      last_status_ = 0;
      size_t sp = line.find(' ');
      int code = 0;
      if (sp != absl::string_view::npos && absl::SimpleAtoi(line.substr(sp + 1, 3), &code)) {
        last_status_ = code;
      }
      return;
    }
    size_t colon = line.find(':');
    if (colon != absl::string_view::npos) {
      std::string name = absl::AsciiStrToLower(line.substr(0, colon));
      std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      if (name == "www-authenticate") {
        response_.challenges.push_back(value);
      }
      response_.headers[name] = std::move(value);
    }
  }

  absl::Status OnData(absl::string_view data) override {
    // The status of the answer being read; redirect bodies are not delivered.
    if (last_status_ == 200 && body_ != nullptr) {
      if (!began_) {
        began_ = true;
        body_status_ = body_->Begin();
      }
      if (body_status_.ok()) {
        body_status_ = body_->Write(data);
      }
      return body_status_;
    }
    if (response_.error_body.size() < kMaxErrorBody) {
      response_.error_body.append(data.data(), std::min<size_t>(data.size(), kMaxErrorBody));
    }
    return absl::OkStatus();
  }

 private:
  const RegistryEndpoint& endpoint_;
  std::string ca_bundle_;
  std::string client_cert_;
  std::string client_key_;
  Response response_;
  RegistryBody* body_ = nullptr;
  bool began_ = false;
  absl::Status body_status_;
  long last_status_ = 0;
};

RegistryClient::RegistryClient(config::ImageConfig config) : config_(std::move(config)) {}

std::vector<RegistryEndpoint> RegistryClient::Endpoints(const std::string& domain) const {
  std::vector<RegistryEndpoint> out;
  bool insecure = false;
  if (auto it = config_.registries().find(domain); it != config_.registries().end()) {
    for (const std::string& mirror : it->second.mirrors()) {
      RegistryEndpoint ep;
      ep.base_url = std::string(absl::StripSuffix(mirror, "/"));
      ep.host = HostOfUrl(ep.base_url);
      ep.mirror = true;
      out.push_back(ep);
    }
    insecure = it->second.insecure();
  }
  if (auto it = config_.registries().find(domain);
      it != config_.registries().end() && it->second.mirrors_only() && !out.empty()) {
    return out;
  }
  RegistryEndpoint origin;
  origin.host = domain == kDefaultDomain ? "registry-1.docker.io" : domain;
  bool plain = insecure || IsLoopbackHost(domain);
  origin.base_url = absl::StrCat(plain ? "http://" : "https://", origin.host);
  origin.skip_verify = insecure;
  out.push_back(origin);
  return out;
}

std::string RegistryClient::CaBundleFor(const std::string& host) const {
  std::string dir = absl::StrCat(config_.certs_dir(), "/", host);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return "";
  }
  std::string extra;
  while (dirent* e = readdir(d)) {
    if (absl::EndsWith(e->d_name, ".crt")) {
      absl::StatusOr<std::string> pem = ReadFile(absl::StrCat(dir, "/", e->d_name));
      if (pem.ok()) {
        absl::StrAppend(&extra, *pem, "\n");
      } else {
        spdlog::warn("registry CA {}: {}", e->d_name, pem.status());
      }
    }
  }
  closedir(d);
  return extra;
}

absl::StatusOr<std::string> RegistryClient::FetchToken(
    const RegistryEndpoint& endpoint, const std::map<std::string, std::string>& challenge,
    const std::string& scope, const RegistryAuth& auth) {
  auto realm_it = challenge.find("realm");
  if (realm_it == challenge.end() || realm_it->second.empty()) {
    return absl::UnauthenticatedError("bearer challenge without a realm");
  }
  const std::string& realm = realm_it->second;
  std::string service = challenge.count("service") ? challenge.at("service") : "";
  std::string key = absl::StrCat(realm, "|", service, "|", scope, "|", auth.Identity());
  {
    absl::MutexLock lock(&mu_);
    if (auto it = tokens_.find(key); it != tokens_.end()) {
      if (it->second.expires > absl::Now()) {
        return it->second.token;
      }
      tokens_.erase(it);
    }
  }
  std::string user = auth.username;
  std::string pass = auth.password;
  if (!auth.auth.empty()) {
    std::string decoded;
    if (absl::Base64Unescape(auth.auth, &decoded) && absl::StrContains(decoded, ':')) {
      user = decoded.substr(0, decoded.find(':'));
      pass = decoded.substr(decoded.find(':') + 1);
    }
  }
  RegistryEndpoint token_endpoint = endpoint;
  token_endpoint.host = HostOfUrl(realm);
  Request request(token_endpoint, CaBundleFor(token_endpoint.host));
  StringBody body(kMaxTokenBody);
  std::vector<std::string> headers = {"Accept: application/json"};
  absl::StatusOr<Response> resp;
  if (!auth.identity_token.empty()) {
    // OAuth2 refresh-token grant, as docker does with an identity token.
    std::string form = absl::StrCat(
        "grant_type=refresh_token&client_id=crid&service=", PercentEncode(service),
        "&scope=", PercentEncode(scope), "&refresh_token=", PercentEncode(auth.identity_token));
    headers.emplace_back("Content-Type: application/x-www-form-urlencoded");
    resp = request.Perform(realm, headers, &form, &body);
  } else {
    std::string url = realm;
    absl::StrAppend(&url, absl::StrContains(realm, '?') ? "&" : "?");
    if (!service.empty()) {
      absl::StrAppend(&url, "service=", PercentEncode(service), "&");
    }
    absl::StrAppend(&url, "scope=", PercentEncode(scope));
    if (!user.empty()) {
      headers.push_back(
          absl::StrCat("Authorization: Basic ", absl::Base64Escape(absl::StrCat(user, ":", pass))));
    }
    resp = request.Perform(url, headers, nullptr, &body);
  }
  if (!resp.ok()) {
    return Annotate(resp.status(), "token request");
  }
  if (resp->status != 200) {
    std::string msg = absl::StrCat("token endpoint ", realm, " answered HTTP ", resp->status);
    if (resp->status == 401 || resp->status == 403) {
      return absl::UnauthenticatedError(msg);
    }
    return resp->status >= 500 ? absl::UnavailableError(msg) : absl::PermissionDeniedError(msg);
  }
  CRID_ASSIGN_OR_RETURN(Json answer, ParseJsonObject(body.data(), "token answer"));
  std::string token = JsonString(answer, "token");
  if (token.empty()) {
    token = JsonString(answer, "access_token");
  }
  if (token.empty()) {
    return absl::UnauthenticatedError(absl::StrCat("token endpoint ", realm, " sent no token"));
  }
  int64_t expires_in = JsonInt(answer, "expires_in");
  if (expires_in < 60) {
    expires_in = 60;  // the distribution spec's minimum
  }
  {
    absl::MutexLock lock(&mu_);
    // Renew a little before the registry would refuse it.
    tokens_[key] = {token, absl::Now() + absl::Seconds(expires_in) - absl::Seconds(10)};
  }
  return token;
}

absl::Status RegistryClient::Run(
    const Reference& ref, const std::string& what,
    const std::function<absl::Status(const RegistryEndpoint&, Request&)>& attempt) {
  std::vector<std::string> failures;
  absl::Status last;
  std::vector<RegistryEndpoint> endpoints = Endpoints(ref.domain);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const RegistryEndpoint& endpoint = endpoints[i];
    bool is_last = i + 1 == endpoints.size();
    if (!is_last) {
      absl::MutexLock lock(&mu_);
      auto down = down_until_.find(endpoint.base_url);
      if (down != down_until_.end() && down->second > absl::Now()) {
        failures.push_back(absl::StrCat(endpoint.base_url, ": skipped, unreachable moments ago"));
        continue;
      }
    }
    std::string ca = CaBundleFor(endpoint.host);
    absl::Duration backoff = initial_backoff_;
    absl::Status st;
    for (uint32_t n = 1; n <= config_.pull_attempts(); ++n) {
      Request request(endpoint, ca);
      std::string cert_dir = absl::StrCat(config_.certs_dir(), "/", endpoint.host);
      if (DIR* d = opendir(cert_dir.c_str()); d != nullptr) {
        while (dirent* e = readdir(d)) {
          absl::string_view name = e->d_name;
          if (absl::ConsumeSuffix(&name, ".cert")) {
            request.SetClientCert(absl::StrCat(cert_dir, "/", e->d_name),
                                  absl::StrCat(cert_dir, "/", name, ".key"));
          }
        }
        closedir(d);
      }
      st = attempt(endpoint, request);
      if (st.ok() || !IsTransient(st) || n == config_.pull_attempts()) {
        break;
      }
      spdlog::warn("{} from {}: {} (attempt {} of {}, retrying in {})", what, endpoint.base_url,
                   st.message(), n, config_.pull_attempts(), absl::FormatDuration(backoff));
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(10));
    }
    if (st.ok()) {
      return st;
    }
    if (st.code() == absl::StatusCode::kUnavailable &&
        absl::StrContains(st.message(), ": unreachable: ")) {
      // A mirror that refuses connections is skipped for a while instead of
      // costing every request of the pull its retries.
      absl::MutexLock lock(&mu_);
      down_until_[endpoint.base_url] = absl::Now() + kEndpointDownFor;
    }
    if (i + 1 < endpoints.size()) {
      spdlog::info("{}: endpoint {} failed ({}), trying {}", what, endpoint.base_url, st.message(),
                   endpoints[i + 1].base_url);
    }
    failures.push_back(absl::StrCat(endpoint.base_url, ": ", st.message()));
    last = st;
  }
  return absl::Status(last.code(), absl::StrCat(what, " (registry ", ref.domain, ", repository ",
                                                ref.path, "): ", absl::StrJoin(failures, "; ")));
}

namespace {

absl::Status DescribeHttpError(long status, const std::string& url, const std::string& body) {
  std::string msg = absl::StrCat("HTTP ", status, " for ", url);
  if (!body.empty()) {
    absl::StrAppend(&msg, ": ", absl::StripAsciiWhitespace(body.substr(0, 300)));
  }
  switch (status) {
    case 401:
      return absl::UnauthenticatedError(absl::StrCat("unauthorized (401): ", msg));
    case 403:
      return absl::PermissionDeniedError(absl::StrCat("denied (403): ", msg));
    case 404:
      return absl::NotFoundError(absl::StrCat("not found (404): ", msg));
    case 429:
      // Retried with backoff, like any registry that is briefly unavailable.
      return absl::UnavailableError(absl::StrCat("too many requests (429): ", msg));
    default:
      if (status >= 500) {
        return absl::UnavailableError(msg);
      }
      return absl::FailedPreconditionError(msg);
  }
}

}  // namespace

absl::StatusOr<RegistryClient::Response> RegistryClient::GetWithAuth(
    const RegistryEndpoint& endpoint, Request& request, const Reference& ref,
    const std::string& url, std::vector<std::string> headers, const RegistryAuth& pull_auth,
    RegistryBody* body) {
  // A mirror, or another registry, is never shown credentials meant for the
  // registry the pull names: it is asked anonymously.
  static const RegistryAuth kAnonymous;
  const RegistryAuth& auth = pull_auth.IsFor(endpoint.host, ref.domain) ? pull_auth : kAnonymous;
  std::string scope = absl::StrCat("repository:", ref.path, ":pull");
  std::string cache_key = absl::StrCat(endpoint.base_url, "|", scope, "|", auth.Identity());
  std::vector<std::string> with_auth = headers;
  std::string sent;  // the Authorization header sent first, if any
  if (!auth.registry_token.empty()) {
    sent = "Authorization: Bearer " + auth.registry_token;
  } else {
    absl::MutexLock lock(&mu_);
    if (auto it = endpoint_auth_.find(cache_key); it != endpoint_auth_.end()) {
      sent = it->second;
    }
  }
  if (!sent.empty()) {
    with_auth.push_back(sent);
  }
  CRID_ASSIGN_OR_RETURN(Response resp, request.Perform(url, with_auth, nullptr, body));
  if (resp.status != 401 || resp.challenges.empty()) {
    return resp;
  }
  // The registry refused what was sent: it is not offered again.
  if (!sent.empty()) {
    ForgetAuthorization(cache_key, sent);
  }
  auto [scheme, params] = StrongestChallenge(resp.challenges);
  std::string header;
  if (scheme == "bearer") {
    std::string token_scope = params.count("scope") ? params["scope"] : scope;
    CRID_ASSIGN_OR_RETURN(std::string token, FetchToken(endpoint, params, token_scope, auth));
    header = "Authorization: Bearer " + token;
  } else if (scheme == "basic") {
    std::string credentials = auth.auth;
    if (credentials.empty() && !auth.username.empty()) {
      credentials = absl::Base64Escape(absl::StrCat(auth.username, ":", auth.password));
    }
    if (credentials.empty()) {
      return resp;  // 401: no credentials for this registry
    }
    header = "Authorization: Basic " + credentials;
  } else {
    return resp;
  }
  if (header == sent) {
    return resp;  // refused already
  }
  headers.push_back(header);
  CRID_ASSIGN_OR_RETURN(Response retried, request.Perform(url, headers, nullptr, body));
  if (retried.status == 401 || retried.status == 403) {
    ForgetAuthorization(cache_key, header);  // a fresh token refused is not kept either
    return retried;
  }
  absl::MutexLock lock(&mu_);
  endpoint_auth_[cache_key] = header;
  return retried;
}

void RegistryClient::ForgetAuthorization(const std::string& cache_key, const std::string& header) {
  constexpr absl::string_view kBearer = "Authorization: Bearer ";
  absl::MutexLock lock(&mu_);
  if (auto it = endpoint_auth_.find(cache_key);
      it != endpoint_auth_.end() && it->second == header) {
    endpoint_auth_.erase(it);
  }
  if (absl::StartsWith(header, kBearer)) {
    absl::string_view token = absl::string_view(header).substr(kBearer.size());
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->second.token == token ? tokens_.erase(it) : std::next(it);
    }
  }
}

absl::StatusOr<FetchedManifest> RegistryClient::FetchManifest(const Reference& ref,
                                                              const std::string& tag_or_digest,
                                                              const RegistryAuth& auth,
                                                              uint64_t max_size,
                                                              int64_t expected_size) {
  FetchedManifest out;
  std::string what =
      absl::StrCat("manifest ", ref.Name(), absl::StartsWith(tag_or_digest, "sha256:") ? "@" : ":",
                   tag_or_digest);
  absl::Status st = Run(ref, what, [&](const RegistryEndpoint& ep, Request& req) {
    StringBody body(max_size, expected_size);
    std::string url = absl::StrCat(ep.base_url, "/v2/", ref.path, "/manifests/", tag_or_digest);
    CRID_ASSIGN_OR_RETURN(Response resp,
                          GetWithAuth(ep, req, ref, url, {kManifestAccept}, auth, &body));
    if (resp.status != 200) {
      return DescribeHttpError(resp.status, url, resp.error_body);
    }
    CRID_RETURN_IF_ERROR(body.Check(url));
    out.body = std::move(body.data());
    out.digest = DigestOf(out.body);
    out.media_type = resp.headers["content-type"];
    out.media_type = out.media_type.substr(0, out.media_type.find(';'));
    out.endpoint = ep.base_url;
    if (absl::StartsWith(tag_or_digest, "sha256:") && out.digest != tag_or_digest) {
      return absl::DataLossError(absl::StrCat("manifest from ", url, " has digest ", out.digest));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    return st;
  }
  return out;
}

namespace {

// Streams a blob into the content store, a new temp file per attempt.
class BlobBody final : public RegistryBody {
 public:
  BlobBody(ContentStore* store, std::string digest, int64_t size, std::atomic<uint64_t>* progress)
      : store_(store), digest_(std::move(digest)), size_(size), progress_(progress) {}
  absl::Status Begin() override {
    CRID_ASSIGN_OR_RETURN(writer_, store_->Begin(digest_, size_));
    return absl::OkStatus();
  }
  absl::Status Write(absl::string_view data) override {
    if (progress_ != nullptr) {
      progress_->fetch_add(data.size());
    }
    return writer_->Write(data);
  }
  absl::Status Commit() {
    if (writer_ == nullptr) {
      return absl::DataLossError(absl::StrCat("blob ", digest_, ": no content received"));
    }
    return writer_->Commit();
  }

 private:
  ContentStore* store_;
  std::string digest_;
  int64_t size_;
  std::atomic<uint64_t>* progress_;
  std::unique_ptr<BlobWriter> writer_;
};

}  // namespace

absl::Status RegistryClient::FetchBlob(const Reference& ref, const std::string& digest,
                                       int64_t size, const RegistryAuth& auth, ContentStore* store,
                                       std::atomic<uint64_t>* progress) {
  CRID_RETURN_IF_ERROR(ValidateDigest(digest));
  std::string what = absl::StrCat("blob ", digest, " of ", ref.Name());
  return Run(ref, what, [&](const RegistryEndpoint& ep, Request& req) {
    BlobBody body(store, digest, size, progress);
    std::string url = absl::StrCat(ep.base_url, "/v2/", ref.path, "/blobs/", digest);
    CRID_ASSIGN_OR_RETURN(Response resp, GetWithAuth(ep, req, ref, url, {}, auth, &body));
    if (resp.status != 200) {
      return DescribeHttpError(resp.status, url, resp.error_body);
    }
    return body.Commit();
  });
}

absl::StatusOr<std::string> RegistryClient::FetchSmallBlob(const Reference& ref,
                                                           const std::string& digest,
                                                           const RegistryAuth& auth,
                                                           uint64_t max_size,
                                                           int64_t expected_size) {
  CRID_RETURN_IF_ERROR(ValidateDigest(digest));
  std::string out;
  std::string what = absl::StrCat("blob ", digest, " of ", ref.Name());
  CRID_RETURN_IF_ERROR(Run(ref, what, [&](const RegistryEndpoint& ep, Request& req) {
    StringBody body(max_size, expected_size);
    std::string url = absl::StrCat(ep.base_url, "/v2/", ref.path, "/blobs/", digest);
    CRID_ASSIGN_OR_RETURN(Response resp, GetWithAuth(ep, req, ref, url, {}, auth, &body));
    if (resp.status != 200) {
      return DescribeHttpError(resp.status, url, resp.error_body);
    }
    CRID_RETURN_IF_ERROR(body.Check(url));
    if (DigestOf(body.data()) != digest) {
      return absl::DataLossError(absl::StrCat(url, ": content does not match its digest"));
    }
    out = std::move(body.data());
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace crid
