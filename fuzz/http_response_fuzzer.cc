// Fuzz target: a registry's HTTP/1.1 answer as crid's client reads it off the
// connection (status line, head, Content-Length, chunked and close-delimited
// bodies), in pieces of every size, and the Location and proxy settings the
// client would derive from it. The first byte picks the piece size and whether
// the request was HEAD. A body longer than the input is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "image/http_parser.h"
#include "image/http_url.h"

namespace {

class Sink final : public crid::HttpResponseHandler {
 public:
  void OnHeader(absl::string_view line) override {
    absl::string_view value = line;
    if (absl::ConsumePrefix(&value, "Location:") || absl::ConsumePrefix(&value, "location:")) {
      static const crid::HttpUrl kBase = *crid::ParseHttpUrl("https://reg.example:5000/v2/a/b?x");
      if (auto url = crid::ResolveLocation(kBase, absl::StripAsciiWhitespace(value)); url.ok()) {
        url->String();
        url->SameOrigin(kBase);
      }
      crid::ParseProxyUrl(value).IgnoreError();
      crid::NoProxyMatches(value, "registry.example.com");
      crid::NoProxyMatches(value, "10.1.2.3");
      crid::NoProxyMatches(value, "fd00::1");
    }
  }
  absl::Status OnData(absl::string_view data) override {
    body_bytes += data.size();
    return absl::OkStatus();
  }
  size_t body_bytes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  bool head = (data[0] & 1) != 0;
  size_t piece = data[0] >> 1;  // 0: all at once
  absl::string_view answer(reinterpret_cast<const char*>(data) + 1, size - 1);
  Sink sink;
  crid::HttpResponseParser parser(head, &sink);
  absl::Status st;
  size_t step = piece == 0 ? answer.size() : piece;
  for (size_t i = 0; i < answer.size() && st.ok() && !parser.done(); i += step) {
    st = parser.Feed(answer.substr(i, step));
  }
  if (st.ok()) {
    st = parser.Finish();
  }
  if (sink.body_bytes > answer.size() || (st.ok() && !parser.done()) ||
      (parser.done() && !parser.head_done())) {
    abort();
  }
  return 0;
}
