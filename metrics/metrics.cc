#include "metrics/metrics.h"

namespace crid::metrics {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& PullBuckets() {
  static const auto* buckets =
      new prometheus::Histogram::BucketBoundaries{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
  return *buckets;
}

PullMetrics::PullMetrics(prometheus::Registry& registry)
    : pulls_(prometheus::BuildCounter()
                 .Name("crid_image_pulls_total")
                 .Help("Image pulls crid ran, by result (success or failure).")
                 .Register(registry)),
      succeeded_(pulls_.Add({{"result", "success"}})),
      failed_(pulls_.Add({{"result", "failure"}})),
      bytes_(prometheus::BuildCounter()
                 .Name("crid_image_pull_bytes_total")
                 .Help("Layer bytes received from registries by image pulls.")
                 .Register(registry)
                 .Add({})),
      duration_(prometheus::BuildHistogram()
                    .Name("crid_image_pull_duration_seconds")
                    .Help("How long image pulls took, failed ones included.")
                    .Register(registry)
                    .Add({}, PullBuckets())) {}

void PullMetrics::RecordPull(bool ok, uint64_t bytes_received, absl::Duration duration) {
  (ok ? succeeded_ : failed_).Increment();
  bytes_.Increment(static_cast<double>(bytes_received));
  duration_.Observe(absl::ToDoubleSeconds(duration));
}

CniMetrics::CniMetrics(prometheus::Registry& registry)
    : duration_(prometheus::BuildHistogram()
                    .Name("crid_cni_plugin_duration_seconds")
                    .Help("How long CNI plugin executions took, by plugin type and verb.")
                    .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("crid_cni_plugin_errors_total")
                  .Help("CNI plugin executions that failed, by plugin type and verb.")
                  .Register(registry)) {}

void CniMetrics::RecordPluginCall(const std::string& plugin, const std::string& verb, bool ok,
                                  absl::Duration duration) {
  // A plugin run takes milliseconds: the family's lookup (a lock and a map)
  // is noise beside it, and the series exist only for plugins really run.
  prometheus::Labels labels = {{"plugin", plugin}, {"verb", verb}};
  duration_.Add(labels, LatencyBuckets()).Observe(absl::ToDoubleSeconds(duration));
  if (!ok) {
    errors_.Add(labels).Increment();
  }
}

ShimMetrics::ShimMetrics(prometheus::Registry& registry)
    : launches_(prometheus::BuildCounter()
                    .Name("crid_shim_launches_total")
                    .Help("crid-shim processes started (one per pod, again after one died).")
                    .Register(registry)
                    .Add({})),
      restarts_(prometheus::BuildCounter()
                    .Name("crid_shim_restarts_total")
                    .Help("crid-shim processes started for a pod whose previous shim died.")
                    .Register(registry)
                    .Add({})),
      unexpected_exits_(prometheus::BuildCounter()
                            .Name("crid_shim_unexpected_exits_total")
                            .Help("crid-shim processes that died while crid still used them.")
                            .Register(registry)
                            .Add({})) {}

void ShimMetrics::RecordLaunch(bool restart) {
  launches_.Increment();
  if (restart) {
    restarts_.Increment();
  }
}

void ShimMetrics::RecordUnexpectedExit() { unexpected_exits_.Increment(); }

}  // namespace crid::metrics
