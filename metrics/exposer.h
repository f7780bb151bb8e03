// The HTTP endpoint Prometheus scrapes: GET /metrics answers with crid's
// metrics in the text exposition format. Served by prometheus-cpp's exposer
// (civetweb) on its own two threads, so a scrape never waits on a CRI call.
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace crid::metrics {

class MetricsEndpoint {
 public:
  // Listens on `address` ("127.0.0.1:9090", "[::1]:9090"; port 0 picks a free
  // one; checked by config::ValidateMetricsAddress) and serves `collectables`,
  // which it keeps alive.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address,
      std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
  ~MetricsEndpoint();

  // The port it listens on.
  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;

  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace crid::metrics
