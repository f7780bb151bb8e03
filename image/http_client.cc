#include "image/http_client.h"

#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/unique_fd.h"
#include "image/http_connection.h"

namespace crid {

namespace {

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
absl::Status OpenTunnel(HttpConnection& conn, const HttpUrl& url, const HttpUrl& proxy,
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
  // Before connecting: a TLS setup problem needs no network to show.
  std::optional<TlsClientContext> tls;
  if (url.https()) {
    CRID_ASSIGN_OR_RETURN(tls, TlsClientContext::For(options.tls));
  }
  const HttpUrl& peer = proxy.has_value() ? *proxy : url;
  CRID_ASSIGN_OR_RETURN(UniqueFd fd,
                        ConnectTcp(peer.host, peer.port, deadline, proxy ? "proxy " : ""));
  HttpConnection conn(std::move(fd));
  if (proxy.has_value() && url.https()) {
    CRID_RETURN_IF_ERROR(OpenTunnel(conn, url, *proxy, options, deadline));
  }
  if (url.https()) {
    CRID_RETURN_IF_ERROR(conn.StartTls(*tls, url, deadline));
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
