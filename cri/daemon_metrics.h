// crid's own metrics, put together for the daemon: the metric families
// (metrics/), handed to the parts that record into them, the per-RPC
// interceptor for the CRI server, gauges counted from the managers at each
// scrape, and the HTTP endpoint (config: metrics.address).
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cni/network.h"
#include "container/manager.h"
#include "image/image_store.h"
#include "metrics/exposer.h"
#include "metrics/metrics.h"
#include "metrics/rpc_metrics.h"
#include "metrics/scrape_gauges.h"
#include "sandbox/manager.h"

namespace crid {

// The parts whose work is measured. Not owned; null ones are left out.
struct MeteredParts {
  cni::CniManager* cni = nullptr;
  ImageStore* images = nullptr;
  sandbox::SandboxManager* sandboxes = nullptr;
  container::ContainerManager* containers = nullptr;
};

class DaemonMetrics {
 public:
  // Makes every family. Make it before the parts it measures, so it outlives
  // the threads that record into it.
  DaemonMetrics();
  ~DaemonMetrics();

  // Hooks `parts` to their metrics and serves everything on `address`
  // (metrics.address). The endpoint reads the managers at each scrape:
  // destroy it before them.
  absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> Serve(const std::string& address,
                                                                  const MeteredParts& parts);

  // For CriServer::Start: counts and times every CRI call.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory() {
    return rpc_.NewInterceptorFactory();
  }

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  metrics::RpcMetrics rpc_;
  metrics::PullMetrics pulls_;
  metrics::CniMetrics cni_;
  metrics::ShimMetrics shims_;
  std::shared_ptr<metrics::ScrapeGauges> gauges_;
};

}  // namespace crid
