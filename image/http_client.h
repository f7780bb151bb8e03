// crid's HTTP/1.1 client for registries, on OpenSSL: one connection per
// exchange, proxies from the environment as libcurl reads them, TLS with the
// system CAs plus a registry's own, client certificates, redirects that keep
// credentials on their origin, and bounded waits. Blocking; safe to use from
// several threads at once.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "image/http_connection.h"
#include "image/http_parser.h"
#include "image/http_url.h"

namespace crid {

// Where requests go through a proxy; "" for none.
struct ProxySettings {
  std::string http_proxy;   // for http:// URLs
  std::string https_proxy;  // for https:// URLs, through CONNECT
  std::string no_proxy;     // see NoProxyMatches
  // As libcurl reads the environment: http_proxy (lower case only: CGI sets
  // HTTP_PROXY from a request header), https_proxy or HTTPS_PROXY, all_proxy or
  // ALL_PROXY where those are unset, no_proxy or NO_PROXY.
  static ProxySettings FromEnvironment();
};

struct HttpOptions {
  TlsSettings tls;
  ProxySettings proxy;
  std::string user_agent;
  // Resolving aside, for the TCP connection, a proxy's CONNECT and the TLS handshake.
  absl::Duration connect_timeout = absl::Seconds(20);
  // The longest wait for the next byte once connected.
  absl::Duration stall_timeout = absl::Seconds(60);
  int max_redirects = 5;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD or POST
  std::string url;
  // "Name: value" each, sent as given (to every URL of a redirect chain, but
  // Authorization only to the first URL's origin).
  std::vector<std::string> headers;
  std::string body;  // POST only, with its Content-Length
};

// Performs `request`, following redirects, and returns the final answer's
// status code; `handler` sees every head and the final answer's body.
// Errors: "unreachable: ..." (UNAVAILABLE) when a name does not resolve or a
// server or proxy cannot be connected to; FAILED_PRECONDITION for certificate
// and TLS setup problems, unsupported protocols and too many redirects;
// UNAVAILABLE for malformed answers, stalls and broken connections; the
// handler's own errors as they are.
absl::StatusOr<int> HttpFetch(const HttpRequest& request, const HttpOptions& options,
                              HttpResponseHandler* handler);

}  // namespace crid
