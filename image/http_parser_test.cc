// The answer parser and the URL helpers on their own, without sockets: every
// answer is fed whole and byte by byte, so no split point changes a result.
#include "image/http_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "image/http_test_collect.h"
#include "image/http_url.h"

namespace crid {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Parsed {
  absl::Status status;
  bool done = false;
  int code = 0;
  std::vector<std::string> headers;
  std::string body;
};

// Feeds `answer` in pieces of `piece` bytes (0: whole), then the end of the
// connection when `close` is set.
Parsed Parse(const std::string& answer, size_t piece = 0, bool close = true, bool head = false) {
  Collect collect;
  HttpResponseParser parser(head, &collect);
  Parsed out;
  size_t step = piece == 0 ? answer.size() : piece;
  for (size_t i = 0; i < answer.size() && out.status.ok(); i += step) {
    out.status = parser.Feed(absl::string_view(answer).substr(i, step));
  }
  if (out.status.ok() && close) {
    out.status = parser.Finish();
  }
  out.done = parser.done();
  out.code = parser.status();
  out.headers = collect.headers;
  out.body = collect.body;
  return out;
}

// The same result whole and byte by byte.
Parsed ParseBothWays(const std::string& answer, bool close = true, bool head = false) {
  Parsed whole = Parse(answer, 0, close, head);
  Parsed bytes = Parse(answer, 1, close, head);
  EXPECT_EQ(whole.status, bytes.status);
  EXPECT_EQ(whole.body, bytes.body);
  EXPECT_EQ(whole.headers, bytes.headers);
  return whole;
}

TEST(HttpResponseParserTest, ContentLengthBodyEndsWithoutTheConnection) {
  Parsed p = ParseBothWays("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhelloEXTRA",
                           /*close=*/false);
  ASSERT_TRUE(p.status.ok()) << p.status;
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.code, 200);
  EXPECT_EQ(p.body, "hello");
  EXPECT_THAT(p.headers, ElementsAre("HTTP/1.1 200 OK", "Content-Length: 5", "X-A:  b "));
}

TEST(HttpResponseParserTest, ChunkedWithExtensionsAndTrailersWinsOverContentLength) {
  Parsed p = ParseBothWays(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "5;name=\"v\";x\r\nhello\r\n6 ; ext\r\n world\r\nA\nabcdefghij\n0\r\nX-Trailer: t\r\n\r\n"
      "garbage after",
      /*close=*/false);
  ASSERT_TRUE(p.status.ok()) << p.status;
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.body, "hello worldabcdefghij");
  // Trailers are not handed on as headers.
  EXPECT_EQ(p.headers.size(), 3u);
}

TEST(HttpResponseParserTest, BodyWithoutFramingEndsWithTheConnection) {
  Parsed p = ParseBothWays("HTTP/1.0 200 OK\r\n\r\nuntil the end");
  ASSERT_TRUE(p.status.ok()) << p.status;
  EXPECT_EQ(p.body, "until the end");
  EXPECT_FALSE(Parse("HTTP/1.0 200 OK\r\n\r\nmore to come", 0, /*close=*/false).done);
}

