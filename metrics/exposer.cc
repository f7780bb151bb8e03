#include "metrics/exposer.h"

#include <arpa/inet.h>
#include <prometheus/exposer.h>

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace crid::metrics {

namespace {

// Scrapes are rare and small; one thread answers them.
constexpr size_t kExposerThreads = 1;

}  // namespace

absl::Status ValidateMetricsAddress(const std::string& address) {
  auto invalid = [&address](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.address: ", why, " (want HOST:PORT such as 127.0.0.1:9090, or [::1]:9090), got \"",
        address, "\""));
  };
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return invalid("no port");
  }
  std::string host = address.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535) {
    return invalid("the port must be 0 to 65535");
  }
  unsigned char addr[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr) == 1) {
      return absl::OkStatus();
    }
    return invalid("not an IPv6 address in brackets");
  }
  if (inet_pton(AF_INET, host.c_str(), addr) == 1) {
    return absl::OkStatus();
  }
  return invalid("the host must be an IPv4 address or an IPv6 address in brackets");
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
  if (absl::Status st = ValidateMetricsAddress(address); !st.ok()) {
    return st;
  }
  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  endpoint->collectables_ = std::move(collectables);
  // civetweb reports a port it cannot bind by throwing.
  try {
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(address, kExposerThreads);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint: cannot listen on ", address, ": ", e.what()));
  }
  for (const std::shared_ptr<prometheus::Collectable>& c : endpoint->collectables_) {
    endpoint->exposer_->RegisterCollectable(c);
  }
  std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->port_ = ports.empty() ? 0 : ports.front();
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

}  // namespace crid::metrics
