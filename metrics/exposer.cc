#include "metrics/exposer.h"

#include <prometheus/exposer.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace crid::metrics {

namespace {

// Scrapes are rare and small; one thread answers them.
constexpr size_t kExposerThreads = 1;

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
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
