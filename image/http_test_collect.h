// A response handler for tests: keeps every header line and the whole body.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "image/http_parser.h"

namespace crid {

class Collect final : public HttpResponseHandler {
 public:
  void OnHeader(absl::string_view line) override { headers.emplace_back(line); }
  absl::Status OnData(absl::string_view data) override {
    body.append(data.data(), data.size());
    return absl::OkStatus();
  }
  std::vector<std::string> headers;
  std::string body;
};

}  // namespace crid