TEST(HttpResponseParserTest, HeadNoContentAndNotModifiedHaveNoBody) {
  Parsed head = ParseBothWays("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, true);
  EXPECT_TRUE(head.status.ok() && head.done) << head.status;
  for (int code : {204, 304}) {
    Parsed p =
        ParseBothWays(absl::StrCat("HTTP/1.1 ", code, " X\r\nContent-Length: 9\r\n\r\n"), false);
    EXPECT_TRUE(p.status.ok() && p.done) << code << p.status;
    EXPECT_EQ(p.body, "");
  }
}

TEST(HttpResponseParserTest, InterimAnswersComeBeforeTheFinalOne) {
  Parsed p = ParseBothWays(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false);
  ASSERT_TRUE(p.status.ok()) << p.status;
  EXPECT_EQ(p.code, 200);
  EXPECT_THAT(p.headers,
              ElementsAre("HTTP/1.1 100 Continue", "HTTP/1.1 200 OK", "Content-Length: 1"));
  EXPECT_EQ(p.body, "x");
}

TEST(HttpResponseParserTest, MalformedAnswersAreUnavailableErrors) {
  std::string huge_header = absl::StrCat("X-Big: ", std::string(70000, 'a'), "\r\n");
  std::string many_headers;
  for (int i = 0; i < 101; ++i) {
    absl::StrAppend(&many_headers, "X-", i, ": v\r\n");
  }
  constexpr char kNulInHeader[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
  struct Case {
    std::string answer;
    std::string message;
  };
  std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\n" + huge_header + "\r\n", "64 KiB"},
      {"HTTP/1.1 200 OK\r\n" + many_headers + "\r\n", "more than 100 header lines"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "conflicting"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk-size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n", "chunk-size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", "overflows"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(5000, '0'),
       "chunk-size line too long"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "line end"},
      {"HTTP/2 200\r\n\r\n", "status line"},
      {"HTTP/1.1 20 OK\r\n\r\n", "status code"},
      {"HTTP/1.1 700 OK\r\n\r\n", "status code"},
      {"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"},
      {"HTTP/1.1 200 OK\r\n folded\r\n\r\n", "folding"},
      {"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", "bad header line"},
      {"HTTP/1.1 200 OK\r\nName : v\r\n\r\n", "bad header line"},
      {"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "stray CR"},
      {std::string(kNulInHeader, sizeof(kNulInHeader) - 1), "stray CR or NUL"},
      {"HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n", "control characters"},
  };
  for (const Case& c : cases) {
    for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
      Parsed p = Parse(c.answer, piece);
      EXPECT_EQ(p.status.code(), absl::StatusCode::kUnavailable) << c.answer.substr(0, 80);
      EXPECT_THAT(std::string(p.status.message()), HasSubstr(c.message)) << c.answer.substr(0, 80);
    }
  }
}

TEST(HttpResponseParserTest, ConnectionClosedTooEarlyIsAnError) {
  EXPECT_THAT(std::string(Parse("").status.message()), HasSubstr("without an answer"));
  EXPECT_THAT(std::string(Parse("HTTP/1.1 200 OK\r\nA: b").status.message()), HasSubstr("head"));
  Parsed short_body = Parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345");
  EXPECT_EQ(short_body.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(short_body.status.message()), HasSubstr("after 5 of 10 body bytes"));
  Parsed short_chunks = Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  EXPECT_THAT(std::string(short_chunks.status.message()), HasSubstr("chunked body"));
  // The last chunk without the blank line that ends the trailers.
  EXPECT_FALSE(Parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n").status.ok());
}

TEST(HttpResponseParserTest, HandlerErrorsStopTheParse) {
  class Refuse final : public HttpResponseHandler {
   public:
    void OnHeader(absl::string_view) override {}
    absl::Status OnData(absl::string_view) override { return absl::DataLossError("too big"); }
  } refuse;
  HttpResponseParser parser(false, &refuse);
  EXPECT_EQ(parser.Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab").code(),
            absl::StatusCode::kDataLoss);
}

TEST(HttpUrlTest, ParsesHostsPortsPathsAndQueries) {
  auto url = ParseHttpUrl("HTTPS://Registry.Example.com/v2/a/b?x=1&y=%2F#frag");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "registry.example.com");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/v2/a/b?x=1&y=%2F");
  EXPECT_EQ(url->Authority(), "registry.example.com");
  EXPECT_EQ(url->HostPort(), "registry.example.com:443");

  url = ParseHttpUrl("http://[::1]:5000?q");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 5000);
  EXPECT_EQ(url->target, "/?q");
  EXPECT_EQ(url->String(), "http://[::1]:5000/?q");

  url = ParseHttpUrl("http://user:p%40ss@127.0.0.1:80/a b\xc3\xa9");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->userinfo, "user:p%40ss");
  EXPECT_EQ(url->Authority(), "127.0.0.1");
  EXPECT_EQ(url->target, "/a%20b%C3%A9");

  EXPECT_EQ(ParseHttpUrl("ftp://host/x").status().code(), absl::StatusCode::kFailedPrecondition);
  for (const char* bad :
       {"host/x", "http://", "http://ho st/", "http://h:0/", "http://h:65536/", "http://h:8x/",
        "http://[::1/", "http://[nope]/", "http://h/\r\n", "http://h\r\nX: y/"}) {
    EXPECT_EQ(ParseHttpUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HttpUrlTest, LocationsResolveAgainstTheCurrentUrl) {
  HttpUrl base = *ParseHttpUrl("https://reg.io:8443/v2/team/app/blobs/sha256:1?x=1");
  auto resolve = [&](const char* location) {
    absl::StatusOr<HttpUrl> url = ResolveLocation(base, location);
    return url.ok() ? url->String() : std::string(url.status().message());
  };
  EXPECT_EQ(resolve("http://storage:9000/b?sig=1#f"), "http://storage:9000/b?sig=1");
  EXPECT_EQ(resolve("//cdn.io/x"), "https://cdn.io/x");
  EXPECT_EQ(resolve("/other?y"), "https://reg.io:8443/other?y");
  EXPECT_EQ(resolve("../../x/./y"), "https://reg.io:8443/v2/team/x/y");
  EXPECT_EQ(resolve("../../../../../../z"), "https://reg.io:8443/z");
  EXPECT_EQ(resolve("sibling"), "https://reg.io:8443/v2/team/app/blobs/sibling");
  EXPECT_EQ(resolve("?only=query"), "https://reg.io:8443/v2/team/app/blobs/sha256:1?only=query");
  EXPECT_EQ(resolve(""), "https://reg.io:8443/v2/team/app/blobs/sha256:1?x=1");
  EXPECT_EQ(ResolveLocation(base, "file:///etc/passwd").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HttpUrlTest, ProxyUrlsDefaultToPort1080AndHttpOnly) {
  auto proxy = ParseProxyUrl("proxy.corp");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(proxy->HostPort(), "proxy.corp:1080");
  proxy = ParseProxyUrl("http://u:p@127.0.0.1:3128/");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(proxy->HostPort(), "127.0.0.1:3128");
  EXPECT_EQ(proxy->userinfo, "u:p");
  EXPECT_EQ(ParseProxyUrl("socks5://127.0.0.1:1080").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ParseProxyUrl("https://proxy:443").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(HttpUrlTest, NoProxyMatchesNamesSuffixesAddressesAndPrefixes) {
  EXPECT_TRUE(NoProxyMatches("*", "anything.example"));
  EXPECT_TRUE(NoProxyMatches("example.com", "example.com"));
  EXPECT_TRUE(NoProxyMatches("example.com", "Registry.Example.com"));
  EXPECT_TRUE(NoProxyMatches(".example.com", "registry.example.com"));
  EXPECT_TRUE(NoProxyMatches("a.io, example.com", "example.com."));
  EXPECT_FALSE(NoProxyMatches("example.com", "notexample.com"));
  EXPECT_FALSE(NoProxyMatches("registry.example.com", "example.com"));
  EXPECT_TRUE(NoProxyMatches("localhost,127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(NoProxyMatches("127.0.0.1", "127.0.0.2"));
  EXPECT_FALSE(NoProxyMatches("0.1", "127.0.0.1"));  // no suffix matching for addresses
  EXPECT_TRUE(NoProxyMatches("10.0.0.0/8", "10.20.30.40"));
  EXPECT_FALSE(NoProxyMatches("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(NoProxyMatches("::1", "::1"));
  EXPECT_TRUE(NoProxyMatches("[fd00::]/8", "fd12::1"));
  EXPECT_FALSE(NoProxyMatches("", "example.com"));
  EXPECT_FALSE(NoProxyMatches(",,", "example.com"));
}

TEST(HttpUrlTest, PercentEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(PercentEncode("repository:team/app:pull"), "repository%3Ateam%2Fapp%3Apull");
  EXPECT_EQ(PercentEncode("aZ09-._~ +&=\xff"), "aZ09-._~%20%2B%26%3D%FF");
  EXPECT_EQ(PercentDecode("a%3Ab%2fc%zz%4"), "a:b/c%zz%4");
}

}  // namespace
}  // namespace crid
